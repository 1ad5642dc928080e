// Evaluation module for bench/compression.mjs (loaded by quantkit's worker-thread evaluator):
// the score of a PP-OCRv4 det candidate is the SQNR (dB) of its probability map against the FP32
// model's, over DET_EVAL_IMAGES synthetic pseudo-text pages (bench/evidence-data.mjs) of
// DET_SIZE × DET_SIZE pixels. The FP32 reference is computed once per worker.
import { createRequire } from 'node:module'
import { MODELS, ocrFeeds } from './evidence-data.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')

const SIZE = Number(process.env.DET_SIZE ?? 256)
const IMAGES = Number(process.env.DET_EVAL_IMAGES ?? 3)
const feeds = Array.from({ length: IMAGES }, (_, i) => ocrFeeds(SIZE, SIZE, 100 + i).x)

async function outputs(model, threads) {
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' })
  try {
    const outs = []
    for (const f of feeds) {
      const r = await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', f.data, f.dims) })
      outs.push(r[s.outputNames[0]].data)
    }
    return outs
  } finally {
    await s.release()
  }
}

let reference

export async function evaluate(modelBytes, ctx) {
  reference ??= await outputs(MODELS.det, ctx.threads)
  const got = await outputs(modelBytes, ctx.threads)
  let signal = 0
  let noise = 0
  for (let k = 0; k < got.length; k++) {
    const a = reference[k]
    const b = got[k]
    for (let i = 0; i < a.length; i++) {
      signal += a[i] * a[i]
      noise += (a[i] - b[i]) ** 2
    }
  }
  // Identical outputs have infinite SQNR; a score must be finite, so they count as 200 dB.
  return noise === 0 ? 200 : 10 * Math.log10(signal / noise)
}
