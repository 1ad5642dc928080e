// convertFloat16: float32 weights and compute become float16, with Casts where float16 and
// float32 regions meet and (by default) at the graph's inputs and outputs, so that the model's
// interface stays float32. Nodes stay float32 when their op type is blocked (float16Ops.ts),
// when named in `nodeBlockList`, when they hold subgraphs (If/Loop/Scan bodies are left alone),
// when they belong to another domain, or when the range check finds values beyond float16's
// range (|x| > 65504) in their output or in a weight they read; the direct consumers of an
// overflowing output stay float32 too (a value is not followed further: once it has gone through
// the next op it is usually back in range, and the range check would catch it where not).
//
// Only the main graph is rewritten. Weights are converted by the Rust kernel (halfFloat.ts).
// With `bfloat16`, only storage changes: see bfloat16Storage.ts.
import { GraphError } from '../errors.js'
import { cloneModel, opsetVersion, type AttributeValue, type Graph, type Model, type Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { definedNames, implicitInputs, subgraphsOf } from '../graph/scope.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { float32ToFloat16, maxAbsFinite } from '../halfFloat.js'
import { DataType } from '../onnx/elementType.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import { modelToBytes } from '../onnx/saveModel.js'
import type { Tensor } from '../onnx/tensor.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import type { CalibrationProgress } from '../sim/calibrator.js'
import { OrtRunner } from '../sim/ortRunner.js'
import { discoverValueTypes } from '../sim/valueTypes.js'
import { storeInitializersAsBfloat16 } from './bfloat16Storage.js'
import { ANY_TYPE_INPUTS, DEFAULT_FLOAT16_BLOCK_LIST, FLOAT32_INPUTS, FLOAT32_OUTPUTS, SUBGRAPH_OPS } from './float16Ops.js'
import { findFloat16Overflows, FLOAT16_MAX } from './float16Overflow.js'
import type { Float16BlockedNode, Float16Cast, Float16Overflow, Float16Report } from './float16Report.js'

export interface ConvertFloat16Options {
  /** Keep float32 graph inputs and outputs (Casts at the edges). Default true. */
  keepIoTypes?: boolean
  /** Op types kept in float32. Default: DEFAULT_FLOAT16_BLOCK_LIST's keys. Replaces the default. */
  blockList?: readonly string[]
  /** Node names kept in float32 (added to what blockList blocks). */
  nodeBlockList?: readonly string[]
  /**
   * Feeds for the range check: the float32 model runs over them with every float tensor reduced
   * to its extremes, and ops whose outputs exceed 65504 in magnitude stay float32.
   */
  data?: CalibrationData
  /** Store float32 weights as bfloat16, each followed by a Cast to float; compute stays float32. */
  bfloat16?: boolean
  /** bfloat16 storage: initializers with fewer elements stay float32. Default 16. */
  bfloat16MinElements?: number
  /** Create an ONNX Runtime session on the result, so that a model ORT rejects fails here, named. Default true. */
  verify?: boolean
  signal?: AbortSignal
  onProgress?: (p: CalibrationProgress) => void
  intraOpNumThreads?: number
}

export interface ConvertFloat16Result {
  model: Model
  report: Float16Report
}

const FLOAT = DataType.FLOAT
const FLOAT16 = DataType.FLOAT16
type Precision = 16 | 32
type Need = Precision | 'any'

const q = JSON.stringify

function count<T>(items: readonly T[], key: (t: T) => string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const t of items) out[key(t)] = (out[key(t)] ?? 0) + 1
  return out
}

function toFloat16Tensor(t: Tensor, name = t.name): Tensor {
  return { ...t, name, dataType: FLOAT16, data: float32ToFloat16(t.data as Float32Array) }
}

/** The float32 values of the main graph: declared types, corrected by what ONNX Runtime infers. */
async function floatValues(model: Model): Promise<Set<string>> {
  const g = model.graph
  const floats = new Set<string>()
  for (const v of [...g.inputs, ...g.outputs, ...g.valueInfo]) if (v.elemType === FLOAT) floats.add(v.name)
  for (const [k, t] of g.initializers) if (t.dataType === FLOAT) floats.add(k)
  for (const [name, t] of await discoverValueTypes(model, { name: model.path })) {
    if (t.type === 'float32') floats.add(name)
    else if (t.type !== undefined) floats.delete(name)
  }
  return floats
}

