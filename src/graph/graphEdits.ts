// Edits that keep a graph valid: every read still has a writer, names stay unique, subgraph reads
// of outer values follow the edit, and the node list stays in topological order when it was.
// They change the graph they are given (passes call them on a clone, see cloneModel), and any
// GraphIndex built before an edit is stale afterwards.
import { GraphError } from '../errors.js'
import type { Tensor } from '../onnx/tensor.js'
import { graphIndex } from './graphIndex.js'
import type { Graph, Node, ValueInfo } from './model.js'
import { definedNames, subgraphsOf } from './scope.js'
import { topologicalOrder } from './topologicalOrder.js'

const q = JSON.stringify

function nodeLabel(node: Node): string {
  return `node ${q(node.name)} (${node.opType})`
}

/**
 * In `graph` (a subgraph) and the graphs nested in it, replace reads of the outer value `from` by
 * `to`, stopping where a graph defines its own `from`.
 */
function replaceOuterReads(graph: Graph, from: string, to: string): void {
  const own = definedNames(graph)
  if (own.has(from)) return
  if (own.has(to)) {
    throw new GraphError(`subgraph ${q(graph.name)} defines its own ${q(to)}, which would hide the outer value it should now read`)
  }
  for (const n of graph.nodes) {
    n.inputs = n.inputs.map((i) => (i === from ? to : i))
    for (const g of subgraphsOf(n)) replaceOuterReads(g, from, to)
  }
  for (const o of graph.outputs) if (o.name === from) o.name = to
}

/** Makes `node` read `to` wherever it read `from`, including inside its subgraphs. */
function redirectReads(node: Node, from: string, to: string): void {
  node.inputs = node.inputs.map((i) => (i === from ? to : i))
  for (const g of subgraphsOf(node)) replaceOuterReads(g, from, to)
}

/**
 * Renames a value everywhere in `graph`: its producer (node output, graph input or initializer),
 * every read (subgraphs included), graph outputs and value_info. Throws GraphError when `to` is
 * already a name of the graph.
 */
export function renameValue(graph: Graph, from: string, to: string): void {
  if (from === to) return
  if (to === '') throw new GraphError(`cannot rename ${q(from)} to the empty name (it marks an omitted input)`)
  const own = definedNames(graph)
  if (own.has(to)) throw new GraphError(`graph ${q(graph.name)}: cannot rename ${q(from)} to ${q(to)}: ${q(to)} already exists`)
  for (const n of graph.nodes) {
    n.outputs = n.outputs.map((o) => (o === from ? to : o))
    redirectReads(n, from, to)
  }
  for (const list of [graph.inputs, graph.outputs, graph.valueInfo]) for (const v of list) if (v.name === from) v.name = to
  if (graph.initializers.has(from)) {
    graph.initializers = new Map(
      [...graph.initializers].map(([k, t]): [string, Tensor] => (k === from ? [to, { ...t, name: to }] : [k, t])),
    )
  }
}

/** Replaces the tensor of an existing initializer, keeping its name; graph input and value_info entries follow its type and shape. */
export function replaceInitializer(graph: Graph, name: string, tensor: Tensor): void {
  if (!graph.initializers.has(name)) throw new GraphError(`graph ${q(graph.name)}: no initializer ${q(name)} to replace`)
  graph.initializers.set(name, tensor.name === name ? tensor : { ...tensor, name })
  for (const v of [...graph.inputs, ...graph.valueInfo]) {
    if (v.name === name && !v.rawType) {
      v.elemType = tensor.dataType
      v.shape = [...tensor.dims]
    }
  }
}

export interface InsertOptions {
  /** The readers of the value that should read the new node's output instead; default all of them. */
  consumers?: readonly Node[]
}

/**
 * Puts `node` on the edge carrying `value`: `node` must read `value` and write a new name as its
 * first output; the chosen consumers of `value` then read that output. Graph outputs keep naming
 * `value`. The node goes right after the producers of its inputs.
 */
export function insertNodeOnEdge(graph: Graph, value: string, node: Node, opts: InsertOptions = {}): void {
  const index = graphIndex(graph)
  const out = node.outputs[0]
  if (!node.inputs.includes(value)) throw new GraphError(`${nodeLabel(node)} must read ${q(value)} to sit on its edge`)
  if (out === undefined || out === '') throw new GraphError(`${nodeLabel(node)} needs an output to hand to the consumers of ${q(value)}`)
  for (const o of node.outputs) {
    if (o !== '' && (index.isDefined(o) || definedNames(graph).has(o))) {
      throw new GraphError(`${nodeLabel(node)}: output ${q(o)} already exists in graph ${q(graph.name)}`)
    }
  }
  for (const i of node.inputs) {
    if (i !== '' && !index.isDefined(i)) {
      // Outer-scope reads are fine in subgraphs; the main graph has none, so anything else dangles.
      throw new GraphError(`${nodeLabel(node)}: input ${q(i)} is not a value of graph ${q(graph.name)}`)
    }
  }
  const all = index.consumerNodes(value)
  const chosen = opts.consumers ?? all
  for (const c of chosen) {
    if (!all.includes(c)) throw new GraphError(`${nodeLabel(c)} does not read ${q(value)}`)
  }
  let at = -1
  for (const i of node.inputs) {
    const p = index.producer(i)
    if (p) at = Math.max(at, index.position(p.node))
  }
  graph.nodes.splice(at + 1, 0, node)
  for (const c of chosen) if (c !== node) redirectReads(c, value, out)
  if (chosen.some((c) => graph.nodes.indexOf(c) <= at + 1 && c !== node)) graph.nodes = topologicalOrder(graph)
}

