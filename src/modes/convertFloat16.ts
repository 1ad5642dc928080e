// convertFloat16: float32 weights and compute become float16, with Casts where float16 and
// float32 regions meet and (by default) at the graph's inputs and outputs, so that the model's
// interface stays float32. Nodes stay float32 when their op type is blocked (float16Ops.ts),
// when named in `nodeBlockList`, when they hold subgraphs (If/Loop/Scan bodies are left alone),
// when they belong to another domain, or when the range check finds values beyond float16's
// range (|x| > 65504) in their output or in a weight they read; the direct consumers of an
// overflowing output stay float32 too (a value is not followed further: once it has gone through
// the next op it is usually back in range, and the range check would catch it where not).
//
// The mode is a QuantSim configuration + a writer (docs/modes-architecture.md): the block rules
// above are placement rules of a sim with float16 placement (src/sim/float16Placement.ts: a float16
// quantizer on every tensor of the float16 regions, disabled ones with the reason on the nodes kept
// float32); the range check runs through the sim's calibration tap and places again with the
// overflowing ops blocked; `float16Sim` hands that sim out (sim.run simulates the float16 model);
// the writer (writeFloat16) turns the nodes whose tensors carry enabled quantizers into float16
// nodes. Only the main graph is rewritten. Weights are converted by the Rust kernel (halfFloat.ts).
// With `bfloat16`, only storage changes (no sim): see bfloat16Storage.ts.
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
import type { Float16PlacementRules } from '../sim/float16Placement.js'
import { QuantSim } from '../sim/quantSim.js'
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
 * The float16 conversion runs on a QuantSim (float16Sim gives the same sim, for simulation).
 */
