// Channel pruning (src/compression/channelPruning.ts) checked against ONNX Runtime: outputs of
// pruned models compared with the original's, the producer/consumer channel correspondence checked
// by an independent construction (zeroing the dropped input channels of the original), the
// analytic cost against layerCost's measurement of the pruned model, and MNIST accuracy.
import test from 'ava'
import { createChannelPruner, measureLayerShapes, modelCost, CompressionError, CalibrationError, AbortError, saveModel } from '../dist/index.js'
import { built, f32, bnParams, bnInputs, feed, run, relMaxError } from './helpers/prepare.mjs'
import { loadMnist, mnistBatch, mnistAccuracy } from './helpers/mnist.mjs'
import { runModel } from './helpers/ort.mjs'
import { loadModel } from '../dist/index.js'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const io = (name, dims) => ({ name, dataType: 1, dims })
const DIMS = [4, 3, 10, 10]

/** Calibration batches of random images (4 per batch). */
const batches = (n, seed) => Array.from({ length: n }, (_, i) => ({ x: feed(DIMS, seed + i) }))

const weightOf = (model, name) => model.graph.initializers.get(name)

/** W1's input channels `zero` set to 0, every other value seeded. */
function w1With(zero) {
  const w = f32('W1', [6, 8, 3, 3], 11)
  for (let o = 0; o < 6; o++) for (const c of zero) w.data.fill(0, (o * 8 + c) * 9, (o * 8 + c + 1) * 9)
  return w
}

/** W2's input channels `zero` set to 0. */
function w2With(zero) {
  const w = f32('W2', [4, 6, 1, 1], 31)
  for (let o = 0; o < 4; o++) for (const c of zero) w.data[o * 6 + c] = 0
  return w
}

/**
 * x → conv0 (3→8) → BN → Relu → conv1 (8→6, pad 1) → Relu → dw (depthwise 6) → conv2 (6→4, 1×1) → y
 * conv0: input from the graph input; conv1: prunable through BN and Relu; dw: depthwise; conv2:
 * prunable through the depthwise dw and Relu, its producer being conv1.
 */
async function chainModel(w1 = f32('W1', [6, 8, 3, 3], 11), w2 = f32('W2', [4, 6, 1, 1], 31)) {
  return built({
    opset: 13,
    inputs: [io('x', [null, 3, 10, 10])],
    outputs: [io('y', [null, 4, 10, 10])],
    initializers: [
      f32('W0', [8, 3, 3, 3], 1), f32('b0', [8], 2), ...bnParams('bn0', 8, 3),
      w1, f32('b1', [6], 12),
      f32('Wd', [6, 1, 3, 3], 21), f32('bd', [6], 22),
      w2, f32('b2', [4], 32),
    ],
    nodes: [
      { name: 'conv0', opType: 'Conv', inputs: ['x', 'W0', 'b0'], outputs: ['c0'], attributes: { pads: [1, 1, 1, 1] } },
      { name: 'bn0', opType: 'BatchNormalization', inputs: bnInputs('c0', 'bn0'), outputs: ['n0'] },
      { name: 'relu0', opType: 'Relu', inputs: ['n0'], outputs: ['r0'] },
      { name: 'conv1', opType: 'Conv', inputs: ['r0', 'W1', 'b1'], outputs: ['c1'], attributes: { pads: [1, 1, 1, 1] } },
      { name: 'relu1', opType: 'Relu', inputs: ['c1'], outputs: ['r1'] },
      { name: 'dw', opType: 'Conv', inputs: ['r1', 'Wd', 'bd'], outputs: ['d'], attributes: { group: 6, pads: [1, 1, 1, 1] } },
      { name: 'conv2', opType: 'Conv', inputs: ['d', 'W2', 'b2'], outputs: ['y'] },
    ],
  })
}

