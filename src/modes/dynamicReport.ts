// What quantizeDynamic reports: per layer, whether it was quantized or left in float and why, the
// nodes it did not touch, and what the quality check on data found (or that there was none).
import type { DynamicOpType } from './dynamicOps.js'

export type DynamicFormat = 'fused' | 'standard'

/** One MatMul/Gemm/Conv whose weight was quantized (whether or not it stayed quantized). */
export interface DynamicLayer {
  /** The node's name (`<opType>_<index>` when it has none). */
  node: string
  opType: DynamicOpType
  /** The float initializer that was quantized. */
  weight: string
  /** The weight's shape as stored in the input model. */
  shape: number[]
  /** Stored [N, K] (Gemm transB=1) and transposed to [K, N] for the integer product. */
  transposed: boolean
  perChannel: boolean
  /** What the rewrite is: 'DynamicQuantizeMatMul', 'MatMulInteger' or 'ConvInteger'. */
  kernel: 'DynamicQuantizeMatMul' | 'MatMulInteger' | 'ConvInteger'
  /** 10·log10(Σw² / Σ(w − ŵ)²) of the int8 weight, in dB. */
  weightSqnrDb: number
  /**
   * With data: SQNR in dB of this layer's output when it alone is quantized and reads the float
   * model's own input activation (the per-layer measure the fallback ranks by).
   */
  layerSqnrDb?: number
  /** false when the quality check left the layer in float (see `keptFloat`). */
  quantized: boolean
  /** float32 bytes of the weight (0 when another layer's entry counted a shared weight). */
  bytesBefore: number
  /** int8 weight and scales (0 for a shared weight counted elsewhere, or a layer kept float). */
  bytesAfter: number
  sharedWeight?: boolean
  /** How a bias (Gemm's C, Conv's B) was kept. */
  bias?: string
}

/** A layer the quality check put back to float. */
export interface DynamicFloatLayer {
  node: string
  opType: DynamicOpType
  layerSqnrDb: number
  reason: string
}

export interface DynamicSkip {
  node: string
  opType: string
  reason: string
}

/** One evaluation of a candidate model in the fallback search. */
export interface DynamicQualityStep {
  /** How many layers (the worst by layerSqnrDb first) were left in float. */
  floatLayers: number
  /** The lowest SQNR over the float32 outputs, in dB. */
  sqnrDb: number
}

export type DynamicQuality =
  | { checked: false; reason: string }
  | {
    checked: true
    samples: number
    batches: number
    /** The threshold the lowest output SQNR had to reach. */
    minSqnrDb: number
    /** Every quantizable layer quantized. */
    allQuantized: { sqnrDb: number; outputs: { output: string; sqnrDb: number }[]; top1Agreement?: number }
    /** The model returned. */
    final: { sqnrDb: number; outputs: { output: string; sqnrDb: number }[]; top1Agreement?: number }
    passed: boolean
    steps: DynamicQualityStep[]
  }

export interface DynamicReport {
  format: DynamicFormat
  perChannel: boolean
  ops: DynamicOpType[]
  opsetBefore: number
  opsetAfter: number
  layers: DynamicLayer[]
  /** Layers the quality check left in float, worst first, each with why. */
  keptFloat: DynamicFloatLayer[]
  skipped: DynamicSkip[]
  quality: DynamicQuality
  totals: {
    /** Layers whose weight could be quantized. */
    layers: number
    quantized: number
    keptFloat: number
    skipped: number
    weightBytesBefore: number
    weightBytesAfter: number
  }
  notes: string[]
}
