// Packing of 4-bit elements (INT4, UINT4, FLOAT4E2M1) two to a byte, as onnx.proto specifies for
// raw_data and int32_data: the first element in the 4 least significant bits, the second in the 4
// most significant bits; an odd count leaves the last high nibble zero.
// These loop in JavaScript: meant for small tensors (tests, one-node models). Large weight tensors
// are packed by the Rust core.

import { OnnxFormatError } from '../errors.js'

/** Packs 4-bit values (int4 as -8…7, uint4/float4 bit patterns as 0…15) into ceil(n/2) bytes. */
export function pack4bit(values: ArrayLike<number>, signed: boolean): Uint8Array {
  const [lo, hi] = signed ? [-8, 7] : [0, 15]
  const out = new Uint8Array(Math.ceil(values.length / 2))
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!
    if (!Number.isInteger(v) || v < lo || v > hi) {
      throw new OnnxFormatError(`pack4bit: element ${i} is ${v}, expected an integer in [${lo}, ${hi}]`)
    }
    out[i >> 1]! |= (v & 0x0f) << ((i & 1) * 4)
  }
  return out
}

/** Unpacks `count` 4-bit elements; signed gives two's-complement int4 values (-8…7). */
export function unpack4bit(bytes: Uint8Array, count: number, signed: boolean): Int8Array | Uint8Array {
  if (bytes.length < Math.ceil(count / 2)) {
    throw new OnnxFormatError(`unpack4bit: ${bytes.length} bytes hold at most ${bytes.length * 2} elements, asked for ${count}`)
  }
  const out = signed ? new Int8Array(count) : new Uint8Array(count)
  for (let i = 0; i < count; i++) {
    const nibble = (bytes[i >> 1]! >> ((i & 1) * 4)) & 0x0f
    out[i] = signed && nibble > 7 ? nibble - 16 : nibble
  }
  return out
}
