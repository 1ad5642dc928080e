// AIMET's greedy per-layer compression-ratio selection (aimet_common/comp_ratio_select.py,
// GreedyCompRatioSelectAlgo), as a pure function over a score table so that it can be tested
// without running a model:
//   1. every layer has been scored alone at each candidate ratio (1/n … (n-1)/n);
//   2. a score threshold is binary-searched between the lowest and the highest score in the
//      table; at a threshold each layer takes its most-compressed candidate if that still scores
//      above it, else, walking down from its least-compressed candidate, the last ratio before its
//      score first drops below it (none, i.e. 1, if even the least-compressed candidate scores
//      below it); the model's cost ratio follows;
//   3. the search stops when the window is narrower than 1e-4 of the score range (the threshold
//      is then the window's low end) or the cost ratio is within 0.001 of the target (the
//      threshold is then the window's midpoint).
// Where quantkit differs from AIMET (docs/compression.md):
//   - the result never exceeds the target: when the 0.001 exit lands above it, the window's low
//     end (whose ratio is at or below the target) is taken instead;
//   - an unreachable target (every layer at its smallest candidate is still above it) is an
//     error stating the best reachable ratio, where AIMET silently returns that best;
//   - when every candidate of a layer scores at or above the threshold and the most-compressed one
//     exactly equals it, AIMET's strict comparisons fall through to "no compression"; here the
//     layer takes that candidate, like any score at or above the threshold;
//   - scores are not re-keyed by the rank-rounded ratio with interpolation (AIMET's
//     _update_eval_dict_with_rounding): each candidate was evaluated at the rounded rank already,
//     and the cost function rounds the same way.
import { CompressionError, UnreachableTargetError } from './compressionErrors.js'

export interface ScorePoint {
  ratio: number
  score: number
}

export interface GreedyLayer {
  node: string
  /** Scores at the candidate ratios (any order; each ratio in (0, 1)). */
  curve: readonly ScorePoint[]
}

export interface GreedyInput {
  layers: readonly GreedyLayer[]
  /** The model's cost with these per-layer ratios over its original cost (layers absent stay at 1). */
  costRatio(ratios: Readonly<Record<string, number>>): number
  /** The cost ratio to reach, in (0, 1]. */
  targetRatio: number
}

export interface GreedyResult {
  /** The chosen ratio of each layer that is compressed (layers left at 1 are absent). */
  ratios: Record<string, number>
  /** The score threshold the ratios follow from. */
  threshold: number
  /** The model's cost ratio with those ratios (≤ targetRatio). */
  achievedRatio: number
  /** Binary-search steps taken. */
  iterations: number
}

/** AIMET's candidate ratios for `n` candidates: 1/n, 2/n, …, (n-1)/n. */
export function candidateRatios(n: number): number[] {
  if (!Number.isInteger(n) || n < 2) throw new RangeError(`candidates: expected an integer ≥ 2, got ${n}`)
  return Array.from({ length: n - 1 }, (_, i) => (i + 1) / n)
}

/**
 * The ratio a layer takes at a score threshold, or undefined for "not compressed"; AIMET's
 * _find_layer_comp_ratio_given_eval_score: not compressed when even the least-compressed
 * candidate scores below the threshold; the most-compressed candidate when it scores above it;
 * otherwise, walking down from the least-compressed one, the last ratio before the score first
 * drops below the threshold.
 */
export function ratioAtThreshold(curve: readonly ScorePoint[], threshold: number): number | undefined {
  const byRatio = [...curve].sort((a, b) => b.ratio - a.ratio)
  if (byRatio.length === 0 || threshold > byRatio[0]!.score) return undefined
  const last = byRatio[byRatio.length - 1]!
  if (threshold < last.score) return last.ratio
  let chosen = byRatio[0]!.ratio
  for (const p of byRatio.slice(1)) {
    if (p.score < threshold) break
    chosen = p.ratio
  }
  return chosen
}

export function ratiosAtThreshold(layers: readonly GreedyLayer[], threshold: number): Record<string, number> {
  const ratios: Record<string, number> = {}
  for (const l of layers) {
    const r = ratioAtThreshold(l.curve, threshold)
    if (r !== undefined) ratios[l.node] = r
  }
  return ratios
}

const isClose = (a: number, b: number, absTol: number) => Math.abs(a - b) <= absTol

/** Runs the selection (see the top of this file). */
export function selectRatiosGreedy(input: GreedyInput): GreedyResult {
  const { layers, targetRatio } = input
  if (!(targetRatio > 0 && targetRatio <= 1)) throw new RangeError(`targetRatio: expected a number in (0, 1], got ${targetRatio}`)
  const scores = layers.flatMap((l) => l.curve.map((p) => p.score))
  if (layers.length === 0 || scores.length === 0) {
    throw new UnreachableTargetError(`no layer can be compressed, so the cost ratio stays 1; target ${targetRatio} is out of reach`, 1, targetRatio)
  }
  for (const l of layers) {
    for (const p of l.curve) {
      if (!Number.isFinite(p.score)) throw new CompressionError(`layer ${JSON.stringify(l.node)} has a non-finite score ${p.score} at ratio ${p.ratio}`)
    }
  }
  let lo = Math.min(...scores)
  let hi = Math.max(...scores)
  const best = input.costRatio(ratiosAtThreshold(layers, lo))
  if (best > targetRatio) {
    throw new UnreachableTargetError(
      `target cost ratio ${targetRatio} is out of reach: with every compressible layer at its smallest candidate ratio the model keeps ${best.toFixed(4)} of its cost`,
      best, targetRatio)
  }
  const exitThreshold = (hi - lo) * 1e-4
  let iterations = 0
  let selected: number
  for (;;) {
    iterations++
    const mid = (lo + hi) / 2
    const ratio = input.costRatio(ratiosAtThreshold(layers, mid))
    if (isClose(lo, hi, exitThreshold) || iterations > 200) {
      selected = lo
      break
    }
    if (isClose(ratio, targetRatio, 0.001)) {
      selected = ratio <= targetRatio ? mid : lo
      break
    }
    if (ratio > targetRatio) hi = mid // not enough compression: lower the bar
    else lo = mid // too much: raise it
  }
  const ratios = ratiosAtThreshold(layers, selected)
  return { ratios, threshold: selected, achievedRatio: input.costRatio(ratios), iterations }
}
