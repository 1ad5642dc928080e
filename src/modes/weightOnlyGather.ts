// Weight-only quantization of embedding tables: a Gather whose data (input 0) is a constant 2-D
// float32 initializer table [V, D], gathered on axis 0 (one row per token). The table is quantized
// per block of `blockSize` along D by its QuantSim parameter quantizer (QuantSimOptions.gatherTables,
// blocked on axis 1 with ONNX Runtime's block rule: W [K = D, N = V] given transposed, the numbers
// of nbitsWeights.ts), then written in one of two forms:
// - matmulnbits: one com.microsoft.GatherBlockQuantized (gather_axis 0, quantize_axis 1,
//   block_size, bits), inputs data uint8 [V, D·bits/8] (MatMulNBits' conventions: unsigned codes,
//   4 bits two per byte low nibble first, default zero point 2^(bits−1) when zero_points is
//   absent), indices, scales [V, nb], zero_points uint8 [V, ceil(nb·bits/8)] (4 bits packed per row).
//   Checked against onnxruntime-node 1.23.2's CPU kernel (__test__/weightOnlyGather.test.mjs).
// - qdq: an opset-21 DequantizeLinear (axis 1, block_size) of INT4/UINT4/INT8/UINT8 [V, D] with
//   scales (and zero points) [V, nb], feeding the original Gather: QuantSim's own QDQ export.
// nb = ceil(D / blockSize); no padding is stored (a partial last block is allowed by both ops).
import type { Node } from '../graph/model.js'
import { DataType } from '../onnx/elementType.js'
import type { Tensor } from '../onnx/tensor.js'
import type { NbitsWeights, WeightBits, WeightFormat } from './nbitsWeights.js'
import { MS_DOMAIN } from './weightOnlyFormats.js'

export interface GatherSpec {
  /** Rows (vocabulary) and row length (embedding width). */
  v: number
  d: number
  bits: WeightBits
  blockSize: number
  symmetric: boolean
}

/** Why a table cannot be written in `format`, or undefined when it can. */
export function gatherUnsupported(format: WeightFormat, s: GatherSpec): string | undefined {
  if (format === 'matmulnbits' && s.bits === 4 && s.d % 2 !== 0) {
    return `GatherBlockQuantized packs 4-bit rows two codes per byte; row length D=${s.d} is odd (use format 'qdq')`
  }
  return undefined
}

function intAttrs(attrs: Record<string, number>): Node['attributes'] {
  return new Map(Object.entries(attrs).map(([k, v]) => [k, { type: 'int' as const, value: v }]))
}

/**
 * The GatherBlockQuantized writer. `q` is the table packed from its QuantSim quantizer by Rust
 * (nbits.rs `pack_gather_rows`): data [V, D·bits/8], scales [V, nb], zero points packed per row.
 */
export const GATHER_BLOCK_QUANTIZED = {
  tensors(q: NbitsWeights, s: GatherSpec, fresh: (base: string) => string, base: string): Tensor[] {
    const nb = Math.ceil(s.d / s.blockSize)
    const out: Tensor[] = [
      { name: fresh(`${base}_GBQ_Q${s.bits}`), dataType: DataType.UINT8, dims: [s.v, (s.d * s.bits) / 8], data: q.data },
      { name: fresh(`${base}_GBQ_scales`), dataType: DataType.FLOAT, dims: [s.v, nb], data: q.scales },
    ]
    if (q.zeroPoints) out.push({ name: fresh(`${base}_GBQ_zero_points`), dataType: DataType.UINT8, dims: [s.v, Math.ceil((nb * s.bits) / 8)], data: q.zeroPoints })
    return out
  },
  /** The node replacing `node` (a Gather on axis 0 of the table). */
  nodes(t: Tensor[], s: GatherSpec, node: Node, label: string): Node[] {
    return [{
      name: `${label}_Q${s.bits}`,
      opType: 'GatherBlockQuantized',
      domain: MS_DOMAIN,
      inputs: [t[0]!.name, node.inputs[1]!, ...t.slice(1).map((x) => x.name)],
      outputs: [node.outputs[0]!],
      attributes: intAttrs({ gather_axis: 0, quantize_axis: 1, block_size: s.blockSize, bits: s.bits }),
    }]
  },
}
