// One layer's SVD rewrite as a plan the shared machinery (svdCompressor.ts) drives: the matrix to
// factor, the cost at each rank, and how two new nodes replace the original one.
import { DataType } from '../onnx/elementType.js'
import type { Tensor } from '../onnx/tensor.js'
import { graphIndex } from '../graph/graphIndex.js'
import type { AttributeValue, Graph, Model, Node } from '../graph/model.js'
import { uniqueName } from '../graph/names.js'
import type { CompressibleLayer, Cost } from './layerCompressor.js'
import { costedNodes, layerCosts, layerWeight, type LayerShapes, type LayerCostEntry } from './layerCost.js'

const q = JSON.stringify

export interface LowRankPair {
  /** rows × rank, row-major. */
  left: Float32Array
  /** rank × cols, row-major. */
  right: Float32Array
  rank: number
}

export interface SvdPlan {
  layer: CompressibleLayer
  /** The rank that reproduces the weight exactly: min(rows, cols). */
  maxRank: number
  /** Initializers the original node read that may become unused. */
  weights: string[]
  costAt(rank: number): Cost
  matrixShape: { rows: number; cols: number }
  /** The matrix to factor (row-major). */
  matrix(): { data: Float32Array; rows: number; cols: number }
  /** Replaces the node (found by name in `graph`) by two nodes built from the factors; returns their names. */
  rewrite(graph: Graph, factors: LowRankPair, names: Set<string>): string[]
}

/** What a scheme decides for each costed node: a plan, or a reason to leave it alone. */
export type PlanOrSkip = SvdPlan | { skip: string } | undefined

export function floatWeight(graph: Graph, name: string): (Tensor & { data: Float32Array }) | string {
  const t = graph.initializers.get(name)
  if (!t) return `weight ${q(name)} is not an initializer`
  if (t.dataType !== DataType.FLOAT || !(t.data instanceof Float32Array)) return `weight ${q(name)} is not float32`
  return t as Tensor & { data: Float32Array }
}

/** The plans for a model's costed layers, the skipped ones with reasons, and the cost of the layers not planned. */
export function planLayers(
  model: Model,
  shapes: LayerShapes,
  ignore: ReadonlySet<string>,
  makePlan: (node: Node, entry: LayerCostEntry, graph: Graph, shapes: LayerShapes) => PlanOrSkip,
): { plans: SvdPlan[]; skipped: { node: string; reason: string }[]; fixedCost: Cost } {
  const graph = model.graph
  const costs = new Map(layerCosts(model, shapes).map((e) => [e.node, e]))
  const index = graphIndex(graph)
  const plans: SvdPlan[] = []
  const skipped: { node: string; reason: string }[] = []
  const fixedCost: Cost = { mac: 0, memory: 0 }
  const seen = new Set<string>()
  for (const node of costedNodes(graph)) {
    const entry = costs.get(node.name)!
    const keep = (reason: string) => {
      skipped.push({ node: node.name, reason })
      fixedCost.mac += entry.cost.mac
      fixedCost.memory += entry.cost.memory
    }
    if (ignore.has(node.name)) { keep('ignored'); continue }
    if (node.name === '' || seen.has(node.name)) { keep('the node has no unique name'); continue }
    seen.add(node.name)
    const w = layerWeight(graph, node)!
    if (index.isGraphInput(w)) { keep(`weight ${q(w)} is also a graph input (it may be overridden at run time)`); continue }
    const p = makePlan(node, entry, graph, shapes)
    if (p === undefined) keep(`${node.opType} is not compressed by this scheme`)
    else if ('skip' in p) keep(p.skip)
    else plans.push(p)
  }
  return { plans, skipped, fixedCost }
}

export function findNode(graph: Graph, name: string): { node: Node; position: number } {
  const position = graph.nodes.findIndex((n) => n.name === name)
  if (position < 0) throw new Error(`node ${q(name)} is gone from the graph being compressed`)
  return { node: graph.nodes[position]!, position }
}

/** Registers a fresh name derived from `base` and returns it. */
export function freshName(graph: Graph, names: Set<string>, base: string): string {
  const n = uniqueName(graph, base, names)
  names.add(n)
  return n
}

/** Fresh names for a layer split in two: the tensor between the halves, their weights and nodes (`tags` mark the halves). */
export function splitNames(graph: Graph, names: Set<string>, orig: Node, weight: string, tags: readonly [string, string]): { hidden: string; weights: [string, string]; nodes: [string, string] } {
  const hidden = freshName(graph, names, `${orig.outputs[0]}_svd`)
  const weights: [string, string] = [freshName(graph, names, `${weight}_svd_${tags[0]}`), freshName(graph, names, `${weight}_svd_${tags[1]}`)]
  const nodes: [string, string] = [freshName(graph, names, `${orig.name}_svd_${tags[0]}`), freshName(graph, names, `${orig.name}_svd_${tags[1]}`)]
  return { hidden, weights, nodes }
}

export function floatTensor(name: string, dims: number[], data: Float32Array): Tensor {
  return { name, dataType: DataType.FLOAT, dims, data }
}

export function intsAttr(values: number[]): AttributeValue {
  return { type: 'ints', value: values }
}

/** Puts `first` then `second` where `position` was, keeping the graph's node order. */
export function replaceNode(graph: Graph, position: number, first: Node, second: Node): void {
  graph.nodes.splice(position, 1, first, second)
}
