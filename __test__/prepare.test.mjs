// prepareModel on small built models: every case is compared with ONNX Runtime's outputs of the
// unprepared model (graph optimisations off, one thread), and the report and names are checked.
import test from 'ava'
import { createRequire } from 'node:module'
import { bnInputs, bnParams, built, compareOutputs, f32, feed, T, tensor } from './helpers/prepare.mjs'

const require = createRequire(import.meta.url)
const { prepareModel } = require('../dist/graph/prepare/prepareModel.js')
const { saveModel } = require('../dist/onnx/saveModel.js')
const { GraphError } = require('../dist/errors.js')

const TOL = 1e-5
const io = (name, dims) => ({ name, dataType: T.FLOAT, dims })

async function prepareAndCompare(t, spec, inputDims, opts) {
  const original = await built(spec)
  const before = await saveModel(original)
  const { model, report } = await prepareModel(original, opts)
  t.deepEqual(await saveModel(original), before, 'prepareModel must not change its input')
  const feeds = Object.fromEntries(Object.entries(inputDims).map(([name, dims], i) => [name, feed(dims, 100 + i)]))
  const err = await compareOutputs(original, model, feeds)
  t.true(err <= TOL, `max relative error ${err}`)
  return { model, report, original }
}

const ops = (m) => m.graph.nodes.map((n) => n.opType)

for (const [label, withBias] of [['with bias', true], ['without bias', false]]) {
  test(`BN after Conv ${label}: folded, Conv keeps its weight name`, async (t) => {
    const { model, report } = await prepareAndCompare(t, {
      opset: 13,
      inputs: [io('x', [1, 4, 6, 6])],
      outputs: [io('y', [1, 6, 6, 6])],
      initializers: [f32('W', [6, 4, 3, 3], 1), ...(withBias ? [f32('b', [6], 2)] : []), ...bnParams('bn', 6, 3)],
      nodes: [
        { name: 'conv', opType: 'Conv', inputs: ['x', 'W', ...(withBias ? ['b'] : [])], outputs: ['c'], attributes: { pads: [1, 1, 1, 1] } },
        { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c', 'bn'), outputs: ['n'], attributes: { epsilon: { type: 'FLOAT', value: 1e-3 } } },
        { name: 'relu', opType: 'Relu', inputs: ['n'], outputs: ['y'] },
      ],
    }, { x: [1, 4, 6, 6] })
    t.deepEqual(ops(model), ['Conv', 'Relu'])
    const conv = model.graph.nodes[0]
    const biasName = withBias ? 'b' : 'conv.bias'
    t.deepEqual(conv.inputs, ['x', 'W', biasName])
    t.deepEqual(model.graph.nodes[1].inputs, ['c'], 'readers of the BN output read the Conv output')
    t.deepEqual([...model.graph.initializers.keys()].sort(), ['W', biasName].sort(), 'BN parameters are gone')
    t.is(report.foldedBatchNorms.length, 1)
    const f = report.foldedBatchNorms[0]
    t.like(f, { bn: 'bn', into: 'conv', position: 'after', weight: 'W', bias: biasName, epsilon: Math.fround(1e-3) })
    t.is(f.gamma.length, 6)
    t.is(report.removedNodes, 1)
    t.deepEqual(report.opsBefore, { BatchNormalization: 1, Conv: 1, Relu: 1 })
    t.deepEqual(report.opsAfter, { Conv: 1, Relu: 1 })
  })
}

test('BN after a depthwise Conv (group = channels)', async (t) => {
  const { report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 4, 5, 5])],
    outputs: [io('y', [1, 4, 5, 5])],
    initializers: [f32('W', [4, 1, 3, 3], 1), f32('b', [4], 2), ...bnParams('bn', 4, 3)],
    nodes: [
      { name: 'dw', opType: 'Conv', inputs: ['x', 'W', 'b'], outputs: ['c'], attributes: { group: 4, pads: [1, 1, 1, 1] } },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c', 'bn'), outputs: ['y'] },
    ],
  }, { x: [1, 4, 5, 5] })
  t.is(report.foldedBatchNorms.length, 1)
})

