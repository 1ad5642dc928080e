// quantizeDynamic on the tiny MNIST transformer (__test__/fixtures/tiny-transformer.onnx, see
// fixtures/README.md): both formats keep accuracy on the 2,000 held-out digits within 1 point of
// FP32 in onnxruntime-node (default optimisations, what a user runs); with data the report carries
// the measured output SQNR and per-layer figures; a threshold the model cannot meet sends the worst
// layers back to float, named with the reason, until it does. Conv on the MNIST CNN (opt-in).
// Latency is measured by scripts/transformer/measure-dynamic.mjs (docs/dynamic.md), not here.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { quantizeDynamic } = require('../dist/index.js')

const here = dirname(fileURLToPath(import.meta.url))
const TRANSFORMER = join(here, 'fixtures', 'tiny-transformer.onnx')
const CNN = join(here, 'fixtures', 'mnist-cnn.onnx')
const FP32_ACCURACY = 0.9725 // fixtures/README.md

async function accuracy(bytes, images, labels, n, dims) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  try {
    let correct = 0
    for (let i = 0; i < n; i += 250) {
      const m = Math.min(250, n - i)
      const input = new ort.Tensor('float32', images.subarray(i * 784, (i + m) * 784), [m, ...dims])
      const logits = (await session.run({ input })).logits.data
      for (let r = 0; r < m; r++) {
        let best = 0
        for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c
        if (best === labels[i + r]) correct++
      }
    }
    return correct / n
  } finally {
    await session.release()
  }
}

/** Calibration-style data: `batches` batches of 64 training digits. */
function trainingBatches(batches, dims) {
  const { images } = loadMnist({ split: 'train', count: batches * 64 })
  return Array.from({ length: batches }, (_, b) => ({ input: { data: images.slice(b * 64 * 784, (b + 1) * 64 * 784), dims: [64, ...dims] } }))
}

test('tiny transformer: fused and standard keep accuracy within 1 point of FP32 on 2,000 digits', async (t) => {
  const { images, labels, count } = loadMnist({ split: 'test' })
  const fp32 = await accuracy(readFileSync(TRANSFORMER), images, labels, count, [28, 28])
  t.is(fp32, FP32_ACCURACY)
  const rows = [`FP32: ${(fp32 * 100).toFixed(2)} %`]
  for (const format of ['fused', 'standard']) {
    const { model, report } = await quantizeDynamic(TRANSFORMER, { format })
    t.is(report.totals.quantized, 14, '13 MatMuls with constant weights and the Gemm head')
    t.is(report.skipped.length, 4, 'the 4 attention MatMuls of two activations')
    const acc = await accuracy(modelToBytes(model), images, labels, count, [28, 28])
    rows.push(`${format}: ${(acc * 100).toFixed(2)} % (${((acc - fp32) * 100).toFixed(2)} points)`)
    t.true(Math.abs(acc - fp32) <= 0.01, `${format}: ${acc} vs FP32 ${fp32}`)
  }
  t.log(rows.join('\n'))
})

test('tiny transformer with data: the report carries output and per-layer SQNR; an unmeetable threshold sends the worst layers to float', async (t) => {
  const data = trainingBatches(4, [28, 28])
  const ok = await quantizeDynamic(TRANSFORMER, { data, intraOpNumThreads: 1 })
  const q = ok.report.quality
  t.true(q.checked)
  t.is(q.samples, 256)
  t.true(q.passed)
  t.true(q.allQuantized.sqnrDb > 20, `all quantized: ${q.allQuantized.sqnrDb} dB`)
  t.deepEqual(ok.report.keptFloat, [])
  t.true(ok.report.layers.every((l) => Number.isFinite(l.layerSqnrDb) && l.quantized))

  // Just above what the fully quantized model reaches: some layers must go back to float.
  const minSqnrDb = q.allQuantized.sqnrDb + 3
  const { model, report } = await quantizeDynamic(TRANSFORMER, { data, minSqnrDb, intraOpNumThreads: 1 })
  const r = report.quality
  t.true(r.passed)
  t.true(r.final.sqnrDb >= minSqnrDb, `final ${r.final.sqnrDb} dB`)
  t.true(report.keptFloat.length >= 1 && report.keptFloat.length < 14, `${report.keptFloat.length} layers in float`)
  const worst = [...report.layers].sort((a, b) => a.layerSqnrDb - b.layerSqnrDb).slice(0, report.keptFloat.length).map((l) => l.node)
  t.deepEqual(report.keptFloat.map((l) => l.node), worst, 'the worst layers by their own SQNR, worst first')
  t.regex(report.keptFloat[0].reason, /below minSqnrDb/)
  for (const l of report.layers) t.is(l.quantized, !worst.includes(l.node))
  t.is(model.graph.nodes.filter((n) => n.opType === 'MatMulInteger').length, 14 - report.keptFloat.length)
  t.log(`all quantized ${q.allQuantized.sqnrDb.toFixed(1)} dB; threshold ${minSqnrDb.toFixed(1)} dB → ${report.keptFloat.length} in float (${report.keptFloat.map((l) => `${l.node} ${l.layerSqnrDb.toFixed(1)} dB`).join(', ')}), final ${r.final.sqnrDb.toFixed(1)} dB in ${r.steps.length} evaluations`)
})

test('MNIST CNN with ops Conv and Gemm: ConvInteger layers run in ORT and keep accuracy', async (t) => {
  const { images, labels } = loadMnist({ split: 'test', count: 500 })
  const fp32 = await accuracy(readFileSync(CNN), images, labels, 500, [1, 28, 28])
  const { model, report } = await quantizeDynamic(CNN, { ops: ['Conv', 'Gemm'], data: trainingBatches(2, [1, 28, 28]), intraOpNumThreads: 1 })
  t.deepEqual(report.layers.map((l) => l.kernel), ['ConvInteger', 'ConvInteger', 'ConvInteger', 'MatMulInteger', 'MatMulInteger'])
  t.true(report.quality.checked && report.quality.passed)
  const acc = await accuracy(modelToBytes(model), images, labels, 500, [1, 28, 28])
  t.true(Math.abs(acc - fp32) <= 0.01, `${acc} vs FP32 ${fp32}`)
  t.log(`CNN: FP32 ${(fp32 * 100).toFixed(1)} %, dynamic (Conv+Gemm) ${(acc * 100).toFixed(1)} %, output SQNR ${report.quality.final.sqnrDb.toFixed(1)} dB`)
})
