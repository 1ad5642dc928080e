// Cross-layer scaling (Nagel et al. 2019, "Data-Free Quantization", §4.1), with aimet-onnx 2.42's
// formulas (aimet_onnx/common/cross_layer_equalization.py, ClsImpl):
//
// Pair (layer 1 → [ReLU] → layer 2), r1 = max|W1| per output channel, r2 = max|W2| per input channel:
//   s = r1 / √(r1·r2)  (= √(r1·r2) / r2)          compute_scaling_params_for_conv
//   W1 ← W1 / s per output channel, b1 ← b1 / s, W2 ← W2 · s per input channel
//   so both ranges become √(r1·r2).                fold_scaling_params_for_conv
// Triple (Conv → [ReLU] → depthwise → [ReLU] → Conv), m0, m1, m2 the three per-channel ranges:
//   c = ∛(m0·m1·m2), s12 = m0 / c, s23 = c / m2
//   W0 ← W0 / s12, b0 ← b0 / s12, W1 ← W1 · s12 / s23, b1 ← b1 / s23, W2 ← W2 · s23 per input channel
//   so all three ranges become c in one step (closed form: aimet-onnx does not iterate).
// A factor that comes out 0, NaN or ±inf (a channel of zeros) is 1, as in aimet-onnx.
// Pairs of a longer chain are scaled in order, each from the weights the previous one left.
//
// Weights are float32 initializers; working copies are made on first touch (transforms never write
// into the input model's arrays, see graph/model.ts) and written back once by `LayerParams.write`.
import type { GraphIndex } from '../graph/graphIndex.js'
import type { Graph, Node } from '../graph/model.js'
import { float32Tensor, layerBias, ownedParameter, writeLayerParams, type LayerBias } from '../graph/prepare/layerParams.js'
import type { ClsLayer, ClsSet } from './layerPairs.js'

/** One scaled pair: layer 1's outputs (and what reads them) were divided by `scale`, channel by channel. */
export interface ScaledPair {
  layer1: ClsLayer
  layer2: ClsLayer
  between: Node[]
  scale: Float64Array
}

// ── per-channel helpers over a weight's axis ──

function axisGeometry(dims: readonly number[], axis: number): [outer: number, n: number, inner: number] {
  const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1)
  return [prod(dims.slice(0, axis)), dims[axis]!, prod(dims.slice(axis + 1))]
}

/** max |w| over everything but `axis`, one value per index of `axis`. */
export function channelMaxAbs(data: Float32Array, dims: readonly number[], axis: number): Float64Array {
  const [outer, n, inner] = axisGeometry(dims, axis)
  const out = new Float64Array(n)
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < n; c++) {
      let m = out[c]!
      const base = (o * n + c) * inner
      for (let k = 0; k < inner; k++) {
        const v = Math.abs(data[base + k]!)
        if (v > m) m = v
      }
      out[c] = m
    }
  }
  return out
}

/** data[…, c, …] ← data[…, c, …] · factors[c] along `axis`, in place. */
export function scaleChannels(data: Float32Array, dims: readonly number[], axis: number, factors: ArrayLike<number>): void {
  const [outer, n, inner] = axisGeometry(dims, axis)
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < n; c++) {
      const f = factors[c]!
      const base = (o * n + c) * inner
      for (let k = 0; k < inner; k++) data[base + k] = data[base + k]! * f
    }
  }
}

const usable = (s: number) => (Number.isFinite(s) && s !== 0 ? s : 1)

/** s = r1 / √(r1·r2) per channel (aimet-onnx's compute_scaling_params_for_conv). */
export function pairScale(r1: Float64Array, r2: Float64Array): Float64Array {
  if (r1.length !== r2.length) throw new RangeError(`pairScale: ${r1.length} output channels against ${r2.length} input channels`)
  return r1.map((a, c) => usable(a / Math.sqrt(a * r2[c]!)))
}

/** [s12, s23] per channel (aimet-onnx's compute_scaling_params_for_depthwise_conv). */
export function tripleScales(m0: Float64Array, m1: Float64Array, m2: Float64Array): [Float64Array, Float64Array] {
  if (m0.length !== m1.length || m1.length !== m2.length) throw new RangeError(`tripleScales: channel counts ${m0.length}, ${m1.length}, ${m2.length} differ`)
  const c = m0.map((a, i) => Math.cbrt(a * m1[i]! * m2[i]!))
  return [m0.map((a, i) => usable(a / c[i]!)), c.map((x, i) => usable(x / m2[i]!))]
}

// ── working copies of the layers' parameters ──

