// The quantization analyzer: sensitivity ranking on a model built to have one sensitive layer,
// activation SQNR and histograms against an independent computation, weight ranges against
// per-channel min/max computed here, and MNIST end to end with accuracy as the metric.
import test from 'ava'
import { random as rng, randoms } from './helpers/random.mjs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, QuantSimError, AbortError, analyzeQuantization, affine } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures')
const THREADS = { intraOpNumThreads: 1 }


// Signal and noise summed over batches in float64: the SQNR the analyzer should report.
function sqnrDb(pairs) {
  let signal = 0
  let noise = 0
  for (const [x, y] of pairs) for (let i = 0; i < x.length; i++) { signal += x[i] * x[i]; noise += (x[i] - y[i]) ** 2 }
  return 10 * Math.log10(signal / noise)
}

// x → conv1 → conv2 → y. conv1's weight has one outlier in output channel 0, whose output conv2
// ignores (its weights for input channel 0 are zero): under per-tensor quantization the outlier
// stretches conv1's weight grid (and its output's) so far that the other channels are lost.
function twoConvModel() {
  const w1 = randoms(4 * 3 * 9, 1, 0.3)
  w1[5] = 40
  const w2 = randoms(4 * 4 * 9, 2, 0.3)
  for (let o = 0; o < 4; o++) for (let k = 0; k < 9; k++) w2[(o * 4 + 0) * 9 + k] = 0
  return {
    w1, w2,
    model: buildModel({
      opset: 13,
      inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2, 3, 8, 8] }],
      outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2, 4, 8, 8] }],
      initializers: [
        { name: 'w1', dataType: T.FLOAT, dims: [4, 3, 3, 3], data: w1 }, { name: 'b1', dataType: T.FLOAT, dims: [4], data: randoms(4, 3, 0.1) },
        { name: 'w2', dataType: T.FLOAT, dims: [4, 4, 3, 3], data: w2 }, { name: 'b2', dataType: T.FLOAT, dims: [4], data: randoms(4, 4, 0.1) },
      ],
      nodes: [
        { name: 'conv1', opType: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['h'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
        { name: 'conv2', opType: 'Conv', inputs: ['h', 'w2', 'b2'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
      ],
    }),
  }
}
const convBatches = (n, seed) => Array.from({ length: n }, (_, i) => ({ x: { data: randoms(2 * 3 * 64, seed + i, 2), dims: [2, 3, 8, 8] } }))

// Per-channel min/max along `axis`, the plain way.
function channelRanges(data, dims, axis) {
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1)
  const c = dims[axis]
  const min = Array(c).fill(Infinity)
  const max = Array(c).fill(-Infinity)
  for (let i = 0; i < data.length; i++) {
    const ch = Math.floor(i / inner) % c
    min[ch] = Math.min(min[ch], data[i])
    max[ch] = Math.max(max[ch], data[i])
  }
  return { min, max }
}

test('sensitivity ranks the layer made sensitive first; the sim is left as it was', async (t) => {
  const { model, w1, w2 } = twoConvModel()
  const sim = await QuantSim.create(model, { ...THREADS, config: 'per_tensor' })
  await sim.computeEncodings(convBatches(3, 10))
  const before = sim.quantizers.map((q) => ({ enabled: q.enabled, encodings: q.encodings }))
  const probe = { x: { data: randoms(2 * 3 * 64, 99, 2), dims: [2, 3, 8, 8] } }
  const y0 = (await sim.run(probe)).y.data
  const progress = []
  const r = await analyzeQuantization(sim, convBatches(2, 20), { ...THREADS, onProgress: (p) => progress.push(p.phase) })
  t.is(r.metric, 'sqnr')
  t.deepEqual(r.sensitivity.map((s) => s.layer), ['conv1', 'conv2'])
  const [conv1, conv2] = r.sensitivity
  t.is(conv1.opType, 'Conv')
  t.true(conv1.onlyThisQuantized + 10 < conv2.onlyThisQuantized, `only conv1 ${conv1.onlyThisQuantized} dB, only conv2 ${conv2.onlyThisQuantized} dB`)
  t.true(conv1.allButThis > conv2.allButThis + 10, `all but conv1 ${conv1.allButThis} dB, all but conv2 ${conv2.allButThis} dB`)
  t.is(r.baseline.float, Infinity)
  t.true(r.baseline.quantized < conv2.onlyThisQuantized)
  t.is(r.stats.configurations, 5) // all quantized + 2 per layer
  t.true(progress.includes('activations') && progress.includes('sensitivity'))
  // Weight ranges: per output channel (axis 0 of a Conv weight), spread = widest / median.
  t.deepEqual(r.weightRanges.map((w) => [w.tensor, w.layer, w.opType]), [['w1', 'conv1', 'Conv'], ['w2', 'conv2', 'Conv']])
  for (const [w, data, dims] of [[r.weightRanges[0], w1, [4, 3, 3, 3]], [r.weightRanges[1], w2, [4, 4, 3, 3]]]) {
    const e = channelRanges(data, dims, 0)
    t.deepEqual(w.min, e.min)
    t.deepEqual(w.max, e.max)
    const widths = e.min.map((lo, i) => e.max[i] - lo).sort((a, b) => a - b)
    t.is(w.spread, widths[3] / ((widths[1] + widths[2]) / 2))
  }
  t.true(r.weightRanges[0].spread > 20)
  // Untouched: same quantizers, same encodings objects, same simulation.
  t.deepEqual(sim.quantizers.map((q) => ({ enabled: q.enabled, encodings: q.encodings })), before)
  t.deepEqual((await sim.run(probe)).y.data, y0)
  await sim.close()
})

