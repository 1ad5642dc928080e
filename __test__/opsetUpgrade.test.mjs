// src/graph/opset/: every conversion of the opset upgrade proven against onnxruntime-node. Each
// case builds a small model at the old opset, upgrades it to 13 and to 21, and runs both in ORT
// (one thread, graph optimisations off). Outputs must be bit-identical: each conversion keeps the
// computation itself (same kernel on the same data in the same order). The one exception is
// AveragePool at opset ≥ 19, where ORT runs a different kernel (see the case below).
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'
import { assertSameOutputs, floatFeed, random } from './helpers/models.mjs'

const require = createRequire(import.meta.url)
const { loadModel } = require('../dist/onnx/loadModel.js')
const { saveModel } = require('../dist/onnx/saveModel.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { opsetVersion } = require('../dist/graph/model.js')
const { validateGraph } = require('../dist/graph/validateGraph.js')
const { upgradeOpset } = require('../dist/graph/opset/upgradeOpset.js')
const { OPSET_TABLE } = require('../dist/graph/opset/opsetTable.js')

const FLOAT = 1
const INT64 = 7
const f32 = (name, dims, data) => ({ name, dataType: FLOAT, dims, data: Float32Array.from(data) })

/** A one-node model: input x (float, dims or unknown rank), outputs ys. */
function oneNode(opset, op, { dims, inputs = ['x'], outputs = ['y'], attributes = {}, initializers = [], extraInputs = [] } = {}) {
  return buildModel({
    opset,
    inputs: [{ name: 'x', dataType: FLOAT, dims }, ...extraInputs],
    outputs: outputs.map((name) => ({ name, dataType: FLOAT })),
    initializers,
    nodes: [{ opType: op, inputs, outputs, attributes, name: `${op}_node` }],
  })
}

/**
 * Upgrades `bytes` to each target and asserts ORT gives the same outputs as the original.
 * `exact: false` compares within `relTol` of the output's largest magnitude instead.
 */
async function proves(t, bytes, feeds, { targets = [13, 21], exact = true, relTol = 1e-6, label = '' } = {}) {
  const model = await loadModel(bytes)
  const before = await runModel(bytes, feeds)
  const reports = {}
  for (const target of targets) {
    const { model: up, report } = upgradeOpset(model, target)
    t.true(report.upgradable, `${label} → ${target}: ${JSON.stringify(report.blockers)}`)
    t.is(opsetVersion(up), target)
    validateGraph(up)
    const after = await runModel(await saveModel(up), feeds)
    if (exact) {
      assertSameOutputs(t, before, after, `${label} → ${target}`)
    } else {
      for (const name of Object.keys(before)) {
        const a = before[name].data
        const b = after[name].data
        let scale = 0
        let diff = 0
        for (let i = 0; i < a.length; i++) {
          scale = Math.max(scale, Math.abs(a[i]))
          diff = Math.max(diff, Math.abs(a[i] - b[i]))
        }
        t.true(diff <= relTol * scale, `${label} → ${target}: ${name} max |Δ| ${diff} > ${relTol} × ${scale}`)
      }
    }
    reports[target] = { model: up, report }
  }
  return reports
}

const X4 = [2, 3, 4, 5]
const feedX = (dims = X4, seed = 1, scale = 3) => ({ x: floatFeed(dims, seed, scale) })

// ---- Softmax family: axis semantics change at 13 ------------------------------------------------

for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) {
  for (const [label, axis, dims, expectRewrite] of [
    ['default axis 1 on rank 4 (coerced 2-D)', undefined, X4, true],
    ['axis 2 on rank 4', 2, X4, true],
    ['axis 0 on rank 4', 0, X4, true],
    ['axis -2 on rank 4', -2, X4, true],
    ['last axis 3 on rank 4 (same semantics)', 3, X4, false],
    ['axis -1 (same semantics)', -1, X4, false],
    ['default axis on rank 2 (same semantics)', undefined, [6, 7], false],
    ['axis 1 on unknown rank', 1, undefined, true],
  ]) {
    test(`${op}-11 → 13/21: ${label}`, async (t) => {
      const attributes = axis === undefined ? {} : { axis }
      const feeds = feedX(dims ?? X4, 2)
      const r = await proves(t, oneNode(11, op, { dims, attributes }), feeds, { label: `${op} ${label}` })
      const nodes = r[13].model.graph.nodes
      t.deepEqual(nodes.map((n) => n.opType), expectRewrite ? ['Shape', 'Flatten', op, 'Reshape'] : [op])
      const node = nodes.find((n) => n.opType === op)
      t.true(node.attributes.has('axis'), 'axis is explicit after the upgrade (its default changed)')
    })
  }
}

