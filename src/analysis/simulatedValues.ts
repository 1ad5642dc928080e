// Where a quantized activation lives in the QDQ model (src/export/qdqModel.ts): the output of the
// DequantizeLinear that follows its QuantizeLinear. The builder names it
// `<tensor>_DequantizeLinear_Output` (made unique if taken), puts a Clip between the tensor and
// the QuantizeLinear for grids narrower than their ONNX type, and keeps a quantized graph output's
// name on the dequantized value (the float value becomes `<tensor>_float`). Names are found by
// following the nodes, not by rebuilding them, so uniquified names resolve too.
import { graphIndex } from '../graph/graphIndex.js'
import type { Model, Node } from '../graph/model.js'
import { QuantkitError } from '../errors.js'

/** The dequantized value standing for `tensor` in `qdq`, for each tensor given. */
export function simulatedValueNames(qdq: Model, tensors: readonly string[]): Map<string, string> {
  const index = graphIndex(qdq.graph)
  const dqOf = (q: Node): string | undefined =>
    index.consumerNodes(q.outputs[0]!).find((n) => n.opType === 'DequantizeLinear' && n.inputs[0] === q.outputs[0])?.outputs[0]
  const out = new Map<string, string>()
  for (const tensor of tensors) {
    // A quantized graph output: the graph output itself is the dequantized value.
    const producer = index.producer(tensor)?.node
    if (producer?.opType === 'DequantizeLinear' && index.isGraphOutput(tensor)) {
      out.set(tensor, tensor)
      continue
    }
    const readers = index.consumerNodes(tensor)
    // Directly quantized first; else through the builder's own Clip (named `<tensor>_Clip…`).
    let q = readers.find((n) => n.opType === 'QuantizeLinear' && n.inputs[0] === tensor)
    if (!q || !dqOf(q)) {
      const clip = readers.find((n) => n.opType === 'Clip' && n.inputs[0] === tensor && n.name.startsWith(`${tensor}_Clip`))
      q = clip && index.consumerNodes(clip.outputs[0]!).find((n) => n.opType === 'QuantizeLinear' && n.inputs[0] === clip.outputs[0])
    }
    const found = q && dqOf(q)
    if (!found) throw new QuantkitError(`the QDQ model has no QuantizeLinear/DequantizeLinear pair on ${JSON.stringify(tensor)}`)
    out.set(tensor, found)
  }
  return out
}
