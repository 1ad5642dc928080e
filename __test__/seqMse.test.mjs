// SeqMSE on one Conv with an outlier weight: the chosen per-channel ranges give a layer output MSE
// no worse than min-max (strictly better on the outlier channel), computed here independently
// (fake-quantized weights in ORT against the float Conv); the reported losses are consistent; the
// frozen encodings survive computeEncodings.
import test from 'ava'
import { createRequire } from 'node:module'
import { random } from './helpers/random.mjs'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, applySeqMse, affine } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const [N, C, M, H] = [8, 3, 4, 8]
const convModel = (w) => buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: [N, C, H, H] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: [N, M, H, H] }],
  initializers: [{ name: 'w', dataType: T.FLOAT, dims: [M, C, 3, 3], data: w }],
  nodes: [{ opType: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }],
})

function weights() {
  const r = random(11)
  const w = Float32Array.from({ length: M * C * 9 }, () => r() - 0.5)
  w[(0 * C + 2) * 9 + 4] = 4 // channel 0's outlier reads input channel 2, which is nearly silent
  return w
}
function batches(n, seed) {
  const r = random(seed)
  return Array.from({ length: n }, () => {
    const data = Float32Array.from({ length: N * C * H * H }, (_, i) => (r() * 2 - 1) * (Math.floor(i / (H * H)) % C === 2 ? 0.02 : 1))
    return { x: { type: 'float32', data, dims: [N, C, H, H] } }
  })
}
const fakeQuant = (w, encs) => affine.quantizeDequantize(w, Float32Array.from(encs, (e) => e.scale), Int32Array.from(encs, (e) => e.offset), encs[0].qmin, encs[0].qmax, { shape: [M, C, 3, 3], axis: 0 })

/** Per-channel Σ (conv(x, ŵ) − conv(x, w))² and the element count, in ORT. */
async function channelErrors(w, wq, data) {
  const [a, b] = await Promise.all([w, wq].map((x) => ort.InferenceSession.create(convModel(x), { intraOpNumThreads: 1 })))
  const err = new Float64Array(M)
  let n = 0
  for (const f of data) {
    const feeds = { x: new ort.Tensor('float32', f.x.data, f.x.dims) }
    const [ya, yb] = [(await a.run(feeds)).y.data, (await b.run(feeds)).y.data]
    for (let i = 0; i < ya.length; i++) err[Math.floor(i / (H * H)) % M] += (yb[i] - ya[i]) ** 2
    n += ya.length
  }
  return { err, n }
}

test('one Conv, W4 per channel: SeqMSE ranges beat min-max where the outlier hurts; losses as reported; frozen', async (t) => {
  const w = weights()
  const data = batches(4, 5)
  const sim = await QuantSim.create(convModel(w), { intraOpNumThreads: 1, paramBitwidth: 4 })
  const report = await applySeqMse(sim, data, { numBatches: 4 })
  const layer = report.layers[0]
  t.is(report.layers.length, 1)
  t.is(layer.candidateLosses.length, 20)
  t.log(`fractions ${layer.fractions.join(', ')}; loss ${layer.lossBefore.toExponential(3)} → ${layer.lossAfter.toExponential(3)}`)
  const q = sim.quantizers.find((x) => x.tensor === 'w')
  t.true(q.frozen)
  const chosen = q.encodings.map((e) => ({ ...e }))

  // Min-max encodings from a plain sim.
  const plain = await QuantSim.create(convModel(w), { intraOpNumThreads: 1, paramBitwidth: 4 })
  await plain.computeEncodings(data)
  const minmax = plain.quantizers.find((x) => x.tensor === 'w').encodings
  const before = await channelErrors(w, fakeQuant(w, minmax), data)
  const after = await channelErrors(w, fakeQuant(w, chosen), data)
  for (let c = 0; c < M; c++) t.true(after.err[c] <= before.err[c] * (1 + 1e-6), `channel ${c}: ${after.err[c]} > ${before.err[c]}`)
  t.true(after.err[0] < 0.5 * before.err[0], `outlier channel: ${after.err[0]} vs min-max ${before.err[0]}`)
  t.true(layer.fractions[0] < 0.5)

  // The report's losses are what an independent computation gives, and the choice is the minimum.
  const total = (e) => e.err.reduce((a, b) => a + b, 0) / e.n
  t.true(Math.abs(layer.lossBefore - total(before)) <= 1e-3 * total(before))
  t.true(Math.abs(layer.lossAfter - total(after)) <= 1e-3 * total(after))
  t.true(layer.lossAfter <= Math.min(...layer.candidateLosses) * (1 + 1e-9))
  t.is(layer.candidateLosses[19], layer.lossBefore)

  // computeEncodings keeps the frozen weight encodings.
  await sim.computeEncodings(data)
  t.deepEqual(sim.quantizers.find((x) => x.tensor === 'w').encodings, chosen)
  await sim.close()
  await plain.close()
})

test('SeqMSE: a model with no layer to optimise warns; abort leaves the sim unchanged', async (t) => {
  const sim = await QuantSim.create(convModel(weights()), { intraOpNumThreads: 1, paramBitwidth: 4 })
  sim.setQuantizer('w', { enabled: false })
  const r = await applySeqMse(sim, batches(1, 1))
  t.is(r.layers.length, 0)
  t.true(sim.report.warnings.some((w) => /SeqMSE/.test(w)))
  const sim2 = await QuantSim.create(convModel(weights()), { intraOpNumThreads: 1, paramBitwidth: 4 })
  const ac = new AbortController()
  ac.abort()
  await t.throwsAsync(() => applySeqMse(sim2, batches(1, 1), { signal: ac.signal }), { name: 'AbortError' })
  t.falsy(sim2.quantizers.find((x) => x.tensor === 'w').frozen)
  await t.throwsAsync(() => applySeqMse(sim2, batches(2, 1), { maxCacheBytes: 1000 }), { name: 'CalibrationError', message: /maxCacheBytes/ })
})
