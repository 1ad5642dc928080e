// AIMET's encodings file, version 2.0.0: one flat list of { name, output_dtype, y_scale,
// y_zero_point?, axis?, block_size? } in ONNX QuantizeLinear terms (x̂ = (q − y_zero_point)·y_scale).
// What aimet-onnx 2.42's `QuantizationSimModel.export(encoding_version='2.0.0')` writes, checked
// against its code (`_encoding.py` `AffineEncoding._to_2_0_0`, `quantsim.py` `_export_encodings`,
// `_concretize_int32_bias_quantizers`, `common/onnx/_utils.py` `_derive_data_movement_op_encodings`)
// and against files it exported (__test__/fixtures/golden/parity/*.v200.encodings):
// - a symmetric quantizer is a signed type (int8, zero point 0), an asymmetric one unsigned;
//   activations are then rewritten as unsigned (`force_activation_as="unsigned"`: int8 zp 0 →
//   uint8 zp 128); y_zero_point is left out when every zero point is 0; per-tensor values are
//   scalars, per-channel ones lists with `axis`;
// - int32 biases are added: input scale × weight scale for Conv/ConvTranspose/Gemm/MatMul (a
//   MatMul's bias is the Add of a MatMul+Add pair), max|b|/2³¹ for the norm ops; only where the
//   weight and input quantizers are enabled and the bias has no encoding of its own;
// - outputs of data-movement ops (MaxPool, Flatten, Reshape, Transpose, Concat, …) with no
//   encoding take their input's per-tensor encoding, and inputs take their output's when they
//   feed nothing else (forward pass in graph order, then a reverse pass), as the converter expects.
// Float16 quantizers are left out (2.0.0 does not treat plain casts as quantization).
import { GRID_PRESERVING_OP_TYPES } from '../config/aimetRules.js'
import type { Encoding } from '../encoding.js'
import type { Model, Node } from '../graph/model.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import type { Quantizer } from '../sim/quantizer.js'
import { fileOffset } from './encodingsFile.js'
import { blockGeometry, nest, type BlockGeometry } from '../sim/blockwise.js'

/**
 * Per-block entries (aimet-onnx 2.42, __test__/fixtures/golden/blockwise/block.*.v200.encodings):
 * `axis` is the block axis, `y_scale` nested in AIMET's encoding shape (the weight's shape with
 * the block axis divided and other non-channel axes 1). LPBQ entries have no `y_scale`: a nested
 * `per_block_int_scale` (same shape) and `per_channel_float_scale` (block axis 1), `output_dtype`
 * the compressed type (int4).
 */
export type NestedNumbers = number[] | NestedNumbers[]

export interface EncodingEntryV2 {
  axis?: number
  block_size?: number
  name: string
  output_dtype: string
  per_block_int_scale?: NestedNumbers
  per_channel_float_scale?: NestedNumbers
  y_scale?: number | NestedNumbers
  y_zero_point?: number | NestedNumbers
}

export interface EncodingsFileV2 {
  encodings: EncodingEntryV2[]
  producer: { package: string; version: string }
  version: '2.0.0'
}

export interface EncodingsFileV2Options {
  /** Add int32 bias encodings (aimet-onnx's default for 2.0.0). Default true. */
  int32Bias?: boolean
}

