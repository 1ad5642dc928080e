// Block-wise weight-only quantization of one MatMul weight W [K, N], computed in Rust
// (crates/quantkit-core/src/nbits.rs, which documents the numbers and both layouts):
// - 'matmulnbits': ONNX Runtime's com.microsoft.MatMulNBits inputs: B uint8 [N, nb, blob],
//   scales [N·nb], zero points packed per column (absent when symmetric).
// - 'qdq': opset-21 blocked DequantizeLinear inputs (axis 0): W as INT4/UINT4 (packed two per
//   byte, low nibble first) or INT8/UINT8 [K, N], scales [nb, N], zero points [nb, N].
// nb = ceil(K / blockSize). The async call borrows `w` without copying: do not write to it until
// the promise settles (quantizeWeights passes initializers, which transforms never mutate).
import { callNative, callNativeAsync, native } from '../native.js'

export type WeightFormat = 'matmulnbits' | 'qdq'
export type WeightBits = 4 | 8

export interface NbitsOptions {
  bits: WeightBits
  /** Power of two, 16 to 256. */
  blockSize: number
  symmetric: boolean
  format: WeightFormat
  /** `w` is stored [N, K] (a Gemm's B with transB=1); default false. */
  transposed?: boolean
  signal?: AbortSignal
}

export interface NbitsWeights {
  data: Uint8Array
  scales: Float32Array
  /** Absent when symmetric. */
  zeroPoints?: Uint8Array
  /** 10·log10(Σw² / Σ(w − ŵ)²); Infinity when exact. */
  sqnrDb: number
}

export interface MatMulNBitsUnpacked {
  /** [K, N] unsigned codes, 0 … 2^bits − 1. */
  codes: Uint8Array
  /** [nb, N]. */
  scales: Float32Array
  /** [nb, N]; 2^(bits−1) everywhere when the packed zero points were absent. */
  zeroPoints: Uint8Array
}

export interface MatMulNBitsShape {
  k: number
  n: number
  bits: WeightBits
  blockSize: number
}

function checkShape(k: number, n: number, bits: number, blockSize: number): void {
  for (const [name, v] of [['k', k], ['n', n]] as const) {
    if (!Number.isInteger(v) || v < 1 || v > 0xffffffff) throw new RangeError(`${name}: expected a positive integer, got ${v}`)
  }
  if (bits !== 4 && bits !== 8) throw new RangeError(`bits: expected 4 or 8, got ${bits}`)
  if (!Number.isInteger(blockSize) || blockSize < 16 || blockSize > 256 || (blockSize & (blockSize - 1)) !== 0) {
    throw new RangeError(`blockSize: expected a power of two from 16 to 256, got ${blockSize}`)
  }
}

/** Quantizes W [K, N] (row-major float32; [N, K] with `transposed`) into the chosen layout, on the libuv thread pool. */
export async function quantizeNbits(w: Float32Array, k: number, n: number, opts: NbitsOptions): Promise<NbitsWeights> {
  checkShape(k, n, opts.bits, opts.blockSize)
  if (w.length !== k * n) throw new TypeError(`w: has ${w.length} elements, expected K·N = ${k}·${n}`)
  const r = (await callNativeAsync(() =>
    native.nbitsQuantizeAsync(w, k, n, opts.transposed ?? false, opts.bits, opts.blockSize, opts.symmetric, opts.format, opts.signal))) as {
    data: Uint8Array
    scales: Float32Array
    zeroPoints?: Uint8Array | null
    sqnrDb: number
  }
  return { data: r.data, scales: r.scales, ...(r.zeroPoints ? { zeroPoints: r.zeroPoints } : {}), sqnrDb: r.sqnrDb }
}

/** MatMulNBits' B, scales and zero points back to codes and per-block parameters (for checks and tests). */
export function unpackMatMulNBits(b: Uint8Array, scales: Float32Array, zeroPoints: Uint8Array | undefined, shape: MatMulNBitsShape): MatMulNBitsUnpacked {
  checkShape(shape.k, shape.n, shape.bits, shape.blockSize)
  return callNative(() => native.nbitsUnpackMatmul(b, scales, zeroPoints ?? null, shape.k, shape.n, shape.bits, shape.blockSize))
}
