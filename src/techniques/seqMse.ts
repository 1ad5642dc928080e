// SeqMSE (sequential MSE), as aimet-onnx 2.42 does it (aimet_onnx/sequential_mse/seq_mse.py):
// layer by layer in topological order, for each output channel pick the weight range among
// `numCandidates` candidates — the min-max range scaled by (i + 1)/numCandidates, i = 0 … N−1 —
// that minimises the squared error of the layer's output, then freeze that encoding.
//
// As in aimet-onnx: the layer's inputs come from the model with the weights of the layers already
// done fake-quantized and no activation quantizer (AIMET disables them while it runs); the target
// is the same layer with float weights on the same inputs; the loss is Σ (x·Ŵ − x·W)² per output
// channel ('mse'). Because the layer is linear, x·Ŵ − x·W = x·(Ŵ − W): one forward per candidate
// and batch, with the Rust layer kernels; the per-channel sums are Rust too (seq_mse.rs).
// Cached inputs are bounded by `maxCacheBytes` (an error past it). See docs/seq-mse.md.
import { computeEncoding, type Encoding } from '../encoding.js'
import { AbortError } from '../errors.js'
import { cloneModel } from '../graph/model.js'
import { callNative, native } from '../native.js'
import { MinMaxObserver } from '../observers.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import type { QuantSim } from '../sim/quantSim.js'
import type { Quantizer } from '../sim/quantizer.js'
import { collectTensors } from './layerActivations.js'
import { findLayerSites, layerForward, outputGeometry, type LayerSite } from './layerSites.js'
import { quantizeDequantizeWeight } from './weightQdq.js'

export interface SeqMseOptions {
  /** Batches of `data` to use (default: all). */
  numBatches?: number
  /** Candidates per channel (AIMET's default 20). */
  numCandidates?: number
  /** Node names to optimise (default: every Conv, Gemm and MatMul with a quantized constant weight). */
  layers?: readonly string[]
  /** Cap on one layer's cached input activations (default 1 GiB). */
  maxCacheBytes?: number
  signal?: AbortSignal
  onProgress?: (p: SeqMseProgress) => void
}

export interface SeqMseProgress {
  layer: string
  layers: number
  done: number
}

export interface SeqMseLayer {
  node: string
  opType: string
  weight: string
  /** Per channel (one entry per-tensor): the chosen range as a fraction of the min-max range, (i + 1)/numCandidates. */
  fractions: number[]
  /** Output MSE (mean over the output's elements and the batches) with min-max weight ranges, and with the chosen ones. */
  lossBefore: number
  lossAfter: number
  /** Output MSE of each candidate when every channel takes it ([i] is fraction (i + 1)/N). */
  candidateLosses: number[]
  samples: number
}

export interface SeqMseReport {
  numCandidates: number
  layers: SeqMseLayer[]
  skipped: { node: string; reason: string }[]
}

function weightQuantizer(sim: QuantSim, site: LayerSite): Quantizer | string {
  const q = sim.quantizers.find((x) => x.kind === 'param' && x.tensor === site.weight.name && x.node === site.node.name)
    ?? sim.quantizers.find((x) => x.kind === 'param' && x.tensor === site.weight.name)
  if (!q) return 'weight has no quantizer'
  if (!q.enabled) return 'weight quantizer is disabled'
  if (q.spec.dtype !== 'int') return `weight quantizer is ${q.spec.dtype}`
  if (q.spec.blockSize !== undefined) return 'blockwise weight quantizer (not supported by SeqMSE here)'
  if (q.spec.axis !== undefined && q.spec.axis !== site.channelAxis) return `per-channel axis ${q.spec.axis} is not the output-channel axis ${site.channelAxis}`
  return q
}

/**
 * Chooses per-channel weight ranges by layer output MSE and freezes them in `sim`
 * (computeEncodings keeps them). Run it before computeEncodings, as in AIMET.
 */
