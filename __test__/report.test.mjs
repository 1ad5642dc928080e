// The HTML report: rendered from synthetic ReportData, opened in headless Chromium (Debian's
// package, driven by playwright-core): no errors, every chart drawn, no request leaves the page.
// Set QUANTKIT_UPDATE_SCREENSHOT=1 to refresh docs/report-screenshot.png (the README's picture).
import test from 'ava'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { launchChromium, openHtml, paintedCharts } from './helpers/browser.mjs'

const require = createRequire(import.meta.url)
const { renderReport, writeReport } = require('../dist/report/report.js')
const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const shots = mkdtempSync(join(tmpdir(), 'quantkit-report-'))

// ── Synthetic data ─────────────────────────────────────────────────────────────────────────────
function rng(seed) {
  // mulberry32: small, seeded, good enough for plausible-looking test data.
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function histogram(r, { relu }) {
  const bins = 128
  const lo = relu ? 0 : -4 - 2 * r()
  const hi = 4 + 4 * r()
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins)
  const sigma = 0.8 + r()
  const counts = Array.from({ length: bins }, (_, i) => {
    const x = (edges[i] + edges[i + 1]) / 2
    return Math.round(20000 * Math.exp(-(x * x) / (2 * sigma * sigma)) + (r() < 0.03 ? 40 * r() : 0))
  })
  return { edges, counts, encodingMin: relu ? 0 : -3 * sigma, encodingMax: 3 * sigma }
}

/** A plausible model of `n` quantized layers; `accuracy` picks the metric. */
function syntheticReport(n, { accuracy = true, seed = 7 } = {}) {
  const r = rng(seed)
  const layers = Array.from({ length: n }, (_, i) => {
    const opType = i === n - 1 ? 'Gemm' : i % 3 === 2 ? 'MatMul' : 'Conv'
    return { layer: n <= 12 ? `/features.${i}/${opType}` : `/blocks.${Math.floor(i / 3)}/layer${i % 3}/${opType}`, opType, i }
  })
  const quality = (base, spread) => (accuracy ? Math.min(0.995, base - spread * r()) : 38 - 30 * spread * r())
  return {
    title: `Quantization report: synthetic-${n}`,
    createdAt: '2026-11-02T10:00:00.000Z',
    quantkitVersion: '0.1.0',
    model: {
      file: `synthetic-${n}.onnx`,
      floatBytes: 1_723_904 * Math.max(1, n / 6),
      quantizedBytes: 454_113 * Math.max(1, n / 6),
      parameters: 430_972 * Math.max(1, Math.round(n / 6)),
      ops: { Conv: layers.filter((l) => l.opType === 'Conv').length, MatMul: layers.filter((l) => l.opType === 'MatMul').length, Gemm: 1, Relu: n - 1, MaxPool: 2, Flatten: 1, Add: Math.floor(n / 3), Softmax: 1 },
    },
    metric: accuracy ? 'accuracy' : 'sqnr',
    results: [
      { name: 'FP32', settings: { precision: 'float32' }, accuracy: accuracy ? 0.9912 : undefined, outputSqnrDb: { logits: Infinity }, top1Agreement: 1 },
      { name: 'W8A8 per-channel', settings: { config: 'default', scheme: 'tf_enhanced', paramBitwidth: 8, activationBitwidth: 8 }, accuracy: accuracy ? 0.9906 : undefined, outputSqnrDb: { logits: 31.7 }, top1Agreement: 0.998 },
      { name: 'W8A8 per-tensor', settings: { config: 'per_tensor', scheme: 'tf', paramBitwidth: 8, activationBitwidth: 8 }, accuracy: accuracy ? 0.9871 : undefined, outputSqnrDb: { logits: 24.2 }, top1Agreement: 0.991 },
      { name: 'W4A8 + AdaRound', settings: { config: 'default', scheme: 'tf_enhanced', paramBitwidth: 4, activationBitwidth: 8, adaround: true }, accuracy: accuracy ? 0.9794 : undefined, outputSqnrDb: { logits: 17.9 }, top1Agreement: 0.982 },
    ],
    sensitivity: layers.map((l) => ({ layer: l.layer, opType: l.opType, onlyThisQuantized: quality(0.991, l.i === 0 ? 0.05 : 0.006), allButThis: quality(0.989, 0.004) })),
    layerSqnr: layers.map((l) => ({ tensor: `${l.layer}_output_0`, layer: l.layer, opType: l.opType, sqnrDb: 18 + 20 * r() - (l.i === 0 ? 8 : 0) })),
    weightRanges: layers.map((l) => {
      const channels = [16, 32, 64, 128, 512][l.i % 5]
      const min = []
      const max = []
      for (let c = 0; c < channels; c++) {
        const s = (0.05 + 0.2 * r()) * (r() < 0.04 ? 8 : 1)
        min.push(-s * (0.6 + 0.4 * r()))
        max.push(s * (0.6 + 0.4 * r()))
      }
      const ranges = min.map((m, c) => max[c] - m).sort((a, b) => a - b)
      return { tensor: `${l.layer.replace(/\//g, '.').slice(1)}.weight`, layer: l.layer, opType: l.opType, min, max, spread: ranges[ranges.length - 1] / ranges[Math.floor(ranges.length / 2)] }
    }),
    histograms: layers.map((l) => ({ tensor: `${l.layer}_output_0`, layer: l.layer, ...histogram(r, { relu: l.opType !== 'Gemm' }) })),
    notes: [
      'Batch norms folded into 2 convolutions before quantization.',
      'Per-channel quantization applied to Conv, Gemm and MatMul weights (AIMET default config).',
      'Sensitivity measured on 500 evaluation samples; activation statistics on 256 calibration samples.',
    ],
  }
}

