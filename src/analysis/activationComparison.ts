// Per-layer activation SQNR and activation histograms in one pass over the data: the float model
// and the simulated QDQ model both run (graph optimisations off, so every tensor is computed as
// written) with every quantized activation exposed as an extra output, batch by batch, each in its
// own OrtRunner worker. The outputs are compared tensor by tensor in Rust and dropped; only the
// running sums, the histograms and (when asked) the first samples' feeds and float model outputs
// are kept, the latter for the sensitivity analysis that follows.
//
// This is the analyzer's own tap; DECISIONS wants one shared activation tap in src/sim/ (with a
// per-run memory cap). Until it exists, one batch's activations of both models are in memory at
// once: keep batches small for large models.
import { availableParallelism } from 'node:os'
import type { Encoding } from '../encoding.js'
import { AbortError, CalibrationError } from '../errors.js'
import { addGraphOutput } from '../graph/graphEdits.js'
import { cloneModel, type Model } from '../graph/model.js'
import { HistogramObserver } from '../observers.js'
import { modelToBytes } from '../onnx/saveModel.js'
import type { ActivationHistogram, LayerSqnr } from '../report/reportData.js'
import { batchSize, forEachBatch, knownTotal, type CalibrationData } from '../sim/calibrationData.js'
import { toPlainFeeds, type PlainTensor } from '../sim/feeds.js'
import { OrtRunner } from '../sim/ortRunner.js'
import { reportHistogram } from './activationHistogram.js'
import { simulatedValueNames } from './simulatedValues.js'
import { SqnrAccumulator } from './sqnrAccumulator.js'

/** One quantized activation to measure. */
export interface ActivationTarget {
  tensor: string
  layer: string
  opType: string
  /** The encoding the quantizer uses (its range is marked on the histogram). */
  encoding: Encoding
}

/** A batch kept for later runs: its feeds and the float model's outputs for them. */
export interface RetainedBatch {
  feeds: Record<string, PlainTensor>
  reference: Record<string, PlainTensor>
  samples: number
}

export interface ActivationComparisonOptions {
  histogramBins: number
  /** Keep batches (feeds and float outputs) until this many samples are kept. */
  retainSamples: number
  intraOpNumThreads?: number
  signal?: AbortSignal
  onProgress?: (p: { samples: number; batches: number; total?: number }) => void
}

export interface ActivationComparison {
  layerSqnr: LayerSqnr[]
  histograms: ActivationHistogram[]
  retained: RetainedBatch[]
  samples: number
}

/** Bins of the observer behind each report histogram (AIMET's default). */
const OBSERVER_BINS = 2048

function floatData(t: PlainTensor | undefined, what: string): Float32Array {
  if (!t) throw new CalibrationError(`${what} is missing from the results`)
  if (t.type !== 'float32') throw new CalibrationError(`${what} is ${t.type}, not float32`)
  return t.data as Float32Array
}

export async function compareActivations(floatModel: Model, qdqModel: Model, targets: readonly ActivationTarget[], data: CalibrationData, opts: ActivationComparisonOptions): Promise<ActivationComparison> {
  const { signal } = opts
  const aborted = () => new AbortError('analysis aborted', { cause: signal?.reason })
  if (signal?.aborted) throw aborted()
  const graphInputs = new Set(floatModel.graph.inputs.map((i) => i.name))
  const modelOutputs = floatModel.graph.outputs.map((o) => o.name)
  const simulated = simulatedValueNames(qdqModel, targets.map((t) => t.tensor))
  const floatTap = cloneModel(floatModel)
  const simTap = cloneModel(qdqModel)
  for (const t of targets) {
    if (!graphInputs.has(t.tensor)) addGraphOutput(floatTap.graph, t.tensor)
    addGraphOutput(simTap.graph, simulated.get(t.tensor)!)
  }
  // The two models run side by side, so each gets half the cores.
  const threads = opts.intraOpNumThreads ?? Math.max(1, Math.floor(availableParallelism() / 2))
  const runnerOptions = { graphOptimizationLevel: 'disabled' as const, intraOpNumThreads: threads }
  const created = await Promise.allSettled([
    OrtRunner.create(modelToBytes(floatTap), { ...runnerOptions, name: 'float model (analysis tap)' }),
    OrtRunner.create(modelToBytes(simTap), { ...runnerOptions, name: 'simulated model (analysis tap)' }),
  ])
  const runners = created.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  try {
    for (const r of created) if (r.status === 'rejected') throw r.reason
    const [floatRunner, simRunner] = runners as [OrtRunner, OrtRunner]
    const sqnr = targets.map(() => new SqnrAccumulator())
    const histograms = targets.map(() => new HistogramObserver({ bins: OBSERVER_BINS }))
    const retained: RetainedBatch[] = []
    let kept = 0
    let samples = 0
    let batches = 0
    const total = knownTotal(data)
    await forEachBatch(data, async (feeds) => {
      if (signal?.aborted) throw aborted()
      const plain = toPlainFeeds(feeds, `analysis batch ${batches}`)
      const [fp, sim] = await Promise.all([floatRunner.run(plain), simRunner.run(plain)])
      targets.forEach((t, i) => {
        const ref = floatData(graphInputs.has(t.tensor) ? plain[t.tensor] : fp[t.tensor], `float activation ${JSON.stringify(t.tensor)}`)
        const q = floatData(sim[simulated.get(t.tensor)!], `simulated activation ${JSON.stringify(simulated.get(t.tensor))}`)
        sqnr[i]!.add(ref, q)
        histograms[i]!.update(ref)
      })
      const n = batchSize(plain)
      if (kept < opts.retainSamples) {
        retained.push({ feeds: plain, reference: Object.fromEntries(modelOutputs.map((o) => [o, fp[o]!])), samples: n })
        kept += n
      }
      samples += n
      batches++
      opts.onProgress?.({ samples, batches, total })
    })
    if (signal?.aborted) throw aborted()
    if (batches === 0) throw new CalibrationError('analysis data is empty: give at least one batch of feeds')
    return {
      layerSqnr: targets.map((t, i) => ({ tensor: t.tensor, layer: t.layer, opType: t.opType, sqnrDb: sqnr[i]!.sqnrDb })),
      histograms: targets.map((t, i) => reportHistogram(t.tensor, t.layer, histograms[i]!, opts.histogramBins, t.encoding)),
      retained,
      samples,
    }
  } finally {
    await Promise.all(runners.map((r) => r.close().catch(() => {})))
  }
}
