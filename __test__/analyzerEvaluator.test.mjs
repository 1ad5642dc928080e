// The analyzer scoring its configurations through the one evaluation interface (an evaluation
// module by path, as compress --eval): on the MNIST example at W4A8, each per-layer score the
// module gives (examples/mnist/evaluate.mjs, top-1 on the first 500 bundled test digits) equals
// the accuracy this test computes itself: it builds the configuration's model from the sim
// (quantizers of a layer taken from a table written here from the model's structure, not from the
// analyzer's grouping), runs it with onnxruntime-node on the same digits read from the .npy files
// here, and counts the arg-max hits. Then `quantkit analyze --eval-module` writes the same scores
// into report.json; bad combinations are usage/type errors.
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, analyzeQuantization, openDataSource, modelToBytes, functionEvaluator } = require('../dist/index.js')

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const example = join(root, 'examples', 'mnist')
const mnist = join(example, 'mnist-cnn.onnx')
const calibration = join(example, 'calibration.npy')
const evalModule = join(example, 'evaluate.mjs')
const cli = join(root, 'dist', 'cli', 'main.js')
const BITS = { paramBitwidth: 4, activationBitwidth: 8 } // W4A8: layers differ in accuracy
const COUNT = 500

// The enabled quantizers of each layer of mnist-cnn.onnx under the default config, by tensor: a
// Conv/Gemm followed by Relu is one layer (named after the Relu) holding the weight and the Relu's
// output; the model input belongs to conv1; biases are not quantized; MaxPool/Flatten have none.
const LAYERS = {
  '/Relu': ['input', 'conv1.weight', '/Relu_output_0'],
  '/Relu_1': ['conv2.weight', '/Relu_1_output_0'],
  '/conv3/Conv': ['conv3.weight', '/conv3/Conv_output_0'],
  '/Relu_2': ['/Relu_2_output_0'],
  '/Relu_3': ['fc1.weight', '/Relu_3_output_0'],
  '/fc2/Gemm': ['fc2.weight', 'logits'],
}

// A version-1 .npy file read here (not with quantkit): the header's length is bytes 8–9.
function npy(name) {
  const bytes = readFileSync(join(example, name))
  const headerLength = bytes.readUInt16LE(8)
  const header = bytes.subarray(10, 10 + headerLength).toString('latin1')
  const data = bytes.subarray(10 + headerLength)
  const copy = new Uint8Array(data) // aligned
  return { header, data: header.includes("'<f4'") ? new Float32Array(copy.buffer) : copy }
}
const images = npy('test-images.npy')
const labels = npy('test-labels.npy')

async function accuracy(modelBytes) {
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
  try {
    const x = new ort.Tensor('float32', images.data.slice(0, COUNT * 784), [COUNT, 1, 28, 28])
    const scores = (await session.run({ [session.inputNames[0]]: x }))[session.outputNames[0]].data
    let correct = 0
    for (let i = 0; i < COUNT; i++) {
      let best = 0
      for (let c = 1; c < 10; c++) if (scores[i * 10 + c] > scores[i * 10 + best]) best = c
      if (best === labels.data[i]) correct++
    }
    return correct / COUNT
  } finally {
    await session.release()
  }
}

async function calibratedSim() {
  const sim = await QuantSim.create(mnist, BITS)
  const data = await openDataSource(calibration, sim.model.graph, { batchSize: 64 })
  await sim.computeEncodings(data.batches())
  return { sim, data }
}

// The sim's QDQ model with only the quantizers on `tensors` left on (encodings kept), restored after.
function configurationBytes(sim, keep) {
  const enabled = sim.quantizers.filter((q) => q.enabled)
  for (const q of enabled) if (!keep(q.tensor)) q.enabled = false
  try {
    return modelToBytes(sim.qdqModel('simulation').model)
  } finally {
    for (const q of enabled) q.enabled = true
  }
}
const only = (sim, layer) => configurationBytes(sim, (t) => LAYERS[layer].includes(t))
const allBut = (sim, layer) => configurationBytes(sim, (t) => !LAYERS[layer].includes(t))