test('Softmax at opset 9 (rank known through MatMul + Add) → last-axis case keeps one node', async (t) => {
  const bytes = buildModel({
    opset: 9,
    inputs: [{ name: 'x', dataType: FLOAT, dims: [2, 3, 4] }],
    outputs: [{ name: 'y', dataType: FLOAT }],
    initializers: [f32('w', [4, 5], Array.from({ length: 20 }, (_, i) => (i % 7) / 7 - 0.4)), f32('b', [5], [0.1, -0.2, 0.3, 0, 0.05])],
    nodes: [
      { opType: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] },
      { opType: 'Add', inputs: ['m', 'b'], outputs: ['a'] },
      { opType: 'Softmax', inputs: ['a'], outputs: ['y'], attributes: { axis: 2 } },
    ],
  })
  const r = await proves(t, bytes, feedX([2, 3, 4], 3), { label: 'Softmax after MatMul' })
  t.deepEqual(r[13].model.graph.nodes.map((n) => n.opType), ['MatMul', 'Add', 'Softmax'])
})

// ---- axes/split attributes become inputs -------------------------------------------------------

test('Squeeze/Unsqueeze-11 axes attribute → input (13)', async (t) => {
  const dims = [2, 1, 3, 1]
  for (const [op, attributes] of [
    ['Squeeze', { axes: [1, -1] }],
    ['Squeeze', {}],
    ['Unsqueeze', { axes: [0, 5] }],
    ['Unsqueeze', { axes: [-1] }],
  ]) {
    const r = await proves(t, oneNode(11, op, { dims, attributes }), feedX(dims, 4), { label: `${op} ${JSON.stringify(attributes)}` })
    const node = r[13].model.graph.nodes[0]
    t.false(node.attributes.has('axes'))
    t.is(node.inputs.length, attributes.axes ? 2 : 1)
  }
})

test('ReduceSum-11 axes → input (13); keepdims and reduce-all kept', async (t) => {
  for (const attributes of [{ axes: [1] }, { axes: [0, -1], keepdims: 0 }, {}, { keepdims: 0 }]) {
    await proves(t, oneNode(11, 'ReduceSum', { dims: X4, attributes }), feedX(X4, 5), { label: `ReduceSum ${JSON.stringify(attributes)}` })
  }
})

for (const op of ['ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSumExp', 'ReduceSumSquare']) {
  test(`${op}-11 and -13 axes → input (18)`, async (t) => {
    for (const opset of [11, 13]) {
      for (const attributes of [{ axes: [-1] }, { axes: [1, 2], keepdims: 0 }, {}]) {
        const feeds = feedX(X4, 6, op === 'ReduceProd' ? 1 : 3)
        const r = await proves(t, oneNode(opset, op, { dims: X4, attributes }), feeds, { label: `${op}-${opset} ${JSON.stringify(attributes)}` })
        t.is(r[21].model.graph.nodes[0].attributes.has('axes'), false)
        // At 13 these ops still take the attribute.
        t.is(r[13].model.graph.nodes[0].attributes.has('axes'), attributes.axes !== undefined)
      }
    }
  })
}

