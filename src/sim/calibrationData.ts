// Calibration data as users give it: an array or (async) iterable of feeds, a function returning
// one, or AIMET's callback form — a function that receives `run(feeds)` and calls it per batch.
import type { Feeds } from './feeds.js'

export type FeedsIterable = Iterable<Feeds> | AsyncIterable<Feeds>
export type RunBatch = (feeds: Feeds) => Promise<void>
export type CalibrationData =
  | FeedsIterable
  | (() => FeedsIterable)
  | ((run: RunBatch) => Promise<void> | void)

function isIterable(v: unknown): v is FeedsIterable {
  return v != null && (typeof (v as Iterable<unknown>)[Symbol.iterator] === 'function' ||
    typeof (v as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function')
}

/** Samples in a batch: the leading dimension of its first input (1 for a rank-0 input). */
export function batchSize(feeds: Feeds): number {
  const first = Object.values(feeds)[0] as { dims?: readonly number[]; shape?: readonly number[] } | undefined
  const dims = first?.dims ?? first?.shape
  return dims && dims.length > 0 ? Number(dims[0]) : 1
}

/** Total samples when the data is an array (undefined when it cannot be known in advance). */
export function knownTotal(data: CalibrationData): number | undefined {
  return Array.isArray(data) ? (data as Feeds[]).reduce((n, f) => n + batchSize(f), 0) : undefined
}

/** Calls `each` for every batch, in order, awaiting it before the next one. */
export async function forEachBatch(data: CalibrationData, each: RunBatch): Promise<void> {
  if (typeof data === 'function') {
    const result = (data as (run: RunBatch) => unknown)(each)
    if (isIterable(result)) return forEachBatch(result, each)
    await result
    return
  }
  if (!isIterable(data)) throw new TypeError('data: expected an array or (async) iterable of feeds, or a function')
  for await (const feeds of data as AsyncIterable<Feeds>) await each(feeds)
}