test('analyzeQuantization({ evaluator: module path }): baselines and per-layer scores equal accuracies computed here', async (t) => {
  const { sim, data } = await calibratedSim()
  try {
    // Every enabled quantizer is in the table: the table is the whole model.
    t.deepEqual(sim.quantizers.filter((q) => q.enabled).map((q) => q.tensor).sort(), Object.values(LAYERS).flat().sort())
    const seen = []
    const a = await analyzeQuantization(sim, data.batches(), { evaluator: evalModule, intraOpNumThreads: 1, onProgress: (p) => p.phase === 'sensitivity' && seen.push(p.configuration) })
    t.is(a.metric, 'accuracy')
    t.is(a.stats.sensitivitySamples, 0)
    t.is(seen.length, 2 + 2 * 6)
    t.is(a.baseline.float, await accuracy(readFileSync(mnist)))
    t.is(a.baseline.quantized, await accuracy(modelToBytes(sim.qdqModel('simulation').model)))
    t.deepEqual(a.sensitivity.map((s) => s.layer).sort(), Object.keys(LAYERS).sort())
    const expected = {}
    for (const layer of ['/Relu', '/Relu_1', '/fc2/Gemm']) {
      expected[layer] = { onlyThisQuantized: await accuracy(only(sim, layer)), allButThis: await accuracy(allBut(sim, layer)) }
      const row = a.sensitivity.find((s) => s.layer === layer)
      t.deepEqual({ onlyThisQuantized: row.onlyThisQuantized, allButThis: row.allButThis }, expected[layer], layer)
    }
    // The configurations are told apart: W4A8 gives different accuracies, so equality is not a coincidence.
    const distinct = new Set([a.baseline.float, a.baseline.quantized, ...Object.values(expected).flatMap((e) => [e.onlyThisQuantized, e.allButThis])])
    t.true(distinct.size >= 4, [...distinct].join(', '))
    // The analysis left the sim as it was.
    t.true(sim.quantizers.filter((q) => q.enabled).length === Object.values(LAYERS).flat().length)
  } finally {
    await sim.close()
  }
})

test('analyzeQuantization({ evaluator: function }): bytes and labels reach an in-process function; an Evaluator object; errors', async (t) => {
  const { sim, data } = await calibratedSim()
  try {
    const { evaluate } = await import(evalModule)
    const labels = []
    const a = await analyzeQuantization(sim, data.batches(), { evaluator: async (bytes, ctx) => { labels.push(ctx.label); return evaluate(bytes, ctx) }, layers: 1, intraOpNumThreads: 1 })
    // layers: 1 → the layer with the most parameters, fc1 (+Relu).
    t.deepEqual(labels, ['all quantized', 'float', 'only /Relu_3 quantized', 'all but /Relu_3 quantized'])
    const row = a.sensitivity[0]
    t.deepEqual(row, { layer: '/Relu_3', opType: 'Gemm+Relu', onlyThisQuantized: await accuracy(only(sim, '/Relu_3')), allButThis: await accuracy(allBut(sim, '/Relu_3')) })
    // An Evaluator object is used as given and left open (the caller owns it).
    const own = functionEvaluator(evaluate)
    const b = await analyzeQuantization(sim, data.batches(), { evaluator: own, layers: 1, intraOpNumThreads: 1 })
    t.deepEqual(b.sensitivity, a.sensitivity)
    t.is(await own.evaluate(readFileSync(mnist), 'still open'), a.baseline.float)
    await own.close()
    await t.throwsAsync(() => analyzeQuantization(sim, data.batches(), { evaluator: () => NaN, layers: 1 }), { name: 'EvaluationError', message: /all quantized/ })
    await t.throwsAsync(() => analyzeQuantization(sim, data.batches(), { evaluator: evalModule, labels: [1] }), { instanceOf: TypeError, message: /evaluator and labels/ })
    await t.throwsAsync(() => analyzeQuantization(sim, data.batches(), { evaluator: 42 }), { instanceOf: TypeError, message: /evaluator: expected/ })
  } finally {
    await sim.close()
  }
})

test('quantkit analyze --eval-module: report.json carries the module\'s scores; --labels with it is a usage error', async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'quantkit-analyze-eval-'))
  const r = spawnSync(process.execPath, [cli, 'analyze', mnist, '--calib', calibration, '--param-bw', '4', '--batch-size', '64', '--layers', '2', '--eval-module', evalModule, '--out', out, '--quiet'], { encoding: 'utf8', cwd: root })
  t.is(r.status, 0, r.stderr)
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'))
  t.is(report.metric, 'accuracy')
  t.is(report.sensitivity.length, 2)
  const { sim } = await calibratedSim() // same options and calibration data as the command: same encodings
  try {
    t.is(report.results[0].accuracy, await accuracy(readFileSync(mnist)))
    t.is(report.results[1].accuracy, await accuracy(modelToBytes(sim.qdqModel('simulation').model)))
    for (const row of report.sensitivity) {
      t.true(row.layer in LAYERS, row.layer)
      t.is(row.onlyThisQuantized, await accuracy(only(sim, row.layer)), `only ${row.layer}`)
      t.is(row.allButThis, await accuracy(allBut(sim, row.layer)), `all but ${row.layer}`)
    }
  } finally {
    await sim.close()
  }
  const bad = spawnSync(process.execPath, [cli, 'analyze', mnist, '--calib', calibration, '--eval-module', evalModule, '--labels', join(example, 'test-labels.npy'), '--out', out, '--quiet'], { encoding: 'utf8', cwd: root })
  t.not(bad.status, 0)
  t.regex(bad.stderr, /--eval-module and --labels/)
})
