// `npm run evidence:compression`: model compression evidence, written to
// bench/results/compression.json and summarised in docs/compression.md.
//
// - MNIST CNN (examples/mnist/mnist-cnn.onnx) to 50 % of its MACs with each scheme: the greedy
//   search scores candidates by top-1 accuracy on the first 500 test digits (worker-thread
//   evaluator, __test__/helpers/mnistEvaluate.mjs); accuracy before/after on all 2,000 held-out
//   digits, and after W8A8 QuantSim (default per-channel config, 512 training digits) on top.
// - PP-OCRv4 det at DET_TARGETS (default 0.7 and 0.6) of its MACs with spatial SVD: the score is the SQNR
//   of the probability map against FP32 on synthetic pages (bench/compression-det-eval.mjs); the
//   score curves, the greedy search's wall time, and the latency of compressed over original in
//   onnxruntime-node (both 'all' optimisations, alternating runs in one process, medians).
//
// Environment: ORT_THREADS (default 1: the machine is shared), ONLY=mnist,det, DET_TARGETS, DET_SIZE (256),
// LATENCY_SIZE (640), LATENCY_RUNS (20).
import { createRequire } from 'node:module'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { machine, writeSection, MODELS, ocrFeeds } from './evidence-data.mjs'
import { loadMnist } from '../__test__/helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const { compressModel, QuantSim, prepareModel, modelToBytes } = require('../dist/index.js')
const ort = require('onnxruntime-node')

