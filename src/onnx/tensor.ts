// TensorProto ⇄ Tensor, where a Tensor is the in-memory form the rest of quantkit uses:
// `{ name, dataType, dims, data }` with data in the typed array elementType.ts assigns to the type.
//
// Reading accepts raw_data and every typed field (float_data, int32_data, int64_data, double_data,
// uint64_data). raw_data is copied once into a fresh typed array: protobuf byte slices point into
// the model buffer at arbitrary offsets, and Float32Array & co. need aligned offsets.
// Writing always uses raw_data (little-endian, as the spec requires).
// int64/uint64 elements are BigInt64Array/BigUint64Array, exact over the full 64-bit range; dims are
// numbers, and a dim beyond Number.MAX_SAFE_INTEGER is an error.
// External data (data_location = EXTERNAL) is resolved elsewhere; here it is an error.

import { onnx } from '../../generated/onnx.js'
import { OnnxFormatError } from '../errors.js'
import { byteLength, arrayLength, elementType, type ElementType, type TypedArray } from './elementType.js'
import { longToBigInt, longToNumber, toLong, type LongLike } from './int64.js'

export interface Tensor {
  name: string
  /** TensorProto.DataType number (see `DataType` in elementType.ts). */
  dataType: number
  dims: number[]
  data: TypedArray
  /** TensorProto.doc_string, kept through load and save. */
  docString?: string
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

function describe(name: string | null | undefined): string {
  return `tensor ${JSON.stringify(name ?? '')}`
}

function isPresent(proto: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(proto, field) && (proto as Record<string, unknown>)[field] != null
}

function elementCount(dims: readonly number[]): number {
  let n = 1
  for (const d of dims) n *= d
  return n
}

function swapBytesInPlace(bytes: Uint8Array, width: number): void {
  for (let i = 0; i + width <= bytes.length; i += width) bytes.subarray(i, i + width).reverse()
}

function fromRawData(info: ElementType, raw: Uint8Array, count: number, name: string): TypedArray {
  const expected = byteLength(info.dataType, count)
  if (raw.length !== expected) {
    throw new OnnxFormatError(
      `${describe(name)}: raw_data has ${raw.length} bytes, expected ${expected} ` +
        `(${count} ${info.name} elements${info.bits === 4 ? ', two per byte' : ` × ${info.bits / 8} bytes`})`,
    )
  }
  const data = new info.arrayType!(arrayLength(info.dataType, count))
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  bytes.set(raw)
  if (!LITTLE_ENDIAN && data.BYTES_PER_ELEMENT > 1) swapBytesInPlace(bytes, data.BYTES_PER_ELEMENT)
  return data
}

function fromTypedField(info: ElementType, proto: onnx.ITensorProto, count: number, name: string): TypedArray {
  const field = info.typedField!
  const values = (proto[field] ?? []) as ArrayLike<number | LongLike>
  const expected = arrayLength(info.dataType, count)
  if (values.length !== expected) {
    throw new OnnxFormatError(
      `${describe(name)}: ${snake(field)} has ${values.length} values, expected ${expected} for ${count} ${info.name} elements` +
        (info.bits === 4 ? ' (two 4-bit elements per int32_data value)' : ''),
    )
  }
  const data = new info.arrayType!(expected)
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) {
    const unsigned = data instanceof BigUint64Array
    for (let i = 0; i < expected; i++) data[i] = longToBigInt(values[i]!, unsigned)
    return data
  }
  if (field === 'uint64Data') {
    // UINT32 in uint64_data.
    for (let i = 0; i < expected; i++) {
      const v = longToBigInt(values[i]!, true)
      if (v > 0xffffffffn) {
        throw new OnnxFormatError(`${describe(name)}: uint64_data[${i}] = ${v} does not fit ${info.name}`)
      }
      data[i] = Number(v)
    }
    return data
  }
  const range = info.int32Range
  for (let i = 0; i < expected; i++) {
    const v = values[i] as number
    if (range && (v < range[0] || v > range[1])) {
      throw new OnnxFormatError(
        `${describe(name)}: int32_data[${i}] = ${v} is outside [${range[0]}, ${range[1]}] for ${info.name}` +
          (info.bits === 4 ? ' (each value is one byte holding two 4-bit elements)' : ''),
      )
    }
    data[i] = v
  }
  return data
}

function snake(field: string): string {
  return field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)
}

const TYPED_FIELDS = ['floatData', 'int32Data', 'stringData', 'int64Data', 'doubleData', 'uint64Data'] as const

/** What a TensorProto says about its tensor, checked, before any data is read. */
export interface TensorHeader {
  name: string
  info: ElementType & { arrayType: NonNullable<ElementType['arrayType']> }
  dims: number[]
  /** Number of elements. */
  count: number
  /** Bytes the elements take in raw_data (and in external data). */
  byteLength: number
}

/**
 * Name, numeric element type and dims of a TensorProto, checked: a known numeric type, dims that
 * are non-negative safe integers, an element count quantkit can hold. Used for embedded and
 * external tensors alike (externalData.ts reads the bytes itself).
 */
