// Encodings (scale, offset, grid) from an observed range, computed the way AIMET does it.
import { callNative, native } from './native.js'

export interface EncodingOptions {
  /** 2 to 32. */
  bitwidth: number
  /** Symmetric around zero (AIMET's default for weights). */
  symmetric?: boolean
  /** Symmetric with the grid's most negative value dropped: [−(2^(b−1)−1), 2^(b−1)−1]. */
  strictSymmetric?: boolean
  /** Symmetric quantizers use the unsigned grid [0, 2^b−1] when the observed minimum is ≥ 0. */
  unsignedSymmetric?: boolean
}

/**
 * One quantization encoding. `offset` is AIMET's (x̂ = (q + offset)·scale) on the grid
 * [qmin, qmax] actually used: signed for symmetric encodings (offset 0), unsigned for asymmetric
 * ones. ONNX's zero point is −offset. AIMET's encodings files write symmetric int8 as offset −128
 * on an unsigned view of the same grid: that is `offset + qmin` here.
 */
export interface Encoding {
  bitwidth: number
  min: number
  max: number
  scale: number
  offset: number
  qmin: number
  qmax: number
  symmetric: boolean
  strictSymmetric: boolean
  unsignedSymmetric: boolean
}

export function checkEncodingOptions(opts: EncodingOptions, where: string): Required<EncodingOptions> {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${where}: expected an options object with a bitwidth`)
  const { bitwidth } = opts
  if (!Number.isInteger(bitwidth) || bitwidth < 2 || bitwidth > 32) {
    throw new RangeError(`${where}.bitwidth: expected an integer from 2 to 32, got ${String(bitwidth)}`)
  }
  return {
    bitwidth,
    symmetric: opts.symmetric ?? false,
    strictSymmetric: opts.strictSymmetric ?? false,
    unsignedSymmetric: opts.unsignedSymmetric ?? false,
  }
}

export function computeEncoding(range: { min: number; max: number }, opts: EncodingOptions): Encoding {
  if (range === null || typeof range !== 'object' || typeof range.min !== 'number' || typeof range.max !== 'number') {
    throw new TypeError('range: expected { min: number, max: number }')
  }
  if (Number.isNaN(range.min) || Number.isNaN(range.max)) throw new RangeError(`range: min and max must not be NaN (got ${range.min}, ${range.max})`)
  if (range.min > range.max) throw new RangeError(`range: min (${range.min}) must not exceed max (${range.max})`)
  const o = checkEncodingOptions(opts, 'opts')
  return callNative(() => native.computeEncodingNative(range.min, range.max, o.bitwidth, o.symmetric, o.strictSymmetric, o.unsignedSymmetric))
}