export async function convertFloat16(source: ModelSource, opts: ConvertFloat16Options = {}): Promise<ConvertFloat16Result> {
  const input = await resolveModelSource(source)
  checkOptions(opts, input)
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
    report = await toFloat16(input, model, opts, bytesBefore)
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

/** What the float16 mode decided before writing: the values, the range findings and the blocks. */
interface Float16Plan {
  input: Model
  keepIoTypes: boolean
  opset: number
  floats: Set<string>
  overflow: Float16Overflow[]
  /** Nodes kept float32, by position in the main graph, with the first reason found. */
  blocked: Map<number, Float16BlockedNode>
  /** The placement rules the sim was given for `blocked`. */
  rules: Float16PlacementRules
  rangeCheckedOnData: boolean
}

/** Per-node facts of the input model, by position (node objects differ between the sim's copy and the writer's). */
function graphFacts(g: Graph, floats: Set<string>) {
  const isFloat = (v: string) => v !== '' && floats.has(v)
  const producer = new Map<string, number>()
  const readers = new Map<string, { index: number; slot: number }[]>()
  g.nodes.forEach((node, index) => {
    for (const o of node.outputs) if (o !== '') producer.set(o, index)
    node.inputs.forEach((v, slot) => { if (v !== '') (readers.get(v) ?? readers.set(v, []).get(v)!).push({ index, slot }) })
    for (const v of implicitInputs(node)) (readers.get(v) ?? readers.set(v, []).get(v)!).push({ index, slot: -1 })
  })
  const touchesFloat = (n: Node) => n.inputs.some(isFloat) || n.outputs.some(isFloat) || [...implicitInputs(n)].some(isFloat)
  return { isFloat, producer, readers, touchesFloat }
}

/** Precision input `slot` of `node` needs when the node computes in float16 (op tables of float16Ops.ts). */
function tableNeed(node: Node, slot: number, opset: number): Need {
  if (slot >= 0 && ANY_TYPE_INPUTS[node.opType]?.includes(slot)) return 'any'
  if (slot < 0 || FLOAT32_INPUTS[node.opType]?.(opset).includes(slot)) return 32
  return 16
}

/**
 * Which nodes stay float32, and why (first reason wins): nodeBlockList, subgraphs, other domains,
 * then values beyond float16's range (producers first, so that an op whose output overflows is
 * named for that even when it also reads an overflowing value; then the direct consumers), then
 * the block list, then Constants read in float32.
 */
function decideBlocks(g: Graph, plan: Pick<Float16Plan, 'floats' | 'keepIoTypes' | 'opset'>, overflow: readonly Float16Overflow[], opts: ConvertFloat16Options): Map<number, Float16BlockedNode> {
  const { isFloat, producer, readers, touchesFloat } = graphFacts(g, plan.floats)
  const blockList = new Set(opts.blockList ?? Object.keys(DEFAULT_FLOAT16_BLOCK_LIST))
  const nodeBlockList = new Set(opts.nodeBlockList ?? [])
  const blocked = new Map<number, Float16BlockedNode>()
  const block = (index: number, b: Omit<Float16BlockedNode, 'node' | 'opType'>) => {
    const node = g.nodes[index]!
    if (!blocked.has(index)) blocked.set(index, { node: node.name, opType: node.opType, ...b })
  }
  g.nodes.forEach((node, i) => {
    if (!touchesFloat(node)) return
    if (nodeBlockList.has(node.name)) block(i, { reason: 'nodeBlockList', detail: 'named in nodeBlockList' })
    else if (SUBGRAPH_OPS.has(node.opType) || subgraphsOf(node).length > 0) block(i, { reason: 'subgraph', detail: 'holds subgraphs, which stay float32 (Casts around the node)' })
    else if (node.domain !== '' && node.domain !== 'ai.onnx') block(i, { reason: 'domain', detail: `domain ${q(node.domain)}: type constraints unknown to quantkit` })
  })
  const seen = (f: Float16Overflow) => `max |x| = ${f.maxAbs.toPrecision(6)} > ${FLOAT16_MAX}${f.source === 'data' ? ' on the data' : ''}`
  for (const f of overflow) {
    const p = producer.get(f.tensor)
    if (p !== undefined) block(p, { reason: 'overflow', detail: `output ${q(f.tensor)}: ${seen(f)}`, tensor: f.tensor, maxAbs: f.maxAbs })
    else if (f.source === 'weight') {
      for (const r of readers.get(f.tensor) ?? []) block(r.index, { reason: 'overflow', detail: `weight ${q(f.tensor)}: ${seen(f)}`, tensor: f.tensor, maxAbs: f.maxAbs })
    }
  }
  for (const f of overflow) {
    for (const r of readers.get(f.tensor) ?? []) block(r.index, { reason: 'overflowConsumer', detail: `reads ${q(f.tensor)}: ${seen(f)}`, tensor: f.tensor, maxAbs: f.maxAbs })
  }
  g.nodes.forEach((node, i) => {
    if (touchesFloat(node) && blockList.has(node.opType)) {
      const d = DEFAULT_FLOAT16_BLOCK_LIST[node.opType]
      block(i, { reason: 'blockList', detail: d ? `${d.reason}: ${d.detail}` : 'op type in blockList' })
    }
  })
  // A constant is float16 only when its readers want it so (Resize's scales stay exact).
  const fp16 = (i: number) => touchesFloat(g.nodes[i]!) && !blocked.has(i)
  const need = (i: number, slot: number): Need => (slot >= 0 && tableNeed(g.nodes[i]!, slot, plan.opset) === 'any' ? 'any' : slot < 0 || !fp16(i) ? 32 : tableNeed(g.nodes[i]!, slot, plan.opset))
  const graphOutputs = new Set(g.outputs.map((v) => v.name))
  g.nodes.forEach((node, i) => {
    const out = node.outputs[0]
    if (node.opType !== 'Constant' || !fp16(i) || !out || !isFloat(out)) return
    const needs = (readers.get(out) ?? []).map((r) => need(r.index, r.slot))
    const half = !(graphOutputs.has(out) && plan.keepIoTypes) && needs.includes(16) && !needs.includes(32)
    if (!half) block(i, { reason: 'float32Readers', detail: 'its value is read in float32 (Resize scales, a float32 region, a graph output), so it keeps its exact float32 value' })
  })
  return blocked
}

function placementRules(plan: Pick<Float16Plan, 'floats' | 'keepIoTypes' | 'opset'>, blocked: Map<number, Float16BlockedNode>): Float16PlacementRules {
  return {
    isFloat: (v) => plan.floats.has(v),
    blocked: new Map([...blocked].map(([i, b]) => [i, `kept float32 (${b.reason}): ${b.detail}`])),
    inputNeed: (node, slot) => tableNeed(node, slot, plan.opset),
    float32Outputs: (node) => FLOAT32_OUTPUTS[node.opType] ?? [],
    keepIoTypes: plan.keepIoTypes,
  }
}

/** The sim's copy of the model: node names made unique and non-empty (float16 placement finds per-reader quantizers by name). */
function simCopy(input: Model): Model {
  const m = cloneModel(input)
  m.graph.nodes = m.graph.nodes.map((n) => ({ ...n }))
  const names = new Set<string>()
  for (const n of m.graph.nodes) names.add(n.name)
  const used = new Set<string>()
  m.graph.nodes.forEach((n, i) => {
    if (n.name !== '' && !used.has(n.name)) { used.add(n.name); return }
    let name = `${n.opType}_fp16sim_${i}`
    for (let k = 1; names.has(name) || used.has(name); k++) name = `${n.opType}_fp16sim_${i}_${k}`
    n.name = name
    used.add(name)
  })
  return m
}

/**
 * Plans the conversion on a QuantSim with float16 placement: weights beyond float16's range,
 * block rules, the sim, the range check on `opts.data` through the sim's calibration tap, and
 * the quantizers of overflowing ops disabled (the sim placed again). The sim is ready to run.
 */
async function planOnSim(input: Model, opts: ConvertFloat16Options): Promise<{ sim: QuantSim; plan: Float16Plan }> {
  const keepIoTypes = opts.keepIoTypes ?? true
  const g = input.graph
  const base = { floats: await floatValues(input), keepIoTypes, opset: opsetVersion(input) ?? 1 }
  // Values beyond float16's range: weights always (in Rust), activations when data is given (below).
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
  let blocked = decideBlocks(g, base, overflow, opts)
  const sim = await QuantSim.create(simCopy(input), { prepare: false, float16: placementRules(base, blocked), intraOpNumThreads: opts.intraOpNumThreads })
  try {
    if (opts.data !== undefined) {
      // The tensors the sim's placement gave a quantizer to: graph inputs and node outputs (not Constants).
      const tapped = sim.quantizers.filter((x) => (x.kind === 'input' && x.node === '') || (x.kind === 'output' && x.opType !== 'Constant')).map((x) => x.tensor)
      const found = findFloat16Overflows(await sim.observeRanges(opts.data, tapped, { signal: opts.signal, onProgress: opts.onProgress }))
      const { producer } = graphFacts(g, base.floats)
      for (const f of found) {
        const p = producer.get(f.tensor)
        const node = p === undefined ? undefined : g.nodes[p]
        overflow.push({ tensor: f.tensor, node: node?.name, opType: node?.opType, maxAbs: f.maxAbs, source: 'data' })
      }
      if (found.length > 0) {
        blocked = decideBlocks(g, base, overflow, opts)
        sim.setFloat16Placement(placementRules(base, blocked))
      }
    }
    await sim.computeEncodings([]) // float16 quantizers have no encodings; this only marks the sim ready
    return { sim, plan: { input, ...base, overflow, blocked, rules: placementRules(base, blocked), rangeCheckedOnData: opts.data !== undefined } }
  } catch (err) {
    await sim.close()
    throw err
  }
}

export interface Float16SimResult {
  /**
   * The QuantSim of the float16 conversion: a float16 quantizer (Cast to float16 and back) on every
   * float32 tensor of the regions that will compute in float16; the quantizers of nodes kept
   * float32 are disabled with the reason as their `note`. `sim.run` simulates the float16 model.
   * Close it when done.
   */
  sim: QuantSim
  /** Nodes kept float32 and values beyond float16's range, as convertFloat16's report gives them. */
  blocked: Float16BlockedNode[]
  overflow: Float16Overflow[]
}

/**
 * The float16 mode as a QuantSim configuration, without writing: placement, block list and range
 * check as convertFloat16 applies them (same options; `bfloat16` and `verify` do not apply).
 * For checking quality on the simulated float16 model before converting.
 */
export async function float16Sim(source: ModelSource, opts: ConvertFloat16Options = {}): Promise<Float16SimResult> {
  const input = await resolveModelSource(source)
  checkOptions(opts, input)
  if (opts.bfloat16) throw new TypeError('float16Sim: bfloat16 storage keeps float32 compute; there is nothing to simulate')
  const { sim, plan } = await planOnSim(input, opts)
  return { sim, blocked: [...plan.blocked.values()], overflow: plan.overflow }
}

async function toFloat16(input: Model, model: Model, opts: ConvertFloat16Options, bytesBefore: number): Promise<Float16Report> {
  const { sim, plan } = await planOnSim(input, opts)
  try {
    return writeFloat16(model, sim, plan, bytesBefore)
  } finally {
    await sim.close()
  }
}

/**
 * The writer: the nodes whose float tensors all carry enabled float16 quantizers in the sim become
 * float16 nodes (weights converted, type attributes rewritten), with Casts where float16 and
 * float32 regions meet and at the graph's edges (keepIoTypes). `model` is the writer's clone of
 * `plan.input` (same node order as the sim's copy).
 */
function writeFloat16(model: Model, sim: QuantSim, plan: Float16Plan, bytesBefore: number): Float16Report {
  const g = model.graph
  const { input, keepIoTypes, opset, overflow } = plan
  const { isFloat, touchesFloat } = graphFacts(g, plan.floats)
  const graphInputs = new Set(g.inputs.map((v) => v.name))
  const graphOutputs = new Set(g.outputs.map((v) => v.name))
  const producer = new Map<string, Node>()
  const readers = new Map<string, { node: Node; index: number }[]>()
  for (const node of g.nodes) {
    for (const o of node.outputs) if (o !== '') producer.set(o, node)
    node.inputs.forEach((v, index) => { if (v !== '') (readers.get(v) ?? readers.set(v, []).get(v)!).push({ node, index }) })
    for (const v of implicitInputs(node)) (readers.get(v) ?? readers.set(v, []).get(v)!).push({ node, index: -1 })
  }

  // Which nodes compute in float16: read from the sim's quantizers. A value whose own quantizer is
  // enabled is float16 for every reader; a float32 value is float16 for the readers that have a
  // quantizer of their own on it.
  const whole = new Set<string>()
  const perReader = new Set<string>()
  const paramOn = new Set<string>()
  for (const x of sim.quantizers) {
    if (!x.enabled || x.spec.dtype !== 'float' || x.spec.bitwidth !== 16) continue
    if (x.kind === 'input' && x.node !== '') perReader.add(`${x.tensor}\u0000${x.node}`)
    else whole.add(x.tensor)
    if (x.kind === 'param') paramOn.add(x.tensor)
  }
  const simNodes = sim.model.graph.nodes
  if (simNodes.length !== g.nodes.length) throw new Error('internal: the float16 sim and the writer see different graphs')
  const fromSim = (i: number): boolean | undefined => {
    const node = g.nodes[i]!
    if (!touchesFloat(node) || subgraphsOf(node).length > 0) return false
    const keep32 = FLOAT32_OUTPUTS[node.opType] ?? []
    let outputs = false
    for (const [s, o] of node.outputs.entries()) {
      if (!isFloat(o) || keep32.includes(s)) continue
      if (!whole.has(o)) return false
      outputs = true
    }
    let ownReads = false
    for (const [s, v] of node.inputs.entries()) {
      if (!isFloat(v) || tableNeed(node, s, opset) !== 16) continue
      const own = perReader.has(`${v}\u0000${simNodes[i]!.name}`)
      if (!own && !whole.has(v)) return false
      ownReads ||= own
    }
    // A node without float outputs reading float16 values its producers already wrote shows nothing in the sim.
    return outputs || ownReads ? true : undefined
  }
  const half = new Set<Node>()
  g.nodes.forEach((node, i) => {
    const s = fromSim(i)
    const rule = touchesFloat(node) && !plan.blocked.has(i)
    if (s !== undefined && s !== rule) throw new Error(`internal: the float16 sim's quantizers and the block rules disagree on node ${q(node.name)} (${node.opType})`)
    if (s ?? rule) half.add(node)
  })
  const blocked = new Map<Node, Float16BlockedNode>([...plan.blocked].map(([i, b]) => [g.nodes[i]!, b]))
  const fp16Node = (n: Node) => half.has(n)
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
  for (const [k, p] of home) {
    if (g.initializers.has(k) && !graphInputs.has(k) && g.initializers.get(k)!.dataType === FLOAT && (p === 16) !== paramOn.has(k)) {
      throw new Error(`internal: the float16 sim's quantizer on weight ${q(k)} disagrees with the writer`)
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
    rangeCheckedOnData: plan.rangeCheckedOnData,
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
