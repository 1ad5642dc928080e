// Weight SVD and spatial SVD rewrites checked against onnxruntime-node: at full rank the rewritten
// model computes what the original does (≤ 1e-4 relative); truncated, the error is what the
// discarded singular values allow (Eckart–Young). Layer costs hand-computed on a tiny model.
import test from 'ava'
import { createRequire } from 'node:module'
import { randoms } from './helpers/random.mjs'
import { runModel } from './helpers/ort.mjs'

const require = createRequire(import.meta.url)
const { createWeightSvdCompressor, createSpatialSvdCompressor, measureLayerShapes, layerCosts, modelCost, modelToBytes, loadModel } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const size = (dims) => dims.reduce((a, b) => a * b, 1)
const f32 = (name, dims, seed, scale = 1) => ({ name, dataType: T.FLOAT, dims, data: randoms(size(dims), seed, scale) })

function maxRel(got, want) {
  let scale = 0
  let worst = 0
  for (let i = 0; i < want.length; i++) {
    scale = Math.max(scale, Math.abs(want[i]))
    worst = Math.max(worst, Math.abs(got[i] - want[i]))
  }
  return worst / scale
}

async function outputs(bytes, feeds) {
  return (await runModel(bytes, feeds)).y
}

// --- cost arithmetic ------------------------------------------------------------------------

test('layer costs: hand-computed MACs and parameters of Conv (stride, groups), ConvTranspose, Gemm, MatMul', async (t) => {
  // x [N, 3, 10, 12] → convA (3→4, 3×3, stride 2, pads 1) → [N, 4, 5, 6] → convB (4→4, group 2, 3×3, pads 1) → [N, 4, 5, 6]
  //   → deconv (4→2, 2×2, stride 2) → [N, 2, 10, 12];  convB → Flatten → [N, 120] → Gemm (transB, W [10, 120]) → [N, 10]
  //   → MatMul (W [10, 7]) → [N, 7];  seq [N, 5, 8] → MatMul (W [8, 3]) → [N, 5, 3]
  const bytes = buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['N', 3, 10, 12] }, { name: 'seq', dataType: T.FLOAT, dims: ['N', 5, 8] }],
    outputs: [{ name: 'up', dataType: T.FLOAT }, { name: 'm', dataType: T.FLOAT }, { name: 's', dataType: T.FLOAT }],
    initializers: [f32('wa', [4, 3, 3, 3], 1), f32('wb', [4, 2, 3, 3], 2), f32('wt', [4, 2, 2, 2], 3), f32('wg', [10, 120], 4), f32('wm', [10, 7], 5), f32('ws', [8, 3], 6)],
    nodes: [
      { name: 'convA', opType: 'Conv', inputs: ['x', 'wa'], outputs: ['a'], attributes: { strides: [2, 2], pads: [1, 1, 1, 1] } },
      { name: 'convB', opType: 'Conv', inputs: ['a', 'wb'], outputs: ['b'], attributes: { group: 2, pads: [1, 1, 1, 1] } },
      { name: 'deconv', opType: 'ConvTranspose', inputs: ['b', 'wt'], outputs: ['up'], attributes: { strides: [2, 2] } },
      { name: 'flat', opType: 'Flatten', inputs: ['b'], outputs: ['f'] },
      { name: 'fc', opType: 'Gemm', inputs: ['f', 'wg'], outputs: ['g'], attributes: { transB: 1 } },
      { name: 'mm', opType: 'MatMul', inputs: ['g', 'wm'], outputs: ['m'] },
      { name: 'mm3', opType: 'MatMul', inputs: ['seq', 'ws'], outputs: ['s'] },
    ],
  })
  const model = await loadModel(bytes)
  const shapes = await measureLayerShapes(model)
  const costs = Object.fromEntries(layerCosts(model, shapes).map((e) => [e.node, e.cost]))
  t.deepEqual(costs, {
    convA: { memory: 108, mac: 108 * 30 }, // 4·3·3·3 weights, each used at 5·6 output positions
    convB: { memory: 72, mac: 72 * 30 }, // 4·(4/2)·3·3
    deconv: { memory: 32, mac: 32 * 30 }, // 4·2·2·2, each input element (5·6 positions) scatters through all of them
    fc: { memory: 1200, mac: 1200 },
    mm: { memory: 70, mac: 70 },
    mm3: { memory: 24, mac: 24 * 5 }, // 5 rows per sample
  })
  t.deepEqual(modelCost(model, shapes), { memory: 1506, mac: 3240 + 2160 + 960 + 1200 + 70 + 120 })
})

