// convertFloat16 on real models: the MNIST CNN keeps its accuracy and halves its file; PP-OCR's
// direction classifier converts, runs in onnxruntime-node and stays within 40 dB of float32.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { loadMnist } from './helpers/mnist.mjs'
import { REAL_MODELS } from './helpers/models.mjs'
import { runModel } from './helpers/ort.mjs'

const require = createRequire(import.meta.url)
const { convertFloat16, modelToBytes, compareTensors } = require('../dist/index.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const MNIST = '__test__/fixtures/mnist-cnn.onnx'

async function accuracy(model, images, labels, count) {
  const out = await runModel(model, { input: { type: 'float32', data: images, dims: [count, 1, 28, 28] } })
  const l = out.logits.data
  let ok = 0
  for (let i = 0; i < count; i++) {
    let best = 0
    for (let k = 1; k < 10; k++) if (l[i * 10 + k] > l[i * 10 + best]) best = k
    if (best === labels[i]) ok++
  }
  return { accuracy: (100 * ok) / count, type: out.logits.type }
}

test('MNIST CNN in float16: accuracy within 0.2 points on 2,000 digits, half the file size, float32 interface', async (t) => {
  const { images, labels, count } = loadMnist({ split: 'test' })
  t.is(count, 2000)
  const calib = loadMnist({ split: 'train', count: 256 })
  const data = [0, 1].map((b) => ({ input: { type: 'float32', data: calib.images.subarray(b * 128 * 784, (b + 1) * 128 * 784), dims: [128, 1, 28, 28] } }))
  const { model, report } = await convertFloat16(MNIST, { data })
  t.deepEqual(report.overflow, [], 'nothing in MNIST exceeds float16 range')
  t.is(report.nodes.blocked, 0)
  t.is(report.nodes.converted, report.nodes.total)
  const fp32 = (await accuracy(MNIST, images, labels, count)).accuracy
  const half = await accuracy(modelToBytes(model), images, labels, count)
  t.is(half.type, 'float32')
  const fp16 = half.accuracy
  t.log(`accuracy fp32 ${fp32.toFixed(2)} %, fp16 ${fp16.toFixed(2)} %; file ${report.bytes.before} → ${report.bytes.after} bytes (×${report.bytes.ratio.toFixed(3)})`)
  t.true(Math.abs(fp16 - fp32) <= 0.2, `fp32 ${fp32} %, fp16 ${fp16} %`)
  t.true(Math.abs(report.bytes.before - readFileSync(MNIST).byteLength) < 64, 'before = the file, re-encoded')
  t.true(Math.abs(report.bytes.ratio - 0.5) <= 0.025, `size ratio ${report.bytes.ratio}`)
  t.deepEqual(model.graph.inputs.map((v) => v.elemType), [T.FLOAT])
  t.deepEqual(model.graph.outputs.map((v) => v.elemType), [T.FLOAT])
})

test('MNIST CNN with bfloat16 storage: half the file, accuracy within 0.2 points', async (t) => {
  const { images, labels, count } = loadMnist({ split: 'test', count: 1000 })
  const { model, report } = await convertFloat16(MNIST, { bfloat16: true })
  t.true(Math.abs(report.bytes.ratio - 0.5) <= 0.025, `size ratio ${report.bytes.ratio}`)
  const fp32 = (await accuracy(MNIST, images, labels, count)).accuracy
  const bf16 = (await accuracy(modelToBytes(model), images, labels, count)).accuracy
  t.log(`accuracy fp32 ${fp32.toFixed(2)} %, bf16 storage ${bf16.toFixed(2)} % (1,000 digits)`)
  t.true(Math.abs(bf16 - fp32) <= 0.2)
})

test('PP-OCR cls in float16 runs in onnxruntime-node with output SQNR ≥ 40 dB and float32 IO', async (t) => {
  const cls = REAL_MODELS['PP-OCR mobile v2 cls']
  const { model, report } = await convertFloat16(cls.path)
  t.is(report.nodes.blocked, 0, JSON.stringify(report.blocked))
  t.true(report.nodes.converted > 400)
  t.deepEqual(model.graph.inputs.map((v) => v.elemType), [T.FLOAT])
  t.deepEqual(model.graph.outputs.map((v) => v.elemType), [T.FLOAT])
  const bytes = modelToBytes(model)
  let worst = Infinity
  for (const seed of [3, 4]) {
    const feeds = { x: { ...cls.feeds().x } }
    if (seed !== 3) feeds.x = { ...feeds.x, data: feeds.x.data.map((v, i) => Math.sin(i * 0.01 * seed) * 0.8) }
    const a = (await runModel(cls.path, feeds))['softmax_0.tmp_0']
    const b = (await runModel(bytes, feeds))['softmax_0.tmp_0']
    t.is(b.type, 'float32')
    worst = Math.min(worst, compareTensors(a.data, b.data).sqnrDb)
  }
  t.log(`PP-OCR cls: SQNR ${worst.toFixed(1)} dB, ${report.bytes.before} → ${report.bytes.after} bytes, ${report.castsInserted} Casts`)
  t.true(worst >= 40, `${worst} dB`)
})
