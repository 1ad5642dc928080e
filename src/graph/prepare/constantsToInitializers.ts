// Constant nodes → initializers. paddle2onnx models (all of PP-OCR) hold every weight in a
// Constant node and have no initializers at all; quantization, BN folding and encodings all look
// for parameters among initializers, as AIMET does after its own conversion. The initializer takes
// the Constant's output name, so every reader and every tensor name stays as it was.
import { DataType } from '../../onnx/elementType.js'
import type { Tensor } from '../../onnx/tensor.js'
import { graphIndex } from '../graphIndex.js'
import type { Node } from '../model.js'
import type { PassContext, PreparePass } from './pass.js'

const q = JSON.stringify

/** The tensor a Constant node holds, or a reason it is not one quantkit turns into an initializer. */
function constantValue(node: Node, name: string): Tensor | string {
  const [key, a] = [...node.attributes][0] ?? []
  if (node.attributes.size !== 1 || !key || !a) return `has ${node.attributes.size} attributes, expected exactly one value attribute`
  switch (key) {
    case 'value':
      return a.type === 'tensor' ? { ...a.value, name } : 'value is not a tensor'
    case 'value_float':
      return a.type === 'float' ? { name, dataType: DataType.FLOAT, dims: [], data: Float32Array.of(a.value) } : 'value_float is not a float'
    case 'value_floats':
      return a.type === 'floats'
        ? { name, dataType: DataType.FLOAT, dims: [a.value.length], data: Float32Array.from(a.value) }
        : 'value_floats is not a float list'
    case 'value_int':
      return a.type === 'int' ? { name, dataType: DataType.INT64, dims: [], data: BigInt64Array.of(BigInt(a.value)) } : 'value_int is not an int'
    case 'value_ints':
      return a.type === 'ints'
        ? { name, dataType: DataType.INT64, dims: [a.value.length], data: BigInt64Array.from(a.value, (v) => BigInt(v)) }
        : 'value_ints is not an int list'
    default:
      // sparse_value, value_string(s): no dense numeric Tensor to hold them.
      return `holds ${key}, which stays a Constant node`
  }
}

export const constantsToInitializers: PreparePass = {
  name: 'constantsToInitializers',
  run(ctx: PassContext): number {
    const graph = ctx.model.graph
    const index = graphIndex(graph)
    const needsInput = ctx.model.irVersion < 4 // IR 3: every initializer must also be a graph input
    const kept: Node[] = []
    let converted = 0
    for (const node of graph.nodes) {
      if (node.opType !== 'Constant' || (node.domain !== '' && node.domain !== 'ai.onnx')) {
        kept.push(node)
        continue
      }
      const out = node.outputs[0] ?? ''
      const value = constantValue(node, out)
      if (typeof value === 'string' || out === '' || index.isGraphOutput(out)) {
        ctx.note(
          `Constant ${q(node.name)}: ` +
            (typeof value === 'string' ? value : out === '' ? 'has no output' : `its output ${q(out)} is a graph output; kept as a node`),
        )
        kept.push(node)
        continue
      }
      graph.initializers.set(out, value)
      if (needsInput) graph.inputs.push({ name: out, elemType: value.dataType, shape: [...value.dims] })
      converted++
    }
    graph.nodes = kept
    ctx.report.constantsToInitializers += converted
    return converted
  },
}
