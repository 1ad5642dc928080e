// An evaluation module as `quantkit compress --eval` and compressModel({ evaluate: path }) load it
// in worker threads: top-1 accuracy of the candidate model (ONNX bytes) on the first
// QUANTKIT_EVAL_COUNT (default 500) MNIST test digits, with onnxruntime-node on this thread.
import { createRequire } from 'node:module'
import { loadMnist, mnistAccuracy } from './mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const set = loadMnist({ split: 'test', count: Number(process.env.QUANTKIT_EVAL_COUNT ?? 500) })

export async function evaluate(modelBytes, ctx) {
  const session = await ort.InferenceSession.create(modelBytes, { intraOpNumThreads: ctx?.threads ?? 1, interOpNumThreads: 1 })
  try {
    return await mnistAccuracy((feeds) => session.run({ input: new ort.Tensor('float32', feeds.input.data, feeds.input.dims) }), set, 100)
  } finally {
    await session.release()
  }
}
