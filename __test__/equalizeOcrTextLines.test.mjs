// PP-OCR mobile v2 cls (text orientation, 0° vs 180°) at W8A8 per-tensor (config 'per_tensor'), with
// and without cross-layer equalization, on pseudo-text lines (bench/evidence-data.mjs: glyph-like
// strokes on smooth backgrounds) and the same lines rotated by 180°, so that the FP32 model predicts
// both classes. Output SQNR and top-1 agreement against FP32 on 128 held-out lines; figures for
// docs/cle.md. (equalizeQuantSim.test.mjs measures the same on smooth images without text.)
import test from 'ava'
import { createRequire } from 'node:module'
import { MODELS, syntheticImage } from '../bench/evidence-data.mjs'

const require = createRequire(import.meta.url)
const { QuantSim, equalizeModel, prepareModel, compareTensors } = require('../dist/index.js')
const { runModel } = await import('./helpers/ort.mjs')
const { saveModel } = require('../dist/onnx/saveModel.js')

const [H, W] = [48, 192]
const PLANE = 3 * H * W
/** n lines; with `rotated`, the second half is the first half turned by 180°. */
function lines(n, seed, rotated = false) {
  const data = new Float32Array(n * PLANE)
  const distinct = rotated ? n / 2 : n
  for (let i = 0; i < distinct; i++) data.set(syntheticImage(H, W, seed * 1000 + i), i * PLANE)
  if (rotated) {
    for (let i = 0; i < distinct; i++) {
      const src = data.subarray(i * PLANE, (i + 1) * PLANE)
      const dst = data.subarray((distinct + i) * PLANE, (distinct + i + 1) * PLANE)
      for (let c = 0; c < 3; c++) for (let k = 0; k < H * W; k++) dst[c * H * W + k] = src[c * H * W + (H * W - 1 - k)]
    }
  }
  return { data, dims: [n, 3, H, W] }
}

test('PP-OCR cls W8A8 per-tensor on pseudo-text lines: SQNR and top-1 agreement with and without CLE', async (t) => {
  const calib = [1, 2, 3, 4].map((s) => ({ x: lines(8, s, true) }))
  const evals = [0, 1, 2, 3].map((k) => lines(32, 50 + k, true))
  const { model: folded } = await prepareModel(MODELS.cls)
  const { model: scaledOnly } = await equalizeModel(MODELS.cls, { highBiasFold: false })
  const { model: equalized } = await equalizeModel(MODELS.cls)
  const fp = []
  for (const e of evals) fp.push(Object.values(await runModel(await saveModel(folded), { x: { type: 'float32', ...e } }))[0].data)
  const fpAll = Float32Array.from(fp.flatMap((a) => Array.from(a)))
  let rotatedVotes = 0
  for (let i = 0; i < fpAll.length; i += 2) rotatedVotes += fpAll[i + 1] > fpAll[i] ? 1 : 0
  const measure = async (model) => {
    const sim = await QuantSim.create(model, { config: 'per_tensor', intraOpNumThreads: 1 })
    try {
      await sim.computeEncodings(calib)
      const q = []
      for (const e of evals) q.push(...Object.values(await sim.run({ x: e }))[0].data)
      let agree = 0
      for (let i = 0; i < fpAll.length; i += 2) agree += (fpAll[i] > fpAll[i + 1]) === (q[i] > q[i + 1]) ? 1 : 0
      return { sqnrDb: compareTensors(fpAll, Float32Array.from(q)).sqnrDb, top1: agree / (fpAll.length / 2) }
    } finally {
      await sim.close()
    }
  }
  const before = await measure(folded)
  const scaled = await measure(scaledOnly)
  const after = await measure(equalized)
  const fmt = (x) => `${x.sqnrDb.toFixed(2)} dB, top-1 agreement ${x.top1.toFixed(3)}`
  t.log(`FP32 says "180°" for ${rotatedVotes} of ${fpAll.length / 2} lines. W8A8 per_tensor: BN-folded ${fmt(before)}; scaling only ${fmt(scaled)}; scaling + high-bias fold ${fmt(after)}`)
  t.true(rotatedVotes > 0 && rotatedVotes < fpAll.length / 2, 'the FP32 model predicts both classes on these lines')
  t.true(scaled.sqnrDb > before.sqnrDb, `cross-layer scaling should raise the per-tensor SQNR (${before.sqnrDb} → ${scaled.sqnrDb} dB)`)
})
