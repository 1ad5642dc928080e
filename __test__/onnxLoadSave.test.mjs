// src/onnx/loadModel.ts, saveModel.ts, protoToModel.ts, modelToProto.ts, modelSource.ts:
// load → save changes nothing that matters. The proof is onnxruntime-node (graph optimisations
// off, one thread) giving bit-identical outputs before and after on the real models, plus
// structural checks on hand-built models carrying every field quantkit keeps.
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { runModel } from './helpers/ort.mjs'
import { REAL_MODELS, assertSameOutputs, floatFeed } from './helpers/models.mjs'

const require = createRequire(import.meta.url)
const { onnx } = require('../generated/onnx.js')
const Long = require('protobufjs/minimal').util.Long
const { loadModel, loadModelSync, saveModel, resolveModelSource, isModel, OnnxFormatError } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const tmp = mkdtempSync(join(tmpdir(), 'quantkit-onnx-io-'))
test.after.always(() => rmSync(tmp, { recursive: true, force: true }))

for (const [name, { path, feeds }] of Object.entries(REAL_MODELS)) {
  test.serial(`round trip keeps ORT outputs bit-identical: ${name}`, async (t) => {
    const original = readFileSync(path)
    const model = await loadModel(path)
    const saved = await saveModel(model)
    t.true(saved instanceof Uint8Array)
    const f = feeds()
    // logSeverityLevel 3: silero op18 carries unused initializers ORT warns about.
    const before = await runModel(original, f, { logSeverityLevel: 3 })
    const after = await runModel(saved, f, { logSeverityLevel: 3 })
    assertSameOutputs(t, before, after, name)
    // And the saved model loads back to the same structure.
    const again = await loadModel(saved)
    t.is(again.graph.nodes.length, model.graph.nodes.length)
    t.deepEqual(again.graph.inputs, model.graph.inputs)
  })
}

test('the IR of PP-OCR cls: symbolic dims, Constant weights as aligned typed arrays, no path-less fields', async (t) => {
  const { path } = REAL_MODELS['PP-OCR mobile v2 cls']
  const model = await loadModel(path)
  t.is(model.irVersion, 8)
  t.deepEqual(model.opsetImports, [{ domain: '', version: 9 }])
  t.is(model.path, path)
  t.deepEqual(model.graph.inputs[0], { name: 'x', elemType: T.FLOAT, shape: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] })
  const constants = model.graph.nodes.filter((n) => n.opType === 'Constant')
  t.is(constants.length, 250)
  const fileBuffer = readFileSync(path).buffer
  for (const c of constants) {
    const value = c.attributes.get('value')
    t.is(value.type, 'tensor')
    const data = value.value.data
    t.is(data.byteOffset % data.BYTES_PER_ELEMENT, 0)
    // One copy: each tensor owns its own buffer, none is a view into the file's buffer.
    t.not(data.buffer, fileBuffer)
    t.is(data.buffer.byteLength, data.byteLength)
  }
  t.deepEqual(loadModelSync(path).graph.nodes.map((n) => n.name), model.graph.nodes.map((n) => n.name))
})

const f32 = (name, dims, values) => ({ name, dataType: T.FLOAT, dims, data: Float32Array.from(values) })
const v = (name, dataType, dims) => ({ name, dataType, dims })

test('If with subgraphs: bodies are IR graphs with their own initializers; round trip runs the same', async (t) => {
  const bytes = buildModel({
    opset: 13,
    inputs: [v('cond', T.BOOL, []), v('x', T.FLOAT, [3])],
    outputs: [v('y', T.FLOAT, [3])],
    nodes: [{
      opType: 'If', inputs: ['cond'], outputs: ['y'], name: 'branch',
      attributes: {
        then_branch: { type: 'GRAPH', value: {
          name: 'then', inputs: [], outputs: [v('y_then', T.FLOAT, [3])], initializers: [f32('one', [3], [1, 2, 3])],
          nodes: [{ opType: 'Add', inputs: ['x', 'one'], outputs: ['y_then'] }],
        } },
        else_branch: { type: 'GRAPH', value: {
          name: 'else', inputs: [], outputs: [v('y_else', T.FLOAT, [3])],
          nodes: [
            { opType: 'Constant', inputs: [], outputs: ['two'], attributes: { value: f32('', [3], [2, 2, 2]) } },
            { opType: 'Mul', inputs: ['x', 'two'], outputs: ['y_else'] },
          ],
        } },
      },
    }],
  })
  const model = await loadModel(bytes)
  const then = model.graph.nodes[0].attributes.get('then_branch')
  t.is(then.type, 'graph')
  t.deepEqual([...then.value.initializers.keys()], ['one'])
  t.deepEqual([...then.value.initializers.get('one').data], [1, 2, 3])
  t.is(model.graph.nodes[0].attributes.get('else_branch').value.nodes[0].attributes.get('value').type, 'tensor')
  const saved = await saveModel(model)
  for (const cond of [0, 1]) {
    const feeds = { cond: { type: 'bool', data: Uint8Array.of(cond), dims: [] }, x: floatFeed([3], 20 + cond) }
    assertSameOutputs(t, await runModel(bytes, feeds), await runModel(saved, feeds), `If cond=${cond}`)
  }
})