test('one Conv: activation SQNR equals FP32 vs the simulation computed here; histograms count every value', async (t) => {
  const w = randoms(4 * 3 * 9, 5, 0.5)
  const model = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2, 3, 8, 8] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2, 4, 8, 8] }],
    initializers: [{ name: 'w', dataType: T.FLOAT, dims: [4, 3, 3, 3], data: w }, { name: 'b', dataType: T.FLOAT, dims: [4], data: randoms(4, 6, 0.1) }],
    nodes: [{ name: 'conv', opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }],
  })
  const sim = await QuantSim.create(model, THREADS)
  await sim.computeEncodings(convBatches(2, 30))
  const data = convBatches(3, 40)
  const r = await analyzeQuantization(sim, data, { ...THREADS, sensitivity: false })
  t.deepEqual(r.sensitivity, [])
  t.deepEqual(r.layerSqnr.map((s) => [s.tensor, s.layer]), [['x', 'conv'], ['y', 'conv']])

  // Independently: FP32 y from ORT on the float model, simulated y from the sim, x̂ from the affine kernels.
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
  const xEnc = sim.quantizers.find((q) => q.tensor === 'x').encodings[0]
  const yPairs = []
  const xPairs = []
  for (const f of data) {
    const fp = (await session.run({ x: new ort.Tensor('float32', f.x.data, f.x.dims) })).y.data
    yPairs.push([fp, (await sim.run(f)).y.data])
    xPairs.push([f.x.data, affine.quantizeDequantize(f.x.data, xEnc.scale, xEnc.offset, xEnc.qmin, xEnc.qmax)])
  }
  await session.release()
  const sqnr = Object.fromEntries(r.layerSqnr.map((s) => [s.tensor, s.sqnrDb]))
  t.true(Math.abs(sqnr.y - sqnrDb(yPairs)) < 1e-9, `analyzer ${sqnr.y} dB, here ${sqnrDb(yPairs)} dB`)
  t.true(Math.abs(sqnr.x - sqnrDb(xPairs)) < 1e-9, `analyzer ${sqnr.x} dB, here ${sqnrDb(xPairs)} dB`)

  for (const h of r.histograms) {
    const values = h.tensor === 'x' ? xPairs : yPairs
    t.is(h.counts.reduce((a, b) => a + b, 0), values.reduce((n, [x]) => n + x.length, 0), h.tensor)
    t.is(h.edges.length, h.counts.length + 1)
    t.true(h.counts.length <= 128 && h.counts.length > 64, `${h.counts.length} bins`)
    let lo = Infinity
    let hi = -Infinity
    for (const [x] of values) for (const v of x) { lo = Math.min(lo, v); hi = Math.max(hi, v) }
    t.true(h.edges[0] <= lo && h.edges.at(-1) >= hi)
    t.true(h.counts[0] > 0 && h.counts.at(-1) > 0) // empty bins at the ends are dropped
    const e = sim.quantizers.find((q) => q.tensor === h.tensor).encodings[0]
    t.is(h.encodingMin, (e.qmin + e.offset) * e.scale)
    t.is(h.encodingMax, (e.qmax + e.offset) * e.scale)
  }
  await sim.close()
})