for (const group of [1, 2]) {
  test(`BN after ConvTranspose, group ${group} (output channels on weight axis 1)`, async (t) => {
    // W: [C_in = 4, C_out / group = 3, 2, 2] → 3·group output channels.
    const m = 3 * group
    const { model, report } = await prepareAndCompare(t, {
      opset: 13,
      inputs: [io('x', [1, 4, 3, 3])],
      outputs: [io('y', [1, m, 6, 6])],
      initializers: [f32('W', [4, 3, 2, 2], 1), ...bnParams('bn', m, 3)],
      nodes: [
        { name: 'up', opType: 'ConvTranspose', inputs: ['x', 'W'], outputs: ['c'], attributes: { group, strides: [2, 2] } },
        { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c', 'bn'), outputs: ['n'] },
        { name: 'act', opType: 'Sigmoid', inputs: ['n'], outputs: ['y'] },
      ],
    }, { x: [1, 4, 3, 3] })
    t.is(report.foldedBatchNorms.length, 1)
    t.deepEqual(model.graph.nodes[0].inputs, ['x', 'W', 'up.bias'])
  })
}

for (const transB of [0, 1]) {
  test(`BN after Gemm, transB ${transB}, alpha and beta ≠ 1`, async (t) => {
    const { model, report } = await prepareAndCompare(t, {
      opset: 13,
      inputs: [io('x', [3, 5])],
      outputs: [io('y', [3, 4])],
      initializers: [f32('B', transB ? [4, 5] : [5, 4], 1), f32('C', [4], 2), ...bnParams('bn', 4, 3)],
      nodes: [
        { name: 'fc', opType: 'Gemm', inputs: ['x', 'B', 'C'], outputs: ['g'], attributes: { transB, alpha: 0.5, beta: { type: 'FLOAT', value: 2 } } },
        { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('g', 'bn'), outputs: ['y'] },
      ],
    }, { x: [3, 5] })
    t.is(report.foldedBatchNorms.length, 1)
    t.deepEqual(ops(model), ['Gemm'])
    t.deepEqual(model.graph.nodes[0].inputs, ['x', 'B', 'C'])
    t.is(model.graph.nodes[0].attributes.get('beta').value, 1)
  })
}

test('BN after MatMul with a constant weight and a 2-D input becomes a Gemm, as in AIMET', async (t) => {
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [3, 5])],
    outputs: [io('y', [3, 4])],
    initializers: [f32('W', [5, 4], 1), ...bnParams('bn', 4, 3)],
    nodes: [
      { name: 'MatMul_0', opType: 'MatMul', inputs: ['x', 'W'], outputs: ['m'] },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('m', 'bn'), outputs: ['y'] },
    ],
  }, { x: [3, 5] })
  t.deepEqual(ops(model), ['Gemm'])
  t.deepEqual(model.graph.nodes[0].inputs, ['x', 'W', 'Gemm_0.bias'])
  t.like(report.foldedBatchNorms[0], { into: 'Gemm_0', weight: 'W' })
})

test('BN after MatMul with a 3-D input is left alone (BN normalizes axis 1, MatMul writes the last)', async (t) => {
  const { report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [2, 4, 5])],
    outputs: [io('y', [2, 4, 4])],
    initializers: [f32('W', [5, 4], 1), ...bnParams('bn', 4, 3)],
    nodes: [
      { name: 'mm', opType: 'MatMul', inputs: ['x', 'W'], outputs: ['m'] },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('m', 'bn'), outputs: ['y'] },
    ],
  }, { x: [2, 4, 5] })
  t.is(report.foldedBatchNorms.length, 0)
  t.true(report.notes.some((n) => /"bn" not folded.*not known to be 2-D/.test(n)), report.notes.join('\n'))
})

test('a BN whose output is a graph output: the Conv takes over the output name', async (t) => {
  const { model } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y', [1, 3, 4, 4])],
    initializers: [f32('W', [3, 2, 1, 1], 1), ...bnParams('bn', 3, 3)],
    nodes: [
      { name: 'conv', opType: 'Conv', inputs: ['x', 'W'], outputs: ['c'] },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c', 'bn'), outputs: ['y'] },
    ],
  }, { x: [1, 2, 4, 4] })
  t.deepEqual(model.graph.nodes.map((n) => [n.name, n.outputs]), [['conv', ['y']]])
  t.deepEqual(model.graph.outputs.map((o) => o.name), ['y'])
})

