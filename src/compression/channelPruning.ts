// Channel pruning (AIMET's InputChannelPruner, aimet_torch/channel_pruning/channel_pruner.py) on
// ONNX: a Conv keeps the input channels chosen for it (selection.ts rules: AIMET's weight
// magnitude by default, or the greedy contribution to the output on sampled data), the Conv
// producing those channels loses the matching output channels through the per-channel ops in
// between (pruningPlan.ts), and the Conv's remaining weights (and bias) are refitted by least
// squares so that its output on sampled patches matches the original layer's (AIMET's
// WeightReconstructor, sklearn LinearRegression with an intercept when the layer has a bias).
//
// compressOne prunes one layer of the original model on cached samples (cheap: the greedy search
// calls it at every candidate ratio). compressAll prunes in topological order; each layer after
// the first is refitted on its input in the model pruned so far, against the original outputs.
import { AbortError } from '../errors.js'
import { attrInt } from '../graph/attributes.js'
import { graphIndex } from '../graph/graphIndex.js'
import { cloneModel, type Graph, type Model, type Node } from '../graph/model.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { leastSquares } from '../linalg.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import { sampleLayers, resampleInput, type LayerSamples, type SamplingOptions } from './channelSampling.js'
import { CompressionError } from './compressionErrors.js'
import type { CompressibleLayer, Cost, LayerCompressionDetail, LayerCompressor } from './layerCompressor.js'
import { layerCosts, measureLayerShapes, type LayerCostEntry, type LayerShapes } from './layerCost.js'
import { channelMagnitudes, contributionGram, designMatrix, gatherAxis, greedyKeep, MAX_CONTRIBUTION_COLS, splitSolution, topChannels } from './pruningKernels.js'
import { narrowProducer, planInputPruning, type PruningPlan } from './pruningPlan.js'

const q = JSON.stringify
const FLOAT = 1

export interface ChannelPruningOptions {
  /** Output positions sampled per image for the reconstruction (AIMET: 10). */
  samplesPerImage?: number
  /** Reconstruction samples in all (AIMET's num_reconstruction_samples); images used = ⌈maxSamples / samplesPerImage⌉. Default 5000. */
  maxSamples?: number
  /** Kept channels are rounded up to a multiple of this (capped at all channels). Default 1. */
  multipleOf?: number
  /** compressModel's name for `multipleOf`. */
  channelMultiple?: number
  /** Conv node names to leave alone. */
  ignore?: readonly string[]
  signal?: AbortSignal
  /** 'magnitude' (AIMET: Σ w² per input channel) or 'contribution' (greedy on sampled outputs). Default 'magnitude'. */
  selection?: 'magnitude' | 'contribution'
  /** Refit the kept weights by least squares (AIMET does). Default true; false just drops the channels. */
  reconstruct?: boolean
  /** λ of the ridge term in the least squares (default 0, as AIMET's LinearRegression). */
  ridge?: number
  /** Seed of the sampled positions (default 0). */
  seed?: number
  /** Cap on whole activation tensors held while sampling (bytes, default 1 GiB). */
  maxCacheBytes?: number
  /** Measured layer shapes (layerCost.measureLayerShapes); measured here when absent. */
  shapes?: LayerShapes
}

interface PrunableLayer {
  node: Node
  index: number
  plan: PruningPlan
  weightDims: number[]
  channels: number
  outChannels: number
  inner: number
  hasBias: boolean
}

function positiveInt(v: unknown, name: string, fallback: number): number {
  if (v === undefined) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new CompressionError(`channel pruning option ${name}: expected an integer ≥ 1, got ${String(v)}`)
  return v
}

function checkAbort(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('channel pruning aborted', { cause: signal.reason })
}

const scale = (c: Cost, f: number): Cost => ({ mac: c.mac * f, memory: c.memory * f })

/**
 * Without a unique least-squares solution (fewer samples than unknowns, dependent columns) sklearn's
 * LinearRegression (AIMET) then returns the minimum-norm one, the limit of ridge λ → 0; a ridge of
 * 1e-6 × the mean squared column norm of A stands in for it.
 */
function minimumNormRidge(a: Float32Array, cols: number): number {
  const sumSquares = channelMagnitudes(a, 1, 1, a.length)[0]!
  return Math.max(1e-6 * (sumSquares / cols), Number.MIN_VALUE)
}

