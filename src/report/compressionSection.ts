// The report's compression section (compressModel's stats): a summary, the per-layer table
// (cost before and after, chosen ratio, kept rank or channels), and a chart of every layer's
// sensitivity curve — the user's score with only that layer compressed, against the ratio —
// with the chosen point of each layer and the greedy search's score threshold.
// `compressionTable` renders in Node; `compressionClient` is inlined into the page like
// reportClient.ts (its compiled text is used, so it must not refer to anything outside its body).
import type { CompressionStats } from '../compression/compressModel.js'
import type { ReportData } from './reportData.js'

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)

const num = (v: number, digits = 4) => (Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : String(v))
const count = (v: number) => Math.round(v).toLocaleString('en-US')

export const COMPRESSION_SECTION_TITLE = 'Compression'

/** The section's static HTML (summary and per-layer table); the chart is drawn by compressionClient. */
export function compressionSection(s: CompressionStats): string {
  const metric = s.costMetric === 'mac' ? 'MACs' : 'parameters'
  const facts: [string, string][] = [
    ['Scheme', s.scheme],
    ['Target', `${num(s.targetRatio)} of the ${metric}`],
    ['Reached', `${num(s.achievedRatio)} (${count(s.costBefore[s.costMetric])} → ${count(s.costAfter[s.costMetric])} ${metric})`],
    ['MACs per sample', `${count(s.costBefore.mac)} → ${count(s.costAfter.mac)}`],
    ['Parameters in compressible layers', `${count(s.costBefore.memory)} → ${count(s.costAfter.memory)}`],
    ['Score', `${num(s.baselineScore)} original → ${num(s.compressedScore)} compressed`],
    ['Greedy search', `threshold ${num(s.threshold)} after ${s.searchIterations} steps; ${s.evaluations} evaluations in ${num(s.evaluationSeconds, 3)} s (${num(s.seconds, 3)} s in all)`],
  ]
  const rows = s.layers.map((l) => `<tr><td>${esc(l.node)}</td><td>${esc(l.opType)}</td>` +
    `<td class="num">${num(l.chosenRatio, 3)}</td><td class="num">${l.kept} / ${l.full}</td>` +
    `<td class="num">${count(l.costBefore.mac)}</td><td class="num">${count(l.costAfter.mac)}</td>` +
    `<td class="num">${count(l.costBefore.memory)}</td><td class="num">${count(l.costAfter.memory)}</td>` +
    `<td>${l.notes.map(esc).join('; ')}</td></tr>`).join('\n')
  const skipped = s.skipped.length
    ? `<h3>Left alone</h3><ul class="notes">${s.skipped.map((k) => `<li>${esc(k.node)}: ${esc(k.reason)}</li>`).join('')}</ul>`
    : ''
  return `<dl class="facts">${facts.map(([k, v]) => `<dt>${esc(k)}</dt><dd>${esc(v)}</dd>`).join('')}</dl>
<h3>Per-layer sensitivity</h3>
<p class="help">The score with only this layer compressed, at each candidate ratio (1 is the original model). Filled markers are the ratios the greedy search chose; the dashed line is its score threshold: walking down from 0.9, each layer takes the last ratio before its curve first drops below it (its smallest candidate outright if that still scores above it).</p>
<div class="compression-chart"></div>
<h3>Layers</h3>
<div class="table-wrap"><table><thead><tr><th>Layer</th><th>Op</th><th class="num">Ratio</th><th class="num">Kept</th><th class="num">MACs before</th><th class="num">MACs after</th><th class="num">Params before</th><th class="num">Params after</th><th>Notes</th></tr></thead>
<tbody>${rows}</tbody></table></div>${skipped}`
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export function compressionClient(Chart: any, data: ReportData, doc: any): void {
  const s = data.compression
  const box = doc.querySelector('[data-section="compression"] .compression-chart')
  if (!s || !box || s.layers.length === 0) return
  try {
    const palette = ['#3b6fd4', '#e08a2c', '#2f9e5b', '#c23b3b', '#7c4dbe', '#8c6d31', '#d45fa8', '#5a6b7d', '#17a2b8', '#b5a300']
    const controls = doc.createElement('div')
    controls.setAttribute('class', 'controls')
    const label = doc.createElement('label')
    label.textContent = 'Layers '
    const pick = doc.createElement('select')
    const all = doc.createElement('option')
    all.setAttribute('value', '')
    all.textContent = `all ${s.layers.length}`
    pick.appendChild(all)
    for (const l of s.layers) {
      const o = doc.createElement('option')
      o.setAttribute('value', l.node)
      o.textContent = `${l.node} (ratio ${l.chosenRatio})`
      pick.appendChild(o)
    }
    label.appendChild(pick)
    controls.appendChild(label)
    const holder = doc.createElement('div')
    holder.setAttribute('class', 'chart')
    holder.setAttribute('data-chart', 'compression')
    holder.style.height = '420px'
    box.appendChild(controls)
    box.appendChild(holder)
    let chart: any
    const draw = (only: string) => {
      chart?.destroy()
      holder.replaceChildren()
      const canvas = doc.createElement('canvas')
      holder.appendChild(canvas)
      const layers = s.layers.filter((l) => !only || l.node === only)
      const datasets: any[] = layers.map((l, i) => ({
        label: l.node, type: 'line', data: l.curve.map((p) => ({ x: p.ratio, y: p.score })),
        borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length], borderWidth: 1.5, pointRadius: 2, tension: 0,
      }))
      datasets.push({
        label: 'chosen', type: 'scatter', pointStyle: 'rectRot', pointRadius: 7, borderColor: '#111', backgroundColor: '#ffd33d',
        data: layers.map((l) => {
          const p = l.curve.find((c) => c.ratio === l.chosenRatio)
          return { x: l.chosenRatio, y: p ? p.score : s.baselineScore, layer: l.node }
        }),
      })
      datasets.push({ label: 'threshold', type: 'line', data: [{ x: 0, y: s.threshold }, { x: 1, y: s.threshold }], borderColor: '#555', borderDash: [6, 4], borderWidth: 1, pointRadius: 0 })
      chart = new Chart(canvas, {
        type: 'line',
        data: { datasets },
        options: {
          maintainAspectRatio: false, parsing: true,
          scales: { x: { type: 'linear', min: 0, max: 1, title: { display: true, text: `compression ratio (kept ${s.costMetric === 'mac' ? 'MACs' : 'parameters'} of the layer)` } }, y: { title: { display: true, text: 'score' } } },
          plugins: {
            legend: { display: layers.length <= 12 },
            tooltip: { callbacks: { label: (c: any) => `${c.raw.layer ?? c.dataset.label}: ratio ${c.raw.x}, score ${Number(c.raw.y).toPrecision(4)}` } },
          },
        },
      })
    }
    pick.addEventListener('change', () => draw(pick.value))
    draw('')
  } catch (err: any) {
    const p = doc.createElement('p')
    p.setAttribute('class', 'error')
    p.textContent = `This chart could not be drawn: ${err?.message ?? err}`
    box.appendChild(p)
  }
}