export function tensorHeader(proto: onnx.ITensorProto): TensorHeader {
  const name = proto.name ?? ''
  if (proto.segment) {
    throw new OnnxFormatError(`${describe(name)}: segmented tensors (TensorProto.segment) are not supported`)
  }
  const info = elementType(proto.dataType ?? 0, describe(name))
  if (info.arrayType === null) {
    throw new OnnxFormatError(`${describe(name)}: element type ${info.name} is not numeric; expected a numeric TensorProto.DataType`)
  }
  const dims = (proto.dims ?? []).map((d, i) => {
    const n = longToNumber(d, `${describe(name)}: dims[${i}]`)
    if (n < 0) throw new OnnxFormatError(`${describe(name)}: dims[${i}] is ${n}, expected a non-negative size`)
    return n
  })
  const count = elementCount(dims)
  if (!Number.isSafeInteger(count)) {
    throw new OnnxFormatError(`${describe(name)}: dims ${JSON.stringify(dims)} hold more elements than quantkit handles`)
  }
  return { name, info: info as TensorHeader['info'], dims, count, byteLength: byteLength(info.dataType, count) }
}

/** Reads a decoded TensorProto message into a Tensor. */
export function tensorFromProto(proto: onnx.ITensorProto): Tensor {
  if (proto.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const location = proto.externalData?.find((e) => e.key === 'location')?.value
    throw new OnnxFormatError(
      `${describe(proto.name)}: data is stored externally${location ? ` in ${JSON.stringify(location)}` : ''}; ` +
        'load the model with its external data resolved (tensor decoding reads embedded data only)',
    )
  }
  const { name, info, dims, count } = tensorHeader(proto)

  const present = TYPED_FIELDS.filter((f) => (proto[f]?.length ?? 0) > 0)
  if (isPresent(proto, 'rawData')) {
    if (present.length > 0) {
      throw new OnnxFormatError(`${describe(name)}: has both raw_data and ${present.map(snake).join(', ')}; expected one`)
    }
    return { name, dataType: info.dataType, dims, data: fromRawData(info, proto.rawData!, count, name) }
  }
  const stray = present.filter((f) => f !== info.typedField)
  if (stray.length > 0) {
    throw new OnnxFormatError(
      `${describe(name)}: ${info.name} data found in ${stray.map(snake).join(', ')}; expected raw_data or ${snake(info.typedField!)}`,
    )
  }
  return { name, dataType: info.dataType, dims, data: fromTypedField(info, proto, count, name) }
}

function tagOf(data: unknown): string | undefined {
  // Not `instanceof`: typed arrays from another realm (vm context, some worker setups) fail it.
  return ArrayBuffer.isView(data) ? (data as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
}

/** Builds a TensorProto message for a Tensor, with its data in raw_data. */
export function tensorToProto(tensor: Tensor): onnx.TensorProto {
  const { name, dims, data } = tensor
  const info = elementType(tensor.dataType, describe(name))
  if (info.arrayType === null) {
    throw new OnnxFormatError(`${describe(name)}: element type ${info.name} is not numeric; cannot write it as raw_data`)
  }
  dims.forEach((d, i) => {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new OnnxFormatError(`${describe(name)}: dims[${i}] is ${d}, expected a non-negative integer`)
    }
  })
  const tag = tagOf(data)
  if (tag !== info.arrayType.name) {
    throw new OnnxFormatError(`${describe(name)}: ${info.name} data must be a ${info.arrayType.name}, got ${tag ?? typeof data}`)
  }
  const count = elementCount(dims)
  const expected = arrayLength(info.dataType, count)
  if (data.length !== expected) {
    throw new OnnxFormatError(
      `${describe(name)}: data has ${data.length} entries, expected ${expected} for dims ${JSON.stringify(dims)} of ${info.name}` +
        (info.bits === 4 ? ' (packed, two elements per byte)' : ''),
    )
  }
  let raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
  if (!LITTLE_ENDIAN && data.BYTES_PER_ELEMENT > 1) {
    raw = raw.slice()
    swapBytesInPlace(raw, data.BYTES_PER_ELEMENT)
  }
  return onnx.TensorProto.create({ name, dataType: info.dataType, dims: dims.map((d) => toLong(d)), rawData: raw })
}

/** Serialized TensorProto bytes → Tensor. */
export function decodeTensor(bytes: Uint8Array): Tensor {
  let proto: onnx.TensorProto
  try {
    proto = onnx.TensorProto.decode(bytes)
  } catch (e) {
    throw new OnnxFormatError(`TensorProto bytes do not decode: ${(e as Error).message}`)
  }
  return tensorFromProto(proto)
}

/** Tensor → serialized TensorProto bytes (raw_data). */
export function encodeTensor(tensor: Tensor): Uint8Array {
  return onnx.TensorProto.encode(tensorToProto(tensor)).finish()
}

/** Brings little-endian bytes just read into `data`'s memory to host order (a no-op on little-endian hosts). */
export function fromLittleEndianInPlace(data: TypedArray): void {
  if (!LITTLE_ENDIAN && data.BYTES_PER_ELEMENT > 1) {
    swapBytesInPlace(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), data.BYTES_PER_ELEMENT)
  }
}
