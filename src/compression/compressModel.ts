// compressModel: AIMET's automatic compression (ModelCompressor.compress_model with greedy
// ratio selection) for ONNX models. The scheme (weight SVD, spatial SVD, channel pruning) builds
// a LayerCompressor; every compressible layer is compressed alone at every candidate ratio and
// scored by the user's evaluation; the greedy search (greedySelection.ts) picks per-layer ratios
// that meet the target cost; the chosen ratios are applied together. The input is never changed.
import { AbortError } from '../errors.js'
import type { Model } from '../graph/model.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import { prepareModel } from '../graph/prepare/prepareModel.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import type { Feeds } from '../sim/feeds.js'
import { EvaluationError, type EvaluateFunction, type Evaluator } from '../evaluation/evaluator.js'
import { functionEvaluator } from '../evaluation/functionEvaluator.js'
import { defaultConcurrency, workerEvaluator } from '../evaluation/workerEvaluator.js'
import { CompressionError, UnreachableTargetError } from './compressionErrors.js'
import { candidateRatios, selectRatiosGreedy, type ScorePoint } from './greedySelection.js'
import type { CompressionSchemeName, Cost, CostMetric, LayerCompressor } from './layerCompressor.js'
import { costedNodes, measureLayerShapes } from './layerCost.js'
import { createChannelPruner } from './channelPruning.js'
import { createSpatialSvdCompressor } from './spatialSvd.js'
import { createWeightSvdCompressor } from './weightSvd.js'

const q = JSON.stringify

export const COMPRESSION_SCHEMES: readonly CompressionSchemeName[] = ['weight_svd', 'spatial_svd', 'channel_pruning']

export interface CompressionProgress {
  phase: 'shapes' | 'baseline' | 'evaluate' | 'select' | 'compress' | 'final'
  /** Evaluations done and planned (phase 'evaluate'). */
  done?: number
  total?: number
  /** The candidate just scored, e.g. `layer "conv2" at ratio 0.5`. */
  label?: string
  score?: number
}

export interface CompressOptions {
  scheme: CompressionSchemeName
  /** What the target counts: multiply-accumulates (default) or parameters. */
  costMetric?: CostMetric
  /** Keep this fraction of the cost, in (0, 1]. */
  targetRatio: number
  /**
   * The user's quality measure, higher is better: a function of the candidate's ONNX bytes
   * (runs in process), the path of a module exporting `evaluate(modelBytes, ctx)` (runs in worker
   * threads), or an Evaluator.
   */
  evaluate: EvaluateFunction | string | Evaluator
  /** Calibration feeds: needed by channel pruning (its least-squares reconstruction); a sample for shape measurement otherwise. */
  data?: CalibrationData
  /**
   * Feeds for the one run that measures layer output sizes (when value_info lacks them). Default:
   * the first batch of `data` when it is an array, else zeros with symbolic dims set to 1 (wrong
   * for models whose spatial size is symbolic: give a sample of the size you will run).
   */
  sample?: Feeds
  /** n candidate ratios: 1/n … (n-1)/n (AIMET's num_comp_ratio_candidates). Default 10. */
  candidates?: number
  /** Node names to leave alone (AIMET's modules_to_ignore). */
  ignore?: readonly string[]
  /** SVD ranks (pruning: kept channels) are rounded up to a multiple of this. Default 1, AIMET's `multiplicity`. */
  rankMultiple?: number
  onProgress?: (p: CompressionProgress) => void
  signal?: AbortSignal
  /** Evaluations at once: worker threads for a module path (default: half the cores), in-flight calls for a function (default 1). */
  concurrency?: number
}

export interface CompressionLayerStats {
  node: string
  opType: string
  /** The layer's own cost, uncompressed and as chosen. */
  costBefore: Cost
  costAfter: Cost
  /** The chosen ratio (1 = unchanged) and the rank or channels it keeps, out of `full`. */
  chosenRatio: number
  kept: number
  full: number
  /** The score with only this layer compressed, at each candidate ratio (and 1: the original's score). */
  curve: ScorePoint[]
  notes: string[]
}

export interface CompressionStats {
  scheme: CompressionSchemeName
  costMetric: CostMetric
  targetRatio: number
  /** Compressed cost over original cost, in the chosen metric. */
  achievedRatio: number
  costBefore: Cost
  costAfter: Cost
  candidates: number[]
  /** The score threshold the greedy search settled on. */
  threshold: number
  baselineScore: number
  compressedScore: number
  layers: CompressionLayerStats[]
  skipped: { node: string; reason: string }[]
  evaluations: number
  searchIterations: number
  /** What the call did beside compressing (e.g. Constant weights turned into initializers). */
  notes: string[]
  /** Wall time of the whole call, and of the scoring part. */
  seconds: number
  evaluationSeconds: number
}

export interface CompressResult {
  model: Model
  stats: CompressionStats
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortError('compressModel: aborted', { cause: signal.reason })
}

/** The first batch of calibration data, when it is an array (used as the shape-measuring sample). */
function firstSample(data: CalibrationData | undefined): Feeds | undefined {
  return Array.isArray(data) ? (data[0] as Feeds | undefined) : undefined
}

