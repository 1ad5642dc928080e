// quantizeWeights, format 'matmulnbits': the packing round-trips through ONNX Runtime. A one-node
// MatMul (or Gemm) model is quantized, run in onnxruntime-node 1.23.2 (its CPU provider has
// com.microsoft.MatMulNBits), and compared with a computation done here, independently of the
// Rust packer: unpack B / scales / zero points in JavaScript from the layout in ONNX Runtime's
// ContribOperators.md, dequantize with affine.dequantize per block (axis 0 of W [K, N]), and
// multiply in float64.
//
// Tolerance: accuracy_level unset (0) means ORT dequantizes B and multiplies in float32, in its own
// summation order. For a float32 dot product of length K in any order,
// |fl(Σ a·ŵ) − Σ a·ŵ| ≤ γ_K · Σ|a·ŵ| with γ_K = K·u / (1 − K·u), u = 2⁻²⁴; the bound used is
// K·2⁻²³·Σ|a_k·ŵ_k| (twice that, for headroom) plus one float32 ulp of the result.
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'
import { random, randoms } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { quantizeWeights, unpackMatMulNBits, affine, ExportError } = require('../dist/index.js')

const FLOAT = 1

function matmulModel(k, n, m, seed) {
  const w = randoms(k * n, seed, 0.5)
  // Outliers: some blocks get a large negative or positive extreme, so both ends of the grid are used.
  const r = random(seed + 1)
  for (let i = 0; i < 8; i++) w[Math.floor(r() * w.length)] = (r() < 0.5 ? -1 : 1) * 2
  const bytes = buildModel({
    opset: 17,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: w }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'], name: 'mm' }],
  })
  return { bytes, w }
}

/** B [N, nb, blob], scales [N·nb], zero points [N, ceil(nb·bits/8)] → codes [K, N], scales [nb, N], zp [nb, N]. */
function unpackHere(b, scales, zp, k, n, bits, bs) {
  const nb = Math.ceil(k / bs)
  const blob = (bs * bits) / 8
  const zpRow = Math.ceil((nb * bits) / 8)
  const codes = new Uint8Array(k * n)
  const s = new Float32Array(nb * n)
  const z = new Int32Array(nb * n)
  for (let c = 0; c < n; c++) {
    for (let kk = 0; kk < k; kk++) {
      codes[kk * n + c] = bits === 8 ? b[c * nb * blob + kk] : (b[c * nb * blob + (kk >> 1)] >> ((kk & 1) * 4)) & 15
    }
    for (let j = 0; j < nb; j++) {
      s[j * n + c] = scales[c * nb + j]
      z[j * n + c] = zp === undefined ? 1 << (bits - 1) : bits === 8 ? zp[c * zpRow + j] : (zp[c * zpRow + (j >> 1)] >> ((j & 1) * 4)) & 15
    }
  }
  return { codes, scales: s, zeroPoints: z }
}

/** Ŵ = (code − zp)·scale, via affine.dequantize (AIMET offset = −zp) per block along axis 0. */
function dequantizeHere(u, k, n, bs) {
  const offset = Int32Array.from(u.zeroPoints, (z) => -z)
  return affine.dequantize(u.codes, u.scales, offset, { shape: [k, n], axis: 0, blockSize: bs })
}

function reference(a, w, m, k, n) {
  const y = new Float64Array(m * n)
  const mag = new Float64Array(m * n)
  for (let i = 0; i < m; i++) {
    for (let c = 0; c < n; c++) {
      let s = 0
      let g = 0
      for (let kk = 0; kk < k; kk++) {
        const p = a[i * k + kk] * w[kk * n + c]
        s += p
        g += Math.abs(p)
      }
      y[i * n + c] = s
      mag[i * n + c] = g
    }
  }
  return { y, mag }
}

function checkClose(t, got, ref, k, label) {
  let worst = 0
  for (let i = 0; i < got.length; i++) {
    const bound = 2 * k * 2 ** -23 * ref.mag[i] + Math.abs(ref.y[i]) * 2 ** -23
    const err = Math.abs(got[i] - ref.y[i])
    if (!(err <= bound)) t.fail(`${label}: output ${i} is ${got[i]}, expected ${ref.y[i]} ± ${bound}`)
    worst = Math.max(worst, err / Math.max(bound, 1e-30))
  }
  t.true(worst <= 1, `${label}: worst error / bound ${worst}`)
}

const initializer = (model, name) => model.graph.initializers.get(name)

