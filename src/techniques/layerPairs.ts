// Which layers cross-layer equalization scales together, found as aimet-onnx 2.42 finds them
// (aimet_onnx/common/cross_layer_equalization.py: GraphSearchUtils.find_downstream_layer_groups_to_scale
// and convert_layer_group_to_cls_sets).
//
// A layer group is a chain of layers where each layer's output reaches the next layer's data input
// through nothing but ReLU-like activations (aimet-onnx's cls_supported_activation_types: Relu,
// PRelu), every value on the way read by exactly one node. Both activations commute with a positive
// per-channel scale (relu(x/s) = relu(x)/s, and PRelu's slope is applied per element), which is what
// makes the scaling exact. A group is cut into CLS sets: Conv→Conv pairs, DepthwiseConv→Conv pairs
// and Conv→DepthwiseConv→Conv triples; a layer that is neither (a grouped Conv that is not depthwise
// with multiplier 1, a grouped ConvTranspose) ends the current set and scaling restarts after it.
//
// Differences from aimet-onnx, on purpose:
// - Gemm takes part like a Conv (aimet-onnx scales only Conv and ConvTranspose; DFQ and AIMET's
//   PyTorch CLE do Linear layers). `gemm: false` turns that off.
// - A value that is also a graph output ends the chain (scaling it would change a model output).
// - A grouped ConvTranspose is unsupported (aimet-onnx transposes its weight as if group were 1).
import { attrInt } from '../graph/attributes.js'
import type { GraphIndex } from '../graph/graphIndex.js'
import type { Graph, Node } from '../graph/model.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { isFloat32 } from '../graph/prepare/layerParams.js'

/** Activations a chain may pass through (op type → how the high-bias fold treats it). */
export const CLS_ACTIVATIONS: Readonly<Record<string, 'relu'>> = Object.freeze({ Relu: 'relu', PRelu: 'relu' })

/** 'conv' (a dense Conv, ConvTranspose or Gemm), 'depthwise' (Conv with group = channels, one filter each). */
export type ClsLayerKind = 'conv' | 'depthwise'

/**
 * A layer as CLE sees its weight: the axis of output channels and the axis of input channels
 * (the same axis for a depthwise Conv, whose channel c reads only input channel c).
 */
export interface ClsLayer {
  node: Node
  kind: ClsLayerKind
  weight: string
  dims: number[]
  outAxis: number
  inAxis: number
}

/** A CLS set: 2 layers, or 3 with a depthwise Conv in the middle; `between[i]` are the activations after `layers[i]`. */
export interface ClsSet {
  layers: ClsLayer[]
  between: Node[][]
}

export interface LayerSearchOptions {
  /** Equalize Gemm→Gemm too (not in aimet-onnx); default true. */
  gemm?: boolean
}

export interface LayerSearch {
  sets: ClsSet[]
  /** Layers in a group that could not be part of a set, and why. */
  unsupported: { node: string; reason: string }[]
}

const LAYER_TYPES = new Set(['Conv', 'ConvTranspose', 'Gemm'])
const isDefault = (n: Node) => n.domain === '' || n.domain === 'ai.onnx'

/** The node as a CLE layer, or the reason it cannot be one. */
export function clsLayer(graph: Graph, node: Node): ClsLayer | string {
  const weight = node.inputs[1] ?? ''
  const w = graph.initializers.get(weight)
  if (!isFloat32(w)) return `weight ${JSON.stringify(weight)} is not a float32 initializer`
  const dims = [...w.dims]
  const group = node.opType === 'Gemm' ? 1 : attrInt(node, 'group', 1)
  switch (node.opType) {
    case 'Conv':
      if (dims.length < 3) return `Conv weight rank ${dims.length} < 3`
      if (group === 1) return { node, kind: 'conv', weight, dims, outAxis: 0, inAxis: 1 }
      // aimet-onnx's test: groups == W.shape[0] == W.shape[1]·groups (depth multiplier 1).
      if (group === dims[0] && dims[1] === 1) return { node, kind: 'depthwise', weight, dims, outAxis: 0, inAxis: 0 }
      return `grouped Conv (group ${group}, weight ${JSON.stringify(dims)}) is neither dense nor depthwise with multiplier 1`
    case 'ConvTranspose':
      if (dims.length < 3) return `ConvTranspose weight rank ${dims.length} < 3`
      if (group !== 1) return `grouped ConvTranspose (group ${group})`
      return { node, kind: 'conv', weight, dims, outAxis: 1, inAxis: 0 }
    case 'Gemm':
      if (dims.length !== 2) return `Gemm weight rank ${dims.length} ≠ 2`
      if (attrInt(node, 'transA', 0) !== 0) return 'Gemm with transA = 1 (its input channels are not on axis 1)'
      return attrInt(node, 'transB', 0) !== 0
        ? { node, kind: 'conv', weight, dims, outAxis: 0, inAxis: 1 }
        : { node, kind: 'conv', weight, dims, outAxis: 1, inAxis: 0 }
    default:
      return `${node.opType} is not a Conv, ConvTranspose or Gemm`
  }
}

