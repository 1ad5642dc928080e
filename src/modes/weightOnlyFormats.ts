// The two ways a weight-only quantized MatMul is written:
// - matmulnbits: one com.microsoft.MatMulNBits node (ONNX Runtime's contrib op; attributes K, N,
//   bits, block_size; accuracy_level only when asked, as ONNX Runtime's own quantizer does),
//   packed from the weight's QuantSim quantizer; it replaces `A·W` only, a Gemm's bias becomes an
//   Add after it (quantizeWeights.ts).
// - qdq: an opset-21 DequantizeLinear (blocked along K) of an INT4/UINT4/INT8/UINT8 weight feeding
//   the original MatMul or Gemm: QuantSim's own QDQ export (src/export/qdqModel.ts); runs on any
//   runtime with opset 21.
import type { Node } from '../graph/model.js'
import { DataType } from '../onnx/elementType.js'
import type { Tensor } from '../onnx/tensor.js'
import type { NbitsWeights, WeightBits, WeightFormat } from './nbitsWeights.js'

export const MS_DOMAIN = 'com.microsoft'

export interface ProductSpec {
  /** The activation input A […, K]. */
  input: string
  /** The product's output name. */
  output: string
  /** The source node's name, to derive the new nodes' names. */
  nodeName: string
  k: number
  n: number
  bits: WeightBits
  blockSize: number
  symmetric: boolean
  accuracyLevel?: number
}

/** Initializers for one quantized weight, made once and shared by every node that reads it. */
export type WeightTensors = Tensor[]

export interface FormatWriter {
  /** The ai.onnx opset the format needs (0: none in particular). */
  minOpset: number
  /** The domain to import (version 1), if any. */
  domain?: string
  /** The tensors holding one quantized weight; `base` is the original weight's name. */
  tensors(q: NbitsWeights, spec: ProductSpec, fresh: (base: string) => string, base: string): WeightTensors
  /** Nodes computing spec.output = A·Ŵ from those tensors (in order); `fresh` gives unused value names. */
  nodes(tensors: WeightTensors, spec: ProductSpec, fresh: (base: string) => string): Node[]
}

function node(name: string, opType: string, inputs: string[], outputs: string[], attrs: Record<string, number>, domain = ''): Node {
  return {
    name,
    opType,
    domain,
    inputs,
    outputs,
    attributes: new Map(Object.entries(attrs).map(([k, v]) => [k, { type: 'int' as const, value: v }])),
  }
}

/** What each format needs of the model: the ai.onnx opset and the domain to import. */
export const FORMAT_NEEDS: Record<WeightFormat, { minOpset: number; domain?: string }> = {
  matmulnbits: { minOpset: 0, domain: MS_DOMAIN },
  // Blocked DequantizeLinear (and INT4/UINT4): written by QuantSim's QDQ export (quantizeWeights.ts).
  qdq: { minOpset: 21 },
}

/** The MatMulNBits writer: the tensors of one weight packed from its sim quantizer, and the node. */
export const MATMUL_NBITS: FormatWriter = {
  minOpset: 0,
  domain: MS_DOMAIN,
  tensors(q, s, fresh, base) {
    const nb = Math.ceil(s.k / s.blockSize)
    const out: Tensor[] = [
      { name: fresh(`${base}_Q${s.bits}`), dataType: DataType.UINT8, dims: [s.n, nb, (s.blockSize * s.bits) / 8], data: q.data },
      // 1-D [N·nb], as ONNX Runtime's MatMulNBitsQuantizer writes it.
      { name: fresh(`${base}_scales`), dataType: DataType.FLOAT, dims: [s.n * nb], data: q.scales },
    ]
    if (q.zeroPoints) out.push({ name: fresh(`${base}_zero_points`), dataType: DataType.UINT8, dims: [q.zeroPoints.length], data: q.zeroPoints })
    return out
  },
  nodes(t, s) {
    const attrs: Record<string, number> = { K: s.k, N: s.n, bits: s.bits, block_size: s.blockSize }
    if (s.accuracyLevel) attrs.accuracy_level = s.accuracyLevel
    return [node(`${s.nodeName}_Q${s.bits}`, 'MatMulNBits', [s.input, ...t.map((x) => x.name)], [s.output], attrs, MS_DOMAIN)]
  },
}
