// convertFloat16 on small models built here: the range check keeps an overflowing op in float32
// (and shows the inf it would give otherwise), the interface stays float32, block lists, If
// bodies, Resize scales, bfloat16 storage, and bad input.
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'
import { random } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { convertFloat16, modelToBytes, loadModel, compareTensors, float16ToFloat32, GraphError, DEFAULT_FLOAT16_BLOCK_LIST } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const f32 = (name, dims, values) => ({ name, dataType: T.FLOAT, dims, data: Float32Array.from(values) })
const i64 = (name, dims, values) => ({ name, dataType: T.INT64, dims, data: BigInt64Array.from(values, BigInt) })

function uniform(n, seed, scale) {
  const rnd = random(seed)
  return Float32Array.from({ length: n }, () => (rnd() * 2 - 1) * scale)
}

// y = x·W·1000 reaches ~1e5 (beyond float16's 65504), and so does m = flatten(max(y, -1));
// z = tanh(m / 1e5 + b) is back in range. Max and Flatten have float16 kernels in ONNX Runtime's
// CPU provider, so a float16 model really holds m in float16 on x86 (ops without such a kernel run
// in float between Casts that ORT drops between consecutive fallback ops, and a lone float16-capable
// op among them is run in float too: that would hide the overflow on x86; see docs/float16.md).
function overflowModel() {
  return buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['n', 8] }],
    outputs: [{ name: 'z', dataType: T.FLOAT, dims: ['n', 8] }],
    initializers: [f32('W', [8, 8], uniform(64, 1, 1)), f32('k', [], [1000]), f32('lo', [], [-1]), f32('s', [], [1e-5]), f32('b', [8], uniform(8, 2, 0.1))],
    nodes: [
      { name: 'matmul', opType: 'MatMul', inputs: ['x', 'W'], outputs: ['h'] },
      { name: 'scale_up', opType: 'Mul', inputs: ['h', 'k'], outputs: ['y'] },
      { name: 'max', opType: 'Max', inputs: ['y', 'lo'], outputs: ['y1'] },
      { name: 'flatten', opType: 'Flatten', inputs: ['y1'], outputs: ['m'] },
      { name: 'scale_down', opType: 'Mul', inputs: ['m', 's'], outputs: ['u'] },
      { name: 'bias', opType: 'Add', inputs: ['u', 'b'], outputs: ['v'] },
      { name: 'tanh', opType: 'Tanh', inputs: ['v'], outputs: ['z'] },
    ],
  })
}

// Inputs up to 60 overflow y; up to 5 stay in range.
const feedsOf = (seed, n = 4, scale = 60) => ({ x: { type: 'float32', data: uniform(n * 8, seed, scale), dims: [n, 8] } })

test('an op whose output overflows float16 stays float32 with its consumers; without the check the output is inf', async (t) => {
  const bytes = overflowModel()
  const data = [feedsOf(10), feedsOf(11)]
  const checked = await convertFloat16(bytes, { data })
  const unchecked = await convertFloat16(bytes)
  const test = feedsOf(12)
  const ref = (await runModel(bytes, test)).z
  const good = (await runModel(modelToBytes(checked.model), test)).z
  const bad = (await runModel(modelToBytes(unchecked.model), test)).z

  // The range check names the op and the value it saw.
  const r = checked.report
  t.true(r.rangeCheckedOnData)
  const y = r.overflow.find((o) => o.tensor === 'y')
  t.truthy(y, 'tensor y reported')
  t.is(y.node, 'scale_up')
  t.true(y.maxAbs > 65504)
  t.deepEqual(r.blocked.filter((b) => b.reason === 'overflow').map((b) => b.node), ['scale_up', 'max', 'flatten'])
  t.deepEqual(r.blocked.filter((b) => b.reason === 'overflowConsumer').map((b) => b.node), ['scale_down'])
  t.is(r.blocked.find((b) => b.node === 'scale_up').maxAbs, y.maxAbs)
  t.deepEqual(r.convertedOps, { MatMul: 1, Add: 1, Tanh: 1 })

  // Checked: close to float32. Unchecked: every element went through inf.
  t.is(good.type, 'float32')
  const stats = compareTensors(ref.data, good.data)
  t.is(stats.nonFinite, 0)
  t.true(stats.maxAbsError < 2e-3, `max error ${stats.maxAbsError}`)
  t.true(unchecked.report.overflow.length === 0 && !unchecked.report.rangeCheckedOnData)
  const finiteRef = [...ref.data].every(Number.isFinite)
  t.true(finiteRef)
  // Unchecked, m is inf in float16 wherever y > 65504, and tanh(inf) = 1 there.
  const diff = compareTensors(ref.data, bad.data)
  t.true(diff.maxAbsError > 0.1, `unchecked model is far from float32 (max error ${diff.maxAbsError})`)
  t.true([...bad.data].some((v, i) => v === 1 && ref.data[i] < 0.99), 'saturated by inf')
  const probe = await convertFloat16(bytes, { verify: false })
  probe.model.graph.outputs.push({ name: 'm_fp16_probe', elemType: T.FLOAT16 })
  probe.model.graph.nodes.push({ name: 'probe', opType: 'Identity', domain: '', inputs: ['m'], outputs: ['m_fp16_probe'], attributes: new Map() })
  const probed = (await runModel(modelToBytes(probe.model), test)).m_fp16_probe
  t.is(probed.type, 'float16')
  t.true([...float16ToFloat32(probed.data)].includes(Infinity), 'm is inf in the unchecked float16 model')
})

