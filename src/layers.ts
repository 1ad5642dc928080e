// Layer kernels computed in Rust (crates/quantkit-core/src/layers/): ONNX Conv, ConvTranspose,
// Gemm and MatMul in float32, forward and backward, with ONNX's attributes and ONNX Runtime's
// padding rules (auto_pad, output_shape). The techniques (AdaRound, SeqMSE, bias correction)
// use them; they are public so that tests and users can check them against onnxruntime-node.
//
// Tensors are `{ data: Float32Array, dims }` (NCHW). 1-D convolutions take [N, C, L].
// Results are float32 sums in a different order than ORT's MLAS kernels: expect differences of a
// few ulps of the output's largest magnitude, not bit equality.
//
// The async variants run on the libuv thread pool and borrow their input arrays without copying:
// do not write to, transfer or detach an input until the promise settles. `threads` runs the call
// on a rayon pool of that size (1 = on one thread); by default rayon's global pool is used.
import { callNative, callNativeAsync, native } from './native.js'

export interface Float32Tensor {
  data: Float32Array
  dims: readonly number[]
}

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID'

/** Conv's attributes (ONNX names, camelCase). Absent values take ONNX's defaults. */
export interface ConvAttributes {
  strides?: readonly number[]
  /** [x1_begin, x2_begin, …, x1_end, x2_end, …] */
  pads?: readonly number[]
  dilations?: readonly number[]
  group?: number
  autoPad?: AutoPad
  /** Checked against the weight's spatial shape when given. */
  kernelShape?: readonly number[]
}

export interface ConvTransposeAttributes extends ConvAttributes {
  outputPadding?: readonly number[]
  /** Spatial output sizes (or the full [N, M, …] shape); pads are then computed from it. */
  outputShape?: readonly number[]
}

export interface GemmAttributes {
  alpha?: number
  beta?: number
  transA?: boolean
  transB?: boolean
}

export interface LayerOptions {
  /** Threads for this call (a rayon pool of this size); default: quantkit's global pool. */
  threads?: number
}

export interface AsyncLayerOptions extends LayerOptions {
  signal?: AbortSignal
}

/** Which gradients to compute; each defaults to true. */
export interface GradientOptions extends LayerOptions {
  input?: boolean
  weight?: boolean
  bias?: boolean
}

export interface AsyncGradientOptions extends GradientOptions {
  signal?: AbortSignal
}

/** Conv / ConvTranspose gradients: dx (input), dw (weight), db (bias); absent when not asked. */
export interface ConvGradients {
  dx?: Float32Array
  dw?: Float32Array
  db?: Float32Array
}

/** Gemm / MatMul gradients: da, db (B, the weight), dc (C, Gemm only). */
export interface GemmGradients {
  da?: Float32Array
  db?: Float32Array
  dc?: Float32Array
}

type NativeOutput = { data: Float32Array; shape: number[] }
type NativeGradients = { dInput?: Float32Array | null; dWeight?: Float32Array | null; dBias?: Float32Array | null }

// Typed arrays are recognised by their tag, not `instanceof` (arrays from another realm pass).
function tag(v: unknown): string | undefined {
  return ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object'
  return typeof v
}

function checkDims(dims: unknown, name: string): number[] {
  if (!Array.isArray(dims)) throw new TypeError(`${name}.dims: expected an array of non-negative integers, got ${describe(dims)}`)
  dims.forEach((d, i) => {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) throw new TypeError(`${name}.dims[${i}]: expected a non-negative integer, got ${String(d)}`)
  })
  return dims as number[]
}

function checkTensor(t: unknown, name: string): { data: Float32Array; dims: number[] } {
  if (typeof t !== 'object' || t === null) throw new TypeError(`${name}: expected { data: Float32Array, dims }, got ${describe(t)}`)
  const { data, dims } = t as Float32Tensor
  if (tag(data) !== 'Float32Array') throw new TypeError(`${name}.data: expected a Float32Array, got ${describe(data)}`)
  const d = checkDims(dims, name)
  const n = d.reduce((a, b) => a * b, 1)
  if (n !== data.length) throw new TypeError(`${name}: dims [${d.join(', ')}] hold ${n} elements but data has ${data.length}`)
  return { data, dims: d }
}

function checkData(data: unknown, name: string): Float32Array {
  if (tag(data) !== 'Float32Array') throw new TypeError(`${name}: expected a Float32Array, got ${describe(data)}`)
  return data as Float32Array
}

