// GPTQ rounding (quantizeWeights algorithm 'gptq', src/modes/gptq.ts → crates/quantkit-core/src/gptq.rs)
// on synthetic one-MatMul models, checked through ONNX Runtime:
// - with correlated layer inputs, GPTQ's output error ‖XW − XŴ‖² is strictly (here: several times)
//   lower than round-to-nearest's at int4 block 32, on the calibration rows and on held-out rows;
// - with H a multiple of the identity, GPTQ reduces to round-to-nearest: the same codes, scales and
//   zero points, byte for byte in the MatMulNBits initializers.
// The Cholesky factorisation, triangular inverse and H⁻¹ factor are checked against closed-form
// matrices in crates/quantkit-core/src/linalg.rs (cargo test).
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'
import { random } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { loadModelSync } = require('../dist/onnx/loadModel.js')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { quantizeWeights, unpackMatMulNBits, CalibrationError } = require('../dist/index.js')

const FLOAT = 1

function normal(r) {
  // Box–Muller from the seeded uniform generator.
  const u = Math.max(r(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r())
}

/** X [m, K] with strongly correlated features: 8 latent factors mixed into K, plus a little noise. */
function correlatedRows(m, k, seed, mixSeed = 1) {
  const rm = random(mixSeed)
  const latent = 8
  const mix = Float64Array.from({ length: latent * k }, () => normal(rm))
  const r = random(seed)
  const x = new Float32Array(m * k)
  for (let row = 0; row < m; row++) {
    const z = Array.from({ length: latent }, () => normal(r))
    for (let i = 0; i < k; i++) {
      let v = 0.1 * normal(r)
      for (let l = 0; l < latent; l++) v += z[l] * mix[l * k + i]
      x[row * k + i] = v
    }
  }
  return x
}

/** A → Add(shift) → X → MatMul(W) → Y: the MatMul's input is an intermediate, tapped through ORT. */
function layerModel(k, n, m, seed) {
  const r = random(seed)
  const w = Float32Array.from({ length: k * n }, () => 0.1 * normal(r))
  const shift = Float32Array.from({ length: k }, () => 0.2 * normal(r))
  const bytes = buildModel({
    opset: 17,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: w }, { name: 'shift', dataType: FLOAT, dims: [k], data: shift }],
    nodes: [
      { opType: 'Add', inputs: ['A', 'shift'], outputs: ['X'], name: 'add' },
      { opType: 'MatMul', inputs: ['X', 'W'], outputs: ['Y'], name: 'mm' },
    ],
  })
  return { bytes, w, shift }
}

function sqError(a, b) {
  let s = 0
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2
  return s
}

const feeds = (a, m, k) => ({ A: { type: 'float32', data: a, dims: [m, k] } })

test('correlated inputs: GPTQ output error < round-to-nearest at int4 block 32 (calibration and held-out rows, through ORT)', async (t) => {
  const [k, n, m] = [256, 64, 1024]
  const { bytes } = layerModel(k, n, m, 7)
  const calib = correlatedRows(m, k, 11)
  const held = correlatedRows(m, k, 12) // same mixing, new samples
  const rows = []
  for (const symmetric of [true, false]) {
    const rtn = await quantizeWeights(bytes, { bits: 4, blockSize: 32, symmetric })
    const gptq = await quantizeWeights(bytes, { bits: 4, blockSize: 32, symmetric, algorithm: 'gptq', data: [feeds(calib, m, k)] })
    t.is(rtn.report.algorithm, 'rtn')
    t.is(gptq.report.algorithm, 'gptq')
    t.is(gptq.model.graph.nodes.find((x) => x.opType === 'MatMulNBits')?.opType, 'MatMulNBits', 'same MatMulNBits export')
    const stats = gptq.report.layers[0].gptq
    t.is(stats.rows, m)
    for (const [name, a] of [['calibration', calib], ['held-out', held]]) {
      const fp = (await runModel(bytes, feeds(a, m, k))).Y.data
      const er = sqError(fp, (await runModel(modelToBytes(rtn.model), feeds(a, m, k))).Y.data)
      const eg = sqError(fp, (await runModel(modelToBytes(gptq.model), feeds(a, m, k))).Y.data)
      rows.push(`${symmetric ? 'sym ' : 'asym'} ${name}: ‖XW − XŴ‖² RTN ${er.toFixed(2)}, GPTQ ${eg.toFixed(2)} (${(er / eg).toFixed(2)}× lower)`)
      t.true(eg < er, `${name}: GPTQ ${eg} vs RTN ${er}`)
      t.true(eg < 0.6 * er, `${name}: GPTQ should be well below RTN on correlated inputs`)
      if (name === 'calibration') {
        // The report's errors are ‖X(W − Ŵ)‖²/n computed from H in Rust: they match ORT's outputs.
        t.true(Math.abs(stats.outputError * m - eg) <= 1e-3 * eg, `report ${stats.outputError * m} vs ORT ${eg}`)
        t.true(Math.abs(stats.outputErrorRtn * m - er) <= 1e-3 * er, `report ${stats.outputErrorRtn * m} vs ORT ${er}`)
      }
    }
    // GPTQ trades weight error for output error: the weights themselves move further from W.
    t.true(gptq.report.layers[0].sqnrDb < rtn.report.layers[0].sqnrDb)
    rows.push(`${symmetric ? 'sym ' : 'asym'} solve ${stats.solveMs.toFixed(2)} ms (K ${k}, N ${n}); weight SQNR RTN ${rtn.report.layers[0].sqnrDb.toFixed(1)} dB, GPTQ ${gptq.report.layers[0].sqnrDb.toFixed(1)} dB`)
  }
  t.log(rows.join('\n'))
})

