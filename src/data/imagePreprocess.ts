// Image preprocessing options (CLI flags, job files, the API) and their defaults from the model
// input's shape. The geometry follows torchvision's Resize(int) / CenterCrop, the pipeline people
// usually trained with, so that calibration sees what the model saw.
import { closeMatch } from '../config/nearest.js'
import { DataSourceError } from '../errors.js'
import type { ValueInfo } from '../graph/model.js'
import { describeInput, feedType } from './modelInputs.js'

export interface ImagePreprocessOptions {
  /** A number: the shorter side in pixels, aspect ratio kept (torchvision `Resize(n)`). [height, width]: exactly that size. */
  resize?: number | [number, number]
  /** Cut [height, width] (or n × n) from the middle, after resizing (torchvision `CenterCrop`). */
  centerCrop?: number | [number, number]
  /** Channel order of a 3-channel input. Default 'rgb'. */
  channelOrder?: 'rgb' | 'bgr'
  /**
   * Subtracted per channel after `scale`, so in 0–1 units with the default scale
   * (torchvision's ImageNet numbers: [0.485, 0.456, 0.406]). Default 0.
   */
  mean?: number | number[]
  /** Divides per channel after subtracting `mean`, same units. Default 1. */
  std?: number | number[]
  /** Multiplies the 0–255 pixel values first. Default 1/255 (computed as a division by 255, as ToTensor does). */
  scale?: number
  /** Default: from the input's shape ([N, 1|3, H, W] → 'nchw', [N, H, W, 1|3] → 'nhwc'), else 'nchw'. */
  layout?: 'nchw' | 'nhwc'
  /** Default: the input's element type. 'uint8' feeds raw pixels (no scale, mean or std). */
  dtype?: 'float32' | 'uint8'
  /** Resampling filter for resize. Default 'bilinear' (torchvision's default). */
  interpolation?: 'nearest' | 'bilinear' | 'bicubic' | 'lanczos'
}

export const IMAGE_PREPROCESS_KEYS: readonly (keyof ImagePreprocessOptions)[] = [
  'resize', 'centerCrop', 'channelOrder', 'mean', 'std', 'scale', 'layout', 'dtype', 'interpolation',
]

export type ResizePlan =
  | { mode: 'shorter'; size: number }
  | { mode: 'exact'; height: number; width: number }
  /** Scale (aspect kept) until [height, width] fits inside; the default before a crop to a static size. */
  | { mode: 'cover'; height: number; width: number }

export interface ImagePreprocess {
  resize?: ResizePlan
  crop?: [number, number]
  channels: 1 | 3
  channelOrder: 'rgb' | 'bgr'
  mean: number[]
  std: number[]
  /** undefined: divide by 255. */
  scale?: number
  layout: 'nchw' | 'nhwc'
  dtype: 'float32' | 'uint8'
  interpolation: 'nearest' | 'bilinear' | 'bicubic' | 'lanczos'
  /** The input's static height and width, when it has them. */
  height?: number
  width?: number
}

function fail(file: string, input: ValueInfo, message: string): never {
  throw new DataSourceError(`${file}: ${message}`, { file, input: input.name })
}

function size2(v: unknown, key: string, file: string, input: ValueInfo): [number, number] {
  const pair = typeof v === 'number' ? [v, v] : v
  if (!Array.isArray(pair) || pair.length !== 2 || pair.some((x) => !Number.isInteger(x) || x < 1)) {
    fail(file, input, `preprocess.${key} must be a positive integer or [height, width], got ${JSON.stringify(v)}`)
  }
  return pair as [number, number]
}

function perChannel(v: number | number[] | undefined, fallback: number, channels: number, key: string, file: string, input: ValueInfo): number[] {
  if (v === undefined) return Array(channels).fill(fallback)
  const list = typeof v === 'number' ? Array(channels).fill(v) : v
  if (!Array.isArray(list) || list.length !== channels || list.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    fail(file, input, `preprocess.${key} must be a number or ${channels} numbers (input ${describeInput(input)} has ${channels} channel${channels > 1 ? 's' : ''}), got ${JSON.stringify(v)}`)
  }
  if (key === 'std' && list.some((x) => x === 0)) fail(file, input, 'preprocess.std must not contain 0')
  return list
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], key: string, file: string, input: ValueInfo): T | undefined {
  if (v === undefined) return undefined
  const s = typeof v === 'string' ? v.toLowerCase() : v
  if (!allowed.includes(s as T)) fail(file, input, `preprocess.${key} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${JSON.stringify(v)}`)
  return s as T
}

