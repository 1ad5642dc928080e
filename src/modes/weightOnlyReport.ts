// What quantizeWeights reports: per rewritten layer, the nodes left in float and why, and totals.
import type { GptqLayerStats } from './gptq.js'

/** One rewritten MatMul/Gemm/Gather. */
export interface WeightOnlyLayer {
  /** The node's name (`<opType>_<index>` when it has none). */
  node: string
  opType: 'MatMul' | 'Gemm' | 'Gather'
  /** The float initializer that was quantized. */
  weight: string
  /**
   * [K, N]: K the reduction axis the blocks run along, N the output columns. For a Gather, [D, V]:
   * the blocks run along a row of the table [V, D] (and `transposed` is true).
   */
  shape: [number, number]
  /** The initializer was [N, K] (Gemm transB=1). */
  transposed: boolean
  bits: 4 | 8
  blockSize: number
  symmetric: boolean
  /** Zero rows added to complete the last block (MatMulNBits stores whole blocks). */
  paddedRows: number
  /** float32 bytes of the weight (0 when another node's entry already counted a shared weight). */
  bytesBefore: number
  /** Bytes of the quantized weight, scales and zero points (0 for a shared weight counted elsewhere). */
  bytesAfter: number
  /** 10·log10(Σw² / Σ(w − ŵ)²) of the weight, in dB. */
  sqnrDb: number
  /** algorithm 'gptq': what the solve measured (output error against round-to-nearest's, time). */
  gptq?: GptqLayerStats
  /** The weight is shared with a layer listed earlier. */
  sharedWeight?: boolean
  /** How a Gemm's C was kept. */
  bias?: string
}

export interface WeightOnlySkip {
  node: string
  opType: string
  reason: string
}

export interface WeightOnlyReport {
  format: 'matmulnbits' | 'qdq'
  /** How weights were rounded: 'rtn' (nearest) or 'gptq'. */
  algorithm: 'rtn' | 'gptq'
  bits: 4 | 8
  blockSize: number
  symmetric: boolean
  /** ai.onnx opset before and after ('qdq' upgrades to 21). */
  opsetBefore: number
  opsetAfter: number
  layers: WeightOnlyLayer[]
  skipped: WeightOnlySkip[]
  totals: {
    layers: number
    skipped: number
    weightBytesBefore: number
    weightBytesAfter: number
    /** weightBytesBefore / weightBytesAfter. */
    compression: number
    minSqnrDb: number
  }
  notes: string[]
}
