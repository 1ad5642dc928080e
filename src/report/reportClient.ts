// The report's browser side: builds the charts from the inlined ReportData with Chart.js.
// report.ts inlines this function's compiled text (Function.prototype.toString), so it must not
// refer to anything outside its own body: no imports at run time, no module-level helpers.
// DOM types are not in this package's tsconfig (lib ES2022 only), hence `any` for the DOM.
import type { ReportData } from './reportData.js'

/* eslint-disable @typescript-eslint/no-explicit-any */
export function reportClient(Chart: any, data: ReportData, doc: any): void {
  const BLUE = '#3b6fd4'
  const ORANGE = '#e08a2c'
  const GREY = '#7a8594'
  // Taller canvases than this fail to allocate in some browsers (limits near 32k px / 268M px²).
  const MAX_ROWS = 1500
  const ROW_PX = 18

  Chart.defaults.animation = false
  Chart.defaults.font.size = 11
  Chart.defaults.color = '#333'

  const charts = new Map<string, any>()

  function h(tag: string, attrs: Record<string, string> = {}, text?: string): any {
    const e = doc.createElement(tag)
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v)
    if (text !== undefined) e.textContent = text
    return e
  }

  function fmt(v: number | null | undefined, digits = 3): string {
    if (v === null || v === undefined) return '–'
    if (Number.isNaN(v)) return 'NaN'
    if (v === Infinity) return '∞'
    if (v === -Infinity) return '−∞'
    return Number(v.toPrecision(digits)).toString()
  }

  const metricIsAccuracy = data.metric === 'accuracy'
  const metricTitle = metricIsAccuracy ? 'Top-1 accuracy' : 'SQNR (dB)'
  const fmtMetric = (v: number): string => (metricIsAccuracy && Number.isFinite(v) ? `${(v * 100).toFixed(2)} %` : fmt(v, 4))

  function truncate(s: string, n = 44): string {
    return s.length <= n ? s : `…${s.slice(s.length - n + 1)}`
  }

  // Bars cannot be infinitely long: +∞ (e.g. SQNR of identical tensors) is drawn at the largest
  // finite value seen and −∞ at the smallest; NaN draws no bar. Tooltips show the real value.
  function drawable(values: number[]): (number | null)[] {
    const finite = values.filter((v) => Number.isFinite(v))
    const hi = finite.length ? Math.max(...finite) : 0
    const lo = finite.length ? Math.min(...finite, 0) : 0
    return values.map((v) => (Number.isNaN(v) ? null : v === Infinity ? hi : v === -Infinity ? lo : v))
  }

  /** Replaces the chart drawn in `box` (a div) by a new one with `config`. */
  function draw(box: any, config: any): void {
    charts.get(box.id)?.destroy()
    box.replaceChildren()
    const canvas = h('canvas')
    box.appendChild(canvas)
    charts.set(box.id, new Chart(canvas, config))
  }

  function select(label: string, options: { value: string; text: string }[], value: string, onChange: (v: string) => void): any {
    const wrap = h('label', {}, `${label} `)
    const s = h('select')
    for (const o of options) s.appendChild(h('option', { value: o.value }, o.text))
    s.value = value
    s.addEventListener('change', () => onChange(s.value))
    wrap.appendChild(s)
    return wrap
  }

  interface Series<T> { label: string; color: string; value: (it: T) => number }
  interface Sort<T> { value: string; text: string; compare: ((a: T, b: T) => number) | null }

  /**
   * Horizontal bars, one row per item, with a sort and a "show top N" control; tall charts sit
   * in a scroll box so a model with hundreds of layers stays readable.
   */
  function rankedBars<T>(section: any, key: string, o: {
    items: T[]
    label: (it: T) => string
    detail: (it: T) => string
    series: Series<T>[]
    sorts: Sort<T>[]
    axis: string
    format: (v: number) => string
    /** false where the interesting differences are small next to the values (accuracy 0.98 vs 0.99). */
    zero: boolean
    integer?: boolean
    tick?: (v: number) => string
    onPick?: (it: T) => void
  }): void {
    const n = o.items.length
    const shows = [10, 25, 50, 100, 250, 1000].filter((k) => k < n && k <= MAX_ROWS)
    const showOptions = shows.map((k) => ({ value: String(k), text: `first ${k}` }))
    if (n <= MAX_ROWS) showOptions.push({ value: String(n), text: `all ${n}` })
    let show = n <= 50 ? n : 50
    let sort = o.sorts[0]
    const controls = h('div', { class: 'controls' })
    controls.appendChild(select('Sort:', o.sorts.map((s) => ({ value: s.value, text: s.text })), sort.value, (v) => {
      sort = o.sorts.find((s) => s.value === v) ?? o.sorts[0]
      redraw()
    }))
    if (showOptions.length > 1) controls.appendChild(select('Show:', showOptions, String(show), (v) => { show = Number(v); redraw() }))
    const scroll = h('div', { class: 'scroll' })
    const box = h('div', { class: 'chart', id: `chart-${key}`, 'data-chart': key })
    scroll.appendChild(box)
    section.appendChild(controls)
    section.appendChild(scroll)

    function redraw(): void {
      const rows = (sort.compare ? [...o.items].sort(sort.compare) : o.items).slice(0, show)
      box.style.height = `${Math.max(120, rows.length * ROW_PX * Math.max(1, o.series.length * 0.75) + 70)}px`
      draw(box, {
        type: 'bar',
        data: {
          labels: rows.map((it) => truncate(o.label(it))),
          datasets: o.series.map((s) => ({
            label: s.label,
            data: drawable(rows.map(s.value)),
            backgroundColor: s.color,
            barPercentage: 0.9,
            categoryPercentage: 0.85,
          })),
        },
        options: {
          indexAxis: 'y',
          responsive: true,
          maintainAspectRatio: false,
          scales: {
            x: { position: 'top', beginAtZero: o.zero, grace: o.zero ? 0 : '5%', ticks: o.integer ? { precision: 0 } : o.tick ? { callback: o.tick } : {}, title: { display: true, text: o.axis } },
            y: { ticks: { autoSkip: false } },
          },
          plugins: {
            legend: { display: o.series.length > 1, position: 'top' },
            tooltip: {
              callbacks: {
                title: (ctx: any[]) => o.detail(rows[ctx[0].dataIndex]),
                label: (ctx: any) => `${o.series[ctx.datasetIndex].label}: ${o.format(o.series[ctx.datasetIndex].value(rows[ctx.dataIndex]))}`,
              },
            },
          },
          onClick: o.onPick ? (_e: any, els: any[]) => { if (els.length) o.onPick!(rows[els[0].index]) } : undefined,
        },
      })
    }
    redraw()
  }

  function sectionBody(name: string): any {
    return doc.querySelector(`[data-section="${name}"] .body`)
  }

  function guarded(name: string, build: () => void): void {
    try {
      build()
    } catch (err: any) {
      // Surface the failure in the page and in the console (the report's browser test reads it).
      console.error(`quantkit report: the ${name} chart failed: ${err?.stack ?? err}`)
      sectionBody(name)?.appendChild(h('p', { class: 'error' }, `This chart could not be drawn: ${err?.message ?? err}`))
    }
  }

  // ── Model summary: op histogram ──────────────────────────────────────────────────────────────
  const ops = Object.entries(data.model.ops).map(([op, count]) => ({ op, count }))
  if (ops.length) guarded('summary', () => rankedBars(sectionBody('summary'), 'ops', {
    items: ops,
    label: (it) => it.op,
    detail: (it) => it.op,
    series: [{ label: 'nodes', color: GREY, value: (it) => it.count }],
    sorts: [
      { value: 'count', text: 'most frequent first', compare: (a, b) => b.count - a.count || (a.op < b.op ? -1 : 1) },
      { value: 'name', text: 'by name', compare: (a, b) => (a.op < b.op ? -1 : a.op > b.op ? 1 : 0) },
    ],
    axis: 'nodes',
    format: (v) => String(v),
    zero: true,
    integer: true,
  }))

  // ── Per-layer sensitivity ────────────────────────────────────────────────────────────────────
  const sens = data.sensitivity ?? []
  if (sens.length) guarded('sensitivity', () => rankedBars(sectionBody('sensitivity'), 'sensitivity', {
    items: sens,
    label: (it) => it.layer,
    detail: (it) => `${it.layer} (${it.opType})`,
    series: [
      { label: 'only this layer quantized', color: BLUE, value: (it) => it.onlyThisQuantized },
      { label: 'all but this layer quantized', color: ORANGE, value: (it) => it.allButThis },
    ],
    // Both metrics are "higher is better": a sensitive layer loses most when quantized alone and
    // gains most when it alone is left in float.
    sorts: [
      { value: 'only', text: 'most sensitive first (only this quantized, lowest first)', compare: (a, b) => a.onlyThisQuantized - b.onlyThisQuantized },
      { value: 'allBut', text: 'most gained by leaving it float (all but this, highest first)', compare: (a, b) => b.allButThis - a.allButThis },
      { value: 'model', text: 'model order', compare: null },
    ],
    axis: metricTitle,
    format: fmtMetric,
    zero: false,
    tick: metricIsAccuracy ? (v) => `${(v * 100).toFixed(1)} %` : undefined,
  }))

  // ── Per-layer activation SQNR ────────────────────────────────────────────────────────────────
  const sqnr = data.layerSqnr ?? []
  if (sqnr.length) guarded('layerSqnr', () => rankedBars(sectionBody('layerSqnr'), 'layerSqnr', {
    items: sqnr,
    label: (it) => it.layer,
    detail: (it) => `${it.layer} (${it.opType}) → ${it.tensor}`,
    series: [{ label: 'SQNR (dB)', color: BLUE, value: (it) => it.sqnrDb }],
    sorts: [
      { value: 'low', text: 'lowest SQNR first', compare: (a, b) => a.sqnrDb - b.sqnrDb },
      { value: 'model', text: 'model order', compare: null },
    ],
    axis: 'SQNR (dB) against FP32',
    format: (v) => `${fmt(v, 4)} dB`,
    zero: true,
  }))

  // ── Per-channel weight ranges ────────────────────────────────────────────────────────────────
  const weights = [...(data.weightRanges ?? [])].sort((a, b) => b.spread - a.spread)
  if (weights.length) guarded('weightRanges', () => {
    const body = sectionBody('weightRanges')
    let chooser: any
    rankedBars(body, 'weightSpread', {
      items: weights,
      label: (it) => it.tensor,
      detail: (it) => `${it.tensor} of ${it.layer} (${it.opType}), ${it.min.length} channels`,
      series: [{ label: 'channel spread (max range ÷ median range)', color: ORANGE, value: (it) => it.spread }],
      sorts: [{ value: 'spread', text: 'largest spread first', compare: null }],
      axis: 'max over channels of (max − min) ÷ median of the same',
      format: (v) => fmt(v, 4),
      zero: true,
      onPick: (it) => { chooser.value = it.tensor; drawChannels(it.tensor) },
    })
    const controls = h('div', { class: 'controls' })
    const picker = select('Weight:', weights.map((w) => ({ value: w.tensor, text: `${truncate(w.tensor, 60)} — spread ${fmt(w.spread)}` })), weights[0].tensor, (v) => drawChannels(v))
    chooser = picker.querySelector('select')
    controls.appendChild(picker)
    body.appendChild(h('h3', {}, 'Per-channel range of one weight'))
    body.appendChild(controls)
    const box = h('div', { class: 'chart', id: 'chart-weightChannels', 'data-chart': 'weightChannels', style: 'height: 320px' })
    body.appendChild(box)

    function drawChannels(tensor: string): void {
      const w = weights.find((x) => x.tensor === tensor) ?? weights[0]
      const pts = (v: number[]) => v.map((y, x) => ({ x, y: Number.isFinite(y) ? y : null }))
      const small = w.min.length <= 64
      draw(box, {
        type: 'line',
        data: {
          datasets: [
            { label: 'max', data: pts(w.max), borderColor: BLUE, backgroundColor: 'rgba(59,111,212,0.18)', fill: '+1', pointRadius: small ? 2 : 0, borderWidth: 1 },
            { label: 'min', data: pts(w.min), borderColor: ORANGE, pointRadius: small ? 2 : 0, borderWidth: 1 },
          ],
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          parsing: false,
          interaction: { mode: 'index', intersect: false },
          scales: {
            x: { type: 'linear', min: 0, max: Math.max(1, w.min.length - 1), title: { display: true, text: 'output channel' }, ticks: { precision: 0 } },
            y: { title: { display: true, text: 'weight value' } },
          },
          plugins: {
            title: { display: true, text: `${w.tensor} — ${w.layer} (${w.opType}), ${w.min.length} channels, spread ${fmt(w.spread)}` },
            tooltip: { callbacks: { title: (ctx: any[]) => `channel ${ctx[0].parsed.x}` } },
          },
        },
      })
    }
    drawChannels(weights[0].tensor)
  })

  // ── Activation histograms ────────────────────────────────────────────────────────────────────
  const hists = data.histograms ?? []
  if (hists.length) guarded('histograms', () => {
    const body = sectionBody('histograms')
    // Share of samples outside the encoding's range, by bin centre: how much the encoding clips.
    const clipped = hists.map((hg) => {
      let total = 0
      let out = 0
      hg.counts.forEach((c, i) => {
        const centre = (hg.edges[i] + hg.edges[i + 1]) / 2
        total += c
        if (centre < hg.encodingMin || centre > hg.encodingMax) out += c
      })
      return total > 0 ? out / total : 0
    })
    const order = hists.map((_, i) => i)
    const controls = h('div', { class: 'controls' })
    let current = 0
    let log = false
    controls.appendChild(select('Activation:', order.map((i) => ({
      value: String(i),
      text: `${truncate(hists[i].tensor, 60)}${clipped[i] > 0 ? ` — ${(clipped[i] * 100).toPrecision(2)} % clipped` : ''}`,
    })), '0', (v) => { current = Number(v); drawHist() }))
    const logBox = h('label', {}, ' log counts ')
    const check = h('input', { type: 'checkbox' })
    check.addEventListener('change', () => { log = check.checked; drawHist() })
    logBox.appendChild(check)
    controls.appendChild(logBox)
    body.appendChild(controls)
    const box = h('div', { class: 'chart', id: 'chart-histogram', 'data-chart': 'histogram', style: 'height: 320px' })
    body.appendChild(box)

    function drawHist(): void {
      const hg = hists[current]
      const n = hg.counts.length
      const pts = hg.counts.map((c, i) => ({ x: hg.edges[i], y: log && c <= 0 ? null : c }))
      pts.push({ x: hg.edges[n], y: log && hg.counts[n - 1] <= 0 ? null : hg.counts[n - 1] })
      const lo = Math.min(hg.edges[0], hg.encodingMin)
      const hi = Math.max(hg.edges[n], hg.encodingMax)
      const pad = (hi - lo) * 0.03 || 1
      const range = {
        id: 'encodingRange',
        beforeDatasetsDraw(chart: any) {
          const { ctx, chartArea: a, scales: { x } } = chart
          const l = x.getPixelForValue(hg.encodingMin)
          const r = x.getPixelForValue(hg.encodingMax)
          ctx.save()
          ctx.fillStyle = 'rgba(76,175,80,0.12)'
          ctx.fillRect(l, a.top, r - l, a.bottom - a.top)
          ctx.restore()
        },
        afterDatasetsDraw(chart: any) {
          const { ctx, chartArea: a, scales: { x } } = chart
          ctx.save()
          ctx.strokeStyle = '#2e7d32'
          ctx.fillStyle = '#2e7d32'
          ctx.setLineDash([5, 3])
          ctx.lineWidth = 1.5
          ctx.font = '11px sans-serif'
          for (const [v, name, align] of [[hg.encodingMin, 'encoding min', 'left'], [hg.encodingMax, 'encoding max', 'right']] as const) {
            const px = x.getPixelForValue(v)
            ctx.beginPath()
            ctx.moveTo(px, a.top)
            ctx.lineTo(px, a.bottom)
            ctx.stroke()
            ctx.textAlign = align
            ctx.fillText(` ${name} ${fmt(v, 4)} `, px, a.top + 12)
          }
          ctx.restore()
        },
      }
      draw(box, {
        type: 'line',
        data: { datasets: [{ label: 'count', data: pts, stepped: 'after', fill: 'start', pointRadius: 0, borderWidth: 1, borderColor: BLUE, backgroundColor: 'rgba(59,111,212,0.35)' }] },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          parsing: false,
          interaction: { mode: 'nearest', axis: 'x', intersect: false },
          scales: {
            x: { type: 'linear', min: lo - pad, max: hi + pad, title: { display: true, text: 'activation value' } },
            y: log ? { type: 'logarithmic', title: { display: true, text: 'count (log)' } } : { beginAtZero: true, title: { display: true, text: 'count' } },
          },
          plugins: {
            legend: { display: false },
            title: {
              display: true,
              text: `${hg.tensor} — ${hg.layer}; encoding [${fmt(hg.encodingMin, 4)}, ${fmt(hg.encodingMax, 4)}], ${(clipped[current] * 100).toPrecision(2)} % of samples outside`,
            },
            tooltip: {
              callbacks: {
                title: (ctx: any[]) => {
                  const i = Math.min(ctx[0].dataIndex, n - 1)
                  return `[${fmt(hg.edges[i], 4)}, ${fmt(hg.edges[i + 1], 4)})`
                },
                label: (ctx: any) => `count: ${hg.counts[Math.min(ctx.dataIndex, n - 1)]}`,
              },
            },
          },
        },
        plugins: [range],
      })
    }
    drawHist()
  })

  doc.body.setAttribute('data-charts-ready', String(charts.size))
}