const here = dirname(fileURLToPath(import.meta.url))
const THREADS = Number(process.env.ORT_THREADS ?? 1)
const ONLY = process.env.ONLY ? new Set(process.env.ONLY.split(',')) : undefined
const t0 = performance.now()
const log = (...a) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)}s]`, ...a)
const MNIST = join(here, '..', 'examples', 'mnist', 'mnist-cnn.onnx')

async function session(model) {
  return ort.InferenceSession.create(model, { intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all' })
}

async function mnistAccuracy(model, test) {
  const s = await session(model)
  try {
    const r = await s.run({ input: new ort.Tensor('float32', test.images, test.dims) })
    return top1(r[s.outputNames[0]].data, test)
  } finally {
    await s.release()
  }
}

function top1(logits, test) {
  let ok = 0
  for (let i = 0; i < test.count; i++) {
    let b = 0
    for (let c = 1; c < 10; c++) if (logits[i * 10 + c] > logits[i * 10 + b]) b = c
    if (b === test.labels[i]) ok++
  }
  return ok / test.count
}

async function w8a8Accuracy(model, calib, test) {
  const sim = await QuantSim.create(model, { intraOpNumThreads: THREADS })
  try {
    await sim.computeEncodings(calib)
    const out = await sim.run({ input: { type: 'float32', data: test.images, dims: test.dims } })
    return top1(Object.values(out)[0].data, test)
  } finally {
    await sim.close()
  }
}

function summary(stats) {
  return {
    targetRatio: stats.targetRatio, achievedRatio: stats.achievedRatio, costBefore: stats.costBefore, costAfter: stats.costAfter,
    threshold: stats.threshold, baselineScore: stats.baselineScore, compressedScore: stats.compressedScore,
    evaluations: stats.evaluations, searchIterations: stats.searchIterations,
    wallSeconds: stats.seconds, evaluationSeconds: stats.evaluationSeconds,
    layers: stats.layers.map((l) => ({ node: l.node, opType: l.opType, chosenRatio: l.chosenRatio, kept: l.kept, full: l.full, macsBefore: l.costBefore.mac, macsAfter: l.costAfter.mac, curve: l.curve })),
    skipped: stats.skipped, notes: stats.notes,
  }
}

async function mnist() {
  process.env.QUANTKIT_EVAL_COUNT = '500'
  const test = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 512 })
  const calib = Array.from({ length: 8 }, (_, b) => ({ input: { type: 'float32', data: train.images.slice(b * 64 * 784, (b + 1) * 64 * 784), dims: [64, 1, 28, 28] } }))
  const fp32 = await mnistAccuracy(MNIST, test)
  const fp32W8a8 = await w8a8Accuracy(MNIST, calib, test)
  log(`MNIST FP32 ${(fp32 * 100).toFixed(2)} %, W8A8 ${(fp32W8a8 * 100).toFixed(2)} %`)
  const rows = []
  for (const scheme of ['weight_svd', 'spatial_svd', 'channel_pruning']) {
    try {
      const { model, stats } = await compressModel(MNIST, {
        scheme, targetRatio: 0.5, evaluate: join(here, '..', '__test__', 'helpers', 'mnistEvaluate.mjs'), concurrency: 1,
        data: calib,
      })
      const bytes = modelToBytes(model)
      const accuracy = await mnistAccuracy(bytes, test)
      const w8a8 = await w8a8Accuracy(model, calib, test)
      rows.push({ scheme, accuracy, w8a8Accuracy: w8a8, ...summary(stats) })
      log(`MNIST ${scheme}: ${stats.achievedRatio.toFixed(3)} of MACs, accuracy ${(accuracy * 100).toFixed(2)} %, W8A8 ${(w8a8 * 100).toFixed(2)} %, search ${stats.seconds.toFixed(1)} s`)
    } catch (err) {
      rows.push({ scheme, error: `${err.name}: ${err.message}` })
      log(`MNIST ${scheme}: ${err.name}: ${err.message}`)
    }
  }
  return {
    model: 'examples/mnist/mnist-cnn.onnx', target: 0.5, search: 'top-1 accuracy on the first 500 test digits, candidates 0.1…0.9',
    evaluation: '2,000 held-out test digits', quantization: 'W8A8 QuantSim, default (per-channel) config, 512 training digits',
    fp32Accuracy: fp32, fp32W8a8Accuracy: fp32W8a8, results: rows,
  }
}

async function latencyRatio(original, compressed, size, runs) {
  const feed = ocrFeeds(size, size, 7).x
  const a = await session(original)
  const b = await session(compressed)
  const time = async (s) => {
    const t = performance.now()
    await s.run({ [s.inputNames[0]]: new ort.Tensor('float32', feed.data, feed.dims) })
    return performance.now() - t
  }
  try {
    for (let i = 0; i < 3; i++) { await time(a); await time(b) }
    const ta = []
    const tb = []
    for (let i = 0; i < runs; i++) { ta.push(await time(a)); tb.push(await time(b)) }
    const median = (xs) => [...xs].sort((x, y) => x - y)[xs.length >> 1]
    return { originalMs: median(ta), compressedMs: median(tb), ratio: median(tb) / median(ta), runs, input: [1, 3, size, size], threads: THREADS }
  } finally {
    await a.release()
    await b.release()
  }
}

async function det() {
  const targets = (process.env.DET_TARGETS ?? '0.7,0.6').split(',').map(Number)
  // Preparation (Constant weights → initializers, BN folds) first: what the compressed model is compared with for latency too.
  const { model: prepared } = await prepareModel(MODELS.det)
  const runs = []
  for (const target of targets) runs.push(await detAt(prepared, target))
  return runs
}

async function detAt(prepared, target) {
  const size = Number(process.env.DET_SIZE ?? 256)
  const { model, stats } = await compressModel(prepared, {
    scheme: 'spatial_svd', targetRatio: target, concurrency: 1,
    evaluate: join(here, 'compression-det-eval.mjs'),
    sample: ocrFeeds(size, size, 1),
    onProgress: (p) => { if (p.phase === 'evaluate' && p.done % 25 === 0) log(`det: ${p.done}/${p.total} evaluations`) },
  })
  log(`det spatial SVD to ${target}: ${stats.achievedRatio.toFixed(3)} of MACs, SQNR ${stats.compressedScore.toFixed(1)} dB, search ${stats.seconds.toFixed(1)} s`)
  const latencySize = Number(process.env.LATENCY_SIZE ?? 640)
  const latency = await latencyRatio(modelToBytes(prepared), modelToBytes(model), latencySize, Number(process.env.LATENCY_RUNS ?? 20))
  log(`det latency: ${latency.originalMs.toFixed(1)} ms → ${latency.compressedMs.toFixed(1)} ms (×${latency.ratio.toFixed(3)})`)
  return {
    model: 'ch_PP-OCRv4_det_infer.onnx (prepared: BN folded, Constant weights as initializers)', scheme: 'spatial_svd',
    score: `SQNR (dB) of the probability map against FP32 on ${process.env.DET_EVAL_IMAGES ?? 3} synthetic ${size}×${size} pseudo-text pages`,
    latency, ...summary(stats),
  }
}

const result = { machine: { ...machine(), ortThreads: THREADS } }
if (!ONLY || ONLY.has('mnist')) result.mnist = await mnist()
if (!ONLY || ONLY.has('det')) result.det = await det()
const file = writeSection(ONLY ? `compression (${[...ONLY].join(',')})` : 'compression', result, 'compression.json')
log(`wrote ${file}`)