test('MNIST CNN end to end: accuracy as the metric, every layer ranked, in a few seconds', async (t) => {
  const started = performance.now()
  const train = loadMnist({ split: 'train', count: 256 })
  const testSet = loadMnist({ split: 'test', count: 500 })
  const batch = (set, i, n) => ({ input: { data: set.images.subarray(i * 784, (i + n) * 784), dims: [n, 1, 28, 28] } })
  const sim = await QuantSim.create(join(fixtures, 'mnist-cnn.onnx'), THREADS)
  const calib = Array.from({ length: 4 }, (_, b) => batch(train, b * 64, 64))
  await sim.computeEncodings(calib)
  const evaluate = async (run) => {
    let ok = 0
    const logits = (await run(batch(testSet, 0, 500))).logits.data
    for (let k = 0; k < 500; k++) {
      let best = 0
      for (let c = 1; c < 10; c++) if (logits[k * 10 + c] > logits[k * 10 + best]) best = c
      if (best === testSet.labels[k]) ok++
    }
    return ok / 500
  }
  const r = await analyzeQuantization(sim, calib, { ...THREADS, evaluate })
  const ms = performance.now() - started
  t.log(`MNIST analysis ${ms.toFixed(0)} ms (${JSON.stringify(r.stats.ms, (k, v) => (typeof v === 'number' ? Math.round(v) : v))}), FP32 ${r.baseline.float}, W8A8 ${r.baseline.quantized}`)
  for (const s of r.sensitivity) t.log(`  ${s.layer} (${s.opType}): only ${s.onlyThisQuantized}, all but ${s.allButThis}`)
  t.is(r.metric, 'accuracy')
  t.true(r.baseline.float >= 0.98)
  t.true(r.baseline.float - r.baseline.quantized <= 0.01)
  // conv1+relu, conv2+relu (supergroups), conv3 (depthwise: no supergroup) and its relu, fc1+relu, fc2.
  t.deepEqual(r.sensitivity.map((s) => s.opType).sort(), ['Conv', 'Conv+Relu', 'Conv+Relu', 'Gemm', 'Gemm+Relu', 'Relu'])
  for (const s of r.sensitivity) t.true(s.onlyThisQuantized >= 0.95 && s.allButThis >= 0.95 && s.onlyThisQuantized <= 1)
  t.true(r.sensitivity.every((s, i, a) => i === 0 || a[i - 1].onlyThisQuantized <= s.onlyThisQuantized))
  // Gemm with transB: output channels are the weight's rows.
  const fc1 = r.weightRanges.find((w) => w.tensor === 'fc1.weight')
  const init = sim.model.graph.initializers.get('fc1.weight')
  t.deepEqual(fc1, { tensor: 'fc1.weight', layer: fc1.layer, opType: 'Gemm', ...channelRanges(init.data, init.dims, 0), spread: fc1.spread })
  t.is(fc1.min.length, 64)
  t.is(r.layerSqnr.length, r.histograms.length)
  t.true(r.layerSqnr.every((s) => s.sqnrDb > 20 && Number.isFinite(s.sqnrDb)))
  t.true(ms < 15000)

  // Built-in accuracy from labels, on the two largest layers only.
  const labelled = await analyzeQuantization(sim, Array.from({ length: 2 }, (_, b) => batch(testSet, b * 100, 100)), { ...THREADS, labels: testSet.labels, layers: 2, sensitivitySamples: 200 })
  t.is(labelled.metric, 'accuracy')
  t.is(labelled.stats.sensitivitySamples, 200)
  t.deepEqual(labelled.sensitivity.map((s) => s.opType).sort(), ['Conv+Relu', 'Gemm+Relu']) // conv2 (18k) and fc1 (50k)
  t.true(labelled.baseline.float >= 0.97)
  await sim.close()
})

test('bad input: no encodings, both evaluate and labels, bad layer count, abort', async (t) => {
  const { model } = twoConvModel()
  const sim = await QuantSim.create(model, THREADS)
  await t.throwsAsync(() => analyzeQuantization(sim, convBatches(1, 1)), { instanceOf: QuantSimError, message: /computeEncodings/ })
  await sim.computeEncodings(convBatches(1, 1))
  await t.throwsAsync(() => analyzeQuantization(sim, convBatches(1, 1), { evaluate: async () => 1, labels: [0] }), { instanceOf: TypeError, message: /evaluate and labels/ })
  await t.throwsAsync(() => analyzeQuantization(sim, convBatches(1, 1), { layers: 0 }), { instanceOf: RangeError, message: /layers/ })
  const controller = new AbortController()
  const p = analyzeQuantization(sim, convBatches(4, 1), { ...THREADS, signal: controller.signal, onProgress: (e) => { if (e.phase === 'activations') controller.abort() } })
  await t.throwsAsync(p, { instanceOf: AbortError })
  await sim.close()
})
