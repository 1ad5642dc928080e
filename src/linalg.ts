// SVD, low-rank factors and ridge least squares of row-major Float32Array matrices, computed in
// Rust (crates/quantkit-core/src/linalg/, on faer) in f64 on the libuv pool; see docs/linalg.md.
//
// Inputs are copied once when the call is made, so the caller may reuse its arrays at once.
import { callNativeAsync, native } from './native.js'

export interface SvdFactors {
  /** rows × rank, row-major: U·diag(√σ) (split 'balanced'), U·diag(σ) ('left'), or U ('right') */
  left: Float32Array
  /** rank × cols, row-major: diag(√σ)·Vᵀ ('balanced'), Vᵀ ('left'), diag(σ)·Vᵀ ('right') */
  right: Float32Array
  rank: number
  /** All min(rows, cols) singular values when computed exactly; the top `rank`+oversampling when randomized (then `exact` is false). Descending. */
  singularValues: Float64Array
  exact: boolean
}

export interface SvdOptions {
  /** How σ is shared between the factors (default 'balanced'). */
  split?: 'balanced' | 'left' | 'right'
  /**
   * 'full': exact thin SVD. 'randomized': Halko–Martinsson–Tropp with oversampling 10 and 2 power
   * iterations. 'auto' (default): randomized only where it is faster (min(rows, cols) ≥ 256 and
   * rank + 10 ≤ min(rows, cols)/4), exact otherwise.
   */
  method?: 'auto' | 'full' | 'randomized'
  /** Seed of the randomized sketch (a non-negative integer; default 0). */
  seed?: number
}

export interface LeastSquaresOptions {
  /** λ in ‖A·X − B‖² + λ‖X‖² (default 0; needed when A's columns are linearly dependent). */
  ridge?: number
}

const SPLITS = ['balanced', 'left', 'right'] as const
const METHODS = ['auto', 'full', 'randomized'] as const

function tag(v: unknown): string | undefined {
  return ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object'
  return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`
}

function checkFloat32(x: unknown, name: string): asserts x is Float32Array {
  if (tag(x) !== 'Float32Array') throw new TypeError(`${name}: expected a Float32Array, got ${describe(x)}`)
}

/** A dimension: an integer ≥ 1 that fits the binding's u32. */
function checkDim(v: unknown, name: string): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new TypeError(`${name}: expected an integer, got ${describe(v)}`)
  if (v < 1 || v > 0xffffffff) throw new RangeError(`${name}: expected an integer ≥ 1, got ${v}`)
}

function checkMatrix(x: unknown, name: string, rows: unknown, rowsName: string, cols: unknown, colsName: string): void {
  checkFloat32(x, name)
  checkDim(rows, rowsName)
  checkDim(cols, colsName)
  if (x.length !== rows * cols) {
    throw new RangeError(`${name}: expected ${rowsName}×${colsName} = ${rows}×${cols} = ${rows * cols} elements, got ${x.length}`)
  }
}

function checkOptions(opts: unknown, name: string): void {
  if (opts !== undefined && (opts === null || typeof opts !== 'object')) throw new TypeError(`${name}: expected an object, got ${describe(opts)}`)
}

function checkChoice<T extends string>(v: unknown, name: string, choices: readonly T[]): T | undefined {
  if (v === undefined) return undefined
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) {
    throw new TypeError(`${name}: expected ${choices.map((c) => `'${c}'`).join(', ')}, got ${describe(v)}`)
  }
  return v as T
}

/** Factor the row-major rows×cols matrix `a` into left·right of the given rank (1 ≤ rank ≤ min(rows, cols)). Runs on the libuv pool. */
export function lowRankFactors(a: Float32Array, rows: number, cols: number, rank: number, opts?: SvdOptions): Promise<SvdFactors> {
  try {
    checkMatrix(a, 'a', rows, 'rows', cols, 'cols')
    if (typeof rank !== 'number' || !Number.isInteger(rank)) throw new TypeError(`rank: expected an integer, got ${describe(rank)}`)
    const max = Math.min(rows, cols)
    if (rank < 1 || rank > max) throw new RangeError(`rank: expected an integer in 1..${max} (min(rows, cols)), got ${rank}`)
    checkOptions(opts, 'opts')
    const split = checkChoice(opts?.split, 'opts.split', SPLITS)
    const method = checkChoice(opts?.method, 'opts.method', METHODS)
    const seed = opts?.seed
    if (seed !== undefined) {
      if (typeof seed !== 'number' || !Number.isInteger(seed)) throw new TypeError(`opts.seed: expected an integer, got ${describe(seed)}`)
      if (seed < 0 || !Number.isSafeInteger(seed)) throw new RangeError(`opts.seed: expected a non-negative safe integer, got ${seed}`)
    }
    return callNativeAsync(() => native.lowRankFactorsAsync(a, rows, cols, rank, split, method, seed) as Promise<SvdFactors>)
  } catch (err) {
    return Promise.reject(err)
  }
}

/** All singular values (descending), exact. */
export function singularValues(a: Float32Array, rows: number, cols: number): Promise<Float64Array> {
  try {
    checkMatrix(a, 'a', rows, 'rows', cols, 'cols')
    return callNativeAsync(() => native.singularValuesAsync(a, rows, cols) as Promise<Float64Array>)
  } catch (err) {
    return Promise.reject(err)
  }
}

/** X (cols × k, row-major) minimising ‖A·X − B‖² + ridge‖X‖²; A rows×cols, B rows×k, row-major. */
export function leastSquares(a: Float32Array, rows: number, cols: number, b: Float32Array, k: number, opts?: LeastSquaresOptions): Promise<Float32Array> {
  try {
    checkMatrix(a, 'a', rows, 'rows', cols, 'cols')
    checkFloat32(b, 'b')
    checkDim(k, 'k')
    if (b.length !== rows * k) throw new RangeError(`b: expected rows×k = ${rows}×${k} = ${rows * k} elements, got ${b.length}`)
    checkOptions(opts, 'opts')
    const ridge = opts?.ridge
    if (ridge !== undefined) {
      if (typeof ridge !== 'number') throw new TypeError(`opts.ridge: expected a number, got ${describe(ridge)}`)
      if (!(ridge >= 0) || !Number.isFinite(ridge)) throw new RangeError(`opts.ridge: expected a finite number ≥ 0, got ${ridge}`)
    }
    return callNativeAsync(() => native.leastSquaresAsync(a, rows, cols, b, k, ridge) as Promise<Float32Array>)
  } catch (err) {
    return Promise.reject(err)
  }
}