function intList(v: unknown, name: string, min: number): number[] | undefined {
  if (v === undefined) return undefined
  if (!Array.isArray(v)) throw new TypeError(`${name}: expected an array of integers, got ${describe(v)}`)
  v.forEach((x, i) => {
    if (!Number.isInteger(x)) throw new TypeError(`${name}[${i}]: expected an integer, got ${String(x)}`)
    if (x < min || x > 0xffffffff) throw new RangeError(`${name}[${i}]: expected an integer ≥ ${min}, got ${x}`)
  })
  return [...(v as number[])]
}

const AUTO_PADS: readonly string[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID']

interface NativeConvAttrs {
  strides?: number[]; pads?: number[]; dilations?: number[]; group?: number; autoPad?: string
  kernelShape?: number[]; outputPadding?: number[]; outputShape?: number[]
}

function convAttrs(a: ConvTransposeAttributes | undefined, transpose: boolean): NativeConvAttrs {
  const attrs = a ?? {}
  if (typeof attrs !== 'object') throw new TypeError(`attributes: expected an object, got ${describe(attrs)}`)
  if (!transpose) {
    for (const key of ['outputPadding', 'outputShape'] as const) {
      if ((attrs as ConvTransposeAttributes)[key] !== undefined) throw new TypeError(`attributes.${key}: Conv has no such attribute (ConvTranspose has)`)
    }
  }
  const group = attrs.group
  if (group !== undefined && (!Number.isInteger(group) || group < 1)) throw new RangeError(`attributes.group: expected a positive integer, got ${String(group)}`)
  if (attrs.autoPad !== undefined && !AUTO_PADS.includes(attrs.autoPad)) {
    throw new RangeError(`attributes.autoPad: expected one of ${AUTO_PADS.join(', ')}, got ${JSON.stringify(attrs.autoPad)}`)
  }
  return {
    strides: intList(attrs.strides, 'attributes.strides', 1),
    pads: intList(attrs.pads, 'attributes.pads', 0),
    dilations: intList(attrs.dilations, 'attributes.dilations', 1),
    group,
    autoPad: attrs.autoPad,
    kernelShape: intList(attrs.kernelShape, 'attributes.kernelShape', 1),
    outputPadding: intList(attrs.outputPadding, 'attributes.outputPadding', 0),
    outputShape: intList(attrs.outputShape, 'attributes.outputShape', 1),
  }
}

function gemmAttrs(a: GemmAttributes | undefined): GemmAttributes {
  const attrs = a ?? {}
  for (const key of ['alpha', 'beta'] as const) {
    const v = attrs[key]
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v))) throw new TypeError(`attributes.${key}: expected a finite number, got ${String(v)}`)
  }
  for (const key of ['transA', 'transB'] as const) {
    const v = attrs[key]
    if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`attributes.${key}: expected a boolean, got ${String(v)}`)
  }
  return { alpha: attrs.alpha, beta: attrs.beta, transA: attrs.transA, transB: attrs.transB }
}

function threadsOf(opts: LayerOptions | undefined): number | undefined {
  const t = opts?.threads
  if (t === undefined) return undefined
  if (!Number.isInteger(t) || t < 1 || t > 1024) throw new RangeError(`opts.threads: expected an integer from 1 to 1024, got ${String(t)}`)
  return t
}

function want(opts: GradientOptions | undefined) {
  const w = { input: opts?.input, weight: opts?.weight, bias: opts?.bias }
  for (const [k, v] of Object.entries(w)) {
    if (v !== undefined && typeof v !== 'boolean') throw new TypeError(`opts.${k}: expected a boolean, got ${String(v)}`)
  }
  return w
}

function tensor(o: NativeOutput): Float32Tensor {
  return { data: o.data, dims: o.shape }
}

function convGrads(g: NativeGradients): ConvGradients {
  const out: ConvGradients = {}
  if (g.dInput) out.dx = g.dInput
  if (g.dWeight) out.dw = g.dWeight
  if (g.dBias) out.db = g.dBias
  return out
}

function gemmGrads(g: NativeGradients): GemmGradients {
  const out: GemmGradients = {}
  if (g.dInput) out.da = g.dInput
  if (g.dWeight) out.db = g.dWeight
  if (g.dBias) out.dc = g.dBias
  return out
}

function optionalTensor(t: unknown, name: string) {
  return t === undefined || t === null ? undefined : checkTensor(t, name)
}

