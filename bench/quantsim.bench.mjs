// QuantSim speed and memory, written into bench/results/quantsim.json (section "speedMemory") and
// summarised in docs/quantsim-evidence.md. Every figure is a ratio of two things measured in this
// run, on this machine, with the same ORT thread count.
//
// 1. Calibration wall time against plain onnxruntime-node inference over the same 64 samples
//    (PP-OCR cls 1×3×48×192, det 1×3×320×320; min_max and tf_enhanced), with a breakdown: the
//    same float model with graph optimisations off, the tapped model (every observed tensor a graph
//    output, copied into JS by onnxruntime-node) alone, and the tapped model plus observer updates
//    on the main thread.
// 2. Peak RSS of a fresh process calibrating PP-OCR cls on 16, 256 and 1024 samples (generated one
//    at a time, so the data itself takes no memory), against a process that only runs inference.
// 3. The exported int8 QDQ model's CPU latency against the FP32 model, both with ORT's default
//    optimisations ('all'), on PP-OCR det 1×3×640×640 and cls: median of interleaved runs after
//    warm-up, at 1 thread and at all cores; and the QDQ model's output against the simulation's.
//
// Run standalone: `node bench/quantsim.bench.mjs` (ORT_THREADS sets the thread count for 1 and 2;
// default: all cores). Internal: `--rss <samples> <scheme>` and `--rss-baseline` (child processes).
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import os from 'node:os'
import { MODELS, concat, errorStats, machine, ocrFeeds, writeSection } from './evidence-data.mjs'

const require = createRequire(import.meta.url)
const { QuantSim, modelToBytes, cloneModel, addGraphOutput, MinMaxObserver, HistogramObserver } = require('../dist/index.js')
const ort = require('onnxruntime-node')

const THREADS = Number(process.env.ORT_THREADS ?? os.availableParallelism())
const t0 = performance.now()
const log = (...a) => console.error(`[${((performance.now() - t0) / 1000).toFixed(0)}s]`, ...a)
const now = () => performance.now()

function peakRss() {
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN)
  return { vmHwmMiB: kb('VmHWM') / 1024, maxRssMiB: process.resourceUsage().maxRSS / 1024 }
}

const sessionOptions = (level, threads = THREADS) => ({ intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: level, executionProviders: ['cpu'] })
const toOrt = (feeds) => Object.fromEntries(Object.entries(feeds).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]))

// ---------------------------------------------------------------------------------------------
// Child processes for peak RSS.
if (process.argv[2] === '--rss' || process.argv[2] === '--rss-baseline') {
  const n = Number(process.argv[3])
  const scheme = process.argv[4]
  function* data() {
    for (let i = 0; i < n; i++) yield ocrFeeds(48, 192, 1 + (i % 4096))
  }
  const start = now()
  if (process.argv[2] === '--rss-baseline') {
    const sim = await QuantSim.create(MODELS.cls, { intraOpNumThreads: THREADS })
    const s = await ort.InferenceSession.create(modelToBytes(sim.model), sessionOptions('all'))
    for (const f of data()) {
      const r = await s.run(toOrt(f))
      for (const t of Object.values(r)) t.dispose?.()
    }
  } else {
    const sim = await QuantSim.create(MODELS.cls, { intraOpNumThreads: THREADS, quantScheme: scheme })
    await sim.computeEncodings(data)
    await sim.close()
  }
  console.log(JSON.stringify({ samples: n, scheme: scheme ?? 'inference only', wallMs: now() - start, ...peakRss() }))
  process.exit(0)
}

// ---------------------------------------------------------------------------------------------
/** The tensors computeEncodings observes from ORT (same selection as QuantSim.computeEncodings). */
function observedTensors(sim) {
  const g = sim.model.graph
  const inputs = new Set(g.inputs.map((i) => i.name))
  const out = new Set()
  for (const q of sim.quantizers) {
    if (!q.enabled || q.spec.dtype !== 'int' || q.kind === 'param' || q.tiedTo) continue
    if (g.initializers.has(q.tensor) || inputs.has(q.tensor)) continue
    if (q.fixedRange && !Number.isNaN(q.fixedRange.max)) continue
    out.add(q.tensor)
  }
  return [...out]
}

