// Error statistics between a reference tensor and its approximation, computed in Rust.
import { callNative, native } from './native.js'

export interface ErrorStats {
  /** 10·log10(Σx² / Σ(x − y)²) in dB; Infinity when identical. */
  sqnrDb: number
  mse: number
  maxAbsError: number
  meanAbsError: number
  /** Elements where either side is NaN or ±inf (left out of the other figures). */
  nonFinite: number
}

export function compareTensors(reference: Float32Array, other: Float32Array): ErrorStats {
  for (const [name, v] of [['reference', reference], ['other', other]] as const) {
    const tag = ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
    if (tag !== 'Float32Array') throw new TypeError(`${name}: expected a Float32Array`)
  }
  return callNative(() => native.compareTensorsNative(reference, other))
}
