// linalg's JS API (src/linalg.ts → crates/quantkit-core/src/linalg/) checked from outside: the
// factors are multiplied back with a plain JS matmul, matrices with a known spectrum are built
// here as Q1·diag(σ)·Q2ᵀ (Gram–Schmidt in f64), and least squares is compared with a case worked
// by hand. The f32 rounding of the inputs moves singular values by ~1e-7·σ₁, hence the tolerances.
import test from 'ava'
import { createRequire } from 'node:module'
import { random, randoms } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { lowRankFactors, singularValues, leastSquares } = require('../dist/index.js')

// Row-major (m×k)·(k×n) in f64.
function matmul(a, b, m, k, n) {
  const c = new Float64Array(m * n)
  for (let i = 0; i < m; i++) for (let p = 0; p < k; p++) {
    const v = a[i * k + p]
    for (let j = 0; j < n; j++) c[i * n + j] += v * b[p * n + j]
  }
  return c
}

const maxAbs = (a) => a.reduce((m, x) => Math.max(m, Math.abs(x)), 0)

// A random n×n orthogonal matrix (columns from Gram–Schmidt, applied twice).
function orthogonal(n, seed) {
  const r = random(seed)
  const cols = []
  while (cols.length < n) {
    const c = Float64Array.from({ length: n }, () => r() * 2 - 1)
    for (let pass = 0; pass < 2; pass++) for (const q of cols) {
      let d = 0
      for (let i = 0; i < n; i++) d += q[i] * c[i]
      for (let i = 0; i < n; i++) c[i] -= d * q[i]
    }
    const norm = Math.hypot(...c)
    if (norm > 1e-8) cols.push(c.map((x) => x / norm))
  }
  const q = new Float64Array(n * n)
  cols.forEach((c, j) => c.forEach((x, i) => { q[i * n + j] = x }))
  return q
}

// m×n float32 matrix with singular values `sigma` (descending, length ≤ min(m, n)).
function withSpectrum(m, n, sigma, seed) {
  const q1 = orthogonal(m, seed)
  const q2 = orthogonal(n, seed + 1)
  const a = new Float32Array(m * n)
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
    let s = 0
    for (let p = 0; p < sigma.length; p++) s += q1[i * m + p] * sigma[p] * q2[j * n + p]
    a[i * n + j] = s
  }
  return a
}

test('full-rank factors multiply back to the matrix, for every split and method', async (t) => {
  for (const [m, n] of [[7, 5], [5, 7], [6, 6], [1, 4], [40, 24]]) {
    const a = randoms(m * n, m * 100 + n)
    const k = Math.min(m, n)
    for (const split of ['balanced', 'left', 'right']) {
      for (const method of ['full', 'randomized']) {
        const f = await lowRankFactors(a, m, n, k, { split, method })
        t.is(f.rank, k)
        t.is(f.left.length, m * k)
        t.is(f.right.length, k * n)
        t.true(f.left instanceof Float32Array && f.right instanceof Float32Array && f.singularValues instanceof Float64Array)
        t.is(f.exact, method === 'full')
        const back = matmul(f.left, f.right, m, k, n)
        let err = 0
        for (let i = 0; i < m * n; i++) err = Math.max(err, Math.abs(back[i] - a[i]))
        t.true(err <= 2e-6 * maxAbs(a) * Math.sqrt(k), `${m}×${n} ${split} ${method}: max |left·right − A| = ${err}`)
      }
    }
  }
})

test('singular values and the truncation error match a known spectrum (Eckart–Young)', async (t) => {
  const [m, n] = [30, 20]
  const sigma = Array.from({ length: n }, (_, i) => 5 / (1 + i))
  const a = withSpectrum(m, n, sigma, 7)
  const s = await singularValues(a, m, n)
  t.is(s.length, n)
  for (let i = 0; i < n; i++) t.true(Math.abs(s[i] - sigma[i]) <= 1e-5 * sigma[0], `σ[${i}] = ${s[i]}, built with ${sigma[i]}`)
  for (const r of [1, 3, 8, 15]) {
    const f = await lowRankFactors(a, m, n, r, { method: 'full' })
    const back = matmul(f.left, f.right, m, r, n)
    let err2 = 0
    for (let i = 0; i < m * n; i++) err2 += (a[i] - back[i]) ** 2
    const discarded = sigma.slice(r).reduce((acc, x) => acc + x * x, 0)
    t.true(Math.abs(Math.sqrt(err2) - Math.sqrt(discarded)) <= 1e-5 * sigma[0], `r=${r}: ‖A − A_r‖_F = ${Math.sqrt(err2)}, √Σσ² discarded = ${Math.sqrt(discarded)}`)
  }
})

test('the randomized method recovers the top singular values and is deterministic per seed', async (t) => {
  const [m, n, r] = [120, 80, 6]
  const sigma = Array.from({ length: n }, (_, i) => 0.7 ** i)
  const a = withSpectrum(m, n, sigma, 11)
  const x = await lowRankFactors(a, m, n, r, { method: 'randomized', seed: 3 })
  t.false(x.exact)
  t.is(x.singularValues.length, r + 10)
  for (let i = 0; i < r; i++) t.true(Math.abs(x.singularValues[i] - sigma[i]) <= 1e-4 * sigma[i] + 1e-6, `σ[${i}]`)
  const y = await lowRankFactors(a, m, n, r, { method: 'randomized', seed: 3 })
  t.deepEqual(y.left, x.left)
  t.deepEqual(y.right, x.right)
  // 'auto' keeps small matrices exact.
  t.true((await lowRankFactors(a, m, n, r)).exact)
})