test('a shared weight is not folded (either BN), and the note says why', async (t) => {
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y1', [1, 3, 4, 4]), io('y2', [1, 3, 4, 4])],
    initializers: [f32('W', [3, 2, 1, 1], 1), ...bnParams('bn1', 3, 3), ...bnParams('bn2', 3, 7)],
    nodes: [
      { name: 'conv1', opType: 'Conv', inputs: ['x', 'W'], outputs: ['c1'] },
      { name: 'bn1', opType: 'BatchNormalization', inputs: bnInputs('c1', 'bn1'), outputs: ['y1'] },
      { name: 'conv2', opType: 'Conv', inputs: ['x', 'W'], outputs: ['c2'] },
      { name: 'bn2', opType: 'BatchNormalization', inputs: bnInputs('c2', 'bn2'), outputs: ['y2'] },
    ],
  }, { x: [1, 2, 4, 4] })
  t.is(report.foldedBatchNorms.length, 0)
  t.is(ops(model).filter((o) => o === 'BatchNormalization').length, 2)
  t.true(report.notes.some((n) => /"bn1" not folded.*"W" is shared with "conv2"/.test(n)), report.notes.join('\n'))
})

test('a Conv output read by the BN and another node is not folded', async (t) => {
  const { report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y', [1, 3, 4, 4]), io('z', [1, 3, 4, 4])],
    initializers: [f32('W', [3, 2, 1, 1], 1), ...bnParams('bn', 3, 3)],
    nodes: [
      { name: 'conv', opType: 'Conv', inputs: ['x', 'W'], outputs: ['c'] },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c', 'bn'), outputs: ['y'] },
      { name: 'side', opType: 'Relu', inputs: ['c'], outputs: ['z'] },
    ],
  }, { x: [1, 2, 4, 4] })
  t.is(report.foldedBatchNorms.length, 0)
})

test('BN before an unpadded Conv folds forward (groups too); before a padded Conv it stays', async (t) => {
  const spec = (pads, group) => ({
    opset: 13,
    inputs: [io('x', [1, 4, 5, 5])],
    outputs: [io('y', pads[0] ? [1, 6, 5, 5] : [1, 6, 3, 3])],
    initializers: [f32('W', [6, 4 / group, 3, 3], 1), f32('b', [6], 2), ...bnParams('bn', 4, 3)],
    nodes: [
      { name: 'act', opType: 'Relu', inputs: ['x'], outputs: ['r'] },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('r', 'bn'), outputs: ['n'] },
      { name: 'conv', opType: 'Conv', inputs: ['n', 'W', 'b'], outputs: ['y'], attributes: { pads, group } },
    ],
  })
  for (const group of [1, 2]) {
    const { model, report } = await prepareAndCompare(t, spec([0, 0, 0, 0], group), { x: [1, 4, 5, 5] })
    t.like(report.foldedBatchNorms[0], { bn: 'bn', into: 'conv', position: 'before', weight: 'W', bias: 'b' })
    t.deepEqual(model.graph.nodes[1].inputs, ['r', 'W', 'b'])
  }
  const { report } = await prepareAndCompare(t, spec([1, 1, 1, 1], 1), { x: [1, 4, 5, 5] })
  t.is(report.foldedBatchNorms.length, 0)
  t.true(report.notes.some((n) => /"bn" not folded.*pads its input/.test(n)), report.notes.join('\n'))
})

test('Identity chains go, on activations and on weights; a graph output keeps its name', async (t) => {
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y', [1, 3, 4, 4])],
    initializers: [f32('W0', [3, 2, 1, 1], 1)],
    nodes: [
      { name: 'i1', opType: 'Identity', inputs: ['x'], outputs: ['a'] },
      { name: 'i2', opType: 'Identity', inputs: ['a'], outputs: ['b'] },
      { name: 'iw', opType: 'Identity', inputs: ['W0'], outputs: ['W'] },
      { name: 'conv', opType: 'Conv', inputs: ['b', 'W'], outputs: ['c'] },
      { name: 'i3', opType: 'Identity', inputs: ['c'], outputs: ['d'] },
      { name: 'i4', opType: 'Identity', inputs: ['d'], outputs: ['y'] },
    ],
  }, { x: [1, 2, 4, 4] })
  t.deepEqual(model.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs]), [['Conv', ['x', 'W0'], ['y']]])
  t.is(report.removedIdentities, 5)
})

test('Dropout goes when its mask is unused and stays (with a note) when the mask is read', async (t) => {
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [2, 3])],
    outputs: [io('y', [2, 3]), { name: 'm', dataType: T.FLOAT, dims: [2, 3] }],
    initializers: [tensor('ratio', [], [0.3])],
    nodes: [
      { name: 'drop1', opType: 'Dropout', inputs: ['x', 'ratio'], outputs: ['a'] },
      { name: 'relu', opType: 'Relu', inputs: ['a'], outputs: ['r'] },
      { name: 'drop2', opType: 'Dropout', inputs: ['r'], outputs: ['y', 'mask'] },
      { name: 'cast', opType: 'Cast', inputs: ['mask'], outputs: ['m'], attributes: { to: T.FLOAT } },
    ],
  }, { x: [2, 3] })
  t.deepEqual(ops(model), ['Relu', 'Dropout', 'Cast'])
  t.is(report.removedIdentities, 1)
  t.false(model.graph.initializers.has('ratio'), 'the removed Dropout\'s ratio is pruned')
  t.true(report.notes.some((n) => /Dropout "drop2" kept: its mask output "mask" is used/.test(n)))
})