test('weight SVD and spatial SVD price a rank as hand-computed, and skip what they cannot rewrite', async (t) => {
  const bytes = buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [1, 3, 10, 12] }],
    outputs: [{ name: 'c', dataType: T.FLOAT }],
    initializers: [f32('wa', [8, 3, 3, 3], 1), f32('wb', [8, 4, 3, 3], 2), f32('wc', [6, 8, 1, 1], 3)],
    nodes: [
      { name: 'convA', opType: 'Conv', inputs: ['x', 'wa'], outputs: ['a'], attributes: { strides: [2, 2], pads: [1, 1, 1, 1] } },
      { name: 'convB', opType: 'Conv', inputs: ['a', 'wb'], outputs: ['b'], attributes: { group: 2, pads: [1, 1, 1, 1] } },
      { name: 'convC', opType: 'Conv', inputs: ['b', 'wc'], outputs: ['c'] },
    ],
  })
  const w = await createWeightSvdCompressor(bytes)
  t.deepEqual(w.layers.map((l) => l.node), ['convA', 'convC'])
  t.deepEqual(w.skipped.map((s) => s.node), ['convB'])
  t.regex(w.skipped[0].reason, /group 2/)
  // convA: 8·27 weights × 30 positions = 6480 MACs; rank r costs r·(27 + 8) weights at 30 positions.
  // Ratio 0.5: the largest r with 35·r ≤ 108 is 3 → 105 weights, 3150 MACs.
  t.deepEqual(w.rankFor('convA', 0.5), { rank: 3, untouched: false, cost: { memory: 105, mac: 3150 } })
  const base = w.cost({})
  t.deepEqual(w.cost({ convA: 0.5 }), { memory: base.memory - 216 + 105, mac: base.mac - 6480 + 3150 })

  const s = await createSpatialSvdCompressor(bytes, { rankMultiple: 4 })
  t.deepEqual(s.layers.map((l) => l.node), ['convA'])
  t.deepEqual(s.skipped.map((x) => [x.node, /group|1×1/.test(x.reason)]), [['convB', true], ['convC', true]])
  // Spatial SVD of convA: rank r costs r·(3·3) weights in the 3×1 conv, run at output height 5 × input
  // width 12, and r·(8·3) in the 1×3 conv at 5 × 6: MACs r·(9·60 + 24·30) = 1260·r. Ratio 0.5 → 3240:
  // r = 2 (2520), rounded up to the multiple 4 → 5040 MACs, 132 weights.
  t.deepEqual(s.rankFor('convA', 0.5), { rank: 4, untouched: false, cost: { memory: 132, mac: 5040 } })
  // Ratio 0.9: r = 4 (5040 ≤ 5832), already a multiple.
  t.is(s.rankFor('convA', 0.9).rank, 4)
  t.true(s.rankFor('convA', 1).untouched)
})

// --- full-rank rewrites against ORT ------------------------------------------------------------

const CONV_CASES = [
  // Stride 2, asymmetric pads, dilation, bias, non-square kernel.
  { name: '3×2 kernel, stride 2, pads [1,0,2,1], dilation [2,1], bias', x: [2, 5, 13, 11], w: [7, 5, 3, 2], attrs: { strides: [2, 2], pads: [1, 0, 2, 1], dilations: [2, 1] }, bias: true },
  { name: '2×3 kernel, strides [1,2], pads [0,2,1,0], dilation [1,2], no bias', x: [1, 4, 9, 12], w: [6, 4, 2, 3], attrs: { strides: [1, 2], pads: [0, 2, 1, 0], dilations: [1, 2] }, bias: false },
  { name: '3×3 kernel, stride 1, auto_pad VALID, bias', x: [1, 3, 8, 8], w: [5, 3, 3, 3], attrs: { auto_pad: 'VALID' }, bias: true },
]

function convModel(c) {
  return buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: c.x }],
    outputs: [{ name: 'y', dataType: T.FLOAT }],
    initializers: [f32('w', c.w, 11), ...(c.bias ? [f32('b', [c.w[0]], 12)] : [])],
    nodes: [{ name: 'conv', opType: 'Conv', inputs: ['x', 'w', ...(c.bias ? ['b'] : [])], outputs: ['y'], attributes: c.attrs }],
  })
}