async function makeCompressor(model: Model, opts: CompressOptions): Promise<LayerCompressor> {
  const shapes = await measureLayerShapes(model, { sample: opts.sample ?? firstSample(opts.data), signal: opts.signal })
  const common = { costMetric: opts.costMetric ?? 'mac', ignore: opts.ignore, rankMultiple: opts.rankMultiple ?? 1, shapes, signal: opts.signal }
  switch (opts.scheme) {
    case 'weight_svd': return createWeightSvdCompressor(model, common)
    case 'spatial_svd': return createSpatialSvdCompressor(model, common)
    case 'channel_pruning': {
      if (opts.data === undefined) throw new CompressionError('channel_pruning needs `data` (calibration feeds) for its least-squares reconstruction')
      return createChannelPruner(model, opts.data, { ...common, channelMultiple: common.rankMultiple })
    }
    default:
      throw new CompressionError(`scheme: expected one of ${COMPRESSION_SCHEMES.join(', ')}, got ${q(opts.scheme)}`)
  }
}

function makeEvaluator(evaluate: CompressOptions['evaluate'], concurrency: number | undefined): Promise<{ evaluator: Evaluator; owned: boolean }> | { evaluator: Evaluator; owned: boolean } {
  if (typeof evaluate === 'string') return workerEvaluator(evaluate, { concurrency }).then((evaluator) => ({ evaluator, owned: true }))
  if (typeof evaluate === 'function') return { evaluator: functionEvaluator(evaluate), owned: true }
  if (evaluate && typeof evaluate === 'object' && typeof (evaluate as Evaluator).evaluate === 'function') return { evaluator: evaluate as Evaluator, owned: false }
  throw new TypeError('evaluate: expected a function (modelBytes, ctx) => number, a module path, or an Evaluator')
}

function checkOptions(model: Model, opts: CompressOptions): void {
  if (!COMPRESSION_SCHEMES.includes(opts.scheme)) throw new CompressionError(`scheme: expected one of ${COMPRESSION_SCHEMES.join(', ')}, got ${q(opts.scheme)}`)
  if (!(typeof opts.targetRatio === 'number' && opts.targetRatio > 0 && opts.targetRatio <= 1)) {
    throw new CompressionError(`targetRatio: expected a number in (0, 1] (the fraction of the cost to keep), got ${opts.targetRatio}`)
  }
  const metric = opts.costMetric ?? 'mac'
  if (metric !== 'mac' && metric !== 'memory') throw new CompressionError(`costMetric: expected 'mac' or 'memory', got ${q(metric)}`)
  const names = new Set(model.graph.nodes.map((n) => n.name))
  for (const n of opts.ignore ?? []) {
    if (!names.has(n)) {
      const layers = costedNodes(model.graph).map((x) => q(x.name))
      throw new CompressionError(`ignore: the model has no node ${q(n)}; its compressible layers are ${layers.join(', ') || 'none'}`)
    }
  }
}

const LAYER_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])

/** Layers whose weight comes from a Constant node rather than an initializer. */
function constantWeights(model: Model): number {
  const constants = new Set(model.graph.nodes.filter((n) => n.opType === 'Constant').flatMap((n) => n.outputs))
  return model.graph.nodes.filter((n) => LAYER_OPS.has(n.opType) && constants.has(n.inputs[1] ?? '')).length
}

/** Runs `jobs` with at most `limit` in flight, in order; the first failure stops new starts and is thrown. */
async function runLimited<T>(jobs: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(jobs.length)
  let next = 0
  let failure: unknown
  const lane = async () => {
    while (failure === undefined && next < jobs.length) {
      const i = next++
      try {
        results[i] = await jobs[i]!()
      } catch (err) {
        failure ??= err
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, jobs.length)) }, lane))
  if (failure !== undefined) throw failure
  return results
}

const fmt = (r: number) => String(Math.round(r * 1e6) / 1e6)