/** Why a costed Conv cannot have its input channels pruned by itself, or undefined. */
function layerReason(graph: Graph, node: Node, users: (name: string) => Node[]): string | undefined {
  const w = graph.initializers.get(node.inputs[1]!)!
  if (w.dataType !== FLOAT) return `its weight ${q(w.name)} is not float32`
  if (w.dims.length !== 4) return `it is not a 2-D convolution (weight rank ${w.dims.length})`
  const group = attrInt(node, 'group', 1)
  if (group !== 1) return `it is ${group === w.dims[0] ? 'depthwise' : 'grouped'} (group ${group}); its input channels cannot be chosen independently`
  if (w.dims[1]! < 2) return 'it has a single input channel'
  const b = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined
  if (node.inputs[2] && (!b || b.dataType !== FLOAT)) return 'its bias is not a float32 constant'
  for (const name of [w.name, b?.name]) {
    if (name && users(name).some((n) => n !== node)) return `its initializer ${q(name)} is shared with other nodes`
  }
  return undefined
}

/**
 * Builds channel pruning's LayerCompressor for `model`: finds the prunable Convs (the others are
 * `skipped` with a reason) and samples each one's input patches and outputs from `data` once.
 * `data` is read twice or more (compressAll resamples): pass an array or a function returning a
 * fresh iterable.
 */
export async function createChannelPruner(model: Model, data: CalibrationData, opts: ChannelPruningOptions = {}): Promise<LayerCompressor> {
  const samplesPerImage = positiveInt(opts.samplesPerImage, 'samplesPerImage', 10)
  const maxSamples = positiveInt(opts.maxSamples, 'maxSamples', 5000)
  const multiple = positiveInt(opts.multipleOf ?? opts.channelMultiple, 'multipleOf', 1)
  const selection = opts.selection ?? 'magnitude'
  if (selection !== 'magnitude' && selection !== 'contribution') throw new CompressionError(`channel pruning option selection: expected 'magnitude' or 'contribution', got ${q(selection)}`)
  const ridge = opts.ridge ?? 0
  if (!(ridge >= 0)) throw new CompressionError(`channel pruning option ridge: expected a number ≥ 0, got ${String(ridge)}`)
  const ignore = new Set(opts.ignore ?? [])
  checkAbort(opts.signal)

  const graph = model.graph
  const shapes = opts.shapes ?? (await measureLayerShapes(model, { signal: opts.signal }))
  const entries = layerCosts(model, shapes)
  const entryOf = new Map(entries.map((e) => [e.node, e]))
  const index = graphIndex(graph)
  const users = (name: string) => index.consumerNodes(name)

  const layers: PrunableLayer[] = []
  const skipped: { node: string; reason: string }[] = []
  for (const node of topologicalOrder(graph)) {
    if (!entryOf.has(node.name)) continue
    if (node.opType !== 'Conv') { skipped.push({ node: node.name, reason: `channel pruning applies to Conv layers only (AIMET: Conv2d), not ${node.opType}` }); continue }
    if (ignore.has(node.name)) { skipped.push({ node: node.name, reason: 'listed in ignore' }); continue }
    const reason = layerReason(graph, node, users)
    const w = graph.initializers.get(node.inputs[1]!)!
    const r = reason === undefined ? planInputPruning(graph, index, node, w.dims[1]!) : { reason }
    if ('reason' in r) { skipped.push({ node: node.name, reason: r.reason }); continue }
    layers.push({
      node, index: layers.length, plan: r.plan, weightDims: [...w.dims], channels: w.dims[1]!, outChannels: w.dims[0]!,
      inner: w.dims[2]! * w.dims[3]!, hasBias: Boolean(node.inputs[2]),
    })
  }
  for (const name of ignore) if (!entryOf.has(name)) throw new CompressionError(`channel pruning option ignore: no Conv, Gemm or MatMul layer named ${q(name)}`)

  const sampling: SamplingOptions = {
    samplesPerImage, maxImages: Math.ceil(maxSamples / samplesPerImage), seed: opts.seed ?? 0,
    maxBytes: opts.maxCacheBytes ?? 2 ** 30, signal: opts.signal,
  }
  const perImageBytes = (l: { node: Node }) => {
    const p = layers.find((x) => x.node === l.node)!
    const out = entryOf.get(p.node.name)!.activationDims
    const spatial = out.slice(2).reduce((a, b) => a * b, 1)
    const s = p.node.attributes.get('strides')
    const stride = s?.type === 'ints' ? s.value.reduce<number>((a, b) => a * Number(b), 1) : 1
    return 4 * spatial * (p.outChannels + p.channels * stride)
  }
  const samples = layers.length > 0 ? await sampleLayers(model, layers, data, perImageBytes, sampling) : new Map<string, LayerSamples>()
  return new ChannelPruner(model, data, layers, skipped, entries, samples, { multiple, selection, ridge, reconstruct: opts.reconstruct ?? true, sampling })
}

interface Refit {
  weight: Float32Array
  bias?: Float32Array
  /** Said when the fit needed the minimum-norm fallback. */
  note?: string
}