/** x → conv0 → Relu → conv1 (stride 2) → y1 ; two prunable layers in a row: conv1 ← conv0, conv2 ← conv1. */
async function twoLayerModel() {
  return built({
    opset: 13,
    inputs: [io('x', [null, 3, 10, 10])],
    outputs: [io('y', [null, 5, 5, 5])],
    initializers: [
      f32('W0', [8, 3, 3, 3], 41), f32('b0', [8], 42),
      f32('W1', [8, 8, 3, 3], 43), f32('b1', [8], 44),
      f32('W2', [5, 8, 3, 3], 45),
    ],
    nodes: [
      { name: 'conv0', opType: 'Conv', inputs: ['x', 'W0', 'b0'], outputs: ['c0'], attributes: { pads: [1, 1, 1, 1] } },
      { name: 'relu0', opType: 'Relu', inputs: ['c0'], outputs: ['r0'] },
      { name: 'conv1', opType: 'Conv', inputs: ['r0', 'W1', 'b1'], outputs: ['c1'], attributes: { pads: [1, 1, 1, 1] } },
      { name: 'relu1', opType: 'LeakyRelu', inputs: ['c1'], outputs: ['r1'], attributes: { alpha: 0.1 } },
      { name: 'conv2', opType: 'Conv', inputs: ['r1', 'W2'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], strides: [2, 2] } },
    ],
  })
}

async function outputError(a, b, feeds) {
  const ya = await run(a, feeds)
  const yb = await run(b, feeds)
  return relMaxError(ya.y.data, yb.y.data)
}

test('skipped layers come with reasons: graph input, depthwise, grouped producer', async (t) => {
  const pruner = await createChannelPruner(await chainModel(), batches(2, 100), { maxSamples: 80 })
  t.deepEqual(pruner.layers.map((l) => [l.node, l.full]), [['conv1', 8], ['conv2', 6]])
  const reasons = Object.fromEntries(pruner.skipped.map((s) => [s.node, s.reason]))
  t.regex(reasons.conv0, /graph input "x"/)
  t.regex(reasons.dw, /depthwise \(group 6\)/)
  t.deepEqual(Object.keys(reasons).sort(), ['conv0', 'dw'])
  // A grouped (not depthwise) producer stops the walk.
  const grouped = await built({
    opset: 13,
    inputs: [io('x', [null, 4, 5, 5])],
    outputs: [io('y', [null, 2, 5, 5])],
    initializers: [f32('Wa', [4, 4, 1, 1], 1), f32('Wg', [4, 2, 1, 1], 2), f32('Wc', [2, 4, 1, 1], 3)],
    nodes: [
      { name: 'a', opType: 'Conv', inputs: ['x', 'Wa'], outputs: ['ya'] },
      { name: 'g', opType: 'Conv', inputs: ['ya', 'Wg'], outputs: ['yg'], attributes: { group: 2 } },
      { name: 'c', opType: 'Conv', inputs: ['yg', 'Wc'], outputs: ['y'] },
    ],
  })
  const gp = await createChannelPruner(grouped, [{ x: feed([2, 4, 5, 5], 3) }], { maxSamples: 20 })
  t.regex(gp.skipped.find((s) => s.node === 'c').reason, /producer Conv "g" is grouped or depthwise \(group 2\)/)
  t.regex(gp.skipped.find((s) => s.node === 'g').reason, /grouped \(group 2\)/)
  await t.throwsAsync(() => pruner.compressOne('dw', 0.5), { instanceOf: CompressionError, message: /"dw" was skipped: .*depthwise/ })
  await t.throwsAsync(() => pruner.compressOne('conv1', 0), { instanceOf: CompressionError, message: /ratio for "conv1" must be in \(0, 1\]/ })
  await t.throwsAsync(async () => createChannelPruner(await chainModel(), batches(1, 1), { ignore: ['nope'] }), { instanceOf: CompressionError, message: /"nope"/ })
})

