// Which nodes dynamic quantization rewrites, and where their weight is: one row per op type
// (adding an op is adding a row). MatMul and Gemm reuse weight-only quantization's rows, so both
// modes agree on which Gemms they take (transA=0, alpha=1; beta folded into C). A row looks only at
// the node; the caller checks that the weight is a constant float32 initializer of the right rank.
import { attrString } from '../graph/attributes.js'
import type { Node } from '../graph/model.js'
import { WEIGHT_ONLY_OPS, type SiteLookup, type WeightSite } from './weightOnlyOps.js'

export type DynamicOpType = 'MatMul' | 'Gemm' | 'Conv'

/** How the integer product is written: MatMulInteger (or the fused contrib op), or ConvInteger. */
export type DynamicKind = 'matmul' | 'conv'

export interface DynamicOpRule {
  kind: DynamicKind
  /** The weight's rank: 2 for MatMul/Gemm ([K, N] or [N, K]), ≥ 3 for Conv ([M, C/group, k…]). */
  weightRank: (rank: number) => boolean
  site: (node: Node) => SiteLookup
}

export const DYNAMIC_OPS: Record<DynamicOpType, DynamicOpRule> = {
  MatMul: { kind: 'matmul', weightRank: (r) => r === 2, site: WEIGHT_ONLY_OPS.MatMul },
  Gemm: { kind: 'matmul', weightRank: (r) => r === 2, site: WEIGHT_ONLY_OPS.Gemm },
  // Y = conv(X, W) + B. ConvInteger takes the same attributes; B (1-D [M]) is added after scaling.
  Conv: {
    kind: 'conv',
    weightRank: (r) => r >= 3,
    site: (node): SiteLookup => {
      const pad = attrString(node, 'auto_pad')
      if (pad !== undefined && pad !== 'NOTSET' && pad !== 'VALID' && pad !== 'SAME_UPPER' && pad !== 'SAME_LOWER') {
        return { skip: `Conv with auto_pad=${JSON.stringify(pad)}` }
      }
      const site: WeightSite = { weight: node.inputs[1] ?? '', transposed: false }
      const b = node.inputs[2]
      return b ? { ...site, bias: { name: b, beta: 1 } } : site
    },
  },
}

export const DYNAMIC_OP_TYPES = Object.keys(DYNAMIC_OPS) as DynamicOpType[]

/**
 * The default op set: MatMul and Gemm only. Conv is opt-in because measurement says so (issue 10):
 * on PP-OCRv4 rec, ONNX Runtime's quantize_dynamic with Conv included drops character accuracy from
 * 0.993 to 0.005 and runs 4.4× slower than FP32; MatMul/Gemm alone keeps 0.994 at 1.03×.
 */
export const DEFAULT_DYNAMIC_OPS: readonly DynamicOpType[] = ['MatMul', 'Gemm']
