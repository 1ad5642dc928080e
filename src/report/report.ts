// The HTML report: one self-contained file (styles, Chart.js, the data and the script that draws
// the charts all inline; a Content-Security-Policy forbids any request) that a user can open from
// disk, attach to a ticket or keep as a CI artifact. Tables are rendered here as static HTML;
// charts are drawn in the browser by reportClient.ts from the ReportData in a JSON script tag.
import { randomBytes } from 'node:crypto'
import { open, rename, rm } from 'node:fs/promises'
import { basename, dirname, join, resolve } from 'node:path'
import { QuantkitError } from '../errors.js'
import { chartLibrary } from './chartLibrary.js'
import { reportClient } from './reportClient.js'
import { COMPRESSION_SECTION_TITLE, compressionClient, compressionSection } from './compressionSection.js'
import { TECHNIQUES_SECTION_TITLE, techniquesClient, techniquesSection } from './techniquesSection.js'
import type { ReportData, ResultRow } from './reportData.js'

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

function fmt(v: number | undefined, digits = 4): string {
  if (v === undefined) return '–'
  if (Number.isNaN(v)) return 'NaN'
  if (v === Infinity) return '∞'
  if (v === -Infinity) return '−∞'
  return Number(v.toPrecision(digits)).toString()
}

const percent = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? fmt(v) : `${(v * 100).toFixed(2)} %`)

function bytes(n: number | undefined): string {
  if (n === undefined) return '–'
  const units = ['bytes', 'KiB', 'MiB', 'GiB']
  let v = n
  let u = 0
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++ }
  return u === 0 ? `${n} bytes` : `${v.toFixed(2)} ${units[u]}`
}

/** Checks what the charts rely on, naming the entry at fault. */
function validate(data: ReportData): void {
  const fail = (msg: string): never => { throw new QuantkitError(`Report data: ${msg}`) }
  if (data.metric !== 'accuracy' && data.metric !== 'sqnr') fail(`metric is ${JSON.stringify(data.metric)}; expected 'accuracy' or 'sqnr'`)
  for (const w of data.weightRanges ?? []) {
    if (w.min.length !== w.max.length || w.min.length === 0) fail(`weightRanges of ${JSON.stringify(w.tensor)} has ${w.min.length} min and ${w.max.length} max values; expected the same number (≥ 1), one per output channel`)
  }
  for (const hg of data.histograms ?? []) {
    if (hg.counts.length === 0 || hg.edges.length !== hg.counts.length + 1) fail(`histogram of ${JSON.stringify(hg.tensor)} has ${hg.edges.length} edges and ${hg.counts.length} counts; expected counts ≥ 1 and edges = counts + 1`)
    for (let i = 1; i < hg.edges.length; i++) {
      if (!(hg.edges[i] > hg.edges[i - 1])) fail(`histogram of ${JSON.stringify(hg.tensor)}: edges must increase (edge ${i} is ${hg.edges[i]} after ${hg.edges[i - 1]})`)
    }
  }
}

/**
 * The data as a JSON script element. JSON has no ±∞ or NaN (an SQNR of identical tensors is +∞),
 * so those travel as `{"$nonFinite":"Infinity"}` and the page's reviver restores them. `<` is
 * escaped so no string in the data can close the script element.
 */
function dataScript(data: ReportData): string {
  const json = JSON.stringify(data, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? { $nonFinite: String(v) } : v))
    .replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029')
  return `<script type="application/json" id="quantkit-report-data">${json}</script>`
}

const BOOT = `
(function () {
  var text = document.getElementById('quantkit-report-data').textContent;
  var data = JSON.parse(text, function (k, v) {
    return v && typeof v === 'object' && typeof v.$nonFinite === 'string' && Object.keys(v).length === 1 ? Number(v.$nonFinite) : v;
  });
  (${reportClient.toString()})(Chart, data, document);
  (${compressionClient.toString()})(Chart, data, document);
  (${techniquesClient.toString()})(Chart, data, document);
})();
`
if (/<\/script|<!--/i.test(BOOT)) throw new QuantkitError('report.ts: the compiled report client contains "</script" or "<!--"; it cannot be inlined')