function checkOptions(opts: ConvertFloat16Options, model: Model): void {
  for (const key of ['blockList', 'nodeBlockList'] as const) {
    const v = opts[key]
    if (v !== undefined && (!Array.isArray(v) || v.some((s) => typeof s !== 'string'))) {
      throw new TypeError(`convertFloat16: ${key} must be an array of strings`)
    }
  }
  if (opts.nodeBlockList) {
    const names = new Set(model.graph.nodes.map((n) => n.name))
    const missing = opts.nodeBlockList.filter((n) => !names.has(n))
    if (missing.length > 0) throw new TypeError(`convertFloat16: nodeBlockList names ${missing.map((n) => q(n)).join(', ')}, which the model's main graph does not have`)
  }
}

/** Makes the subgraphs of `node` read `to` wherever they read the outer value `from`. */
function redirectOuterReads(graph: Graph, from: string, to: string): void {
  if (definedNames(graph).has(from)) return
  for (const n of graph.nodes) {
    n.inputs = n.inputs.map((i) => (i === from ? to : i))
    for (const g of subgraphsOf(n)) redirectOuterReads(g, from, to)
  }
  for (const o of graph.outputs) if (o.name === from) o.name = to
}

/**
 * Converts a model to float16 (or stores its weights as bfloat16). Does not change `source`.
 */
export async function convertFloat16(source: ModelSource, opts: ConvertFloat16Options = {}): Promise<ConvertFloat16Result> {
  const input = await resolveModelSource(source)
  checkOptions(opts, input)
  const keepIoTypes = opts.keepIoTypes ?? true
  const model = cloneModel(input)
  const bytesBefore = modelToBytes(input).byteLength

  let report: Float16Report
  if (opts.bfloat16) {
    const r = storeInitializersAsBfloat16(model, { minElements: opts.bfloat16MinElements ?? 16 })
    report = {
      storage: 'bfloat16', keepIoTypes: true,
      nodes: { total: input.graph.nodes.length, converted: 0, blocked: 0, untouched: input.graph.nodes.length },
      convertedOps: {}, blockedOps: {}, blocked: [], overflow: [], rangeCheckedOnData: false,
      initializers: { converted: r.converted, kept: r.kept, copied: 0 },
      casts: r.casts, castsInserted: r.casts.length,
      bytes: { before: bytesBefore, after: 0, ratio: 0 },
    }
  } else {
    report = await toFloat16(input, model, opts, keepIoTypes, bytesBefore)
  }
  const bytes = modelToBytes(model)
  report.bytes = { before: bytesBefore, after: bytes.byteLength, ratio: bytes.byteLength / bytesBefore }
  if (opts.verify ?? true) await verifyWithOrt(bytes, model, report)
  return { model, report }
}

async function verifyWithOrt(bytes: Uint8Array, model: Model, report: Float16Report): Promise<void> {
  let runner: OrtRunner | undefined
  // Both levels: the optimisers fail on some float16 graphs that load without them.
  let level: 'disabled' | 'all' = 'disabled'
  try {
    runner = await OrtRunner.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: level, name: `${model.path ?? 'model'} (${report.storage})` })
    await runner.close()
    level = 'all'
    runner = await OrtRunner.create(bytes, { intraOpNumThreads: 1, graphOptimizationLevel: level, name: `${model.path ?? 'model'} (${report.storage}, optimised)` })
  } catch (err) {
    const m = err instanceof Error ? err.message : String(err)
    throw new GraphError(
      `convertFloat16: ONNX Runtime rejects the ${report.storage} model (graph optimisation ${level}): ${m}. Keep the op it names in float32 ` +
        '(add its type to blockList or its name to nodeBlockList) and report the case: the default block list should have caught it',
      { cause: err },
    )
  } finally {
    await runner?.close()
  }
}