export const layers = {
  /** ONNX Conv: x [N, C, (H,) W], w [M, C/group, (kh,) kw], bias [M]. */
  conv(x: Float32Tensor, w: Float32Tensor, bias?: Float32Array, attributes?: ConvAttributes, opts?: LayerOptions): Float32Tensor {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const b = bias === undefined ? undefined : checkData(bias, 'bias')
    const a = convAttrs(attributes, false)
    const t = threadsOf(opts)
    return tensor(callNative(() => native.layerConv(cx.data, cx.dims, cw.data, cw.dims, b, a, t)))
  },

  async convAsync(x: Float32Tensor, w: Float32Tensor, bias?: Float32Array, attributes?: ConvAttributes, opts: AsyncLayerOptions = {}): Promise<Float32Tensor> {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const b = bias === undefined ? undefined : checkData(bias, 'bias')
    const a = convAttrs(attributes, false)
    const t = threadsOf(opts)
    return tensor((await callNativeAsync(() => native.layerConvAsync(cx.data, cx.dims, cw.data, cw.dims, b, a, t, opts.signal))) as NativeOutput)
  },

  /** Gradients of a loss given dy = ∂L/∂y (y's shape), at x and w. */
  convBackward(x: Float32Tensor, w: Float32Tensor, dy: Float32Array, attributes?: ConvAttributes, opts?: GradientOptions): ConvGradients {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const d = checkData(dy, 'dy')
    const a = convAttrs(attributes, false)
    const t = threadsOf(opts)
    return convGrads(callNative(() => native.layerConvBackward(cx.data, cx.dims, cw.data, cw.dims, d, a, want(opts), t)))
  },

  async convBackwardAsync(x: Float32Tensor, w: Float32Tensor, dy: Float32Array, attributes?: ConvAttributes, opts: AsyncGradientOptions = {}): Promise<ConvGradients> {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const d = checkData(dy, 'dy')
    const a = convAttrs(attributes, false)
    const t = threadsOf(opts)
    return convGrads((await callNativeAsync(() => native.layerConvBackwardAsync(cx.data, cx.dims, cw.data, cw.dims, d, a, want(opts), t, opts.signal))) as NativeGradients)
  },

  /** ONNX ConvTranspose: x [N, C, (H,) W], w [C, M/group, (kh,) kw], bias [M]. */
  convTranspose(x: Float32Tensor, w: Float32Tensor, bias?: Float32Array, attributes?: ConvTransposeAttributes, opts?: LayerOptions): Float32Tensor {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const b = bias === undefined ? undefined : checkData(bias, 'bias')
    const a = convAttrs(attributes, true)
    const t = threadsOf(opts)
    return tensor(callNative(() => native.layerConvTranspose(cx.data, cx.dims, cw.data, cw.dims, b, a, t)))
  },

  async convTransposeAsync(x: Float32Tensor, w: Float32Tensor, bias?: Float32Array, attributes?: ConvTransposeAttributes, opts: AsyncLayerOptions = {}): Promise<Float32Tensor> {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const b = bias === undefined ? undefined : checkData(bias, 'bias')
    const a = convAttrs(attributes, true)
    const t = threadsOf(opts)
    return tensor((await callNativeAsync(() => native.layerConvTransposeAsync(cx.data, cx.dims, cw.data, cw.dims, b, a, t, opts.signal))) as NativeOutput)
  },

  convTransposeBackward(x: Float32Tensor, w: Float32Tensor, dy: Float32Array, attributes?: ConvTransposeAttributes, opts?: GradientOptions): ConvGradients {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const d = checkData(dy, 'dy')
    const a = convAttrs(attributes, true)
    const t = threadsOf(opts)
    return convGrads(callNative(() => native.layerConvTransposeBackward(cx.data, cx.dims, cw.data, cw.dims, d, a, want(opts), t)))
  },

  async convTransposeBackwardAsync(x: Float32Tensor, w: Float32Tensor, dy: Float32Array, attributes?: ConvTransposeAttributes, opts: AsyncGradientOptions = {}): Promise<ConvGradients> {
    const [cx, cw] = [checkTensor(x, 'x'), checkTensor(w, 'w')]
    const d = checkData(dy, 'dy')
    const a = convAttrs(attributes, true)
    const t = threadsOf(opts)
    return convGrads((await callNativeAsync(() => native.layerConvTransposeBackwardAsync(cx.data, cx.dims, cw.data, cw.dims, d, a, want(opts), t, opts.signal))) as NativeGradients)
  },

  /** ONNX Gemm: Y = alpha·A'·B' + beta·C (C broadcasts to [M, N]). */
  gemm(a: Float32Tensor, b: Float32Tensor, c?: Float32Tensor, attributes?: GemmAttributes, opts?: LayerOptions): Float32Tensor {
    const [ca, cb, cc] = [checkTensor(a, 'a'), checkTensor(b, 'b'), optionalTensor(c, 'c')]
    const at = gemmAttrs(attributes)
    const t = threadsOf(opts)
    return tensor(callNative(() => native.layerGemm(ca.data, ca.dims, cb.data, cb.dims, cc?.data, cc?.dims, at, t)))
  },

  async gemmAsync(a: Float32Tensor, b: Float32Tensor, c?: Float32Tensor, attributes?: GemmAttributes, opts: AsyncLayerOptions = {}): Promise<Float32Tensor> {
    const [ca, cb, cc] = [checkTensor(a, 'a'), checkTensor(b, 'b'), optionalTensor(c, 'c')]
    const at = gemmAttrs(attributes)
    const t = threadsOf(opts)
    return tensor((await callNativeAsync(() => native.layerGemmAsync(ca.data, ca.dims, cb.data, cb.dims, cc?.data, cc?.dims, at, t, opts.signal))) as NativeOutput)
  },

  /** `cDims`: C's shape when the Gemm has a C (for dc); dy has Y's shape [M, N]. */
  gemmBackward(a: Float32Tensor, b: Float32Tensor, cDims: readonly number[] | undefined, dy: Float32Array, attributes?: GemmAttributes, opts?: GradientOptions): GemmGradients {
    const [ca, cb] = [checkTensor(a, 'a'), checkTensor(b, 'b')]
    const cd = cDims === undefined ? undefined : checkDims(cDims, 'c')
    const d = checkData(dy, 'dy')
    const at = gemmAttrs(attributes)
    const t = threadsOf(opts)
    return gemmGrads(callNative(() => native.layerGemmBackward(ca.data, ca.dims, cb.data, cb.dims, cd, d, at, want(opts), t)))
  },

  async gemmBackwardAsync(a: Float32Tensor, b: Float32Tensor, cDims: readonly number[] | undefined, dy: Float32Array, attributes?: GemmAttributes, opts: AsyncGradientOptions = {}): Promise<GemmGradients> {
    const [ca, cb] = [checkTensor(a, 'a'), checkTensor(b, 'b')]
    const cd = cDims === undefined ? undefined : checkDims(cDims, 'c')
    const d = checkData(dy, 'dy')
    const at = gemmAttrs(attributes)
    const t = threadsOf(opts)
    return gemmGrads((await callNativeAsync(() => native.layerGemmBackwardAsync(ca.data, ca.dims, cb.data, cb.dims, cd, d, at, want(opts), t, opts.signal))) as NativeGradients)
  },

  /** ONNX MatMul (numpy semantics: batch dimensions broadcast; 1-D operands are vectors). */
  matmul(a: Float32Tensor, b: Float32Tensor, opts?: LayerOptions): Float32Tensor {
    const [ca, cb] = [checkTensor(a, 'a'), checkTensor(b, 'b')]
    const t = threadsOf(opts)
    return tensor(callNative(() => native.layerMatmul(ca.data, ca.dims, cb.data, cb.dims, t)))
  },

  async matmulAsync(a: Float32Tensor, b: Float32Tensor, opts: AsyncLayerOptions = {}): Promise<Float32Tensor> {
    const [ca, cb] = [checkTensor(a, 'a'), checkTensor(b, 'b')]
    const t = threadsOf(opts)
    return tensor((await callNativeAsync(() => native.layerMatmulAsync(ca.data, ca.dims, cb.data, cb.dims, t, opts.signal))) as NativeOutput)
  },

  matmulBackward(a: Float32Tensor, b: Float32Tensor, dy: Float32Array, opts?: GradientOptions): GemmGradients {
    const [ca, cb] = [checkTensor(a, 'a'), checkTensor(b, 'b')]
    const d = checkData(dy, 'dy')
    const t = threadsOf(opts)
    return gemmGrads(callNative(() => native.layerMatmulBackward(ca.data, ca.dims, cb.data, cb.dims, d, want(opts), t)))
  },

  async matmulBackwardAsync(a: Float32Tensor, b: Float32Tensor, dy: Float32Array, opts: AsyncGradientOptions = {}): Promise<GemmGradients> {
    const [ca, cb] = [checkTensor(a, 'a'), checkTensor(b, 'b')]
    const d = checkData(dy, 'dy')
    const t = threadsOf(opts)
    return gemmGrads((await callNativeAsync(() => native.layerMatmulBackwardAsync(ca.data, ca.dims, cb.data, cb.dims, d, want(opts), t, opts.signal))) as NativeGradients)
  },
}