export async function applySeqMse(sim: QuantSim, data: CalibrationData, opts: SeqMseOptions = {}): Promise<SeqMseReport> {
  const numCandidates = opts.numCandidates ?? 20
  if (!Number.isInteger(numCandidates) || numCandidates < 1) throw new RangeError(`numCandidates: expected a positive integer, got ${String(numCandidates)}`)
  const { signal } = opts
  const found = findLayerSites(sim.model, opts.layers)
  const skipped = [...found.skipped]
  const work: { site: LayerSite; q: Quantizer }[] = []
  for (const site of found.sites) {
    const q = weightQuantizer(sim, site)
    if (typeof q === 'string') skipped.push({ node: site.node.name, reason: q })
    else work.push({ site, q })
  }
  const report: SeqMseReport = { numCandidates, layers: [], skipped }
  if (work.length === 0) {
    sim.report.warnings.push('SeqMSE: no Conv, Gemm or MatMul with an enabled integer weight quantizer; nothing done')
    return report
  }
  // The model whose activations feed each layer: weights of finished layers fake-quantized.
  const working = cloneModel(sim.model)
  working.graph.initializers = new Map(sim.model.graph.initializers)
  const chosen: { tensor: string; encodings: Encoding[] }[] = []
  for (const [index, { site, q }] of work.entries()) {
    if (signal?.aborted) throw new AbortError('SeqMSE aborted', { cause: signal.reason })
    opts.onProgress?.({ layer: site.node.name, layers: work.length, done: index })
    const inputs = (await collectTensors(working, [site.input], data, { numBatches: opts.numBatches, signal, purpose: `SeqMSE (${site.node.name})`, maxBytes: opts.maxCacheBytes })).get(site.input)!
    const w = site.weight.data as Float32Array
    const obs = new MinMaxObserver(q.spec.axis !== undefined ? { axis: q.spec.axis } : {})
    obs.update(w, site.weight.dims)
    const [mins, maxs] = [obs.min, obs.max]
    const encOpts = { bitwidth: q.spec.bitwidth, symmetric: q.spec.symmetric, strictSymmetric: q.spec.strictSymmetric, unsignedSymmetric: q.spec.unsignedSymmetric }
    const candidate = (c: number, i: number): Encoding => {
      const f = (i + 1) / numCandidates
      return computeEncoding({ min: Math.min(0, mins[c]! * f), max: Math.max(0, maxs[c]! * f) }, encOpts)
    }
    const channels = mins.length
    const losses: Float64Array[] = [] // [candidate][channel], Σ squared error
    let elements = 0
    const delta = new Float32Array(w.length)
    for (let i = 0; i < numCandidates; i++) {
      const encs = Array.from({ length: channels }, (_, c) => candidate(c, i))
      const wq = quantizeDequantizeWeight(w, site.weight.dims, encs, q.spec.axis)
      for (let k = 0; k < w.length; k++) delta[k] = wq[k]! - w[k]!
      const sum = new Float64Array(channels)
      for (const x of inputs) {
        if (signal?.aborted) throw new AbortError('SeqMSE aborted', { cause: signal.reason })
        const dy = await layerForward(site, x, delta, signal)
        const g = outputGeometry(site, dy.dims)
        const s = callNative(() => native.channelSumSquaresNative(dy.data, g.outer, g.channels, g.inner))
        if (i === 0) elements += dy.data.length
        if (channels === 1) sum[0]! += s.reduce((a, b) => a + b, 0)
        else for (let c = 0; c < channels; c++) sum[c]! += s[c]!
      }
      if (sum.some((v) => !Number.isFinite(v))) throw new RangeError(`SeqMSE: non-finite loss in layer ${JSON.stringify(site.node.name)} (weight ${JSON.stringify(site.weight.name)})`)
      losses.push(sum)
    }
    // Ties go to the larger range (the later candidate), so a layer that quantizes exactly keeps min-max.
    const best = Array.from({ length: channels }, (_, c) => {
      let b = numCandidates - 1
      for (let i = numCandidates - 2; i >= 0; i--) if (losses[i]![c]! < losses[b]![c]!) b = i
      return b
    })
    const encodings = best.map((i, c) => candidate(c, i))
    chosen.push({ tensor: q.tensor, encodings })
    const wq = quantizeDequantizeWeight(w, site.weight.dims, encodings, q.spec.axis)
    working.graph.initializers.set(site.weight.name, { ...site.weight, data: wq })
    const total = (l: Float64Array) => l.reduce((a, b) => a + b, 0) / elements
    report.layers.push({
      node: site.node.name,
      opType: site.kind,
      weight: site.weight.name,
      fractions: best.map((i) => (i + 1) / numCandidates),
      lossBefore: total(losses[numCandidates - 1]!),
      lossAfter: best.reduce((a, i, c) => a + losses[i]![c]!, 0) / elements,
      candidateLosses: losses.map(total),
      samples: inputs.reduce((n, x) => n + (x.dims[0] ?? 1), 0),
    })
  }
  // Only now does the sim change (an abort above leaves it as it was).
  for (const c of chosen) sim.freezeEncodings(c.tensor, c.encodings)
  opts.onProgress?.({ layer: '', layers: work.length, done: work.length })
  return report
}