async function toFloat16(input: Model, model: Model, opts: ConvertFloat16Options, keepIoTypes: boolean, bytesBefore: number): Promise<Float16Report> {
  const g = model.graph
  const opset = opsetVersion(model) ?? 1
  const floats = await floatValues(input)
  const isFloat = (v: string) => v !== '' && floats.has(v)
  const blockList = new Set(opts.blockList ?? Object.keys(DEFAULT_FLOAT16_BLOCK_LIST))
  const nodeBlockList = new Set(opts.nodeBlockList ?? [])
  const graphInputs = new Set(g.inputs.map((v) => v.name))
  const graphOutputs = new Set(g.outputs.map((v) => v.name))
  const producer = new Map<string, Node>()
  const readers = new Map<string, { node: Node; index: number }[]>()
  for (const node of g.nodes) {
    for (const o of node.outputs) if (o !== '') producer.set(o, node)
    node.inputs.forEach((v, index) => { if (v !== '') (readers.get(v) ?? readers.set(v, []).get(v)!).push({ node, index }) })
    for (const v of implicitInputs(node)) (readers.get(v) ?? readers.set(v, []).get(v)!).push({ node, index: -1 })
  }
  const touchesFloat = (n: Node) => n.inputs.some(isFloat) || n.outputs.some(isFloat) || [...implicitInputs(n)].some(isFloat)

  // 1. Values beyond float16's range: weights always, activations when data is given.
  const overflow: Float16Overflow[] = []
  const weightMax = (t: Tensor) => (t.dataType === FLOAT ? maxAbsFinite(t.data as Float32Array) : 0)
  for (const [name, t] of g.initializers) {
    const m = weightMax(t)
    if (m > FLOAT16_MAX) overflow.push({ tensor: name, maxAbs: m, source: 'weight' })
  }
  for (const node of g.nodes) {
    const value = node.opType === 'Constant' ? node.attributes.get('value') : undefined
    if (value?.type === 'tensor' && node.outputs[0]) {
      const m = weightMax(value.value)
      if (m > FLOAT16_MAX) overflow.push({ tensor: node.outputs[0], node: node.name, opType: node.opType, maxAbs: m, source: 'weight' })
    }
  }
  if (opts.data !== undefined) {
    const tapped = [...g.inputs.map((v) => v.name).filter((n) => isFloat(n) && !g.initializers.has(n))]
    for (const node of g.nodes) for (const o of node.outputs) if (isFloat(o) && node.opType !== 'Constant') tapped.push(o)
    for (const f of await findFloat16Overflows(input, tapped, opts.data, { signal: opts.signal, onProgress: opts.onProgress, intraOpNumThreads: opts.intraOpNumThreads })) {
      const p = producer.get(f.tensor)
      overflow.push({ tensor: f.tensor, node: p?.name, opType: p?.opType, maxAbs: f.maxAbs, source: 'data' })
    }
  }

  // 2. Which nodes stay float32, and why (first reason wins).
  const blocked = new Map<Node, Float16BlockedNode>()
  const block = (node: Node, b: Omit<Float16BlockedNode, 'node' | 'opType'>) => {
    if (!blocked.has(node)) blocked.set(node, { node: node.name, opType: node.opType, ...b })
  }
  for (const node of g.nodes) {
    if (!touchesFloat(node)) continue
    if (nodeBlockList.has(node.name)) block(node, { reason: 'nodeBlockList', detail: 'named in nodeBlockList' })
    else if (SUBGRAPH_OPS.has(node.opType) || subgraphsOf(node).length > 0) block(node, { reason: 'subgraph', detail: 'holds subgraphs, which stay float32 (Casts around the node)' })
    else if (node.domain !== '' && node.domain !== 'ai.onnx') block(node, { reason: 'domain', detail: `domain ${q(node.domain)}: type constraints unknown to quantkit` })
  }
  // Producers first, so that an op whose output overflows is named for that even when it also
  // reads an overflowing value; then the direct consumers.
  const seen = (f: Float16Overflow) => `max |x| = ${f.maxAbs.toPrecision(6)} > ${FLOAT16_MAX}${f.source === 'data' ? ' on the data' : ''}`
  for (const f of overflow) {
    const p = producer.get(f.tensor)
    if (p) block(p, { reason: 'overflow', detail: `output ${q(f.tensor)}: ${seen(f)}`, tensor: f.tensor, maxAbs: f.maxAbs })
    else if (f.source === 'weight') {
      for (const r of readers.get(f.tensor) ?? []) block(r.node, { reason: 'overflow', detail: `weight ${q(f.tensor)}: ${seen(f)}`, tensor: f.tensor, maxAbs: f.maxAbs })
    }
  }
  for (const f of overflow) {
    for (const r of readers.get(f.tensor) ?? []) block(r.node, { reason: 'overflowConsumer', detail: `reads ${q(f.tensor)}: ${seen(f)}`, tensor: f.tensor, maxAbs: f.maxAbs })
  }
  for (const node of g.nodes) {
    if (touchesFloat(node) && blockList.has(node.opType)) {
      const d = DEFAULT_FLOAT16_BLOCK_LIST[node.opType]
      block(node, { reason: 'blockList', detail: d ? `${d.reason}: ${d.detail}` : 'op type in blockList' })
    }
  }

  // 3. Precision of every float value: where it is produced, and what each reader needs.
  const fp16Node = (n: Node) => touchesFloat(n) && !blocked.has(n)
  const need = (node: Node, index: number): Need => {
    if (index >= 0 && ANY_TYPE_INPUTS[node.opType]?.includes(index)) return 'any'
    if (index < 0 || !fp16Node(node)) return 32
    if (FLOAT32_INPUTS[node.opType]?.(opset).includes(index)) return 32
    return 16
  }
  /** 16 when some reader wants float16 and none needs float32 (weights, constants, free inputs). */
  const byReaders = (v: string): Precision => {
    if (graphOutputs.has(v) && keepIoTypes) return 32
    const needs = (readers.get(v) ?? []).map((r) => need(r.node, r.index))
    return needs.includes(16) && !needs.includes(32) ? 16 : 32
  }
  const home = new Map<string, Precision>()
  for (const v of g.inputs) if (isFloat(v.name)) home.set(v.name, keepIoTypes ? 32 : byReaders(v.name))
  for (const k of g.initializers.keys()) if (isFloat(k) && !home.has(k)) home.set(k, byReaders(k))
  for (const node of g.nodes) {
    if (node.opType === 'Constant' && fp16Node(node) && node.outputs[0] && isFloat(node.outputs[0])) {
      // A constant is float16 only when its readers want it so (Resize's scales stay exact).
      if (byReaders(node.outputs[0]) === 32) block(node, { reason: 'float32Readers', detail: 'its value is read in float32 (Resize scales, a float32 region, a graph output), so it keeps its exact float32 value' })
    }
  }
  for (const node of g.nodes) {
    const keep32 = FLOAT32_OUTPUTS[node.opType] ?? []
    node.outputs.forEach((o, i) => { if (isFloat(o)) home.set(o, fp16Node(node) && !keep32.includes(i) ? 16 : 32) })
  }

  // 4. Rewrite: weights, node attributes, reads, graph inputs and outputs, Casts where needed.
  const taken = allValueNames(g)
  const fresh = (base: string) => { const n = uniqueName(g, base, taken); taken.add(n); return n }
  const names = new Map<string, { 16?: string; 32?: string }>()
  for (const [v, p] of home) names.set(v, { [p]: v })
  const casts: Float16Cast[] = []
  const newNodes: Node[] = []
  const addCast = (from: string, to: string, type: Precision, at: Float16Cast['at']) => {
    newNodes.push({ name: fresh(`${to}_Cast`), opType: 'Cast', domain: '', inputs: [from], outputs: [to], attributes: new Map([['to', { type: 'int', value: type === 16 ? FLOAT16 : FLOAT }]]) })
    casts.push({ from, to, type: type === 16 ? 'float16' : 'float32', at })
  }
  const initStats = { converted: 0, kept: 0, copied: 0 }
  for (const [k, t] of [...g.initializers]) {
    if (t.dataType !== FLOAT) continue
    if (home.get(k) === 16 && !graphInputs.has(k)) {
      g.initializers.set(k, toFloat16Tensor(t))
      initStats.converted++
    } else {
      initStats.kept++
    }
  }
  const nameFor = (v: string, p: Need, at: Float16Cast['at']): string => {
    const h = home.get(v)
    if (h === undefined) return v
    const entry = names.get(v)!
    if (p === 'any') return entry[h]!
    if (entry[p]) return entry[p]!
    const to = fresh(`${v}_${p === 16 ? 'fp16' : 'fp32'}`)
    const t = g.initializers.get(v)
    if (t && t.dataType === FLOAT && p === 16 && !graphInputs.has(v)) {
      // A float32 weight also read in float16: keep both rather than cast at run time.
      g.initializers.set(to, toFloat16Tensor(t, to))
      initStats.copied++
    } else {
      addCast(entry[h]!, to, p, at)
    }
    entry[p] = to
    return to
  }
  // Graph outputs computed in float16 keep their name as float32: the producer writes a new name.
  if (keepIoTypes) {
    for (const o of g.outputs) {
      if (home.get(o.name) !== 16) continue
      const p = producer.get(o.name)!
      const renamed = fresh(`${o.name}_fp16`)
      p.outputs = p.outputs.map((x) => (x === o.name ? renamed : x))
      names.set(o.name, { 16: renamed, 32: o.name })
      addCast(renamed, o.name, 32, 'graph output')
    }
  }
  for (const node of [...g.nodes]) {
    const fp16 = fp16Node(node)
    node.inputs = node.inputs.map((v, i) => {
      if (!isFloat(v)) return v
      const at = graphInputs.has(v) ? 'graph input' : 'region boundary'
      return nameFor(v, need(node, i), at)
    })
    for (const v of implicitInputs(node)) {
      if (isFloat(v) && home.get(v) === 16) {
        const to = nameFor(v, 32, 'subgraph input')
        for (const sg of subgraphsOf(node)) redirectOuterReads(sg, v, to)
      }
    }
    if (fp16) rewriteTypeAttributes(node, home)
  }
  for (const o of g.outputs) {
    if (!isFloat(o.name) || keepIoTypes) continue
    o.elemType = home.get(o.name) === 16 ? FLOAT16 : FLOAT
  }
  for (const v of g.inputs) if (!keepIoTypes && home.get(v.name) === 16) v.elemType = FLOAT16
  for (const v of g.valueInfo) if (v.elemType === FLOAT && names.get(v.name)?.[16] === v.name) v.elemType = FLOAT16
  g.nodes.push(...newNodes)
  g.nodes = topologicalOrder(g)

  const original = input.graph.nodes.length
  const cloned = [...blocked.keys()]
  const converted = model.graph.nodes.filter((n) => !newNodes.includes(n) && fp16Node(n))
  return {
    storage: 'float16',
    keepIoTypes,
    nodes: { total: original, converted: converted.length, blocked: cloned.length, untouched: original - converted.length - cloned.length },
    convertedOps: count(converted, (n) => n.opType),
    blockedOps: count(cloned, (n) => n.opType),
    blocked: [...blocked.values()],
    overflow,
    rangeCheckedOnData: opts.data !== undefined,
    initializers: initStats,
    casts,
    castsInserted: casts.length,
    bytes: { before: bytesBefore, after: 0, ratio: 0 },
  }
}