test('Mul and Add by per-channel constants fold into the Conv before them', async (t) => {
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y', [1, 3, 4, 4])],
    initializers: [f32('W', [3, 2, 3, 3], 1), f32('b', [3], 2), f32('s', [1, 3, 1, 1], 3), f32('o', [3, 1, 1], 4), f32('k', [1], 5), tensor('d', [], [1.5])],
    nodes: [
      { name: 'conv', opType: 'Conv', inputs: ['x', 'W', 'b'], outputs: ['c'], attributes: { pads: [1, 1, 1, 1] } },
      { name: 'mul', opType: 'Mul', inputs: ['c', 's'], outputs: ['m'] },
      { name: 'add', opType: 'Add', inputs: ['o', 'm'], outputs: ['a'] },
      { name: 'mulk', opType: 'Mul', inputs: ['k', 'a'], outputs: ['k2'] },
      { name: 'sub', opType: 'Sub', inputs: ['k2', 'o'], outputs: ['s2'] },
      { name: 'div', opType: 'Div', inputs: ['s2', 'd'], outputs: ['y'] },
    ],
  }, { x: [1, 2, 4, 4] })
  t.deepEqual(ops(model), ['Conv'])
  t.deepEqual(model.graph.nodes[0].inputs, ['x', 'W', 'b'])
  t.deepEqual(model.graph.nodes[0].outputs, ['y'])
  t.is(report.foldedMulAdd, 5)
})

test('Add by a per-channel constant gives a bias-less ConvTranspose a bias; Gemm takes [N] constants', async (t) => {
  const { report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 4, 3, 3]), io('v', [2, 5])],
    outputs: [io('y', [1, 6, 6, 6]), io('z', [2, 4])],
    initializers: [f32('W', [4, 3, 2, 2], 1), f32('o', [1, 6, 1, 1], 2), f32('B', [4, 5], 3), f32('s', [4], 4)],
    nodes: [
      { name: 'up', opType: 'ConvTranspose', inputs: ['x', 'W'], outputs: ['c'], attributes: { group: 2, strides: [2, 2] } },
      { name: 'add', opType: 'Add', inputs: ['c', 'o'], outputs: ['y'] },
      { name: 'fc', opType: 'Gemm', inputs: ['v', 'B'], outputs: ['g'], attributes: { transB: 1 } },
      { name: 'mul', opType: 'Mul', inputs: ['g', 's'], outputs: ['z'] },
    ],
  }, { x: [1, 4, 3, 3], v: [2, 5] })
  t.is(report.foldedMulAdd, 2)
})

test('Mul/Add folds refused where the algebra is not per-channel or the output is shared', async (t) => {
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y1', [1, 3, 4, 4]), io('y2', [1, 3, 4, 4]), io('y3', [1, 3, 4, 4]), io('y4', [1, 3, 4, 4])],
    initializers: [f32('W1', [3, 2, 1, 1], 1), f32('W2', [3, 2, 1, 1], 2), f32('W3', [3, 2, 1, 1], 3), f32('sp', [1, 1, 4, 4], 4), f32('k', [1], 5)],
    nodes: [
      // constant varies over space, not channels
      { name: 'conv1', opType: 'Conv', inputs: ['x', 'W1'], outputs: ['c1'] },
      { name: 'mul1', opType: 'Mul', inputs: ['c1', 'sp'], outputs: ['y1'] },
      // constant on the left of a Sub: k − conv is not a bias change
      { name: 'conv2', opType: 'Conv', inputs: ['x', 'W2'], outputs: ['c2'] },
      { name: 'sub2', opType: 'Sub', inputs: ['k', 'c2'], outputs: ['y2'] },
      // the Conv output has two readers
      { name: 'conv3', opType: 'Conv', inputs: ['x', 'W3'], outputs: ['c3'] },
      { name: 'add3', opType: 'Add', inputs: ['c3', 'k'], outputs: ['y3'] },
      { name: 'relu3', opType: 'Relu', inputs: ['c3'], outputs: ['y4'] },
    ],
  }, { x: [1, 2, 4, 4] })
  t.is(report.foldedMulAdd, 0)
  t.is(model.graph.nodes.length, 7)
  t.true(report.notes.some((n) => /Mul "mul1" after Conv "conv1" not folded: constant dims \[1,1,4,4\] vary along output axis 2/.test(n)), report.notes.join('\n'))
  t.true(report.notes.some((n) => /Sub "sub2" .*left operand/.test(n)), report.notes.join('\n'))
})

