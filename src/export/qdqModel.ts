// Builds the QDQ model: a QuantizeLinear → DequantizeLinear pair on every enabled activation
// quantizer, and integer weights behind a DequantizeLinear for every enabled parameter quantizer.
// The same model serves QuantSim's simulation (run with ORT's graph optimisations off, so what
// runs is fake quantization in float) and the export (ORT fuses it into integer kernels), which is
// what makes "QDQ equals simulation" hold bit for bit.
import { affine } from '../affine.js'
import { callNative, native } from '../native.js'
import { QuantkitError } from '../errors.js'
import { cloneModel, opsetVersion, type Model, type Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { renameValue } from '../graph/graphEdits.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { upgradeOpset } from '../graph/opset/upgradeOpset.js'
import { DataType } from '../onnx/elementType.js'
import { pack4bit } from '../onnx/packed4bit.js'
import type { Tensor } from '../onnx/tensor.js'
import type { Quantizer } from '../sim/quantizer.js'
import type { Encoding } from '../encoding.js'
import { blockGeometry, toOnnxLayout } from '../sim/blockwise.js'
import { gridIsWholeType, gridType, type GridType } from './qdqTypes.js'

export class ExportError extends QuantkitError {
  override name = 'ExportError'
}

export interface QdqBuildOptions {
  /**
   * 'simulation' accepts every grid (bitwidths QDQ cannot express are emulated with a float Clip
   * before QuantizeLinear); 'export' refuses them with an error naming the tensor.
   */
  purpose: 'simulation' | 'export'
  /** Lowest opset to write (default 13; raised to 21 when int4/int16/blocked quantizers need it). */
  minOpset?: number
  /** Parameters whose zero points are all 0: DequantizeLinear without the zero-point input (default false). */
  omitZeroPoints?: boolean
}

export interface QdqBuildReport {
  opset: number
  /** Q/DQ nodes are in ai.onnx, or in com.microsoft when the model's ops could not be upgraded. */
  qdqDomain: '' | 'com.microsoft'
  activationPairs: number
  quantizedWeights: number
  float16Casts: number
  notes: string[]
}

const Q = JSON.stringify

function tensorOf(name: string, dataType: number, dims: number[], data: Tensor['data']): Tensor {
  return { name, dataType, dims, data }
}

/** Scale and zero-point tensors for a quantizer's encodings (scalar, per channel or per block). */
function qdqParams(model: Model, q: Quantizer, type: GridType, names: Set<string>, scaleDims: number[], enc: readonly Encoding[] = q.encodings!): { scale: string; zeroPoint: string } {
  const scale = uniqueName(model.graph, `${q.tensor}_scale`, names)
  names.add(scale)
  const zeroPoint = uniqueName(model.graph, `${q.tensor}_zero_point`, names)
  names.add(zeroPoint)
  model.graph.initializers.set(scale, tensorOf(scale, DataType.FLOAT, scaleDims, Float32Array.from(enc, (e) => e.scale)))
  const zps = enc.map((e) => -e.offset)
  const zpData = type.name === 'int4' || type.name === 'uint4' ? pack4bit(zps, type.min < 0) : zpArray(type, zps)
  model.graph.initializers.set(zeroPoint, tensorOf(zeroPoint, type.dataType, scaleDims, zpData))
  return { scale, zeroPoint }
}

/** Int4/uint4 codes (one per element of an 8-bit array) packed two per byte, low nibble first. */
function packNibbles(ints: ArrayBufferView): Uint8Array {
  if ((ints as Uint8Array).BYTES_PER_ELEMENT !== 1) throw new ExportError(`internal: 4-bit codes came as ${Object.prototype.toString.call(ints)}`)
  return callNative(() => native.packNibbles(new Uint8Array(ints.buffer, ints.byteOffset, ints.byteLength)))
}

function zpArray(type: GridType, zps: number[]): Tensor['data'] {
  switch (type.name) {
    case 'int8': return Int8Array.from(zps)
    case 'uint8': return Uint8Array.from(zps)
    case 'int16': return Int16Array.from(zps)
    case 'uint16': return Uint16Array.from(zps)
    default: return Int32Array.from(zps)
  }
}

function node(opType: string, name: string, inputs: string[], outputs: string[], domain: string, attrs: Record<string, number> = {}): Node {
  const attributes = new Map(Object.entries(attrs).map(([k, v]) => [k, { type: 'int' as const, value: v }]))
  return { name, opType, domain, inputs, outputs, attributes }
}

/** Dims of the scale of a parameter quantizer: scalar, [C], or blocked (ONNX layout). */
function paramScaleDims(q: Quantizer, dims: number[]): number[] {
  const { axis, blockSize } = q.spec
  if (axis === undefined) return []
  if (blockSize === undefined) return [dims[axis]!]
  return dims.map((d, i) => (i === axis ? Math.ceil(d / blockSize) : d))
}

function requiredOpset(q: Quantizer): number {
  if (q.spec.dtype === 'float' || q.spec.dynamic) return 13
  const enc = q.encodings![0]!
  const t = gridType(enc.qmin, enc.qmax)
  return Math.max(t?.opset ?? 21, q.spec.blockSize !== undefined ? 21 : 13)
}

export function buildQdqModel(source: Model, quantizers: readonly Quantizer[], opts: QdqBuildOptions): { model: Model; report: QdqBuildReport } {
  const active = quantizers.filter((q) => q.enabled)
  for (const q of active) {
    if (q.spec.dtype === 'int' && !q.spec.dynamic && (!q.encodings || q.encodings.length === 0)) {
      throw new ExportError(`quantizer on ${Q(q.tensor)} (${q.kind} of ${q.node || 'the model'}) has no encoding: run computeEncodings first`)
    }
  }
  const notes: string[] = []
  const current = opsetVersion(source) ?? 0
  const need = Math.max(opts.minOpset ?? 13, current, ...active.map(requiredOpset))
  let model = cloneModel(source)
  let domain: '' | 'com.microsoft' = ''
  if (need > current) {
    const up = upgradeOpset(model, need)
    if (up.report.upgradable) {
      model = up.model
    } else {
      domain = 'com.microsoft'
      notes.push(`the model's ops could not be upgraded to opset ${need} (${up.report.blockers.map((b) => `${b.node}: ${b.reason}`).join('; ')}); ` +
        'QuantizeLinear/DequantizeLinear use the com.microsoft domain, so the model runs on ONNX Runtime only')
      if (!model.opsetImports.some((o) => o.domain === 'com.microsoft')) model.opsetImports.push({ domain: 'com.microsoft', version: 1 })
    }
  }
  const graph = model.graph
  const names = allValueNames(graph)
  const fresh = (base: string) => {
    const n = uniqueName(graph, base, names)
    names.add(n)
    return n
  }
  const added: Node[] = []
  let activationPairs = 0
  let quantizedWeights = 0
  let float16Casts = 0

  // Readers of each value, collected once (the edits below only add nodes).
  const readers = new Map<string, Node[]>()
  for (const n of graph.nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n])
  const redirect = (value: string, to: string, only?: Node[]) => {
    for (const r of only ?? readers.get(value) ?? []) r.inputs = r.inputs.map((i) => (i === value ? to : i))
  }

  for (const q of active) {
    if (q.kind === 'param') {
      const w = graph.initializers.get(q.tensor)
      if (!w) throw new ExportError(`parameter quantizer on ${Q(q.tensor)}: no such initializer`)
      if (w.dataType !== DataType.FLOAT) throw new ExportError(`parameter ${Q(q.tensor)} is not float32`)
      if (q.spec.dtype === 'float') {
        const half = fresh(`${q.tensor}_float16`)
        const back = fresh(`${q.tensor}_from_float16`)
        added.push(node('Cast', fresh(`${q.tensor}_CastToFloat16`), [q.tensor], [half], '', { to: DataType.FLOAT16 }))
        added.push(node('Cast', fresh(`${q.tensor}_CastToFloat`), [half], [back], '', { to: DataType.FLOAT }))
        redirect(q.tensor, back, (readers.get(q.tensor) ?? []).filter((r) => !added.includes(r)))
        float16Casts++
        continue
      }
      // Blocked encodings are kept in AIMET's shape (src/sim/blockwise.ts); the blocked
      // DequantizeLinear wants the weight's shape with the block axis divided (Conv: kh, kw repeated).
      const enc = q.spec.blockSize !== undefined && q.spec.axis !== undefined
        ? toOnnxLayout(blockGeometry(w.dims, q.spec.axis, q.spec.blockSize), q.encodings!)
        : q.encodings!
      const { qmin, qmax } = enc[0]!
      const type = gridType(qmin, qmax)
      if (!type) throw new ExportError(`parameter ${Q(q.tensor)}: no ONNX integer type holds the grid [${qmin}, ${qmax}]`)
      const scaleDims = paramScaleDims(q, w.dims)
      const opts2 = { shape: w.dims, axis: q.spec.axis, blockSize: q.spec.blockSize }
      const perTensor = q.spec.axis === undefined
      const ints = affine.quantize(w.data as Float32Array, perTensor ? enc[0]!.scale : Float32Array.from(enc, (e) => e.scale),
        perTensor ? enc[0]!.offset : Int32Array.from(enc, (e) => e.offset), qmin, qmax, opts2)
      const qName = fresh(`${q.tensor}_quantized`)
      // 4-bit weights are packed in Rust (the codes are already on the grid, so no check is lost).
      const data = type.name === 'int4' || type.name === 'uint4' ? packNibbles(ints) : ints
      graph.initializers.set(qName, tensorOf(qName, type.dataType, [...w.dims], data))
      const { scale, zeroPoint } = qdqParams(model, q, type, names, scaleDims, enc)
      const out = fresh(`${q.tensor}_DequantizeLinear_Output`)
      const attrs: Record<string, number> = {}
      if (q.spec.axis !== undefined) attrs.axis = q.spec.axis
      if (q.spec.blockSize !== undefined) attrs.block_size = q.spec.blockSize
      const dqInputs = opts.omitZeroPoints && enc.every((e) => e.offset === 0) ? [qName, scale] : [qName, scale, zeroPoint]
      if (dqInputs.length === 2) graph.initializers.delete(zeroPoint)
      added.push(node('DequantizeLinear', fresh(`${q.tensor}_DequantizeLinear`), dqInputs, [out], domain, attrs))
      redirect(q.tensor, out)
      quantizedWeights++
      continue
    }
    // Activations: model inputs, op outputs, or one op's input.
    let value = q.tensor
    const consumers = q.kind === 'input' && q.node ? (readers.get(value) ?? []).filter((r) => r.name === q.node) : undefined
    if (q.kind !== 'input' && graph.outputs.some((o) => o.name === value)) {
      // A quantized graph output keeps its name on the dequantized value.
      const float = fresh(`${value}_float`)
      renameValue(graph, value, float)
      for (const [k, v] of [...readers]) if (k === value) { readers.set(float, v); readers.delete(k) }
      for (const o of graph.outputs) if (o.name === float) o.name = value
      names.add(float)
      value = float
    }
    const targetName = value === q.tensor ? undefined : q.tensor
    if (q.spec.dtype === 'float') {
      const half = fresh(`${q.tensor}_float16`)
      const back = targetName ?? fresh(`${q.tensor}_from_float16`)
      const castTo = node('Cast', fresh(`${q.tensor}_CastToFloat16`), [value], [half], '', { to: DataType.FLOAT16 })
      const castBack = node('Cast', fresh(`${q.tensor}_CastToFloat`), [half], [back], '', { to: DataType.FLOAT })
      if (!targetName) redirect(value, back, consumers)
      added.push(castTo, castBack)
      float16Casts++
      continue
    }
    if (q.spec.dynamic) {
      // Quantized at run time: DynamicQuantizeLinear (uint8, the tensor's own range) → DequantizeLinear.
      const qOut = fresh(`${q.tensor}_DynamicQuantizeLinear_Output`)
      const scale = fresh(`${q.tensor}_DynamicQuantizeLinear_Scale`)
      const zeroPoint = fresh(`${q.tensor}_DynamicQuantizeLinear_ZeroPoint`)
      const dqOut = targetName ?? fresh(`${q.tensor}_DequantizeLinear_Output`)
      added.push(node('DynamicQuantizeLinear', fresh(`${q.tensor}_DynamicQuantizeLinear`), [value], [qOut, scale, zeroPoint], ''))
      added.push(node('DequantizeLinear', fresh(`${q.tensor}_DequantizeLinear`), [qOut, scale, zeroPoint], [dqOut], domain))
      if (!targetName) redirect(value, dqOut, consumers)
      activationPairs++
      continue
    }
    const enc = q.encodings![0]!
    if (q.encodings!.length !== 1) throw new ExportError(`activation quantizer on ${Q(q.tensor)}: per-channel activations are not supported`)
    const type = gridType(enc.qmin, enc.qmax)
    if (!type) throw new ExportError(`activation ${Q(q.tensor)}: no ONNX integer type holds the grid [${enc.qmin}, ${enc.qmax}]`)
    let input = value
    if (!gridIsWholeType(enc.qmin, enc.qmax)) {
      if (opts.purpose === 'export') {
        throw new ExportError(`activation ${Q(q.tensor)}: a ${enc.bitwidth}-bit grid [${enc.qmin}, ${enc.qmax}] is not a whole ONNX integer type; ` +
          'QuantizeLinear saturates to the full type, so QDQ can only express 4, 8 and 16 bits (and no strict-symmetric activations). This quantizer is simulation-only.')
      }
      // x̂ = (q + offset)·scale for q in [qmin, qmax]: clipping x to those ends first makes the
      // wider type's saturation equal the grid's.
      const lo = fresh(`${q.tensor}_clip_min`)
      const hi = fresh(`${q.tensor}_clip_max`)
      graph.initializers.set(lo, tensorOf(lo, DataType.FLOAT, [], Float32Array.of((enc.qmin + enc.offset) * enc.scale)))
      graph.initializers.set(hi, tensorOf(hi, DataType.FLOAT, [], Float32Array.of((enc.qmax + enc.offset) * enc.scale)))
      const clipped = fresh(`${q.tensor}_clipped`)
      added.push(node('Clip', fresh(`${q.tensor}_Clip`), [value, lo, hi], [clipped], ''))
      input = clipped
    }
    const { scale, zeroPoint } = qdqParams(model, q, type, names, [])
    const qOut = fresh(`${q.tensor}_QuantizeLinear_Output`)
    const dqOut = targetName ?? fresh(`${q.tensor}_DequantizeLinear_Output`)
    added.push(node('QuantizeLinear', fresh(`${q.tensor}_QuantizeLinear`), [input, scale, zeroPoint], [qOut], domain))
    added.push(node('DequantizeLinear', fresh(`${q.tensor}_DequantizeLinear`), [qOut, scale, zeroPoint], [dqOut], domain))
    if (!targetName) redirect(value, dqOut, consumers)
    activationPairs++
  }
  // Float weights no node reads any more are dropped.
  graph.nodes.push(...added)
  const read = new Set<string>()
  for (const n of graph.nodes) for (const i of n.inputs) read.add(i)
  for (const o of graph.outputs) read.add(o.name)
  for (const q of active) if (q.kind === 'param' && !read.has(q.tensor)) graph.initializers.delete(q.tensor)
  graph.nodes = topologicalOrder(graph)
  return { model, report: { opset: Math.max(need, current), qdqDomain: domain, activationPairs, quantizedWeights, float16Casts, notes } }
}
