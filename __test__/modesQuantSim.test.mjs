// The precision modes are QuantSim configurations plus a writer (docs/modes-architecture.md):
// - weight-only, format 'qdq', is QuantSim's own export: the file quantizeWeights writes computes,
//   in ONNX Runtime with graph optimisations off, exactly (bit for bit) what a QuantSim a user
//   sets up the same way exports (blocked 'onnxruntime' weights, activations off, sim.export);
// - dynamic mode's int8 weight scales are a QuantSim parameter quantizer's encodings (strict
//   symmetric int8, per channel), and both equal the closed form computed here:
//   max(max|w_c| / 127, 2^−23) in float32 (2^−23: AIMET's minimum scale, an all-zero channel).
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runModel } from './helpers/ort.mjs'
import { randoms } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { QuantSim, quantizeWeights, quantizeDynamic } = require('../dist/index.js')

const FLOAT = 1
const INT64 = 7
const IDS = [3, 0, 49, 17, 8]

/** Gather(table) → MatMul(W [K, N], K = 72: a partial last block of 32) → Gemm(Wt [N2, N] transB, C). */
function model() {
  const [v, d, n, n2] = [50, 72, 20, 12]
  return buildModel({
    opset: 17,
    inputs: [{ name: 'ids', dataType: INT64, dims: [IDS.length] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [IDS.length, n2] }],
    initializers: [
      { name: 'table', dataType: FLOAT, dims: [v, d], data: randoms(v * d, 1, 0.8) },
      { name: 'W', dataType: FLOAT, dims: [d, n], data: randoms(d * n, 2, 0.3) },
      { name: 'Wt', dataType: FLOAT, dims: [n2, n], data: randoms(n2 * n, 3, 0.3) },
      { name: 'C', dataType: FLOAT, dims: [n2], data: randoms(n2, 4, 1) },
    ],
    nodes: [
      { opType: 'Gather', inputs: ['table', 'ids'], outputs: ['E'], name: 'embed' },
      { opType: 'MatMul', inputs: ['E', 'W'], outputs: ['H'], name: 'mm' },
      { opType: 'Relu', inputs: ['H'], outputs: ['R'], name: 'relu' },
      { opType: 'Gemm', inputs: ['R', 'Wt', 'C'], outputs: ['Y'], name: 'fc', attributes: { transB: 1 } },
    ],
  })
}

const feeds = () => ({ ids: { type: 'int64', data: BigInt64Array.from(IDS.map(BigInt)), dims: [IDS.length] } })

for (const bits of [4, 8]) {
  for (const symmetric of [true, false]) {
    test(`weight-only qdq int${bits} ${symmetric ? 'sym' : 'asym'} equals the export of a QuantSim set up the same way, bit for bit`, async (t) => {
      const bytes = model()
      const wo = await quantizeWeights(bytes, { bits, symmetric, blockSize: 32, format: 'qdq', ops: ['Gather', 'MatMul', 'Gemm'] })
      t.is(wo.report.layers.length, 3)
      t.deepEqual(wo.model.graph.nodes.filter((x) => x.opType === 'DequantizeLinear').length, 3)

      // The user's route: QuantSim with embedding tables placed, activations off, weights blocked by ORT's rule.
      const sim = await QuantSim.create(bytes, { prepare: false, gatherTables: true })
      const weights = new Set(['table', 'W', 'Wt'])
      for (const q of sim.quantizers) if (!weights.has(q.tensor)) sim.setQuantizer(q.tensor, { enabled: false })
      const r = sim.setBlockwise({ opTypes: ['Gather', 'MatMul', 'Gemm'], bitwidth: bits, blockSize: 32, symmetric, rule: 'onnxruntime', partialBlocks: true })
      t.deepEqual(r.tensors.sort(), ['W', 'Wt', 'table'])
      await sim.computeEncodings([])
      const dir = await mkdtemp(join(tmpdir(), 'quantkit-modes-'))
      try {
        await sim.export(dir, 'm', { formats: ['qdq'], opset: 21 })
        const exported = await readFile(join(dir, 'm.qdq.onnx'))
        const a = (await runModel(modelToBytes(wo.model), feeds())).Y.data
        const b = (await runModel(exported, feeds())).Y.data
        t.deepEqual(Array.from(a), Array.from(b))
        t.true(a.every(Number.isFinite))
        // And the quantization did something: the float model's output differs.
        const fp = (await runModel(bytes, feeds())).Y.data
        t.notDeepEqual(Array.from(fp), Array.from(a))
      } finally {
        await sim.close()
        await rm(dir, { recursive: true, force: true })
      }
    })
  }
}

