// src/onnx/elementType.ts, tensor.ts, packed4bit.ts: TensorProto ⇄ Tensor.
import test from 'ava'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { onnx } = require('../generated/onnx.js')
const { DataType: T, ELEMENT_TYPES, elementType, byteLength, arrayLength } = require('../dist/onnx/elementType.js')
const { encodeTensor, decodeTensor, tensorFromProto, tensorToProto } = require('../dist/onnx/tensor.js')
const { pack4bit, unpack4bit } = require('../dist/onnx/packed4bit.js')
const { OnnxFormatError } = require('../dist/errors.js')
const Long = require('protobufjs/minimal').util.Long

test('the element type table matches the generated TensorProto.DataType enum', (t) => {
  const generated = onnx.TensorProto.DataType
  t.deepEqual(Object.keys(T), Object.keys(generated))
  for (const [name, n] of Object.entries(generated)) {
    t.is(T[name], n, name)
    t.is(elementType(n).name, name)
    t.is(elementType(name).dataType, n)
  }
  t.is(ELEMENT_TYPES.length, Object.keys(generated).length)
})

test('element sizes, bits and array classes', (t) => {
  const expect = {
    FLOAT: [32, Float32Array], UINT8: [8, Uint8Array], INT8: [8, Int8Array], UINT16: [16, Uint16Array],
    INT16: [16, Int16Array], INT32: [32, Int32Array], INT64: [64, BigInt64Array], BOOL: [8, Uint8Array],
    FLOAT16: [16, Uint16Array], DOUBLE: [64, Float64Array], UINT32: [32, Uint32Array], UINT64: [64, BigUint64Array],
    COMPLEX64: [64, Float32Array], COMPLEX128: [128, Float64Array], BFLOAT16: [16, Uint16Array],
    FLOAT8E4M3FN: [8, Uint8Array], FLOAT8E4M3FNUZ: [8, Uint8Array], FLOAT8E5M2: [8, Uint8Array],
    FLOAT8E5M2FNUZ: [8, Uint8Array], UINT4: [4, Uint8Array], INT4: [4, Uint8Array], FLOAT4E2M1: [4, Uint8Array],
    FLOAT8E8M0: [8, Uint8Array],
  }
  for (const [name, [bits, cls]] of Object.entries(expect)) {
    t.is(elementType(name).bits, bits, name)
    t.is(elementType(name).arrayType, cls, name)
  }
  t.is(elementType('STRING').arrayType, null)
  t.is(byteLength(T.INT4, 5), 3)
  t.is(arrayLength(T.INT4, 5), 3)
  t.is(byteLength(T.COMPLEX64, 3), 24)
  t.is(arrayLength(T.COMPLEX64, 3), 6)
  t.is(byteLength(T.FLOAT16, 3), 6)
  t.throws(() => elementType(99), { instanceOf: OnnxFormatError, message: /unknown ONNX element type 99/ })
})

test('pack4bit/unpack4bit: first element in the low nibble, int4 two\'s complement', (t) => {
  const packed = pack4bit([-8, -1, 0, 7, -3], true)
  t.deepEqual([...packed], [0xf8, 0x70, 0x0d])
  t.deepEqual([...unpack4bit(packed, 5, true)], [-8, -1, 0, 7, -3])
  t.deepEqual([...unpack4bit(pack4bit([0, 15, 9], false), 3, false)], [0, 15, 9])
  t.throws(() => pack4bit([8], true), { instanceOf: OnnxFormatError })
})

