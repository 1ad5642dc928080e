// Analytical bias correction (E[Δy] = ΔW·E[x], E[x] from the β and γ of a folded BatchNorm before
// the layer, through Relu or Clip with the clipped-normal mean), checked against a closed form computed
// here (E[relu(N(β, γ²))] and E[clip(N(β, γ²), 0, 1)] by numerical integration, Ŵ from the sim's encodings in plain JS) and against
// behaviour: on inputs that really are N(β, γ²) after the BN, the corrected layer's mean output error
// shrinks, and the empirical correction measures nearly the same shift. The PP-OCR cls check
// (analytical vs empirical on a real model with BatchNorms) is in biasCorrectionPpocr.test.mjs.
import test from 'ava'
import { createRequire } from 'node:module'
import { random } from './helpers/random.mjs'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, applyBiasCorrection } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const [N, C, M, H] = [16, 4, 3, 8]
const BETA = [0.5, -0.3, 1.2, 0.0]
const GAMMA = [1.0, 0.8, 0.4, 2.0]

/** x → Conv 1×1 (identity) → BatchNorm(mean 0, var 1) → Relu (or Clip(0, hi)) → Conv 3×3 (no padding) → y. */
function model(w2, b2, clipMax, bn = { beta: BETA, gamma: GAMMA }) {
  const eye = new Float32Array(C * C)
  for (let c = 0; c < C; c++) eye[c * C + c] = 1
  return buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [N, C, H, H] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [N, M, H - 2, H - 2] }],
    initializers: [
      { name: 'w1', dataType: T.FLOAT, dims: [C, C, 1, 1], data: eye },
      { name: 'gamma', dataType: T.FLOAT, dims: [C], data: Float32Array.from(bn.gamma) },
      { name: 'beta', dataType: T.FLOAT, dims: [C], data: Float32Array.from(bn.beta) },
      { name: 'mean', dataType: T.FLOAT, dims: [C], data: new Float32Array(C) },
      { name: 'var', dataType: T.FLOAT, dims: [C], data: new Float32Array(C).fill(1) },
      { name: 'w2', dataType: T.FLOAT, dims: [M, C, 3, 3], data: w2 },
      { name: 'b2', dataType: T.FLOAT, dims: [M], data: b2 },
      ...(clipMax === undefined ? [] : [{ name: 'lo', dataType: T.FLOAT, dims: [], data: Float32Array.of(0) }, { name: 'hi', dataType: T.FLOAT, dims: [], data: Float32Array.of(clipMax) }]),
    ],
    nodes: [
      { name: 'conv1', opType: 'Conv', inputs: ['x', 'w1'], outputs: ['t1'], attributes: { kernel_shape: [1, 1] } },
      { name: 'bn1', opType: 'BatchNormalization', inputs: ['t1', 'gamma', 'beta', 'mean', 'var'], outputs: ['t2'], attributes: { epsilon: 1e-7 } },
      clipMax === undefined
        ? { name: 'relu1', opType: 'Relu', inputs: ['t2'], outputs: ['t3'] }
        : { name: 'clip1', opType: 'Clip', inputs: ['t2', 'lo', 'hi'], outputs: ['t3'] },
      { name: 'conv2', opType: 'Conv', inputs: ['t3', 'w2', 'b2'], outputs: ['y'], attributes: { kernel_shape: [3, 3] } },
    ],
  })
}

/** 4-bit weights that mostly round one way per channel (a systematic output shift). */
function weights() {
  const w = new Float32Array(M * C * 9)
  const r = random(4)
  for (let m = 0; m < M; m++) for (let k = 0; k < C * 9; k++) w[m * C * 9 + k] = k === 0 ? 0.7 * (m + 1) : (0.14 + 0.02 * r()) * (m + 1) * (m % 2 ? -1 : 1)
  return w
}
const B2 = Float32Array.of(0.1, -0.2, 0.3)

/** Standard normal inputs (Box–Muller): after the identity Conv and the BN they are N(β, γ²). */
function batches(n, seed) {
  const r = random(seed)
  const gauss = () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r())
  return Array.from({ length: n }, () => ({ x: { type: 'float32', data: Float32Array.from({ length: N * C * H * H }, gauss), dims: [N, C, H, H] } }))
}

/** E[min(hi, max(0, X))], X ~ N(mu, sigma²), by Simpson's rule over mu ± 12 sigma (independent of the code under test). */
function reluMeanNumeric(mu, sigma, hi = Infinity) {
  const [a, b, n] = [mu - 12 * sigma, mu + 12 * sigma, 20000]
  const f = (x) => Math.min(hi, Math.max(0, x)) * Math.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * Math.sqrt(2 * Math.PI))
  const h = (b - a) / n
  let s = f(a) + f(b)
  for (let i = 1; i < n; i++) s += f(a + i * h) * (i % 2 ? 4 : 2)
  return (s * h) / 3
}