test('a value read twice, a residual Add and a Concat stop the walk with a reason', async (t) => {
  const model = await built({
    opset: 13,
    inputs: [io('x', [null, 3, 6, 6])],
    outputs: [io('y', [null, 2, 6, 6]), io('z', [null, 2, 6, 6])],
    initializers: [f32('Wa', [4, 3, 1, 1], 1), f32('Wb', [4, 4, 1, 1], 2), f32('Wc', [2, 4, 1, 1], 3), f32('Wd', [2, 8, 1, 1], 4)],
    nodes: [
      { name: 'a', opType: 'Conv', inputs: ['x', 'Wa'], outputs: ['ya'] },
      { name: 'b', opType: 'Conv', inputs: ['ya', 'Wb'], outputs: ['yb'] },
      { name: 'add', opType: 'Add', inputs: ['ya', 'yb'], outputs: ['s'] },
      { name: 'c', opType: 'Conv', inputs: ['s', 'Wc'], outputs: ['y'] },
      { name: 'cat', opType: 'Concat', inputs: ['ya', 'yb'], outputs: ['k'], attributes: { axis: 1 } },
      { name: 'd', opType: 'Conv', inputs: ['k', 'Wd'], outputs: ['z'] },
    ],
  })
  const pruner = await createChannelPruner(model, [{ x: feed([2, 3, 6, 6], 5) }], { maxSamples: 20 })
  const reasons = Object.fromEntries(pruner.skipped.map((s) => [s.node, s.reason]))
  t.deepEqual(pruner.layers, [])
  t.regex(reasons.b, /"ya" is also read by "add", "cat"/)
  t.regex(reasons.c, /Add node "add" .*2 computed tensors/)
  t.regex(reasons.d, /Concat node "cat", which channel pruning cannot narrow exactly/)
})

test('sampling stays under the memory cap (an error naming the tensor past it) and honours abort', async (t) => {
  const src = await chainModel()
  // One batch of conv1's input and output is 4·(8 + 6)·100·4 bytes = 22,400 bytes.
  await t.throwsAsync(() => createChannelPruner(src, batches(4, 1), { maxSamples: 160, maxCacheBytes: 30000 }), { instanceOf: CalibrationError, message: /channel pruning: caching "r0", "c1" .*maxCacheBytes = 30000/ })
  const ac = new AbortController()
  ac.abort()
  await t.throwsAsync(() => createChannelPruner(src, batches(4, 1), { signal: ac.signal }), { instanceOf: AbortError })
})

test('ratio 1.0 keeps the model: ORT outputs equal the original', async (t) => {
  const src = await chainModel()
  const pruner = await createChannelPruner(src, batches(2, 100), { maxSamples: 80 })
  const one = await pruner.compressOne('conv1', 1)
  const all = await pruner.compressAll({ conv1: 1 })
  const feeds = { x: feed(DIMS, 7) }
  t.true(await outputError(src, one.model, feeds) <= 1e-6)
  t.true(await outputError(src, all.model, feeds) <= 1e-6)
  t.is(one.detail.kept, 8)
  t.deepEqual(pruner.cost({ conv1: 1 }), pruner.cost({}))
})

test('dropping input channels whose weights are exactly zero reproduces the output', async (t) => {
  const zero = [1, 4, 6]
  const src = await chainModel(w1With(zero))
  const data = batches(10, 200)
  const feeds = { x: feed([8, 3, 10, 10], 9) }
  for (const selection of ['magnitude', 'contribution']) {
    for (const reconstruct of [false, true]) {
      const pruner = await createChannelPruner(src, data, { maxSamples: 400, selection, reconstruct })
      const { model, detail } = await pruner.compressOne('conv1', 5 / 8)
      t.is(detail.kept, 5)
      // The kept producer rows are the original rows 0, 2, 3, 5, 7 (the non-zero consumer channels).
      const keep = [0, 2, 3, 5, 7]
      const w0 = weightOf(src, 'W0').data
      t.deepEqual(Array.from(weightOf(model, 'W0').data), keep.flatMap((c) => Array.from(w0.subarray(c * 27, (c + 1) * 27))))
      t.deepEqual(weightOf(model, 'bn0.mean').dims, [5])
      const err = await outputError(src, model, feeds)
      t.true(err < (reconstruct ? 2e-4 : 1e-6), `${selection}, reconstruct ${reconstruct}: relative error ${err}`)
    }
  }
})