test('Split-11 split attribute → input (13); equal split gets num_outputs (18)', async (t) => {
  const dims = [2, 6, 4]
  const outputs = ['a', 'b', 'c']
  const sized = await proves(t, oneNode(11, 'Split', { dims, outputs, attributes: { axis: 1, split: [1, 2, 3] } }), feedX(dims, 7), { label: 'Split sized' })
  t.is(sized[13].model.graph.nodes[0].inputs.length, 2)
  const equal = await proves(t, oneNode(11, 'Split', { dims, outputs, attributes: { axis: -2 } }), feedX(dims, 8), { label: 'Split equal' })
  t.is(equal[21].model.graph.nodes[0].attributes.get('num_outputs')?.value, 3)
  t.false(equal[13].model.graph.nodes[0].attributes.has('num_outputs'))
})

test('Slice-9 attributes → inputs (10), INT64_MAX ends and negative indices exact', async (t) => {
  const dims = [3, 8, 5]
  for (const attributes of [
    { starts: [1], ends: [9223372036854775807n], axes: [1] },
    { starts: [0, -3], ends: [2, -1] },
    { starts: [-2, 1], ends: [100, 4], axes: [-1, 0] },
  ]) {
    const r = await proves(t, oneNode(9, 'Slice', { dims, attributes }), feedX(dims, 9), { label: `Slice ${attributes.starts}` })
    const node = r[13].model.graph.nodes[0]
    t.deepEqual([...node.attributes.keys()], [])
    const ends = r[13].model.graph.initializers.get(node.inputs[2])
    t.is(ends.data[0], BigInt(attributes.ends[0]))
  }
})

// ---- Clip, Pad: attributes → typed inputs at 11 -------------------------------------------------

test('Clip-9 min/max attributes → inputs (11)', async (t) => {
  const F = (value) => ({ type: 'FLOAT', value })
  for (const attributes of [{ min: F(0), max: F(6) }, { min: F(-0.5) }, { max: F(0.25) }, {}]) {
    await proves(t, oneNode(9, 'Clip', { dims: X4, attributes }), feedX(X4, 10), { label: `Clip ${JSON.stringify(attributes)}` })
  }
  // Clip-6 on double: ORT has no such kernel to prove a conversion against, so it blocks.
  const bytes = buildModel({
    opset: 9,
    inputs: [{ name: 'x', dataType: 11, dims: [5] }],
    outputs: [{ name: 'y', dataType: 11 }],
    nodes: [{ opType: 'Clip', inputs: ['x'], outputs: ['y'], attributes: { min: F(-0.1), max: F(0.3) } }],
  })
  const { report } = upgradeOpset(await loadModel(bytes), 13)
  t.false(report.upgradable)
  t.regex(report.blockers[0].reason, /DOUBLE is not handled/)
})

test('Pad-9 pads/value attributes → inputs (11) for constant, reflect and edge modes', async (t) => {
  const dims = [1, 2, 4, 5]
  for (const attributes of [
    { pads: [0, 0, 1, 2, 0, 0, 2, 1] },
    { pads: [0, 1, 1, 0, 0, 0, 0, 3], value: 1.5 },
    { pads: [0, 0, 2, 1, 0, 0, 1, 2], mode: 'reflect' },
    { pads: [0, 0, 2, 1, 0, 0, 1, 2], mode: 'edge' },
    { pads: [0, 0, -1, 1, 0, 0, 1, -2] },
  ]) {
    await proves(t, oneNode(9, 'Pad', { dims, attributes }), feedX(dims, 11), { label: `Pad ${JSON.stringify(attributes)}` })
  }
})

// ---- Resize and Upsample -------------------------------------------------------------------------