test('Loop with a body graph: round trip runs the same', async (t) => {
  const bytes = buildModel({
    opset: 13,
    inputs: [v('trip', T.INT64, []), v('cond', T.BOOL, []), v('x', T.FLOAT, [3])],
    outputs: [v('y', T.FLOAT, [3])],
    nodes: [{
      opType: 'Loop', inputs: ['trip', 'cond', 'x'], outputs: ['y'],
      attributes: {
        body: { type: 'GRAPH', value: {
          name: 'body',
          inputs: [v('i', T.INT64, []), v('c_in', T.BOOL, []), v('acc', T.FLOAT, [3])],
          outputs: [v('c_out', T.BOOL, []), v('acc_out', T.FLOAT, [3])],
          initializers: [f32('step', [3], [0.5, -1, 0.25])],
          nodes: [
            { opType: 'Identity', inputs: ['c_in'], outputs: ['c_out'] },
            { opType: 'Mul', inputs: ['acc', 'step'], outputs: ['scaled'] },
            { opType: 'Add', inputs: ['scaled', 'x'], outputs: ['acc_out'] },
          ],
        } },
      },
    }],
  })
  const model = await loadModel(bytes)
  t.deepEqual([...model.graph.nodes[0].attributes.get('body').value.initializers.keys()], ['step'])
  const saved = await saveModel(model)
  const feeds = { trip: { type: 'int64', data: BigInt64Array.of(5n), dims: [] }, cond: { type: 'bool', data: Uint8Array.of(1), dims: [] }, x: floatFeed([3], 30) }
  assertSameOutputs(t, await runModel(bytes, feeds), await runModel(saved, feeds), 'Loop')
})

/** A model using every field quantkit keeps: doc strings, metadata, value_info, a local function, typed attributes. */
function everythingModel() {
  const L = (n) => Long.fromValue(n)
  const tensorType = (elemType, dims) => ({ tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : d === null ? {} : { dimValue: L(d) })) } } })
  const big = 2n ** 60n + 1n
  const bigBytes = new Uint8Array(BigInt64Array.of(big, -big).buffer)
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject({
    irVersion: L(10),
    opsetImport: [{ domain: '', version: L(18) }, { domain: 'local.fn', version: L(1) }],
    producerName: 'quantkit-test',
    producerVersion: '1.2.3',
    domain: 'ai.quantkit.test',
    modelVersion: L(7),
    docString: 'a model with everything',
    metadataProps: [{ key: 'author', value: 'test' }, { key: 'purpose', value: 'round trip' }],
    functions: [{
      name: 'AddMul', domain: 'local.fn', input: ['a', 'b'], output: ['c'], opsetImport: [{ domain: '', version: L(18) }],
      node: [{ opType: 'Add', input: ['a', 'b'], output: ['s'] }, { opType: 'Mul', input: ['s', 'b'], output: ['c'] }],
      docString: 'c = (a + b) * b',
    }],
    graph: {
      name: 'main',
      docString: 'the main graph',
      input: [{ name: 'x', type: tensorType(T.FLOAT, [2, 'N']), docString: 'first input' }, { name: 'y', type: tensorType(T.FLOAT, [2, 'N']) }],
      output: [
        { name: 'out', type: tensorType(T.FLOAT, [2, 'N']) },
        { name: 'ints', type: tensorType(T.INT64, [2]) },
        { name: 'big', type: tensorType(T.INT64, [2]) },
        { name: 'word', type: tensorType(T.STRING, []) },
        { name: 'joined', type: tensorType(T.FLOAT, [4, 'N']) },
      ],
      valueInfo: [
        { name: 'z', type: tensorType(T.FLOAT, [2, null]), docString: 'intermediate', metadataProps: [{ key: 'k', value: 'v' }] },
        { name: 'seq', type: { sequenceType: { elemType: tensorType(T.FLOAT, [2, null]) } } },
      ],
      initializer: [{ name: 'unused_doc', dataType: T.FLOAT, dims: [L(1)], rawData: new Uint8Array(4), docString: 'a tensor doc string' }],
      node: [
        { name: 'call', opType: 'AddMul', domain: 'local.fn', input: ['x', 'y'], output: ['z'], docString: 'calls a local function', metadataProps: [{ key: 'origin', value: 'test' }] },
        // alpha is FLOAT even though it equals 1: the type must survive (an INT here would be rejected).
        { name: 'leaky', opType: 'LeakyRelu', input: ['z'], output: ['out'], attribute: [{ name: 'alpha', type: 1, f: 1 }] },
        { name: 'ints', opType: 'Constant', output: ['ints'], attribute: [{ name: 'value_ints', type: 7, ints: [L(-3), L(4)] }] },
        { name: 'big', opType: 'Constant', output: ['big'], attribute: [{ name: 'value', type: 4, t: { dataType: T.INT64, dims: [L(2)], rawData: bigBytes } }] },
        { name: 'word', opType: 'Constant', output: ['word'], attribute: [{ name: 'value_string', type: 3, s: new TextEncoder().encode('héllo') }] },
        { name: 'seq', opType: 'SequenceConstruct', input: ['z', 'z'], output: ['seq'] },
        { name: 'join', opType: 'ConcatFromSequence', input: ['seq'], output: ['joined'], attribute: [{ name: 'axis', type: 2, i: L(0) }] },
      ],
    },
  })).finish()
}

