// Op-type counts of a graph, for reports and `quantkit inspect`.
import type { Graph } from './model.js'

/** Counts of each op in the graph's own nodes (not its subgraphs); ops outside ai.onnx are keyed `domain.OpType`. */
export function opHistogram(graph: Graph): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const n of graph.nodes) {
    const key = n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType
    counts[key] = (counts[key] ?? 0) + 1
  }
  return Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