/** Compresses a model to a target cost with per-layer ratios chosen by AIMET's greedy search (see the top of this file). */
export async function compressModel(source: ModelSource, opts: CompressOptions): Promise<CompressResult> {
  const t0 = performance.now()
  let model = await resolveModelSource(source)
  const notes: string[] = []
  if (constantWeights(model) > 0) {
    // Exporters (paddle2onnx, older torch) hold weights in Constant nodes; turning them into
    // initializers changes no value and lets the layers be found.
    const n = constantWeights(model)
    model = (await prepareModel(model, { passes: ['constantsToInitializers'] })).model
    notes.push(`${n} layer weights held in Constant nodes were turned into initializers`)
  }
  checkOptions(model, opts)
  const metric = opts.costMetric ?? 'mac'
  const candidates = candidateRatios(opts.candidates ?? 10)
  const signal = opts.signal
  const progress = opts.onProgress ?? (() => {})
  aborted(signal)

  progress({ phase: 'shapes' })
  const compressor = await makeCompressor(model, opts)
  aborted(signal)
  const original = compressor.cost({})
  const ratioOf = (c: Cost) => (original[metric] === 0 ? 1 : c[metric] / original[metric])
  // Before any evaluation: can the target be reached at all?
  const best = ratioOf(compressor.cost(Object.fromEntries(compressor.layers.map((l) => [l.node, candidates[0]!]))))
  if (best > opts.targetRatio) {
    const why = compressor.layers.length === 0
      ? `no layer can be compressed (${compressor.skipped.map((s) => `${q(s.node)}: ${s.reason}`).join('; ') || 'the model has no Conv, Gemm or MatMul with a constant weight'})`
      : `with every compressible layer at the smallest candidate ratio ${fmt(candidates[0]!)}`
    throw new UnreachableTargetError(
      `target ${metric} ratio ${opts.targetRatio} is out of reach for ${opts.scheme}: the best reachable is ${best.toFixed(4)}, ${why}`, best, opts.targetRatio)
  }

  const { evaluator, owned } = await makeEvaluator(opts.evaluate, opts.concurrency)
  try {
    const inFlight = typeof opts.evaluate === 'string' ? (opts.concurrency ?? defaultConcurrency()) * 2 : opts.concurrency ?? 1
    const score = async (candidate: Model, label: string) => {
      aborted(signal)
      try {
        return await evaluator.evaluate(candidate, label, signal)
      } catch (err) {
        if (err instanceof AbortError || signal?.aborted) throw err instanceof AbortError ? err : new AbortError('compressModel: aborted', { cause: signal!.reason })
        if (err instanceof EvaluationError) throw err
        throw new EvaluationError(`evaluating ${label} failed: ${err instanceof Error ? err.message : String(err)}`, label, { cause: err })
      }
    }

    progress({ phase: 'baseline' })
    const baselineScore = await score(model, 'the original model')

    // Score every layer alone at every candidate ratio (AIMET's eval-scores dict).
    const tEval = performance.now()
    const total = compressor.layers.length * candidates.length
    let done = 0
    const table = new Map<string, ScorePoint[]>(compressor.layers.map((l) => [l.node, []]))
    const jobs = compressor.layers.flatMap((layer) => candidates.map((ratio) => async () => {
      const label = `layer ${q(layer.node)} at ratio ${fmt(ratio)}`
      aborted(signal)
      const { model: candidate } = await compressor.compressOne(layer.node, ratio, signal)
      const s = await score(candidate, label)
      table.get(layer.node)!.push({ ratio, score: s })
      progress({ phase: 'evaluate', done: ++done, total, label, score: s })
      return s
    }))
    await runLimited(jobs, inFlight)
    const evaluationSeconds = (performance.now() - tEval) / 1000
    for (const curve of table.values()) curve.sort((a, b) => a.ratio - b.ratio)

    progress({ phase: 'select' })
    const greedy = opts.targetRatio >= 1
      ? { ratios: {}, threshold: Math.max(...[...table.values()].flat().map((p) => p.score), baselineScore), achievedRatio: 1, iterations: 0 }
      : selectRatiosGreedy({
        layers: compressor.layers.map((l) => ({ node: l.node, curve: table.get(l.node)! })),
        costRatio: (ratios) => ratioOf(compressor.cost(ratios)),
        targetRatio: opts.targetRatio,
      })
    aborted(signal)

    progress({ phase: 'compress' })
    const { model: compressed, details } = await compressor.compressAll(greedy.ratios, signal)
    aborted(signal)
    progress({ phase: 'final' })
    const compressedScore = Object.keys(greedy.ratios).length === 0 ? baselineScore : await score(compressed, 'the compressed model')
    const costAfter = compressor.cost(greedy.ratios)

    const layers: CompressionLayerStats[] = compressor.layers.map((l) => {
      const d = details.find((x) => x.node === l.node)
      const chosen = greedy.ratios[l.node]
      // The layer's own cost after: the whole model's change when only it is compressed.
      const alone = chosen === undefined ? l.cost : (() => {
        const c = compressor.cost({ [l.node]: chosen })
        return { mac: l.cost.mac - (original.mac - c.mac), memory: l.cost.memory - (original.memory - c.memory) }
      })()
      return {
        node: l.node, opType: l.opType, costBefore: l.cost, costAfter: alone,
        chosenRatio: chosen ?? 1, kept: d?.kept ?? l.full, full: l.full,
        curve: [...table.get(l.node)!, { ratio: 1, score: baselineScore }],
        notes: d?.notes ?? [],
      }
    })
    return {
      model: compressed,
      stats: {
        scheme: opts.scheme, costMetric: metric, targetRatio: opts.targetRatio,
        achievedRatio: ratioOf(costAfter), costBefore: original, costAfter,
        candidates, threshold: greedy.threshold, baselineScore, compressedScore,
        layers, skipped: [...compressor.skipped],
        evaluations: total + 1 + (Object.keys(greedy.ratios).length === 0 ? 0 : 1),
        searchIterations: greedy.iterations, notes,
        seconds: (performance.now() - t0) / 1000, evaluationSeconds,
      },
    }
  } finally {
    if (owned) await evaluator.close()
  }
}