test('setBlockwise rule onnxruntime: bad bitwidths and block sizes are errors; partialBlocks needs that rule', async (t) => {
  const sim = await QuantSim.create(model(), { prepare: false })
  t.throws(() => sim.setBlockwise({ bitwidth: 3, blockSize: 32, rule: 'onnxruntime' }), { instanceOf: RangeError, message: /bitwidth 4 or 8/ })
  t.throws(() => sim.setBlockwise({ bitwidth: 4, blockSize: 24, rule: 'onnxruntime' }), { instanceOf: RangeError, message: /power of two/ })
  t.throws(() => sim.setBlockwise({ bitwidth: 4, blockSize: 32, partialBlocks: true }), { instanceOf: RangeError, message: /partialBlocks/ })
  // AIMET's rule skips a block size that does not divide K (72); ORT's takes it with a partial block.
  t.deepEqual(sim.setBlockwise({ opTypes: ['MatMul'], bitwidth: 4, blockSize: 32 }).skipped.map((s) => s.tensor), ['W'])
  t.deepEqual(sim.setBlockwise({ opTypes: ['MatMul'], bitwidth: 4, blockSize: 32, rule: 'onnxruntime', partialBlocks: true }).tensors, ['W'])
  await sim.close()
})

test("dynamic mode's weight scales are the sim's strict-symmetric int8 encodings and max(max|w_c|/127, 2^-23)", async (t) => {
  const [m, k, n, n2] = [3, 16, 6, 5]
  const w = randoms(k * n, 7, 0.5)
  for (let r = 0; r < k; r++) w[r * n + 2] = 0 // an all-zero output channel
  const wt = randoms(n2 * n, 8, 0.5) // Gemm B stored [N2, N], transB = 1
  const wg = randoms(n2 * 4, 9, 0.5) // Gemm B [N2, 4], transB = 0: channel axis 1
  const bytes = buildModel({
    opset: 13,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, 4] }],
    initializers: [
      { name: 'W', dataType: FLOAT, dims: [k, n], data: w },
      { name: 'Wt', dataType: FLOAT, dims: [n2, n], data: wt },
      { name: 'Wg', dataType: FLOAT, dims: [n2, 4], data: wg },
    ],
    nodes: [
      { opType: 'MatMul', inputs: ['A', 'W'], outputs: ['H'], name: 'mm' },
      { opType: 'Gemm', inputs: ['H', 'Wt'], outputs: ['G'], name: 'fc1', attributes: { transB: 1 } },
      { opType: 'Gemm', inputs: ['G', 'Wg'], outputs: ['Y'], name: 'fc2' },
    ],
  })
  const { model: dyn } = await quantizeDynamic(bytes, { perChannel: true })
  const scaleOf = (label) => {
    const mul = dyn.graph.nodes.find((x) => x.name === `${label}_scales_mul`)
    return Array.from(dyn.graph.initializers.get(mul.inputs[1]).data)
  }

  const sim = await QuantSim.create(bytes, { prepare: false })
  const weights = ['W', 'Wt', 'Wg']
  for (const q of sim.quantizers) if (!weights.includes(q.tensor)) sim.setQuantizer(q.tensor, { enabled: false })
  for (const x of weights) sim.setQuantizer(x, { enabled: true, bitwidth: 8, symmetric: true, strictSymmetric: true, perChannel: true })
  await sim.computeEncodings([])
  const simScales = (x) => sim.quantizers.find((q) => q.tensor === x && q.kind === 'param').encodings.map((e) => e.scale)

  // Closed form, per output channel: axis 1 of W [K, N] and of Wg [N2, 4]; axis 0 of Wt [N2, N].
  const closed = (data, rows, cols, channelAxis) => {
    const count = channelAxis === 1 ? cols : rows
    const absmax = new Array(count).fill(0)
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) {
      const ch = channelAxis === 1 ? c : r
      absmax[ch] = Math.max(absmax[ch], Math.abs(data[r * cols + c]))
    }
    return absmax.map((a) => Math.max(Math.fround(a / 127), 2 ** -23))
  }
  for (const [label, tensor, want] of [['mm', 'W', closed(w, k, n, 1)], ['fc1', 'Wt', closed(wt, n2, n, 0)], ['fc2', 'Wg', closed(wg, n2, 4, 1)]]) {
    t.deepEqual(scaleOf(label), simScales(tensor), `${label}: dynamic scales vs sim encodings`)
    t.deepEqual(scaleOf(label), want, `${label}: dynamic scales vs closed form`)
  }
  t.is(scaleOf('mm')[2], 2 ** -23)
  await sim.close()
})

