// AdaRound on one Conv (4-bit per-channel weights, random data): the layer output MSE, measured
// here independently in ORT, is lower than round-to-nearest's; the codes sit on the grid, each at
// most one step from nearest; the encodings are frozen; the exported QDQ model equals sim.run bit
// for bit; an abort leaves the sim as it was. The gradient of the loss is checked against finite
// differences in crates/quantkit-core/src/adaround.rs (`gradient_matches_finite_differences`).
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { correlatedImageBatches, random } from './helpers/random.mjs'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, applyAdaround, affine, AdaroundError } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const [N, C, M, H] = [16, 8, 8, 8]
const convModel = (w, b) => buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['n', C, H, H] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: ['n', M, H, H] }],
  initializers: [{ name: 'w', dataType: T.FLOAT, dims: [M, C, 3, 3], data: w }, { name: 'b', dataType: T.FLOAT, dims: [M], data: b }],
  nodes: [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }],
})

const r = random(3)
const W = Float32Array.from({ length: M * C * 9 }, () => (r() - 0.5) * 0.6)
const B = Float32Array.from({ length: M }, () => (r() - 0.5) * 0.1)
const batches = (n, seed) => correlatedImageBatches(n, seed, { samples: N, channels: C, size: H })

/** Mean of (conv(x, wq) − conv(x, w))² over `data`, in ORT. */
async function outputMse(wq, data) {
  const [a, b] = await Promise.all([W, wq].map((x) => ort.InferenceSession.create(convModel(x, B), { intraOpNumThreads: 1 })))
  let s = 0
  let n = 0
  for (const f of data) {
    const feeds = { x: new ort.Tensor('float32', f.x.data, f.x.dims) }
    const [ya, yb] = [(await a.run(feeds)).y.data, (await b.run(feeds)).y.data]
    for (let i = 0; i < ya.length; i++) s += (yb[i] - ya[i]) ** 2
    n += ya.length
  }
  return s / n
}

test('one Conv, W4 per channel: AdaRound beats nearest; codes on the grid within one step; frozen; export = sim.run', async (t) => {
  const calib = batches(8, 5)
  const sim = await QuantSim.create(convModel(W, B), { intraOpNumThreads: 1, paramBitwidth: 4 })
  await sim.computeEncodings(calib)
  const q = sim.quantizers.find((x) => x.tensor === 'w')
  t.is(q.spec.axis, 0)
  const encs = q.encodings.map((e) => ({ ...e }))
  const scales = Float32Array.from(encs, (e) => e.scale)
  const offsets = Int32Array.from(encs, (e) => e.offset)
  const nearest = affine.quantizeDequantize(W, scales, offsets, encs[0].qmin, encs[0].qmax, { shape: [M, C, 3, 3], axis: 0 })
  const progress = []
  const report = await applyAdaround(sim, calib, { numIterations: 500, onProgress: (p) => progress.push(p) })
  t.is(report.layers.length, 1)
  const layer = report.layers[0]
  t.log(`loss nearest ${layer.lossNearest.toExponential(3)} → AdaRound ${layer.lossAdaround.toExponential(3)}, ${layer.flips}/${layer.weights} flips, ${layer.ms.toFixed(0)} ms`)
  t.true(layer.lossAdaround < layer.lossNearest)
  t.true(layer.flips > 0)
  t.is(progress.at(-1).iteration, 500)

  const wa = sim.model.graph.initializers.get('w').data
  const held = batches(4, 77)
  const [mseNear, mseAda] = [await outputMse(nearest, held), await outputMse(wa, held)]
  t.log(`held-out output MSE: nearest ${mseNear.toExponential(3)}, AdaRound ${mseAda.toExponential(3)}`)
  t.true(mseAda < mseNear)

  let flips = 0
  for (let i = 0; i < W.length; i++) {
    const e = encs[Math.floor(i / (C * 9))]
    const code = wa[i] / e.scale - e.offset
    t.true(Math.abs(code - Math.round(code)) < 1e-3, `weight ${i} is off the grid: ${code}`)
    t.true(Math.round(code) >= e.qmin && Math.round(code) <= e.qmax)
    const near = Math.round(nearest[i] / e.scale - e.offset)
    t.true(Math.abs(Math.round(code) - near) <= 1)
    if (Math.round(code) !== near) flips++
  }
  t.is(flips, layer.flips)

  // Frozen: computeEncodings keeps the grid (min-max of the new weights would differ).
  await sim.computeEncodings(calib)
  t.deepEqual(sim.quantizers.find((x) => x.tensor === 'w').encodings, q.encodings)
  t.true(q.frozen)
  t.deepEqual(q.encodings.map((e) => e.scale), encs.map((e) => e.scale))

  const dir = await mkdtemp(join(tmpdir(), 'quantkit-adaround-'))
  try {
    await sim.export(dir, 'conv')
    const s = await ort.InferenceSession.create(join(dir, 'conv.qdq.onnx'), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
    for (const f of held) {
      const got = (await s.run({ x: new ort.Tensor('float32', f.x.data, f.x.dims) })).y.data
      const want = Object.values(await sim.run(f))[0].data
      t.deepEqual(Buffer.from(got.buffer, got.byteOffset, got.byteLength), Buffer.from(want.buffer, want.byteOffset, want.byteLength))
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
    await sim.close()
  }
})

test('abort leaves the sim as it was; disabled quantizers and unknown layers are errors naming them', async (t) => {
  const calib = batches(2, 9)
  const sim = await QuantSim.create(convModel(W, B), { intraOpNumThreads: 1, paramBitwidth: 4 })
  await sim.computeEncodings(calib)
  const before = Float32Array.from(sim.model.graph.initializers.get('w').data)
  const q = sim.quantizers.find((x) => x.tensor === 'w')
  const ac = new AbortController()
  const run = applyAdaround(sim, calib, { numIterations: 1_000_000, signal: ac.signal, onProgress: (p) => { if (p.iteration > 0) ac.abort() } })
  const err = await t.throwsAsync(run)
  t.is(err.name, 'AbortError')
  t.deepEqual(sim.model.graph.initializers.get('w').data, before)
  t.falsy(q.frozen)
  await t.throwsAsync(applyAdaround(sim, calib, { layers: ['nope'] }), { instanceOf: AdaroundError, message: /nope/ })
  sim.setQuantizer('w', { enabled: false })
  const node = sim.model.graph.nodes[0].name
  await t.throwsAsync(applyAdaround(sim, calib, { layers: [node] }), { instanceOf: AdaroundError, message: /"w".*disabled/ })
  const r = await applyAdaround(sim, calib, { numIterations: 10 })
  t.is(r.layers.length, 0)
  t.regex(r.skipped[0].reason, /disabled/)
  await t.throwsAsync(applyAdaround(sim, calib, { numIterations: 0 }), { instanceOf: RangeError })
  await sim.close()
})

// Two Convs: the second layer's target is the float model's output (aimet's fp32_model), not the
// output of a model whose first layer already carries AdaRounded weights. Checked independently:
// its reported round-to-nearest loss equals aimet's loss computed here in ORT between (a) the model
// with the sim's AdaRounded W1 and nearest-rounded W2 and (b) the original float model.
const twoConvModel = (w1, w2) => buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['n', C, H, H] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: ['n', M, H, H] }],
  initializers: [
    { name: 'w1', dataType: T.FLOAT, dims: [M, C, 3, 3], data: w1 }, { name: 'b', dataType: T.FLOAT, dims: [M], data: B },
    { name: 'w2', dataType: T.FLOAT, dims: [M, M, 3, 3], data: w2 },
  ],
  nodes: [
    { opType: 'Conv', inputs: ['x', 'w1', 'b'], outputs: ['h'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
    { opType: 'Conv', inputs: ['h', 'w2'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } },
  ],
})

