// quantkit's layer kernels (Conv, ConvTranspose, Gemm, MatMul) against ONNX Runtime's own
// kernels on one-node models, plus the gradients against ORT through the adjoint identity
// ⟨dW, v⟩ = ⟨dy, conv(x, v)⟩, argument checks, and a speed comparison on a typical 3×3 layer.
//
// Tolerance: |quantkit − ORT| ≤ 1e-5 · max|ORT output| per element. Both sum in float32 in
// different orders (and ORT's MLAS uses FMA like our kernels where the CPU has it), so bit
// equality is not expected.
import test from 'ava'
import { createRequire } from 'node:module'
import { randoms } from './helpers/random.mjs'
import { runModel, SESSION_OPTIONS } from './helpers/ort.mjs'

const require = createRequire(import.meta.url)
const { layers } = require('../dist/layers.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')
const ort = require('onnxruntime-node')

const REL = 1e-5
const size = (dims) => dims.reduce((a, b) => a * b, 1)

// ONNX attribute names from the wrapper's camelCase ones.
function onnxAttributes(attrs) {
  const names = { autoPad: 'auto_pad', kernelShape: 'kernel_shape', outputPadding: 'output_padding', outputShape: 'output_shape', transA: 'transA', transB: 'transB' }
  const out = {}
  for (const [k, v] of Object.entries(attrs ?? {})) {
    const name = names[k] ?? k
    if (k === 'transA' || k === 'transB') out[name] = v ? 1 : 0
    else if (k === 'alpha' || k === 'beta') out[name] = { type: 'FLOAT', value: v }
    else out[name] = v
  }
  return out
}

/** One-node model: inputs are graph inputs (fed), in the order given. */
function oneNode(opType, inputs, attrs, opset = 17) {
  return buildModel({
    opset,
    inputs: inputs.map(([name, dims]) => ({ name, dataType: T.FLOAT, dims })),
    outputs: [{ name: 'y', dataType: T.FLOAT }],
    nodes: [{ opType, inputs: inputs.map(([n]) => n), outputs: ['y'], attributes: onnxAttributes(attrs) }],
  })
}

async function ortRun(opType, named, attrs) {
  const model = oneNode(opType, named.map(([n, t]) => [n, t.dims]), attrs)
  const feeds = Object.fromEntries(named.map(([n, t]) => [n, { type: 'float32', data: t.data, dims: t.dims }]))
  return (await runModel(model, feeds)).y
}

function assertClose(t, got, want, what) {
  t.deepEqual([...got.dims], [...want.dims], `${what}: dims`)
  let scale = 0
  for (const v of want.data) scale = Math.max(scale, Math.abs(v))
  let worst = 0
  let at = -1
  for (let i = 0; i < want.data.length; i++) {
    const d = Math.abs(got.data[i] - want.data[i])
    if (!(d <= worst)) { worst = d; at = i }
  }
  t.true(worst <= REL * scale, `${what}: element ${at} quantkit ${got.data[at]} vs ORT ${want.data[at]} (|diff| ${worst} > ${REL} · ${scale})`)
}

const tensor = (dims, seed) => ({ data: randoms(size(dims), seed), dims })