test('inputs are copied when the call is made', async (t) => {
  const a = Float32Array.from([3, 0, 0, 2])
  const pending = singularValues(a, 2, 2)
  a.fill(0)
  t.deepEqual([...(await pending)], [3, 2])
})

test('least squares matches hand-computed cases', async (t) => {
  // A = [[1,0],[0,1],[1,1]], b = [1,2,4]: AᵀA = [[2,1],[1,2]], Aᵀb = [5,6] → x = [4/3, 7/3];
  // ridge 1: (AᵀA + I)⁻¹ = ⅛[[3,−1],[−1,3]] → x = [9/8, 13/8].
  const a = Float32Array.from([1, 0, 0, 1, 1, 1])
  const b = Float32Array.from([1, 2, 4])
  const x = await leastSquares(a, 3, 2, b, 1)
  t.true(x instanceof Float32Array && x.length === 2)
  t.true(Math.abs(x[0] - 4 / 3) < 1e-6 && Math.abs(x[1] - 7 / 3) < 1e-6, `${[...x]}`)
  const xr = await leastSquares(a, 3, 2, b, 1, { ridge: 1 })
  t.true(Math.abs(xr[0] - 9 / 8) < 1e-6 && Math.abs(xr[1] - 13 / 8) < 1e-6, `${[...xr]}`)
  // Two right-hand sides, row-major B (3×2): the second column A·[1, −1] is fitted exactly.
  const x2 = await leastSquares(a, 3, 2, Float32Array.from([1, 1, 2, -1, 4, 0]), 2)
  for (const [got, want] of [[x2[0], 4 / 3], [x2[1], 1], [x2[2], 7 / 3], [x2[3], -1]]) t.true(Math.abs(got - want) < 1e-6)
})

test('bad arguments give RangeError or TypeError naming the argument', async (t) => {
  const a = randoms(12, 1)
  await t.throwsAsync(lowRankFactors([1, 2, 3, 4], 2, 2, 1), { instanceOf: TypeError, message: /^a: expected a Float32Array/ })
  await t.throwsAsync(lowRankFactors(a, 4, 4, 1), { instanceOf: RangeError, message: /^a: expected rows×cols = 4×4 = 16 elements, got 12/ })
  await t.throwsAsync(lowRankFactors(a, 4, 3, 0), { instanceOf: RangeError, message: /^rank: expected an integer in 1\.\.3/ })
  await t.throwsAsync(lowRankFactors(a, 4, 3, 4), { instanceOf: RangeError, message: /^rank:/ })
  await t.throwsAsync(lowRankFactors(a, 4, 3, 1.5), { instanceOf: TypeError, message: /^rank:/ })
  await t.throwsAsync(lowRankFactors(a, 4.5, 3, 1), { instanceOf: TypeError, message: /^rows:/ })
  await t.throwsAsync(lowRankFactors(a, 0, 3, 1), { instanceOf: RangeError, message: /^rows:/ })
  await t.throwsAsync(lowRankFactors(a, 4, 3, 1, { split: 'top' }), { instanceOf: TypeError, message: /^opts\.split: expected 'balanced', 'left', 'right'/ })
  await t.throwsAsync(lowRankFactors(a, 4, 3, 1, { method: 'qr' }), { instanceOf: TypeError, message: /^opts\.method:/ })
  await t.throwsAsync(lowRankFactors(a, 4, 3, 1, { seed: -1 }), { instanceOf: RangeError, message: /^opts\.seed:/ })
  const withNaN = a.slice()
  withNaN[7] = NaN
  await t.throwsAsync(singularValues(withNaN, 4, 3), { instanceOf: RangeError, message: /^a: holds a non-finite value \(NaN\) at flat index 7/ })
  await t.throwsAsync(singularValues(a, 3, 3), { instanceOf: RangeError, message: /^a:/ })
  await t.throwsAsync(leastSquares(a, 4, 3, new Float32Array(3), 1), { instanceOf: RangeError, message: /^b: expected rows×k = 4×1 = 4 elements, got 3/ })
  await t.throwsAsync(leastSquares(a, 4, 3, new Float64Array(4), 1), { instanceOf: TypeError, message: /^b: expected a Float32Array, got Float64Array/ })
  await t.throwsAsync(leastSquares(a, 4, 3, new Float32Array(4), 1, { ridge: -1 }), { instanceOf: RangeError, message: /^opts\.ridge:/ })
  const infB = new Float32Array(4)
  infB[2] = Infinity
  await t.throwsAsync(leastSquares(a, 4, 3, infB, 1), { instanceOf: RangeError, message: /^b: holds a non-finite value \(inf\) at flat index 2/ })
  // Linearly dependent columns: an error without ridge, a solution with one.
  const dup = Float32Array.from([1, 1, 2, 2, 3, 3])
  await t.throwsAsync(leastSquares(dup, 3, 2, Float32Array.from([1, 2, 3]), 1), { instanceOf: RangeError, message: /^a: .*linearly dependent.*ridge > 0/ })
  // With ridge λ: AᵀA = [[14,14],[14,14]], Aᵀb = [14,14]; by symmetry x₀ = x₁ = c and
  // (28 + λ)·c = 14 → c = 14 / 28.5.
  const x = await leastSquares(dup, 3, 2, Float32Array.from([1, 2, 3]), 1, { ridge: 0.5 })
  t.true(Math.abs(x[0] - 14 / 28.5) < 1e-6 && Math.abs(x[1] - 14 / 28.5) < 1e-6, `${[...x]}`)
})
