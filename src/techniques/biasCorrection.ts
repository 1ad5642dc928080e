// Bias correction (Nagel et al. 2019, "Data-Free Quantization", §4.2; AIMET-torch's
// bias_correction.correct_bias). aimet-onnx 2.42 has none.
//
// Quantizing a layer's weights (and the activations before it) shifts the mean of its output:
// E[y_q] ≠ E[y_fp]. Per output channel c, the shift E[y_fp]_c − E[y_q]_c measured over
// calibration data is added to the layer's (float) bias, so the quantized layer's output is
// unbiased again. Layers are corrected one at a time in topological order, each measured on the
// sim with the corrections before it in place (the issue: "layer by layer in order"). The means
// are taken in the graph (ReduceMean over all axes but the channel one), so only one number per
// channel and batch leaves ORT. A layer without a bias gets one.
//
// mode 'analytical' (analyticalBias.ts) takes E[Δy] = ΔW·E[x] from the β and γ of a folded
// BatchNorm before the layer (through a Relu or not) instead of data; 'auto' (the default) does that
// where such statistics exist and the empirical correction elsewhere, as AIMET-torch does with
// perform_only_empirical_bias_corr=False (AIMET's own default is True: empirical everywhere).
// See docs/seq-mse.md.
import { AbortError } from '../errors.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import type { QuantSim } from '../sim/quantSim.js'
import { uniqueName } from '../graph/names.js'
import type { FoldedBatchNorm } from '../graph/prepare/report.js'
import { analyticalShift, findBatchNormInputs, type BatchNormInput } from './analyticalBias.js'
import { channelMeans } from './layerActivations.js'
import { quantizeDequantizeWeight } from './weightQdq.js'
import { findLayerSites, nonChannelAxes, type LayerSite } from './layerSites.js'

export interface BiasCorrectionOptions {
  /** Batches of `data` to use (default: all). */
  numBatches?: number
  /** Node names to correct (default: every Conv and Gemm with a quantized weight). */
  layers?: readonly string[]
  /**
   * 'empirical': measured means everywhere (AIMET's default). 'analytical': only the layers whose
   * input is a folded BatchNorm's output (optionally through Relu, a constant Clip or Flatten), from β and γ; the
   * others are skipped. 'auto' (default): analytical where possible, empirical elsewhere.
   */
  mode?: 'empirical' | 'analytical' | 'auto'
  /**
   * BatchNorm statistics for the analytical correction (default: the sim's own preparation report,
   * `sim.report.preparation.foldedBatchNorms`). They must describe the sim model's layer outputs:
   * for a sim of an equalized model, pass `equalizedBatchNorms(equalizeReport)`.
   */
  batchNorms?: readonly FoldedBatchNorm[]
  signal?: AbortSignal
  onProgress?: (p: { layer: string; layers: number; done: number }) => void
}

export interface BiasCorrectionLayer {
  node: string
  opType: string
  /** How the shift was found. */
  method: 'empirical' | 'analytical'
  /** Analytical: the BatchNorm whose β and γ gave E[x], and the activation between. */
  batchNorm?: string
  activation?: 'none' | 'relu' | 'clip'
  /** The bias initializer written (new when the layer had none). */
  bias: string
  addedBias: boolean
  /** E[y_fp] − E[y_q] per output channel (measured, or −ΔW·E[x]): what was added to the bias. */
  shift: number[]
  /** Mean |shift| over channels: the per-channel mean output error before the correction. */
  meanAbsShift: number
}

export interface BiasCorrectionReport {
  mode: 'empirical' | 'analytical' | 'auto'
  layers: BiasCorrectionLayer[]
  skipped: { node: string; reason: string }[]
}

function outputRank(site: LayerSite): number {
  return site.kind === 'Conv' ? site.weight.dims.length : 2
}