const f32 = Math.fround
function roundHalfEven(x) {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x))

test('a dynamic activation quantizer: sim.run is DynamicQuantizeLinear → DequantizeLinear, checked against the closed form here', async (t) => {
  const [m, k, n] = [4, 24, 5]
  const w = randoms(k * n, 11, 0.5)
  const a = randoms(m * k, 12, 2).map((v) => v + 0.3) // skewed: zero point away from 128
  const bytes = buildModel({
    opset: 13,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: w }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'], name: 'mm' }],
  })
  const sim = await QuantSim.create(bytes, { prepare: false })
  for (const q of sim.quantizers) if (q.tensor !== 'W' && q.tensor !== 'A') sim.setQuantizer(q.tensor, { enabled: false })
  sim.setQuantizer('W', { enabled: true, bitwidth: 8, symmetric: true, strictSymmetric: true, perChannel: true })
  sim.setQuantizer('A', { enabled: true, dynamic: true })
  t.throws(() => sim.setQuantizer('W', { dynamic: true }), { message: /parameter/ })
  await sim.computeEncodings([]) // nothing to calibrate: the weight from its values, A at run time
  const { model } = sim.qdqModel('export')
  t.deepEqual(model.graph.nodes.map((x) => x.opType).sort(), ['DequantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'MatMul'])
  const dir = await mkdtemp(join(tmpdir(), 'quantkit-modes-'))
  try {
    await t.throwsAsync(sim.export(dir, 'm'), { message: /dynamic.*formats: \['qdq'\]/s })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  const y = (await sim.run({ A: { type: 'float32', data: a, dims: [m, k] } })).Y.data

  // Closed form: DynamicQuantizeLinear as ORT computes it, the weight per column on [−127, 127].
  let lo = 0
  let hi = 0
  for (const v of a) { lo = Math.min(lo, v); hi = Math.max(hi, v) }
  const scale = f32(f32(hi - lo) / 255)
  const zp = roundHalfEven(clamp(f32(0 - f32(lo / scale)), 0, 255))
  const ah = a.map((v) => f32((clamp(roundHalfEven(f32(v / scale)) + zp, 0, 255) - zp) * scale))
  const ws = Array.from({ length: n }, (_, c) => {
    let mx = 0
    for (let r = 0; r < k; r++) mx = Math.max(mx, Math.abs(w[r * n + c]))
    return f32(mx / 127)
  })
  const wh = w.map((v, i) => f32(clamp(roundHalfEven(f32(v / ws[i % n])), -127, 127) * ws[i % n]))
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let ref = 0
      let mag = 0
      for (let r = 0; r < k; r++) { ref += ah[i * k + r] * wh[r * n + j]; mag += Math.abs(ah[i * k + r] * wh[r * n + j]) }
      // float32 summation in ORT's MatMul: within k·2^−24 of the magnitude.
      t.true(Math.abs(y[i * n + j] - ref) <= k * 2 ** -24 * mag + 1e-30, `Y[${i}, ${j}] = ${y[i * n + j]}, closed form ${ref}`)
    }
  }
  await sim.close()
})
