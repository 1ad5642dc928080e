// src/onnx/modelBuilder.ts and versionTable.ts, checked by decoding what they write and by running
// the models in onnxruntime-node (graph optimisations off, one thread).
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'

const require = createRequire(import.meta.url)
const { onnx } = require('../generated/onnx.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { minIrVersion } = require('../dist/onnx/versionTable.js')
const { DataType: T } = require('../dist/onnx/elementType.js')
const { tensorFromProto } = require('../dist/onnx/tensor.js')
const { pack4bit } = require('../dist/onnx/packed4bit.js')
const { OnnxFormatError } = require('../dist/errors.js')

const f32 = (name, dims, values) => ({ name, dataType: T.FLOAT, dims, data: Float32Array.from(values) })
const floatFeed = (values, dims) => ({ type: 'float32', data: Float32Array.from(values), dims })

// QuantizeLinear as ONNX Runtime computes it: float32 division, round half to even, add the zero
// point, saturate. (Math.fround of the double quotient of two float32 values is the float32 quotient.)
function roundHalfEven(v) {
  const r = Math.round(v)
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}
function quantize(x, scale, zp, lo, hi) {
  return Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(Math.fround(x) / Math.fround(scale))) + zp))
}
const dequantize = (q, scale, zp) => Math.fround((q - zp) * Math.fround(scale))

test('IR version follows onnx 1.19 VERSION_TABLE', (t) => {
  const ir = (opset) => Number(onnx.ModelProto.decode(buildModel({ opset, inputs: [], outputs: [], nodes: [] })).irVersion)
  t.is(ir(9), 4)
  t.is(ir(11), 6)
  t.is(ir(13), 7)
  t.is(ir(17), 8)
  t.is(ir(19), 9)
  t.is(ir(21), 10)
  t.is(ir(23), 11)
  t.is(ir([{ domain: '', version: 13 }, { domain: 'ai.onnx.ml', version: 5 }]), 10)
  t.is(ir([{ domain: '', version: 13 }, { domain: 'com.microsoft', version: 1 }]), 7)
  t.is(minIrVersion([]), 3)
  t.throws(() => ir(99), { instanceOf: OnnxFormatError, message: /version 99/ })
  const explicit = onnx.ModelProto.decode(buildModel({ opset: 13, irVersion: 8, inputs: [], outputs: [], nodes: [] }))
  t.is(Number(explicit.irVersion), 8)
})

test('attributes get their ONNX types', (t) => {
  const w = f32('c', [2], [1, 2])
  const bytes = buildModel({
    opset: [{ domain: '', version: 21 }, { domain: 'test.domain', version: 1 }],
    inputs: [],
    outputs: [],
    nodes: [{
      opType: 'Custom', domain: 'test.domain', inputs: [], outputs: ['y'],
      attributes: {
        i: 3, big: 2n ** 60n + 1n, ints: [1, -2], f: 0.5, f1: { type: 'FLOAT', value: 1 }, fs: [0.5, 1],
        s: 'NOTSET', ss: ['a', 'b'], t: w, emptyFloats: { type: 'FLOATS', value: [] },
      },
    }],
  })
  const node = onnx.ModelProto.decode(bytes).graph.node[0]
  const A = onnx.AttributeProto.AttributeType
  const byName = Object.fromEntries(node.attribute.map((a) => [a.name, a]))
  t.is(byName.i.type, A.INT)
  t.is(Number(byName.i.i), 3)
  t.is(byName.big.type, A.INT)
  t.is(byName.big.i.toString(), (2n ** 60n + 1n).toString())
  t.is(byName.ints.type, A.INTS)
  t.deepEqual(byName.ints.ints.map(Number), [1, -2])
  t.is(byName.f.type, A.FLOAT)
  t.is(byName.f.f, 0.5)
  t.is(byName.f1.type, A.FLOAT)
  t.is(byName.f1.f, 1)
  t.is(byName.fs.type, A.FLOATS)
  t.deepEqual(byName.fs.floats, [0.5, 1])
  t.is(byName.s.type, A.STRING)
  t.is(Buffer.from(byName.s.s).toString(), 'NOTSET')
  t.is(byName.ss.type, A.STRINGS)
  t.is(byName.t.type, A.TENSOR)
  t.deepEqual([...tensorFromProto(byName.t.t).data], [1, 2])
  t.is(byName.emptyFloats.type, A.FLOATS)
  t.is(node.domain, 'test.domain')
  t.is(node.name, 'Custom_0')
})

test('a node in a domain the model does not import is an error naming the node', (t) => {
  t.throws(
    () => buildModel({ opset: 13, inputs: [], outputs: [], nodes: [{ opType: 'QuantizeLinear', domain: 'com.microsoft', name: 'q0', inputs: [], outputs: [] }] }),
    { instanceOf: OnnxFormatError, message: /node "q0": domain "com\.microsoft"/ },
  )
})

test('Add of an input and an initializer runs in onnxruntime-node', async (t) => {
  const bytes = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['batch', 3] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: ['batch', 3] }],
    initializers: [f32('b', [3], [10, 20, 30])],
    nodes: [{ opType: 'Add', inputs: ['x', 'b'], outputs: ['y'] }],
  })
  const { y } = await runModel(bytes, { x: floatFeed([1, 2, 3, -1, -2, -3], [2, 3]) })
  t.is(y.type, 'float32')
  t.deepEqual(y.dims, [2, 3])
  t.deepEqual([...y.data], [11, 22, 33, 9, 18, 27])
})

