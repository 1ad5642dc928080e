// Reading and rewriting the float32 parameters of the layers folds go into (Conv, ConvTranspose,
// Gemm): which initializer is the weight, which is the bias, whether they may be changed, and the
// output-channel layout of each weight. Shared by bnFold.ts and mulAddFold.ts.
import { DataType } from '../../onnx/elementType.js'
import type { Tensor } from '../../onnx/tensor.js'
import { attrInt } from '../attributes.js'
import type { GraphIndex } from '../graphIndex.js'
import type { Graph, Node } from '../model.js'
import { uniqueName } from '../names.js'

const q = JSON.stringify

export type FloatTensor = Tensor & { data: Float32Array }

export function isFloat32(t: Tensor | undefined): t is FloatTensor {
  return t !== undefined && t.dataType === DataType.FLOAT && ArrayBuffer.isView(t.data) &&
    (t.data as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] === 'Float32Array'
}

export function float32Tensor(name: string, dims: number[], data: Float32Array): FloatTensor {
  return { name, dataType: DataType.FLOAT, dims: [...dims], data }
}

/**
 * The float32 initializer `name` if a fold may rewrite it in place of its only reader `node`:
 * not a graph input (which would override it) and read by no other node. Otherwise a reason.
 */
export function ownedParameter(graph: Graph, index: GraphIndex, node: Node, name: string): FloatTensor | string {
  const t = graph.initializers.get(name)
  if (!t) return `${q(name)} is not an initializer`
  if (!isFloat32(t)) return `${q(name)} is not float32`
  if (index.isGraphInput(name)) return `${q(name)} is also a graph input (it may be overridden at run time)`
  if (index.isGraphOutput(name)) return `${q(name)} is also a graph output`
  const readers = index.consumers(name)
  if (readers.length !== 1 || readers[0]!.node !== node) {
    return `${q(name)} is shared with ${readers.filter((u) => u.node !== node).map((u) => q(u.node.name)).join(', ') || 'another input'} ` +
      '(folding would change the other reader; quantkit leaves shared weights alone)'
  }
  return t
}

/** Output-channel layout of a layer's weight: element i of the weight belongs to output channel `channelOf(i)`. */
export interface WeightLayout {
  outChannels: number
  channelOf(i: number): number
}

/** The layout of `w` as the weight of `node` (Conv, ConvTranspose, Gemm), or a reason it cannot be used. */
export function weightLayout(node: Node, w: Tensor): WeightLayout | string {
  const d = w.dims
  switch (node.opType) {
    case 'Conv': {
      // [M, C/group, k…]: output channel is the first axis.
      if (d.length < 3) return `weight rank ${d.length} < 3`
      const inner = d.slice(1).reduce((a, b) => a * b, 1)
      return { outChannels: d[0]!, channelOf: (i) => Math.floor(i / inner) }
    }
    case 'ConvTranspose': {
      // [C, M/group, k…]: input channel c sits in group floor(c / (C/group)); output channel
      // = group · (M/group) + j.
      if (d.length < 3) return `weight rank ${d.length} < 3`
      const group = attrInt(node, 'group', 1)
      const [c, mg] = [d[0]!, d[1]!]
      if (c % group !== 0) return `${c} input channels do not split into ${group} groups`
      const perGroupIn = c / group
      const k = d.slice(2).reduce((a, b) => a * b, 1)
      return {
        outChannels: mg * group,
        channelOf: (i) => {
          const ci = Math.floor(i / (mg * k))
          const j = Math.floor(i / k) % mg
          return Math.floor(ci / perGroupIn) * mg + j
        },
      }
    }
    case 'Gemm': {
      if (d.length !== 2) return `weight rank ${d.length} ≠ 2`
      const transB = attrInt(node, 'transB', 0) !== 0
      const [r, c] = [d[0]!, d[1]!]
      return transB ? { outChannels: r, channelOf: (i) => Math.floor(i / c) } : { outChannels: c, channelOf: (i) => i % c }
    }
    default:
      return `${node.opType} is not a Conv, ConvTranspose or Gemm`
  }
}

/**
 * The bias of a layer as one float64 value per output channel, with where it lives: `name` is the
 * existing initializer, or a fresh name (`<node>.bias`, as AIMET names the bias it adds) when the
 * layer has none. Gemm's C may be a scalar, [N] or [1, N] and is scaled by `beta`.
 */
export interface LayerBias {
  name: string
  exists: boolean
  values: Float64Array
}

export function layerBias(graph: Graph, index: GraphIndex, node: Node, outChannels: number): LayerBias | string {
  const name = node.inputs[2] ?? ''
  if (name === '') {
    return { name: uniqueName(graph, `${node.name || node.opType}.bias`), exists: false, values: new Float64Array(outChannels) }
  }
  const t = ownedParameter(graph, index, node, name)
  if (typeof t === 'string') return `bias ${t}`
  const n = t.data.length
  const values = new Float64Array(outChannels)
  if (node.opType === 'Gemm') {
    const dimsOk = t.dims.length === 0 || (t.dims.every((x, i) => x === 1 || (i === t.dims.length - 1 && x === outChannels)) && t.dims.length <= 2)
    if (!dimsOk || (n !== 1 && n !== outChannels)) return `Gemm bias ${q(name)} has dims ${q(t.dims)}; only a scalar, [N] or [1, N] is per-channel`
    const beta = node.attributes.has('beta') ? (node.attributes.get('beta') as { value: number }).value : 1
    for (let o = 0; o < outChannels; o++) values[o] = beta * t.data[n === 1 ? 0 : o]!
    return { name, exists: true, values }
  }
  if (n !== outChannels) return `bias ${q(name)} has ${n} values for ${outChannels} output channels`
  for (let o = 0; o < outChannels; o++) values[o] = t.data[o]!
  return { name, exists: true, values }
}

/** Writes a rescaled weight and a new bias into the graph under the layer's names (Gemm's beta becomes 1). */
export function writeLayerParams(graph: Graph, node: Node, weightName: string, weight: Float32Array, weightDims: number[], bias: LayerBias): void {
  graph.initializers.set(weightName, float32Tensor(weightName, weightDims, weight))
  const values = Float32Array.from(bias.values)
  graph.initializers.set(bias.name, float32Tensor(bias.name, [values.length], values))
  if (!bias.exists) {
    while (node.inputs.length < 2) node.inputs.push('')
    node.inputs[2] = bias.name
  }
  if (node.opType === 'Gemm') node.attributes.set('beta', { type: 'float', value: 1 })
  for (const v of [...graph.valueInfo, ...graph.inputs]) {
    if (v.name === bias.name && !v.rawType) v.shape = [values.length]
  }
}
