// The built-in measures of a simulated model's quality, over batches kept from the data (with the
// float model's outputs for them). Higher is better for both, as for a user's `evaluate`.
import { CalibrationError } from '../errors.js'
import type { Feeds, PlainTensor } from '../sim/feeds.js'
import type { RetainedBatch } from './activationComparison.js'
import { SqnrAccumulator } from './sqnrAccumulator.js'

export type RunModel = (feeds: Feeds) => Promise<Record<string, PlainTensor>>
export type Evaluate = (run: RunModel) => Promise<number>

/** Mean over the model's float outputs of each output's SQNR (dB) against the float model, summed over the batches. */
export function outputSqnr(batches: readonly RetainedBatch[]): Evaluate {
  return async (run) => {
    const sums = new Map<string, SqnrAccumulator>()
    for (const b of batches) {
      const out = await run(b.feeds)
      for (const [name, ref] of Object.entries(b.reference)) {
        if (ref.type !== 'float32') continue
        const got = out[name]
        if (!got || got.type !== 'float32') throw new CalibrationError(`the simulated model's output ${JSON.stringify(name)} is missing or not float32`)
        let acc = sums.get(name)
        if (!acc) sums.set(name, (acc = new SqnrAccumulator()))
        acc.add(ref.data as Float32Array, got.data as Float32Array)
      }
    }
    if (sums.size === 0) throw new CalibrationError('the model has no float32 output to measure SQNR on; give `evaluate` or `labels`')
    let total = 0
    for (const acc of sums.values()) total += acc.sqnrDb
    return total / sums.size
  }
}

/**
 * Top-1 accuracy: the arg-max over the last axis of the model's first output, against `labels`
 * (one class index per sample, in the order of the data).
 */
export function labelAccuracy(batches: readonly RetainedBatch[], labels: ArrayLike<number>, output: string): Evaluate {
  return async (run) => {
    let correct = 0
    let seen = 0
    for (const b of batches) {
      const out = (await run(b.feeds))[output]
      if (!out || out.type !== 'float32' || out.dims.length === 0) throw new CalibrationError(`accuracy: the model's output ${JSON.stringify(output)} is missing or not a float32 tensor of scores`)
      const scores = out.data as Float32Array
      const classes = out.dims[out.dims.length - 1]!
      const rows = scores.length / classes
      for (let r = 0; r < rows; r++, seen++) {
        if (seen >= labels.length) throw new RangeError(`labels: ${labels.length} labels, but the data has more samples`)
        let best = 0
        for (let c = 1; c < classes; c++) if (scores[r * classes + c]! > scores[r * classes + best]!) best = c
        if (best === Number(labels[seen])) correct++
      }
    }
    return seen === 0 ? 0 : correct / seen
  }
}