interface PrunerSettings {
  multiple: number
  selection: 'magnitude' | 'contribution'
  ridge: number
  reconstruct: boolean
  sampling: SamplingOptions
}

class ChannelPruner implements LayerCompressor {
  readonly scheme = 'channel_pruning' as const
  readonly layers: readonly CompressibleLayer[]
  readonly #byName: Map<string, PrunableLayer>
  readonly #selected = new Map<string, Uint32Array>()

  constructor(
    readonly model: Model,
    readonly data: CalibrationData,
    prunable: PrunableLayer[],
    readonly skipped: readonly { node: string; reason: string }[],
    readonly entries: readonly LayerCostEntry[],
    readonly samples: ReadonlyMap<string, LayerSamples>,
    readonly settings: PrunerSettings,
  ) {
    this.#byName = new Map(prunable.map((p) => [p.node.name, p]))
    const costOf = new Map(entries.map((e) => [e.node, e.cost]))
    this.layers = prunable.map((p) => ({ node: p.node.name, opType: 'Conv', cost: costOf.get(p.node.name)!, full: p.channels }))
  }

  #layer(node: string): PrunableLayer {
    const l = this.#byName.get(node)
    if (!l) {
      const s = this.skipped.find((x) => x.node === node)
      throw new CompressionError(s ? `channel pruning: layer ${q(node)} was skipped: ${s.reason}` : `channel pruning: no prunable Conv named ${q(node)}`)
    }
    return l
  }

  /** AIMET's kept count max(1, ⌊C·ratio⌋), rounded up to the multiple (capped at C). */
  kept(node: string, ratio: number): number {
    const l = this.#layer(node)
    if (typeof ratio !== 'number' || !(ratio > 0 && ratio <= 1)) throw new CompressionError(`channel pruning: ratio for ${q(node)} must be in (0, 1], got ${String(ratio)}`)
    const k = Math.max(1, Math.floor(l.channels * ratio + 1e-9))
    return Math.min(l.channels, Math.ceil(k / this.settings.multiple) * this.settings.multiple)
  }

  cost(ratios: Readonly<Record<string, number>>): Cost {
    const factor = new Map<string, number>()
    const mul = (name: string, f: number) => factor.set(name, (factor.get(name) ?? 1) * f)
    for (const [node, ratio] of Object.entries(ratios)) {
      const l = this.#layer(node)
      const f = this.kept(node, ratio) / l.channels
      mul(node, f)
      mul(l.plan.producer.name, f)
      // A depthwise Conv on the way loses the same channels (its weight is [C, 1, kh, kw]).
      for (const n of l.plan.chain) if (n.opType === 'Conv') mul(n.name, f)
    }
    const total = { mac: 0, memory: 0 }
    for (const e of this.entries) {
      const c = scale(e.cost, factor.get(e.node) ?? 1)
      total.mac += c.mac
      total.memory += c.memory
    }
    return total
  }

  /** The input channels kept at `keep` (cached per count). */
  select(node: string, keep: number): Uint32Array {
    const key = `${node}\u0000${keep}`
    const hit = this.#selected.get(key)
    if (hit) return hit
    const l = this.#layer(node)
    const w = this.model.graph.initializers.get(l.node.inputs[1]!)!.data as Float32Array
    let chosen: Uint32Array
    if (this.settings.selection === 'contribution' && l.channels * l.inner <= MAX_CONTRIBUTION_COLS) {
      const s = this.samples.get(node)!
      chosen = greedyKeep(contributionGram(s.patches, s.rows, w, l.outChannels, l.channels, l.inner), l.channels, keep)
    } else {
      chosen = topChannels(channelMagnitudes(w, l.outChannels, l.channels, l.inner), keep)
    }
    this.#selected.set(key, chosen)
    return chosen
  }

  /** The new weight [M, k, kh, kw] (and bias) for `l` keeping `keep`, fitted on `patches` (rows × k·inner) or just sliced. */
  async #refit(l: PrunableLayer, keep: Uint32Array, design: Float32Array | undefined): Promise<Refit> {
    const w = this.model.graph.initializers.get(l.node.inputs[1]!)!
    if (!this.settings.reconstruct) return { weight: gatherAxis(w.data as Float32Array, w.dims, 1, keep) }
    const s = this.samples.get(l.node.name)!
    const cols = keep.length * l.inner + (l.hasBias ? 1 : 0)
    const a = design ?? designMatrix(s.patches, s.rows, l.channels, l.inner, keep, l.hasBias)
    let x: Float32Array
    let note: string | undefined
    try {
      x = await leastSquares(a, s.rows, cols, s.targets, l.outChannels, { ridge: this.settings.ridge })
    } catch (e) {
      // No unique solution (fewer samples than unknowns, or dependent columns such as a channel
      // that is always 0 after a Relu): take sklearn's minimum-norm answer, approximately.
      if (!(e instanceof RangeError) || this.settings.ridge > 0) throw e
      const ridge = minimumNormRidge(a, cols)
      x = await leastSquares(a, s.rows, cols, s.targets, l.outChannels, { ridge })
      note = `the least squares had no unique solution (${s.rows} samples, ${cols} unknowns${s.rows >= cols ? ', dependent columns' : ''}); ridge ${ridge.toPrecision(3)} gave the near minimum-norm fit`
    }
    const { weight, bias } = splitSolution(x, cols, l.outChannels, l.hasBias)
    return { weight, ...(l.hasBias ? { bias } : {}), ...(note ? { note } : {}) }
  }

  #apply(graph: Graph, l: PrunableLayer, keep: Uint32Array, fit: Refit): void {
    narrowProducer(graph, l.plan, keep)
    const wName = l.node.inputs[1]!
    const w = graph.initializers.get(wName)!
    graph.initializers.set(wName, { ...w, dims: [l.outChannels, keep.length, l.weightDims[2]!, l.weightDims[3]!], data: fit.weight })
    if (fit.bias) {
      const bName = l.node.inputs[2]!
      graph.initializers.set(bName, { ...graph.initializers.get(bName)!, data: fit.bias })
    }
  }

  #detail(node: string, ratio: number, kept: number, notes: string[]): LayerCompressionDetail {
    const l = this.#layer(node)
    return { node, requestedRatio: ratio, kept, full: l.channels, costBefore: this.cost({}), costAfter: this.cost({ [node]: ratio }), notes }
  }

  #notes(l: PrunableLayer, keep: Uint32Array): string[] {
    const notes = [`kept input channels ${keep.length}/${l.channels}`, `producer ${q(l.plan.producer.name)} narrowed to ${keep.length} output channels`]
    if (l.plan.chain.length > 0) notes.push(`through ${l.plan.chain.map((n) => `${n.opType} ${q(n.name)}`).join(', ')}`)
    if (this.settings.selection === 'contribution' && l.channels * l.inner > MAX_CONTRIBUTION_COLS) notes.push(`selected by weight magnitude: channels·kernel ${l.channels * l.inner} exceeds the contribution selection's ${MAX_CONTRIBUTION_COLS}`)
    notes.push(this.settings.reconstruct ? `weights refitted by least squares on ${this.samples.get(l.node.name)!.rows} samples` : 'weights sliced, not refitted')
    return notes
  }

  async compressOne(node: string, ratio: number, signal?: AbortSignal): Promise<{ model: Model; detail: LayerCompressionDetail }> {
    const l = this.#layer(node)
    const k = this.kept(node, ratio)
    checkAbort(signal)
    const model = cloneModel(this.model)
    if (k === l.channels) return { model, detail: this.#detail(node, ratio, k, ['every input channel kept; layer unchanged']) }
    const keep = this.select(node, k)
    const fit = await this.#refit(l, keep, undefined)
    checkAbort(signal)
    this.#apply(model.graph, l, keep, fit)
    return { model, detail: this.#detail(node, ratio, k, [...this.#notes(l, keep), ...(fit.note ? [fit.note] : [])]) }
  }

  async compressAll(ratios: Readonly<Record<string, number>>, signal?: AbortSignal): Promise<{ model: Model; details: LayerCompressionDetail[] }> {
    const todo = Object.entries(ratios).map(([node, ratio]) => ({ l: this.#layer(node), ratio, k: this.kept(node, ratio) }))
    todo.sort((a, b) => a.l.index - b.l.index)
    const model = cloneModel(this.model)
    const details: LayerCompressionDetail[] = []
    let changed = false
    for (const { l, ratio, k } of todo) {
      checkAbort(signal)
      if (k === l.channels) { details.push(this.#detail(l.node.name, ratio, k, ['every input channel kept; layer unchanged'])); continue }
      const keep = this.select(l.node.name, k)
      let design: Float32Array | undefined
      if (changed && this.settings.reconstruct) {
        // AIMET refits on the layer's input in the model pruned so far (upstream layers changed it).
        const s = this.samples.get(l.node.name)!
        const patches = await resampleInput(model, l.node, s, keep, this.data, { ...this.settings.sampling, signal })
        design = designMatrix(patches, s.rows, keep.length, l.inner, Uint32Array.from(keep.keys()), l.hasBias)
      }
      const fit = await this.#refit(l, keep, design)
      this.#apply(model.graph, l, keep, fit)
      changed = true
      details.push(this.#detail(l.node.name, ratio, k, [...this.#notes(l, keep), ...(fit.note ? [fit.note] : [])]))
    }
    return { model, details }
  }
}