function summarySection(data: ReportData): string {
  const m = data.model
  const nodes = Object.values(m.ops).reduce((a, b) => a + b, 0)
  const ratio = m.quantizedBytes ? `${(m.floatBytes / m.quantizedBytes).toFixed(2)}× smaller` : 'not exported'
  const facts: [string, string][] = [
    ['Model', m.file],
    ['Size, float', bytes(m.floatBytes)],
    ['Size, quantized', m.quantizedBytes === undefined ? 'not exported' : `${bytes(m.quantizedBytes)} (${ratio})`],
    ['Parameters', m.parameters.toLocaleString('en-US')],
    ['Nodes', `${nodes.toLocaleString('en-US')} of ${Object.keys(m.ops).length} op types`],
  ]
  return `<dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>
<h3>Op types</h3>${nodes === 0 ? '<p class="empty">No nodes counted.</p>' : ''}`
}

function resultsSection(data: ReportData): string {
  const rows = data.results
  if (rows.length === 0) return '<p class="empty">No configurations evaluated.</p>'
  const outputs = [...new Set(rows.flatMap((r) => Object.keys(r.outputSqnrDb ?? {})))]
  type Col = { head: string; value: (r: ResultRow) => number | undefined; show: (v: number | undefined) => string }
  const cols: Col[] = []
  if (rows.some((r) => r.accuracy !== undefined)) cols.push({ head: 'Top-1 accuracy', value: (r) => r.accuracy, show: percent })
  if (rows.some((r) => r.top1Agreement !== undefined)) cols.push({ head: 'Top-1 agreement with FP32', value: (r) => r.top1Agreement, show: percent })
  for (const o of outputs) cols.push({ head: `SQNR ${o} (dB)`, value: (r) => r.outputSqnrDb?.[o], show: (v) => fmt(v) })
  // The best value of each column in bold: every column here is "higher is better".
  const best = cols.map((c) => {
    const vs = rows.map(c.value).filter((v): v is number => v !== undefined && !Number.isNaN(v))
    return rows.length > 1 && vs.length ? Math.max(...vs) : undefined
  })
  const head = `<tr><th>Configuration</th><th>Settings</th>${cols.map((c) => `<th class="num">${esc(c.head)}</th>`).join('')}</tr>`
  const body = rows.map((r) => {
    const settings = Object.entries(r.settings).map(([k, v]) => `<span class="chip">${esc(k)}=${esc(String(v))}</span>`).join(' ')
    const cells = cols.map((c, i) => {
      const v = c.value(r)
      return `<td class="num${v !== undefined && v === best[i] ? ' best' : ''}">${esc(c.show(v))}</td>`
    }).join('')
    return `<tr><td>${esc(r.name)}</td><td>${settings}</td>${cells}</tr>`
  }).join('\n')
  const what = data.metric === 'accuracy' ? 'top-1 accuracy on the labelled evaluation data' : 'SQNR of each model output against FP32'
  return `<p class="help">Quality measured as ${what}; the best value of each column is in bold.</p>
<div class="table-wrap"><table><thead>${head}</thead><tbody>${body}</tbody></table></div>`
}

function chartSection(present: boolean, help: string): string {
  return present ? `<p class="help">${help}</p>` : '<p class="empty">Not measured.</p>'
}

