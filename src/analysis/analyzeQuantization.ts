// The quantization analyzer (AIMET's QuantAnalyzer; issue 5): where a calibrated QuantSim loses
// quality. Four views, each filling one of the report's tables (src/report/reportData.ts):
// per-layer sensitivity, per-layer activation SQNR against FP32, per-channel weight ranges, and
// activation histograms with the encoding's range. See the files beside this one for each.
import { availableParallelism } from 'node:os'
import { AbortError, CalibrationError } from '../errors.js'
import type { EvaluateFunction, Evaluator } from '../evaluation/evaluator.js'
import { functionEvaluator } from '../evaluation/functionEvaluator.js'
import { defaultConcurrency, workerEvaluator } from '../evaluation/workerEvaluator.js'
import type { Model } from '../graph/model.js'
import type { ActivationHistogram, LayerSensitivity, LayerSqnr, WeightRanges } from '../report/reportData.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import type { Feeds, PlainTensor } from '../sim/feeds.js'
import type { Quantizer } from '../sim/quantizer.js'
import { QuantSimError, type QuantSim } from '../sim/quantSim.js'
import { compareActivations, type ActivationTarget } from './activationComparison.js'
import { findLayers, type Layer } from './layers.js'
import { labelAccuracy, outputSqnr, type Evaluate } from './quality.js'
import { evaluateConfigurations, layerConfigurations, rankSensitivity, scoreConfigurations, type Configuration } from './sensitivity.js'
import { weightRanges } from './weightRanges.js'

export type AnalysisProgress =
  | { phase: 'activations'; samples: number; batches: number; total?: number }
  | { phase: 'sensitivity'; done: number; total: number; configuration: string }

export interface AnalyzeOptions {
  /**
   * The model's quality, higher is better (e.g. accuracy on a labelled set): called once per
   * configuration with `run`, which runs that configuration's simulated model in a worker thread.
   * Without it, quality is top-1 accuracy against `labels` when given, else the mean SQNR (dB) of
   * the model's outputs against FP32 over the first `sensitivitySamples` samples of `data`.
   */
  evaluate?: (run: (feeds: Feeds) => Promise<Record<string, PlainTensor>>) => Promise<number>
  /**
   * The model's quality through the one evaluation interface (src/evaluation/, as compressModel's
   * `evaluate`): the path of a module exporting `evaluate(modelBytes, ctx) => number` (run in
   * worker threads), an in-process function of the same shape, or an Evaluator (not closed here).
   * Each configuration's simulated model (QDQ, as sim.qdqModel('simulation') builds it with that
   * configuration's quantizers on) goes to it as ONNX bytes, labelled with the configuration
   * (`only conv1 quantized`, `all but conv1 quantized`, `all quantized`, `float`). Excludes
   * `evaluate` and `labels`.
   */
  evaluator?: string | EvaluateFunction | Evaluator
  /** Class index of each sample of `data`, in order: quality becomes top-1 accuracy of the first output. */
  labels?: ArrayLike<number>
  /** Layers whose sensitivity is measured: 'all' (default) or the N with the most parameters. */
  layers?: 'all' | number
  /** Samples of `data` the built-in measures use for each configuration; default 64. */
  sensitivitySamples?: number
  /** Bins of each activation histogram in the result (at most); default 128. */
  histogramBins?: number
  /** Skip the per-layer sensitivity (the costly part: two simulated models per layer). */
  sensitivity?: boolean
  /** ORT threads per session; default: all cores for sensitivity, half each for the paired FP32/sim pass. */
  intraOpNumThreads?: number
  signal?: AbortSignal
  onProgress?: (p: AnalysisProgress) => void
}

