// Bias correction on a real model with BatchNorms: PP-OCR mobile v2 cls (MobileNetV3) at W8A8
// per-tensor (config 'per_tensor'). The analytical correction (from the folded BNs' β and γ, on the
// layers whose input is a BN output, through Relu or not) and the empirical one (measured) are
// compared on those layers (Pearson correlation of the per-channel shifts), and each is checked to
// raise the output SQNR against FP32 on held-out pseudo-text images (bench/evidence-data.mjs).
// Figures go to the log for docs/seq-mse.md.
import test from 'ava'
import { createRequire } from 'node:module'
import { MODELS, syntheticImage } from '../bench/evidence-data.mjs'

const require = createRequire(import.meta.url)
const { QuantSim, applyBiasCorrection, compareTensors } = require('../dist/index.js')
const { runModel } = await import('./helpers/ort.mjs')
const { saveModel } = require('../dist/onnx/saveModel.js')

const [H, W] = [48, 192]
function images(n, seed) {
  const data = new Float32Array(n * 3 * H * W)
  for (let i = 0; i < n; i++) data.set(syntheticImage(H, W, seed * 1000 + i), i * 3 * H * W)
  return { data, dims: [n, 3, H, W] }
}
const calib = [1, 2].map((s) => ({ x: images(8, s) }))
const heldOut = images(32, 77)

function pearson(a, b) {
  const n = a.length
  const [ma, mb] = [a.reduce((s, v) => s + v, 0) / n, b.reduce((s, v) => s + v, 0) / n]
  let [sab, saa, sbb] = [0, 0, 0]
  for (let i = 0; i < n; i++) { sab += (a[i] - ma) * (b[i] - mb); saa += (a[i] - ma) ** 2; sbb += (b[i] - mb) ** 2 }
  return sab / Math.sqrt(saa * sbb)
}

async function evaluate(sim, fp) {
  const q = Object.values(await sim.run({ x: heldOut }))[0].data
  let agree = 0
  for (let i = 0; i < fp.length; i += 2) agree += (fp[i] > fp[i + 1]) === (q[i] > q[i + 1]) ? 1 : 0
  return { sqnrDb: compareTensors(fp, Float32Array.from(q)).sqnrDb, top1: agree / (fp.length / 2) }
}

test('PP-OCR cls W8A8 per-tensor: analytical and empirical shifts correlate; empirical and auto raise the output SQNR', async (t) => {
  const modes = ['none', 'empirical', 'analytical', 'analytical-relu', 'auto']
  const sims = {}
  try {
    for (const mode of modes) {
      sims[mode] = await QuantSim.create(MODELS.cls, { config: 'per_tensor', intraOpNumThreads: 1 })
      await sims[mode].computeEncodings(calib)
    }
    const fp = Float32Array.from(Object.values(await runModel(await saveModel(sims.none.model), { x: { type: 'float32', ...heldOut } }))[0].data)
    const reports = {}
    for (const mode of ['empirical', 'analytical', 'auto']) reports[mode] = await applyBiasCorrection(sims[mode], calib, { mode })
    // The analytical correction on the layers read through a Relu only (see the docs for why).
    const reluLayers = reports.analytical.layers.filter((l) => l.activation === 'relu').map((l) => l.node)
    reports['analytical-relu'] = await applyBiasCorrection(sims['analytical-relu'], calib, { mode: 'analytical', layers: reluLayers })
    const results = {}
    for (const mode of modes) results[mode] = await evaluate(sims[mode], fp)
    const analytical = reports.analytical.layers
    const empirical = new Map(reports.empirical.layers.map((l) => [l.node, l.shift]))
    const corr = (layers) => {
      const [xa, xe] = [[], []]
      for (const l of layers) { xa.push(...l.shift); xe.push(...empirical.get(l.node)) }
      return { r: pearson(xa, xe), n: xa.length }
    }
    const all = corr(analytical)
    const relu = corr(analytical.filter((l) => l.activation === 'relu'))
    const linear = corr(analytical.filter((l) => l.activation === 'none'))
    const fmt = (x) => `${x.sqnrDb.toFixed(2)} dB (top-1 agreement ${x.top1.toFixed(3)})`
    t.log(`layers: ${reports.empirical.layers.length} corrected empirically; ${analytical.length} analytically (${analytical.map((l) => `${l.node}:${l.activation}`).join(', ')}); auto = ${reports.auto.layers.filter((l) => l.method === 'analytical').length} analytical + ${reports.auto.layers.filter((l) => l.method === 'empirical').length} empirical`)
    t.log(`shift correlation analytical vs empirical: r = ${all.r.toFixed(3)} over ${all.n} channels; through Relu r = ${relu.r.toFixed(3)} (${relu.n}); BN output read directly r = ${linear.r.toFixed(3)} (${linear.n})`)
    t.log(Object.entries(results).map(([m, x]) => `${m}: ${fmt(x)}`).join('; '))
    t.true(analytical.length >= 5, 'PP-OCR cls has Conv layers right after a BN (+Relu)')
    t.true(all.r > 0.5, `correlation ${all.r}`)
    t.true(results.empirical.sqnrDb > results.none.sqnrDb, 'empirical correction raises SQNR')
    t.true(results.auto.sqnrDb > results.none.sqnrDb, 'auto (analytical + empirical) raises SQNR')
  } finally {
    await Promise.all(Object.values(sims).map((s) => s.close()))
  }
})
