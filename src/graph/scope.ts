// Subgraphs (If branches, Loop and Scan bodies) may read values of the graphs around them without
// listing them as inputs; ONNX Runtime calls these a node's implicit inputs. Every pass that asks
// "who reads this value" must count such reads, or it would rewire or delete a value a body needs.
import type { Graph, Node } from './model.js'

/** The subgraphs held in a node's attributes, in attribute order. */
export function subgraphsOf(node: Node): Graph[] {
  const out: Graph[] = []
  for (const a of node.attributes.values()) {
    if (a.type === 'graph') out.push(a.value)
    else if (a.type === 'graphs') out.push(...a.value)
  }
  return out
}

/** Names a graph defines for itself: its inputs, initializers and node outputs. */
export function definedNames(graph: Graph): Set<string> {
  const names = new Set<string>()
  for (const v of graph.inputs) names.add(v.name)
  for (const k of graph.initializers.keys()) names.add(k)
  for (const n of graph.nodes) for (const o of n.outputs) if (o !== '') names.add(o)
  return names
}

/**
 * Names a graph reads from enclosing scopes: used by its nodes, by its nested subgraphs or as its
 * outputs, and defined by none of its own inputs, initializers or nodes.
 */
export function outerScopeReads(graph: Graph): Set<string> {
  const own = definedNames(graph)
  const free = new Set<string>()
  const read = (name: string) => {
    if (name !== '' && !own.has(name)) free.add(name)
  }
  for (const n of graph.nodes) {
    for (const i of n.inputs) read(i)
    for (const g of subgraphsOf(n)) for (const name of outerScopeReads(g)) read(name)
  }
  for (const o of graph.outputs) read(o.name)
  return free
}

/** Outer-scope names read by a node's subgraphs (ONNX Runtime's "implicit inputs"). */
export function implicitInputs(node: Node): Set<string> {
  const names = new Set<string>()
  for (const g of subgraphsOf(node)) for (const name of outerScopeReads(g)) names.add(name)
  return names
}