/** The CLS sets of the main graph, in execution order of their first layer. */
export function findClsSets(graph: Graph, index: GraphIndex, opts: LayerSearchOptions = {}): LayerSearch {
  const types = new Set(LAYER_TYPES)
  if (opts.gemm === false) types.delete('Gemm')
  // aimet-onnx's get_module(): a layer whose weight is a parameter; others end a chain.
  const isLayer = (n: Node) => isDefault(n) && types.has(n.opType) && graph.initializers.has(n.inputs[1] ?? '') && !index.isGraphInput(n.inputs[1]!)

  /** The next layer of the chain after `layer` and the activations in between, if the chain goes on. */
  const next = (layer: Node): { layer: Node; between: Node[] } | undefined => {
    const between: Node[] = []
    let value = layer.outputs[0]!
    for (;;) {
      if (index.isGraphOutput(value)) return undefined
      const uses = index.consumers(value)
      if (uses.length !== 1 || uses[0]!.inputIndex !== 0) return undefined
      const node = uses[0]!.node
      if (isLayer(node)) return { layer: node, between }
      if (!isDefault(node) || !(node.opType in CLS_ACTIVATIONS)) return undefined
      between.push(node)
      value = node.outputs[0]!
    }
  }

  const order = topologicalOrder(graph).filter(isLayer)
  const links = new Map<Node, { layer: Node; between: Node[] }>()
  const hasPrevious = new Set<Node>()
  for (const layer of order) {
    const link = next(layer)
    if (link) {
      links.set(layer, link)
      hasPrevious.add(link.layer)
    }
  }
  const result: LayerSearch = { sets: [], unsupported: [] }
  for (const start of order) {
    if (hasPrevious.has(start) || !links.has(start)) continue
    const group: Node[] = [start]
    for (let l = links.get(start); l; l = links.get(l.layer)) group.push(l.layer)
    for (const set of groupToSets(graph, group, result.unsupported)) {
      set.between = set.layers.slice(0, -1).map((l) => links.get(l.node)!.between)
      result.sets.push(set)
    }
  }
  return result
}

/** aimet-onnx's convert_layer_group_to_cls_sets, over ClsLayer kinds. */
function groupToSets(graph: Graph, group: Node[], unsupported: LayerSearch['unsupported']): ClsSet[] {
  type Item = ClsLayer | undefined
  const classify = (n: Node): Item => {
    const l = clsLayer(graph, n)
    if (typeof l === 'string') {
      unsupported.push({ node: n.name, reason: l })
      return undefined
    }
    return l
  }
  const queue = [...group]
  const pop = (): Item => (queue.length ? classify(queue.shift()!) : undefined)
  const sets: ClsSet[] = []
  let first: Item
  while (queue.length) {
    while (queue.length && !first) first = pop()
    const second = pop()
    if (first?.kind === 'conv') {
      if (second?.kind === 'conv') {
        sets.push({ layers: [first, second], between: [] })
        first = second
      } else if (second?.kind === 'depthwise') {
        if (queue.length) {
          const third = clsLayer(graph, queue[0]!)
          if (typeof third !== 'string' && third.kind === 'conv') {
            sets.push({ layers: [first, second, third], between: [] })
            first = pop()
          } else {
            first = second
          }
        }
      } else {
        first = undefined
      }
    } else if (first?.kind === 'depthwise') {
      if (second?.kind === 'conv') sets.push({ layers: [first, second], between: [] })
      first = second
    } else {
      first = second
    }
  }
  return sets
}