/** Checks the options and fills the defaults from the input's shape and type. */
export function resolveImagePreprocess(input: ValueInfo, options: ImagePreprocessOptions | undefined, file: string): ImagePreprocess {
  const o = options ?? {}
  for (const key of Object.keys(o)) {
    if (!(IMAGE_PREPROCESS_KEYS as readonly string[]).includes(key)) {
      const near = closeMatch(key, IMAGE_PREPROCESS_KEYS)
      fail(file, input, `unknown preprocess option "${key}"${near ? ` (did you mean "${near}"?)` : ''}; the options are ${IMAGE_PREPROCESS_KEYS.join(', ')}`)
    }
  }
  const shape = input.shape
  if (shape !== undefined && shape.length !== 4) {
    fail(file, input, `an image folder feeds a 4-d input (N, C, H, W or N, H, W, C) but the model's input is ${describeInput(input)}`)
  }
  const at = (i: number): number | undefined => (typeof shape?.[i] === 'number' && (shape[i] as number) > 0 ? (shape[i] as number) : undefined)
  const isChannels = (d: number | undefined): boolean => d === 1 || d === 3
  const layout = oneOf(o.layout, ['nchw', 'nhwc'] as const, 'layout', file, input) ??
    (isChannels(at(1)) ? 'nchw' : isChannels(at(3)) ? 'nhwc' : 'nchw')
  const [ci, hi, wi] = layout === 'nchw' ? [1, 2, 3] : [3, 1, 2]
  const c = at(ci)
  if (c !== undefined && !isChannels(c)) {
    fail(file, input, `input ${describeInput(input)} has ${c} channels in ${layout.toUpperCase()} layout; images give 1 (grayscale) or 3 (colour)${o.layout === undefined ? '' : '; check preprocess.layout'}`)
  }
  const channels = (c ?? 3) as 1 | 3

  const modelType = feedType(input.elemType)
  if (modelType !== undefined && modelType !== 'float32' && modelType !== 'uint8') {
    fail(file, input, `images become float32 or uint8 tensors but input ${describeInput(input)} is ${modelType}`)
  }
  const dtype = oneOf(o.dtype, ['float32', 'uint8'] as const, 'dtype', file, input) ?? (modelType as 'float32' | 'uint8' | undefined) ?? 'float32'
  if (modelType !== undefined && dtype !== modelType) {
    fail(file, input, `preprocess.dtype is '${dtype}' but input ${describeInput(input)} is ${modelType}`)
  }
  if (dtype === 'uint8' && (o.mean !== undefined || o.std !== undefined || o.scale !== undefined)) {
    fail(file, input, 'mean, std and scale apply to float32 inputs; a uint8 input takes raw pixels')
  }
  if (o.scale !== undefined && (typeof o.scale !== 'number' || !Number.isFinite(o.scale) || o.scale === 0)) {
    fail(file, input, `preprocess.scale must be a non-zero number, got ${JSON.stringify(o.scale)}`)
  }

  const height = at(hi)
  const width = at(wi)
  let resize: ResizePlan | undefined
  let crop: [number, number] | undefined
  if (o.resize !== undefined) {
    resize = typeof o.resize === 'number' && Number.isInteger(o.resize) && o.resize > 0
      ? { mode: 'shorter', size: o.resize }
      : (([h, w]) => ({ mode: 'exact' as const, height: h, width: w }))(size2(o.resize, 'resize', file, input))
  }
  if (o.centerCrop !== undefined) crop = size2(o.centerCrop, 'centerCrop', file, input)
  if (height !== undefined && width !== undefined) {
    if (resize === undefined && crop === undefined) resize = { mode: 'cover', height, width }
    if (crop === undefined && !(resize?.mode === 'exact' && resize.height === height && resize.width === width)) crop = [height, width]
  }
  // Output size known from the options: compare it with the model now rather than at the first image.
  const out = crop ?? (resize?.mode === 'exact' ? [resize.height, resize.width] : undefined)
  if (out && ((height !== undefined && out[0] !== height) || (width !== undefined && out[1] !== width))) {
    fail(file, input, `preprocessing gives ${out[0]}×${out[1]} images but input ${describeInput(input)} takes ${height ?? '?'}×${width ?? '?'}`)
  }

  return {
    resize,
    crop,
    channels,
    channelOrder: oneOf(o.channelOrder, ['rgb', 'bgr'] as const, 'channelOrder', file, input) ?? 'rgb',
    mean: perChannel(o.mean, 0, channels, 'mean', file, input),
    std: perChannel(o.std, 1, channels, 'std', file, input),
    scale: o.scale,
    layout,
    dtype,
    interpolation: oneOf(o.interpolation, ['nearest', 'bilinear', 'bicubic', 'lanczos'] as const, 'interpolation', file, input) ?? 'bilinear',
    height,
    width,
  }
}