const EVERY_CHART = ['ops', 'sensitivity', 'layerSqnr', 'weightSpread', 'weightChannels', 'histogram']

// ── Browser ────────────────────────────────────────────────────────────────────────────────────
// Launched by the first browser test (so the Node-only tests below run without Chromium), and
// shared: a missing Chromium fails each browser test with launchChromium's message.
let launching
test.after.always(async () => { await (await launching?.catch(() => undefined))?.browser?.close() })

/** Opens `data`'s report; returns null (after logging) when browser tests are skipped. */
async function open(t, data, viewport) {
  launching ??= launchChromium()
  const chromium = await launching
  if (chromium.skipped) { t.log(chromium.skipped); t.pass(); return null }
  const opened = await openHtml(chromium.browser, renderReport(data), viewport)
  t.teardown(() => opened.page.close())
  return opened
}

function assertDrawn(t, charts, expected) {
  t.deepEqual(charts.map((c) => c.chart).sort(), [...expected].sort())
  for (const c of charts) t.true(c.painted > 0, `chart ${c.chart} (${c.width}×${c.height}) drew nothing`)
}

test.serial('a full report opens offline with no errors and every chart drawn', async (t) => {
  const started = Date.now()
  const opened = await open(t, syntheticReport(10))
  if (!opened) return
  const { page, problems, offline } = opened
  t.is(await page.getAttribute('body', 'data-charts-ready'), String(EVERY_CHART.length))
  assertDrawn(t, await paintedCharts(page), EVERY_CHART)
  t.deepEqual(await page.$$eval('section', (s) => s.map((e) => e.id)), ['summary', 'results', 'sensitivity', 'layerSqnr', 'weightRanges', 'histograms', 'notes'])
  t.is(await page.locator('.empty').count(), 0)
  t.is(await page.locator('#results tbody tr').count(), 4)
  t.regex(await page.locator('#results tbody tr').first().innerText(), /99\.12 %.*∞/s)
  t.is(await page.locator('#notes li').count(), 3)
  t.deepEqual(problems, [])
  t.deepEqual(offline(), [])

  const shot = join(shots, 'report-10-layers.png')
  await page.screenshot({ path: shot, fullPage: true })
  t.log(`screenshot: ${shot}; opened and checked in ${Date.now() - started} ms`)
  const readme = join(root, 'docs', 'report-screenshot.png')
  if (process.env.QUANTKIT_UPDATE_SCREENSHOT === '1' || !existsSync(readme)) {
    // The README's picture: the top of the page (summary, results, sensitivity, SQNR).
    await page.screenshot({ path: readme, fullPage: true, clip: { x: 0, y: 0, width: 1200, height: 1900 } })
    t.log(`README screenshot: ${readme} (${Math.round(statSync(readme).size / 1024)} KiB)`)
  }
})

test.serial('300 layers: charts scroll, show top N or all, and selectors redraw', async (t) => {
  const data = syntheticReport(300, { accuracy: false, seed: 11 })
  const opened = await open(t, data)
  if (!opened) return
  const { page, problems, offline } = opened
  assertDrawn(t, await paintedCharts(page), EVERY_CHART)

  // Default: the 50 most sensitive layers; then all 300 in a scroll box.
  const sens = page.locator('[data-section="sensitivity"] select').nth(1)
  await sens.selectOption('300')
  const height = await page.locator('#chart-sensitivity').evaluate((e) => e.getBoundingClientRect().height)
  t.true(height > 300 * 18, `the 300-layer sensitivity chart is ${height} px tall`)
  t.true(await page.locator('[data-section="sensitivity"] .scroll').evaluate((e) => e.scrollHeight > e.clientHeight))
  await page.locator('[data-section="sensitivity"] select').first().selectOption('model')
  await page.locator('[data-section="layerSqnr"] select').nth(1).selectOption('300')

  // Another weight, picked from the selector, and another activation with log counts.
  const weights = page.locator('[data-section="weightRanges"] h3 + .controls select')
  const options = await weights.locator('option').evaluateAll((os) => os.map((o) => o.value))
  t.is(options.length, 300)
  await weights.selectOption(options[299])
  t.regex(await page.locator('[data-section="weightRanges"]').innerText(), /Per-channel range/)
  await page.locator('[data-section="histograms"] select').selectOption('299')
  await page.locator('[data-section="histograms"] input[type=checkbox]').check()

  assertDrawn(t, await paintedCharts(page), EVERY_CHART)
  t.deepEqual(problems, [])
  t.deepEqual(offline(), [])
  await page.screenshot({ path: join(shots, 'report-300-layers.png'), fullPage: true })
})

