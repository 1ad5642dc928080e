// Per-layer sensitivity (AIMET QuantAnalyzer's per-layer analysis by enabling and by disabling
// quant wrappers): the model's quality with only one layer's quantizers on, and with all but that
// layer's on. Each configuration is its own QDQ model (built from copies of the sim's quantizers
// with `enabled` changed: the sim itself is never touched) in its own OrtRunner; the next
// configuration's session is created while the current one is evaluated.
import { AbortError } from '../errors.js'
import type { Evaluator } from '../evaluation/evaluator.js'
import { buildQdqModel } from '../export/qdqModel.js'
import type { Model } from '../graph/model.js'
import { modelToBytes } from '../onnx/saveModel.js'
import type { LayerSensitivity } from '../report/reportData.js'
import { OrtRunner } from '../sim/ortRunner.js'
import type { Quantizer } from '../sim/quantizer.js'
import type { Layer } from './layers.js'
import type { Evaluate } from './quality.js'

/** A configuration: the set of quantizers left on, or the float model. */
export type Configuration = { label: string; enabled: ReadonlySet<Quantizer> } | { label: string; float: true }

export interface ConfigurationOptions {
  intraOpNumThreads?: number
  signal?: AbortSignal
  /** Called after each configuration with how many are done. */
  onDone?: (done: number, total: number, label: string) => void
}

function modelBytes(model: Model, quantizers: readonly Quantizer[], c: Configuration): Uint8Array {
  if ('float' in c) return modelToBytes(model)
  const copies = quantizers.map((q) => (q.enabled && !c.enabled.has(q) ? { ...q, enabled: false } : q))
  return modelToBytes(buildQdqModel(model, copies, { purpose: 'simulation' }).model)
}

/** The quality of each configuration, in order. */
export async function evaluateConfigurations(model: Model, quantizers: readonly Quantizer[], configs: readonly Configuration[], evaluate: Evaluate, opts: ConfigurationOptions = {}): Promise<number[]> {
  const { signal } = opts
  const open = (c: Configuration) => {
    const p = OrtRunner.create(modelBytes(model, quantizers, c), { graphOptimizationLevel: 'disabled', intraOpNumThreads: opts.intraOpNumThreads, name: `analysis: ${c.label}` })
    p.catch(() => {}) // awaited below; an early failure must not surface as unhandled
    return p
  }
  const scores: number[] = []
  let next = configs.length > 0 ? open(configs[0]!) : undefined
  try {
    for (let i = 0; i < configs.length; i++) {
      if (signal?.aborted) throw new AbortError('analysis aborted', { cause: signal.reason })
      const runner = await next!
      next = undefined
      try {
        if (i + 1 < configs.length) next = open(configs[i + 1]!)
        scores.push(await evaluate((feeds) => runner.run(feeds)))
      } finally {
        await runner.close().catch(() => {})
      }
      opts.onDone?.(i + 1, configs.length, configs[i]!.label)
    }
    return scores
  } finally {
    if (next) await next.then((r) => r.close(), () => {})
  }
}

/**
 * The score of each configuration, in order, from an Evaluator (the one evaluation interface,
 * src/evaluation/): each configuration's model goes to it as ONNX bytes, the configuration's label
 * naming it. Up to `inFlight` evaluations are outstanding at once (a worker pool runs them in
 * parallel); the bytes of one not yet handed over are not built.
 */
export async function scoreConfigurations(model: Model, quantizers: readonly Quantizer[], configs: readonly Configuration[], evaluator: Evaluator, opts: ConfigurationOptions & { inFlight?: number } = {}): Promise<number[]> {
  const { signal } = opts
  const inFlight = Math.max(1, opts.inFlight ?? 1)
  const scores = new Array<number>(configs.length)
  let nextIndex = 0
  let done = 0
  let stop = false // a failed evaluation: the other lanes take no new configuration
  const lane = async () => {
    while (!stop && nextIndex < configs.length) {
      if (signal?.aborted) throw new AbortError('analysis aborted', { cause: signal.reason })
      const i = nextIndex++
      const c = configs[i]!
      try {
        scores[i] = await evaluator.evaluate(modelBytes(model, quantizers, c), c.label, signal)
      } catch (err) {
        stop = true
        throw err
      }
      opts.onDone?.(++done, configs.length, c.label)
    }
  }
  const lanes = Array.from({ length: Math.min(inFlight, configs.length) }, lane)
  const settled = await Promise.allSettled(lanes)
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  return scores
}

/** The two configurations of each layer: only its quantizers on, and all but its quantizers on. */
export function layerConfigurations(layers: readonly Layer[], quantizers: readonly Quantizer[]): Configuration[] {
  const all = quantizers.filter((q) => q.enabled)
  return layers.flatMap((layer) => {
    const own = new Set(layer.quantizers.filter((q) => q.enabled))
    return [
      { label: `only ${layer.name} quantized`, enabled: own },
      { label: `all but ${layer.name} quantized`, enabled: new Set(all.filter((q) => !own.has(q))) },
    ]
  })
}

/** Most sensitive first: lowest quality with only the layer quantized, then the most recovered by leaving it float. */
export function rankSensitivity(rows: LayerSensitivity[]): LayerSensitivity[] {
  return [...rows].sort((a, b) => a.onlyThisQuantized - b.onlyThisQuantized || b.allButThis - a.allButThis)
}
