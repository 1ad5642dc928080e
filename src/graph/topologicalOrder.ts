// An execution order of a graph's nodes. Stable: among nodes that are ready at the same time, the
// one earlier in the file comes first, so a graph already in order keeps its order exactly.
// Subgraph reads of outer values (scope.ts) count as dependencies, as in ONNX Runtime.
import { GraphError } from '../errors.js'
import type { Graph, Node } from './model.js'
import { implicitInputs } from './scope.js'

/** Min-heap of node positions. */
class PositionHeap {
  private items: number[] = []
  get size(): number {
    return this.items.length
  }
  push(v: number): void {
    const a = this.items
    a.push(v)
    let i = a.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (a[p]! <= v) break
      a[i] = a[p]!
      i = p
    }
    a[i] = v
  }
  pop(): number {
    const a = this.items
    const top = a[0]!
    const last = a.pop()!
    if (a.length > 0) {
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        if (l >= a.length) break
        const c = l + 1 < a.length && a[l + 1]! < a[l]! ? l + 1 : l
        if (a[c]! >= last) break
        a[i] = a[c]!
        i = c
      }
      a[i] = last
    }
    return top
  }
}

function label(node: Node, position: number): string {
  return node.name ? JSON.stringify(node.name) : `#${position} (${node.opType})`
}

/**
 * The graph's nodes in an order where every node comes after the producers of its inputs.
 * Names produced by no node (graph inputs, initializers, outer scope, dangling names) impose no
 * order; validateGraph reports dangling ones. A cycle throws GraphError naming the nodes on it.
 */
export function topologicalOrder(graph: Graph): Node[] {
  const nodes = graph.nodes
  const producerOf = new Map<string, number>()
  nodes.forEach((n, i) => {
    for (const o of n.outputs) if (o !== '' && !producerOf.has(o)) producerOf.set(o, i)
  })
  // predecessors[i]: positions of the nodes i reads from (deduplicated).
  const predecessors: number[][] = nodes.map((n, i) => {
    const set = new Set<number>()
    const add = (name: string) => {
      const p = producerOf.get(name)
      if (p !== undefined && p !== i) set.add(p)
      else if (p === i) set.add(i) // a node reading its own output is a cycle of one
    }
    for (const name of n.inputs) if (name !== '') add(name)
    for (const name of implicitInputs(n)) add(name)
    return [...set]
  })
  const successors: number[][] = nodes.map(() => [])
  const pending = predecessors.map((p) => p.length)
  predecessors.forEach((ps, i) => {
    for (const p of ps) successors[p]!.push(i)
  })

  const ready = new PositionHeap()
  pending.forEach((count, i) => {
    if (count === 0) ready.push(i)
  })
  const order: Node[] = []
  while (ready.size > 0) {
    const i = ready.pop()
    order.push(nodes[i]!)
    for (const s of successors[i]!) if (--pending[s]! === 0) ready.push(s)
  }
  if (order.length === nodes.length) return order

  // Walk back along unfinished predecessors until a node repeats: that stretch is a cycle.
  let at = pending.findIndex((c) => c > 0)
  const seen = new Map<number, number>()
  const path: number[] = []
  while (!seen.has(at)) {
    seen.set(at, path.length)
    path.push(at)
    at = predecessors[at]!.find((p) => pending[p]! > 0)!
  }
  const cycle = path.slice(seen.get(at)!).reverse()
  const names = cycle.map((i) => label(nodes[i]!, i))
  throw new GraphError(
    `graph ${JSON.stringify(graph.name)}: cycle through node ${names[0]}` +
      (names.length > 1 ? ` (${[...names, names[0]].join(' → ')})` : ' (it reads its own output)'),
  )
}