const CONV_CASES = [
  { x: [2, 3, 7, 9], w: [4, 3, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
  { x: [1, 4, 8, 7], w: [6, 4, 3, 2], attrs: { strides: [2, 2], pads: [0, 1, 2, 0] } },
  { x: [2, 3, 9, 10], w: [5, 3, 3, 3], attrs: { pads: [2, 1, 2, 2], dilations: [2, 2] } },
  { x: [2, 4, 6, 6], w: [6, 2, 3, 3], attrs: { pads: [1, 1, 1, 1], group: 2 } },
  { x: [2, 8, 7, 7], w: [8, 1, 3, 3], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], group: 8 } },
  { x: [1, 4, 6, 5], w: [8, 1, 3, 3], attrs: { pads: [1, 0, 1, 2], dilations: [1, 2], group: 4 } },
  { x: [2, 16, 5, 5], w: [8, 16, 1, 1], attrs: {} },
  { x: [1, 8, 7, 7], w: [4, 8, 1, 1], attrs: { strides: [2, 2] } },
  { x: [1, 3, 7, 7], w: [4, 3, 4, 4], attrs: { strides: [2, 2], autoPad: 'SAME_UPPER' } },
  { x: [1, 3, 7, 7], w: [4, 3, 4, 4], attrs: { strides: [2, 2], autoPad: 'SAME_LOWER' } },
  { x: [1, 3, 8, 9], w: [2, 3, 3, 2], attrs: { strides: [1, 2], autoPad: 'VALID' } },
  { x: [2, 3, 11], w: [4, 3, 3], attrs: { strides: [2], pads: [1, 2], dilations: [2] } },
  { x: [1, 4, 9], w: [4, 1, 5], attrs: { group: 4, autoPad: 'SAME_UPPER' } },
  { x: [1, 32, 28, 28], w: [32, 1, 3, 3], attrs: { group: 32, pads: [1, 1, 1, 1] } },
  { x: [2, 64, 24, 24], w: [64, 64, 3, 3], attrs: { pads: [1, 1, 1, 1] } },
]

for (const [i, c] of CONV_CASES.entries()) {
  test(`Conv ${c.x.join('×')} * ${c.w.join('×')} ${JSON.stringify(c.attrs)} equals ORT`, async (t) => {
    const x = tensor(c.x, 100 + i)
    const w = tensor(c.w, 200 + i)
    const bias = { data: randoms(c.w[0], 300 + i), dims: [c.w[0]] }
    const want = await ortRun('Conv', [['x', x], ['w', w], ['b', bias]], c.attrs)
    assertClose(t, layers.conv(x, w, bias.data, c.attrs), want, 'sync')
    assertClose(t, await layers.convAsync(x, w, bias.data, c.attrs, { threads: 2 }), want, 'async')
    assertClose(t, layers.conv(x, w, bias.data, c.attrs, { threads: 1 }), want, 'one thread')
  })
}

const TRANSPOSE_CASES = [
  { x: [1, 2, 3, 3], w: [2, 3, 3, 3], attrs: { strides: [2, 2] } },
  { x: [2, 4, 4, 5], w: [4, 2, 3, 3], attrs: { strides: [2, 3], pads: [1, 0, 1, 2], outputPadding: [1, 2], group: 2 } },
  { x: [1, 3, 5, 4], w: [3, 2, 3, 3], attrs: { pads: [1, 1, 0, 2], dilations: [2, 2] } },
  { x: [1, 2, 4, 4], w: [2, 3, 3, 3], attrs: { strides: [2, 2], outputShape: [9, 10] } },
  { x: [1, 2, 4, 4], w: [2, 3, 3, 3], attrs: { strides: [2, 2], outputShape: [8, 7] } },
  { x: [1, 2, 4, 4], w: [2, 3, 3, 3], attrs: { strides: [2, 2], outputShape: [8, 7], autoPad: 'SAME_UPPER' } },
  { x: [1, 2, 5, 5], w: [2, 2, 3, 3], attrs: { strides: [2, 2], autoPad: 'SAME_UPPER' } },
  { x: [1, 2, 5, 5], w: [2, 2, 3, 3], attrs: { strides: [2, 2], autoPad: 'SAME_LOWER' } },
  { x: [1, 2, 5, 5], w: [2, 2, 3, 3], attrs: { strides: [2, 2], autoPad: 'VALID' } },
  { x: [1, 4, 5, 5], w: [4, 1, 3, 3], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1], group: 4 } },
  { x: [2, 8, 5, 5], w: [8, 4, 1, 1], attrs: {} },
  { x: [2, 3, 7], w: [3, 2, 4], attrs: { strides: [3], pads: [1, 2], outputPadding: [1] } },
  { x: [2, 32, 16, 16], w: [32, 16, 3, 3], attrs: { strides: [2, 2], pads: [1, 1, 1, 1], outputPadding: [1, 1] } },
]