/** Corrects the float biases of `sim`'s model (the sim must have encodings: computeEncodings first). */
export async function applyBiasCorrection(sim: QuantSim, data: CalibrationData, opts: BiasCorrectionOptions = {}): Promise<BiasCorrectionReport> {
  const { signal } = opts
  const mode = opts.mode ?? 'auto'
  if (mode !== 'empirical' && mode !== 'analytical' && mode !== 'auto') throw new TypeError(`mode: expected 'empirical', 'analytical' or 'auto', got ${JSON.stringify(mode)}`)
  sim.qdqModel('simulation') // throws when the sim has no encodings
  const found = findLayerSites(sim.model, opts.layers)
  const skipped = [...found.skipped]
  const sites: LayerSite[] = []
  for (const site of found.sites) {
    const q = sim.quantizers.find((x) => x.kind === 'param' && x.tensor === site.weight.name)
    if (site.kind === 'MatMul') skipped.push({ node: site.node.name, reason: 'MatMul has no bias input (add one with an Add first)' })
    else if (!q?.enabled) skipped.push({ node: site.node.name, reason: 'weight is not quantized' })
    else sites.push(site)
  }
  const stats = mode === 'empirical' ? new Map<string, BatchNormInput>() : findBatchNormInputs(sim.model, sites, opts.batchNorms ?? sim.report.preparation?.foldedBatchNorms ?? [])
  for (const site of sites) {
    // Analytical needs the weight's integer grid (not float16, not blockwise).
    const q = sim.quantizers.find((x) => x.kind === 'param' && x.tensor === site.weight.name)!
    if (q.spec.dtype !== 'int' || q.spec.blockSize !== undefined || !q.encodings) stats.delete(site.node.name)
  }
  if (mode === 'analytical') {
    for (const site of sites.filter((s) => !stats.has(s.node.name))) skipped.push({ node: site.node.name, reason: 'no folded BatchNorm (through Relu, Clip or Flatten only) before it: analytical mode needs one' })
    sites.splice(0, sites.length, ...sites.filter((s) => stats.has(s.node.name)))
  }
  const report: BiasCorrectionReport = { mode, layers: [], skipped }
  if (sites.length === 0) {
    sim.report.warnings.push(mode === 'analytical'
      ? 'bias correction: no Conv or Gemm with a quantized weight after a folded BatchNorm; nothing done'
      : 'bias correction: no Conv or Gemm with a quantized weight; nothing done')
    return report
  }
  const target = (s: LayerSite) => ({ tensor: s.node.outputs[0]!, axes: nonChannelAxes(s, outputRank(s)) })
  const tap = { numBatches: opts.numBatches, signal, purpose: 'bias correction' }
  const measured = sites.filter((s) => !stats.has(s.node.name))
  const floatMeans = measured.length > 0 ? await channelMeans(sim.model, measured.map(target), data, tap) : new Map<string, Float64Array>()
  // Corrections are applied to the sim as we go (each layer is measured after the ones before it);
  // an abort restores the biases as they were.
  const undo: (() => void)[] = []
  try {
    for (const [i, site] of sites.entries()) {
      if (signal?.aborted) throw new AbortError('bias correction aborted', { cause: signal.reason })
      opts.onProgress?.({ layer: site.node.name, layers: sites.length, done: i })
      const bn = stats.get(site.node.name)
      let shift: number[]
      if (bn) {
        const q = sim.quantizers.find((x) => x.kind === 'param' && x.tensor === site.weight.name)!
        const w = site.weight.data as Float32Array
        const wq = quantizeDequantizeWeight(w, site.weight.dims, q.encodings!, q.spec.axis)
        shift = Array.from(analyticalShift(site, w, wq, bn.expected))
      } else {
        const t = target(site)
        const q = (await channelMeans(sim.qdqModel('simulation').model, [t], data, tap)).get(t.tensor)!
        const fp = floatMeans.get(t.tensor)!
        shift = Array.from(fp, (v, c) => v - q[c]!)
      }
      const m = site.weight.dims[site.channelAxis]!
      if (shift.length !== m) throw new RangeError(`bias correction: ${JSON.stringify(site.node.name)} output has ${shift.length} channels, weight has ${m}`)
      const addedBias = !site.bias
      const name = site.bias?.name ?? uniqueName(sim.model.graph, `${site.node.name}.bias`)
      const old = site.bias ? Float32Array.from(site.bias.data as Float32Array) : new Float32Array(m)
      const next = Float32Array.from(old, (b, c) => b + shift[c]!)
      const before = site.bias
      sim.setInitializer({ name, dataType: 1, dims: [m], data: next })
      if (addedBias) {
        while (site.node.inputs.length < 2) site.node.inputs.push('')
        site.node.inputs[2] = name
        undo.push(() => { site.node.inputs.length = 2; sim.model.graph.initializers.delete(name); sim.setInitializer(site.weight) })
      } else undo.push(() => sim.setInitializer(before!))
      report.layers.push({
        node: site.node.name,
        opType: site.kind,
        method: bn ? 'analytical' : 'empirical',
        ...(bn ? { batchNorm: bn.batchNorm, activation: bn.activation } : {}),
        bias: name,
        addedBias,
        shift,
        meanAbsShift: shift.reduce((a, v) => a + Math.abs(v), 0) / m,
      })
    }
  } catch (e) {
    for (const u of undo.reverse()) u()
    throw e
  }
  opts.onProgress?.({ layer: '', layers: sites.length, done: sites.length })
  return report
}
