// ONNX tensor element types (TensorProto.DataType): number, name, width, and the typed array that
// holds a tensor's elements in memory. The numbers are onnx.proto's (ONNX 1.19.0, proto/onnx.proto);
// __test__/onnxTensor.test.mjs checks this table against the generated enum.
//
// In-memory representation (what `Tensor.data` holds):
// - Types with a native JS typed array use it (float32 → Float32Array, int64 → BigInt64Array, …).
// - float16, bfloat16: Uint16Array of raw bit patterns (no conversion; JS has no such number type).
// - float8 (all four), float8e8m0: Uint8Array of raw bit patterns.
// - int4, uint4, float4e2m1: Uint8Array of *packed* bytes, two elements per byte, first element in
//   the low nibble, as raw_data stores them; length ceil(count / 2). See packed4bit.ts.
// - bool: Uint8Array, one byte per element (0 or 1).
// - complex64 / complex128: Float32Array / Float64Array with two entries (re, im) per element.
// - string: not numeric; tensor.ts refuses it.

import { OnnxFormatError } from '../errors.js'

export type TypedArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array

export type TypedArrayConstructor =
  | Float32ArrayConstructor
  | Float64ArrayConstructor
  | Int8ArrayConstructor
  | Uint8ArrayConstructor
  | Int16ArrayConstructor
  | Uint16ArrayConstructor
  | Int32ArrayConstructor
  | Uint32ArrayConstructor
  | BigInt64ArrayConstructor
  | BigUint64ArrayConstructor

/** TensorProto.DataType numbers by name, as in onnx.proto. */
export const DataType = {
  UNDEFINED: 0,
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
  COMPLEX64: 14,
  COMPLEX128: 15,
  BFLOAT16: 16,
  FLOAT8E4M3FN: 17,
  FLOAT8E4M3FNUZ: 18,
  FLOAT8E5M2: 19,
  FLOAT8E5M2FNUZ: 20,
  UINT4: 21,
  INT4: 22,
  FLOAT4E2M1: 23,
  FLOAT8E8M0: 24,
} as const

export type DataTypeName = keyof typeof DataType
export type DataTypeNumber = (typeof DataType)[DataTypeName]

/** Which TensorProto repeated field carries this type when raw_data is not used (onnx.proto). */
export type TypedDataField = 'floatData' | 'int32Data' | 'stringData' | 'int64Data' | 'doubleData' | 'uint64Data'

export interface ElementType {
  readonly name: DataTypeName
  readonly dataType: DataTypeNumber
  /** Bits per element (complex64 = 64: two float32). 0 for STRING and UNDEFINED. */
  readonly bits: number
  /** Typed array class for `Tensor.data`; null for STRING and UNDEFINED (not numeric). */
  readonly arrayType: TypedArrayConstructor | null
  /** Typed-array entries per element: 2 for complex types, 0.5 for packed 4-bit types, else 1. */
  readonly entriesPerElement: number
  /** The typed field the spec assigns to this type; null for UNDEFINED. */
  readonly typedField: TypedDataField | null
  /** Integer range of one int32_data entry for types stored there (checked on read). */
  readonly int32Range?: readonly [number, number]
}

function row(
  name: DataTypeName,
  bits: number,
  arrayType: TypedArrayConstructor | null,
  typedField: TypedDataField | null,
  int32Range?: readonly [number, number],
): ElementType {
  const entriesPerElement = bits === 4 ? 0.5 : name === 'COMPLEX64' || name === 'COMPLEX128' ? 2 : arrayType ? 1 : 0
  return Object.freeze({ name, dataType: DataType[name], bits, arrayType, entriesPerElement, typedField, int32Range })
}

const U8: readonly [number, number] = [0, 0xff]
const U16: readonly [number, number] = [0, 0xffff]

const TABLE: readonly ElementType[] = [
  row('UNDEFINED', 0, null, null),
  row('FLOAT', 32, Float32Array, 'floatData'),
  row('UINT8', 8, Uint8Array, 'int32Data', U8),
  row('INT8', 8, Int8Array, 'int32Data', [-0x80, 0x7f]),
  row('UINT16', 16, Uint16Array, 'int32Data', U16),
  row('INT16', 16, Int16Array, 'int32Data', [-0x8000, 0x7fff]),
  row('INT32', 32, Int32Array, 'int32Data', [-0x80000000, 0x7fffffff]),
  row('INT64', 64, BigInt64Array, 'int64Data'),
  row('STRING', 0, null, 'stringData'),
  row('BOOL', 8, Uint8Array, 'int32Data', [0, 1]),
  row('FLOAT16', 16, Uint16Array, 'int32Data', U16),
  row('DOUBLE', 64, Float64Array, 'doubleData'),
  row('UINT32', 32, Uint32Array, 'uint64Data'),
  row('UINT64', 64, BigUint64Array, 'uint64Data'),
  row('COMPLEX64', 64, Float32Array, 'floatData'),
  row('COMPLEX128', 128, Float64Array, 'doubleData'),
  row('BFLOAT16', 16, Uint16Array, 'int32Data', U16),
  row('FLOAT8E4M3FN', 8, Uint8Array, 'int32Data', U8),
  row('FLOAT8E4M3FNUZ', 8, Uint8Array, 'int32Data', U8),
  row('FLOAT8E5M2', 8, Uint8Array, 'int32Data', U8),
  row('FLOAT8E5M2FNUZ', 8, Uint8Array, 'int32Data', U8),
  // 4-bit types: each int32_data entry holds one packed byte (two elements), as raw_data does.
  row('UINT4', 4, Uint8Array, 'int32Data', U8),
  row('INT4', 4, Uint8Array, 'int32Data', U8),
  row('FLOAT4E2M1', 4, Uint8Array, 'int32Data', U8),
  row('FLOAT8E8M0', 8, Uint8Array, 'int32Data', U8),
]

/** Every element type, indexed by its TensorProto.DataType number. */
export const ELEMENT_TYPES: readonly ElementType[] = TABLE

/**
 * Looks up an element type by number or name. Throws OnnxFormatError for an unknown one;
 * `context` (e.g. `tensor "w"`) is put in the message.
 */
export function elementType(dataType: number | DataTypeName, context?: string): ElementType {
  const info = typeof dataType === 'number' ? TABLE[dataType] : TABLE[DataType[dataType] ?? -1]
  if (info === undefined || (typeof dataType === 'number' && !Number.isInteger(dataType))) {
    const where = context ? `${context}: ` : ''
    throw new OnnxFormatError(
      `${where}unknown ONNX element type ${JSON.stringify(dataType)} (expected a TensorProto.DataType 1-${TABLE.length - 1} or its name)`,
    )
  }
  return info
}

/** True for types whose elements live in a typed array (everything but STRING and UNDEFINED). */
export function isNumeric(dataType: number): boolean {
  return TABLE[dataType]?.arrayType != null
}

/** Number of typed-array entries that hold `elementCount` elements of this type. */
export function arrayLength(dataType: number, elementCount: number): number {
  const info = elementType(dataType)
  return info.bits === 4 ? Math.ceil(elementCount / 2) : elementCount * info.entriesPerElement
}

/** Bytes that `elementCount` elements of this type take in raw_data. */
export function byteLength(dataType: number, elementCount: number): number {
  const info = elementType(dataType)
  return info.bits === 4 ? Math.ceil(elementCount / 2) : (elementCount * info.bits) / 8
}