const STYLE = `
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #222; background: #f4f5f7; }
header { background: #1f2a3c; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .meta { margin: 0; color: #c5cedd; font-size: 13px; }
nav { padding: 8px 32px; background: #e6e9ef; font-size: 13px; }
nav a { margin-right: 16px; color: #1f4fa8; text-decoration: none; }
main { max-width: 1200px; margin: 0 auto; padding: 8px 24px 24px; }
section { background: #fff; border-radius: 6px; padding: 14px 20px 18px; margin: 16px 0; box-shadow: 0 1px 2px rgba(0,0,0,.08); }
h2 { margin: 0 0 8px; font-size: 18px; }
h3 { margin: 16px 0 6px; font-size: 15px; }
.help { color: #555; margin: 4px 0 10px; }
.empty { color: #777; font-style: italic; }
.error { color: #b00020; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: #555; }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; word-break: break-all; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 10px; border-bottom: 1px solid #e3e6eb; vertical-align: top; }
th { background: #f0f2f5; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.best { font-weight: 700; }
.chip { display: inline-block; background: #eef1f6; border-radius: 3px; padding: 0 5px; margin: 1px 0; font-size: 12px; font-family: ui-monospace, "DejaVu Sans Mono", monospace; }
.controls { display: flex; flex-wrap: wrap; gap: 16px; margin: 6px 0 8px; font-size: 13px; }
.controls select { max-width: 640px; font: inherit; }
.scroll { max-height: 560px; overflow-y: auto; border: 1px solid #eef0f3; border-radius: 4px; }
.chart { position: relative; width: 100%; min-height: 120px; }
ul.notes { margin: 0; padding-left: 20px; }
footer { color: #777; font-size: 12px; text-align: center; padding: 8px 0 24px; }
`

/** Renders the report as one self-contained HTML document. */
export function renderReport(data: ReportData): string {
  validate(data)
  const chart = chartLibrary()
  const metric = data.metric === 'accuracy' ? 'top-1 accuracy' : 'output SQNR (dB)'
  const sections: [id: string, title: string, body: string][] = [
    ['summary', 'Model', summarySection(data)],
    ['results', 'Results', resultsSection(data)],
    ['sensitivity', 'Per-layer sensitivity', chartSection(!!data.sensitivity?.length,
      `Model quality (${esc(metric)}) with only this layer's quantizers enabled, and with every quantizer enabled except this layer's. ` +
      'A layer that loses most when quantized alone, or gains most when left in float, is the one to keep at a higher bitwidth.')],
    ['layerSqnr', 'Per-layer activation SQNR', chartSection(!!data.layerSqnr?.length,
      'SQNR of each quantized activation against its FP32 value over the evaluation data; low values show where quantization noise enters.')],
    ['weightRanges', 'Per-channel weight ranges', chartSection(!!data.weightRanges?.length,
      'Spread is the largest per-channel range of a weight divided by the median one: high spread makes per-tensor quantization coarse and points at cross-layer equalization. Click a bar or use the selector to plot a weight\'s channels.')],
    ['histograms', 'Activation histograms', chartSection(!!data.histograms?.length,
      'Calibration histogram of each activation with the chosen encoding\'s representable range shaded; values outside it are clipped.')],
    ...(data.compression ? [['compression', COMPRESSION_SECTION_TITLE, compressionSection(data.compression)] as [string, string, string]] : []),
    ...(data.techniques ? [['techniques', TECHNIQUES_SECTION_TITLE, techniquesSection(data.techniques)] as [string, string, string]] : []),
    ['notes', 'Notes', data.notes.length ? `<ul class="notes">${data.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : '<p class="empty">No notes.</p>'],
  ]
  const csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="quantkit ${esc(data.quantkitVersion)}">
<title>${esc(data.title)}</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>${esc(data.title)}</h1><p class="meta">${esc(data.model.file)} · created ${esc(data.createdAt)} by quantkit ${esc(data.quantkitVersion)}</p></header>
<nav>${sections.map(([id, title]) => `<a href="#${id}">${esc(title)}</a>`).join('')}</nav>
<main>
${sections.map(([id, title, body]) => `<section id="${id}" data-section="${id}"><h2>${esc(title)}</h2><div class="body">${body}</div></section>`).join('\n')}
</main>
<footer>quantkit ${esc(data.quantkitVersion)} · charts by Chart.js ${esc(chart.version)} (MIT licence)</footer>
${dataScript(data)}
<script>${chart.source}</script>
<script>${BOOT}</script>
</body>
</html>
`
}

/**
 * Writes the report to `path` atomically: a temporary file in the same folder, flushed, then
 * renamed over the target, so an interrupted run never leaves a half-written report.
 */
export async function writeReport(path: string, data: ReportData): Promise<void> {
  const html = renderReport(data)
  const target = resolve(path)
  const tmp = join(dirname(target), `.${basename(target)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`)
  try {
    const fh = await open(tmp, 'wx')
    try {
      await fh.writeFile(html, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, target)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}
