// Nearest-name suggestions for misspelled config keys, preset names and op types.

/**
 * Optimal-string-alignment distance (Levenshtein plus adjacent transposition), compared
 * case-insensitively: `per_chanel_quantization`, `Per_channel_quantization` and
 * `per_chanenl_quantization` are all one edit from `per_channel_quantization`.
 */
export function editDistance(a: string, b: string): number {
  const s = a.toLowerCase()
  const t = b.toLowerCase()
  const n = s.length
  const m = t.length
  if (n === 0) return m
  if (m === 0) return n
  // Three rolling rows: two back (for transpositions), previous and current.
  let prev2 = new Array<number>(m + 1).fill(0)
  let prev = Array.from({ length: m + 1 }, (_, j) => j)
  let cur = new Array<number>(m + 1).fill(0)
  for (let i = 1; i <= n; i++) {
    cur[0] = i
    for (let j = 1; j <= m; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1
      let d = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
      if (i > 1 && j > 1 && s[i - 1] === t[j - 2] && s[i - 2] === t[j - 1]) d = Math.min(d, prev2[j - 2] + 1)
      cur[j] = d
    }
    ;[prev2, prev, cur] = [prev, cur, prev2]
  }
  return prev[m]
}

/**
 * How far `name` is from `candidate` for suggestions: the edit distance, except that a truncation
 * or extension (one contains the other, the shorter at least 3 characters) counts as 1, so
 * `per_channel` finds `per_channel_quantization` rather than `params`.
 */
export function suggestionDistance(name: string, candidate: string): number {
  const a = name.toLowerCase()
  const b = candidate.toLowerCase()
  if (a !== b && Math.min(a.length, b.length) >= 3 && (a.includes(b) || b.includes(a))) return 1
  return editDistance(a, b)
}

/** The candidate nearest to `name` (ties: the first in `candidates`' order), or undefined when there are none. */
export function nearest(name: string, candidates: Iterable<string>): { name: string; distance: number } | undefined {
  let best: { name: string; distance: number } | undefined
  for (const c of candidates) {
    const d = suggestionDistance(name, c)
    if (best === undefined || d < best.distance) best = { name: c, distance: d }
  }
  return best
}

/**
 * A suggestion only when it is plausibly a typo: within a third of the name's length (at least 2
 * edits), so `Relu` suggests `Relu`'s neighbours but `FooBarBaz` suggests nothing.
 */
export function closeMatch(name: string, candidates: Iterable<string>): string | undefined {
  const best = nearest(name, candidates)
  if (best === undefined) return undefined
  return best.distance <= Math.max(2, Math.floor(name.length / 3)) ? best.name : undefined
}