for (const [i, c] of TRANSPOSE_CASES.entries()) {
  test(`ConvTranspose ${c.x.join('×')} * ${c.w.join('×')} ${JSON.stringify(c.attrs)} equals ORT`, async (t) => {
    const x = tensor(c.x, 400 + i)
    const w = tensor(c.w, 500 + i)
    const m = c.w[1] * (c.attrs.group ?? 1)
    const bias = { data: randoms(m, 600 + i), dims: [m] }
    const want = await ortRun('ConvTranspose', [['x', x], ['w', w], ['b', bias]], c.attrs)
    assertClose(t, layers.convTranspose(x, w, bias.data, c.attrs), want, 'sync')
    assertClose(t, await layers.convTransposeAsync(x, w, bias.data, c.attrs), want, 'async')
  })
}

const GEMM_CASES = [
  { a: [5, 7], b: [7, 4], attrs: {} },
  { a: [5, 7], b: [4, 7], c: [4], attrs: { transB: true } },
  { a: [7, 5], b: [7, 4], c: [5, 1], attrs: { transA: true, alpha: 0.5, beta: 2 } },
  { a: [7, 5], b: [4, 7], c: [5, 4], attrs: { transA: true, transB: true, alpha: -1.5, beta: 0.25 } },
  { a: [64, 300], b: [130, 300], c: [130], attrs: { transB: true } },
]

for (const [i, c] of GEMM_CASES.entries()) {
  test(`Gemm ${c.a.join('×')} · ${c.b.join('×')} ${JSON.stringify(c.attrs)} equals ORT`, async (t) => {
    const a = tensor(c.a, 700 + i)
    const b = tensor(c.b, 800 + i)
    const cc = c.c ? tensor(c.c, 900 + i) : undefined
    const want = await ortRun('Gemm', [['a', a], ['b', b], ...(cc ? [['c', cc]] : [])], c.attrs)
    assertClose(t, layers.gemm(a, b, cc, c.attrs), want, 'sync')
    assertClose(t, await layers.gemmAsync(a, b, cc, c.attrs), want, 'async')
  })
}

const MATMUL_CASES = [
  [[4, 5], [5, 3]],
  [[2, 3, 4, 5], [5, 6]],
  [[2, 1, 4, 5], [3, 5, 6]],
  [[5], [2, 5, 3]],
  [[2, 3, 5], [5]],
  [[3, 4, 5], [3, 5, 2]],
  [[8, 64, 96], [96, 80]],
]

for (const [i, [as, bs]] of MATMUL_CASES.entries()) {
  test(`MatMul ${as.join('×')} · ${bs.join('×')} equals ORT`, async (t) => {
    const a = tensor(as, 1000 + i)
    const b = tensor(bs, 1100 + i)
    const want = await ortRun('MatMul', [['a', a], ['b', b]])
    assertClose(t, layers.matmul(a, b), want, 'sync')
    assertClose(t, await layers.matmulAsync(a, b), want, 'async')
  })
}

const dot = (u, v) => { let s = 0; for (let i = 0; i < u.length; i++) s += u[i] * v[i]; return s }