async function timeSession(bytes, level, samples, { observe } = {}) {
  const start = now()
  const s = await ort.InferenceSession.create(bytes, sessionOptions(level))
  const created = now()
  let bytesOut = 0
  let observerMs = 0
  const observers = new Map()
  for (const f of samples) {
    const r = await s.run(toOrt(f))
    for (const [name, t] of Object.entries(r)) {
      bytesOut += t.data.byteLength
      if (observe) {
        const ts = now()
        let o = observers.get(name)
        if (!o) observers.set(name, (o = { mm: new MinMaxObserver(), h: observe === 'min_max' ? undefined : new HistogramObserver() }))
        o.mm.update(t.data)
        o.h?.update(t.data)
        observerMs += now() - ts
      }
      t.dispose?.()
    }
  }
  const end = now()
  await s.release()
  return { createMs: created - start, runsMs: end - created, totalMs: end - start, outputMiBPerSample: bytesOut / samples.length / 2 ** 20, observerMs }
}

async function calibrationCost(name, path, h, w, samples = 64, rounds = 2) {
  const data = Array.from({ length: samples }, (_, i) => ocrFeeds(h, w, 1 + i))
  const sims = {}
  for (const scheme of ['min_max', 'tf_enhanced']) sims[scheme] = await QuantSim.create(path, { intraOpNumThreads: THREADS, quantScheme: scheme })
  const float = modelToBytes(sims.min_max.model)
  const targets = observedTensors(sims.min_max)
  const tapped = cloneModel(sims.min_max.model)
  for (const t of targets) addGraphOutput(tapped.graph, t)
  const tappedBytes = modelToBytes(tapped)
  // Warm-up (page cache, allocator): one plain session over a few samples.
  await timeSession(float, 'all', data.slice(0, 4))
  const best = {}
  const keep = (k, r) => { if (!best[k] || r.totalMs < best[k].totalMs) best[k] = r }
  for (let round = 0; round < rounds; round++) {
    keep('plainAll', await timeSession(float, 'all', data))
    keep('plainDisabled', await timeSession(float, 'disabled', data))
    keep('tappedOnly', await timeSession(tappedBytes, 'disabled', data))
    keep('tappedPlusMinMaxObservers', await timeSession(tappedBytes, 'disabled', data, { observe: 'min_max' }))
    keep('tappedPlusHistogramObservers', await timeSession(tappedBytes, 'disabled', data, { observe: 'tf_enhanced' }))
    for (const scheme of ['min_max', 'tf_enhanced']) {
      const start = now()
      await sims[scheme].computeEncodings(data)
      keep(`calibration_${scheme}`, { totalMs: now() - start })
    }
  }
  for (const s of Object.values(sims)) await s.close()
  const plain = best.plainAll
  const r = (k) => best[k].totalMs / plain.totalMs
  const runsRatio = (k) => (best[k].totalMs - (best[k].createMs ?? 0)) / plain.runsMs
  const result = {
    model: name, input: `synthetic 1×3×${h}×${w}`, samples, observedTensors: targets.length, ortThreads: THREADS, rounds: `best of ${rounds}`,
    tappedOutputMiBPerSample: best.tappedOnly.outputMiBPerSample,
    ms: Object.fromEntries(Object.entries(best).map(([k, v]) => [k, Object.fromEntries(Object.entries(v).map(([a, b]) => [a, Math.round(b * 10) / 10]))])),
    ratiosToPlainInference: {
      // Each side's wall time including its session creation (calibration: worker start, session, runs, encodings).
      calibrationMinMax: r('calibration_min_max'),
      calibrationTfEnhanced: r('calibration_tf_enhanced'),
      plainWithOptimisationsOff: r('plainDisabled'),
      tappedRunsOnly: r('tappedOnly'),
      tappedPlusMinMaxObserversOnMainThread: r('tappedPlusMinMaxObservers'),
      tappedPlusHistogramObserversOnMainThread: r('tappedPlusHistogramObservers'),
    },
    ratiosToPlainRunsOnly: {
      // Against plain inference's runs alone (its session already created): the stricter figure.
      calibrationMinMax: best.calibration_min_max.totalMs / plain.runsMs,
      calibrationTfEnhanced: best.calibration_tf_enhanced.totalMs / plain.runsMs,
      tappedRunsOnly: runsRatio('tappedOnly'),
    },
    shareOfCalibrationMinMax: {
      plainInference: plain.totalMs / best.calibration_min_max.totalMs,
      optimisationsOff: (best.plainDisabled.totalMs - plain.totalMs) / best.calibration_min_max.totalMs,
      tapsAndOutputCopies: (best.tappedOnly.totalMs - best.plainDisabled.totalMs) / best.calibration_min_max.totalMs,
      minMaxObservers: best.tappedPlusMinMaxObservers.observerMs / best.calibration_min_max.totalMs,
      rest: (best.calibration_min_max.totalMs - best.tappedOnly.totalMs - best.tappedPlusMinMaxObservers.observerMs) / best.calibration_min_max.totalMs,
    },
  }
  const f = (x) => x.toFixed(2)
  log(`${name}: calibration min_max ×${f(result.ratiosToPlainInference.calibrationMinMax)}, tf_enhanced ×${f(result.ratiosToPlainInference.calibrationTfEnhanced)} of plain inference; ` +
    `optimisations off ×${f(result.ratiosToPlainInference.plainWithOptimisationsOff)}, tapped runs ×${f(result.ratiosToPlainInference.tappedRunsOnly)}, ` +
    `+min-max observers ×${f(result.ratiosToPlainInference.tappedPlusMinMaxObserversOnMainThread)}, +histograms ×${f(result.ratiosToPlainInference.tappedPlusHistogramObserversOnMainThread)} ` +
    `(${targets.length} tensors, ${f(result.tappedOutputMiBPerSample)} MiB per sample)`)
  return result
}

