// Weight-only quantization of embedding tables: a Gather whose data (input 0) is a constant 2-D
// float32 initializer table [V, D], gathered on axis 0 (one row per token). The table is quantized
// per block of `blockSize` along D (each row is one "column" of the matmul-like layout: the Rust
// core quantizes it as W [K = D, N = V] given transposed, the numbers of nbitsWeights.ts), then
// written in one of two forms:
// - matmulnbits: one com.microsoft.GatherBlockQuantized (gather_axis 0, quantize_axis 1,
//   block_size, bits), inputs data uint8 [V, D·bits/8] (MatMulNBits' conventions: unsigned codes,
//   4 bits two per byte low nibble first, default zero point 2^(bits−1) when zero_points is
//   absent), indices, scales [V, nb], zero_points uint8 [V, ceil(nb·bits/8)] (4 bits packed per row).
//   Checked against onnxruntime-node 1.23.2's CPU kernel (__test__/weightOnlyGather.test.mjs).
// - qdq: an opset-21 DequantizeLinear (axis 1, block_size) of INT4/UINT4/INT8/UINT8 [V, D] with
//   scales (and zero points) [V, nb], feeding the original Gather.
// nb = ceil(D / blockSize); no padding is stored (a partial last block is allowed by both ops).
import type { Node } from '../graph/model.js'
import { DataType } from '../onnx/elementType.js'
import { pack4bit } from '../onnx/packed4bit.js'
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

interface Rows {
  /** [V, D] unsigned codes. */
  codes: Uint8Array
  /** [V, nb]. */
  scales: Float32Array
  /** [V, nb] unsigned zero points. */
  zeroPoints: Uint8Array
}

/** Codes, scales and zero points row by row from the MatMulNBits layout of W = tableᵀ (K = D, N = V). */
function rowsFromNbits(q: NbitsWeights, s: GatherSpec): Rows {
  const nb = Math.ceil(s.d / s.blockSize)
  const blob = (s.blockSize * s.bits) / 8
  const codes = new Uint8Array(s.v * s.d)
  for (let v = 0; v < s.v; v++) {
    const base = v * nb * blob
    const row = v * s.d
    if (s.bits === 8) {
      codes.set(q.data.subarray(base, base + s.d), row)
    } else {
      for (let d = 0; d < s.d; d++) codes[row + d] = (q.data[base + (d >> 1)]! >> ((d & 1) * 4)) & 0x0f
    }
  }
  const zeroPoints = new Uint8Array(s.v * nb).fill(1 << (s.bits - 1))
  if (q.zeroPoints) {
    const per = Math.ceil((nb * s.bits) / 8)
    for (let v = 0; v < s.v; v++) {
      for (let b = 0; b < nb; b++) {
        zeroPoints[v * nb + b] = s.bits === 8 ? q.zeroPoints[v * per + b]! : (q.zeroPoints[v * per + (b >> 1)]! >> ((b & 1) * 4)) & 0x0f
      }
    }
  }
  return { codes, scales: q.scales, zeroPoints }
}

function packRows(values: Uint8Array, rows: number, cols: number): Uint8Array {
  // Row by row, ceil(cols/2) bytes each (GatherBlockQuantized's and MatMulNBits' zero-point layout).
  const per = Math.ceil(cols / 2)
  const out = new Uint8Array(rows * per)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[r * per + (c >> 1)]! |= (values[r * cols + c]! & 0x0f) << ((c & 1) * 4)
  }
  return out
}

/** Why a table cannot be written in `format`, or undefined when it can. */
export function gatherUnsupported(format: WeightFormat, s: GatherSpec): string | undefined {
  if (format === 'matmulnbits' && s.bits === 4 && s.d % 2 !== 0) {
    return `GatherBlockQuantized packs 4-bit rows two codes per byte; row length D=${s.d} is odd (use format 'qdq')`
  }
  return undefined
}

