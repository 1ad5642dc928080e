// Identity and inference-mode Dropout pass their input through unchanged; removing them lets the
// folds see a Conv next to its BatchNorm and keeps quantizers off values that are mere aliases.
import { GraphError } from '../../errors.js'
import { attrInt } from '../attributes.js'
import { removeNode } from '../graphEdits.js'
import { graphIndex, type GraphIndex } from '../graphIndex.js'
import { opsetVersion, type Node } from '../model.js'
import type { PassContext, PreparePass } from './pass.js'

const q = JSON.stringify

function isUsed(index: GraphIndex, name: string | undefined): boolean {
  return name !== undefined && name !== '' && (index.consumers(name).length > 0 || index.isGraphOutput(name))
}

/** Why a Dropout cannot go, or undefined when it is an identity at inference. */
function dropoutBlocker(ctx: PassContext, index: GraphIndex, node: Node): string | undefined {
  if (isUsed(index, node.outputs[1])) return `its mask output ${q(node.outputs[1])} is used`
  const opset = opsetVersion(ctx.model) ?? 0
  if (opset < 7 && attrInt(node, 'is_test', 0) === 0) return 'is_test = 0 (training mode before opset 7)'
  const training = node.inputs[2] ?? ''
  if (training !== '') {
    const t = ctx.model.graph.initializers.get(training)
    if (!t || index.isGraphInput(training)) return `training_mode comes from ${q(training)}, which is not a constant`
    if (t.data.length !== 1 || Number(t.data[0]) !== 0) return 'training_mode is true'
  }
  return undefined
}

export const removeIdentities: PreparePass = {
  name: 'removeIdentities',
  run(ctx: PassContext): number {
    const graph = ctx.model.graph
    let removed = 0
    for (const node of [...graph.nodes]) {
      const isDefault = node.domain === '' || node.domain === 'ai.onnx'
      if (!isDefault || (node.opType !== 'Identity' && node.opType !== 'Dropout')) continue
      const index = graphIndex(graph)
      if (node.opType === 'Dropout') {
        const why = dropoutBlocker(ctx, index, node)
        if (why) {
          ctx.note(`Dropout ${q(node.name)} kept: ${why}`)
          continue
        }
      }
      try {
        removeNode(graph, node)
      } catch (e) {
        if (!(e instanceof GraphError)) throw e
        ctx.note(`${node.opType} ${q(node.name)} kept: ${e.message}`)
        continue
      }
      ctx.release(...node.inputs.slice(1).filter((i) => i !== ''))
      removed++
    }
    ctx.report.removedIdentities += removed
    return removed
  },
}
