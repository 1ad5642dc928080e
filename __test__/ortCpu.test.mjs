// ONNX Runtime CPU presets (ort_x86, ort_x86_vnni, ort_arm) and `inspect --kernels`: the presets
// resolve like any AIMET config, ort_x86 implies 7-bit weights (reduce_range), and a MNIST CNN
// quantized with each preset runs integer kernels in ORT's own optimised graph (read back from
// the file ORT writes, not from quantkit's claims) within 0.5 points of FP32 on 2,000 digits.
import test from 'ava'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, resolveConfig, presetConfig, validateQuantsimConfig, PRESET_AIMET_FILES, inspectOrtKernels, loadModel } = require('../dist/index.js')

const here = dirname(fileURLToPath(import.meta.url))
const mnistModel = join(here, 'fixtures', 'mnist-cnn.onnx')
const cli = join(here, '..', 'dist', 'cli', 'main.js')
const THREADS = { intraOpNumThreads: 1 }

test('ort presets resolve as AIMET configs: uint8-style asymmetric activations, symmetric per-channel weights, inputs quantized', (t) => {
  for (const name of ['ort_x86', 'ort_x86_vnni', 'ort_arm']) {
    const { warnings } = validateQuantsimConfig(presetConfig(name), name)
    t.deepEqual(warnings, [], name)
    const r = resolveConfig(name)
    t.is(r.preset, name)
    t.deepEqual(r.perChannelOpTypes, ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'], name)
    t.true(r.modelInput.isInputQuantized, name)
    t.false(r.op('Conv').isSymmetric, `${name}: activations asymmetric`)
    t.true(r.param('Conv', 'weight').isSymmetric, `${name}: weights symmetric`)
    t.false(r.param('Conv', 'bias').isQuantized, `${name}: float bias (ORT quantizes it)`)
    t.true(r.supergroups.some((g) => g.join('+') === 'Conv+Relu'), name)
    t.is(PRESET_AIMET_FILES[name], undefined, `${name} is quantkit's own`)
  }
})

test('config show ort_x86 prints the preset and its 7-bit weight default', (t) => {
  const r = spawnSync(process.execPath, [cli, 'config', 'show', 'ort_x86'], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /preset:ort_x86/)
  t.regex(r.stdout, /7-bit params/)
  t.regex(r.stdout, /per-channel op types:\s+Conv, ConvTranspose, Gemm, MatMul/)
  const arm = spawnSync(process.execPath, [cli, 'config', 'show', 'ort_arm'], { encoding: 'utf8' })
  t.is(arm.status, 0, arm.stderr)
  t.notRegex(arm.stdout, /7-bit/)
})

test('ort_x86 makes weights 7-bit unless the caller says otherwise; ort_arm keeps 8', async (t) => {
  const bits = async (opts) => {
    const sim = await QuantSim.create(mnistModel, { ...THREADS, ...opts })
    const b = [...new Set(sim.quantizers.filter((q) => q.kind === 'param' && q.paramName === 'weight' && q.enabled).map((q) => q.spec.bitwidth))]
    const act = [...new Set(sim.quantizers.filter((q) => q.kind !== 'param' && q.enabled).map((q) => q.spec.bitwidth))]
    await sim.close()
    return { b, act }
  }
  t.deepEqual(await bits({ config: 'ort_x86' }), { b: [7], act: [8] })
  t.deepEqual(await bits({ config: 'ort_x86', paramBitwidth: 8 }), { b: [8], act: [8] })
  t.deepEqual(await bits({ config: 'ort_x86', paramType: 'int8' }), { b: [8], act: [8] })
  t.deepEqual(await bits({ config: 'ort_x86_vnni' }), { b: [8], act: [8] })
  t.deepEqual(await bits({ config: 'ort_arm' }), { b: [8], act: [8] })
})

// ORT's optimised graph, read back independently of src/export/ortKernels.ts.
async function optimizedOps(path, dir) {
  const out = join(dir, 'optimized-by-test.onnx')
  const s = await ort.InferenceSession.create(path, { ...THREADS, graphOptimizationLevel: 'all', optimizedModelFilePath: out, logSeverityLevel: 3 })
  await s.release()
  const m = await loadModel(out)
  return m.graph.nodes.map((n) => n.opType)
}

const testSet = loadMnist({ split: 'test' })
const train = loadMnist({ split: 'train', count: 256 })
const batch = (set, i, n) => ({ input: { data: set.images.subarray(i * 784, (i + n) * 784), dims: [n, 1, 28, 28] } })

async function accuracy(path) {
  const s = await ort.InferenceSession.create(path, { ...THREADS, graphOptimizationLevel: 'all' })
  let ok = 0
  for (let i = 0; i < testSet.count; i += 500) {
    const f = batch(testSet, i, 500)
    const logits = Object.values(await s.run({ input: new ort.Tensor('float32', f.input.data, f.input.dims) }))[0].data
    for (let k = 0; k < 500; k++) {
      let best = 0
      for (let c = 1; c < 10; c++) if (logits[k * 10 + c] > logits[k * 10 + best]) best = c
      if (best === testSet.labels[i + k]) ok++
    }
  }
  await s.release()
  return ok / testSet.count
}

for (const preset of ['ort_x86', 'ort_x86_vnni', 'ort_arm']) {
  test(`MNIST CNN with ${preset}: ORT runs QLinearConv and QGemm/QLinearMatMul, accuracy within 0.5 points of FP32`, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), `qk-${preset}-`))
    try {
      const sim = await QuantSim.create(mnistModel, { ...THREADS, config: preset })
      await sim.computeEncodings(Array.from({ length: 4 }, (_, b) => batch(train, b * 64, 64)))
      await sim.export(dir, 'mnist', { formats: ['qdq'] })
      await sim.close()
      const qdq = join(dir, 'mnist.qdq.onnx')

      // Weights as stored: int8 containers, a 7-bit grid under ort_x86.
      const model = await loadModel(qdq)
      const weights = [...model.graph.initializers.values()].filter((w) => w.dataType === 3 && w.dims.length >= 2)
      t.true(weights.length >= 5)
      const maxAbs = Math.max(...weights.map((w) => Math.max(...Array.from(w.data, (v) => Math.abs(v)))))
      if (preset === 'ort_x86') t.true(maxAbs <= 64, `reduce-range weights reach ${maxAbs}`)
      else t.true(maxAbs > 64 && maxAbs <= 128, `8-bit weights reach ${maxAbs}`)

      const ops = await optimizedOps(qdq, dir)
      t.true(ops.includes('QLinearConv'), `optimised graph: ${ops.join(' ')}`)
      t.true(ops.includes('QGemm') || ops.includes('QLinearMatMul'), `optimised graph: ${ops.join(' ')}`)
      t.false(ops.includes('Conv'), 'no Conv left in float')

      const report = await inspectOrtKernels(qdq)
      t.is(report.integerKernels['com.microsoft.QLinearConv'] ?? report.integerKernels.QLinearConv, ops.filter((o) => o === 'QLinearConv').length)
      t.is(Object.entries(report.integerKernels).filter(([k]) => /QGemm|QLinearMatMul/.test(k)).reduce((a, [, v]) => a + v, 0),
        ops.filter((o) => o === 'QGemm' || o === 'QLinearMatMul').length)
      t.is(report.nodes, ops.length)
      t.log(`${preset}: ${JSON.stringify(report.integerKernels)}; float on DQ: ${JSON.stringify(report.floatFakeQuant)}`)

      const fp32 = await accuracy(mnistModel)
      const q8 = await accuracy(qdq)
      t.log(`${preset}: FP32 ${(fp32 * 100).toFixed(2)} %, QDQ in ORT's integer kernels ${(q8 * 100).toFixed(2)} %`)
      t.true(fp32 - q8 <= 0.005, `${preset}: drop ${((fp32 - q8) * 100).toFixed(2)} points`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

test('inspect --kernels prints the integer kernels and exits 0; --json gives the report', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'qk-kernels-cli-'))
  try {
    const sim = await QuantSim.create(mnistModel, { ...THREADS, config: 'ort_arm' })
    await sim.computeEncodings([batch(train, 0, 64)])
    await sim.export(dir, 'm', { formats: ['qdq'] })
    await sim.close()
    const r = spawnSync(process.execPath, [cli, 'inspect', join(dir, 'm.qdq.onnx'), '--kernels'], { encoding: 'utf8' })
    t.is(r.status, 0, r.stderr)
    t.regex(r.stdout, /integer kernels:.*QLinearConv 3/)
    const j = spawnSync(process.execPath, [cli, 'inspect', join(dir, 'm.qdq.onnx'), '--kernels', '--json'], { encoding: 'utf8' })
    t.is(j.status, 0, j.stderr)
    const report = JSON.parse(j.stdout)
    t.true(report.integerShare > 0.5)
    // The float model runs no integer kernel at all.
    const fp = await inspectOrtKernels(mnistModel)
    t.deepEqual(fp.integerKernels, {})
    t.true(fp.floatOps.Conv === 3 || fp.floatOps['com.microsoft.FusedConv'] >= 1 || Object.keys(fp.floatOps).length > 0)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
})
