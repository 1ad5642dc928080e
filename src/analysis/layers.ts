// The analyzer's unit of analysis, a "layer": one op of the model with the quantizers that belong
// to it (its output, its params, its own input quantizers), the way AIMET's QuantAnalyzer toggles
// one quant wrapper at a time. Ops that are quantized as one are one layer, named after their
// last op: a fusion pass match (decomposed LayerNorm, MatMul+Add) and a supergroup (Conv+Relu,
// whose Conv output has no quantizer). A model input's quantizer belongs to the first op that
// reads the input, as in aimet-onnx where it is that op's input quantizer.
import { graphIndex, type GraphIndex } from '../graph/graphIndex.js'
import type { Model, Node } from '../graph/model.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import type { Quantizer } from '../sim/quantizer.js'

export interface Layer {
  /** The last op's node name (or `<opType>_<position>` for an unnamed node). */
  name: string
  /** The op type, the fused op's type for a fusion match, or the ops joined with '+' for a supergroup. */
  opType: string
  nodes: Node[]
  /** Every quantizer of the layer, enabled or not. */
  quantizers: Quantizer[]
  /** Elements of the layer's parameters (what `layers: N` ranks by). */
  paramCount: number
}

export interface LayerMap {
  /** Layers with at least one enabled quantizer, in topological order of their last op. */
  layers: Layer[]
  /** The layer a node belongs to (every node of the graph, including layers without quantizers). */
  layerOf(node: Node): Layer
  /** The layer of a quantizer (undefined for a quantizer no node reads or writes). */
  layerOfQuantizer(q: Quantizer): Layer | undefined
}

/**
 * Groups the sim's quantizers into layers. `fusions` is QuantSim's report of fusion-pass matches
 * (node names); supergroups are recognised from the quantizers themselves: placement disables the
 * output quantizer of every op but the last in a supergroup with the note "inside supergroup …",
 * and that op's output feeds exactly the next op of the group.
 */
export function findLayers(model: Model, quantizers: readonly Quantizer[], fusions: readonly { nodes: string[] }[]): LayerMap {
  const graph = model.graph
  const index = graphIndex(graph)
  const order = topologicalOrder(graph)
  const position = new Map(order.map((n, i) => [n, i]))
  const byName = new Map(order.filter((n) => n.name).map((n) => [n.name, n]))
  const displayName = (n: Node) => n.name || `${n.opType}_${position.get(n)}`

  // next[n] = the node n is merged into (union towards the group's last op).
  const next = new Map<Node, Node>()
  for (const f of fusions) {
    const nodes = f.nodes.map((name) => byName.get(name)).filter((n): n is Node => n !== undefined)
    const last = nodes.reduce<Node | undefined>((a, n) => (a === undefined || position.get(n)! > position.get(a)! ? n : a), undefined)
    for (const n of nodes) if (n !== last) next.set(n, last!)
  }
  const outputQuantizer = new Map(quantizers.filter((q) => q.kind === 'output').map((q) => [q.tensor, q]))
  for (const n of order) {
    const q = outputQuantizer.get(n.outputs[0] ?? '')
    if (!q || q.enabled || !q.note?.startsWith('inside supergroup')) continue
    const consumers = index.consumerNodes(n.outputs[0]!)
    if (consumers.length === 1 && !next.has(n)) next.set(n, consumers[0]!)
  }
  const root = (n: Node): Node => {
    let r = n
    for (let hops = 0; next.has(r) && hops <= order.length; hops++) r = next.get(r)!
    return r
  }

  const groups = new Map<Node, Layer>()
  const layerOf = (n: Node): Layer => {
    const r = root(n)
    let layer = groups.get(r)
    if (!layer) {
      layer = { name: displayName(r), opType: r.opType, nodes: [], quantizers: [], paramCount: 0 }
      groups.set(r, layer)
    }
    return layer
  }
  for (const n of order) layerOf(n).nodes.push(n)
  for (const layer of groups.values()) {
    if (layer.nodes.length > 1) layer.opType = layer.nodes.map((n) => n.opType).join('+')
  }

  const nodeOf = (q: Quantizer): Node | undefined => ownerNode(q, index, byName, position)
  const owner = new Map<Quantizer, Layer>()
  for (const q of quantizers) {
    const n = nodeOf(q)
    if (!n) continue
    const layer = layerOf(n)
    owner.set(q, layer)
    layer.quantizers.push(q)
    if (q.kind === 'param') layer.paramCount += graph.initializers.get(q.tensor)?.dims.reduce((a, b) => a * b, 1) ?? 0
    // A fusion match is quantized as its fused op type (LayerNormalization, MatMul for MatmulAdd).
    if (q.kind === 'output' && layer.nodes.length > 1 && fusions.some((f) => f.nodes.includes(n.name))) layer.opType = q.opType
  }
  const layers = [...groups.entries()]
    .filter(([, l]) => l.quantizers.some((q) => q.enabled))
    .sort(([a], [b]) => position.get(a)! - position.get(b)!)
    .map(([, l]) => l)
  return { layers, layerOf, layerOfQuantizer: (q) => owner.get(q) }
}

/** The node a quantizer belongs to: the producer of an output, the (named) reader of a param or input. */
function ownerNode(q: Quantizer, index: GraphIndex, byName: Map<string, Node>, position: Map<Node, number>): Node | undefined {
  if (q.kind === 'output') return index.producer(q.tensor)?.node
  if (q.node) {
    const named = byName.get(q.node)
    if (named) return named
  }
  // Model inputs and unnamed readers: the first op that reads the tensor (for a param, the first of its op type).
  const readers = [...index.consumerNodes(q.tensor)].sort((a, b) => position.get(a)! - position.get(b)!)
  return (q.kind === 'param' ? readers.find((n) => n.opType === q.opType) : undefined) ?? readers[0]
}
