// Analytical bias correction (Nagel et al. 2019, "Data-Free Quantization", §4.2; AIMET-torch's
// bias_correction.correct_bias with perform_only_empirical_bias_corr=False, whose C++ side is
// libpymo's BnBasedBiasCorrection).
//
// Quantizing a layer's weight W to Ŵ shifts its expected output by E[Δy] = (Ŵ − W)·E[x]. Where the
// layer's input is the output of a layer with a folded BatchNorm (β, γ per channel), optionally
// through a Relu or a Clip (Relu6), E[x] needs no data: a BN output is taken as N(β, γ²) per
// channel, so
//   no activation:  E[x_c] = β_c
//   Relu:           E[x_c] = E[max(0, N(β, γ²))] = β·Φ(β/|γ|) + |γ|·φ(β/|γ|)   (the clipped-normal mean)
//   Clip(lo, hi):   E[x_c] = lo·Φ(a) + β·(Φ(b) − Φ(a)) + |γ|·(φ(a) − φ(b)) + hi·(1 − Φ(b)),
//                   a = (lo − β)/|γ|, b = (hi − β)/|γ|
// and the bias gets −(Ŵ − W)·E[x] per output channel (summed over input channels and the kernel).
// Only the weights' quantization error is corrected (not the activations'), as in AIMET; padding at
// the borders is ignored (the padded zeros are not N(β, γ²)), as in AIMET.
//
// Beyond AIMET-torch (which knows Relu and Relu6): any constant Clip, and a Flatten between (a Gemm
// reading a flattened BN+Relu output: each feature takes its channel's E[x]). Not handled: other
// activations (HardSwish, …), pooling, or anything else between; such layers take the empirical
// correction in 'auto' mode.
import { attrFloat, attrInt } from '../graph/attributes.js'
import { graphIndex } from '../graph/graphIndex.js'
import { opsetVersion, type Model, type Node } from '../graph/model.js'
import type { FoldedBatchNorm } from '../graph/prepare/report.js'
import { callNative, native } from '../native.js'
import type { EqualizeReport } from './equalizeModel.js'
import type { LayerSite } from './layerSites.js'

export interface BatchNormInput {
  /** The BatchNormalization (node name in the original model) whose β and γ describe the input. */
  batchNorm: string
  /** The layer the BN was folded into (its output is the BN's output). */
  layer: string
  activation: 'none' | 'relu' | 'clip'
  /** The Clip's bounds (activation 'clip'). */
  clip?: [number, number]
  /** A Flatten sits between (each input feature takes its channel's expectation). */
  flatten: boolean
  /** E[x] per input channel of the site (per input feature for a Gemm after a Flatten). */
  expected: Float64Array
}

/** erfc with fractional error below 1.2e-7 everywhere (Numerical Recipes' Chebyshev fit, erfcc). */
function erfc(x: number): number {
  const z = Math.abs(x)
  const t = 1 / (1 + 0.5 * z)
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
  return x >= 0 ? r : 2 - r
}

/** Standard normal CDF. */
export function normalCdf(z: number): number {
  return 0.5 * erfc(-z / Math.SQRT2)
}

const normalPdf = (z: number) => (Number.isFinite(z) ? Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI) : 0)

/** E[clip(X, lo, hi)] for X ~ N(mu, sigma²); lo may be −∞ and hi +∞. */
export function clipMean(mu: number, sigma: number, lo: number, hi: number): number {
  const s = Math.abs(sigma)
  if (s === 0) return Math.min(hi, Math.max(lo, mu))
  const [a, b] = [(lo - mu) / s, (hi - mu) / s]
  const [pa, pb] = [normalCdf(a), normalCdf(b)]
  const below = lo === -Infinity ? 0 : lo * pa
  const above = hi === Infinity ? 0 : hi * (1 - pb)
  return below + mu * (pb - pa) + s * (normalPdf(a) - normalPdf(b)) + above
}

/** E[max(0, X)] for X ~ N(mu, sigma²). */
export function reluMean(mu: number, sigma: number): number {
  return clipMean(mu, sigma, 0, Infinity)
}

/** A Clip's constant bounds (attributes before opset 11, initializer inputs from 11), or undefined. */
function clipBounds(model: Model, clip: Node): [number, number] | undefined {
  if ((opsetVersion(model) ?? 11) < 11) return [attrFloat(clip, 'min', -Infinity), attrFloat(clip, 'max', Infinity)]
  const bound = (name: string | undefined, fallback: number): number | undefined => {
    if (!name) return fallback
    const t = model.graph.initializers.get(name)
    return t && t.data.length === 1 && t.dataType === 1 ? Number(t.data[0]) : undefined
  }
  const lo = bound(clip.inputs[1], -Infinity)
  const hi = bound(clip.inputs[2], Infinity)
  return lo === undefined || hi === undefined || !(lo <= hi) ? undefined : [lo, hi]
}

