// Evaluates constant subgraphs that only compute parameters: a Transpose, Reshape, Cast,
// Unsqueeze or Mul of initializers feeding a Conv weight becomes one initializer, so the layer's
// weight is a parameter the folds and the quantizer can see. Only chains whose every use ends in a
// parameter input (table below) are folded: shape arithmetic feeding Reshape or Resize stays as
// written, since quantization never touches it. Evaluation: constantOps.ts.
import { elementType } from '../../onnx/elementType.js'
import type { Tensor } from '../../onnx/tensor.js'
import { graphIndex } from '../graphIndex.js'
import { opsetVersion, type Node } from '../model.js'
import { subgraphsOf } from '../scope.js'
import { CONSTANT_OPS, MAX_FOLD_ELEMENTS } from './constantOps.js'
import type { PassContext, PreparePass } from './pass.js'

const q = JSON.stringify

/** Op type → the input positions that are parameters ('all' for elementwise ops, whose constant operand is one). */
export const PARAMETER_INPUTS: Readonly<Record<string, readonly number[] | 'all'>> = {
  Conv: [1, 2],
  ConvTranspose: [1, 2],
  Gemm: [0, 1, 2],
  MatMul: [0, 1],
  BatchNormalization: [1, 2, 3, 4],
  InstanceNormalization: [1, 2],
  LayerNormalization: [1, 2],
  GroupNormalization: [1, 2],
  PRelu: [1],
  Add: 'all',
  Sub: 'all',
  Mul: 'all',
  Div: 'all',
}

function isParameterInput(node: Node, inputIndex: number): boolean {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return false
  const slots = PARAMETER_INPUTS[node.opType]
  return slots === 'all' || (slots?.includes(inputIndex) ?? false)
}

export const foldConstants: PreparePass = {
  name: 'foldConstants',
  run(ctx: PassContext): number {
    const graph = ctx.model.graph
    const index = graphIndex(graph)
    const opset = opsetVersion(ctx.model) ?? 1
    const isConstant = (name: string) => name === '' || (graph.initializers.has(name) && !index.isGraphInput(name))

    // Candidates: supported ops whose inputs are all constant, directly or through other candidates.
    const candidate = new Set<Node>()
    const constantOut = new Set<string>()
    for (const node of graph.nodes) {
      const isDefault = node.domain === '' || node.domain === 'ai.onnx'
      if (!isDefault || !(node.opType in CONSTANT_OPS) || subgraphsOf(node).length > 0) continue
      if (node.inputs.every((i) => isConstant(i) || constantOut.has(i))) {
        candidate.add(node)
        for (const o of node.outputs) constantOut.add(o)
      }
    }
    // Keep those whose every use is a parameter input or another kept candidate (walk backwards).
    const fold = new Set<Node>()
    for (const node of [...graph.nodes].reverse()) {
      if (!candidate.has(node)) continue
      const feedsWeightsOnly = node.outputs.every((o) => {
        if (index.isGraphOutput(o)) return false
        const uses = index.consumers(o)
        return uses.length > 0 && uses.every((u) => fold.has(u.node) || (u.inputIndex >= 0 && isParameterInput(u.node, u.inputIndex)))
      })
      if (feedsWeightsOnly) fold.add(node)
    }

    const values = new Map<string, Tensor>()
    const valueOf = (name: string) => values.get(name) ?? graph.initializers.get(name)
    const done = new Set<Node>()
    for (const node of graph.nodes) {
      if (!fold.has(node)) continue
      const inputs = node.inputs.map((i) => (i === '' ? undefined : valueOf(i)))
      const result = inputs.some((t, k) => t === undefined && node.inputs[k] !== '')
        ? 'an input could not be evaluated'
        : CONSTANT_OPS[node.opType]!(node, inputs, opset)
      const tooBig = typeof result !== 'string' && result.some((t) => t.data.length / elementType(t.dataType).entriesPerElement > MAX_FOLD_ELEMENTS)
      if (typeof result === 'string' || tooBig) {
        ctx.note(`${node.opType} ${q(node.name)} not folded: ${typeof result === 'string' ? result : `output larger than ${MAX_FOLD_ELEMENTS} elements`}`)
        continue
      }
      result.forEach((t, k) => {
        const name = node.outputs[k]
        if (name) values.set(name, { ...t, name })
      })
      done.add(node)
    }
    if (done.size === 0) return 0

    // Outputs read by a node that stays become initializers; the rest were intermediate.
    graph.nodes = graph.nodes.filter((n) => !done.has(n))
    const stillRead = new Set(graph.nodes.flatMap((n) => n.inputs))
    for (const [name, t] of values) if (stillRead.has(name)) graph.initializers.set(name, t)
    for (const n of done) ctx.release(...n.inputs.filter((i) => i !== ''))
    ctx.report.foldedConstants += done.size
    return done.size
  },
}
