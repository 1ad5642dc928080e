// FP32 against quantized outputs over a data set: SQNR per output (from summed signal and noise,
// not a mean of per-batch dB), max and mean absolute error, top-1 agreement and accuracy for
// classifiers. What `quantkit eval` and the quantize command's summary print.
import { compareTensors } from '../metrics.js'
import type { Feeds, PlainTensor } from '../sim/feeds.js'

export type RunModel = (feeds: Feeds) => Promise<Record<string, PlainTensor>>

export interface OutputComparison {
  output: string
  sqnrDb: number
  maxAbsError: number
  meanAbsError: number
}

export interface Comparison {
  samples: number
  outputs: OutputComparison[]
  /** For a classifier output ([N, classes]): share of samples whose argmax agrees. */
  top1Agreement?: number
  /** With labels: top-1 accuracy of the reference and of the other model. */
  accuracy?: { reference: number; other: number }
}

function argmax(data: Float32Array, offset: number, n: number): number {
  let best = 0
  for (let c = 1; c < n; c++) if (data[offset + c]! > data[offset + best]!) best = c
  return best
}

/**
 * Runs both models on every batch. `labels` (one class index per sample, in data order) turns on
 * accuracy; the classifier output is the first output of shape [N, C] (or `classOutput`).
 */
export async function compareOutputs(reference: RunModel, other: RunModel, batches: AsyncIterable<Feeds> | Iterable<Feeds>,
  opts: { labels?: ArrayLike<number>; classOutput?: string; signal?: AbortSignal; onProgress?: (samples: number) => void } = {}): Promise<Comparison> {
  const sums = new Map<string, { signal: number; noise: number; abs: number; n: number; max: number }>()
  let samples = 0
  let agree = 0
  let classSamples = 0
  let refCorrect = 0
  let otherCorrect = 0
  for await (const feeds of batches as AsyncIterable<Feeds>) {
    if (opts.signal?.aborted) throw opts.signal.reason ?? new Error('aborted')
    const [a, b] = await Promise.all([reference(feeds), other(feeds)])
    let batch = 0
    for (const [name, ta] of Object.entries(a)) {
      const tb = b[name]
      if (!tb || ta.type !== 'float32' || tb.type !== 'float32') continue
      const s = compareTensors(ta.data as Float32Array, tb.data as Float32Array)
      const n = ta.data.length - s.nonFinite
      const noise = s.mse * n
      const signal = s.sqnrDb === Infinity ? 0 : noise * 10 ** (s.sqnrDb / 10)
      const acc = sums.get(name) ?? { signal: 0, noise: 0, abs: 0, n: 0, max: 0 }
      // Identical outputs carry no noise; their signal still counts when a later batch differs.
      acc.signal += s.sqnrDb === Infinity ? sumSquares(ta.data as Float32Array) : signal
      acc.noise += noise
      acc.abs += s.meanAbsError * n
      acc.n += n
      acc.max = Math.max(acc.max, s.maxAbsError)
      sums.set(name, acc)
    }
    const cls = opts.classOutput ?? Object.keys(a).find((k) => a[k]!.dims.length === 2)
    if (cls && a[cls] && b[cls]) {
      const [n, c] = a[cls]!.dims as [number, number]
      const da = a[cls]!.data as Float32Array
      const db = b[cls]!.data as Float32Array
      for (let i = 0; i < n; i++) {
        const pa = argmax(da, i * c, c)
        const pb = argmax(db, i * c, c)
        if (pa === pb) agree++
        if (opts.labels && samples + i < opts.labels.length) {
          const label = opts.labels[samples + i]!
          if (pa === label) refCorrect++
          if (pb === label) otherCorrect++
        }
      }
      classSamples += n
      batch = n
    } else {
      const first = Object.values(feeds)[0] as { dims?: readonly number[] } | undefined
      batch = first?.dims?.[0] ?? 1
    }
    samples += batch
    opts.onProgress?.(samples)
  }
  const outputs = [...sums].map(([output, s]) => ({
    output,
    sqnrDb: s.noise === 0 ? Infinity : 10 * Math.log10(s.signal / s.noise),
    maxAbsError: s.max,
    meanAbsError: s.n > 0 ? s.abs / s.n : 0,
  }))
  const result: Comparison = { samples, outputs }
  if (classSamples > 0) result.top1Agreement = agree / classSamples
  if (opts.labels && classSamples > 0) {
    const n = Math.min(classSamples, opts.labels.length)
    result.accuracy = { reference: refCorrect / n, other: otherCorrect / n }
  }
  return result
}

// Σx² of a batch whose outputs were bit-identical: the squared error against zeros, in Rust.
function sumSquares(x: Float32Array): number {
  const s = compareTensors(x, new Float32Array(x.length))
  return s.mse * (x.length - s.nonFinite)
}
