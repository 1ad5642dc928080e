// An evaluation module for `quantkit compress --eval` and `quantkit analyze --eval-module`:
// top-1 accuracy of a candidate model, given as ONNX bytes, on the first 500 bundled MNIST test
// digits, with onnxruntime-node. quantkit loads it in worker threads, so it opens its own session.
//   quantkit compress examples/mnist/mnist-cnn.onnx --scheme spatial_svd --target 0.5 \
//     --eval examples/mnist/evaluate.mjs --out out/compressed
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { parseNpyHeader } = require('../../dist/index.js') // `require('quantkit')` in your project

const COUNT = 500
const BATCH = 100

function npy(name) {
  const path = fileURLToPath(new URL(name, import.meta.url))
  const bytes = new Uint8Array(readFileSync(path))
  return { header: parseNpyHeader(bytes, bytes.length, path), bytes }
}

const images = npy('./test-images.npy') // float32 [1000, 1, 28, 28]
const labels = npy('./test-labels.npy') // uint8 [1000]
const pixels = new Float32Array(images.bytes.slice(images.header.dataOffset).buffer)
const classes = labels.bytes.subarray(labels.header.dataOffset)

export async function evaluate(modelBytes, ctx) {
  // Optimisations off: `quantkit analyze --eval-module` sends simulation (QDQ) models, which ORT
  // runs bit-exactly like the sim only unoptimised (and some 4-bit ones do not load optimised).
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: ctx?.threads ?? 1, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
  try {
    const input = session.inputNames[0]
    let correct = 0
    for (let start = 0; start < COUNT; start += BATCH) {
      const n = Math.min(BATCH, COUNT - start)
      const x = new ort.Tensor('float32', pixels.subarray(start * 784, (start + n) * 784), [n, 1, 28, 28])
      const scores = Object.values(await session.run({ [input]: x }))[0].data
      const k = scores.length / n
      for (let i = 0; i < n; i++) {
        let best = 0
        for (let c = 1; c < k; c++) if (scores[i * k + c] > scores[i * k + best]) best = c
        if (best === classes[start + i]) correct++
      }
    }
    return correct / COUNT
  } finally {
    await session.release()
  }
}
