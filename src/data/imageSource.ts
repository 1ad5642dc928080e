// A folder of images (JPEG, PNG, WebP; subfolders included, sorted by path) as batches of one
// model input. sharp (libvips) decodes, drops alpha, resizes, crops, and converts channels
// (BGR order, grayscale); TypeScript only maps the resulting 8-bit pixels into the tensor.
import { readdir, stat } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import type { Sharp } from 'sharp'
import { DataSourceError } from '../errors.js'
import type { ValueInfo } from '../graph/model.js'
import type { PlainTensor } from '../sim/feeds.js'
import { planBatches } from './batchPlan.js'
import {
  cropOrigin, describeImagePreprocess, pixelTables, resizedSize, resolveImagePreprocess,
  type ImagePreprocess, type ImagePreprocessOptions,
} from './imagePreprocess.js'
import { describeInput, describeInputs, requiredInputs, staticBatch, type ModelInputs, type PlainFeeds } from './modelInputs.js'

export const IMAGE_EXTENSIONS: readonly string[] = ['.jpg', '.jpeg', '.png', '.webp']

export interface ImageSourceOptions {
  batchSize?: number
  count?: number
  preprocess?: ImagePreprocessOptions
}

export interface ImageSource {
  kind: 'images'
  count: number
  files: string[]
  preprocess: ImagePreprocess
  batches(): AsyncGenerator<PlainFeeds>
  describe(): string
}

type SharpFactory = typeof import('sharp')

let sharpModule: SharpFactory | undefined
/** sharp is loaded on first use: quantkit works without it for every other kind of data. */
function loadSharp(file: string): SharpFactory {
  if (sharpModule) return sharpModule
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    sharpModule = require('sharp') as SharpFactory
    return sharpModule
  } catch (e) {
    throw new DataSourceError(`${file}: reading images needs the 'sharp' package and its prebuilt binary for ${process.platform}-${process.arch} (@img/sharp-${process.platform}-${process.arch}); reinstall without --omit=optional, or give the data as .npy/.npz/.json: ${(e as Error).message}`, { file }, { cause: e })
  }
}

const isImage = (name: string): boolean => IMAGE_EXTENSIONS.some((ext) => name.toLowerCase().endsWith(ext))

/** Every image under `dir`, by path relative to it ('/' separators, code-point order). Dotfiles are skipped. */
export async function listImages(dir: string): Promise<{ files: string[]; others: number }> {
  const found: string[] = []
  let others = 0
  async function walk(d: string): Promise<void> {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue
      const p = join(d, entry.name)
      if (entry.isDirectory()) await walk(p)
      else if (isImage(entry.name)) found.push(relative(dir, p).split(sep).join('/'))
      else others++
    }
  }
  await walk(dir)
  found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return { files: found, others }
}

const KERNEL = { nearest: 'nearest', bilinear: 'linear', bicubic: 'cubic', lanczos: 'lanczos3' } as const
// ITU-R BT.601 luma, as PIL's convert('L') and OpenCV's RGB2GRAY weigh channels (sharp's own
// greyscale() works in linear light and gives other values). libvips truncates the result to 8 bits.
const LUMA: [number, number, number] = [0.299, 0.587, 0.114]

interface Pixels { data: Buffer; height: number; width: number }

async function decode(sharp: SharpFactory, path: string, label: string, p: ImagePreprocess, input: ValueInfo): Promise<Pixels> {
  try {
    let img: Sharp = sharp(path)
    const meta = await img.metadata()
    let h = meta.height
    let w = meta.width
    if (p.resize) {
      ;[h, w] = resizedSize(p.resize, h, w)
      img = img.resize({ width: w, height: h, fit: 'fill', kernel: KERNEL[p.interpolation] })
    }
    if (p.crop) {
      if (p.crop[0] > h || p.crop[1] > w) {
        throw new DataSourceError(`${label}: the image is ${h}×${w}${p.resize ? ' after resizing' : ''}, smaller than centerCrop ${p.crop[0]}×${p.crop[1]}`, { file: path, input: input.name })
      }
      const [top, left] = cropOrigin(h, w, p.crop)
      img = img.extract({ top, left, height: p.crop[0], width: p.crop[1] })
      ;[h, w] = p.crop
    }
    img = img.removeAlpha().toColourspace('srgb')
    if (p.channels === 1) img = img.recomb([LUMA, LUMA, LUMA]).extractChannel(0)
    else if (p.channelOrder === 'bgr') img = img.recomb([[0, 0, 1], [0, 1, 0], [1, 0, 0]])
    const { data, info } = await img.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true })
    if (info.channels !== p.channels || info.height !== h || info.width !== w) {
      throw new DataSourceError(`${label}: decoded to ${info.height}×${info.width}×${info.channels}, expected ${h}×${w}×${p.channels}`, { file: path, input: input.name })
    }
    return { data, height: h, width: w }
  } catch (e) {
    if (e instanceof DataSourceError) throw e
    throw new DataSourceError(`${label}: cannot read the image: ${(e as Error).message}`, { file: path, input: input.name }, { cause: e })
  }
}

/**
 * Writes one image into the batch tensor at sample `k`. This loop is the one pass over pixels in
 * TypeScript, for what sharp cannot do: its linear() rounds and clamps to 0–255 for 8-bit images
 * (src/operations.cc Linear: `uchar = !Is16Bit(...)`), so negative normalised values would be
 * lost, and libvips writes only interleaved (HWC) pixels, never planar (CHW).
 */
