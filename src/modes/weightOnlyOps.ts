// Which nodes weight-only quantization rewrites, and where their weight is: one row per op type
// (adding an op is adding a row). A row looks only at the node's own inputs and attributes; the
// caller checks that the weight is a constant 2-D float32 initializer.
import { attrFloat, attrInt } from '../graph/attributes.js'
import type { Node } from '../graph/model.js'

/** The weight of a matmul-like node, seen as W [K, N] with Y = A·W (+ bias). */
export interface WeightSite {
  /** The initializer holding the weight. */
  weight: string
  /** The initializer is stored [N, K] (Gemm transB=1) and is transposed before quantizing. */
  transposed: boolean
  /** A value to add after the product (Gemm's C), with the factor beta it is scaled by. */
  bias?: { name: string; beta: number }
}

/** A site, or why the node stays as it is. */
export type SiteLookup = WeightSite | { skip: string }

export type WeightOnlyOpType = 'MatMul' | 'Gemm' | 'Gather'

/** Matmul-like ops (their weight is W [K, N] of Y = A·W); Gather has its own row below. */
export type MatmulOpType = Exclude<WeightOnlyOpType, 'Gather'>

export const WEIGHT_ONLY_OPS: Record<MatmulOpType, (node: Node) => SiteLookup> = {
  MatMul: (node) => ({ weight: node.inputs[1] ?? '', transposed: false }),

  // Y = alpha·A'·B' + beta·C. alpha ≠ 1 is left alone rather than folded into the block scales,
  // so that both output formats quantize the same numbers; transA=1 would need a Transpose of A.
  Gemm: (node) => {
    if (attrInt(node, 'transA', 0) !== 0) return { skip: 'Gemm with transA=1 (A would need a Transpose)' }
    const alpha = attrFloat(node, 'alpha', 1)
    if (alpha !== 1) return { skip: `Gemm with alpha=${alpha} (only alpha=1 is rewritten)` }
    const c = node.inputs[2]
    return {
      weight: node.inputs[1] ?? '',
      transposed: attrInt(node, 'transB', 0) !== 0,
      ...(c ? { bias: { name: c, beta: attrFloat(node, 'beta', 1) } } : {}),
    }
  },
}

/**
 * Gather as an embedding lookup: the table is input 0, [V, D], gathered on axis 0; it is quantized
 * in blocks along D (weightOnlyGather.ts). Seen as W [K = D, N = V] stored [N, K], so `transposed`.
 * `rank` is the table's rank (to normalise a negative axis); the caller checks it is 2.
 */
export function gatherSite(node: Node, rank: number): SiteLookup {
  let axis = attrInt(node, 'axis', 0)
  if (axis < 0) axis += rank
  if (axis !== 0) return { skip: `Gather on axis ${attrInt(node, 'axis', 0)} (only axis 0, an embedding lookup of table rows, is rewritten)` }
  return { weight: node.inputs[0] ?? '', transposed: true }
}

/** Every op type quantizeWeights accepts in `ops`. */
export const WEIGHT_ONLY_OP_TYPES: readonly WeightOnlyOpType[] = [...(Object.keys(WEIGHT_ONLY_OPS) as MatmulOpType[]), 'Gather']

/**
 * The default `ops`: MatMul and Gemm. Gather (embeddings) is opt-in: ONNX Runtime's own
 * MatMulNBitsQuantizer quantizes MatMul only unless asked, and an embedding table's rows are read
 * directly (no reduction averages the error), so quantizing it is a quality choice (docs/weight-only.md).
 */
export const DEFAULT_WEIGHT_ONLY_OPS: readonly WeightOnlyOpType[] = ['MatMul', 'Gemm']
