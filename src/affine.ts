// Affine quantize / dequantize / fake-quant of Float32Arrays, computed in Rust.
//
// AIMET's convention: q = clamp(round(x / scale) − offset, qmin, qmax), x̂ = (q + offset) · scale.
// ONNX's zero point is −offset. Rounding is half to even and division is by `scale`, exactly as
// ONNX Runtime's QuantizeLinear computes it; NaN quantizes to qmin (ORT's kernels give the type's
// minimum), +inf to qmax, −inf to qmin, −0 to the zero point.
//
// Granularity from `opts`: per-tensor (no axis), per-channel (`axis`, one scale per index along
// it) or per-block (`axis` and `blockSize`: scale has the shape of x with dimension `axis`
// replaced by ceil(dim / blockSize), as in ONNX's blocked QuantizeLinear).
//
// The async variants run on the libuv thread pool and borrow their input arrays without copying:
// do not write to, transfer or detach an input until the promise settles.
import { callNative, callNativeAsync, native } from './native.js'

export type IntArray = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array
export type Scale = number | Float32Array | readonly number[]
export type Offset = number | Int32Array | readonly number[]

export interface AffineOptions {
  /** Shape of the data; defaults to [length]. Needed for per-channel and per-block. */
  shape?: readonly number[]
  /** Channel axis (per-channel) or blocked axis (per-block); negative counts from the end. */
  axis?: number
  /** Block size along `axis` (per-block). */
  blockSize?: number
}

export interface AsyncAffineOptions extends AffineOptions {
  signal?: AbortSignal
}

export interface QuantizeDequantizeOptions extends AffineOptions {
  /**
   * Write the result here instead of a new array; may be `x` itself (in place, the fastest form).
   * It must have x's length and must not partly overlap x.
   */
  out?: Float32Array
}

export interface AsyncQuantizeDequantizeOptions extends QuantizeDequantizeOptions {
  signal?: AbortSignal
}

interface Prepared {
  scale: Float32Array
  offset: Int32Array
  shape: number[]
  axis: number | undefined
  blockSize: number | undefined
}

// Typed arrays are recognised by their tag, not `instanceof`, so arrays from another realm
// (a vm context, a worker's transferred buffer) are accepted too.
function tag(v: unknown): string | undefined {
  return ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
}

function checkFloat32(x: unknown, name: string): asserts x is Float32Array {
  if (tag(x) !== 'Float32Array') {
    throw new TypeError(`${name}: expected a Float32Array, got ${describe(x)}`)
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object'
  return typeof v
}

function checkInteger(v: unknown, name: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    throw new TypeError(`${name}: expected an integer, got ${String(v)}`)
  }
}

function toScale(scale: Scale): Float32Array {
  if (typeof scale === 'number') {
    if (!(scale > 0) || !Number.isFinite(scale)) throw new RangeError(`scale: expected a finite number > 0, got ${scale}`)
    return Float32Array.of(scale)
  }
  if (tag(scale) === 'Float32Array') return scale as Float32Array
  if (Array.isArray(scale)) return Float32Array.from(scale as number[])
  throw new TypeError(`scale: expected a number, a Float32Array or an array of numbers, got ${describe(scale)}`)
}

function toOffset(offset: Offset): Int32Array {
  if (typeof offset === 'number') {
    checkInteger(offset, 'offset')
    return Int32Array.of(offset)
  }
  if (tag(offset) === 'Int32Array') return offset as Int32Array
  if (Array.isArray(offset)) {
    offset.forEach((v, i) => checkInteger(v, `offset[${i}]`))
    return Int32Array.from(offset as number[])
  }
  throw new TypeError(`offset: expected an integer, an Int32Array or an array of integers, got ${describe(offset)}`)
}

function prepare(length: number, scale: Scale, offset: Offset, opts: AffineOptions = {}): Prepared {
  const shape = opts.shape ? [...opts.shape] : [length]
  shape.forEach((d, i) => {
    if (!Number.isInteger(d) || d < 0) throw new TypeError(`opts.shape[${i}]: expected a non-negative integer, got ${d}`)
  })
  let axis = opts.axis
  if (axis !== undefined) {
    checkInteger(axis, 'opts.axis')
    if (axis < -shape.length || axis >= shape.length) {
      throw new RangeError(`opts.axis: ${axis} is out of range for a tensor of rank ${shape.length}`)
    }
    if (axis < 0) axis += shape.length
  }
  const blockSize = opts.blockSize
  if (blockSize !== undefined) {
    checkInteger(blockSize, 'opts.blockSize')
    if (blockSize < 1) throw new RangeError(`opts.blockSize: expected a positive integer, got ${blockSize}`)
    if (axis === undefined) throw new TypeError('opts.blockSize needs opts.axis (the dimension the blocks run along)')
  }
  const s = toScale(scale)
  if (axis === undefined && s.length !== 1) {
    throw new TypeError(`scale: ${s.length} values given for a per-tensor quantizer; pass opts.axis for per-channel or per-block`)
  }
  return { scale: s, offset: toOffset(offset), shape, axis, blockSize }
}