test('Resize-10 → 11+: asymmetric coordinates and Resize-10 nearest rounding (floor up, ceil down)', async (t) => {
  const dims = [1, 2, 5, 7]
  for (const [mode, scales, nearestMode] of [
    ['nearest', [1, 1, 2, 3], 'floor'],
    ['nearest', [1, 1, 1.7, 2.5], 'floor'],
    ['nearest', [1, 1, 0.6, 0.75], 'ceil'],
    ['nearest', [1, 1, 1, 0.45], 'ceil'],
    ['linear', [1, 1, 1.6, 2.2], undefined],
    ['linear', [1, 1, 0.5, 0.7], undefined],
  ]) {
    const bytes = oneNode(10, 'Resize', { dims, inputs: ['x', 's'], attributes: { mode }, initializers: [f32('s', [4], scales)] })
    const r = await proves(t, bytes, feedX(dims, 12), { label: `Resize ${mode} ${scales}` })
    const node = r[13].model.graph.nodes[0]
    const str = (k) => node.attributes.has(k) ? Buffer.from(node.attributes.get(k).value).toString() : undefined
    t.is(str('coordinate_transformation_mode'), 'asymmetric')
    t.is(str('nearest_mode'), nearestMode)
    t.is(node.inputs.length, 3)
  }
})

test('Resize-11 (PP-OCR det form) passes to 13 and 21 unchanged', async (t) => {
  const dims = [1, 2, 3, 4]
  const bytes = oneNode(11, 'Resize', {
    dims,
    inputs: ['x', 'roi', 's'],
    attributes: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' },
    initializers: [f32('roi', [0], []), f32('s', [4], [1, 1, 2, 2])],
  })
  const r = await proves(t, bytes, feedX(dims, 13), { label: 'Resize-11' })
  t.deepEqual(r[21].report.conversions, [])
})

test('Upsample-9 (scales input) and Upsample-7 (scales attribute) → Resize', async (t) => {
  const dims = [1, 2, 3, 4]
  const nine = oneNode(9, 'Upsample', { dims, inputs: ['x', 's'], attributes: { mode: 'nearest' }, initializers: [f32('s', [4], [1, 1, 2, 3])] })
  const r9 = await proves(t, nine, feedX(dims, 14), { label: 'Upsample-9 nearest' })
  t.is(r9[13].model.graph.nodes[0].opType, 'Resize')
  const nineLinear = oneNode(9, 'Upsample', { dims, inputs: ['x', 's'], attributes: { mode: 'linear' }, initializers: [f32('s', [4], [1, 1, 2, 2.5])] })
  await proves(t, nineLinear, feedX(dims, 15), { label: 'Upsample-9 linear' })
  const seven = oneNode(7, 'Upsample', { dims, attributes: { mode: 'nearest', scales: { type: 'FLOATS', value: [1, 1, 3, 2] } } })
  const r7 = await proves(t, seven, feedX(dims, 16), { label: 'Upsample-7' })
  t.is(r7[21].model.graph.nodes[0].opType, 'Resize')
})

test('Resize-10 nearest with scales that both up- and downsample is a blocker', async (t) => {
  const bytes = oneNode(10, 'Resize', { dims: [1, 1, 4, 4], inputs: ['x', 's'], attributes: { mode: 'nearest' }, initializers: [f32('s', [4], [1, 1, 2, 0.5])] })
  const model = await loadModel(bytes)
  const { model: out, report } = upgradeOpset(model, 13)
  t.false(report.upgradable)
  t.is(report.blockers.length, 1)
  t.is(report.blockers[0].opType, 'Resize')
  t.regex(report.blockers[0].reason, /up- and downsample/)
  t.is(opsetVersion(out), 10)
})

// ---- Dropout, BatchNormalization -----------------------------------------------------------------