const BIG = 2n ** 53n + 1n
// One tensor per numeric element type, with values that catch truncation, sign and byte-order slips.
const SAMPLES = [
  ['FLOAT', [2, 3], new Float32Array([0, -1.5, 3.4028234663852886e38, 1e-45, -0, Number.NaN])],
  ['UINT8', [4], new Uint8Array([0, 1, 128, 255])],
  ['INT8', [4], new Int8Array([-128, -1, 0, 127])],
  ['UINT16', [3], new Uint16Array([0, 0x8001, 0xffff])],
  ['INT16', [3], new Int16Array([-32768, -2, 32767])],
  ['INT32', [3], new Int32Array([-2147483648, -7, 2147483647])],
  ['INT64', [5], new BigInt64Array([BIG, -BIG, 2n ** 63n - 1n, -(2n ** 63n), -1n])],
  ['BOOL', [3], new Uint8Array([1, 0, 1])],
  ['FLOAT16', [3], new Uint16Array([0x3c00, 0xc000, 0x7e00])],
  ['DOUBLE', [3], new Float64Array([Math.PI, -0, 1.7976931348623157e308])],
  ['UINT32', [2], new Uint32Array([0, 0xffffffff])],
  ['UINT64', [3], new BigUint64Array([0n, BIG, 2n ** 64n - 1n])],
  ['COMPLEX64', [2], new Float32Array([1, 2, -3, 4.5])],
  ['COMPLEX128', [1], new Float64Array([1e300, -2])],
  ['BFLOAT16', [2], new Uint16Array([0x3f80, 0xbf80])],
  ['FLOAT8E4M3FN', [3], new Uint8Array([0x38, 0xb8, 0x7f])],
  ['FLOAT8E4M3FNUZ', [2], new Uint8Array([0x40, 0x80])],
  ['FLOAT8E5M2', [2], new Uint8Array([0x3c, 0xfc])],
  ['FLOAT8E5M2FNUZ', [2], new Uint8Array([0x40, 0x80])],
  ['UINT4', [5], pack4bit([0, 15, 8, 1, 9], false)],
  ['INT4', [5], pack4bit([-8, -1, 0, 7, -3], true)],
  ['FLOAT4E2M1', [2, 2], pack4bit([0x1, 0x9, 0x7, 0xf], false)],
  ['FLOAT8E8M0', [2], new Uint8Array([127, 255])],
]

test('every numeric element type round-trips through TensorProto bytes', (t) => {
  const covered = new Set(SAMPLES.map(([name]) => name))
  for (const { name, arrayType } of ELEMENT_TYPES) if (arrayType) t.true(covered.has(name), `sample for ${name}`)
  for (const [typeName, dims, data] of SAMPLES) {
    const tensor = { name: `t_${typeName}`, dataType: T[typeName], dims, data }
    const back = decodeTensor(encodeTensor(tensor))
    t.is(back.name, tensor.name)
    t.is(back.dataType, T[typeName])
    t.deepEqual(back.dims, dims)
    t.is(back.data.constructor, data.constructor, typeName)
    // Compare bit patterns so NaN and -0 count.
    t.deepEqual(
      new Uint8Array(back.data.buffer, back.data.byteOffset, back.data.byteLength),
      new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
      typeName,
    )
  }
})

test('int64 beyond 2^53 and negative int4 nibbles survive exactly', (t) => {
  const i64 = decodeTensor(encodeTensor({ name: 'big', dataType: T.INT64, dims: [2], data: new BigInt64Array([BIG, -(2n ** 62n) - 3n]) }))
  t.deepEqual([...i64.data], [9007199254740993n, -4611686018427387907n])
  const i4 = decodeTensor(encodeTensor({ name: 'w4', dataType: T.INT4, dims: [3], data: pack4bit([-8, -1, 5], true) }))
  t.deepEqual([...unpack4bit(i4.data, 3, true)], [-8, -1, 5])
})

test('raw_data at an unaligned offset is copied into an aligned array', (t) => {
  const bytes = encodeTensor({ name: 'w', dataType: T.DOUBLE, dims: [2], data: new Float64Array([1.25, -2]) })
  for (let shift = 1; shift < 8; shift++) {
    const buf = new Uint8Array(bytes.length + shift)
    buf.set(bytes, shift)
    const back = decodeTensor(buf.subarray(shift))
    t.is(back.data.byteOffset % 8, 0)
    t.deepEqual([...back.data], [1.25, -2])
  }
})