export interface RemoveOptions {
  /** Which input takes the place of the node's first output; default 0. */
  keepInput?: number
}

/**
 * Removes a pass-through node (Identity, Dropout, a folded BatchNormalization): readers of its
 * first output read its input `keepInput` instead. Its other outputs must be unused. When its
 * output is a graph output, the value it read takes over the output's name instead, which needs
 * that value to be written by a node of this graph (not a graph input, initializer or other graph
 * output); otherwise GraphError.
 */
export function removeNode(graph: Graph, node: Node, opts: RemoveOptions = {}): void {
  const keep = opts.keepInput ?? 0
  const index = graphIndex(graph)
  const position = index.position(node)
  if (position < 0) throw new GraphError(`${nodeLabel(node)} is not in graph ${q(graph.name)}`)
  const input = node.inputs[keep]
  const output = node.outputs[0]
  if (input === undefined || input === '') throw new GraphError(`${nodeLabel(node)} has no input ${keep} to rewire its readers to`)
  if (output === undefined || output === '') throw new GraphError(`${nodeLabel(node)} has no output`)
  for (const o of node.outputs.slice(1)) {
    if (o !== '' && (index.consumers(o).length > 0 || index.isGraphOutput(o))) {
      throw new GraphError(`cannot remove ${nodeLabel(node)}: its output ${q(o)} is still used`)
    }
  }
  const dropInfo = (names: string[]) => {
    graph.valueInfo = graph.valueInfo.filter((v) => !names.includes(v.name))
  }
  if (index.isGraphOutput(output)) {
    const p = index.producer(input)
    if (!p || index.isGraphOutput(input) || index.isGraphInput(input) || index.isInitializer(input)) {
      throw new GraphError(
        `cannot remove ${nodeLabel(node)}: its output ${q(output)} is a graph output and its input ${q(input)} ` +
          `is not a value a node of this graph writes that could take the name`,
      )
    }
    graph.nodes.splice(position, 1)
    dropInfo(node.outputs)
    renameValue(graph, input, output)
    return
  }
  graph.nodes.splice(position, 1)
  dropInfo(node.outputs)
  for (const u of index.consumerNodes(output)) redirectReads(u, output, input)
}

/**
 * Makes an existing value a graph output (no-op returning false when it already is one). Its type
 * and shape come from `info`, else from value_info, a graph input or an initializer.
 */
export function addGraphOutput(graph: Graph, name: string, info: Partial<Omit<ValueInfo, 'name'>> = {}): boolean {
  const index = graphIndex(graph)
  if (index.isGraphOutput(name)) return false
  if (!index.isDefined(name)) throw new GraphError(`graph ${q(graph.name)}: cannot output ${q(name)}: no node, input or initializer defines it`)
  const known = graph.valueInfo.find((v) => v.name === name) ?? graph.inputs.find((v) => v.name === name)
  const init = graph.initializers.get(name)
  const base: ValueInfo = known
    ? { ...known, shape: known.shape && [...known.shape] }
    : init
      ? { name, elemType: init.dataType, shape: [...init.dims] }
      : { name }
  graph.outputs.push({ ...base, ...info, name })
  return true
}

/**
 * Deletes initializers nobody reads (no node, subgraph or graph output), limited to `names` when
 * given. Initializers that are also graph inputs stay: they are part of the model's interface.
 * Returns the names removed.
 */
export function pruneUnusedInitializers(graph: Graph, names?: Iterable<string>): string[] {
  const index = graphIndex(graph)
  const candidates = names ? new Set(names) : new Set(graph.initializers.keys())
  const removed: string[] = []
  for (const name of candidates) {
    if (!graph.initializers.has(name)) continue
    if (index.consumers(name).length > 0 || index.isGraphOutput(name) || index.isGraphInput(name)) continue
    graph.initializers.delete(name)
    removed.push(name)
  }
  if (removed.length > 0) graph.valueInfo = graph.valueInfo.filter((v) => !removed.includes(v.name))
  return removed
}