test('pruning through a depthwise Conv narrows it too (group, weight, bias); zero-weight channels stay exact', async (t) => {
  const src = await chainModel(undefined, w2With([0, 3]))
  const feeds = { x: feed([8, 3, 10, 10], 19) }
  for (const reconstruct of [false, true]) {
    const pruner = await createChannelPruner(src, batches(10, 700), { maxSamples: 400, reconstruct })
    const { model, detail } = await pruner.compressOne('conv2', 4 / 6)
    t.is(detail.kept, 4)
    t.deepEqual(weightOf(model, 'W1').dims, [4, 8, 3, 3])
    t.deepEqual(weightOf(model, 'b1').dims, [4])
    t.deepEqual(weightOf(model, 'Wd').dims, [4, 1, 3, 3])
    t.deepEqual(weightOf(model, 'bd').dims, [4])
    t.is(Number(model.graph.nodes.find((n) => n.name === 'dw').attributes.get('group').value), 4)
    t.is(Number(src.graph.nodes.find((n) => n.name === 'dw').attributes.get('group').value), 6, 'the input model is unchanged')
    const err = await outputError(src, model, feeds)
    t.true(err < (reconstruct ? 2e-4 : 1e-6), `reconstruct ${reconstruct}: relative error ${err}`)
    t.deepEqual(detail.costAfter, modelCost(model, await measureLayerShapes(model)))
  }
})

test('producer output channels removed = consumer input channels removed (vs zeroing them in the original)', async (t) => {
  const src = await chainModel()
  const pruner = await createChannelPruner(src, batches(4, 300), { maxSamples: 160, reconstruct: false })
  const { model } = await pruner.compressOne('conv1', 0.5)
  t.deepEqual(weightOf(model, 'W0').dims, [4, 3, 3, 3])
  t.deepEqual(weightOf(model, 'b0').dims, [4])
  for (const p of ['scale', 'B', 'mean', 'var']) t.deepEqual(weightOf(model, `bn0.${p}`).dims, [4])
  t.deepEqual(weightOf(model, 'W1').dims, [6, 4, 3, 3])
  // Independent construction: the original model with conv1's other input channels zeroed. The
  // kept channels are the 4 of largest Σ w² (AIMET's rule), computed here from W1 directly.
  const w1 = weightOf(src, 'W1').data
  const mag = Array.from({ length: 8 }, (_, c) => { let s = 0; for (let o = 0; o < 6; o++) for (let k = 0; k < 9; k++) s += w1[(o * 8 + c) * 9 + k] ** 2; return s })
  const keep = new Set([...mag.keys()].sort((a, b) => mag[b] - mag[a]).slice(0, 4))
  const zeroed = await chainModel(w1With([...Array(8).keys()].filter((c) => !keep.has(c))))
  const feeds = { x: feed([3, 3, 10, 10], 17) }
  const out = await run(model, feeds)
  t.deepEqual(out.y.dims, [3, 4, 10, 10])
  t.true(await outputError(zeroed, model, feeds) < 1e-5)
})

test('least-squares reconstruction lowers the output error versus just dropping channels', async (t) => {
  const src = await twoLayerModel()
  const data = batches(25, 400)
  const held = { x: feed([16, 3, 10, 10], 999) }
  const errors = {}
  for (const reconstruct of [false, true]) {
    const pruner = await createChannelPruner(src, data, { maxSamples: 1000, reconstruct })
    const { model } = await pruner.compressOne('conv2', 0.5)
    errors[reconstruct] = await outputError(src, model, held)
  }
  t.log(`held-out relative max error at 50 %: dropped ${errors.false.toFixed(4)}, least squares ${errors.true.toFixed(4)}`)
  t.true(errors.true < 0.8 * errors.false)
})

test('fewer samples than unknowns: the near minimum-norm fit, said in the notes', async (t) => {
  const src = await chainModel()
  const pruner = await createChannelPruner(src, batches(3, 600), { samplesPerImage: 2, maxSamples: 8 })
  const { model, detail } = await pruner.compressOne('conv1', 0.5)
  t.true(detail.notes.some((n) => /no unique solution \(8 samples, 37 unknowns\)/.test(n)), detail.notes.join('; '))
  const y = (await run(model, { x: feed(DIMS, 5) })).y.data
  t.true(y.every(Number.isFinite))
})