for (const c of CONV_CASES) {
  test(`Conv ${c.name}: weight SVD and spatial SVD at full rank match the original in ORT`, async (t) => {
    const bytes = convModel(c)
    const feeds = { x: { type: 'float32', data: randoms(size(c.x), 21), dims: c.x } }
    const want = await outputs(bytes, feeds)
    const [out, cin, kh, kw] = c.w
    for (const [create, full, ops] of [
      [createWeightSvdCompressor, Math.min(out, cin * kh * kw), [[kh, kw], [1, 1]]],
      [createSpatialSvdCompressor, Math.min(cin * kh, out * kw), [[kh, 1], [1, kw]]],
    ]) {
      const comp = await create(bytes)
      t.is(comp.layers[0].full, full)
      const { model } = await comp.compressRanks({ conv: full })
      const convs = model.graph.nodes.filter((n) => n.opType === 'Conv')
      t.deepEqual(convs.map((n) => n.attributes.get('kernel_shape').value.map(Number)), ops, comp.scheme)
      t.false(model.graph.initializers.has('w'), 'the replaced weight is dropped')
      const got = await outputs(modelToBytes(model), feeds)
      t.deepEqual(got.dims, want.dims, `${comp.scheme}: output shape`)
      const rel = maxRel(got.data, want.data)
      t.true(rel <= 1e-4, `${comp.scheme}: max relative error ${rel}`)
    }
  })
}

const DENSE_CASES = [
  { name: 'Gemm transB=1, alpha, beta, C', op: 'Gemm', x: [4, 12], w: [9, 12], attrs: { transB: 1, alpha: { type: 'FLOAT', value: 0.7 }, beta: { type: 'FLOAT', value: 1.3 } }, c: [9] },
  { name: 'Gemm transA=1, transB=0', op: 'Gemm', x: [12, 4], w: [12, 9], attrs: { transA: 1 }, c: [4, 9] },
  { name: 'MatMul [2, 3, 12] · [12, 9]', op: 'MatMul', x: [2, 3, 12], w: [12, 9], attrs: {} },
]

function denseModel(c) {
  return buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: c.x }],
    outputs: [{ name: 'y', dataType: T.FLOAT }],
    initializers: [f32('w', c.w, 31), ...(c.c ? [f32('c', c.c, 32)] : [])],
    nodes: [{ name: 'fc', opType: c.op, inputs: ['x', 'w', ...(c.c ? ['c'] : [])], outputs: ['y'], attributes: c.attrs }],
  })
}

for (const c of DENSE_CASES) {
  test(`${c.name}: weight SVD at full rank matches the original in ORT`, async (t) => {
    const bytes = denseModel(c)
    const feeds = { x: { type: 'float32', data: randoms(size(c.x), 41), dims: c.x } }
    const want = await outputs(bytes, feeds)
    const comp = await createWeightSvdCompressor(bytes)
    t.is(comp.layers[0].full, 9)
    const { model } = await comp.compressRanks({ fc: 9 })
    t.deepEqual(model.graph.nodes.map((n) => n.opType), [c.op, c.op])
    const got = await outputs(modelToBytes(model), feeds)
    t.deepEqual(got.dims, want.dims)
    const rel = maxRel(got.data, want.data)
    t.true(rel <= 1e-4, `max relative error ${rel}`)
  })
}

// --- truncation error (Eckart–Young) -------------------------------------------------------------

function singularValuesOf(w, rows, cols) {
  const { singularValues } = require('../dist/linalg.js')
  return singularValues(w, rows, cols)
}

test('truncated MatMul: each output row errs by at most ‖x‖·σ_{r+1}, and ‖W − W_r‖_F² = Σ_{i>r} σ_i²', async (t) => {
  const K = 12
  const N = 9
  const r = 4
  const c = { op: 'MatMul', x: [16, K], w: [K, N], attrs: {} }
  const bytes = denseModel(c)
  const x = randoms(16 * K, 51)
  const want = await outputs(bytes, { x: { type: 'float32', data: x, dims: c.x } })
  const comp = await createWeightSvdCompressor(bytes)
  const { model } = await comp.compressRanks({ fc: r })
  const got = await outputs(modelToBytes(model), { x: { type: 'float32', data: x, dims: c.x } })
  const w = (await loadModel(bytes)).graph.initializers.get('w').data
  const sigma = await singularValuesOf(w, K, N)
  // W_r from the two factors the rewrite wrote, multiplied here.
  const [a, b] = model.graph.nodes.map((n) => model.graph.initializers.get(n.inputs[1]))
  t.deepEqual([a.dims, b.dims], [[K, r], [r, N]])
  let frob2 = 0
  for (let i = 0; i < K; i++) {
    for (let j = 0; j < N; j++) {
      let s = 0
      for (let k = 0; k < r; k++) s += a.data[i * r + k] * b.data[k * N + j]
      frob2 += (w[i * N + j] - s) ** 2
    }
  }
  const tail2 = [...sigma].slice(r).reduce((s, v) => s + v * v, 0)
  t.true(Math.abs(frob2 - tail2) <= 1e-4 * tail2, `‖W − W_r‖_F² ${frob2} vs Σ σ² ${tail2}`)
  let worstShare = 0
  for (let row = 0; row < 16; row++) {
    let xn = 0
    let en = 0
    for (let k = 0; k < K; k++) xn += x[row * K + k] ** 2
    for (let j = 0; j < N; j++) en += (got.data[row * N + j] - want.data[row * N + j]) ** 2
    const bound = Math.sqrt(xn) * sigma[r]
    t.true(Math.sqrt(en) <= bound * (1 + 1e-4) + 1e-6, `row ${row}: error ${Math.sqrt(en)} > bound ${bound}`)
    worstShare = Math.max(worstShare, Math.sqrt(en) / bound)
  }
  t.true(worstShare > 0.1, `the bound is not vacuous: the worst row reaches ${worstShare} of it`)
})