function intTypeName(q: unknown): string {
  const names: Record<string, string> = { Int8Array: 'int8', Uint8Array: 'uint8', Int16Array: 'int16', Uint16Array: 'uint16', Int32Array: 'int32' }
  const name = names[tag(q) ?? '']
  if (name) return name
  throw new TypeError(`q: expected an Int8Array, Uint8Array, Int16Array, Uint16Array or Int32Array, got ${describe(q)}`)
}

function bytesOf(q: IntArray): Uint8Array {
  return new Uint8Array(q.buffer, q.byteOffset, q.byteLength)
}

function checkOut(out: unknown, length: number): Float32Array | undefined {
  if (out === undefined) return undefined
  checkFloat32(out, 'opts.out')
  if (out.length !== length) throw new TypeError(`opts.out: has ${out.length} elements, expected ${length} (x's length)`)
  return out
}

function checkGrid(qmin: number, qmax: number): void {
  checkInteger(qmin, 'qmin')
  checkInteger(qmax, 'qmax')
  if (qmin > qmax) throw new RangeError(`qmin (${qmin}) must not exceed qmax (${qmax})`)
}

export const affine = {
  quantize(x: Float32Array, scale: Scale, offset: Offset, qmin: number, qmax: number, opts?: AffineOptions): IntArray {
    checkFloat32(x, 'x')
    checkGrid(qmin, qmax)
    const p = prepare(x.length, scale, offset, opts)
    return callNative(() => native.affineQuantize(x, p.scale, p.offset, qmin, qmax, p.shape, p.axis, p.blockSize)) as IntArray
  },

  dequantize(q: IntArray, scale: Scale, offset: Offset, opts?: AffineOptions): Float32Array {
    const type = intTypeName(q)
    const p = prepare(q.length, scale, offset, opts)
    return callNative(() => native.affineDequantize(bytesOf(q), type, p.scale, p.offset, p.shape, p.axis, p.blockSize))
  },

  quantizeDequantize(x: Float32Array, scale: Scale, offset: Offset, qmin: number, qmax: number, opts?: QuantizeDequantizeOptions): Float32Array {
    checkFloat32(x, 'x')
    checkGrid(qmin, qmax)
    const p = prepare(x.length, scale, offset, opts)
    const out = checkOut(opts?.out, x.length)
    if (out) {
      callNative(() => native.affineQuantizeDequantizeInto(x, out, p.scale, p.offset, qmin, qmax, p.shape, p.axis, p.blockSize))
      return out
    }
    return callNative(() => native.affineQuantizeDequantize(x, p.scale, p.offset, qmin, qmax, p.shape, p.axis, p.blockSize))
  },

  async quantizeAsync(x: Float32Array, scale: Scale, offset: Offset, qmin: number, qmax: number, opts: AsyncAffineOptions = {}): Promise<IntArray> {
    checkFloat32(x, 'x')
    checkGrid(qmin, qmax)
    const p = prepare(x.length, scale, offset, opts)
    return (await callNativeAsync(() =>
      native.affineQuantizeAsync(x, p.scale, p.offset, qmin, qmax, p.shape, p.axis, p.blockSize, opts.signal))) as IntArray
  },

  async dequantizeAsync(q: IntArray, scale: Scale, offset: Offset, opts: AsyncAffineOptions = {}): Promise<Float32Array> {
    const type = intTypeName(q)
    const p = prepare(q.length, scale, offset, opts)
    return (await callNativeAsync(() =>
      native.affineDequantizeAsync(bytesOf(q), type, p.scale, p.offset, p.shape, p.axis, p.blockSize, opts.signal))) as Float32Array
  },

  async quantizeDequantizeAsync(x: Float32Array, scale: Scale, offset: Offset, qmin: number, qmax: number, opts: AsyncQuantizeDequantizeOptions = {}): Promise<Float32Array> {
    checkFloat32(x, 'x')
    checkGrid(qmin, qmax)
    const p = prepare(x.length, scale, offset, opts)
    const out = checkOut(opts.out, x.length)
    if (out) {
      await callNativeAsync(() =>
        native.affineQuantizeDequantizeIntoAsync(x, out, p.scale, p.offset, qmin, qmax, p.shape, p.axis, p.blockSize, opts.signal))
      return out
    }
    return (await callNativeAsync(() =>
      native.affineQuantizeDequantizeAsync(x, p.scale, p.offset, qmin, qmax, p.shape, p.axis, p.blockSize, opts.signal))) as Float32Array
  },
}
