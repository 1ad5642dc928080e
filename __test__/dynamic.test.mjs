// quantizeDynamic on one-node models: ONNX Runtime's output (graph optimisations off, one thread)
// equals, to the last bit, an independent computation in this file: the weight's int8 codes from
// the symmetric per-column rule, DynamicQuantizeLinear as ORT computes it (range widened to include
// 0; scale = (max − min) / 255 in float32, 1 when max = min; zero point = round-half-even of
// saturate(0 − min / scale); code = saturate(round-half-even(x / scale) + zero point)), the integer
// product in int32 (exact in JS numbers), then the graph's float32 ops in the graph's order:
// Cast(acc), Mul(a_scale, b_scale), Mul, Add(bias). Both formats; bad input; the input unchanged.
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'
import { randoms } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { loadModel } = require('../dist/onnx/loadModel.js')
const { quantizeDynamic, NothingToQuantizeError } = require('../dist/index.js')

const FLOAT = 1
const f = Math.fround

function roundHalfEven(x) {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}
const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x))

/** DynamicQuantizeLinear, as ONNX Runtime's kernel computes it (float32 throughout). */
function dynamicQuantizeLinear(x) {
  let min = 0
  let max = 0
  for (const v of x) { if (v < min) min = v; if (v > max) max = v }
  const scale = max === min ? 1 : f(f(max - min) / 255)
  const zp = roundHalfEven(clamp(f(0 - f(min / scale)), 0, 255))
  const q = Uint8Array.from(x, (v) => clamp(roundHalfEven(f(v / scale)) + zp, 0, 255))
  return { q, scale, zp }
}

/** Symmetric int8 codes of W [K, N] (stored [N, K] when `transposed`), one scale per column. */
function weightCodes(w, k, n, transposed, perChannel) {
  const at = (r, c) => (transposed ? w[c * k + r] : w[r * n + c])
  const absmax = new Array(perChannel ? n : 1).fill(0)
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) { const i = perChannel ? c : 0; absmax[i] = Math.max(absmax[i], Math.abs(at(r, c))) }
  const scales = absmax.map((a) => (a > 0 ? f(a / 127) : 1))
  const codes = new Int8Array(k * n)
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) codes[r * n + c] = clamp(roundHalfEven(f(at(r, c) / scales[perChannel ? c : 0])), -127, 127)
  return { codes, scales }
}

/** The dynamic product the graph computes, from scratch. */
function reference(a, m, k, w, n, { transposed = false, perChannel = true, bias } = {}) {
  const { codes, scales } = weightCodes(w, k, n, transposed, perChannel)
  const { q, scale, zp } = dynamicQuantizeLinear(a)
  const y = new Float32Array(m * n)
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0
      for (let t = 0; t < k; t++) acc += (q[i * k + t] - zp) * codes[t * n + j]
      const s = f(scale * scales[perChannel ? j : 0])
      let v = f(f(acc) * s)
      if (bias) v = f(v + bias[j])
      y[i * n + j] = v
    }
  }
  return { y, codes }
}

function sameBits(t, got, want, what) {
  const a = new Uint32Array(Float32Array.from(got).buffer)
  const b = new Uint32Array(want.buffer)
  let diff = 0
  let first = -1
  for (let i = 0; i < b.length; i++) if (a[i] !== b[i]) { diff++; if (first < 0) first = i }
  t.is(diff, 0, `${what}: ${diff} of ${b.length} outputs differ${first >= 0 ? ` (first at ${first}: ${got[first]} vs ${want[first]})` : ''}`)
}

function matmulModel(m, k, n, w) {
  return buildModel({
    opset: 13,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: w }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'], name: 'mm' }],
  })
}

