// The report's post-training techniques section (ReportData.techniques): one sub-section per
// technique that ran, each a per-layer table — CLE scales per pair and the high-bias fold, SeqMSE's
// chosen fractions and loss before/after, bias correction's shift per layer, AdaRound's flips and
// loss before/after — and, for the techniques with a loss, a chart of loss before/after per layer
// (log scale). `techniquesSection` renders in Node; `techniquesClient` is inlined into the page like
// reportClient.ts (its compiled text is used, so it must not refer to anything outside its body).
import type { ReportData } from './reportData.js'
import type { TechniquesReportData } from './techniquesData.js'

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
const num = (v: number, digits = 4) => (Number.isFinite(v) ? Number(v.toPrecision(digits)).toString() : String(v))

export const TECHNIQUES_SECTION_TITLE = 'Post-training techniques'

function table(head: string[], numeric: boolean[], rows: string[][]): string {
  const th = head.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${esc(h)}</th>`).join('')
  const body = rows.map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`).join('\n')
  return `<div class="table-wrap"><table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table></div>`
}

function skippedList(skipped: { node: string; reason: string }[]): string {
  return skipped.length ? `<p class="help">Left alone: ${skipped.map((s) => `${esc(s.node)} (${esc(s.reason)})`).join('; ')}</p>` : ''
}

/** Median of a list (the chosen SeqMSE fraction of a layer, in brief). */
function median(v: readonly number[]): number {
  const s = [...v].sort((a, b) => a - b)
  const n = s.length
  return n === 0 ? NaN : n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2
}

/** The section's static HTML; the loss charts are drawn by techniquesClient. */
export function techniquesSection(t: TechniquesReportData): string {
  const parts: string[] = []
  if (t.cle) {
    const c = t.cle
    parts.push(`<h3 data-technique="cle">Cross-layer equalization</h3>
<p class="help">Each pair: the first layer's output channels were divided by the scale factors and the second layer's input channels multiplied by them, so the float model computes the same function with matched per-channel ranges.</p>
${table(['Layer 1', 'Layer 2', 'Between', 'Channels', 'Scale min', 'Scale median', 'Scale max'], [false, false, false, true, true, true, true],
    c.pairs.map((p) => [esc(p.layer1), esc(p.layer2), esc(p.activations.join(', ') || '–'), String(p.scales.length), num(p.scaleMin), num(p.scaleMedian), num(p.scaleMax)]))}
<h4>High-bias fold</h4>
${c.highBiasFold.applied
    ? table(['Layer 1', 'Layer 2', 'BatchNorm', 'Rule', 'Channels absorbed', 'Max absorbed', 'Mean absorbed'], [false, false, false, false, true, true, true],
      c.highBiasFold.pairs.map((p) => [esc(p.layer1), esc(p.layer2), esc(p.batchNorm), esc(p.rule), `${p.channels} / ${p.absorbed.length}`, num(p.maxAbsorbed), num(p.meanAbsorbed)]))
    : `<p class="empty">Not applied${c.highBiasFold.skippedBecause ? `: ${esc(c.highBiasFold.skippedBecause)}` : ''}.</p>`}
${c.notes.length ? `<ul class="notes">${c.notes.map((n) => `<li>${esc(n)}</li>`).join('')}</ul>` : ''}`)
  }
  if (t.seqMse) {
    const s = t.seqMse
    parts.push(`<h3 data-technique="seqMse">SeqMSE</h3>
<p class="help">Per layer, the weight range of each output channel was chosen among ${s.numCandidates} candidates (fractions ${num(1 / s.numCandidates, 3)} … 1 of the min-max range) by the layer's output MSE. Loss: output MSE with min-max ranges (before) and with the chosen ones (after).</p>
<div class="techniques-chart" data-chart="seqMse"></div>
${table(['Layer', 'Op', 'Weight', 'Channels', 'Fraction min', 'Fraction median', 'Fraction max', 'Loss before', 'Loss after', 'Samples'], [false, false, false, true, true, true, true, true, true, true],
    s.layers.map((l) => [esc(l.node), esc(l.opType), esc(l.weight), String(l.fractions.length), num(Math.min(...l.fractions), 3), num(median(l.fractions), 3), num(Math.max(...l.fractions), 3), num(l.lossBefore), num(l.lossAfter), String(l.samples)]))}
${skippedList(s.skipped)}`)
  }
  if (t.adaround) {
    const a = t.adaround
    parts.push(`<h3 data-technique="adaround">AdaRound</h3>
<p class="help">Per layer, the rounding of each weight (up or down) was learned to minimise the layer's reconstruction loss. Flips: weights rounded differently from round-to-nearest. Loss: with round-to-nearest (before) and with the learned rounding (after).</p>
<div class="techniques-chart" data-chart="adaround"></div>
${table(['Layer', 'Op', 'Weight', 'Flips', 'Weights', 'Flipped', 'Loss before', 'Loss after', 'Samples'], [false, false, false, true, true, true, true, true, true],
    a.layers.map((l) => [esc(l.node), esc(l.opType), esc(l.weight), String(l.flips), String(l.weights), `${num((100 * l.flips) / Math.max(1, l.weights), 3)} %`, num(l.lossBefore), num(l.lossAfter), String(l.samples)]))}
${skippedList(a.skipped)}`)
  }
  if (t.biasCorrection) {
    const b = t.biasCorrection
    parts.push(`<h3 data-technique="biasCorrection">Bias correction (${esc(b.mode)})</h3>
<p class="help">Per layer, the shift added to the float bias per output channel: E[y<sub>fp</sub>] − E[y<sub>q</sub>], measured on the calibration data (empirical) or −ΔW·E[x] from the preceding BatchNorm's β and γ (analytical).</p>
<div class="techniques-chart" data-chart="biasCorrection"></div>
${table(['Layer', 'Op', 'Method', 'BatchNorm', 'Bias', 'Channels', 'Mean |shift|', 'Max |shift|'], [false, false, false, false, false, true, true, true],
    b.layers.map((l) => [esc(l.node), esc(l.opType), esc(l.activation && l.activation !== 'none' ? `${l.method} (${l.activation})` : l.method), esc(l.batchNorm ?? '–'), `${esc(l.bias)}${l.addedBias ? ' (added)' : ''}`, String(l.shift.length), num(l.meanAbsShift), num(Math.max(...l.shift.map(Math.abs)))]))}
${skippedList(b.skipped)}`)
  }
  return parts.length ? parts.join('\n') : '<p class="empty">No technique ran.</p>'
}