test('Dropout-9 (ratio attribute) and -11 → 13/21: identity at inference, ratio becomes an input', async (t) => {
  for (const opset of [9, 11]) {
    const r = await proves(t, oneNode(opset, 'Dropout', { dims: X4, attributes: { ratio: 0.3 } }), feedX(X4, 17), { label: `Dropout-${opset}` })
    const node = r[13].model.graph.nodes[0]
    t.false(node.attributes.has('ratio'))
    t.is(r[13].model.graph.initializers.get(node.inputs[1]).data[0], Math.fround(0.3))
  }
})

test('BatchNormalization-7 (spatial = 1) and -9 → 13/21', async (t) => {
  const c = (name, data) => f32(name, [3], data)
  const initializers = [c('g', [0.5, 2, -1]), c('b', [0.1, 0, -0.3]), c('mu', [0.2, -0.1, 0]), c('var', [1.5, 0.25, 4])]
  for (const [opset, attributes] of [[7, { spatial: 1, epsilon: 1e-3 }], [9, { epsilon: 1e-5, momentum: 0.9 }]]) {
    const bytes = oneNode(opset, 'BatchNormalization', { dims: X4, inputs: ['x', 'g', 'b', 'mu', 'var'], attributes, initializers })
    await proves(t, bytes, feedX(X4, 18), { label: `BatchNormalization-${opset}` })
  }
})

test('BatchNormalization-9 listing its training outputs is a blocker (it normalizes with batch statistics)', async (t) => {
  const initializers = ['g', 'b', 'mu', 'var'].map((n) => f32(n, [3], [1, 1, 1, 1].slice(0, 3)))
  const bytes = oneNode(9, 'BatchNormalization', { dims: X4, inputs: ['x', 'g', 'b', 'mu', 'var'], outputs: ['y', 'm', 'v', 'sm', 'sv'], initializers })
  const { report } = upgradeOpset(await loadModel(bytes), 21)
  t.false(report.upgradable)
  t.regex(report.blockers[0].reason, /training-mode outputs/)
})

// ---- TopK, AveragePool ---------------------------------------------------------------------------

test('TopK-9 k attribute → input (10)', async (t) => {
  const dims = [3, 7]
  const bytes = buildModel({
    opset: 9,
    inputs: [{ name: 'x', dataType: FLOAT, dims }],
    outputs: [{ name: 'v', dataType: FLOAT }, { name: 'i', dataType: INT64 }],
    nodes: [{ opType: 'TopK', inputs: ['x'], outputs: ['v', 'i'], attributes: { k: 3, axis: -1 } }],
  })
  await proves(t, bytes, feedX(dims, 19), { label: 'TopK' })
})

test('AveragePool-11 → 19+: ORT switches kernels at 19, equal within 1e-6 relative (not bit-identical)', async (t) => {
  const dims = [1, 4, 6, 10]
  for (const attributes of [
    { kernel_shape: [3, 2], strides: [3, 2], pads: [0, 0, 0, 0], count_include_pad: 0 },
    { kernel_shape: [3, 3], strides: [1, 1], pads: [1, 1, 1, 1], count_include_pad: 1 },
  ]) {
    const bytes = oneNode(11, 'AveragePool', { dims, attributes })
    await proves(t, bytes, feedX(dims, 20), { targets: [13], label: 'AveragePool' })
    await proves(t, bytes, feedX(dims, 20), { targets: [19, 21], exact: false, label: 'AveragePool' })
  }
})

// ---- ops with no change, subgraphs, the model as a whole -----------------------------------------