for (const format of ['standard', 'fused']) {
  for (const perChannel of [true, false]) {
    test(`${format}, ${perChannel ? 'per-channel' : 'per-tensor'}: a one-node MatMul equals the independent computation bit for bit`, async (t) => {
      const [m, k, n] = [7, 96, 33]
      // Columns of very different ranges, so per-channel and per-tensor scales differ.
      const w = randoms(k * n, 11, 0.2).map((v, i) => v * (1 + (i % n) / 4))
      const bytes = matmulModel(m, k, n, w)
      const { model, report } = await quantizeDynamic(bytes, { format, perChannel })
      t.deepEqual(report.layers.map((l) => [l.node, l.kernel, l.quantized]), [['mm', format === 'fused' ? 'DynamicQuantizeMatMul' : 'MatMulInteger', true]])
      t.false(report.quality.checked)
      const codes = model.graph.initializers.get('W_quantized')
      for (const seed of [1, 2, 3]) {
        // Skewed inputs (min ≠ −max, zero point away from 128) and one all-positive batch (zero point 0).
        const a = randoms(m * k, seed, 3).map((v) => (seed === 3 ? Math.abs(v) : v + 0.7))
        const got = (await runModel(modelToBytes(model), { A: { type: 'float32', data: a, dims: [m, k] } })).Y.data
        const want = reference(a, m, k, w, n, { perChannel })
        t.deepEqual(Array.from(codes.data), Array.from(want.codes), 'weight codes')
        sameBits(t, got, want.y, `seed ${seed}`)
      }
    })
  }

  test(`${format}: Gemm with transB=1, beta=0.5 and a bias equals the independent computation bit for bit`, async (t) => {
    const [m, k, n] = [5, 40, 12]
    const w = randoms(n * k, 21, 0.5) // stored [N, K]
    const c = randoms(n, 22, 1)
    const bytes = buildModel({
      opset: 13,
      inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
      outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
      initializers: [{ name: 'B', dataType: FLOAT, dims: [n, k], data: w }, { name: 'C', dataType: FLOAT, dims: [n], data: c }],
      nodes: [{ opType: 'Gemm', inputs: ['A', 'B', 'C'], outputs: ['Y'], name: 'fc', attributes: { transB: 1, beta: { type: 'FLOAT', value: 0.5 } } }],
    })
    const { model, report } = await quantizeDynamic(bytes, { format })
    t.true(report.layers[0].transposed)
    const a = randoms(m * k, 23, 2)
    const got = (await runModel(modelToBytes(model), { A: { type: 'float32', data: a, dims: [m, k] } })).Y.data
    const want = reference(a, m, k, w, n, { transposed: true, bias: Float32Array.from(c, (v) => f(0.5 * v)) })
    sameBits(t, got, want.y, 'Gemm')
  })
}

test('the input model is not changed, and the weights shrink to int8', async (t) => {
  const bytes = matmulModel(4, 64, 32, randoms(64 * 32, 5, 1))
  const input = await loadModel(bytes)
  const before = modelToBytes(input)
  const { model, report } = await quantizeDynamic(input, { format: 'standard' })
  t.deepEqual(modelToBytes(input), before)
  t.not(model, input)
  t.deepEqual(model.graph.nodes.map((n) => n.opType), ['DynamicQuantizeLinear', 'MatMulInteger', 'Cast', 'Mul', 'Mul'])
  t.false(model.graph.initializers.has('W'), 'the float weight is dropped')
  t.is(report.totals.weightBytesBefore, 64 * 32 * 4)
  t.is(report.totals.weightBytesAfter, 64 * 32 + 32 * 4 + 32)
})

test('a model with no eligible MatMul/Gemm says so (NothingToQuantizeError), naming what it found', async (t) => {
  const actOnly = buildModel({
    opset: 13,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [2, 3] }, { name: 'B', dataType: FLOAT, dims: [3, 4] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [2, 4] }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'B'], outputs: ['M'], name: 'act_mm' }, { opType: 'Relu', inputs: ['M'], outputs: ['Y'] }],
  })
  const e1 = await t.throwsAsync(quantizeDynamic(actOnly), { instanceOf: NothingToQuantizeError })
  t.regex(e1.message, /has no MatMul\/Gemm with a constant float32 weight/)
  t.regex(e1.message, /act_mm \(MatMul\): weight "B" is not an initializer/)

  const reluOnly = buildModel({
    opset: 13,
    inputs: [{ name: 'X', dataType: FLOAT, dims: [1, 2, 4, 4] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [1, 3, 4, 4] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [3, 2, 3, 3], data: randoms(54, 3, 1) }],
    nodes: [{ opType: 'Conv', inputs: ['X', 'W'], outputs: ['Y'], attributes: { pads: [1, 1, 1, 1] } }],
  })
  const e2 = await t.throwsAsync(quantizeDynamic(reluOnly), { instanceOf: NothingToQuantizeError })
  t.regex(e2.message, /no MatMul\/Gemm node at all \(its ops: Conv\)/)
  t.regex(e2.message, /It has 1 Conv: add "Conv" to ops/)
  // Asking for Conv makes it eligible.
  const { report } = await quantizeDynamic(reluOnly, { ops: ['Conv'] })
  t.is(report.layers[0].kernel, 'ConvInteger')

  await t.throwsAsync(quantizeDynamic(actOnly, { ops: ['Einsum'] }), { instanceOf: RangeError, message: /"Einsum" is not supported/ })
  await t.throwsAsync(quantizeDynamic(actOnly, { minSqnrDb: 30 }), { instanceOf: TypeError, message: /minSqnrDb needs data/ })
})