export interface QuantizationAnalysis {
  /** What the quality numbers are: 'accuracy' (labels or `evaluate` given) or 'sqnr' (dB against FP32). */
  metric: 'accuracy' | 'sqnr'
  /** Quality of the float model and of the sim with every quantizer on (the sensitivity table's ends). */
  baseline: { float: number; quantized: number }
  /** Most sensitive layer first. */
  sensitivity: LayerSensitivity[]
  layerSqnr: LayerSqnr[]
  weightRanges: WeightRanges[]
  histograms: ActivationHistogram[]
  /** What the analysis cost. */
  stats: { samples: number; sensitivitySamples: number; configurations: number; ms: { weights: number; activations: number; sensitivity: number } }
}

function positiveInteger(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new RangeError(`${name}: expected a positive integer, got ${String(v)}`)
  return v
}

/** The layers to measure: all, or the `n` with the most parameter elements (ties: earlier first), in model order. */
function chooseLayers(layers: readonly Layer[], n: 'all' | number): Layer[] {
  if (n === 'all') return [...layers]
  const keep = new Set([...layers].map((l, i) => ({ l, i })).sort((a, b) => b.l.paramCount - a.l.paramCount || a.i - b.i).slice(0, n).map((x) => x.l))
  return layers.filter((l) => keep.has(l))
}

/** Each configuration's score from the user's evaluator (a module path gets a worker pool, closed after). */
async function scoreWithEvaluator(e: string | EvaluateFunction | Evaluator, model: Model, quantizers: readonly Quantizer[], configs: readonly Configuration[], signal: AbortSignal | undefined, onDone: (done: number, total: number, label: string) => void): Promise<number[]> {
  const owned = typeof e === 'string' ? await workerEvaluator(e) : typeof e === 'function' ? functionEvaluator(e) : undefined
  const evaluator = owned ?? (e as Evaluator)
  try {
    return await scoreConfigurations(model, quantizers, configs, evaluator, { signal, onDone, inFlight: typeof e === 'string' ? defaultConcurrency() * 2 : 1 })
  } finally {
    if (owned) await owned.close()
  }
}

/**
 * Analyzes a calibrated sim over `data` (an array or (async) iterable of feeds, or a callback, as
 * computeEncodings takes; read once). The sim is not changed.
 */