test('ops whose meaning does not change: a PP-OCR-like opset-9 block is bit-identical at 13 and 21', async (t) => {
  const rnd = random(42)
  const w = (name, dims) => f32(name, dims, Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rnd() - 0.5))
  const bytes = buildModel({
    opset: 9,
    inputs: [{ name: 'x', dataType: FLOAT, dims: [1, 3, 8, 8] }],
    outputs: [{ name: 'y', dataType: FLOAT }, { name: 'shape', dataType: INT64 }, { name: 'up', dataType: FLOAT }],
    initializers: [
      w('cw', [4, 3, 3, 3]), w('cb', [4]), w('tw', [4, 2, 2, 2]), w('fw', [4, 5]), w('fb', [5]),
      f32('three', [], [3]), f32('six', [], [6]), f32('two', [], [2]), f32('half', [], [0.5]),
      { name: 'flat', dataType: INT64, dims: [2], data: BigInt64Array.of(1n, -1n) },
      { name: 'idx', dataType: INT64, dims: [1], data: BigInt64Array.of(1n) },
    ],
    nodes: [
      { opType: 'Conv', inputs: ['x', 'cw', 'cb'], outputs: ['c'], attributes: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], group: 1, dilations: [1, 1] } },
      { opType: 'HardSigmoid', inputs: ['c'], outputs: ['hs'], attributes: { alpha: 0.2, beta: 0.5 } },
      { opType: 'Mul', inputs: ['c', 'hs'], outputs: ['hswish'] },
      { opType: 'Add', inputs: ['hswish', 'three'], outputs: ['a3'] },
      { opType: 'Relu', inputs: ['a3'], outputs: ['r'] },
      { opType: 'Div', inputs: ['r', 'six'], outputs: ['d'] },
      { opType: 'Sub', inputs: ['d', 'half'], outputs: ['s'] },
      { opType: 'Pow', inputs: ['s', 'two'], outputs: ['p'] },
      { opType: 'Sqrt', inputs: ['p'], outputs: ['q'] },
      { opType: 'Sigmoid', inputs: ['q'], outputs: ['sg'] },
      { opType: 'MaxPool', inputs: ['sg'], outputs: ['mp'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
      { opType: 'ConvTranspose', inputs: ['mp', 'tw'], outputs: ['up'], attributes: { kernel_shape: [2, 2], strides: [2, 2] } },
      { opType: 'GlobalAveragePool', inputs: ['up'], outputs: ['gap'] },
      { opType: 'Transpose', inputs: ['mp'], outputs: ['tp'], attributes: { perm: [0, 1, 3, 2] } },
      { opType: 'Reshape', inputs: ['tp', 'flat'], outputs: ['rs'] },
      { opType: 'Shape', inputs: ['rs'], outputs: ['shape'] },
      { opType: 'Cast', inputs: ['shape'], outputs: ['shapef'], attributes: { to: FLOAT } },
      { opType: 'Gather', inputs: ['shapef', 'idx'], outputs: ['g'], attributes: { axis: 0 } },
      { opType: 'Flatten', inputs: ['gap'], outputs: ['gf'], attributes: { axis: 1 } },
      { opType: 'Concat', inputs: ['gf', 'gf'], outputs: ['cc'], attributes: { axis: 1 } },
      { opType: 'Gemm', inputs: ['cc', 'fw', 'fb'], outputs: ['gm'], attributes: { transB: 0 } },
      { opType: 'MatMul', inputs: ['cc', 'fw'], outputs: ['mm'] },
      { opType: 'Add', inputs: ['gm', 'mm'], outputs: ['sum'] },
      { opType: 'Mul', inputs: ['sum', 'g'], outputs: ['y'] },
    ],
  })
  const r = await proves(t, bytes, feedX([1, 3, 8, 8], 21), { label: 'no-change ops' })
  t.deepEqual(r[21].report.conversions, [])
  t.is(r[21].report.addedNodes, 0)
})

