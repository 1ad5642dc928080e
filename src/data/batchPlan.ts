// How many samples a source yields and in which batches: `count` caps the samples; a model whose
// leading dim is fixed gets only full batches (the short last one is dropped, as PyTorch's
// DataLoader(drop_last=True) does), since ORT would reject it.
import { DataSourceError } from '../errors.js'
import type { PlainTensor } from '../sim/feeds.js'
import type { PlainFeeds } from './modelInputs.js'

export interface BatchPlan {
  /** Samples that will be yielded. */
  count: number
  /** [first sample, samples] of each batch. */
  batches: [number, number][]
  /** Samples left out because the last batch would have been short. */
  dropped: number
}

export function planBatches(available: number, batchSize: number, fixed: boolean, count?: number): BatchPlan {
  let n = count === undefined ? available : Math.min(available, count)
  const full = Math.floor(n / batchSize) * batchSize
  const dropped = fixed ? n - full : 0
  n -= dropped
  const batches: [number, number][] = []
  for (let i = 0; i < n; i += batchSize) batches.push([i, Math.min(batchSize, n - i)])
  return { count: n, batches, dropped }
}

export function checkBatchOptions(batchSize: number | undefined, count: number | undefined, file: string): void {
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize < 1)) {
    throw new DataSourceError(`${file}: batchSize must be a positive integer, got ${String(batchSize)}`, { file })
  }
  if (count !== undefined && (!Number.isInteger(count) || count < 1)) {
    throw new DataSourceError(`${file}: count must be a positive integer, got ${String(count)}`, { file })
  }
}

/** The first `n` samples (along axis 0) of a tensor. */
export function headOf(t: PlainTensor, n: number): PlainTensor {
  const rows = t.dims[0] ?? 1
  const per = rows === 0 ? 0 : t.data.length / rows
  return { type: t.type, data: t.data.slice(0, n * per) as PlainTensor['data'], dims: [n, ...t.dims.slice(1)] }
}

/**
 * Caps a stream of ready-made batches (JSON, modules) at `count` samples: the batch that crosses
 * the cap is cut along axis 0 when the leading dim is free, dropped when it is fixed.
 */
export async function* limitSamples(batches: AsyncIterable<PlainFeeds>, count: number | undefined, fixedBatch: boolean): AsyncGenerator<PlainFeeds> {
  if (count === undefined) { yield* batches; return }
  let seen = 0
  for await (const feeds of batches) {
    const first = Object.values(feeds)[0]
    const n = first && first.dims.length > 0 ? first.dims[0]! : 1
    if (seen + n <= count) {
      yield feeds
      seen += n
    } else {
      const left = count - seen
      if (left > 0 && !fixedBatch && first && first.dims.length > 0) {
        const cut: PlainFeeds = {}
        for (const [name, t] of Object.entries(feeds)) cut[name] = t.dims[0] === n ? headOf(t, left) : t
        yield cut
      }
      return
    }
    if (seen >= count) return
  }
}