function place(px: Pixels, k: number, p: ImagePreprocess, tables: Float32Array[], out: Float32Array | Uint8Array): void {
  const c = p.channels
  const hw = px.height * px.width
  const base = k * hw * c
  const src = px.data
  if (p.dtype === 'uint8' && (p.layout === 'nhwc' || c === 1)) {
    out.set(src, base)
    return
  }
  if (p.layout === 'nhwc') {
    for (let i = 0; i < hw * c; i++) out[base + i] = tables[i % c]![src[i]!]!
    return
  }
  for (let ch = 0; ch < c; ch++) {
    const plane = base + ch * hw
    const t = tables[ch]
    if (t) for (let i = 0; i < hw; i++) out[plane + i] = t[src[i * c + ch]!]!
    else for (let i = 0; i < hw; i++) out[plane + i] = src[i * c + ch]!
  }
}

export async function openImages(path: string, model: ModelInputs, opts: ImageSourceOptions): Promise<ImageSource> {
  const req = requiredInputs(model)
  if (req.length !== 1) {
    throw new DataSourceError(`${path}: images feed one input but the model has ${req.length} (${describeInputs(model)}); use .npz, .json or a module for several inputs`, { file: path })
  }
  const input = req[0]!
  const p = resolveImagePreprocess(input, opts.preprocess, path)
  const sharp = loadSharp(path)

  const isDir = (await stat(path)).isDirectory()
  let files: string[]
  if (isDir) {
    const listed = await listImages(path)
    if (listed.files.length === 0) {
      throw new DataSourceError(`${path}: no images in this folder (looked for ${IMAGE_EXTENSIONS.join(', ')}, in subfolders too${listed.others ? `; ${listed.others} other file(s) ignored` : ''})`, { file: path, input: input.name })
    }
    files = listed.files
  } else {
    files = ['']
  }

  const fixed = staticBatch(input)
  if (fixed !== undefined && opts.batchSize !== undefined && opts.batchSize !== fixed) {
    throw new DataSourceError(`${path}: batchSize ${opts.batchSize} does not fit input ${describeInput(input)}, whose batch is fixed at ${fixed}`, { file: path, input: input.name })
  }
  const batchSize = opts.batchSize ?? fixed ?? 1
  const plan = planBatches(files.length, batchSize, fixed !== undefined, opts.count)
  if (plan.count === 0) {
    throw new DataSourceError(`${path}: ${files.length} image(s), not enough for one batch of ${batchSize} (input ${describeInput(input)})`, { file: path, input: input.name })
  }
  const used = files.slice(0, plan.count)
  const tables = p.dtype === 'float32' ? pixelTables(p) : []
  const at = (f: string): string => (f === '' ? path : join(path, f))
  const label = (f: string): string => (f === '' ? path : join(path, f))

  async function loadBatch(first: number, size: number): Promise<PlainFeeds> {
    const pixels = await Promise.all(used.slice(first, first + size).map((f) => decode(sharp, at(f), label(f), p, input)))
    const { height, width } = pixels[0]!
    pixels.forEach((px, i) => {
      const f = label(used[first + i]!)
      if ((p.height !== undefined && px.height !== p.height) || (p.width !== undefined && px.width !== p.width)) {
        throw new DataSourceError(`${f}: the image is ${px.height}×${px.width} but input ${describeInput(input)} takes ${p.height ?? '?'}×${p.width ?? '?'}; set preprocess.resize / centerCrop`, { file: at(used[first + i]!), input: input.name })
      }
      if (px.height !== height || px.width !== width) {
        throw new DataSourceError(`${f}: the image is ${px.height}×${px.width} but ${label(used[first]!)} in the same batch is ${height}×${width}; set preprocess.resize / centerCrop, or batchSize 1`, { file: at(used[first + i]!), input: input.name })
      }
    })
    const n = size * height * width * p.channels
    const data = p.dtype === 'float32' ? new Float32Array(n) : new Uint8Array(n)
    pixels.forEach((px, k) => place(px, k, p, tables, data))
    const dims: number[] = p.layout === 'nchw' ? [size, p.channels, height, width] : [size, height, width, p.channels]
    const tensor: PlainTensor = { type: p.dtype, data, dims }
    return { [input.name]: tensor }
  }

  async function* batches(): AsyncGenerator<PlainFeeds> {
    // Decode the next batch while the consumer works on this one.
    let next: Promise<PlainFeeds> | undefined
    try {
      for (let b = 0; b < plan.batches.length; b++) {
        const current = next ?? loadBatch(...plan.batches[b]!)
        const following = plan.batches[b + 1]
        next = following ? loadBatch(...following) : undefined
        next?.catch(() => {}) // awaited next time round; an abandoned one must not be an unhandled rejection
        yield await current
      }
    } finally {
      next = undefined
    }
  }

  return {
    kind: 'images',
    count: plan.count,
    files: used.map(at),
    preprocess: p,
    batches,
    describe() {
      const what = isDir ? `${path} (${used.length} of ${files.length} images)` : path
      const dropped = plan.dropped ? `; ${plan.dropped} image(s) dropped to keep batches full` : ''
      return `images: ${what} → "${input.name}": ${describeImagePreprocess(p)}; batches of ${batchSize}${dropped}`
    },
  }
}
