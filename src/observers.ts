// Observers: running statistics whose memory does not grow with the data seen, and the
// encodings they lead to. Updates run in Rust; the async variants on the libuv pool (they borrow
// the input array: do not modify it until the promise settles). Concurrent updates of one
// observer are serialised by a lock in the binding.
import { callNative, callNativeAsync, native } from './native.js'
import { checkEncodingOptions, type Encoding, type EncodingOptions } from './encoding.js'

export type CalibrationScheme = 'min_max' | 'tf_enhanced' | 'percentile' | 'mse' | 'entropy'
const SCHEMES: readonly string[] = ['min_max', 'tf_enhanced', 'percentile', 'mse', 'entropy']

export interface HistogramEncodingOptions extends EncodingOptions {
  /** min_max (AIMET's tf), tf_enhanced (SQNR search), percentile, mse, entropy (KL). */
  scheme: CalibrationScheme
  /** For `percentile`: in [50, 100]; default 99.99. */
  percentile?: number
}

function checkData(x: unknown, name: string): asserts x is Float32Array {
  const t = ArrayBuffer.isView(x) ? (x as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
  if (t !== 'Float32Array') throw new TypeError(`${name}: expected a Float32Array`)
}

function checkShape(length: number, shape: readonly number[] | undefined): number[] {
  const s = shape ? [...shape] : [length]
  const n = s.reduce((a, b) => a * b, 1)
  if (n !== length) throw new TypeError(`shape: [${s.join(', ')}] holds ${n} elements but x has ${length}`)
  return s
}

export interface MinMaxObserverOptions {
  /** Per-channel along this axis of the data's shape; omit for per-tensor. */
  axis?: number
}

export class MinMaxObserver {
  readonly #native: InstanceType<typeof native.NativeMinMaxObserver>
  readonly axis: number | undefined

  constructor(opts: MinMaxObserverOptions = {}) {
    if (opts.axis !== undefined && (!Number.isInteger(opts.axis) || opts.axis < 0)) {
      throw new RangeError(`opts.axis: expected a non-negative integer, got ${opts.axis}`)
    }
    this.axis = opts.axis
    this.#native = new native.NativeMinMaxObserver(opts.axis)
  }

  update(x: Float32Array, shape?: readonly number[]): void {
    checkData(x, 'x')
    const s = checkShape(x.length, shape)
    callNative(() => this.#native.update(x, s))
  }

  async updateAsync(x: Float32Array, shape?: readonly number[], opts: { signal?: AbortSignal } = {}): Promise<void> {
    checkData(x, 'x')
    const s = checkShape(x.length, shape)
    await callNativeAsync(() => this.#native.updateAsync(x, s, opts.signal))
  }

  merge(other: MinMaxObserver): void {
    if (!(other instanceof MinMaxObserver)) throw new TypeError('other: expected a MinMaxObserver')
    callNative(() => this.#native.merge(other.#native))
  }

  /** Observed minimum: one value per-tensor, one per channel otherwise; empty before any update. */
  get min(): number[] {
    return this.#native.min()
  }

  get max(): number[] {
    return this.#native.max()
  }

  /** Per-tensor: one encoding; per-channel: one per channel. */
  encodings(opts: EncodingOptions): Encoding[] {
    const o = checkEncodingOptions(opts, 'opts')
    return callNative(() => this.#native.encodings(o.bitwidth, o.symmetric, o.strictSymmetric, o.unsignedSymmetric))
  }

  encoding(opts: EncodingOptions): Encoding {
    const all = this.encodings(opts)
    if (all.length !== 1) throw new TypeError(`encoding(): this observer is per-channel (${all.length} channels); use encodings()`)
    return all[0]!
  }
}

export interface HistogramObserverOptions {
  /** Number of bins; default 2048 (AIMET's). */
  bins?: number
}

export class HistogramObserver {
  readonly #native: InstanceType<typeof native.NativeHistogramObserver>

  constructor(opts: HistogramObserverOptions = {}) {
    const bins = opts.bins ?? 2048
    if (!Number.isInteger(bins) || bins < 2 || bins > 1 << 24) {
      throw new RangeError(`opts.bins: expected an integer from 2 to 16777216, got ${bins}`)
    }
    this.#native = callNative(() => new native.NativeHistogramObserver(bins))
  }

  update(x: Float32Array): void {
    checkData(x, 'x')
    callNative(() => this.#native.update(x))
  }

  async updateAsync(x: Float32Array, opts: { signal?: AbortSignal } = {}): Promise<void> {
    checkData(x, 'x')
    await callNativeAsync(() => this.#native.updateAsync(x, opts.signal))
  }

  merge(other: HistogramObserver): void {
    if (!(other instanceof HistogramObserver)) throw new TypeError('other: expected a HistogramObserver')
    callNative(() => this.#native.merge(other.#native))
  }

  /** The histogram's bin range and the exact observed extremes; undefined before any update. */
  get range(): { lo: number; hi: number; min: number; max: number } | undefined {
    const r = this.#native.range()
    return r.length === 4 ? { lo: r[0]!, hi: r[1]!, min: r[2]!, max: r[3]! } : undefined
  }

  get counts(): Float64Array {
    return this.#native.counts()
  }

  encoding(opts: HistogramEncodingOptions): Encoding {
    const o = checkEncodingOptions(opts, 'opts')
    if (!SCHEMES.includes(opts.scheme)) {
      throw new TypeError(`opts.scheme: unknown calibration scheme '${String(opts.scheme)}'; expected one of ${SCHEMES.join(', ')}`)
    }
    if (opts.percentile !== undefined && !(opts.percentile >= 50 && opts.percentile <= 100)) {
      throw new RangeError(`opts.percentile: expected a number in [50, 100], got ${opts.percentile}`)
    }
    return callNative(() =>
      this.#native.encoding(opts.scheme, opts.percentile, o.bitwidth, o.symmetric, o.strictSymmetric, o.unsignedSymmetric))
  }
}