/** Attributes that fix a float32 output type, rewritten for a node now computing in float16. */
function rewriteTypeAttributes(node: Node, home: Map<string, Precision>): void {
  const out = node.outputs[0]
  if (!out || home.get(out) !== 16) return
  const a = node.attributes
  const set = (k: string, v: AttributeValue) => a.set(k, v)
  switch (node.opType) {
    case 'Cast': {
      const to = a.get('to')
      if (to?.type === 'int' && Number(to.value) === FLOAT) set('to', { type: 'int', value: FLOAT16 })
      return
    }
    case 'Constant': {
      const value = a.get('value')
      const vf = a.get('value_float')
      const vfs = a.get('value_floats')
      if (value?.type === 'tensor' && value.value.dataType === FLOAT) set('value', { type: 'tensor', value: toFloat16Tensor(value.value) })
      else if (vf?.type === 'float') {
        a.delete('value_float')
        set('value', { type: 'tensor', value: toFloat16Tensor({ name: '', dataType: FLOAT, dims: [], data: Float32Array.of(vf.value) }) })
      } else if (vfs?.type === 'floats') {
        a.delete('value_floats')
        set('value', { type: 'tensor', value: toFloat16Tensor({ name: '', dataType: FLOAT, dims: [vfs.value.length], data: Float32Array.from(vfs.value) }) })
      }
      return
    }
    case 'ConstantOfShape': {
      const value = a.get('value')
      if (value?.type === 'tensor') {
        if (value.value.dataType === FLOAT) set('value', { type: 'tensor', value: toFloat16Tensor(value.value) })
      } else {
        // The default value is float32 zero.
        set('value', { type: 'tensor', value: { name: '', dataType: FLOAT16, dims: [1], data: new Uint16Array(1) } })
      }
      return
    }
    default: {
      const dtype = a.get('dtype')
      if (dtype?.type === 'int' && Number(dtype.value) === FLOAT) set('dtype', { type: 'int', value: FLOAT16 })
      else if (!dtype && (node.opType === 'RandomNormal' || node.opType === 'RandomUniform')) set('dtype', { type: 'int', value: FLOAT16 })
    }
  }
}
