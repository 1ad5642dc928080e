// AIMET's fusion passes (`supergroup_pass_list`), found by pattern instead of rewriting the graph:
// a decomposed LayerNormalization (or RMSNormalization) subgraph, or a MatMul followed by an Add
// of a constant, is quantized as one op. Values inside a match get no quantizer; the match's
// constants become the fused op's params (LayerNorm: weight = the Mul's constant, bias = the Add's).
import type { Graph, Node } from '../graph/model.js'
import type { GraphIndex } from '../graph/graphIndex.js'

export interface FusedOp {
  pass: string
  /** The op type the match is quantized as. */
  opType: string
  nodes: Node[]
  /** Values produced inside the match and read only inside it. */
  internal: Set<string>
  output: string
  /** Constant inputs that become params: name → param name. */
  params: Map<string, string>
}

function only(index: GraphIndex, value: string): Node | undefined {
  const c = index.consumerNodes(value)
  return c.length === 1 && !index.isGraphOutput(value) ? c[0] : undefined
}

function constantInput(graph: Graph, n: Node): string | undefined {
  return n.inputs.find((i) => graph.initializers.has(i))
}

/**
 * LayerNorm as exporters write it: m = ReduceMean(x); d = Sub(x, m); v = ReduceMean(Pow(d, 2));
 * s = Sqrt(Add(v, eps)); y = Div(d, s) [· γ] [+ β]. RMSNorm: Pow(x, 2) → ReduceMean → Add → Sqrt
 * → Div(x, ·) (or Reciprocal → Mul) [· γ].
 */
function matchLayerNorm(graph: Graph, index: GraphIndex, mean: Node): FusedOp | undefined {
  if (mean.opType !== 'ReduceMean') return undefined
  const x = mean.inputs[0]!
  const sub = only(index, mean.outputs[0]!)
  if (!sub || sub.opType !== 'Sub' || sub.inputs[0] !== x) return undefined
  const d = sub.outputs[0]!
  const readers = index.consumerNodes(d)
  const pow = readers.find((r) => r.opType === 'Pow')
  const div = readers.find((r) => r.opType === 'Div' && r.inputs[0] === d)
  if (!pow || !div || readers.length !== 2) return undefined
  const mean2 = only(index, pow.outputs[0]!)
  if (!mean2 || mean2.opType !== 'ReduceMean') return undefined
  const add = only(index, mean2.outputs[0]!)
  if (!add || add.opType !== 'Add') return undefined
  const sqrt = only(index, add.outputs[0]!)
  if (!sqrt || sqrt.opType !== 'Sqrt' || div.inputs[1] !== sqrt.outputs[0]) return undefined
  const nodes = [mean, sub, pow, mean2, add, sqrt, div]
  const params = new Map<string, string>()
  let out = div.outputs[0]!
  const mul = only(index, out)
  if (mul?.opType === 'Mul' && constantInput(graph, mul)) {
    nodes.push(mul)
    params.set(constantInput(graph, mul)!, 'weight')
    out = mul.outputs[0]!
    const bias = only(index, out)
    if (bias?.opType === 'Add' && constantInput(graph, bias)) {
      nodes.push(bias)
      params.set(constantInput(graph, bias)!, 'bias')
      out = bias.outputs[0]!
    }
  }
  const internal = new Set(nodes.flatMap((n) => n.outputs).filter((o) => o !== out))
  return { pass: 'LayerNormalization', opType: 'LayerNormalization', nodes, internal, output: out, params }
}

function matchMatmulAdd(graph: Graph, index: GraphIndex, matmul: Node): FusedOp | undefined {
  if (matmul.opType !== 'MatMul') return undefined
  const add = only(index, matmul.outputs[0]!)
  if (!add || add.opType !== 'Add') return undefined
  const bias = add.inputs.find((i) => i !== matmul.outputs[0] && graph.initializers.has(i))
  if (!bias) return undefined
  const params = new Map([[bias, 'bias']])
  const weight = matmul.inputs[1]
  if (weight && graph.initializers.has(weight)) params.set(weight, 'weight')
  return {
    pass: 'MatmulAdd', opType: 'MatMul', nodes: [matmul, add], internal: new Set([matmul.outputs[0]!]),
    output: add.outputs[0]!, params,
  }
}

/** The matches of the requested passes; a node belongs to at most one match. */
export function findFusions(graph: Graph, index: GraphIndex, passes: readonly string[]): FusedOp[] {
  const found: FusedOp[] = []
  const taken = new Set<Node>()
  const take = (m: FusedOp | undefined) => {
    if (!m || m.nodes.some((n) => taken.has(n))) return
    for (const n of m.nodes) taken.add(n)
    found.push(m)
  }
  if (passes.includes('LayerNormalization')) for (const n of graph.nodes) take(matchLayerNorm(graph, index, n))
  if (passes.includes('MatmulAdd')) for (const n of graph.nodes) take(matchMatmulAdd(graph, index, n))
  return found
}