test('the interface stays float32, weights become float16, the input model is unchanged', async (t) => {
  const model = await loadModel(overflowModel())
  const before = modelToBytes(model)
  const { model: out, report } = await convertFloat16(model)
  t.true(Buffer.from(modelToBytes(model)).equals(Buffer.from(before)), 'input untouched')
  t.deepEqual(out.graph.inputs.map((v) => [v.name, v.elemType]), [['x', T.FLOAT]])
  t.deepEqual(out.graph.outputs.map((v) => [v.name, v.elemType]), [['z', T.FLOAT]])
  for (const k of ['W', 'k', 'lo', 's', 'b']) t.is(out.graph.initializers.get(k).dataType, T.FLOAT16, k)
  t.is(report.initializers.converted, 5)
  t.deepEqual(report.casts.map((c) => [c.at, c.type]).sort(), [['graph input', 'float16'], ['graph output', 'float32']])
  t.is(report.castsInserted, 2)
  t.is(report.nodes.converted, 7)
  t.true(report.bytes.after < report.bytes.before)
  const res = await runModel(modelToBytes(out), feedsOf(3, 1))
  t.is(res.z.type, 'float32')
})

test('keepIoTypes: false makes inputs and outputs float16', async (t) => {
  const { model, report } = await convertFloat16(overflowModel(), { keepIoTypes: false })
  t.is(model.graph.inputs[0].elemType, T.FLOAT16)
  t.is(model.graph.outputs[0].elemType, T.FLOAT16)
  t.is(report.castsInserted, 0)
  const x = feedsOf(4, 1).x
  const h = new Uint16Array(x.data.length).fill(0x3c00)
  const res = await runModel(modelToBytes(model), { x: { type: 'float16', data: h, dims: x.dims } })
  t.is(res.z.type, 'float16')
})

test('blockList and nodeBlockList keep ops in float32 with Casts at the region boundary', async (t) => {
  const bytes = overflowModel()
  const { model, report } = await convertFloat16(bytes, { blockList: ['Tanh'], nodeBlockList: ['bias'] })
  t.deepEqual(report.blocked.map((b) => [b.node, b.reason]).sort(), [['bias', 'nodeBlockList'], ['tanh', 'blockList']])
  t.is(report.blockedOps.Tanh, 1)
  // b is read only by the float32 Add: it stays float32.
  t.is(model.graph.initializers.get('b').dataType, T.FLOAT)
  t.true(report.casts.some((c) => c.at === 'region boundary' && c.type === 'float32'))
  const f = feedsOf(5, 4, 5)
  const stats = compareTensors((await runModel(bytes, f)).z.data, (await runModel(modelToBytes(model), f)).z.data)
  t.true(stats.sqnrDb > 40, `${stats.sqnrDb} dB`)
  await t.throwsAsync(convertFloat16(bytes, { nodeBlockList: ['nope'] }), { instanceOf: TypeError, message: /"nope"/ })
})

// Range has no float16 in ONNX's type constraints; Resize's scales must stay float32; an If
// body reads an outer float16 value.
function mixedModel() {
  const branch = (op, name) => ({
    name, inputs: [], outputs: [{ name: `${name}_out`, dataType: T.FLOAT }],
    nodes: [{ opType: op, inputs: ['a', 'a'], outputs: [`${name}_out`], name: `${name}_node` }],
  })
  return buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [1, 2, 3, 3] }, { name: 'cond', dataType: T.BOOL, dims: [] }],
    outputs: [{ name: 'out', dataType: T.FLOAT }, { name: 'r', dataType: T.FLOAT }],
    initializers: [
      f32('w', [1, 2, 1, 1], [0.5, -1.25]), f32('scales', [4], [1, 1, 1.5, 1.5]),
      f32('start', [], [0.1]), f32('limit', [], [1.0]), f32('delta', [], [0.3]),
    ],
    nodes: [
      { name: 'mul', opType: 'Mul', inputs: ['x', 'w'], outputs: ['a'] },
      { name: 'if', opType: 'If', inputs: ['cond'], outputs: ['c'], attributes: { then_branch: { type: 'GRAPH', value: branch('Add', 'then') }, else_branch: { type: 'GRAPH', value: branch('Mul', 'else') } } },
      { name: 'resize', opType: 'Resize', inputs: ['c', '', 'scales'], outputs: ['d'], attributes: { mode: 'linear' } },
      { name: 'relu', opType: 'Relu', inputs: ['d'], outputs: ['out'] },
      { name: 'range', opType: 'Range', inputs: ['start', 'limit', 'delta'], outputs: ['r0'] },
      { name: 'range_add', opType: 'Add', inputs: ['r0', 'start'], outputs: ['r'] },
    ],
  })
}