/** Ŵ on the sim's encodings (symmetric per channel here): clamp(round_half_even(w/s)) · s. */
function fakeQuant(w, encs) {
  const per = w.length / encs.length
  return Float32Array.from(w, (v, i) => {
    const e = encs[Math.floor(i / per)]
    const x = v / e.scale
    let q = Math.round(x)
    if (Math.abs(x % 1) === 0.5) q = 2 * Math.round(x / 2)
    return (Math.min(e.qmax, Math.max(e.qmin, q)) + e.offset) * e.scale
  })
}

async function meanError(sim, floatBytes, data) {
  const fp = await ort.InferenceSession.create(floatBytes, { intraOpNumThreads: 1 })
  const err = new Float64Array(M)
  let n = 0
  const inner = (H - 2) * (H - 2)
  for (const f of data) {
    const a = (await fp.run({ x: new ort.Tensor('float32', f.x.data, f.x.dims) })).y.data
    const b = (await sim.run(f)).y.data
    for (let i = 0; i < a.length; i++) err[Math.floor(i / inner) % M] += b[i] - a[i]
    n += a.length / M
  }
  await fp.release()
  return Array.from(err, (e) => e / n)
}

// 16-bit activations: only the weights carry quantization error, which is what the analytical
// correction models.
const OPTS = { intraOpNumThreads: 1, paramBitwidth: 4, activationBitwidth: 16 }

for (const clipMax of [undefined, 1]) test(`analytical: shift = −(Ŵ − W)·E[${clipMax === undefined ? 'relu' : `clip(·, 0, ${clipMax})`}(N(β, γ²))] per output channel, and the mean output error shrinks ≥ 5×`, async (t) => {
  const w2 = weights()
  const bytes = model(w2, B2, clipMax)
  const sim = await QuantSim.create(bytes, OPTS)
  t.teardown(() => sim.close())
  t.deepEqual(sim.report.preparation.foldedBatchNorms.map((f) => [f.bn, f.into, f.position]), [['bn1', 'conv1', 'after']])
  await sim.computeEncodings(batches(4, 1))
  const heldOut = batches(4, 99)
  const before = await meanError(sim, bytes, heldOut)
  const report = await applyBiasCorrection(sim, batches(4, 1), { mode: 'analytical' })
  t.is(report.mode, 'analytical')
  t.deepEqual(report.skipped.map((s) => s.node), ['conv1'])
  const layer = report.layers.find((l) => l.node === 'conv2')
  t.like(layer, { method: 'analytical', batchNorm: 'bn1', activation: clipMax === undefined ? 'relu' : 'clip', bias: 'b2', addedBias: false })
  // The closed form, computed here.
  const ex = BETA.map((b, c) => reluMeanNumeric(b, GAMMA[c], clipMax))
  const wq = fakeQuant(w2, sim.quantizers.find((q) => q.kind === 'param' && q.tensor === 'w2').encodings)
  const expected = Array.from({ length: M }, (_, m) => {
    let s = 0
    for (let c = 0; c < C; c++) for (let k = 0; k < 9; k++) { const i = (m * C + c) * 9 + k; s += (wq[i] - w2[i]) * ex[c] }
    return -s
  })
  const scale = Math.max(...expected.map(Math.abs))
  expected.forEach((e, m) => t.true(Math.abs(layer.shift[m] - e) <= 1e-6 * scale, `channel ${m}: ${layer.shift[m]} vs ${e}`))
  const b = sim.model.graph.initializers.get('b2').data
  B2.forEach((v, m) => t.true(Math.abs(b[m] - (v + layer.shift[m])) < 1e-6))
  const after = await meanError(sim, bytes, heldOut)
  t.log(`E[x] ${ex.map((v) => v.toFixed(4)).join(', ')}; shift ${layer.shift.map((v) => v.toFixed(4)).join(', ')}; mean error ${before.map((v) => v.toFixed(4)).join(', ')} → ${after.map((v) => v.toExponential(2)).join(', ')}`)
  // 2e-3: the held-out mean's own sampling noise (4 × 16 × 36 outputs per channel), the floor for a
  // channel whose error is near zero to begin with (channel 0 under the clip: 0.0035).
  for (let m = 0; m < M; m++) t.true(Math.abs(after[m]) <= Math.max(Math.abs(before[m]) / 5, 2e-3), `channel ${m}: ${before[m]} → ${after[m]}`)
})

test("auto: analytical after the BatchNorm, empirical elsewhere; the empirical measurement agrees with the analytical shift", async (t) => {
  const w2 = weights()
  const bytes = model(w2, B2)
  const auto = await QuantSim.create(bytes, OPTS)
  t.teardown(() => auto.close())
  await auto.computeEncodings(batches(4, 1))
  const a = await applyBiasCorrection(auto, batches(8, 1))
  t.is(a.mode, 'auto')
  t.deepEqual(a.layers.map((l) => [l.node, l.method]), [['conv1', 'empirical'], ['conv2', 'analytical']])
  const emp = await QuantSim.create(bytes, OPTS)
  t.teardown(() => emp.close())
  await emp.computeEncodings(batches(4, 1))
  const e = await applyBiasCorrection(emp, batches(8, 1), { mode: 'empirical' })
  t.deepEqual(e.layers.map((l) => l.method), ['empirical', 'empirical'])
  const [sa, se] = [a.layers[1].shift, e.layers[1].shift]
  t.log(`conv2 shift: analytical ${sa.map((v) => v.toFixed(4)).join(', ')}; empirical ${se.map((v) => v.toFixed(4)).join(', ')}`)
  // The empirical one carries sampling noise (8 × 16 × 36 outputs per channel) and conv1's 16-bit rounding.
  sa.forEach((v, m) => t.true(Math.abs(v - se[m]) <= 0.05 * Math.abs(v), `channel ${m}: ${v} vs ${se[m]}`))
})