function rssRuns() {
  const self = fileURLToPath(import.meta.url)
  const child = (args) => {
    const r = spawnSync(process.execPath, [self, ...args], { env: { ...process.env, ORT_THREADS: String(THREADS) }, encoding: 'utf8', maxBuffer: 1 << 24 })
    if (r.status !== 0) throw new Error(`child ${args.join(' ')} failed: ${r.stderr}`)
    return JSON.parse(r.stdout.trim().split('\n').pop())
  }
  const runs = [child(['--rss-baseline', '16'])]
  log(`RSS inference only, 16 samples: ${runs[0].vmHwmMiB.toFixed(0)} MiB`)
  for (const scheme of ['min_max', 'tf_enhanced']) {
    for (const n of [16, 256, 1024]) {
      const r = child(['--rss', String(n), scheme])
      runs.push(r)
      log(`RSS ${scheme}, ${n} samples: VmHWM ${r.vmHwmMiB.toFixed(0)} MiB (maxRSS ${r.maxRssMiB.toFixed(0)}), ${(r.wallMs / 1000).toFixed(1)} s`)
    }
  }
  const by = (scheme, n) => runs.find((r) => r.scheme === scheme && r.samples === n)
  const ratios = {}
  for (const scheme of ['min_max', 'tf_enhanced']) {
    ratios[scheme] = { peak1024vs16: by(scheme, 1024).vmHwmMiB / by(scheme, 16).vmHwmMiB, peak256vs16: by(scheme, 256).vmHwmMiB / by(scheme, 16).vmHwmMiB, peak16vsInferenceOnly: by(scheme, 16).vmHwmMiB / runs[0].vmHwmMiB }
  }
  return { model: 'PP-OCR mobile v2.0 cls', input: 'synthetic 1×3×48×192, generated one at a time (a generator)', measure: 'VmHWM of /proc/self/status (and process.resourceUsage().maxRSS), fresh process each', runs, ratios }
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

async function qdqLatency(name, path, h, w, { calibSamples, runs, warmup = 3, w8a16 = false }) {
  const calib = Array.from({ length: calibSamples }, (_, i) => ocrFeeds(h, w, 1 + i))
  const evalFeeds = [ocrFeeds(h, w, 2001), ocrFeeds(h, w, 2002)]
  const dir = mkdtempSync(join(os.tmpdir(), 'quantkit-bench-'))
  const out = { model: name, input: `synthetic 1×3×${h}×${w}`, calibrationSamples: calibSamples, config: 'W8A8 min_max default (per-channel weights)', latency: [], agreement: {} }
  try {
    const variants = [['W8A8', {}]]
    if (w8a16) variants.push(['W8A16', { activationBitwidth: 16 }])
    const files = {}
    let sim8
    for (const [label, opts] of variants) {
      const sim = await QuantSim.create(path, { intraOpNumThreads: THREADS, quantScheme: 'min_max', ...opts })
      await sim.computeEncodings(calib)
      const res = await sim.export(dir, `${name.replace(/\W+/g, '_')}_${label}`, { formats: ['qdq'] })
      files[label] = res.files.find((f) => f.endsWith('.qdq.onnx'))
      if (label === 'W8A8') sim8 = sim
      else await sim.close()
    }
    // Output agreement: the QDQ model with default optimisations (integer kernels) and with them
    // off, against the simulation and against FP32.
    const outName = sim8.model.graph.outputs[0].name
    const simOut = []
    for (const f of evalFeeds) simOut.push((await sim8.run(f))[outName].data)
    const outQ = sim8.quantizers.find((q) => q.kind !== 'param' && q.tensor === outName && q.enabled)
    const scale = outQ?.encodings?.[0]?.scale
    const runAll = async (file, level) => {
      const s = await ort.InferenceSession.create(file, sessionOptions(level))
      const o = []
      for (const f of evalFeeds) o.push((await s.run(toOrt(f)))[outName].data)
      await s.release()
      return concat(o)
    }
    const fp32 = await runAll(path, 'all')
    const qdqAll = await runAll(files.W8A8, 'all')
    const qdqOff = await runAll(files.W8A8, 'disabled')
    const simAll = concat(simOut)
    let differing = 0
    for (let i = 0; i < simAll.length; i++) if (qdqAll[i] !== simAll[i]) differing++
    const offExact = qdqOff.every((v, i) => Object.is(v, simAll[i]))
    const a = errorStats(simAll, qdqAll)
    out.agreement = {
      outputQuantizerScale: scale,
      qdqOptimisationsOffVsSim: { bitExact: offExact, ...errorStats(simAll, qdqOff) },
      qdqDefaultOptimisationsVsSim: { ...a, maxDiffLsb: scale ? a.maxAbsDiff / scale : undefined, elementsDiffering: differing / simAll.length },
      simVsFp32: errorStats(fp32, simAll),
      qdqDefaultOptimisationsVsFp32: errorStats(fp32, qdqAll),
    }
    await sim8.close()
    log(`${name}: QDQ (opt off) vs sim bit-exact ${offExact}; QDQ (default opt) vs sim SQNR ${a.sqnrDb.toFixed(1)} dB, max ${a.maxAbsDiff.toExponential(2)} (${scale ? (a.maxAbsDiff / scale).toFixed(1) : '?'} LSB), ${(differing / simAll.length * 100).toFixed(1)} % of elements differ`)
    // Latency: interleaved runs, median after warm-up.
    for (const threads of [...new Set([1, THREADS])]) {
      const sessions = { FP32: await ort.InferenceSession.create(path, sessionOptions('all', threads)) }
      for (const [label, file] of Object.entries(files)) sessions[label] = await ort.InferenceSession.create(file, sessionOptions('all', threads))
      const feeds = toOrt(evalFeeds[0])
      const times = Object.fromEntries(Object.keys(sessions).map((k) => [k, []]))
      for (let i = 0; i < warmup; i++) for (const s of Object.values(sessions)) await s.run(feeds)
      for (let i = 0; i < runs; i++) {
        for (const [k, s] of Object.entries(sessions)) {
          if (k === 'W8A16' && i >= Math.ceil(runs / 3)) continue
          const st = now()
          await s.run(feeds)
          times[k].push(now() - st)
        }
      }
      for (const s of Object.values(sessions)) await s.release()
      const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]))
      const row = { threads, runs: Object.fromEntries(Object.entries(times).map(([k, v]) => [k, v.length])), medianMs: med, speedupW8A8VsFp32: med.FP32 / med.W8A8 }
      if (med.W8A16) row.speedupW8A16VsFp32 = med.FP32 / med.W8A16
      out.latency.push(row)
      log(`${name}, ${threads} thread(s): FP32 ${med.FP32.toFixed(1)} ms, QDQ W8A8 ${med.W8A8.toFixed(1)} ms → ×${row.speedupW8A8VsFp32.toFixed(2)}${med.W8A16 ? `; W8A16 ${med.W8A16.toFixed(1)} ms → ×${row.speedupW8A16VsFp32.toFixed(2)}` : ''}`)
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  return out
}

