// Empirical bias correction: on a Conv whose 4-bit weights all round the same way (a systematic
// shift of the output mean), the corrected sim's mean output error per channel shrinks ≥ 5× on
// held-out data; a layer that quantizes exactly is left as it was.
import test from 'ava'
import { createRequire } from 'node:module'
import { random } from './helpers/random.mjs'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, applyBiasCorrection } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const [N, C, M, H] = [8, 3, 4, 6]
const convModel = (w, b) => buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: [N, C, H, H] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: [N, M, H, H] }],
  initializers: [{ name: 'w', dataType: T.FLOAT, dims: [M, C, 3, 3], data: w }, ...(b ? [{ name: 'b', dataType: T.FLOAT, dims: [M], data: b }] : [])],
  nodes: [{ opType: 'Conv', inputs: ['x', 'w', ...(b ? ['b'] : [])], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }],
})
/** Inputs on the 8-bit grid of [0, 1] (k/255), so that only the weights carry quantization error. */
function batches(n, seed) {
  const r = random(seed)
  return Array.from({ length: n }, () => ({ x: { type: 'float32', data: Float32Array.from({ length: N * C * H * H }, () => Math.round(r() * 255) / 255), dims: [N, C, H, H] } }))
}

/** Per-channel mean of (sim − float) outputs. */
async function meanError(sim, floatBytes, data) {
  const fp = await ort.InferenceSession.create(floatBytes, { intraOpNumThreads: 1 })
  const err = new Float64Array(M)
  let n = 0
  for (const f of data) {
    const a = (await fp.run({ x: new ort.Tensor('float32', f.x.data, f.x.dims) })).y.data
    const b = (await sim.run(f)).y.data
    for (let i = 0; i < a.length; i++) err[Math.floor(i / (H * H)) % M] += b[i] - a[i]
    n += a.length / M
  }
  await fp.release()
  return Array.from(err, (e) => e / n)
}

test('4-bit weights that all round down: mean output error per channel shrinks ≥ 5× on held-out data', async (t) => {
  // Per channel: one weight sets the range (scale = max/7), the others sit at 1.4 steps and round to 1.
  const w = new Float32Array(M * C * 9)
  for (let m = 0; m < M; m++) for (let k = 0; k < C * 9; k++) w[m * C * 9 + k] = k === 0 ? 0.7 * (m + 1) : 0.14 * (m + 1) * (m % 2 ? -1 : 1)
  const bytes = convModel(w, Float32Array.of(0.1, -0.2, 0.3, 0))
  const sim = await QuantSim.create(bytes, { intraOpNumThreads: 1, paramBitwidth: 4 })
  await sim.computeEncodings(batches(4, 1))
  const heldOut = batches(4, 99)
  const before = await meanError(sim, bytes, heldOut)
  const report = await applyBiasCorrection(sim, batches(4, 1), { numBatches: 4 })
  const after = await meanError(sim, bytes, heldOut)
  t.log(`mean error per channel before ${before.map((v) => v.toFixed(4)).join(', ')}; after ${after.map((v) => v.toExponential(2)).join(', ')}; shift ${report.layers[0].shift.map((v) => v.toFixed(4)).join(', ')}`)
  for (let c = 0; c < M; c++) t.true(Math.abs(after[c]) * 5 <= Math.abs(before[c]), `channel ${c}: ${before[c]} → ${after[c]}`)
  t.is(report.layers[0].bias, 'b')
  t.false(report.layers[0].addedBias)
  // The float model the sim exports carries the corrected bias.
  const b = sim.model.graph.initializers.get('b').data
  t.true(Math.abs(b[0] - (0.1 + report.layers[0].shift[0])) < 1e-6)
  await sim.close()
})

test('a layer that quantizes exactly is left unchanged; a layer without bias gets one', async (t) => {
  // Per channel: integer multiples of 0.1 in [−0.7, 0.7] with 0.7 present: exactly on the 4-bit grid.
  const r = random(3)
  const w = Float32Array.from({ length: M * C * 9 }, (_, i) => (i % (C * 9) === 0 ? 7 : Math.round(r() * 14) - 7) / 10)
  const bytes = convModel(w)
  const sim = await QuantSim.create(bytes, { intraOpNumThreads: 1, paramBitwidth: 4 })
  await sim.computeEncodings(batches(4, 1))
  const data = batches(2, 7)
  const before = await Promise.all(data.map((f) => sim.run(f)))
  const report = await applyBiasCorrection(sim, batches(4, 1))
  t.true(report.layers[0].addedBias)
  // Only the input's 8-bit rounding is left (its range is not exactly [0, 1] on AIMET's grid): shifts
  // of 1e-4 against ~1.2 in the layer above, and no output moves by more than one output step.
  t.true(Math.max(...report.layers[0].shift.map(Math.abs)) < 1e-3, `shift ${report.layers[0].shift}`)
  const step = sim.quantizers.find((q) => q.tensor === 'y' && q.kind !== 'param').encodings[0].scale
  const after = await Promise.all(data.map((f) => sim.run(f)))
  let moved = 0
  let worst = 0
  for (let i = 0; i < data.length; i++) {
    for (let k = 0; k < after[i].y.data.length; k++) {
      const d = Math.abs(after[i].y.data[k] - before[i].y.data[k])
      worst = Math.max(worst, d)
      if (d > 0) moved++
    }
  }
  t.log(`exact layer: max |shift| ${Math.max(...report.layers[0].shift.map(Math.abs)).toExponential(2)}, ${moved} of ${data.length * N * M * H * H} outputs moved by one step`)
  t.true(worst <= step * 1.0001)
  await sim.close()
})

test('bias correction needs encodings', async (t) => {
  const sim = await QuantSim.create(convModel(new Float32Array(M * C * 9).fill(0.1)), { intraOpNumThreads: 1 })
  await t.throwsAsync(() => applyBiasCorrection(sim, batches(1, 1)), { message: /computeEncodings/ })
})