test('Conv and ConvTranspose gradients satisfy the adjoint identity with ORT forward passes', async (t) => {
  for (const [op, c, fn] of [
    ['Conv', CONV_CASES[3], 'convBackward'],
    ['Conv', CONV_CASES[4], 'convBackward'],
    ['Conv', CONV_CASES[8], 'convBackward'],
    ['ConvTranspose', TRANSPOSE_CASES[1], 'convTransposeBackward'],
    ['ConvTranspose', TRANSPOSE_CASES[4], 'convTransposeBackward'],
  ]) {
    const x = tensor(c.x, 1)
    const w = tensor(c.w, 2)
    const y = await ortRun(op, [['x', x], ['w', w]], c.attrs)
    const dy = randoms(y.data.length, 3)
    const g = layers[fn](x, w, dy, c.attrs)
    const v = tensor(c.w, 4)
    const u = tensor(c.x, 5)
    // ⟨dW, v⟩ = ⟨dy, f(x, v)⟩ and ⟨dx, u⟩ = ⟨dy, f(u, w)⟩ (f is bilinear); Σdy per channel = db.
    const fv = await ortRun(op, [['x', x], ['w', v]], c.attrs)
    const fu = await ortRun(op, [['x', u], ['w', w]], c.attrs)
    const near = (a, b, what) => t.true(Math.abs(a - b) <= 1e-4 * Math.max(1, Math.abs(b)), `${op} ${what}: ${a} vs ${b}`)
    near(dot(g.dw, v.data), dot(dy, fv.data), 'dW')
    near(dot(g.dx, u.data), dot(dy, fu.data), 'dx')
    const m = y.dims[1]
    const plane = y.data.length / (y.dims[0] * m)
    let db0 = 0
    for (let n = 0; n < y.dims[0]; n++) for (let p = 0; p < plane; p++) db0 += dy[n * m * plane + p]
    near(g.db[0], db0, 'db[0]')
    const only = await layers[`${fn}Async`](x, w, dy, c.attrs, { input: false, bias: false })
    t.deepEqual(Object.keys(only), ['dw'])
    t.deepEqual(only.dw, g.dw)
  }
})

test('Gemm and MatMul gradients: a Linear layer (transB) through gemmBackward and matmulBackward', (t) => {
  const x = tensor([6, 5], 1)
  const w = tensor([4, 5], 2)
  const dy = randoms(24, 3)
  const g = layers.gemmBackward(x, w, [4], dy, { transB: true })
  // dW = dyᵀ·x, dx = dy·W, dc = Σ rows of dy.
  for (let o = 0; o < 4; o++) {
    for (let k = 0; k < 5; k++) {
      let s = 0
      for (let r = 0; r < 6; r++) s += dy[r * 4 + o] * x.data[r * 5 + k]
      t.true(Math.abs(g.db[o * 5 + k] - s) < 1e-5, `dW[${o},${k}]`)
    }
    let c = 0
    for (let r = 0; r < 6; r++) c += dy[r * 4 + o]
    t.true(Math.abs(g.dc[o] - c) < 1e-5, `dc[${o}]`)
  }
  // MatMul with the weight stored [K, N]: same numbers transposed.
  const wt = { data: new Float32Array(20), dims: [5, 4] }
  for (let o = 0; o < 4; o++) for (let k = 0; k < 5; k++) wt.data[k * 4 + o] = w.data[o * 5 + k]
  const m = layers.matmulBackward(x, wt, dy)
  for (let o = 0; o < 4; o++) for (let k = 0; k < 5; k++) t.true(Math.abs(m.db[k * 4 + o] - g.db[o * 5 + k]) < 1e-6)
  for (let i = 0; i < 30; i++) t.true(Math.abs(m.da[i] - g.da[i]) < 1e-6)
})