export async function analyzeQuantization(sim: QuantSim, data: CalibrationData, opts: AnalyzeOptions = {}): Promise<QuantizationAnalysis> {
  if (opts.evaluate !== undefined && typeof opts.evaluate !== 'function') throw new TypeError('evaluate: expected a function (run) => Promise<number>')
  if (opts.evaluate && opts.labels) throw new TypeError('evaluate and labels: give one (labels make the built-in accuracy measure)')
  if (opts.evaluator !== undefined) {
    const e = opts.evaluator
    const ok = (typeof e === 'string' && e !== '') || typeof e === 'function' || (typeof e === 'object' && e !== null && typeof (e as Evaluator).evaluate === 'function')
    if (!ok) throw new TypeError('evaluator: expected a module path, a function (modelBytes, ctx) => number, or an Evaluator')
    if (opts.evaluate || opts.labels) throw new TypeError(`evaluator and ${opts.evaluate ? 'evaluate' : 'labels'}: give one`)
  }
  const layerCount = opts.layers ?? 'all'
  if (layerCount !== 'all') positiveInteger(layerCount, 'layers')
  const sensitivitySamples = positiveInteger(opts.sensitivitySamples ?? 64, 'sensitivitySamples')
  const histogramBins = positiveInteger(opts.histogramBins ?? 128, 'histogramBins')
  const { signal } = opts
  if (signal?.aborted) throw new AbortError('analysis aborted', { cause: signal.reason })
  const quantizers = sim.quantizers
  for (const q of quantizers) {
    if (q.enabled && q.spec.dtype === 'int' && !q.encodings?.length) {
      throw new QuantSimError(`analyzeQuantization needs encodings (quantizer on ${JSON.stringify(q.tensor)} has none): call sim.computeEncodings first`)
    }
  }
  const metric = opts.evaluate || opts.labels || opts.evaluator !== undefined ? 'accuracy' : 'sqnr'
  const model = sim.model
  const t0 = performance.now()

  const layerMap = findLayers(model, quantizers, sim.report.placement.fusions)
  const ranges = weightRanges(model, layerMap)
  const t1 = performance.now()

  // Quantized activations: op outputs and model inputs on an integer grid (constant operands are
  // initializers, measured by their encodings alone).
  const targets: ActivationTarget[] = []
  const seen = new Set<string>()
  for (const q of quantizers) {
    if (!q.enabled || q.kind === 'param' || q.spec.dtype !== 'int' || model.graph.initializers.has(q.tensor) || seen.has(q.tensor)) continue
    seen.add(q.tensor)
    const layer = layerMap.layerOfQuantizer(q)
    targets.push({ tensor: q.tensor, layer: layer?.name ?? q.node, opType: layer?.opType ?? q.opType, encoding: q.encodings![0]! })
  }
  const wantSensitivity = opts.sensitivity ?? true
  const comparison = await compareActivations(model, sim.qdqModel('simulation').model, targets, data, {
    histogramBins,
    retainSamples: wantSensitivity && !opts.evaluate && opts.evaluator === undefined ? sensitivitySamples : 0,
    intraOpNumThreads: opts.intraOpNumThreads,
    signal,
    onProgress: (p) => opts.onProgress?.({ phase: 'activations', ...p }),
  })
  const t2 = performance.now()

  let sensitivity: LayerSensitivity[] = []
  let baseline = { float: metric === 'sqnr' ? Infinity : NaN, quantized: NaN }
  let configurations = 0
  if (wantSensitivity) {
    let evaluate: Evaluate | undefined
    if (opts.evaluator !== undefined) evaluate = undefined
    else if (opts.evaluate) evaluate = opts.evaluate
    else if (opts.labels) {
      const first = model.graph.outputs[0]?.name
      if (!first) throw new CalibrationError('accuracy: the model has no output')
      evaluate = labelAccuracy(comparison.retained, opts.labels, first)
    } else evaluate = outputSqnr(comparison.retained)
    const chosen = chooseLayers(layerMap.layers, layerCount)
    const all = new Set(quantizers.filter((q) => q.enabled))
    const configs: Configuration[] = [
      { label: 'all quantized', enabled: all },
      ...(metric === 'accuracy' ? [{ label: 'float', float: true as const }] : []),
      ...layerConfigurations(chosen, quantizers),
    ]
    configurations = configs.length
    const onDone = (done: number, total: number, configuration: string) => opts.onProgress?.({ phase: 'sensitivity', done, total, configuration })
    const scores = evaluate
      ? await evaluateConfigurations(model, quantizers, configs, evaluate, {
        intraOpNumThreads: opts.intraOpNumThreads ?? availableParallelism(),
        signal,
        onDone,
      })
      : await scoreWithEvaluator(opts.evaluator!, model, quantizers, configs, signal, onDone)
    const base = metric === 'accuracy' ? 2 : 1
    baseline = { float: metric === 'accuracy' ? scores[1]! : Infinity, quantized: scores[0]! }
    sensitivity = rankSensitivity(chosen.map((layer, i) => ({
      layer: layer.name,
      opType: layer.opType,
      onlyThisQuantized: scores[base + 2 * i]!,
      allButThis: scores[base + 2 * i + 1]!,
    })))
  }
  const t3 = performance.now()
  const retainedSamples = comparison.retained.reduce((n, b) => n + b.samples, 0)
  return {
    metric,
    baseline,
    sensitivity,
    layerSqnr: comparison.layerSqnr,
    weightRanges: ranges,
    histograms: comparison.histograms,
    stats: {
      samples: comparison.samples,
      sensitivitySamples: opts.evaluate || opts.evaluator !== undefined ? 0 : retainedSamples,
      configurations,
      ms: { weights: t1 - t0, activations: t2 - t1, sensitivity: t3 - t2 },
    },
  }
}
