// quantizeDynamic: int8 weights ahead of time, activations quantized at run time (uint8, per
// tensor, from each batch's own range), for MatMul and Gemm (Conv on request). Written as ONNX
// Runtime's fused com.microsoft.DynamicQuantizeMatMul or as the standard DynamicQuantizeLinear +
// MatMulInteger/ConvInteger graph (dynamicFormats.ts); docs/dynamic.md.
//
// A node is rewritten when its op has a row in dynamicOps.ts and its weight is a constant float32
// initializer (2-D for MatMul/Gemm) that is not also a graph input. With `data`, FP32 and the
// dynamic model run on it: when the lowest output SQNR is below `minSqnrDb`, the layers whose own
// quantized output is worst go back to float, worst first, until the model passes; the report names
// them and why. Without data the report says quality was not checked. The input model is not changed.
import { pruneUnusedInitializers } from '../graph/graphEdits.js'
import { cloneModel, opsetVersion, type Model, type Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { upgradeOpset } from '../graph/opset/upgradeOpset.js'
import { CalibrationError, NothingToQuantizeError } from '../errors.js'
import { ExportError } from '../export/qdqModel.js'
import { DataType } from '../onnx/elementType.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import { modelToBytes } from '../onnx/saveModel.js'
import type { Tensor } from '../onnx/tensor.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import { dynamicQuantizeLinear, writeLayer, type QuantizedActivation, type WeightNames, type WriteContext } from './dynamicFormats.js'
import { DEFAULT_DYNAMIC_OPS, DYNAMIC_OPS, DYNAMIC_OP_TYPES, type DynamicOpType } from './dynamicOps.js'
import { collectBatches, QualityCheck, type ModelQuality } from './dynamicQuality.js'
import type { DynamicFloatLayer, DynamicFormat, DynamicLayer, DynamicQuality, DynamicQualityStep, DynamicReport, DynamicSkip } from './dynamicReport.js'
import { nonFiniteWeight, quantizeInt8Weight, WEIGHT_QMAX, type Int8Weight } from './dynamicWeights.js'
import { privateWeights, weightQuantizer, weightSim } from './modeSim.js'
import type { WeightSite } from './weightOnlyOps.js'
import { MS_DOMAIN } from './weightOnlyFormats.js'

export interface QuantizeDynamicOptions {
  /** Op types to rewrite; default ['MatMul', 'Gemm'] (Conv is opt-in: see dynamicOps.ts). */
  ops?: readonly DynamicOpType[]
  /** One weight scale per output channel (default) or one per tensor. */
  perChannel?: boolean
  /**
   * 'standard' (default): DynamicQuantizeLinear + MatMulInteger, any runtime with opset 11; measured
   * as fast as or faster than 'fused' in ORT (docs/dynamic.md). 'fused': com.microsoft.DynamicQuantizeMatMul
   * (ONNX Runtime only). Conv is always standard.
   */
  format?: DynamicFormat
  /** Feeds to check output quality on (an array or iterable of batches, or a function); read once and kept in memory. */
  data?: CalibrationData
  /** The lowest acceptable SQNR of any float32 output against FP32, in dB; default 20. Only with `data`. */
  minSqnrDb?: number
  /** Node names to leave in float. */
  exclude?: readonly string[]
  /** ORT intra-op threads for the quality check; default: the machine's parallelism. */
  intraOpNumThreads?: number
  signal?: AbortSignal
}

export interface QuantizeDynamicResult {
  model: Model
  report: DynamicReport
}

/**
 * 20 dB: noise power 1 % of the signal's (RMS error 10 %). Healthy dynamic int8 models sit well above
 * it (tiny MNIST transformer 42.6 dB, MNIST CNN with Conv 39 dB; docs/dynamic.md); a collapse like ORT's Conv-included
 * PP-OCRv4 rec (accuracy 0.993 → 0.005) is near or below 0 dB. 20 dB leaves a wide margin on both
 * sides: a judgement, not a measured knee.
 */
export const DEFAULT_MIN_SQNR_DB = 20

const q = JSON.stringify

interface Resolved {
  ops: Set<DynamicOpType>
  perChannel: boolean
  format: DynamicFormat
  minSqnrDb: number
  exclude: Set<string>
  data?: CalibrationData
  intraOpNumThreads?: number
  signal?: AbortSignal
}

function resolveOptions(opts: QuantizeDynamicOptions = {}): Resolved {
  if (typeof opts !== 'object' || opts === null) throw new TypeError('quantizeDynamic: options must be an object')
  const ops = opts.ops ?? DEFAULT_DYNAMIC_OPS
  if (!Array.isArray(ops) || ops.length === 0) throw new RangeError(`quantizeDynamic: ops must be a non-empty list of ${DYNAMIC_OP_TYPES.join(', ')}`)
  for (const op of ops) {
    if (!(op in DYNAMIC_OPS)) throw new RangeError(`quantizeDynamic: ops: ${q(op)} is not supported; expected some of ${DYNAMIC_OP_TYPES.join(', ')}`)
  }
  const format = opts.format ?? 'standard'
  if (format !== 'fused' && format !== 'standard') throw new RangeError(`quantizeDynamic: format must be 'fused' or 'standard', got ${q(format)}`)
  const minSqnrDb = opts.minSqnrDb ?? DEFAULT_MIN_SQNR_DB
  if (typeof minSqnrDb !== 'number' || Number.isNaN(minSqnrDb)) throw new RangeError(`quantizeDynamic: minSqnrDb must be a number of dB, got ${String(minSqnrDb)}`)
  if (opts.minSqnrDb !== undefined && opts.data === undefined) throw new TypeError('quantizeDynamic: minSqnrDb needs data to check it on')
  const threads = opts.intraOpNumThreads
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new RangeError(`quantizeDynamic: intraOpNumThreads must be a positive integer, got ${String(threads)}`)
  return {
    ops: new Set(ops),
    perChannel: opts.perChannel ?? true,
    format,
    minSqnrDb,
    exclude: new Set(opts.exclude ?? []),
    ...(opts.data !== undefined ? { data: opts.data } : {}),
    ...(threads ? { intraOpNumThreads: threads } : {}),
    ...(opts.signal ? { signal: opts.signal } : {}),
  }
}

/** One layer that can be quantized: where it is and its int8 weight (shared by layers reading one weight). */
interface Layer {
  index: number
  label: string
  opType: DynamicOpType
  kind: 'matmul' | 'conv'
  site: WeightSite
  weight: Tensor
  /** Output channels: N of [K, N], M of a Conv weight. */
  channels: number
  /** A float initializer to add after the product: beta·C (Gemm, beta ≠ 1) or Conv's B shaped to broadcast. */
  biasTensor?: Tensor
  /** Gemm's C read by name (beta = 1), computed or not. */
  biasName?: string
  /** The bias is a 1-D [N] tensor (DynamicQuantizeMatMul's bias input). */
  biasFusable: boolean
  key: string
  q?: Int8Weight
  shared: boolean
  layerSqnrDb?: number
}

function plan(model: Model, o: Resolved): { layers: Layer[]; skipped: DynamicSkip[] } {
  const g = model.graph
  const graphInputs = new Set(g.inputs.map((v) => v.name))
  const layers: Layer[] = []
  const skipped: DynamicSkip[] = []
  g.nodes.forEach((node, index) => {
    const rule = DYNAMIC_OPS[node.opType as DynamicOpType]
    if (!rule || !Object.hasOwn(DYNAMIC_OPS, node.opType) || (node.domain !== '' && node.domain !== 'ai.onnx') || !o.ops.has(node.opType as DynamicOpType)) return
    const opType = node.opType as DynamicOpType
    const label = node.name || `${node.opType}_${index}`
    const skip = (reason: string) => { skipped.push({ node: label, opType, reason }) }
    if (o.exclude.has(node.name)) return skip('excluded by options.exclude')
    const site = rule.site(node)
    if ('skip' in site) return skip(site.skip)
    const w = g.initializers.get(site.weight)
    if (!w) return skip(`weight ${q(site.weight)} is not an initializer (computed at run time)`)
    if (graphInputs.has(site.weight)) return skip(`weight ${q(site.weight)} is also a graph input, so it can be overridden at run time`)
    if (w.dataType !== DataType.FLOAT) return skip(`weight ${q(site.weight)} is not float32 (data type ${w.dataType})`)
    if (!rule.weightRank(w.dims.length)) return skip(`weight ${q(site.weight)} has shape [${w.dims.join(', ')}], which ${opType} dynamic quantization does not take`)
    if (w.dims.some((d) => d === 0)) return skip(`weight ${q(site.weight)} is empty`)
    const channels = rule.kind === 'conv' ? w.dims[0]! : site.transposed ? w.dims[0]! : w.dims[1]!
    const layer: Layer = { index, label, opType, kind: rule.kind, site, weight: w, channels, biasFusable: false, key: `${site.weight}\u0000${site.transposed}\u0000${rule.kind}`, shared: false }
    if (site.bias) {
      const c = g.initializers.get(site.bias.name)
      const constant = c !== undefined && c.dataType === DataType.FLOAT && !graphInputs.has(site.bias.name)
      if (rule.kind === 'conv') {
        if (!constant || c.dims.length !== 1 || c.dims[0] !== channels) return skip(`Conv bias ${q(site.bias.name)} is not a constant float32 [${channels}] initializer`)
        // [M] → [M, 1, …]: added to the [N, M, spatial…] output after scaling.
        layer.biasTensor = { ...c, dims: [channels, ...Array<number>(w.dims.length - 2).fill(1)] }
      } else if (site.bias.beta !== 1) {
        if (!constant) return skip(`Gemm with beta=${site.bias.beta} and a C that is not a constant float32 initializer`)
        const beta = site.bias.beta
        layer.biasTensor = { ...c, dims: [...c.dims], data: Float32Array.from(c.data as Float32Array, (v) => Math.fround(beta * v)) }
        layer.biasFusable = c.dims.length === 1 && c.dims[0] === channels
      } else {
        layer.biasName = site.bias.name
        layer.biasFusable = constant && c.dims.length === 1 && c.dims[0] === channels
      }
    }
    layers.push(layer)
  })
  return { layers, skipped }
}

/**
 * The layers' int8 weights, from QuantSim (docs/modes-architecture.md): a sim over `base` whose
 * only enabled quantizers are these weights, each strict-symmetric int8 (grid [−127, 127]) per
 * channel (on the channel axis placement gives the op) or per tensor; the writer codes each weight
 * with its quantizer's scales. Weights holding NaN or ±inf, and weights placement gives no
 * parameter quantizer, are skipped with the reason.
 */
async function quantizeLayers(base: Model, layers: Layer[], o: Resolved, skipped: DynamicSkip[]): Promise<Layer[]> {
  const bad = new Map<string, string | undefined>()
  for (const l of layers) {
    if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted')
    if (!bad.has(l.key)) bad.set(l.key, await nonFiniteWeight(l.weight.data as Float32Array, o.signal))
  }
  const usable = layers.filter((l) => {
    const why = bad.get(l.key)
    if (why) skipped.push({ node: l.label, opType: l.opType, reason: `weight ${q(l.site.weight)}: ${why}` })
    return !why
  })
  if (usable.length === 0) return []
  // The sim works on its own copy of the graph (initializers shared): private weight names must
  // not leak into the model this mode writes.
  const simModel = cloneModel(base)
  const { tensorOf } = privateWeights(simModel, usable.map((l) => ({ key: l.key, node: simModel.graph.nodes[l.index]!, slot: 1 })))
  // A layer's input is float (ONNX types A like W): declared so, placement gives it an activation
  // quantizer, which this mode marks dynamic (its writer's DynamicQuantizeLinear).
  const declared = new Set([...simModel.graph.inputs, ...simModel.graph.outputs, ...simModel.graph.valueInfo].map((v) => v.name))
  const inputOf = (l: Layer) => simModel.graph.nodes[l.index]!.inputs[0]!
  for (const l of usable) {
    const a = inputOf(l)
    if (!declared.has(a)) simModel.graph.valueInfo.push({ name: a, elemType: DataType.FLOAT })
    declared.add(a)
  }
  const { sim, unplaced } = await weightSim(simModel, tensorOf.values())
  try {
    for (const t of new Set(tensorOf.values())) {
      if (unplaced.has(t)) continue
      sim.setQuantizer(t, { enabled: true, bitwidth: 8, symmetric: true, strictSymmetric: true, perChannel: o.perChannel })
    }
    const inputs = new Set(usable.filter((l) => !unplaced.has(tensorOf.get(l.key)!)).map(inputOf))
    for (const a of inputs) {
      if (sim.quantizers.some((x) => x.tensor === a && x.kind !== 'param')) sim.setQuantizer(a, { enabled: true, dynamic: true })
    }
    await sim.computeEncodings([])
    const made = new Map<string, Int8Weight>()
    const kept: Layer[] = []
    for (const l of usable) {
      if (o.signal?.aborted) throw o.signal.reason ?? new Error('aborted')
      const tensor = tensorOf.get(l.key)!
      if (unplaced.has(tensor)) {
        skipped.push({ node: l.label, opType: l.opType, reason: `QuantSim placed no parameter quantizer on weight ${q(l.site.weight)}` })
        continue
      }
      let r = made.get(l.key)
      l.shared = r !== undefined
      if (!r) {
        const wq = weightQuantizer(sim, tensor)
        const enc = wq.encodings!
        if (enc.some((e) => e.qmin !== -WEIGHT_QMAX || e.qmax !== WEIGHT_QMAX || e.offset !== 0)) {
          throw new Error(`internal: the sim's quantizer on ${q(tensor)} is not strict-symmetric int8`)
        }
        r = await quantizeInt8Weight(l.weight.data as Float32Array, {
          shape: l.weight.dims,
          channelAxis: wq.spec.axis ?? 0,
          perChannel: wq.spec.axis !== undefined,
          transpose: l.site.transposed,
          unsigned: l.kind === 'conv',
          scales: Float32Array.from(enc, (e) => e.scale),
          ...(o.signal ? { signal: o.signal } : {}),
        })
        made.set(l.key, r)
      }
      l.q = r
      kept.push(l)
    }
    return kept
  } finally {
    await sim.close()
  }
}

/** The weight's initializers: codes, scale(s) and zero point(s), in the shapes the integer ops want. */
function weightTensors(l: Layer, o: Resolved, fresh: (base: string) => string): Tensor[] {
  const w = l.q!
  const base = l.site.weight
  const perChannel = o.perChannel
  if (l.kind === 'conv') {
    const ones = Array<number>(l.weight.dims.length - 2).fill(1)
    return [
      { name: fresh(`${base}_quantized`), dataType: DataType.UINT8, dims: [...l.weight.dims], data: w.codes },
      { name: fresh(`${base}_scale`), dataType: DataType.FLOAT, dims: perChannel ? [l.channels, ...ones] : [], data: w.scales },
      // ONNX Runtime's ConvInteger takes one zero point: 128 for every channel (symmetric codes + 128).
      { name: fresh(`${base}_zero_point`), dataType: DataType.UINT8, dims: [], data: Uint8Array.of(128) },
    ]
  }
  const [k, n] = l.site.transposed ? [l.weight.dims[1]!, l.weight.dims[0]!] : [l.weight.dims[0]!, l.weight.dims[1]!]
  return [
    { name: fresh(`${base}_quantized`), dataType: DataType.INT8, dims: [k, n], data: w.codes },
    { name: fresh(`${base}_scale`), dataType: DataType.FLOAT, dims: perChannel ? [n] : [], data: w.scales },
    { name: fresh(`${base}_zero_point`), dataType: DataType.INT8, dims: perChannel ? [n] : [], data: new Int8Array(perChannel ? n : 1) },
  ]
}

interface Built {
  model: Model
  /** In 'tap' mode: each layer's float output and its quantized copy's. */
  taps: { float: string; quantized: string }[]
}

/**
 * The base model with `chosen` layers quantized: 'replace' rewrites them; 'tap' keeps the float
 * graph and adds each quantized layer beside its float one (reading the same float input), both
 * outputs exposed, for the per-layer measure.
 */
function build(base: Model, chosen: readonly Layer[], o: Resolved, mode: 'replace' | 'tap'): Built {
  const model = cloneModel(base)
  const g = model.graph
  const names = allValueNames(g)
  const fresh = (b: string) => { const n = uniqueName(g, b, names); names.add(n); return n }
  const activations = new Map<string, QuantizedActivation>()
  const ctx: WriteContext = {
    fresh,
    quantizeActivation(input, into) {
      let a = activations.get(input)
      if (!a) {
        const d = dynamicQuantizeLinear(input, fresh)
        into.push(d.node)
        activations.set(input, d.out)
        a = d.out
      }
      return a
    },
  }
  const weights = new Map<string, WeightNames>()
  const replaced = new Map<Node, Node[]>()
  const taps: Built['taps'] = []
  let fused = false
  for (const l of [...chosen].sort((a, b) => a.index - b.index)) {
    const node = g.nodes[l.index]!
    let wn = weights.get(l.key)
    if (!wn) {
      const t = weightTensors(l, o, fresh)
      for (const x of t) g.initializers.set(x.name, x)
      wn = { codes: t[0]!.name, scale: t[1]!.name, zeroPoint: t[2]!.name }
      weights.set(l.key, wn)
    }
    let bias = l.biasName
    if (l.biasTensor) {
      bias = fresh(`${l.biasTensor.name}_${l.kind === 'conv' ? 'reshaped' : 'beta'}`)
      g.initializers.set(bias, { ...l.biasTensor, name: bias })
    }
    const floatOut = node.outputs[0]!
    const output = mode === 'replace' ? floatOut : fresh(`${floatOut}_dynamic`)
    const nodes = writeLayer(o.format, {
      node, label: l.label, kind: l.kind, input: node.inputs[0]!, output, weight: wn,
      ...(bias ? { bias, biasFusable: l.biasFusable } : {}),
    }, ctx)
    fused ||= nodes.some((n) => n.domain === MS_DOMAIN)
    replaced.set(node, mode === 'replace' ? nodes : [node, ...nodes])
    taps.push({ float: floatOut, quantized: output })
  }
  g.nodes = g.nodes.flatMap((n) => replaced.get(n) ?? [n])
  if (mode === 'tap') {
    const outs = new Set(g.outputs.map((v) => v.name))
    for (const t of taps) for (const name of [t.float, t.quantized]) if (!outs.has(name)) { g.outputs.push({ name, elemType: DataType.FLOAT }); outs.add(name) }
  } else {
    pruneUnusedInitializers(g, chosen.flatMap((l) => [l.site.weight, ...(l.site.bias ? [l.site.bias.name] : [])]))
  }
  if (fused && !model.opsetImports.some((x) => x.domain === MS_DOMAIN)) model.opsetImports.push({ domain: MS_DOMAIN, version: 1 })
  return { model, taps }
}

/** DynamicQuantizeLinear needs ai.onnx 11: upgrade older models when the standard form is written. */
function ensureOpset(model: Model, o: Resolved, notes: string[]): Model {
  const current = opsetVersion(model) ?? 0
  if (current >= 11 || (o.format === 'fused' && !o.ops.has('Conv'))) return model
  const up = upgradeOpset(model, 11)
  if (!up.report.upgradable) {
    const blockers = up.report.blockers.map((b) => `${b.node || '(unnamed)'} (${b.opType}): ${b.reason}`).join('; ')
    throw new ExportError(`quantizeDynamic: DynamicQuantizeLinear needs opset 11 and the model (opset ${current}) cannot be upgraded: ${blockers}. ` +
      "Use format 'fused' with ops ['MatMul', 'Gemm'] (ONNX Runtime's contrib op needs no upgrade).")
  }
  notes.push(`opset upgraded from ${current} to 11 for DynamicQuantizeLinear`)
  return up.model
}

function describeModel(model: Model): string {
  return model.path ? q(model.path) : `model ${q(model.graph.name || '(unnamed graph)')}`
}

function noLayersError(model: Model, o: Resolved, skipped: DynamicSkip[]): NothingToQuantizeError {
  const present = new Map<string, number>()
  for (const n of model.graph.nodes) present.set(n.opType, (present.get(n.opType) ?? 0) + 1)
  const wanted = [...o.ops].join('/')
  const others = DYNAMIC_OP_TYPES.filter((t) => !o.ops.has(t) && present.has(t))
  const why = skipped.length > 0
    ? ` Candidates passed over: ${skipped.slice(0, 8).map((s) => `${s.node} (${s.opType}): ${s.reason}`).join('; ')}${skipped.length > 8 ? `; and ${skipped.length - 8} more` : ''}.`
    : ` The model has no ${wanted} node at all (its ops: ${[...present.keys()].sort().join(', ') || 'none'}).`
  const hint = others.length > 0 ? ` It has ${others.map((t) => `${present.get(t)} ${t}`).join(', ')}: add ${others.map((t) => q(t)).join(', ')} to ops to quantize ${others.length > 1 ? 'them' : 'it'}.` : ''
  return new NothingToQuantizeError(`quantizeDynamic: ${describeModel(model)} has no ${wanted} with a constant float32 weight, so dynamic quantization has nothing to do.${why}${hint}`)
}

function layerBytes(l: Layer): number {
  return l.q!.codes.byteLength + l.q!.scales.byteLength + (l.kind === 'conv' ? 1 : l.q!.scales.length)
}

/**
 * Quantizes MatMul/Gemm (and, when asked, Conv) weights to int8 and rewrites the layers to quantize
 * their input activation at run time. Returns a new model and a report; throws
 * NothingToQuantizeError when no layer qualifies.
 */
export async function quantizeDynamic(source: ModelSource, opts: QuantizeDynamicOptions = {}): Promise<QuantizeDynamicResult> {
  const o = resolveOptions(opts)
  const input = await resolveModelSource(source)
  const notes: string[] = []
  const opsetBefore = opsetVersion(input) ?? 0
  const first = plan(input, o)
  if (first.layers.length === 0) throw noLayersError(input, o, first.skipped)
  const base = ensureOpset(input, o, notes)
  // The upgrade makes new node objects (same list, same order): plan again on what is rewritten.
  const { layers: planned, skipped } = base === input ? first : plan(base, o)
  const layers = await quantizeLayers(base, planned, o, skipped)
  if (layers.length === 0) throw noLayersError(input, o, skipped)

  let chosen: Layer[] = layers
  const keptFloat: DynamicFloatLayer[] = []
  let quality: DynamicQuality
  if (o.data === undefined) {
    quality = { checked: false, reason: 'no data given: the dynamic model\'s outputs were not compared with FP32. Pass `data` (a few hundred representative samples) to check them and leave collapsing layers in float.' }
    notes.push('quality was not checked (no data)')
  } else {
    const inputNames = input.graph.inputs.map((i) => i.name).filter((n) => !input.graph.initializers.has(n))
    const batches = await collectBatches(o.data, inputNames, o.signal)
    if (batches.length === 0) throw new CalibrationError('quantizeDynamic: data is empty: give at least one batch of feeds to check quality on, or leave data out')
    const checkOpts = { ...(o.signal ? { signal: o.signal } : {}), ...(o.intraOpNumThreads ? { intraOpNumThreads: o.intraOpNumThreads } : {}) }
    const check = await QualityCheck.create(modelToBytes(input), batches, checkOpts)
    const tapped = build(base, layers, o, 'tap')
    const perLayer = await check.layerSqnr(modelToBytes(tapped.model), tapped.taps)
    layers.forEach((l, i) => { l.layerSqnrDb = perLayer[i]! })
    // Worst first; graph order breaks ties.
    const order = [...layers].sort((a, b) => a.layerSqnrDb! - b.layerSqnrDb! || a.index - b.index)
    const steps: DynamicQualityStep[] = []
    const evaluated = new Map<number, ModelQuality>()
    const evaluate = async (k: number): Promise<ModelQuality> => {
      let r = evaluated.get(k)
      if (!r) {
        // k = every layer: nothing is quantized and the model computes FP32 exactly.
        r = k >= order.length
          ? { sqnrDb: Infinity, outputs: [] }
          : await check.evaluate(modelToBytes(build(base, order.slice(k), o, 'replace').model))
        evaluated.set(k, r)
        steps.push({ floatLayers: k, sqnrDb: r.sqnrDb })
      }
      return r
    }
    const all = await evaluate(0)
    let k = 0
    if (all.sqnrDb < o.minSqnrDb) {
      // Grow the float set 1, 2, 4, … worst layers until the model passes, then bisect for the
      // smallest passing count (assumes more float layers never lowers the SQNR, as measured).
      let lo = 0
      let hi = 1
      while (hi < order.length && (await evaluate(hi)).sqnrDb < o.minSqnrDb) { lo = hi; hi = Math.min(hi * 2, order.length) }
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1
        if ((await evaluate(mid)).sqnrDb >= o.minSqnrDb) hi = mid
        else lo = mid
      }
      k = hi
      const final = await evaluate(k)
      order.slice(0, k).forEach((l, i) => keptFloat.push({
        node: l.label,
        opType: l.opType,
        layerSqnrDb: l.layerSqnrDb!,
        reason: `with every layer quantized the lowest output SQNR was ${all.sqnrDb.toFixed(1)} dB, below minSqnrDb ${o.minSqnrDb} dB; ` +
          `this layer's own quantized output is ${l.layerSqnrDb!.toFixed(1)} dB (worst ${i + 1} of ${order.length}), and leaving the ${k} worst in float gives ` +
          `${Number.isFinite(final.sqnrDb) ? `${final.sqnrDb.toFixed(1)} dB` : 'the FP32 outputs exactly'}`,
      }))
      chosen = order.slice(k)
      if (chosen.length === 0) notes.push('every layer was left in float: the returned model computes what the FP32 model does')
    }
    const final = await evaluate(k)
    const summary = (m: ModelQuality) => ({ sqnrDb: m.sqnrDb, outputs: m.outputs, ...(m.top1Agreement !== undefined ? { top1Agreement: m.top1Agreement } : {}) })
    quality = {
      checked: true,
      samples: check.samples,
      batches: batches.length,
      minSqnrDb: o.minSqnrDb,
      allQuantized: summary(all),
      final: summary(final),
      passed: final.sqnrDb >= o.minSqnrDb,
      steps,
    }
  }

  const model = build(base, chosen, o, 'replace').model
  const quantized = new Set(chosen)
  const counted = new Set<string>()
  const reportLayers: DynamicLayer[] = layers.map((l) => {
    const isQ = quantized.has(l)
    const first = isQ && !counted.has(l.key)
    if (first) counted.add(l.key)
    const bias = l.site.bias
      ? l.kind === 'conv' ? 'B added after scaling, reshaped to broadcast'
        : o.format === 'fused' && l.biasFusable ? `C${l.biasTensor ? ` (beta=${l.site.bias.beta} folded in)` : ''} is DynamicQuantizeMatMul's bias input`
          : `C${l.biasTensor ? ` (beta=${l.site.bias.beta} folded in)` : ''} added after the product`
      : undefined
    return {
      node: l.label,
      opType: l.opType,
      weight: l.site.weight,
      shape: [...l.weight.dims],
      transposed: l.site.transposed,
      perChannel: o.perChannel,
      kernel: l.kind === 'conv' ? 'ConvInteger' : o.format === 'fused' ? 'DynamicQuantizeMatMul' : 'MatMulInteger',
      weightSqnrDb: l.q!.sqnrDb,
      ...(l.layerSqnrDb !== undefined ? { layerSqnrDb: l.layerSqnrDb } : {}),
      quantized: isQ,
      bytesBefore: first ? l.weight.data.byteLength : 0,
      bytesAfter: first ? layerBytes(l) : 0,
      ...(l.shared ? { sharedWeight: true } : {}),
      ...(bias ? { bias } : {}),
    }
  })
  if (o.format === 'fused' && o.ops.has('Conv') && layers.some((l) => l.kind === 'conv')) notes.push('Conv has no fused form: Conv layers are written as DynamicQuantizeLinear + ConvInteger')
  if (layers.some((l) => l.kind === 'conv')) notes.push('ConvInteger weights are uint8 with zero point 128 (ONNX Runtime\'s CPU ConvInteger has no int8-weight kernel); the grid is the same symmetric one')
  const report: DynamicReport = {
    format: o.format,
    perChannel: o.perChannel,
    ops: [...o.ops],
    opsetBefore,
    opsetAfter: opsetVersion(model) ?? 0,
    layers: reportLayers,
    keptFloat,
    skipped,
    quality,
    totals: {
      layers: layers.length,
      quantized: chosen.length,
      keptFloat: keptFloat.length,
      skipped: skipped.length,
      weightBytesBefore: reportLayers.reduce((s, l) => s + l.bytesBefore, 0),
      weightBytesAfter: reportLayers.reduce((s, l) => s + l.bytesAfter, 0),
    },
    notes,
  }
  return { model, report }
}
