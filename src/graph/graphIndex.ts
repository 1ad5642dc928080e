// Who produces and who reads each value of one graph. An index is a snapshot: edits made after it
// was built (graphEdits.ts) are not reflected, so passes rebuild it after changing the graph.
import type { Graph, Node } from './model.js'
import { implicitInputs } from './scope.js'

/** One read of a value. `inputIndex` is -1 when the value is read inside one of `node`'s subgraphs. */
export interface ValueUse {
  node: Node
  inputIndex: number
}

export interface ValueProducer {
  node: Node
  outputIndex: number
}

export interface GraphIndex {
  readonly graph: Graph
  /** The node writing `name`, or undefined for graph inputs, initializers, outer-scope and unknown names. */
  producer(name: string): ValueProducer | undefined
  /** Every read of `name` by this graph's nodes (and their subgraphs), in node order. Graph outputs are not uses. */
  consumers(name: string): readonly ValueUse[]
  /** Distinct nodes reading `name` (a node reading it twice counts once). */
  consumerNodes(name: string): Node[]
  isGraphInput(name: string): boolean
  isInitializer(name: string): boolean
  isGraphOutput(name: string): boolean
  /** A name of the enclosing graphs that this (sub)graph may read. */
  isOuterScope(name: string): boolean
  /** Produced by a node, a graph input, an initializer or an outer-scope value. */
  isDefined(name: string): boolean
  /** The node's position in `graph.nodes`, or -1. */
  position(node: Node): number
}

const NO_USES: readonly ValueUse[] = Object.freeze([])

/**
 * Indexes `graph`. For a subgraph, pass the names visible from the enclosing graphs as `outerScope`
 * (only `isOuterScope`/`isDefined` use them).
 */
export function graphIndex(graph: Graph, outerScope: Iterable<string> = []): GraphIndex {
  const producers = new Map<string, ValueProducer>()
  const uses = new Map<string, ValueUse[]>()
  const positions = new Map<Node, number>()
  const addUse = (name: string, use: ValueUse) => {
    if (name === '') return
    let list = uses.get(name)
    if (!list) uses.set(name, (list = []))
    list.push(use)
  }
  graph.nodes.forEach((node, position) => {
    positions.set(node, position)
    node.inputs.forEach((name, inputIndex) => addUse(name, { node, inputIndex }))
    for (const name of implicitInputs(node)) addUse(name, { node, inputIndex: -1 })
    node.outputs.forEach((name, outputIndex) => {
      // The first producer wins; validateGraph reports the duplicate.
      if (name !== '' && !producers.has(name)) producers.set(name, { node, outputIndex })
    })
  })
  const inputs = new Set(graph.inputs.map((v) => v.name))
  const outputs = new Set(graph.outputs.map((v) => v.name))
  const outer = new Set(outerScope)

  return {
    graph,
    producer: (name) => producers.get(name),
    consumers: (name) => uses.get(name) ?? NO_USES,
    consumerNodes: (name) => [...new Set((uses.get(name) ?? NO_USES).map((u) => u.node))],
    isGraphInput: (name) => inputs.has(name),
    isInitializer: (name) => graph.initializers.has(name),
    isGraphOutput: (name) => outputs.has(name),
    isOuterScope: (name) => outer.has(name),
    isDefined: (name) => producers.has(name) || inputs.has(name) || graph.initializers.has(name) || outer.has(name),
    position: (node) => positions.get(node) ?? -1,
  }
}