test.serial('sections without data say "Not measured" and the rest still draws', async (t) => {
  const full = syntheticReport(4)
  const data = { ...full, sensitivity: undefined, layerSqnr: [], weightRanges: undefined, histograms: [], results: [], notes: [], model: { ...full.model, quantizedBytes: undefined } }
  const opened = await open(t, data)
  if (!opened) return
  const { page, problems, offline } = opened
  assertDrawn(t, await paintedCharts(page), ['ops'])
  for (const s of ['sensitivity', 'layerSqnr', 'weightRanges', 'histograms']) {
    t.is(await page.locator(`#${s} .empty`).innerText(), 'Not measured.')
  }
  t.regex(await page.locator('#results').innerText(), /No configurations evaluated/)
  t.regex(await page.locator('#summary').innerText(), /not exported/)
  t.deepEqual(problems, [])
  t.deepEqual(offline(), [])
})

test.serial('names that look like markup stay text, and ±∞ and NaN survive the trip', async (t) => {
  const data = syntheticReport(3)
  const evil = '</script><script>window.pwned = 1</script><!--'
  data.sensitivity[1].layer = evil
  data.layerSqnr[0].sqnrDb = Infinity
  data.layerSqnr[1].sqnrDb = NaN
  data.layerSqnr[2].sqnrDb = -Infinity
  data.results[1].name = evil
  const html = renderReport(data)

  // The inline JSON, revived as the page does, is the data given.
  const json = /<script type="application\/json" id="quantkit-report-data">(.*?)<\/script>/s.exec(html)[1]
  const revived = JSON.parse(json, (_k, v) => (v && typeof v === 'object' && typeof v.$nonFinite === 'string' ? Number(v.$nonFinite) : v))
  t.deepEqual(revived, JSON.parse(JSON.stringify(data, (_k, v) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : v)),
    (_k, v) => (v === 'NaN' ? NaN : v === 'inf' ? Infinity : v === '-inf' ? -Infinity : v)))

  const opened = await open(t, data)
  if (!opened) return
  const { page, problems, offline } = opened
  t.is(await page.evaluate(() => window.pwned), undefined)
  t.is(await page.locator('#results tbody tr').nth(1).locator('td').first().innerText(), evil)
  assertDrawn(t, await paintedCharts(page), EVERY_CHART)
  t.deepEqual(problems, [])
  t.deepEqual(offline(), [])
})

// ── Node only ──────────────────────────────────────────────────────────────────────────────────
test('the report is one self-contained file', (t) => {
  const html = renderReport(syntheticReport(5))
  t.regex(html, /^<!doctype html>/)
  t.regex(html, /Content-Security-Policy" content="default-src 'none'/)
  t.regex(html, /Chart\.js 4\.\d+\.\d+, MIT licence/)
  t.notRegex(html, /<script[^>]+src=|<link[^>]+href=|sourceMappingURL/)
  t.true(html.length < 600_000, `${html.length} characters`)
})

test('writeReport replaces the file atomically and leaves no temporary file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-report-write-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'report.html')
  writeFileSync(path, 'old')
  const data = syntheticReport(3)
  await writeReport(path, data)
  t.is(readFileSync(path, 'utf8'), renderReport(data))
  t.deepEqual(readdirSync(dir), ['report.html'])

  const missing = join(dir, 'no-such-folder', 'report.html')
  await t.throwsAsync(writeReport(missing, data), { code: 'ENOENT' })
  // Invalid data fails before anything is written, naming the tensor.
  const bad = syntheticReport(3)
  bad.histograms[1].edges.pop()
  await t.throwsAsync(writeReport(path, bad), { message: /histogram of "\/features\.1\/Conv_output_0" has 128 edges and 128 counts/ })
  t.is(readFileSync(path, 'utf8'), renderReport(data))
  t.deepEqual(readdirSync(dir), ['report.html'])
})

test('invalid report data is refused with the entry named', (t) => {
  const data = syntheticReport(3)
  data.weightRanges[2].max.pop()
  t.throws(() => renderReport(data), { message: /weightRanges of "features\.2\.Gemm\.weight" has 64 min and 63 max values/ })
  t.throws(() => renderReport({ ...syntheticReport(2), metric: 'f1' }), { message: /metric is "f1"; expected 'accuracy' or 'sqnr'/ })
})