test('Constant nodes become initializers named by their output; weight-only constant chains are evaluated', async (t) => {
  const wT = f32('wt', [3, 3, 2, 4], 1) // a Conv weight stored as [kH, kW, C, M]
  const { model, report } = await prepareAndCompare(t, {
    opset: 13,
    inputs: [io('x', [1, 2, 5, 5])],
    outputs: [io('y', [1, 4, 5, 5]), io('shape_out', [1, 100])],
    nodes: [
      { name: 'cw', opType: 'Constant', inputs: [], outputs: ['w_hwcm'], attributes: { value: wT } },
      { name: 'tw', opType: 'Transpose', inputs: ['w_hwcm'], outputs: ['w_mchw'], attributes: { perm: [3, 2, 0, 1] } },
      { name: 'cb', opType: 'Constant', inputs: [], outputs: ['b_raw'], attributes: { value_floats: [0.5, -1, 2, 0.25] } },
      { name: 'cs', opType: 'Constant', inputs: [], outputs: ['two'], attributes: { value_float: { type: 'FLOAT', value: 2 } } },
      { name: 'mb', opType: 'Mul', inputs: ['b_raw', 'two'], outputs: ['b'] },
      { name: 'conv', opType: 'Conv', inputs: ['x', 'w_mchw', 'b'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1] } },
      // Shape arithmetic is not a weight: the Reshape's shape stays a (converted) initializer, its Cast stays a node.
      { name: 'cshape', opType: 'Constant', inputs: [], outputs: ['shape32'], attributes: { value: tensor('', [2], [1, 100], T.INT64) } },
      { name: 'castshape', opType: 'Cast', inputs: ['shape32'], outputs: ['shape'], attributes: { to: T.INT64 } },
      { name: 'flat', opType: 'Reshape', inputs: ['y', 'shape'], outputs: ['shape_out'] },
    ],
  }, { x: [1, 2, 5, 5] })
  t.is(report.constantsToInitializers, 4)
  t.is(report.foldedConstants, 2)
  t.deepEqual(ops(model), ['Conv', 'Cast', 'Reshape'])
  t.deepEqual(model.graph.nodes[0].inputs, ['x', 'w_mchw', 'b'])
  t.deepEqual(model.graph.initializers.get('w_mchw').dims, [4, 2, 3, 3])
  t.deepEqual([...model.graph.initializers.keys()].sort(), ['b', 'shape32', 'w_mchw'])
})

test('options: passes, skip, and unknown pass names; invalid input is refused', async (t) => {
  const spec = {
    opset: 13,
    inputs: [io('x', [1, 2, 4, 4])],
    outputs: [io('y', [1, 3, 4, 4])],
    initializers: [f32('W', [3, 2, 1, 1], 1), ...bnParams('bn', 3, 3)],
    nodes: [
      { name: 'i', opType: 'Identity', inputs: ['x'], outputs: ['a'] },
      { name: 'conv', opType: 'Conv', inputs: ['a', 'W'], outputs: ['c'] },
      { name: 'bn', opType: 'BatchNormalization', inputs: bnInputs('c', 'bn'), outputs: ['y'] },
    ],
  }
  const m = await built(spec)
  t.deepEqual(ops((await prepareModel(m, { skip: ['foldBatchNorms'] })).model), ['Conv', 'BatchNormalization'])
  t.deepEqual(ops((await prepareModel(m, { passes: ['foldBatchNorms'] })).model), ['Identity', 'Conv'])
  await t.throwsAsync(prepareModel(m, { passes: ['foldEverything'] }), { instanceOf: TypeError, message: /unknown pass "foldEverything"/ })
  const bytes = await saveModel(m)
  t.deepEqual(ops((await prepareModel(bytes)).model), ['Conv'], 'bytes are a ModelSource too')
  const broken = { ...m, graph: { ...m.graph, nodes: m.graph.nodes.slice(1) } }
  await t.throwsAsync(prepareModel(broken), { instanceOf: GraphError, message: /node "conv" \(Conv\) input 0 reads "a"/ })
})
