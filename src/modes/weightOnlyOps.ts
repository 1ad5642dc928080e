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

export type WeightOnlyOpType = 'MatMul' | 'Gemm'

export const WEIGHT_ONLY_OPS: Record<WeightOnlyOpType, (node: Node) => SiteLookup> = {
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

export const WEIGHT_ONLY_OP_TYPES = Object.keys(WEIGHT_ONLY_OPS) as WeightOnlyOpType[]