/** Input channels the site reads (Conv: weight dims[1] × group; Gemm: K; MatMul: rows of W). */
function inputFeatures(site: LayerSite): number {
  const d = site.weight.dims
  if (site.kind === 'Conv') return d[1]! * attrInt(site.node, 'group', 1)
  return d[1 - site.channelAxis]!
}

/**
 * For each site whose input is a folded BatchNorm's output (optionally through Relu and/or a
 * Flatten), the BN and E[x]; `folded` is prepareModel's record (only BNs folded *after* a layer
 * describe that layer's output).
 */
export function findBatchNormInputs(model: Model, sites: readonly LayerSite[], folded: readonly FoldedBatchNorm[]): Map<string, BatchNormInput> {
  const bnOf = new Map(folded.filter((f) => f.position === 'after').map((f) => [f.into, f]))
  const found = new Map<string, BatchNormInput>()
  if (bnOf.size === 0) return found
  const index = graphIndex(model.graph)
  for (const site of sites) {
    let name = site.input
    let activation: 'none' | 'relu' | 'clip' = 'none'
    let clip: [number, number] | undefined
    let flatten = false
    let bn: FoldedBatchNorm | undefined
    for (let step = 0; step < 3 && !bn; step++) {
      const p = index.producer(name)?.node
      if (!p) break
      const record = bnOf.get(p.name)
      if (record && p.outputs[0] === name) bn = record
      else if (p.opType === 'Relu' && activation === 'none') { activation = 'relu'; name = p.inputs[0]! }
      else if (p.opType === 'Clip' && activation === 'none' && (clip = clipBounds(model, p))) { activation = 'clip'; name = p.inputs[0]! }
      else if (p.opType === 'Flatten' && !flatten && attrInt(p, 'axis', 1) === 1 && site.kind !== 'Conv') { flatten = true; name = p.inputs[0]! }
      else break
    }
    if (!bn) continue
    const channels = bn.beta.length
    const features = inputFeatures(site)
    if (flatten ? features % channels !== 0 : features !== channels) continue
    const perChannel = Float64Array.from(bn.beta, (b, c) => (activation === 'relu' ? reluMean(b, bn.gamma[c]!) : clip ? clipMean(b, bn.gamma[c]!, clip[0], clip[1]) : b))
    const spread = features / channels
    const expected = spread === 1 ? perChannel : Float64Array.from({ length: features }, (_, f) => perChannel[Math.floor(f / spread)]!)
    found.set(site.node.name, { batchNorm: bn.bn, layer: bn.into, activation, ...(clip ? { clip } : {}), flatten, expected })
  }
  return found
}

/**
 * −(Ŵ − W)·E[x] per output channel: what to add to the bias so the quantized layer's expected
 * output is the float one's (`wq` is the fake-quantized weight, in the site's weight layout).
 */
export function analyticalShift(site: LayerSite, w: Float32Array, wq: Float32Array, expected: Float64Array): Float64Array {
  const d = site.weight.dims
  const m = d[site.channelAxis]!
  // The reduction over the weight runs in Rust (crates/quantkit-core/src/bias_correction.rs).
  const dot = site.kind === 'Conv'
    ? callNative(() => native.weightDeltaDotNative(w, wq, m, d[1]!, d.slice(2).reduce((a, b) => a * b, 1), attrInt(site.node, 'group', 1), false, expected))
    // Gemm (the only other site with a bias): W is [N, K] with transB, [K, N] without.
    : callNative(() => native.weightDeltaDotNative(w, wq, m, d[1 - site.channelAxis]!, 1, 1, site.channelAxis !== 0, expected))
  const scale = site.kind === 'Conv' ? -1 : -attrFloat(site.node, 'alpha', 1)
  return dot.map((v) => v * scale)
}

/**
 * The BatchNorm records of an equalized model, made to describe its layers' outputs again: cross-
 * layer scaling divided a layer's output channels by s (β/s, γ/s) and the high-bias fold took c off
 * its bias (β/s − c). Pass them as `batchNorms` to applyBiasCorrection on a sim of that model.
 */
export function equalizedBatchNorms(report: EqualizeReport): FoldedBatchNorm[] {
  const scale = new Map<string, Float64Array>()
  for (const set of report.sets) for (const p of set.pairs) scale.set(p.layer1, p.scaleFactors)
  const absorbed = new Map(report.highBiasFold.pairs.map((p) => [p.layer1, p.absorbed]))
  return report.preparation.foldedBatchNorms.map((f) => {
    const s = scale.get(f.into)
    const c = absorbed.get(f.into)
    if (f.position !== 'after' || (!s && !c)) return f
    if ((s && s.length !== f.beta.length) || (c && c.length !== f.beta.length)) return f
    return {
      ...f,
      beta: Float32Array.from(f.beta, (b, i) => b / (s?.[i] ?? 1) - (c?.[i] ?? 0)),
      gamma: Float32Array.from(f.gamma, (g, i) => g / (s?.[i] ?? 1)),
    }
  })
}
