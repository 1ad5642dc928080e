// An activation's histogram for the report: the HistogramObserver's counts (AIMET's 2048 bins, on
// a lattice that follows the data) with the empty bins at either end dropped and runs of adjacent
// bins summed, so that at most `bins` remain. Summing whole bins keeps every count exact: the
// report's counts add up to the number of values observed.
import type { Encoding } from '../encoding.js'
import type { HistogramObserver } from '../observers.js'
import type { ActivationHistogram } from '../report/reportData.js'

/** The range an encoding represents: [(qmin + offset)·scale, (qmax + offset)·scale]. */
export function encodingRange(e: Encoding): { min: number; max: number } {
  return { min: (e.qmin + e.offset) * e.scale, max: (e.qmax + e.offset) * e.scale }
}

export function reportHistogram(tensor: string, layer: string, observer: HistogramObserver, bins: number, encoding: Encoding): ActivationHistogram {
  const { min: encodingMin, max: encodingMax } = encodingRange(encoding)
  const range = observer.range
  if (!range) return { tensor, layer, edges: [], counts: [], encodingMin, encodingMax }
  const fine = observer.counts
  const width = (range.hi - range.lo) / fine.length
  let first = 0
  while (first < fine.length - 1 && fine[first] === 0) first++
  let last = fine.length - 1
  while (last > first && fine[last] === 0) last--
  const occupied = last - first + 1
  const group = Math.ceil(occupied / bins)
  const n = Math.ceil(occupied / group)
  const counts = new Array<number>(n).fill(0)
  for (let i = first; i <= last; i++) {
    const k = Math.floor((i - first) / group)
    counts[k] = counts[k]! + fine[i]!
  }
  const edges = Array.from({ length: n + 1 }, (_, k) => range.lo + (first + k * group) * width)
  return { tensor, layer, edges, counts, encodingMin, encodingMax }
}
