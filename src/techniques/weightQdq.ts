// Fake-quantizes a weight with one encoding per channel (or one per tensor), in Rust. Encodings
// of one quantizer may sit on different grids of the same width (a symmetric quantizer with
// unsignedSymmetric puts an all-positive channel on [0, 2^b−1]); the offsets are shifted onto
// one grid, which leaves x̂ = (q + offset)·scale unchanged.
import { affine } from '../affine.js'
import type { Encoding } from '../encoding.js'

export function quantizeDequantizeWeight(w: Float32Array, dims: readonly number[], encodings: readonly Encoding[], axis: number | undefined): Float32Array {
  const qmin = Math.min(...encodings.map((e) => e.qmin))
  const width = encodings[0]!.qmax - encodings[0]!.qmin
  if (encodings.some((e) => e.qmax - e.qmin !== width)) throw new RangeError('quantizeDequantizeWeight: encodings of one weight must share a grid width')
  const scale = Float32Array.from(encodings, (e) => e.scale)
  const offset = Int32Array.from(encodings, (e) => e.offset + e.qmin - qmin)
  if (axis === undefined) return affine.quantizeDequantize(w, scale[0]!, offset[0]!, qmin, qmin + width)
  return affine.quantizeDequantize(w, scale, offset, qmin, qmin + width, { shape: dims, axis })
}