test('everything quantkit keeps survives: metadata, doc strings, value_info, functions, attribute types, int64 beyond 2^53', async (t) => {
  const bytes = everythingModel()
  const model = await loadModel(bytes)
  t.is(model.producerName, 'quantkit-test')
  t.is(model.modelVersion, 7)
  t.deepEqual(model.metadataProps, [{ key: 'author', value: 'test' }, { key: 'purpose', value: 'round trip' }])
  t.is(model.extra.functions[0].name, 'AddMul')
  t.deepEqual(model.graph.nodes[1].attributes.get('alpha'), { type: 'float', value: 1 })
  t.deepEqual(model.graph.nodes[2].attributes.get('value_ints'), { type: 'ints', value: [-3, 4] })
  t.deepEqual([...model.graph.nodes[3].attributes.get('value').value.data], [2n ** 60n + 1n, -(2n ** 60n + 1n)])
  t.is(new TextDecoder().decode(model.graph.nodes[4].attributes.get('value_string').value), 'héllo')
  t.deepEqual(model.graph.valueInfo[0].shape, [2, null])
  t.truthy(model.graph.valueInfo[1].rawType.sequenceType)
  t.like(model.graph.valueInfo[0].extra.metadataProps[0], { key: 'k', value: 'v' })
  t.is(model.graph.initializers.get('unused_doc').docString, 'a tensor doc string')

  const saved = await saveModel(model)
  // Built with the conventions quantkit writes (raw_data, explicit attribute types), the model
  // re-encodes to the very same bytes.
  t.true(Buffer.from(saved).equals(Buffer.from(bytes)), 'byte-identical re-encoding')
  const feeds = { x: floatFeed([2, 3], 40), y: floatFeed([2, 3], 41) }
  const before = await runModel(bytes, feeds)
  const after = await runModel(saved, feeds)
  for (const name of ['out', 'ints', 'big', 'joined']) {
    t.true(Buffer.from(before[name].data.buffer, before[name].data.byteOffset, before[name].data.byteLength)
      .equals(Buffer.from(after[name].data.buffer, after[name].data.byteOffset, after[name].data.byteLength)), name)
  }
  t.deepEqual(after.word.data, ['héllo'])
  t.deepEqual([...after.big.data], [2n ** 60n + 1n, -(2n ** 60n + 1n)])
})

test('saving to a path writes atomically and leaves nothing behind', async (t) => {
  const { path } = REAL_MODELS['openWakeWord melspectrogram']
  const dir = mkdtempSync(join(tmp, 'atomic-'))
  const target = join(dir, 'mel.onnx')
  writeFileSync(target, 'old contents')
  const model = await loadModel(path)
  await saveModel(model, target)
  t.true(readFileSync(target).equals(Buffer.from(await saveModel(model))))
  t.deepEqual(readdirSync(dir), ['mel.onnx'])

  // A save that fails (a tensor whose data does not match its dims) leaves the old file whole.
  const broken = { ...model, graph: { ...model.graph, initializers: new Map(model.graph.initializers) } }
  const [firstName, first] = [...broken.graph.initializers][0]
  broken.graph.initializers.set(firstName, { ...first, data: first.data.subarray(1) })
  await t.throwsAsync(saveModel(broken, target), { instanceOf: OnnxFormatError, message: new RegExp(`tensor "${firstName}"`) })
  t.true(readFileSync(target).equals(Buffer.from(await saveModel(model))))
  t.deepEqual(readdirSync(dir), ['mel.onnx'])
})