test('arguments are checked and errors name them', async (t) => {
  const x = tensor([1, 4, 5, 5], 1)
  const w = tensor([2, 4, 3, 3], 2)
  t.throws(() => layers.conv({ data: new Float64Array(100), dims: [1, 4, 5, 5] }, w), { instanceOf: TypeError, message: /^x\.data: expected a Float32Array/ })
  t.throws(() => layers.conv({ data: x.data, dims: [1, 4, 5, 4] }, w), { instanceOf: TypeError, message: /^x: dims \[1, 4, 5, 4\] hold 80 elements but data has 100/ })
  t.throws(() => layers.conv(x, w, undefined, { autoPad: 'SAME' }), { instanceOf: RangeError, message: /autoPad/ })
  t.throws(() => layers.conv(x, w, undefined, { strides: [0, 1] }), { instanceOf: RangeError, message: /strides\[0\]/ })
  t.throws(() => layers.conv(x, w, undefined, { outputPadding: [1, 1] }), { instanceOf: TypeError, message: /outputPadding: Conv has no such attribute/ })
  t.throws(() => layers.conv(x, w, new Float32Array(3)), { instanceOf: TypeError, message: /^bias has 3 elements, expected 2/ })
  t.throws(() => layers.conv(x, tensor([2, 3, 3, 3], 3)), { instanceOf: TypeError, message: /^w: has 3 input channels per group/ })
  t.throws(() => layers.conv(x, w, undefined, { pads: [1, 1] }), { instanceOf: RangeError, message: /^attribute pads: has 2 values, expected 4/ })
  t.throws(() => layers.conv(tensor([1, 4, 2, 2], 4), w), { instanceOf: TypeError, message: /empty/ })
  t.throws(() => layers.gemm(tensor([3, 4], 5), tensor([5, 6], 6)), { instanceOf: TypeError, message: /^b: its inner dimension is 5/ })
  t.throws(() => layers.matmul(x, w, { threads: 0 }), { instanceOf: RangeError, message: /opts\.threads/ })
  await t.throwsAsync(layers.convAsync(x, w, new Float32Array(3)), { instanceOf: TypeError, message: /^bias has 3 elements/ })
})

test('speed: Conv 8×64×56×56 * 64×64×3×3 on one thread, quantkit vs ORT (logged, not asserted)', async (t) => {
  const x = tensor([8, 64, 56, 56], 7)
  const w = tensor([64, 64, 3, 3], 8)
  const b = randoms(64, 9)
  const attrs = { pads: [1, 1, 1, 1] }
  const flops = 2 * 8 * 64 * 56 * 56 * 64 * 9
  const reps = Number(process.env.QUANTKIT_BENCH_REPS ?? 3)
  const best = async (fn) => {
    await fn()
    let s = Infinity
    for (let i = 0; i < reps; i++) {
      const t0 = process.hrtime.bigint()
      await fn()
      s = Math.min(s, Number(process.hrtime.bigint() - t0) / 1e9)
    }
    return s
  }
  const ours = await best(() => layers.conv(x, w, b, attrs, { threads: 1 }))
  const model = buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: x.dims }],
    outputs: [{ name: 'y', dataType: T.FLOAT }],
    initializers: [{ name: 'w', dataType: T.FLOAT, dims: w.dims, data: w.data }, { name: 'b', dataType: T.FLOAT, dims: [64], data: b }],
    nodes: [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1] } }],
  })
  const feeds = { x: new ort.Tensor('float32', x.data, x.dims) }
  const results = {}
  for (const level of ['disabled', 'all']) {
    const session = await ort.InferenceSession.create(model, { ...SESSION_OPTIONS, graphOptimizationLevel: level })
    try {
      results[level] = await best(() => session.run(feeds))
    } finally {
      await session.release()
    }
  }
  const g = (s) => (flops / s / 1e9).toFixed(1)
  t.log(`quantkit 1 thread: ${(ours * 1e3).toFixed(1)} ms, ${g(ours)} GFLOP/s`)
  t.log(`ORT 1 thread, optimisations off: ${(results.disabled * 1e3).toFixed(1)} ms, ${g(results.disabled)} GFLOP/s; quantkit/ORT speed ${(results.disabled / ours).toFixed(2)}`)
  t.log(`ORT 1 thread, optimisations all (NCHWc): ${(results.all * 1e3).toFixed(1)} ms, ${g(results.all)} GFLOP/s; quantkit/ORT speed ${(results.all / ours).toFixed(2)}`)
  t.pass()
})