/* eslint-disable @typescript-eslint/no-explicit-any */
export function techniquesClient(Chart: any, data: ReportData, doc: any): void {
  const t = data.techniques
  if (!t) return
  const charts: [string, string[], { label: string; values: number[]; color: string }[], string, boolean][] = []
  if (t.seqMse?.layers.length) {
    const l = t.seqMse.layers
    charts.push(['seqMse', l.map((x) => x.node), [{ label: 'min-max ranges', values: l.map((x) => x.lossBefore), color: '#9aa7b8' }, { label: 'SeqMSE ranges', values: l.map((x) => x.lossAfter), color: '#3b6fd4' }], 'layer output MSE (log)', true])
  }
  if (t.adaround?.layers.length) {
    const l = t.adaround.layers
    charts.push(['adaround', l.map((x) => x.node), [{ label: 'round to nearest', values: l.map((x) => x.lossBefore), color: '#9aa7b8' }, { label: 'AdaRound', values: l.map((x) => x.lossAfter), color: '#2f9e5b' }], 'reconstruction loss (log)', true])
  }
  if (t.biasCorrection?.layers.length) {
    const l = t.biasCorrection.layers
    charts.push(['biasCorrection', l.map((x) => x.node), [{ label: 'mean |shift| per channel', values: l.map((x) => x.meanAbsShift), color: '#e08a2c' }], 'mean |bias shift|', false])
  }
  for (const [key, labels, sets, axis, log] of charts) {
    const box = doc.querySelector(`[data-section="techniques"] .techniques-chart[data-chart="${key}"]`)
    if (!box) continue
    try {
      const holder = doc.createElement('div')
      holder.setAttribute('class', 'chart')
      holder.style.height = `${Math.max(180, Math.min(520, 60 + labels.length * 22))}px`
      const canvas = doc.createElement('canvas')
      holder.appendChild(canvas)
      box.appendChild(holder)
      // A log axis cannot show 0: such losses are drawn at the smallest positive value shown.
      const positive = sets.flatMap((s) => s.values).filter((v) => v > 0)
      const floor = positive.length ? Math.min(...positive) / 2 : 1e-12
      new Chart(canvas, {
        type: 'bar',
        data: { labels, datasets: sets.map((s) => ({ label: s.label, data: s.values.map((v) => (log ? Math.max(v, floor) : v)), backgroundColor: s.color })) },
        options: {
          indexAxis: 'y', maintainAspectRatio: false, animation: false,
          scales: {
            x: {
              type: log ? 'logarithmic' : 'linear', title: { display: true, text: axis },
              // On a log axis, label only 1, 2 and 5 × 10^k (Chart.js labels every minor tick).
              ticks: log ? { callback: (v: number) => { const m = v / 10 ** Math.floor(Math.log10(v) + 1e-9); return [1, 2, 5].some((k) => Math.abs(m - k) < 1e-6) ? Number(v.toPrecision(1)).toString() : '' } } : {},
            },
          },
          plugins: { tooltip: { callbacks: { label: (c: any) => `${c.dataset.label}: ${Number(sets[c.datasetIndex]!.values[c.dataIndex]).toPrecision(4)}` } } },
        },
      })
    } catch (err: any) {
      const p = doc.createElement('p')
      p.setAttribute('class', 'error')
      p.textContent = `This chart could not be drawn: ${err?.message ?? err}`
      box.appendChild(p)
    }
  }
}