test('If bodies stay float32, Resize scales stay float32, Range is blocked by default', async (t) => {
  const bytes = mixedModel()
  const { model, report } = await convertFloat16(bytes)
  const byNode = Object.fromEntries(report.blocked.map((b) => [b.node, b]))
  t.is(byNode.if.reason, 'subgraph')
  t.is(byNode.range.reason, 'blockList')
  t.regex(byNode.range.detail, /float16/)
  t.is(model.graph.initializers.get('scales').dataType, T.FLOAT)
  t.is(model.graph.initializers.get('w').dataType, T.FLOAT16)
  t.is(model.graph.initializers.get('start').dataType, T.FLOAT)
  t.is(model.graph.initializers.get('start_fp16').dataType, T.FLOAT16)
  t.is(report.initializers.copied, 1)
  // The If body reads a float32 copy of the outer float16 value.
  const ifNode = model.graph.nodes.find((n) => n.name === 'if')
  const bodyReads = ifNode.attributes.get('then_branch').value.nodes[0].inputs
  t.true(bodyReads.every((n) => n !== 'a'), `body reads ${bodyReads}`)
  t.true(report.casts.some((c) => c.at === 'subgraph input' && c.from === 'a'))
  for (const cond of [true, false]) {
    const feeds = { x: { type: 'float32', data: Float32Array.from({ length: 18 }, (_, i) => i / 7 - 1), dims: [1, 2, 3, 3] }, cond: { type: 'bool', data: Uint8Array.of(cond ? 1 : 0), dims: [] } }
    const a = await runModel(bytes, feeds)
    const b = await runModel(modelToBytes(model), feeds)
    t.is(b.out.type, 'float32')
    t.true(compareTensors(a.out.data, b.out.data).sqnrDb > 50)
    // Range runs in float32; the Add after it in float16 (start is kept and copied in float16).
    t.true(compareTensors(a.r.data, b.r.data).maxAbsError < 1e-3)
  }
})

test('an op ONNX Runtime cannot run in float16 is named, not left to fail later', async (t) => {
  const err = await t.throwsAsync(convertFloat16(mixedModel(), { blockList: [] }), { instanceOf: GraphError })
  t.regex(err.message, /Range/)
  t.true('Range' in DEFAULT_FLOAT16_BLOCK_LIST && 'NonMaxSuppression' in DEFAULT_FLOAT16_BLOCK_LIST)
})

test('a weight beyond float16 range keeps its readers in float32 without data', async (t) => {
  const bytes = buildModel({
    opset: 17,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2] }],
    initializers: [f32('big', [2], [1e5, -2]), f32('c', [2], [1e-5, 1])],
    nodes: [{ name: 'm', opType: 'Mul', inputs: ['x', 'big'], outputs: ['t'] }, { name: 'n', opType: 'Mul', inputs: ['t', 'c'], outputs: ['y'] }],
  })
  const { model, report } = await convertFloat16(bytes)
  t.deepEqual(report.overflow.map((o) => [o.tensor, o.source, o.maxAbs]), [['big', 'weight', 1e5]])
  t.deepEqual(report.blocked.map((b) => [b.node, b.reason]), [['m', 'overflow']])
  t.is(model.graph.initializers.get('big').dataType, T.FLOAT)
  const feeds = { x: { type: 'float32', data: Float32Array.of(3, 4), dims: [2] } }
  const y = (await runModel(modelToBytes(model), feeds)).y.data
  t.true(Math.abs(y[0] - 3) < 1e-2 && Math.abs(y[1] + 8) < 1e-2, `${y}`) // c = 1e-5 is a float16 subnormal
})

test('bfloat16 storage: weights stored as bfloat16 with a Cast to float32, compute unchanged', async (t) => {
  const bytes = overflowModel()
  const { model, report } = await convertFloat16(bytes, { bfloat16: true, bfloat16MinElements: 8 })
  t.is(report.storage, 'bfloat16')
  t.is(report.initializers.converted, 2) // W (64) and b (8); the scalars stay float32
  t.is(report.initializers.kept, 3)
  t.is(model.graph.initializers.get('W_bf16').dataType, T.BFLOAT16)
  t.is(model.graph.initializers.get('k').dataType, T.FLOAT)
  t.is(report.castsInserted, 2)
  const f = feedsOf(6)
  const stats = compareTensors((await runModel(bytes, f)).z.data, (await runModel(modelToBytes(model), f)).z.data)
  t.true(stats.sqnrDb > 30, `${stats.sqnrDb} dB`)
  const old = buildModel({ opset: 11, inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2] }], outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2] }], initializers: [f32('w', [32], new Array(32).fill(1))], nodes: [{ opType: 'Identity', inputs: ['x'], outputs: ['y'] }] })
  await t.throwsAsync(convertFloat16(old, { bfloat16: true }), { instanceOf: GraphError, message: /opset 11.*13/ })
})