const parts = (process.env.BENCH_ONLY ?? 'calibration,rss,latency').split(',')
const doc = { ...machine(), ortThreads: THREADS, inputs: 'synthetic pseudo-text images (bench/evidence-data.mjs)' }
if (parts.includes('calibration')) {
  doc.calibrationTime = [
    await calibrationCost('PP-OCR mobile v2.0 cls', MODELS.cls, 48, 192),
    await calibrationCost('PP-OCRv4 det', MODELS.det, 320, 320),
  ]
}
if (parts.includes('rss')) doc.peakRss = rssRuns()
if (parts.includes('latency')) {
  doc.qdqLatency = [
    await qdqLatency('PP-OCRv4 det', MODELS.det, 640, 640, { calibSamples: 8, runs: 15, w8a16: true }),
    await qdqLatency('PP-OCR mobile v2.0 cls', MODELS.cls, 48, 192, { calibSamples: 32, runs: 200, warmup: 20 }),
  ]
}
doc.wallSeconds = Math.round((now() - t0) / 1000)
const file = writeSection(process.env.BENCH_ONLY ? `speedMemory (${process.env.BENCH_ONLY})` : 'speedMemory', doc)
log(`wrote ${file}`)
console.log(JSON.stringify({ file, wallSeconds: doc.wallSeconds }))
