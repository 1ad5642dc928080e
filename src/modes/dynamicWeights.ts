// The int8 weights of dynamic quantization: symmetric, zero point 0, grid [−127, 127] (ONNX
// Runtime's quantizer uses the same restricted range for symmetric int8 weights), one scale per
// output channel or one per tensor. The scales are the encodings of the weight's QuantSim
// parameter quantizer (strict symmetric int8, quantizeDynamic.ts): scale = max|w| / 127 over the
// channel, at least AIMET's minimum scale 2^−23 (an all-zero channel's codes are all 0). Codes come
// from the Rust affine kernels (divide by scale, round half to even, saturate) and a Gemm's
// transB codes are transposed in Rust, so no loop here touches the weight's elements.
import { affine } from '../affine.js'
import { compareTensors } from '../metrics.js'
import { callNative, native } from '../native.js'
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

/** Why a weight cannot be quantized (NaN or ±inf), or undefined: one Rust pass (the observer rejects non-finite data). */
export async function nonFiniteWeight(w: Float32Array, signal?: AbortSignal): Promise<string | undefined> {
  try {
    await new MinMaxObserver().updateAsync(w, [w.length], signal ? { signal } : {})
    return undefined
  } catch (err) {
    if (signal?.aborted) throw err
    return 'the weight holds NaN or ±inf'
  }
}

/** Codes one weight with the scales its sim quantizer holds (one per channel, or one). */
export async function quantizeInt8Weight(w: Float32Array, o: Int8WeightOptions & { scales: Float32Array }): Promise<Int8Weight> {
  const shape = [...o.shape]
  const { scales } = o
  const axisOpts = o.perChannel ? { shape, axis: o.channelAxis } : { shape }
  // affine's offset is AIMET's (−zero point): 0 for int8, −128 for the shifted uint8 codes.
  const [offset, qmin, qmax] = o.unsigned ? [-128, 128 - WEIGHT_QMAX, 128 + WEIGHT_QMAX] : [0, -WEIGHT_QMAX, WEIGHT_QMAX]
  const q = await affine.quantizeAsync(w, scales, offset, qmin, qmax, { ...axisOpts, ...(o.signal ? { signal: o.signal } : {}) })
  const back = await affine.dequantizeAsync(q, scales, offset, axisOpts)
  const sqnrDb = compareTensors(w, back).sqnrDb
  let codes = (o.unsigned ? toUint8(q) : toInt8(q))
  if (o.transpose) {
    const t = callNative(() => native.transposeBytes(new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength), shape[0]!, shape[1]!))
    codes = new Int8Array(t.buffer, t.byteOffset, t.byteLength)
  }
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