test('subgraphs are upgraded with the model (If branches with Squeeze-11 and Softmax-11)', async (t) => {
  const branch = (name, op, attributes) => ({
    type: 'GRAPH',
    value: {
      name,
      inputs: [],
      outputs: [{ name: `${name}_y`, dataType: FLOAT }],
      nodes: [{ opType: op, inputs: ['x'], outputs: [`${name}_y`], attributes, name: `${name}_node` }],
    },
  })
  const bytes = buildModel({
    opset: 11,
    inputs: [{ name: 'x', dataType: FLOAT, dims: [2, 1, 3] }, { name: 'c', dataType: 9, dims: [] }],
    outputs: [{ name: 'y', dataType: FLOAT }],
    nodes: [{
      opType: 'If',
      inputs: ['c'],
      outputs: ['y'],
      attributes: { then_branch: branch('then', 'Squeeze', { axes: [1] }), else_branch: branch('else', 'Softmax', { axis: 0 }) },
    }],
  })
  for (const c of [true, false]) {
    const feeds = { ...feedX([2, 1, 3], 22), c: { type: 'bool', data: Uint8Array.of(c ? 1 : 0), dims: [] } }
    const r = await proves(t, bytes, feeds, { label: `If ${c}` })
    const elseBranch = r[13].model.graph.nodes[0].attributes.get('else_branch').value
    t.deepEqual(elseBranch.nodes.map((n) => n.opType), ['Shape', 'Flatten', 'Softmax', 'Reshape'])
  }
})

test('the pass is pure, sets the IR version the target needs, and never writes opset 10', async (t) => {
  const bytes = oneNode(9, 'Squeeze', { dims: [1, 3], attributes: { axes: [0] } })
  const model = await loadModel(bytes)
  const savedBefore = Buffer.from(await saveModel(model))
  const to13 = upgradeOpset(model, 13)
  const to21 = upgradeOpset(model, 21)
  t.true(Buffer.from(await saveModel(model)).equals(savedBefore), 'input model unchanged')
  t.is(model.graph.nodes[0].inputs.length, 1)
  t.is(to13.model.irVersion, 7)
  t.is(to21.model.irVersion, 10)
  t.is(to21.report.irVersionBefore, 4)
  t.is(to21.report.irVersionAfter, 10)
  t.is(to21.report.fromOpset, 9)
  t.throws(() => upgradeOpset(model, 10), { instanceOf: RangeError, message: /opset 10 is never written/ })
  t.throws(() => upgradeOpset(model, 22), { instanceOf: RangeError })
  // Already at or above the target: returned as is.
  const same = upgradeOpset(to21.model, 13)
  t.true(same.report.upgradable)
  t.is(opsetVersion(same.model), 21)
})

test('an op without a row blocks the upgrade; the model comes back unchanged with every blocker', async (t) => {
  const bytes = buildModel({
    opset: 11,
    inputs: [{ name: 'x', dataType: FLOAT, dims: [2, 3, 4] }],
    outputs: [{ name: 'y', dataType: FLOAT }],
    nodes: [
      { opType: 'Unsqueeze', inputs: ['x'], outputs: ['s'], attributes: { axes: [0] }, name: 'unsq' },
      { opType: 'MeanVarianceNormalization', inputs: ['s'], outputs: ['y'], name: 'mvn' },
    ],
  })
  const model = await loadModel(bytes)
  const { model: out, report } = upgradeOpset(model, 13)
  t.false(report.upgradable)
  t.deepEqual(report.blockers.map((b) => [b.node, b.opType]), [['mvn', 'MeanVarianceNormalization']])
  t.regex(report.blockers[0].reason, /not in the opset upgrade table/)
  t.is(opsetVersion(out), 11)
  t.is(out.graph.nodes[0].attributes.has('axes'), true)
  t.is(out.irVersion, model.irVersion)
  t.not(out, model)
})

test('the table chains versions without gaps and every step goes up', (t) => {
  for (const [op, steps] of Object.entries(OPSET_TABLE)) {
    for (let i = 0; i < steps.length; i++) {
      t.true(steps[i].to > steps[i].from, `${op} step ${i}`)
      if (i > 0) t.is(steps[i].from, steps[i - 1].to, `${op} step ${i} starts where step ${i - 1} ends`)
      t.true(steps[i].to <= 21, `${op} step ${i}`)
      t.truthy(steps[i].change, `${op} step ${i} says what changed`)
    }
  }
})