/** aimet-onnx's `_INT32_MINIMUM_SCALE` (`common/quantsim.py` `_get_minimum_scale(2**32 − 1)`). */
const INT32_MINIMUM_SCALE = 0.01 / (2 ** 32 - 1)
const ANALYTIC_BIAS_OP_TYPES = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])
const STATISTICAL_BIAS_OP_TYPES = new Set(['BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'GroupNormalization'])
// `_derive_data_movement_op_encodings`: grid-equivariant ops plus clipping, padding and selector ops.
const DATA_MOVEMENT_OP_TYPES = new Set([...GRID_PRESERVING_OP_TYPES, 'Concat', 'Scatter', 'ScatterElements', 'ScatterND', 'Clip', 'Max', 'Min', 'Pad', 'Where'])

/** The float data inputs and outputs of a data-movement op (aimet-onnx reads them from the op schemas). */
function floatInputs(n: Node): string[] {
  const all = n.inputs.filter((i) => i)
  switch (n.opType) {
    case 'Concat': case 'Max': case 'Min': case 'Clip': return all
    case 'Where': return n.inputs.slice(1, 3).filter((i) => i)
    case 'Scatter': case 'ScatterElements': case 'ScatterND': return [n.inputs[0], n.inputs[2]].filter((i): i is string => !!i)
    case 'Pad': return [n.inputs[0], n.inputs[2]].filter((i): i is string => !!i)
    default: return n.inputs[0] ? [n.inputs[0]] : []
  }
}
function floatOutputs(n: Node): string[] {
  return n.opType === 'Split' || n.opType === 'SplitToSequence' ? n.outputs.filter((o) => o) : n.outputs.slice(0, 1)
}

function sameEncoding(a: EncodingEntryV2 | undefined, b: EncodingEntryV2 | undefined): boolean {
  if (!a || !b) return false
  const z = (e: EncodingEntryV2) => JSON.stringify(e.y_zero_point ?? 0)
  return a.output_dtype === b.output_dtype && JSON.stringify(a.y_scale) === JSON.stringify(b.y_scale) && z(a) === z(b) &&
    a.axis === b.axis && a.block_size === b.block_size
}

/** One quantizer's entry in QuantizeLinear terms (signed for symmetric quantizers, as AIMET's dtype). */
function entryOf(q: Quantizer, encs: readonly Encoding[], g?: BlockGeometry): EncodingEntryV2 {
  const bw = q.spec.bitwidth
  const signed = q.spec.symmetric
  if (g && q.spec.lpbq && q.lpbqScales) {
    if (q.spec.lpbq.decompressedBitwidth !== 2 * bw) {
      // As aimet-onnx (`_encoding.py` LPBQEncoding._to_2_0_0): the format has no field for it.
      throw new RangeError(`encodings 2.0.0 cannot express LPBQ on ${JSON.stringify(q.tensor)} with decompressedBitwidth ${q.spec.lpbq.decompressedBitwidth} ≠ 2 × bitwidth ${bw}; use 1.0.0`)
    }
    return {
      axis: g.blockAxis, block_size: g.blockSize, name: q.tensor, output_dtype: `int${bw}`,
      per_block_int_scale: nest(q.lpbqScales.intScales, g.compactDims) as NestedNumbers,
      per_channel_float_scale: nest(q.lpbqScales.channelScales, g.compactDims.map((d, i) => (i === g.blockAxis ? 1 : d))) as NestedNumbers,
    }
  }
  // AIMET's file offset is on the 0-based grid; the signed dtype shifts it by 2^(bw−1).
  const zps = encs.map((e) => -(fileOffset(e) + (signed ? 2 ** (bw - 1) : 0)))
  const scales = encs.map((e) => e.scale)
  const perTensor = q.spec.axis === undefined
  const shaped = (v: number[]): NestedNumbers => (g ? nest(v, g.compactDims) as NestedNumbers : v)
  const e: EncodingEntryV2 = { name: q.tensor, output_dtype: `${signed ? 'int' : 'uint'}${bw}`, y_scale: perTensor ? scales[0]! : shaped(scales) }
  if (zps.some((z) => z !== 0)) e.y_zero_point = perTensor ? zps[0]! : shaped(zps)
  if (!perTensor) e.axis = q.spec.axis
  if (q.spec.blockSize !== undefined) e.block_size = q.spec.blockSize
  return e
}

function geometryOf(model: Model, q: Quantizer): BlockGeometry | undefined {
  const w = q.kind === 'param' ? model.graph.initializers.get(q.tensor) : undefined
  return w && q.spec.blockSize !== undefined && q.spec.axis !== undefined ? blockGeometry(w.dims, q.spec.axis, q.spec.blockSize) : undefined
}

function blockChannelScales(q: Quantizer, g: BlockGeometry): number[] {
  if (q.spec.lpbq && q.lpbqScales) return q.lpbqScales.channelScales
  const out = new Array<number>(g.channels).fill(0)
  q.encodings!.forEach((e, i) => {
    const c = g.channelAxis === 0 ? Math.floor(i / g.blocks) : i % g.channels
    out[c] = Math.max(out[c]!, e.scale)
  })
  return out
}

/** Activations as unsigned types (`force_activation_as="unsigned"`). */
function toUnsigned(e: EncodingEntryV2): EncodingEntryV2 {
  if (!e.output_dtype.startsWith('int')) return e
  const half = 2 ** (Number(e.output_dtype.slice(3)) - 1)
  const shift = (z: number | number[] | undefined, like: number | number[]) =>
    Array.isArray(like) ? (like as number[]).map((_, i) => ((z as number[] | undefined)?.[i] ?? 0) + half) : ((z as number | undefined) ?? 0) + half
  return { ...e, output_dtype: `u${e.output_dtype}`, y_zero_point: shift(e.y_zero_point as number | number[] | undefined, e.y_scale as number | number[]) }
}

function sortKeys(e: EncodingEntryV2): EncodingEntryV2 {
  return Object.fromEntries(Object.entries(e).sort(([a], [b]) => (a < b ? -1 : 1))) as unknown as EncodingEntryV2
}

export function encodingsFileV2(model: Model, quantizers: readonly Quantizer[], version: string, opts: EncodingsFileV2Options = {}): EncodingsFileV2 {
  const graph = model.graph
  const nodes = topologicalOrder(graph)
  const byNodeName = new Map(nodes.map((n) => [n.name, n]))
  const producer = new Map<string, Node>()
  for (const n of nodes) for (const o of n.outputs) if (o) producer.set(o, n)
  const consumers = new Map<string, number>()
  for (const n of nodes) for (const i of n.inputs) if (i) consumers.set(i, (consumers.get(i) ?? 0) + 1)

  const active = quantizers.filter((q) => q.enabled && q.spec.dtype === 'int' && q.encodings && q.encodings.length > 0)
  const params = new Map<string, EncodingEntryV2>()
  const activations = new Map<string, EncodingEntryV2>()
  const actQuantizer = new Map<string, Quantizer>()
  for (const q of active) {
    if (q.kind === 'param') {
      if (!params.has(q.tensor)) params.set(q.tensor, entryOf(q, q.encodings!, geometryOf(model, q)))
    } else if (!activations.has(q.tensor)) {
      activations.set(q.tensor, toUnsigned(entryOf(q, q.encodings!)))
      if (q.kind === 'output' || q.node === '') actQuantizer.set(q.tensor, q)
    }
  }

  // The quantizer that quantizes a value: its own, or one upstream through data-movement ops
  // (aimet-onnx's `_get_enabled_quantizer`).
  const effective = (t: string, seen = new Set<string>()): Quantizer | undefined => {
    if (seen.has(t)) return undefined
    seen.add(t)
    const q = actQuantizer.get(t)
    if (q) return q
    const p = producer.get(t)
    return p && GRID_PRESERVING_OP_TYPES.has(p.opType) && p.inputs[0] ? effective(p.inputs[0], seen) : undefined
  }

  // int32 biases, listed right after their weight as aimet-onnx does.
  const biasAfter = new Map<string, EncodingEntryV2>()
  if (opts.int32Bias ?? true) {
    for (const b of quantizers) {
      if (b.kind !== 'param' || b.paramName !== 'bias' || params.has(b.tensor)) continue
      const w = active.find((q) => q.kind === 'param' && q.paramName === 'weight' && q.node === b.node)
      const node = byNodeName.get(b.node)
      const input = node?.inputs[0] ? effective(node.inputs[0]) : undefined
      if (!w || !input || !node) continue
      const data = graph.initializers.get(b.tensor)?.data
      if (!(data instanceof Float32Array)) continue
      let entry: EncodingEntryV2 | undefined
      if (ANALYTIC_BIAS_OP_TYPES.has(b.opType)) {
        const inScale = input.encodings![0]!.scale
        // Per-channel weights on the output-channel axis give a per-channel bias (axis 0). Blocked
        // weights (`_get_analytic_bias_scale`): input scale × the largest block scale of each
        // channel; LPBQ: × the per-channel float scale.
        const g = geometryOf(model, w)
        const perChannel = w.spec.axis !== undefined && (w.spec.blockSize === undefined || g !== undefined)
        const weightScales = g ? blockChannelScales(w, g) : w.encodings!.map((e) => e.scale)
        const scales = weightScales.map((s) => Math.fround(inScale * s))
        entry = perChannel ? { axis: 0, name: b.tensor, output_dtype: 'int32', y_scale: scales } : { name: b.tensor, output_dtype: 'int32', y_scale: scales[0]! }
      } else if (STATISTICAL_BIAS_OP_TYPES.has(b.opType)) {
        let m = 0
        for (const v of data) m = Math.max(m, Math.abs(v))
        entry = { name: b.tensor, output_dtype: 'int32', y_scale: Math.max(m / 2 ** 31, INT32_MINIMUM_SCALE) }
      }
      if (entry) biasAfter.set(w.tensor, entry)
    }
  }

  // Encodings copied through data-movement ops (per-tensor only), forward then in reverse.
  const all = new Map<string, EncodingEntryV2>([...params, ...activations])
  const derived = new Map<string, EncodingEntryV2>()
  const movers = nodes.filter((n) => DATA_MOVEMENT_OP_TYPES.has(n.opType))
  const derive = (n: Node) => {
    const ins = floatInputs(n)
    const outs = floatOutputs(n)
    if (ins.length === 0 || outs.length === 0) return
    const forward = n.opType === 'Pad' ? all.has(ins[0]!) : ins.slice(1).every((i) => sameEncoding(all.get(i), all.get(ins[0]!)))
    const backward = outs.slice(1).every((o) => sameEncoding(all.get(o), all.get(outs[0]!)))
    const found = new Map<string, EncodingEntryV2>()
    for (const i of ins) {
      for (const o of outs) {
        const ei = all.get(i)
        const eo = all.get(o)
        if (ei && eo) continue
        if (eo && eo.axis === undefined && backward && (consumers.get(i) ?? 0) <= 1) found.set(i, { ...eo, name: i })
      }
    }
    for (const o of outs) {
      const ei = all.get(ins[0]!)
      if (ei && ei.axis === undefined && forward && !all.has(o)) found.set(o, { ...ei, name: o })
    }
    for (const [k, v] of found) {
      derived.set(k, v)
      all.set(k, v)
    }
  }
  for (const n of movers) derive(n)
  for (const n of [...movers].reverse()) derive(n)

  const encodings: EncodingEntryV2[] = []
  for (const [name, e] of params) {
    encodings.push(e)
    const b = biasAfter.get(name)
    if (b) encodings.push(b)
  }
  encodings.push(...activations.values(), ...[...derived.values()].filter((e) => !params.has(e.name) && !activations.has(e.name)))
  return { encodings: encodings.map(sortKeys), producer: { package: 'quantkit', version }, version: '2.0.0' }
}