test('QuantizeLinear int8 per-tensor at opset 13 matches hand-computed values', async (t) => {
  const x = [-1.25, 0.25, 0.75, 1, 100, -100, 0, 0.3]
  const scale = 0.5
  const zp = -3
  const bytes = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [8] }],
    outputs: [{ name: 'q', dataType: T.INT8, dims: [8] }],
    initializers: [f32('scale', [], [scale]), { name: 'zp', dataType: T.INT8, dims: [], data: Int8Array.of(zp) }],
    nodes: [{ opType: 'QuantizeLinear', inputs: ['x', 'scale', 'zp'], outputs: ['q'] }],
  })
  const { q } = await runModel(bytes, { x: floatFeed(x, [8]) })
  t.is(q.type, 'int8')
  // x/s = -2.5 0.5 1.5 2 200 -200 0 0.6 → half-even -2 0 2 2 200 -200 0 1 → +zp, saturate
  const expected = [-5, -3, -1, -1, 127, -128, -3, -2]
  t.deepEqual([...q.data], expected)
  t.deepEqual(x.map((v) => quantize(v, scale, zp, -128, 127)), expected)
})

// DECISIONS: int4, int16 and blocked Q/DQ need opset 21 (IR 10). 4-bit results are read through
// DequantizeLinear because onnxruntime-node 1.23.2 crashes returning a 4-bit graph output.
const X = [-1.25, 0.25, 0.75, 1.0, 3.6, -4.6, 0, 2.2]
const QTYPES = [
  { name: 'int4', dataType: T.INT4, lo: -8, hi: 7, zps: [0, 1, -1, 2], pack: (v) => pack4bit(v, true) },
  { name: 'uint4', dataType: T.UINT4, lo: 0, hi: 15, zps: [8, 8, 7, 9], pack: (v) => pack4bit(v, false) },
  { name: 'int16', dataType: T.INT16, lo: -32768, hi: 32767, zps: [0, 1, -1, 2], pack: (v) => Int16Array.from(v) },
]

for (const q of QTYPES) {
  test(`opset 21: ${q.name} per-tensor QuantizeLinear → DequantizeLinear in onnxruntime-node`, async (t) => {
    const scale = 0.5
    const zp = q.zps[2]
    const bytes = buildModel({
      opset: 21,
      inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2, 4] }],
      outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2, 4] }],
      initializers: [f32('s', [], [scale]), { name: 'zp', dataType: q.dataType, dims: [], data: q.pack([zp]) }],
      nodes: [
        { opType: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q'] },
        { opType: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['y'] },
      ],
    })
    t.is(Number(onnx.ModelProto.decode(bytes).irVersion), 10)
    const { y } = await runModel(bytes, { x: floatFeed(X, [2, 4]) })
    t.deepEqual([...y.data], X.map((v) => dequantize(quantize(v, scale, zp, q.lo, q.hi), scale, zp)))
  })

  test(`opset 21: ${q.name} blocked (axis 1, block_size 2) QuantizeLinear → DequantizeLinear in onnxruntime-node`, async (t) => {
    const scales = [0.5, 0.25, 1, 0.125] // [2, 2]: row r, block b → scales[2r + b]
    const bytes = buildModel({
      opset: 21,
      inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2, 4] }],
      outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2, 4] }],
      initializers: [f32('s', [2, 2], scales), { name: 'zp', dataType: q.dataType, dims: [2, 2], data: q.pack(q.zps) }],
      nodes: [
        { opType: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q'], attributes: { axis: 1, block_size: 2 } },
        { opType: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['y'], attributes: { axis: 1, block_size: 2 } },
      ],
    })
    const { y } = await runModel(bytes, { x: floatFeed(X, [2, 4]) })
    const expected = X.map((v, i) => {
      const k = 2 * Math.floor(i / 4) + Math.floor((i % 4) / 2)
      return dequantize(quantize(v, scales[k], q.zps[k], q.lo, q.hi), scales[k], q.zps[k])
    })
    t.deepEqual([...y.data], expected)
  })
}

test('opset 21: int16 QuantizeLinear output is returned as int16', async (t) => {
  const bytes = buildModel({
    opset: 21,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [4] }],
    outputs: [{ name: 'q', dataType: T.INT16, dims: [4] }],
    initializers: [f32('s', [], [0.001]), { name: 'zp', dataType: T.INT16, dims: [], data: Int16Array.of(-5) }],
    nodes: [{ opType: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q'] }],
  })
  const x = [0.0125, -1, 40, -40]
  const { q } = await runModel(bytes, { x: floatFeed(x, [4]) })
  t.is(q.type, 'int16')
  t.deepEqual([...q.data], x.map((v) => quantize(v, 0.001, -5, -32768, 32767)))
})

test('runModel refuses 4-bit graph outputs instead of letting onnxruntime-node crash', async (t) => {
  const bytes = buildModel({
    opset: 21,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2] }],
    outputs: [{ name: 'q', dataType: T.INT4, dims: [2] }],
    initializers: [f32('s', [], [1])],
    nodes: [{ opType: 'QuantizeLinear', inputs: ['x', 's'], outputs: ['q'], attributes: { output_dtype: T.INT4 } }],
  })
  await t.throwsAsync(() => runModel(bytes, { x: floatFeed([1, 2], [2]) }), { message: /graph output "q" is INT4/ })
})