test('analytical mode on a model without BatchNorms warns and changes nothing; a bad mode is a TypeError', async (t) => {
  const w2 = weights()
  const sim = await QuantSim.create(model(w2, B2), { ...OPTS, prepare: false })
  t.teardown(() => sim.close())
  await sim.computeEncodings(batches(2, 1))
  await t.throwsAsync(() => applyBiasCorrection(sim, batches(1, 1), { mode: 'closed-form' }), { instanceOf: TypeError, message: /mode/ })
  const r = await applyBiasCorrection(sim, batches(1, 1), { mode: 'analytical' })
  t.is(r.layers.length, 0)
  t.true(sim.report.warnings.some((w) => /bias correction: .*BatchNorm/.test(w)))
})

test('after equalizeModel: equalizedBatchNorms describe the scaled layer outputs (measured in ORT), and conv2 is corrected analytically', async (t) => {
  const { equalizeModel, equalizedBatchNorms, cloneModel, addGraphOutput, modelToBytes } = require('../dist/index.js')
  const w2 = weights()
  // Channels 2 and 3 sit far above zero (β − 3γ > 0): the high-bias fold takes part of their bias.
  const { model: eq, report } = await equalizeModel(model(w2, B2, undefined, { beta: [0.5, -0.3, 1.2, 2.0], gamma: [1.0, 0.8, 0.2, 0.3] }))
  const pair = report.sets.flatMap((s) => s.pairs).find((p) => p.layer1 === 'conv1')
  t.truthy(pair, 'conv1 → Relu → conv2 is scaled')
  const hbf = report.highBiasFold.pairs.find((p) => p.layer1 === 'conv1')
  t.true(hbf.channels >= 1, 'the high-bias fold absorbed something on conv1')
  const stats = equalizedBatchNorms(report).find((f) => f.into === 'conv1')
  // conv1's output in the equalized model, measured: per-channel mean and standard deviation.
  const tapped = cloneModel(eq)
  addGraphOutput(tapped.graph, 't1')
  const session = await ort.InferenceSession.create(modelToBytes(tapped), { intraOpNumThreads: 1 })
  // The BN output is γ·x + β for x the (standardised) BN input; the sample's own mean and standard
  // deviation of x stand in for 0 and 1, so the check is exact up to float rounding.
  const moments = () => ({ sum: new Float64Array(C), sq: new Float64Array(C) })
  const [mx, my] = [moments(), moments()]
  let n = 0
  const add = (m, data) => { for (let i = 0; i < data.length; i++) { const c = Math.floor(i / (H * H)) % C; m.sum[c] += data[i]; m.sq[c] += data[i] ** 2 } }
  for (const f of batches(8, 5)) {
    add(mx, f.x.data)
    add(my, (await session.run({ x: new ort.Tensor('float32', f.x.data, f.x.dims) })).t1.data)
    n += f.x.data.length / C
  }
  await session.release()
  const meanStd = (m, c) => { const mean = m.sum[c] / n; return [mean, Math.sqrt(m.sq[c] / n - mean ** 2)] }
  const lines = []
  for (let c = 0; c < C; c++) {
    const [xm, xs] = meanStd(mx, c)
    const [mean, std] = meanStd(my, c)
    const [b, g] = [stats.beta[c], stats.gamma[c]]
    lines.push(`ch${c}: s ${pair.scaleFactors[c].toFixed(3)}, absorbed ${hbf.absorbed[c].toFixed(3)}, predicted mean ${(g * xm + b).toFixed(4)} / std ${(Math.abs(g) * xs).toFixed(4)}, measured ${mean.toFixed(4)} / ${std.toFixed(4)}`)
    t.true(Math.abs(mean - (g * xm + b)) <= 1e-4 * (Math.abs(g) + Math.abs(b)), `channel ${c}: mean ${mean} vs ${g * xm + b}`)
    t.true(Math.abs(std - Math.abs(g) * xs) <= 1e-4 * Math.abs(g), `channel ${c}: std ${std} vs ${Math.abs(g) * xs}`)
  }
  t.log(lines.join('; '))
  t.true(pair.scaleFactors.some((s) => Math.abs(s - 1) > 0.1), 'the scaling moved the statistics (else this test shows nothing)')
  const sim = await QuantSim.create(eq, OPTS)
  t.teardown(() => sim.close())
  await sim.computeEncodings(batches(2, 1))
  const r = await applyBiasCorrection(sim, batches(2, 1), { mode: 'analytical', batchNorms: equalizedBatchNorms(report) })
  t.deepEqual(r.layers.map((l) => [l.node, l.method, l.activation]), [['conv2', 'analytical', 'relu']])
})