test('typed fields are read per the spec (float/int32/int64/double/uint64_data)', (t) => {
  const read = (fields) => tensorFromProto(onnx.TensorProto.decode(onnx.TensorProto.encode(onnx.TensorProto.create(fields)).finish()))
  t.deepEqual([...read({ name: 'f', dataType: T.FLOAT, dims: [2], floatData: [1.5, -2] }).data], [1.5, -2])
  const i8 = read({ name: 'i8', dataType: T.INT8, dims: [3], int32Data: [-128, 0, 127] })
  t.true(i8.data instanceof Int8Array)
  t.deepEqual([...i8.data], [-128, 0, 127])
  t.deepEqual([...read({ name: 'h', dataType: T.FLOAT16, dims: [1], int32Data: [0x3c00] }).data], [0x3c00])
  t.deepEqual([...read({ name: 'b', dataType: T.BOOL, dims: [2], int32Data: [1, 0] }).data], [1, 0])
  // int4 in int32_data: one packed byte (two elements) per value.
  const i4 = read({ name: 'i4', dataType: T.INT4, dims: [3], int32Data: [...pack4bit([-8, 3, -1], true)] })
  t.deepEqual([...unpack4bit(i4.data, 3, true)], [-8, 3, -1])
  const i64 = read({ name: 'l', dataType: T.INT64, dims: [2], int64Data: [Long.fromString('9007199254740993'), Long.fromString('-9223372036854775808')] })
  t.deepEqual([...i64.data], [9007199254740993n, -(2n ** 63n)])
  t.deepEqual([...read({ name: 'd', dataType: T.DOUBLE, dims: [1], doubleData: [Math.E] }).data], [Math.E])
  const u64 = read({ name: 'u', dataType: T.UINT64, dims: [1], uint64Data: [Long.fromString('18446744073709551615', true)] })
  t.deepEqual([...u64.data], [2n ** 64n - 1n])
  const u32 = read({ name: 'u32', dataType: T.UINT32, dims: [1], uint64Data: [Long.fromNumber(4294967295, true)] })
  t.true(u32.data instanceof Uint32Array)
  t.deepEqual([...u32.data], [4294967295])
  const empty = read({ name: 'e', dataType: T.FLOAT, dims: [0, 3] })
  t.is(empty.data.length, 0)
})

test('a raw_data length that does not match dims is an OnnxFormatError naming the tensor', (t) => {
  const proto = onnx.TensorProto.create({ name: 'conv1.weight', dataType: T.FLOAT, dims: [2, 3], rawData: new Uint8Array(20) })
  const bytes = onnx.TensorProto.encode(proto).finish()
  const err = t.throws(() => decodeTensor(bytes), { instanceOf: OnnxFormatError })
  t.regex(err.message, /tensor "conv1\.weight"/)
  t.regex(err.message, /raw_data has 20 bytes, expected 24/)
})

test('other malformed tensors are OnnxFormatErrors naming the tensor', (t) => {
  const external = onnx.TensorProto.create({
    name: 'big_w', dataType: T.FLOAT, dims: [4], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [{ key: 'location', value: 'weights.bin' }],
  })
  t.throws(() => tensorFromProto(external), { instanceOf: OnnxFormatError, message: /tensor "big_w".*externally.*weights\.bin/ })
  t.throws(() => tensorFromProto({ name: 's', dataType: T.STRING, dims: [1], stringData: [Buffer.from('a')] }), {
    instanceOf: OnnxFormatError, message: /tensor "s".*STRING is not numeric/,
  })
  t.throws(() => tensorFromProto({ name: 'q', dataType: T.UINT8, dims: [1], int32Data: [256] }), {
    instanceOf: OnnxFormatError, message: /tensor "q".*int32_data\[0\] = 256/,
  })
  t.throws(() => tensorFromProto({ name: 'm', dataType: T.INT64, dims: [1], floatData: [1] }), {
    instanceOf: OnnxFormatError, message: /tensor "m".*float_data.*expected raw_data or int64_data/,
  })
  t.throws(() => tensorFromProto({ name: 'n', dataType: T.FLOAT, dims: [2], floatData: [1] }), {
    instanceOf: OnnxFormatError, message: /tensor "n".*float_data has 1 values, expected 2/,
  })
  t.throws(() => tensorToProto({ name: 'wrong', dataType: T.FLOAT, dims: [2], data: new Float64Array(2) }), {
    instanceOf: OnnxFormatError, message: /tensor "wrong".*Float32Array, got Float64Array/,
  })
  t.throws(() => tensorToProto({ name: 'short', dataType: T.INT4, dims: [5], data: new Uint8Array(2) }), {
    instanceOf: OnnxFormatError, message: /tensor "short".*2 entries, expected 3/,
  })
})