function initializerBytes(model) {
  const node = model.graph.nodes.find((x) => x.opType === 'MatMulNBits')
  return node.inputs.slice(1).filter(Boolean).map((name) => {
    const tensor = model.graph.initializers.get(name)
    return new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)
  })
}

test('H = c·I: GPTQ gives round-to-nearest exactly (codes, scales, zero points)', async (t) => {
  for (const [bits, blockSize, symmetric, k, n] of [[4, 32, true, 96, 24], [4, 32, false, 100, 10], [8, 16, true, 64, 33], [8, 128, false, 256, 8]]) {
    // Calibration rows 3·e_i: XᵀX = 9·I, so H = 18·I / K. Fed straight to the MatMul (a graph input).
    const r = random(k + n)
    const w = Float32Array.from({ length: k * n }, () => 0.1 * normal(r))
    const bytes = buildModel({
      opset: 17,
      inputs: [{ name: 'A', dataType: FLOAT, dims: [k, k] }],
      outputs: [{ name: 'Y', dataType: FLOAT, dims: [k, n] }],
      initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: w }],
      nodes: [{ opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'], name: 'mm' }],
    })
    const eye = new Float32Array(k * k)
    for (let i = 0; i < k; i++) eye[i * k + i] = 3
    const rtn = await quantizeWeights(bytes, { bits, blockSize, symmetric })
    const gptq = await quantizeWeights(bytes, { bits, blockSize, symmetric, algorithm: 'gptq', data: [feeds(eye, k, k)] })
    const [a, b] = [initializerBytes(rtn.model), initializerBytes(gptq.model)]
    t.is(a.length, b.length)
    a.forEach((x, i) => t.deepEqual(b[i], x, `int${bits} b${blockSize} ${symmetric ? 'sym' : 'asym'}: initializer ${i}`))
    const shape = { k, n, bits, blockSize }
    const [ua, ub] = [unpackMatMulNBits(a[0], new Float32Array(a[1].buffer.slice(a[1].byteOffset, a[1].byteOffset + a[1].byteLength)), symmetric ? undefined : a[2], shape),
      unpackMatMulNBits(b[0], new Float32Array(b[1].buffer.slice(b[1].byteOffset, b[1].byteOffset + b[1].byteLength)), symmetric ? undefined : b[2], shape)]
    t.deepEqual(ub.codes, ua.codes)
    t.is(gptq.report.layers[0].gptq.outputError, gptq.report.layers[0].gptq.outputErrorRtn)
  }
})

test('a weight read by two MatMuls gets one solve from the sum of both inputs\' Hessians; qdq format carries the same weights', async (t) => {
  const [k, n, m] = [64, 16, 256]
  const r = random(3)
  const w = Float32Array.from({ length: k * n }, () => 0.1 * normal(r))
  const bytes = buildModel({
    opset: 21,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }, { name: 'B', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }, { name: 'Z', dataType: FLOAT, dims: [m, n] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: w }],
    nodes: [
      { opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'], name: 'mm1' },
      { opType: 'MatMul', inputs: ['B', 'W'], outputs: ['Z'], name: 'mm2' },
    ],
  })
  const data = [{ A: feeds(correlatedRows(m, k, 1), m, k).A, B: feeds(correlatedRows(m, k, 2, 9), m, k).A }]
  const nbits = await quantizeWeights(bytes, { bits: 4, blockSize: 16, algorithm: 'gptq', data })
  t.is(nbits.report.layers.length, 2)
  t.is(nbits.report.layers[0].gptq.rows, 2 * m, 'both nodes\' rows in one Hessian')
  t.true(nbits.report.layers[1].sharedWeight)
  const qdq = await quantizeWeights(bytes, { bits: 4, blockSize: 16, algorithm: 'gptq', data, format: 'qdq' })
  const fe = data[0]
  const [y1, y2] = [await runModel(modelToBytes(nbits.model), fe), await runModel(modelToBytes(qdq.model), fe)]
  for (const out of ['Y', 'Z']) {
    const maxAbs = Math.max(...y1[out].data.map(Math.abs))
    t.true(y1[out].data.every((v, i) => Math.abs(v - y2[out].data[i]) <= 1e-5 * maxAbs), out)
  }
})

test('bad input: no data, bad dampPercent, empty data, NaN activations, unknown algorithm', async (t) => {
  const { bytes } = layerModel(32, 4, 8, 1)
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, algorithm: 'gptq' }), { instanceOf: TypeError, message: /needs calibration data/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, algorithm: 'gptq', data: [], gptq: { dampPercent: 0 } }), { instanceOf: RangeError, message: /dampPercent/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, algorithm: 'seqmse' }), { instanceOf: RangeError, message: /'rtn' or 'gptq'/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, algorithm: 'gptq', data: [] }), { instanceOf: CalibrationError, message: /empty/ })
  const a = correlatedRows(8, 32, 1)
  a[17] = NaN
  const err = await t.throwsAsync(quantizeWeights(bytes, { bits: 4, algorithm: 'gptq', data: [feeds(a, 8, 32)] }), { instanceOf: CalibrationError, message: /tensor "X" in calibration batch 0: .*non-finite/ })
  t.is(err.tensor, 'X')
  // The input model is untouched and loads as before.
  t.is(loadModelSync(bytes).graph.nodes.length, 2)
})