test('two Convs: targets come from the float model, not from AdaRounded upstream weights', async (t) => {
  const W2 = Float32Array.from({ length: M * M * 9 }, () => (r() - 0.5) * 0.4)
  const calib = batches(4, 21)
  const model = twoConvModel(W, W2)
  const sim = await QuantSim.create(model, { intraOpNumThreads: 1, paramBitwidth: 4, activationBitwidth: 8 })
  const report = await applyAdaround(sim, calib, { numIterations: 200 })
  t.is(report.layers.length, 2)
  const q2 = sim.quantizers.find((x) => x.tensor === 'w2')
  const e2 = q2.encodings
  const near2 = affine.quantizeDequantize(W2, Float32Array.from(e2, (e) => e.scale), Int32Array.from(e2, (e) => e.offset), e2[0].qmin, e2[0].qmax, { shape: [M, M, 3, 3], axis: 0 })
  const w1a = sim.model.graph.initializers.get('w1').data
  t.notDeepEqual(Array.from(w1a), Array.from(W), 'the first layer was AdaRounded')
  const [fp, q] = await Promise.all([model, twoConvModel(w1a, near2)].map((m) => ort.InferenceSession.create(m, { intraOpNumThreads: 1 })))
  let sum = 0
  let positions = 0
  for (const f of calib) {
    const feeds = { x: new ort.Tensor('float32', f.x.data, f.x.dims) }
    const [a, b] = [(await fp.run(feeds)).y.data, (await q.run(feeds)).y.data]
    for (let i = 0; i < a.length; i++) sum += (b[i] - a[i]) ** 2
    positions += N * H * H // aimet: ‖Δ‖² over dim 1 (channels), mean over samples and positions
  }
  const want = sum / positions
  t.log(`layer 2 nearest loss: reported ${report.layers[1].lossNearest.toExponential(4)}, against FP32 in ORT ${want.toExponential(4)}`)
  t.true(Math.abs(report.layers[1].lossNearest - want) <= 1e-3 * want)
  await sim.close()
})
