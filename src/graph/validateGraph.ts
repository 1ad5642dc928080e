// The structural rules of ONNX's IR spec that quantkit's passes rely on, checked on the main graph
// and every subgraph: each value has exactly one writer, every read has a writer (in the graph or
// an enclosing one), no cycles, and every node's domain is imported. Type and shape inference is
// not attempted here; onnxruntime-node does that when a session is created.
import { GraphError } from '../errors.js'
import type { Graph, Model, Node } from './model.js'
import { subgraphsOf } from './scope.js'
import { topologicalOrder } from './topologicalOrder.js'

const q = JSON.stringify
const MAX_LISTED = 20

function nodeLabel(node: Node, position: number, where: string): string {
  return `${where}node ${node.name ? q(node.name) : `#${position}`} (${node.opType})`
}

function checkGraph(model: Model, graph: Graph, outer: ReadonlySet<string>, imported: ReadonlySet<string>, problems: string[]): void {
  const where = outer.size > 0 || graph !== model.graph ? `subgraph ${q(graph.name)}: ` : ''
  const writers = new Map<string, string>()
  const define = (name: string, by: string) => {
    if (name === '') return
    const first = writers.get(name)
    if (first !== undefined) problems.push(`${where}value ${q(name)} is written twice: by ${first} and by ${by}`)
    else writers.set(name, by)
  }
  for (const v of graph.inputs) define(v.name, 'a graph input')
  for (const name of graph.initializers.keys()) {
    // An initializer may also be listed as a graph input (IR < 4 requires it; later IRs allow it as an overridable default).
    if (!graph.inputs.some((v) => v.name === name)) define(name, 'an initializer')
  }
  graph.nodes.forEach((n, i) => {
    for (const o of n.outputs) define(o, nodeLabel(n, i, ''))
  })

  const visible = (name: string) => writers.has(name) || outer.has(name)
  graph.nodes.forEach((n, i) => {
    n.inputs.forEach((name, k) => {
      if (name !== '' && !visible(name)) {
        problems.push(`${nodeLabel(n, i, where)} input ${k} reads ${q(name)}, which no node, graph input, initializer or enclosing graph defines`)
      }
    })
    const domain = n.domain === 'ai.onnx' ? '' : n.domain
    if (!imported.has(domain)) {
      problems.push(`${nodeLabel(n, i, where)} has domain ${q(domain || 'ai.onnx')}, which the model does not import (opset_import)`)
    }
  })
  for (const o of graph.outputs) {
    if (!visible(o.name)) problems.push(`${where}graph output ${q(o.name)} is not defined by any node, input or initializer`)
  }
  try {
    topologicalOrder(graph)
  } catch (e) {
    if (!(e instanceof GraphError)) throw e
    problems.push(e.message)
  }

  const inner = new Set([...outer, ...writers.keys()])
  for (const n of graph.nodes) for (const g of subgraphsOf(n)) checkGraph(model, g, inner, imported, problems)
}

/** Every structural problem of the model, as messages naming the node or value; empty when valid. */
export function findGraphProblems(model: Model): string[] {
  const imported = new Set(model.opsetImports.map((o) => (o.domain === 'ai.onnx' ? '' : o.domain)))
  const problems: string[] = []
  checkGraph(model, model.graph, new Set(), imported, problems)
  return problems
}

/** Throws GraphError listing the model's structural problems (see findGraphProblems). */
export function validateGraph(model: Model): void {
  const problems = findGraphProblems(model)
  if (problems.length === 0) return
  const shown = problems.slice(0, MAX_LISTED)
  const more = problems.length > shown.length ? `\n  … and ${problems.length - shown.length} more` : ''
  throw new GraphError(
    `${model.path ? `${model.path}: ` : ''}invalid graph (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  ` +
      shown.join('\n  ') + more,
  )
}