const CASES = [
  // [K, N, blockSize] — K not a multiple of the block (padding) in the second, third and fifth.
  [64, 24, 32],
  [100, 7, 32],
  [28, 16, 32],
  [256, 12, 128],
  [40, 5, 16],
]

for (const bits of [4, 8]) {
  for (const symmetric of [true, false]) {
    for (const [k, n, bs] of CASES) {
      test(`MatMulNBits int${bits} ${symmetric ? 'symmetric' : 'asymmetric'} K=${k} N=${n} block ${bs}: ORT equals dequantize-then-matmul`, async (t) => {
        const m = 5
        const { bytes, w } = matmulModel(k, n, m, k * 131 + n * 7 + bits + (symmetric ? 1 : 0))
        const { model, report } = await quantizeWeights(bytes, { bits, blockSize: bs, symmetric })
        const node = model.graph.nodes[0]
        t.is(model.graph.nodes.length, 1)
        t.is(node.opType, 'MatMulNBits')
        t.is(node.domain, 'com.microsoft')
        t.deepEqual(Object.fromEntries([...node.attributes].map(([key, v]) => [key, Number(v.value)])), { K: k, N: n, bits, block_size: bs })
        t.is(node.inputs.length, symmetric ? 3 : 4, 'symmetric omits zero_points (ORT assumes 2^(bits-1))')
        t.false(model.graph.initializers.has('W'), 'the float weight is gone')

        const nb = Math.ceil(k / bs)
        const B = initializer(model, node.inputs[1])
        const S = initializer(model, node.inputs[2])
        const Z = symmetric ? undefined : initializer(model, node.inputs[3])
        t.deepEqual(B.dims, [n, nb, (bs * bits) / 8])
        t.deepEqual(S.dims, [n * nb])
        if (Z) t.deepEqual(Z.dims, [n * Math.ceil((nb * bits) / 8)])

        const u = unpackHere(B.data, S.data, Z?.data, k, n, bits, bs)
        // The Rust unpacker (used by tools) reads the same layout.
        const rust = unpackMatMulNBits(B.data, S.data, Z?.data, { k, n, bits, blockSize: bs })
        t.deepEqual(rust.codes, u.codes)
        t.deepEqual(rust.scales, u.scales)
        t.deepEqual(Int32Array.from(rust.zeroPoints), u.zeroPoints)
        // Padding rows of the last block hold the zero point (the code of 0.0).
        if (k % bs !== 0 && bits === 4) {
          const col0 = B.data.subarray(0, nb * (bs / 2))
          const pad = (col0[col0.length - 1] >> 4) & 15
          t.is(pad, u.zeroPoints[(nb - 1) * n])
        }

        const wq = dequantizeHere(u, k, n, bs)
        // Round to nearest: every weight is within half a step of its block's scale (no clipping).
        for (let i = 0; i < w.length; i++) {
          const s = u.scales[Math.floor(i / n / bs) * n + (i % n)]
          if (!(Math.abs(w[i] - wq[i]) <= s / 2 + 1e-7)) t.fail(`weight ${i}: ${w[i]} → ${wq[i]} (scale ${s})`)
        }
        const a = randoms(m * k, 99 + k, 1)
        const out = await runModel(modelToBytes(model), { A: { type: 'float32', data: a, dims: [m, k] } })
        checkClose(t, out.Y.data, reference(a, wq, m, k, n), k, `int${bits} K=${k}`)

        const l = report.layers[0]
        t.deepEqual(l.shape, [k, n])
        t.is(l.bytesBefore, k * n * 4)
        t.is(l.bytesAfter, B.data.byteLength + S.data.byteLength + (Z ? Z.data.byteLength : 0))
        t.is(l.paddedRows, nb * bs - k)
        t.true(l.sqnrDb > (bits === 4 ? 12 : 35), `SQNR ${l.sqnrDb}`)
      })
    }
  }
}

