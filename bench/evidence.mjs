// `npm run evidence`: QuantSim's accuracy evidence, written into bench/results/quantsim.json
// (section "accuracy") and summarised in docs/quantsim-evidence.md.
//
// - MNIST (__test__/fixtures/mnist-cnn.onnx): FP32 vs simulated accuracy on the 2,000 held-out
//   digits, calibrated on the first 512 training digits, for every scheme and bitwidth setting,
//   default (per-channel) vs per_tensor config.
// - Real models from npm: SQNR of the simulated output against the FP32 model's, per scheme,
//   per-channel vs per-tensor, on synthetic inputs (see bench/evidence-data.mjs): PP-OCR cls and
//   det, the openWakeWord embedding model; a few extra settings where peers.md §9 has a figure.
//
// Environment: ORT_THREADS (default: all cores), EVIDENCE_ONLY=mnist,cls,det,oww,rec to run a subset.
import { createRequire } from 'node:module'
import os from 'node:os'
import { MODELS, concat, errorStats, machine, ocrFeeds, owwFeeds, writeSection } from './evidence-data.mjs'
import { loadMnist } from '../__test__/helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const { QuantSim } = require('../dist/index.js')
const ort = require('onnxruntime-node')

const THREADS = Number(process.env.ORT_THREADS ?? os.availableParallelism())
const ONLY = process.env.EVIDENCE_ONLY ? new Set(process.env.EVIDENCE_ONLY.split(',')) : undefined
const SCHEMES = ['min_max', 'tf_enhanced', 'percentile', 'mse', 'entropy']
const t0 = performance.now()
const log = (...a) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)}s]`, ...a)

async function fp32Session(path) {
  return ort.InferenceSession.create(path, { intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'] })
}

async function runFp32(session, feedsList) {
  const outs = []
  for (const feeds of feedsList) {
    const ortFeeds = {}
    for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor(t.type, t.data, t.dims)
    const r = await session.run(ortFeeds)
    outs.push(r[session.outputNames[0]].data)
  }
  return outs
}

/** Creates, calibrates and runs one sim; returns its outputs (first graph output) and timings. */
async function simulate(path, opts, calib, evalFeeds, outputName) {
  const t = performance.now()
  const sim = await QuantSim.create(path, { intraOpNumThreads: THREADS, ...opts })
  const tc = performance.now()
  await sim.computeEncodings(calib)
  const calibMs = performance.now() - tc
  const outs = []
  try {
    for (const feeds of evalFeeds) outs.push((await sim.run(feeds))[outputName].data)
  } finally {
    await sim.close()
  }
  return { outs, calibMs, totalMs: performance.now() - t, quantizers: sim.report.quantizers }
}

const argmax = (a, off, n) => {
  let b = 0
  for (let i = 1; i < n; i++) if (a[off + i] > a[off + b]) b = i
  return b
}

function label(opts) {
  const w = opts.paramBitwidth ?? 8
  const a = opts.activationBitwidth ?? 8
  return `W${w}A${a} ${opts.quantScheme ?? 'min_max'} ${opts.config ?? 'default'}${opts.prepare === false ? ' (no preparation)' : ''}`
}

// ---------------------------------------------------------------------------------------------
async function mnist() {
  const train = loadMnist({ split: 'train', count: 512 })
  const test = loadMnist({ split: 'test' })
  const calib = []
  for (let b = 0; b < 512 / 64; b++) {
    calib.push({ input: { type: 'float32', data: train.images.slice(b * 64 * 784, (b + 1) * 64 * 784), dims: [64, 1, 28, 28] } })
  }
  const evalFeeds = [{ input: { type: 'float32', data: test.images, dims: test.dims } }]
  const session = await fp32Session(MODELS.mnist)
  const [ref] = await runFp32(session, evalFeeds)
  await session.release()
  const score = (logits) => {
    let correct = 0
    for (let i = 0; i < test.count; i++) if (argmax(logits, i * 10, 10) === test.labels[i]) correct++
    return correct / test.count
  }
  const fp32 = score(ref)
  log(`MNIST FP32 ${(fp32 * 100).toFixed(2)} %`)
  const settings = []
  for (const config of ['default', 'per_tensor']) {
    for (const quantScheme of SCHEMES) settings.push({ quantScheme, config })
    settings.push({ quantScheme: 'min_max', config, activationBitwidth: 16 })
    settings.push({ quantScheme: 'min_max', config, paramBitwidth: 4 })
    settings.push({ quantScheme: 'tf_enhanced', config, paramBitwidth: 4 })
  }
  const rows = []
  for (const opts of settings) {
    const r = await simulate(MODELS.mnist, opts, calib, evalFeeds, 'logits')
    const acc = score(r.outs[0])
    let agree = 0
    for (let i = 0; i < test.count; i++) if (argmax(r.outs[0], i * 10, 10) === argmax(ref, i * 10, 10)) agree++
    const row = { setting: label(opts), ...opts, accuracy: acc, dropPoints: (fp32 - acc) * 100, top1AgreementWithFp32: agree / test.count, logitsSqnrDb: errorStats(ref, r.outs[0]).sqnrDb, calibrationMs: Math.round(r.calibMs) }
    rows.push(row)
    log(`MNIST ${row.setting}: ${(acc * 100).toFixed(2)} % (drop ${row.dropPoints.toFixed(2)} points), logits SQNR ${row.logitsSqnrDb.toFixed(1)} dB`)
  }
  return { model: 'mnist-cnn.onnx', calibration: '512 training digits (8 batches of 64)', evaluation: '2,000 held-out digits', fp32Accuracy: fp32, results: rows }
}

// ---------------------------------------------------------------------------------------------
async function realModel(key, { name, path, input, calibFeeds, evalFeeds, outputName, settings, extra }) {
  const session = await fp32Session(path)
  const ref = await runFp32(session, evalFeeds)
  await session.release()
  const refAll = concat(ref)
  const rows = []
  for (const opts of settings) {
    const r = await simulate(path, opts, calibFeeds, evalFeeds, outputName)
    const row = { setting: label(opts), ...opts, outputSqnrDb: errorStats(refAll, concat(r.outs)).sqnrDb, ...extra?.(ref, r.outs), calibrationMs: Math.round(r.calibMs), quantizers: r.quantizers }
    rows.push(row)
    log(`${name} ${row.setting}: SQNR ${row.outputSqnrDb.toFixed(2)} dB${extra ? ' ' + JSON.stringify(extra(ref, r.outs)) : ''} (calibration ${(r.calibMs / 1000).toFixed(1)} s)`)
  }
  return { model: name, input, calibrationSamples: calibFeeds.length, evaluationSamples: evalFeeds.length, output: outputName, results: rows }
}

const grid = (extraSettings = []) => {
  const s = []
  for (const config of ['default', 'per_tensor']) for (const quantScheme of SCHEMES) s.push({ quantScheme, config })
  return [...s, ...extraSettings]
}

const clsTop1 = (ref, outs) => {
  let agree = 0
  for (let i = 0; i < ref.length; i++) if (argmax(ref[i], 0, 2) === argmax(outs[i], 0, 2)) agree++
  return { top1AgreementWithFp32: agree / ref.length }
}

const detIou = (ref, outs) => {
  let inter = 0
  let union = 0
  for (let i = 0; i < ref.length; i++) {
    for (let j = 0; j < ref[i].length; j++) {
      const a = ref[i][j] > 0.3
      const b = outs[i][j] > 0.3
      if (a && b) inter++
      if (a || b) union++
    }
  }
  return { textMaskIouAt03: union === 0 ? 1 : inter / union }
}

const recAgreement = (ref, outs) => {
  // Greedy CTC tokens per timestep: share of the 40 timesteps whose argmax class matches FP32's.
  let agree = 0
  let total = 0
  for (let i = 0; i < ref.length; i++) {
    const steps = ref[i].length / 6625
    for (let t = 0; t < steps; t++) {
      total++
      if (argmax(ref[i], t * 6625, 6625) === argmax(outs[i], t * 6625, 6625)) agree++
    }
  }
  return { timestepArgmaxAgreement: agree / total }
}

const sections = {}
const want = (k) => !ONLY || ONLY.has(k)
if (want('mnist')) sections.mnist = await mnist()
if (want('cls')) {
  sections.ppocrCls = await realModel('cls', {
    name: 'PP-OCR mobile v2.0 cls', path: MODELS.cls, input: 'synthetic pseudo-text images 1×3×48×192',
    calibFeeds: Array.from({ length: 64 }, (_, i) => ocrFeeds(48, 192, 1 + i)),
    evalFeeds: Array.from({ length: 64 }, (_, i) => ocrFeeds(48, 192, 1001 + i)),
    outputName: 'softmax_0.tmp_0',
    settings: grid([
      { quantScheme: 'min_max', config: 'default', activationBitwidth: 16 },
      { quantScheme: 'min_max', config: 'default', paramBitwidth: 4 },
      { quantScheme: 'min_max', config: 'default', prepare: false },
    ]),
    extra: clsTop1,
  })
}
if (want('det')) {
  sections.ppocrDet = await realModel('det', {
    name: 'PP-OCRv4 det', path: MODELS.det, input: 'synthetic pseudo-text images 1×3×320×320',
    calibFeeds: Array.from({ length: 16 }, (_, i) => ocrFeeds(320, 320, 1 + i)),
    evalFeeds: Array.from({ length: 8 }, (_, i) => ocrFeeds(320, 320, 1001 + i)),
    outputName: 'sigmoid_0.tmp_0',
    settings: grid([{ quantScheme: 'min_max', config: 'default', activationBitwidth: 16 }]),
    extra: detIou,
  })
}
if (want('oww')) {
  const calibFeeds = []
  const evalFeeds = []
  for (let i = 0; i < 64; i++) calibFeeds.push(await owwFeeds(ort, 1 + i))
  for (let i = 0; i < 64; i++) evalFeeds.push(await owwFeeds(ort, 1001 + i))
  sections.owwEmbedding = await realModel('oww', {
    name: 'openWakeWord embedding_model', path: MODELS.owwEmbedding,
    input: 'input_1 [1, 76, 32, 1]: synthetic voiced audio (16 kHz, int16 range) → melspectrogram.onnx → mel/10 + 2',
    calibFeeds, evalFeeds, outputName: 'conv2d_19',
    settings: grid([{ quantScheme: 'min_max', config: 'default', activationBitwidth: 16 }]),
  })
}
if (want('rec')) {
  sections.ppocrRec = await realModel('rec', {
    name: 'PP-OCRv4 rec', path: MODELS.rec, input: 'synthetic pseudo-text lines 1×3×48×320',
    calibFeeds: Array.from({ length: 16 }, (_, i) => ocrFeeds(48, 320, 1 + i)),
    evalFeeds: Array.from({ length: 8 }, (_, i) => ocrFeeds(48, 320, 1001 + i)),
    outputName: 'softmax_11.tmp_0',
    settings: [{ quantScheme: 'min_max', config: 'default' }, { quantScheme: 'min_max', config: 'default', activationBitwidth: 16 }, { quantScheme: 'min_max', config: 'per_tensor' }],
    extra: recAgreement,
  })
}

const doc = { ...machine(), ortThreads: THREADS, inputs: 'synthetic for the real models (see bench/evidence-data.mjs); MNIST digits from the mnist package', wallSeconds: Math.round((performance.now() - t0) / 1000), ...sections }
const file = writeSection(ONLY ? `accuracy (${[...ONLY].join(',')})` : 'accuracy', doc)
log(`wrote ${file}`)
