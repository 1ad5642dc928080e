// Fresh value names: ONNX names are one namespace across a graph and its subgraphs, so a new name
// must avoid every name used anywhere in the model's graph tree.
import type { Graph } from './model.js'
import { subgraphsOf } from './scope.js'

/** Every value name a graph and its subgraphs use (inputs, outputs, initializers, node inputs and outputs, value_info). */
export function allValueNames(graph: Graph, into: Set<string> = new Set()): Set<string> {
  for (const v of [...graph.inputs, ...graph.outputs, ...graph.valueInfo]) into.add(v.name)
  for (const k of graph.initializers.keys()) into.add(k)
  for (const n of graph.nodes) {
    for (const name of n.inputs) if (name !== '') into.add(name)
    for (const name of n.outputs) if (name !== '') into.add(name)
    for (const g of subgraphsOf(n)) allValueNames(g, into)
  }
  return into
}

/** `base` if no value of the graph tree uses it, else `base_1`, `base_2`, … */
export function uniqueName(graph: Graph, base: string, taken: ReadonlySet<string> = allValueNames(graph)): string {
  if (!taken.has(base)) return base
  for (let i = 1; ; i++) if (!taken.has(`${base}_${i}`)) return `${base}_${i}`
}
