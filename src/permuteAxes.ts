// Axis permutation of a float32 tensor in Rust (numpy's transpose(perm) followed by a copy): graph
// rewrites rearrange weights with it rather than looping over their elements in TypeScript.
import { callNative, native } from './native.js'

/** `data` laid out as `dims`, returned laid out as `perm.map((p) => dims[p])` (row-major). */
export function permuteAxes(data: Float32Array, dims: readonly number[], perm: readonly number[]): Float32Array {
  return callNative(() => native.permuteAxes(data, [...dims], [...perm]))
}