interface Entry {
  node: Node
  weightName: string
  dims: number[]
  weight?: Float32Array
  bias?: LayerBias
  biasChanged: boolean
}

/** The weights and biases CLE and the high-bias fold change, copied on first touch and written back at the end. */
export class LayerParams {
  readonly #entries = new Map<Node, Entry>()
  constructor(readonly graph: Graph, readonly index: GraphIndex) {}

  /** Why the layer's weight or bias may not be changed (shared, a graph input, …), or undefined. */
  blocker(layer: ClsLayer): string | undefined {
    const w = ownedParameter(this.graph, this.index, layer.node, layer.weight)
    if (typeof w === 'string') return `${layer.node.name}: weight ${w}`
    const b = this.#bias(layer)
    return typeof b === 'string' ? `${layer.node.name}: ${b}` : undefined
  }

  #entry(layer: ClsLayer): Entry {
    let e = this.#entries.get(layer.node)
    if (!e) this.#entries.set(layer.node, (e = { node: layer.node, weightName: layer.weight, dims: layer.dims, biasChanged: false }))
    return e
  }

  #bias(layer: ClsLayer): LayerBias | string {
    const e = this.#entry(layer)
    if (e.bias) return e.bias
    const out = layer.dims[layer.outAxis]!
    const b = layerBias(this.graph, this.index, layer.node, layer.kind === 'depthwise' ? layer.dims[0]! : out)
    if (typeof b !== 'string') e.bias = b
    return b
  }

  weight(layer: ClsLayer): Float32Array {
    const e = this.#entry(layer)
    e.weight ??= Float32Array.from(this.graph.initializers.get(layer.weight)!.data as Float32Array)
    return e.weight
  }

  /** The layer's bias per output channel (zeros, not yet in the graph, when it has none). */
  bias(layer: ClsLayer): LayerBias {
    const b = this.#bias(layer)
    if (typeof b === 'string') throw new Error(`LayerParams.bias: ${b} (call blocker() first)`)
    return b
  }

  /** Marks the bias as changed; a layer that had none gets one (`<node>.bias`, as AIMET names it). */
  biasChanged(layer: ClsLayer): void {
    this.#entry(layer).biasChanged = true
  }

  write(): void {
    for (const e of this.#entries.values()) {
      if (!e.weight) continue
      if (e.bias && (e.bias.exists || e.biasChanged)) writeLayerParams(this.graph, e.node, e.weightName, e.weight, e.dims, e.bias)
      else this.graph.initializers.set(e.weightName, float32Tensor(e.weightName, e.dims, e.weight))
    }
  }
}

/** Scales one CLS set in place (in `params`); returns its one or two pairs with the factors applied. */
export function scaleClsSet(params: LayerParams, set: ClsSet): ScaledPair[] {
  const ls = set.layers
  const w = ls.map((l) => params.weight(l))
  const divideOutputs = (l: ClsLayer, wt: Float32Array, s: Float64Array) => {
    const inv = s.map((x) => 1 / x)
    scaleChannels(wt, l.dims, l.outAxis, inv)
    const b = params.bias(l)
    if (b.exists) for (let c = 0; c < b.values.length; c++) b.values[c] = b.values[c]! * inv[c]!
  }
  if (ls.length === 2) {
    const [l1, l2] = ls as [ClsLayer, ClsLayer]
    const s = pairScale(channelMaxAbs(w[0]!, l1.dims, l1.outAxis), channelMaxAbs(w[1]!, l2.dims, l2.inAxis))
    divideOutputs(l1, w[0]!, s)
    scaleChannels(w[1]!, l2.dims, l2.inAxis, s)
    return [{ layer1: l1, layer2: l2, between: set.between[0]!, scale: s }]
  }
  const [l0, l1, l2] = ls as [ClsLayer, ClsLayer, ClsLayer]
  const [s12, s23] = tripleScales(
    channelMaxAbs(w[0]!, l0.dims, l0.outAxis),
    channelMaxAbs(w[1]!, l1.dims, l1.outAxis),
    channelMaxAbs(w[2]!, l2.dims, l2.inAxis),
  )
  divideOutputs(l0, w[0]!, s12)
  scaleChannels(w[1]!, l1.dims, l1.outAxis, s12)
  divideOutputs(l1, w[1]!, s23)
  scaleChannels(w[2]!, l2.dims, l2.inAxis, s23)
  return [
    { layer1: l0, layer2: l1, between: set.between[0]!, scale: s12 },
    { layer1: l1, layer2: l2, between: set.between[1]!, scale: s23 },
  ]
}