test('truncated Gemm (transB): output error within ‖x‖·σ_{r+1} per row', async (t) => {
  const c = { op: 'Gemm', x: [16, 12], w: [9, 12], attrs: { transB: 1 }, c: [9] }
  const bytes = denseModel(c)
  const x = randoms(16 * 12, 61)
  const want = await outputs(bytes, { x: { type: 'float32', data: x, dims: c.x } })
  const comp = await createWeightSvdCompressor(bytes)
  const r = 3
  const { model } = await comp.compressRanks({ fc: r })
  const got = await outputs(modelToBytes(model), { x: { type: 'float32', data: x, dims: c.x } })
  const sigma = await singularValuesOf((await loadModel(bytes)).graph.initializers.get('w').data, 9, 12)
  let total = 0
  for (let row = 0; row < 16; row++) {
    let xn = 0
    let en = 0
    for (let k = 0; k < 12; k++) xn += x[row * 12 + k] ** 2
    for (let j = 0; j < 9; j++) en += (got.data[row * 9 + j] - want.data[row * 9 + j]) ** 2
    t.true(Math.sqrt(en) <= Math.sqrt(xn) * sigma[r] * (1 + 1e-4) + 1e-6, `row ${row}`)
    total += en
  }
  t.true(total > 0, 'rank 3 of 9 changes the output')
})

test('truncated Conv (spatial SVD): ‖W − W_r‖_F² over the (in·kh)×(out·kw) matrix equals the discarded σ²', async (t) => {
  const c = CONV_CASES[0]
  const bytes = convModel(c)
  const [out, cin, kh, kw] = c.w
  const comp = await createSpatialSvdCompressor(bytes)
  const r = 5
  const { model } = await comp.compressRanks({ conv: r })
  const [v, h] = model.graph.nodes.map((n) => model.graph.initializers.get(n.inputs[1]))
  t.deepEqual([v.dims, h.dims], [[r, cin, kh, 1], [out, r, 1, kw]])
  const w = (await loadModel(bytes)).graph.initializers.get('w').data
  // W_r[o,c,i,j] = Σ_k H[o,k,0,j]·V[k,c,i,0], compared with W in its own layout.
  let frob2 = 0
  const m = new Float32Array(cin * kh * out * kw)
  for (let o = 0; o < out; o++) for (let ci = 0; ci < cin; ci++) for (let i = 0; i < kh; i++) for (let j = 0; j < kw; j++) {
    let s = 0
    for (let k = 0; k < r; k++) s += h.data[(o * r + k) * kw + j] * v.data[(k * cin + ci) * kh + i]
    const wv = w[((o * cin + ci) * kh + i) * kw + j]
    frob2 += (wv - s) ** 2
    m[(ci * kh + i) * out * kw + o * kw + j] = wv
  }
  const sigma = await singularValuesOf(m, cin * kh, out * kw)
  const tail2 = [...sigma].slice(r).reduce((s, x) => s + x * x, 0)
  t.true(Math.abs(frob2 - tail2) <= 1e-4 * tail2, `‖W − W_r‖_F² ${frob2} vs Σ σ² ${tail2}`)
})

test('ratio 1 leaves every layer as it is: same nodes, same outputs in ORT', async (t) => {
  const c = CONV_CASES[0]
  const bytes = convModel(c)
  const feeds = { x: { type: 'float32', data: randoms(size(c.x), 71), dims: c.x } }
  for (const create of [createWeightSvdCompressor, createSpatialSvdCompressor]) {
    const comp = await create(bytes)
    const { model, details } = await comp.compressAll({ conv: 1 })
    t.deepEqual(model.graph.nodes.map((n) => n.name), ['conv'])
    t.regex(details[0].notes[0], /ratio 1/)
    t.deepEqual(details[0].costAfter, details[0].costBefore)
    const [got, want] = await Promise.all([outputs(modelToBytes(model), feeds), outputs(bytes, feeds)])
    t.deepEqual([...got.data], [...want.data])
  }
})