export interface GatherWriter {
  tensors(q: NbitsWeights, s: GatherSpec, fresh: (base: string) => string, base: string): Tensor[]
  /** Nodes replacing `node` (a Gather on axis 0 of the table). */
  nodes(tensors: Tensor[], s: GatherSpec, node: Node, label: string, fresh: (base: string) => string): Node[]
}

function intAttrs(attrs: Record<string, number>): Node['attributes'] {
  return new Map(Object.entries(attrs).map(([k, v]) => [k, { type: 'int' as const, value: v }]))
}

export const GATHER_FORMATS: Record<WeightFormat, GatherWriter> = {
  matmulnbits: {
    tensors(q, s, fresh, base) {
      const r = rowsFromNbits(q, s)
      const nb = Math.ceil(s.d / s.blockSize)
      const data = s.bits === 8 ? r.codes : packRows(r.codes, s.v, s.d)
      const out: Tensor[] = [
        { name: fresh(`${base}_GBQ_Q${s.bits}`), dataType: DataType.UINT8, dims: [s.v, (s.d * s.bits) / 8], data },
        { name: fresh(`${base}_GBQ_scales`), dataType: DataType.FLOAT, dims: [s.v, nb], data: r.scales },
      ]
      if (q.zeroPoints) {
        const zp = s.bits === 8 ? r.zeroPoints : packRows(r.zeroPoints, s.v, nb)
        out.push({ name: fresh(`${base}_GBQ_zero_points`), dataType: DataType.UINT8, dims: [s.v, Math.ceil((nb * s.bits) / 8)], data: zp })
      }
      return out
    },
    nodes(t, s, node, label) {
      return [{
        name: `${label}_Q${s.bits}`,
        opType: 'GatherBlockQuantized',
        domain: MS_DOMAIN,
        inputs: [t[0]!.name, node.inputs[1]!, ...t.slice(1).map((x) => x.name)],
        outputs: [node.outputs[0]!],
        attributes: intAttrs({ gather_axis: 0, quantize_axis: 1, block_size: s.blockSize, bits: s.bits }),
      }]
    },
  },

  qdq: {
    tensors(q, s, fresh, base) {
      const r = rowsFromNbits(q, s)
      const nb = Math.ceil(s.d / s.blockSize)
      const half = 1 << (s.bits - 1)
      let type: number
      let data: Uint8Array | Int8Array
      if (s.symmetric) {
        const signed = Int8Array.from(r.codes, (c) => c - half)
        type = s.bits === 4 ? DataType.INT4 : DataType.INT8
        data = s.bits === 4 ? pack4bit(signed, true) : signed
      } else {
        type = s.bits === 4 ? DataType.UINT4 : DataType.UINT8
        data = s.bits === 4 ? pack4bit(r.codes, false) : r.codes
      }
      const out: Tensor[] = [
        { name: fresh(`${base}_DQ_Q${s.bits}`), dataType: type, dims: [s.v, s.d], data },
        { name: fresh(`${base}_DQ_scales`), dataType: DataType.FLOAT, dims: [s.v, nb], data: r.scales },
      ]
      if (!s.symmetric) {
        const zp = s.bits === 4 ? pack4bit(r.zeroPoints, false) : r.zeroPoints
        out.push({ name: fresh(`${base}_DQ_zero_points`), dataType: s.bits === 4 ? DataType.UINT4 : DataType.UINT8, dims: [s.v, nb], data: zp })
      }
      return out
    },
    nodes(t, s, node, label, fresh) {
      const table = fresh(`${t[0]!.name}_output`)
      return [
        { name: `${label}_DQ_Q${s.bits}`, opType: 'DequantizeLinear', domain: '', inputs: t.map((x) => x.name), outputs: [table], attributes: intAttrs({ axis: 1, block_size: s.blockSize }) },
        { ...node, inputs: [table, ...node.inputs.slice(1)], attributes: new Map(node.attributes) },
      ]
    },
  },
}
