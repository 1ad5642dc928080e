// High-bias fold (Nagel et al. 2019, §4.2), with aimet-onnx 2.42's rule
// (aimet_onnx/cross_layer_equalization.py HighBiasFold.bias_fold / PythonHbfImpl.bias_fold and
// aimet_onnx/common/cross_layer_equalization.py HbfImpl._absorb_bias):
//
// For a scaled pair whose first layer had a BatchNorm folded into it (β, γ per channel), after the
// scaling s of that pair: β' = β / s, γ' = γ / s, and
//   ReLU-like activation between (Relu, PRelu): c = max(0, β' − 3·|γ'|)
//   no activation between:                       c = β'   (the whole bias; the map is linear)
//   b1 ← b1 − c,   b2 ← b2 + Σ_spatial W2 · c   (per output channel of layer 2, through its input channels)
//
// Why it is exact, and when: a BN output is ~N(β, γ²), so a pre-activation below β − 3|γ| is rare.
// Where layer 1's pre-activation x ≥ c, relu(x − c) = relu(x) − c, and layer 2 adds back W2·c.
// Where x < c somewhere, the output changes. It is also inexact at the borders of a layer 2 that
// pads (the padded zeros were not shifted by c); aimet-onnx applies it there too, and so does
// quantkit — the report marks such pairs.
//
// As in aimet-onnx, only pairs whose first layer has a folded BN are touched; a second layer
// without a bias gets one (aimet-onnx skips such a pair instead). Unlike aimet-onnx, a BN folded
// *forward* into a Conv (BN before the Conv) is not used: its β and γ describe the Conv's input,
// not its output.
import { attrFloat, attrInts, attrString } from '../graph/attributes.js'
import type { FoldedBatchNorm } from '../graph/prepare/report.js'
import type { LayerParams, ScaledPair } from './crossLayerScaling.js'
import { CLS_ACTIVATIONS, type ClsLayer } from './layerPairs.js'

/** What the high-bias fold did to one pair. */
export interface HighBiasFoldPair {
  /** Node names: the layer whose bias shrank and the layer whose bias absorbed it. */
  layer1: string
  layer2: string
  /** The BatchNorm (node name in the original model) whose β and γ were used. */
  batchNorm: string
  /** 'relu': c = max(0, β' − 3|γ'|); 'linear': nothing between the layers, c = β'. */
  rule: 'relu' | 'linear'
  /** c per channel of layer 1 (after scaling): what was subtracted from layer 1's bias. */
  absorbed: Float64Array
  /** Channels with c > 0, the largest c, and the mean of c over all channels. */
  channels: number
  maxAbsorbed: number
  meanAbsorbed: number
  /** Layer 2 pads its input: the fold is inexact at the borders of its output. */
  layer2Pads: boolean
}

function pads(layer: ClsLayer): boolean {
  if (layer.node.opType === 'Gemm') return false
  const autoPad = attrString(layer.node, 'auto_pad') ?? 'NOTSET'
  return (attrInts(layer.node, 'pads') ?? []).some((p) => p !== 0) || (autoPad !== 'NOTSET' && autoPad !== 'VALID')
}

/** Σ over layer 2's weight of W[o, i, …]·c[i], per output channel o (Gemm: times alpha). */
function throughWeight(layer: ClsLayer, w: Float32Array, c: Float64Array): Float64Array {
  const d = layer.dims
  const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1)
  const out = new Float64Array(d[layer.outAxis]!)
  if (layer.kind === 'depthwise') {
    const k = prod(d.slice(1))
    for (let o = 0; o < out.length; o++) {
      let s = 0
      for (let j = 0; j < k; j++) s += w[o * k + j]!
      out[o] = s * c[o]!
    }
    return out
  }
  // Dense: the two channel axes are 0 and 1 in some order; the rest is spatial.
  const [n0, n1] = [d[0]!, d[1]!]
  const k = prod(d.slice(2))
  for (let a = 0; a < n0; a++) {
    for (let b = 0; b < n1; b++) {
      let s = 0
      const base = (a * n1 + b) * k
      for (let j = 0; j < k; j++) s += w[base + j]!
      const [o, i] = layer.outAxis === 0 ? [a, b] : [b, a]
      out[o] = out[o]! + s * c[i]!
    }
  }
  if (layer.node.opType === 'Gemm') {
    const alpha = attrFloat(layer.node, 'alpha', 1)
    for (let o = 0; o < out.length; o++) out[o] = out[o]! * alpha
  }
  return out
}

/**
 * Applies the high-bias fold to the scaled pairs, in order, with the BatchNorms folded `after`
 * their layer (`folded`, from prepareModel's report). Returns what it did per pair it touched.
 */
export function highBiasFold(params: LayerParams, pairs: readonly ScaledPair[], folded: readonly FoldedBatchNorm[]): HighBiasFoldPair[] {
  const bnOf = new Map(folded.filter((f) => f.position === 'after').map((f) => [f.into, f]))
  const done: HighBiasFoldPair[] = []
  for (const pair of pairs) {
    const bn = bnOf.get(pair.layer1.node.name)
    if (!bn) continue
    const b1 = params.bias(pair.layer1)
    const s = pair.scale
    if (bn.beta.length !== s.length || !b1.exists) continue
    const relu = pair.between.length > 0 && pair.between.every((n) => CLS_ACTIVATIONS[n.opType] === 'relu')
    const absorbed = new Float64Array(s.length)
    for (let i = 0; i < s.length; i++) {
      const beta = bn.beta[i]! / s[i]!
      const gamma = bn.gamma[i]! / s[i]!
      absorbed[i] = relu ? Math.max(0, beta - 3 * Math.abs(gamma)) : beta
    }
    const correction = throughWeight(pair.layer2, params.weight(pair.layer2), absorbed)
    const b2 = params.bias(pair.layer2)
    for (let i = 0; i < absorbed.length; i++) b1.values[i] = b1.values[i]! - absorbed[i]!
    for (let o = 0; o < correction.length; o++) b2.values[o] = b2.values[o]! + correction[o]!
    params.biasChanged(pair.layer1)
    params.biasChanged(pair.layer2)
    let channels = 0
    let max = 0
    let sum = 0
    for (const a of absorbed) {
      if (a !== 0) channels++
      max = Math.max(max, Math.abs(a))
      sum += a
    }
    done.push({
      layer1: pair.layer1.node.name,
      layer2: pair.layer2.node.name,
      batchNorm: bn.bn,
      rule: relu ? 'relu' : 'linear',
      absorbed,
      channels,
      maxAbsorbed: max,
      meanAbsorbed: sum / absorbed.length,
      layer2Pads: pads(pair.layer2),
    })
  }
  return done
}