test('ModelSource: paths and bytes load, a Model passes through unchanged', async (t) => {
  const { path } = REAL_MODELS['openWakeWord embedding']
  const model = await resolveModelSource(path)
  t.true(isModel(model))
  t.is(await resolveModelSource(model), model)
  const fromBytes = await resolveModelSource(readFileSync(path))
  t.is(fromBytes.graph.nodes.length, model.graph.nodes.length)
  t.is(fromBytes.path, undefined)
  await t.throwsAsync(resolveModelSource(42), { instanceOf: TypeError })
})

test('saveModel without a path refuses external-data options', async (t) => {
  const model = await loadModel(REAL_MODELS['openWakeWord melspectrogram'].path)
  await t.throwsAsync(saveModel(model, undefined, { externalDataThreshold: 10 }), { instanceOf: TypeError, message: /needs a path/ })
})

// --- bad input: typed errors naming the file and the tensor or node ---

function modelWith(graph, irVersion = 8) {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject({ irVersion: Long.fromValue(irVersion), opsetImport: [{ domain: '', version: Long.fromValue(13) }], graph })).finish()
}

test('a truncated file is an OnnxFormatError naming the file', async (t) => {
  const file = join(tmp, 'truncated.onnx')
  const bytes = readFileSync(REAL_MODELS['PP-OCR mobile v2 cls'].path)
  writeFileSync(file, bytes.subarray(0, bytes.length >> 1))
  const e = await t.throwsAsync(loadModel(file), { instanceOf: OnnxFormatError })
  t.true(e.message.startsWith(file), e.message)
  t.regex(e.message, /truncated, corrupt or not ONNX/)
  t.throws(() => loadModelSync(file), { instanceOf: OnnxFormatError })
})

test('bytes that are not ONNX are an OnnxFormatError', async (t) => {
  const file = join(tmp, 'not-onnx.onnx')
  writeFileSync(file, Buffer.from('\x89PNG\r\n\x1a\n this is an image, not a model'))
  await t.throwsAsync(loadModel(file), { instanceOf: OnnxFormatError, message: new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) })
  writeFileSync(file, 'hello world\n')
  await t.throwsAsync(loadModel(file), { instanceOf: OnnxFormatError })
  writeFileSync(file, '')
  await t.throwsAsync(loadModel(file), { instanceOf: OnnxFormatError, message: /IR version 0 .*is this an ONNX model/ })
})

test('tensor data that does not match its dims names the file and the tensor (or node)', async (t) => {
  const file = join(tmp, 'short-tensor.onnx')
  writeFileSync(file, modelWith({ name: 'g', initializer: [{ name: 'weight', dataType: T.FLOAT, dims: [Long.fromValue(4)], rawData: new Uint8Array(12) }] }))
  await t.throwsAsync(loadModel(file), { instanceOf: OnnxFormatError, message: /short-tensor\.onnx: graph "g" initializer: tensor "weight": raw_data has 12 bytes, expected 16/ })
  writeFileSync(file, modelWith({
    name: 'g',
    node: [{ name: 'const_w', opType: 'Constant', output: ['w'], attribute: [{ name: 'value', type: 4, t: { dataType: T.FLOAT, dims: [Long.fromValue(2)], floatData: [1] } }] }],
  }))
  await t.throwsAsync(loadModel(file), { instanceOf: OnnxFormatError, message: /short-tensor\.onnx: node "const_w" \(Constant\) attribute "value": tensor "": float_data has 1 values, expected 2/ })
})

test('unsupported IR versions are refused', async (t) => {
  await t.throwsAsync(loadModel(modelWith({ name: 'g' }, 13)), { instanceOf: OnnxFormatError, message: /model bytes: IR version 13 is not supported; quantkit reads IR versions 3 to 12/ })
  await t.throwsAsync(loadModel(modelWith({ name: 'g' }, 2)), { instanceOf: OnnxFormatError, message: /IR version 2 is not supported/ })
  await t.notThrowsAsync(loadModel(modelWith({ name: 'g' }, 12)))
  await t.notThrowsAsync(loadModel(modelWith({ name: 'g' }, 3)))
})

test('a model without a graph, and a loadModel argument of the wrong type', async (t) => {
  const bytes = onnx.ModelProto.encode({ irVersion: Long.fromValue(8) }).finish()
  await t.throwsAsync(loadModel(bytes), { instanceOf: OnnxFormatError, message: /has no graph/ })
  await t.throwsAsync(loadModel({ graph: {} }), { instanceOf: TypeError })
})
