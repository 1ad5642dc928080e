// Empirical bias correction (Nagel et al. 2019, "Data-Free Quantization", §4.2; AIMET-torch's
// bias_correction.correct_bias with empirical mode). aimet-onnx 2.42 has none.
//
// Quantizing a layer's weights (and the activations before it) shifts the mean of its output:
// E[y_q] ≠ E[y_fp]. Per output channel c, the shift E[y_fp]_c − E[y_q]_c measured over
// calibration data is added to the layer's (float) bias, so the quantized layer's output is
// unbiased again. Layers are corrected one at a time in topological order, each measured on the
// sim with the corrections before it in place (the issue: "layer by layer in order"). The means
// are taken in the graph (ReduceMean over all axes but the channel one), so only one number per
// channel and batch leaves ORT. A layer without a bias gets one. The analytical variant (from
// BatchNorm statistics) is not implemented. See docs/seq-mse.md.
import { AbortError } from '../errors.js'
import type { CalibrationData } from '../sim/calibrationData.js'
import type { QuantSim } from '../sim/quantSim.js'
import { uniqueName } from '../graph/names.js'
import { channelMeans } from './layerActivations.js'
import { findLayerSites, nonChannelAxes, type LayerSite } from './layerSites.js'

export interface BiasCorrectionOptions {
  /** Batches of `data` to use (default: all). */
  numBatches?: number
  /** Node names to correct (default: every Conv and Gemm with a quantized weight). */
  layers?: readonly string[]
  signal?: AbortSignal
  onProgress?: (p: { layer: string; layers: number; done: number }) => void
}

export interface BiasCorrectionLayer {
  node: string
  opType: string
  /** The bias initializer written (new when the layer had none). */
  bias: string
  addedBias: boolean
  /** E[y_fp] − E[y_q] per output channel: what was added to the bias. */
  shift: number[]
  /** Mean |shift| over channels: the per-channel mean output error before the correction. */
  meanAbsShift: number
}

export interface BiasCorrectionReport {
  layers: BiasCorrectionLayer[]
  skipped: { node: string; reason: string }[]
}

function outputRank(site: LayerSite): number {
  return site.kind === 'Conv' ? site.weight.dims.length : 2
}

/** Corrects the float biases of `sim`'s model (the sim must have encodings: computeEncodings first). */
export async function applyBiasCorrection(sim: QuantSim, data: CalibrationData, opts: BiasCorrectionOptions = {}): Promise<BiasCorrectionReport> {
  const { signal } = opts
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
  const report: BiasCorrectionReport = { layers: [], skipped }
  if (sites.length === 0) {
    sim.report.warnings.push('bias correction: no Conv or Gemm with a quantized weight; nothing done')
    return report
  }
  const target = (s: LayerSite) => ({ tensor: s.node.outputs[0]!, axes: nonChannelAxes(s, outputRank(s)) })
  const tap = { numBatches: opts.numBatches, signal, purpose: 'bias correction' }
  const floatMeans = await channelMeans(sim.model, sites.map(target), data, tap)
  // Corrections are applied to the sim as we go (each layer is measured after the ones before it);
  // an abort restores the biases as they were.
  const undo: (() => void)[] = []
  try {
    for (const [i, site] of sites.entries()) {
      if (signal?.aborted) throw new AbortError('bias correction aborted', { cause: signal.reason })
      opts.onProgress?.({ layer: site.node.name, layers: sites.length, done: i })
      const t = target(site)
      const q = (await channelMeans(sim.qdqModel('simulation').model, [t], data, tap)).get(t.tensor)!
      const fp = floatMeans.get(t.tensor)!
      const shift = Array.from(fp, (v, c) => v - q[c]!)
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
      report.layers.push({ node: site.node.name, opType: site.kind, bias: name, addedBias, shift, meanAbsShift: shift.reduce((a, v) => a + Math.abs(v), 0) / m })
    }
  } catch (e) {
    for (const u of undo.reverse()) u()
    throw e
  }
  opts.onProgress?.({ layer: '', layers: sites.length, done: sites.length })
  return report
}