test('Gemm with transB=1, C and beta: rewritten as MatMulNBits + Add; alpha ≠ 1 is skipped with a note', async (t) => {
  const [m, k, n] = [4, 48, 6]
  const wt = randoms(n * k, 5, 0.5) // [N, K]
  const c = randoms(n, 6, 1)
  const build = (alpha) => buildModel({
    opset: 13,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
    initializers: [{ name: 'Wt', dataType: FLOAT, dims: [n, k], data: wt }, { name: 'C', dataType: FLOAT, dims: [n], data: c }],
    nodes: [{ opType: 'Gemm', inputs: ['A', 'Wt', 'C'], outputs: ['Y'], name: 'fc', attributes: { transB: 1, beta: { type: 'FLOAT', value: 0.5 }, alpha: { type: 'FLOAT', value: alpha } } }],
  })
  const { model, report } = await quantizeWeights(build(1), { bits: 4, blockSize: 16 })
  t.deepEqual(model.graph.nodes.map((x) => x.opType), ['MatMulNBits', 'Add'])
  t.deepEqual(report.layers[0].shape, [k, n])
  t.true(report.layers[0].transposed)
  const node = model.graph.nodes[0]
  const u = unpackHere(initializer(model, node.inputs[1]).data, initializer(model, node.inputs[2]).data, undefined, k, n, 4, 16)
  const wq = dequantizeHere(u, k, n, 16)
  const a = randoms(m * k, 7, 1)
  const out = await runModel(modelToBytes(model), { A: { type: 'float32', data: a, dims: [m, k] } })
  const ref = reference(a, wq, m, k, n)
  for (let i = 0; i < m * n; i++) {
    const bc = Math.fround(0.5 * c[i % n])
    ref.y[i] += bc
    ref.mag[i] += Math.abs(bc)
  }
  checkClose(t, out.Y.data, ref, k + 1, 'Gemm')
  // Transposed storage quantizes the same numbers as the [K, N] weight would.
  const w = new Float32Array(k * n)
  for (let r = 0; r < n; r++) for (let kk = 0; kk < k; kk++) w[kk * n + r] = wt[r * k + kk]
  for (let i = 0; i < w.length; i++) t.true(Math.abs(w[i] - wq[i]) <= u.scales[Math.floor(i / n / 16) * n + (i % n)] / 2 + 1e-7)

  const skipped = await quantizeWeights(build(2), { bits: 4 })
  t.is(skipped.report.layers.length, 0)
  t.deepEqual(skipped.model.graph.nodes.map((x) => x.opType), ['Gemm'])
  t.regex(skipped.report.skipped[0].reason, /alpha=2/)
})

test('the input model is not changed; activation × activation MatMuls are skipped with a reason', async (t) => {
  const { bytes } = matmulModel(32, 8, 2, 3)
  const { loadModel } = require('../dist/onnx/loadModel.js')
  const src = await loadModel(bytes)
  const before = modelToBytes(src)
  await quantizeWeights(src, { bits: 4 })
  t.deepEqual(modelToBytes(src), before)

  const act = buildModel({
    opset: 17,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [2, 32] }, { name: 'B', dataType: FLOAT, dims: [32, 4] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [2, 4] }],
    nodes: [{ opType: 'MatMul', inputs: ['A', 'B'], outputs: ['Y'], name: 'mm' }],
  })
  const r = await quantizeWeights(act, { bits: 8 })
  t.is(r.report.layers.length, 0)
  t.regex(r.report.skipped[0].reason, /not an initializer/)
  t.deepEqual(r.model.graph.nodes.map((x) => x.opType), ['MatMul'])
})

test('bad options are errors naming the option; qdq on a model that cannot reach opset 21 names the blocker', async (t) => {
  const { bytes } = matmulModel(32, 8, 2, 4)
  await t.throwsAsync(quantizeWeights(bytes, { bits: 3 }), { instanceOf: RangeError, message: /bits must be 4 or 8/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, blockSize: 24 }), { instanceOf: RangeError, message: /blockSize .* power of two/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, blockSize: 512 }), { instanceOf: RangeError, message: /blockSize/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, format: 'gguf' }), { instanceOf: RangeError, message: /format/ })
  await t.throwsAsync(quantizeWeights(bytes, { bits: 4, ops: ['Conv'] }), { instanceOf: RangeError, message: /"Conv" is not supported/ })
  const blocked = buildModel({
    opset: 13,
    inputs: [{ name: 'A', dataType: FLOAT, dims: [2, 32] }],
    outputs: [{ name: 'Y', dataType: FLOAT, dims: [2, 8] }],
    initializers: [{ name: 'W', dataType: FLOAT, dims: [32, 8], data: randoms(256, 1) }],
    nodes: [
      { opType: 'MatMul', inputs: ['A', 'W'], outputs: ['h'], name: 'mm' },
      { opType: 'LpNormalization', inputs: ['h'], outputs: ['Y'], name: 'norm' },
    ],
  })
  await t.throwsAsync(quantizeWeights(blocked, { bits: 4, format: 'qdq' }), { instanceOf: ExportError, message: /opset 21.*norm \(LpNormalization\)/s })
  // MatMulNBits needs no opset change.
  const ok = await quantizeWeights(blocked, { bits: 4 })
  t.is(ok.report.opsetAfter, 13)
})