test('compressAll prunes in order; the analytic cost equals layerCost on the pruned model', async (t) => {
  const src = await twoLayerModel()
  const pruner = await createChannelPruner(src, batches(10, 500), { maxSamples: 400 })
  t.deepEqual(pruner.layers.map((l) => l.node), ['conv1', 'conv2'])
  t.regex(pruner.skipped.find((s) => s.node === 'conv0').reason, /graph input/)
  const ratios = { conv1: 0.5, conv2: 0.75 }
  const { model, details } = await pruner.compressAll(ratios)
  t.deepEqual(details.map((d) => [d.node, d.kept]), [['conv1', 4], ['conv2', 6]])
  t.deepEqual(weightOf(model, 'W0').dims, [4, 3, 3, 3])
  t.deepEqual(weightOf(model, 'W1').dims, [6, 4, 3, 3])
  t.deepEqual(weightOf(model, 'W2').dims, [5, 6, 3, 3])
  const feeds = { x: feed([2, 3, 10, 10], 3) }
  t.deepEqual((await run(model, feeds)).y.dims, [2, 5, 5, 5])
  const measured = modelCost(model, await measureLayerShapes(model))
  t.deepEqual(pruner.cost(ratios), measured)
  // Refitting conv2 on its input in the model with conv1 already pruned (AIMET's order) beats slicing.
  const sliced = await (await createChannelPruner(src, batches(10, 500), { maxSamples: 400, reconstruct: false })).compressAll(ratios)
  const held = { x: feed([16, 3, 10, 10], 77) }
  const [fitErr, sliceErr] = [await outputError(src, model, held), await outputError(src, sliced.model, held)]
  t.log(`held-out relative max error, conv1 at 50 % and conv2 at 75 %: sliced ${sliceErr.toFixed(4)}, least squares ${fitErr.toFixed(4)}`)
  t.true(fitErr < sliceErr)
  const one = await pruner.compressOne('conv2', 0.5)
  t.deepEqual(one.detail.costAfter, modelCost(one.model, await measureLayerShapes(one.model)))
  t.deepEqual(one.detail.costBefore, modelCost(src, await measureLayerShapes(src)))
})

test('MNIST CNN: conv2 pruned to 50 % runs; accuracy reported', async (t) => {
  const src = await loadModel(join(here, '..', 'examples', 'mnist', 'mnist-cnn.onnx'))
  const train = loadMnist({ split: 'train', count: 400 })
  const testSet = loadMnist({ split: 'test', count: 1000 })
  const data = Array.from({ length: 4 }, (_, i) => mnistBatch(train, i * 100, 100))
  const accuracy = async (model) => {
    const bytes = await saveModel(model)
    return mnistAccuracy((feeds) => runModel(bytes, { input: { type: 'float32', ...feeds.input } }), testSet)
  }
  const before = await accuracy(src)
  const results = {}
  for (const reconstruct of [false, true]) {
    const pruner = await createChannelPruner(src, data, { maxSamples: 4000, reconstruct })
    t.deepEqual(pruner.layers.map((l) => l.node), ['/conv2/Conv'])
    t.regex(pruner.skipped.find((s) => s.node === '/conv3/Conv').reason, /depthwise/)
    const { model, detail } = await pruner.compressOne('/conv2/Conv', 0.5)
    t.is(detail.kept, 8)
    t.deepEqual(weightOf(model, 'conv1.weight').dims, [8, 1, 3, 3])
    results[reconstruct] = { accuracy: await accuracy(model), mac: detail.costAfter.mac / detail.costBefore.mac }
  }
  t.log(`MNIST accuracy (1000 test digits): original ${before}, conv2 at 50 % dropped ${results.false.accuracy}, with least squares ${results.true.accuracy}; MAC ratio ${results.true.mac.toFixed(3)}`)
  t.true(results.true.accuracy > 0.5)
})
