// The int8 weights of dynamic quantization: symmetric, zero point 0, grid [−127, 127] (ONNX
// Runtime's quantizer uses the same restricted range for symmetric int8 weights), one scale per
// output channel or one per tensor. scale = max|w| / 127 over the channel (1 for an all-zero
// channel, whose codes are all 0). Ranges come from the Rust MinMaxObserver and codes from the
// Rust affine kernels (divide by scale, round half to even, saturate), so no loop here touches
// the weight's elements except the byte transpose of a Gemm's transB weight.
import { affine } from '../affine.js'
import { compareTensors } from '../metrics.js'
import { MinMaxObserver } from '../observers.js'

export const WEIGHT_QMAX = 127

export interface Int8Weight {
  /** Codes in the layout the integer op reads: [K, N] for a product, the stored shape for Conv. */
  codes: Int8Array | Uint8Array
  /** One per output channel (per-channel) or one. */
  scales: Float32Array
  /** 10·log10(Σw² / Σ(w − ŵ)²). */
  sqnrDb: number
}

export interface Int8WeightOptions {
  /** The weight's stored shape. */
  shape: readonly number[]
  /** The output-channel axis of the stored weight: 1 for MatMul [K, N], 0 for Gemm transB [N, K] and Conv [M, …]. */
  channelAxis: number
  perChannel: boolean
  /** Transpose a stored [N, K] to [K, N] after quantizing (Gemm transB=1). */
  transpose: boolean
  /**
   * Codes as uint8 with zero point 128 instead of int8 with zero point 0 (ONNX Runtime's CPU
   * ConvInteger has no int8-weight kernel). Same grid, shifted: code + 128.
   */
  unsigned: boolean
  signal?: AbortSignal
}

/** Scales from per-channel (or per-tensor) ranges; null when the weight holds NaN or ±inf. */
function scalesFrom(min: readonly number[], max: readonly number[]): Float32Array | null {
  const s = new Float32Array(min.length)
  for (let i = 0; i < min.length; i++) {
    const absmax = Math.max(-min[i]!, max[i]!)
    if (!Number.isFinite(absmax)) return null
    s[i] = absmax > 0 ? Math.fround(absmax / WEIGHT_QMAX) : 1
    // absmax / 127 below float32's smallest normal: keep the scale positive.
    if (!(s[i]! > 0)) s[i] = 1
  }
  return s
}

/** Quantizes one weight; returns null (with the reason) when it cannot be. */
export async function quantizeInt8Weight(w: Float32Array, o: Int8WeightOptions): Promise<Int8Weight | { skip: string }> {
  const shape = [...o.shape]
  const observer = new MinMaxObserver(o.perChannel ? { axis: o.channelAxis } : {})
  await observer.updateAsync(w, shape, o.signal ? { signal: o.signal } : {})
  const scales = scalesFrom(observer.min, observer.max)
  if (!scales) return { skip: 'the weight holds NaN or ±inf' }
  const axisOpts = o.perChannel ? { shape, axis: o.channelAxis } : { shape }
  // affine's offset is AIMET's (−zero point): 0 for int8, −128 for the shifted uint8 codes.
  const [offset, qmin, qmax] = o.unsigned ? [-128, 128 - WEIGHT_QMAX, 128 + WEIGHT_QMAX] : [0, -WEIGHT_QMAX, WEIGHT_QMAX]
  const q = await affine.quantizeAsync(w, scales, offset, qmin, qmax, { ...axisOpts, ...(o.signal ? { signal: o.signal } : {}) })
  const back = await affine.dequantizeAsync(q, scales, offset, axisOpts)
  const sqnrDb = compareTensors(w, back).sqnrDb
  let codes = (o.unsigned ? toUint8(q) : toInt8(q))
  if (o.transpose) codes = transpose2d(codes as Int8Array, shape[0]!, shape[1]!)
  return { codes, scales, sqnrDb }
}

function toInt8(q: ArrayBufferView): Int8Array {
  if ((q as Int8Array)[Symbol.toStringTag] === 'Int8Array') return q as Int8Array
  return Int8Array.from(q as unknown as ArrayLike<number>)
}

function toUint8(q: ArrayBufferView): Uint8Array {
  if ((q as Uint8Array)[Symbol.toStringTag] === 'Uint8Array') return q as Uint8Array
  return Uint8Array.from(q as unknown as ArrayLike<number>)
}

// A byte copy, [rows, cols] → [cols, rows]: Gemm heads with transB=1 are the only users, and
// quantkit has no Rust transpose yet (O(K·N) bytes, about a millisecond per million weights).
function transpose2d(x: Int8Array, rows: number, cols: number): Int8Array {
  const out = new Int8Array(x.length)
  for (let r = 0; r < rows; r++) {
    const row = r * cols
    for (let c = 0; c < cols; c++) out[c * rows + r] = x[row + c]!
  }
  return out
}