/** Python's round(): half to even (torchvision computes crop offsets with it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** The size after resizing an image of h × w, as torchvision computes it. */
export function resizedSize(plan: ResizePlan, h: number, w: number): [number, number] {
  if (plan.mode === 'exact') return [plan.height, plan.width]
  if (plan.mode === 'shorter') {
    // torchvision _compute_resized_output_size: the long side is truncated, not rounded.
    return h <= w ? [plan.size, Math.floor((plan.size * w) / h)] : [Math.floor((plan.size * h) / w), plan.size]
  }
  if (plan.height === plan.width) return resizedSize({ mode: 'shorter', size: plan.height }, h, w)
  const s = Math.max(plan.height / h, plan.width / w)
  return [Math.max(plan.height, Math.round(h * s)), Math.max(plan.width, Math.round(w * s))]
}

/** Top-left corner of a centre crop (torchvision center_crop). */
export function cropOrigin(h: number, w: number, crop: [number, number]): [number, number] {
  return [roundHalfEven((h - crop[0]) / 2), roundHalfEven((w - crop[1]) / 2)]
}

/**
 * Per channel, the value each 0–255 pixel becomes: (v·scale − mean) / std in float32 steps, the
 * order torchvision's ToTensor + Normalize use.
 */
export function pixelTables(p: ImagePreprocess): Float32Array[] {
  const f = Math.fround
  return p.mean.map((mean, c) => {
    const t = new Float32Array(256)
    for (let v = 0; v < 256; v++) {
      const x = f(p.scale === undefined ? v / 255 : v * p.scale)
      t[v] = f(f(x - f(mean)) / f(p.std[c]!))
    }
    return t
  })
}

export function describeImagePreprocess(p: ImagePreprocess): string {
  const parts: string[] = []
  const how = ` (${p.interpolation})`
  if (p.resize?.mode === 'shorter') parts.push(`resize shorter side to ${p.resize.size}${how}`)
  else if (p.resize?.mode === 'exact') parts.push(`resize to ${p.resize.height}×${p.resize.width}${how}`)
  else if (p.resize?.mode === 'cover') parts.push(`resize to cover ${p.resize.height}×${p.resize.width}${how}`)
  if (p.crop) parts.push(`center-crop ${p.crop[0]}×${p.crop[1]}`)
  parts.push(p.channels === 1 ? 'grayscale' : p.channelOrder.toUpperCase())
  if (p.dtype === 'float32') {
    const scale = p.scale === undefined ? '/255' : `×${p.scale}`
    const trivial = p.mean.every((m) => m === 0) && p.std.every((s) => s === 1)
    parts.push(trivial ? `x${scale}` : `(x${scale} − [${p.mean.join(', ')}]) / [${p.std.join(', ')}]`)
  }
  parts.push(`${p.layout.toUpperCase()} ${p.dtype}`)
  return parts.join(', ')
}
