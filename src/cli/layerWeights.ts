// Finds the weights of Conv, ConvTranspose, Gemm and MatMul nodes in a decoded model, whether
// they are initializers or Constant nodes (paddle2onnx models keep weights in Constants).
// A stop-gap for `quantkit demo` until the graph IR (src/graph/) lands.
import { onnx } from '../../generated/onnx.js'
import { DataType } from '../onnx/elementType.js'
import { tensorFromProto } from '../onnx/tensor.js'
import type { LayerWeight } from '../report/weightQuantStats.js'

function intAttr(node: onnx.INodeProto, name: string): number | undefined {
  const a = node.attribute?.find((x) => x.name === name)
  return a?.i == null ? undefined : Number(a.i)
}

export function layerWeights(model: onnx.IModelProto): LayerWeight[] {
  const graph = model.graph
  if (!graph) return []
  const constants = new Map<string, onnx.ITensorProto>()
  for (const t of graph.initializer ?? []) constants.set(t.name ?? '', t)
  for (const n of graph.node ?? []) {
    const value = n.opType === 'Constant' ? n.attribute?.find((a) => a.name === 'value')?.t : undefined
    if (value && n.output?.[0]) constants.set(n.output[0], value)
  }
  const weights: LayerWeight[] = []
  for (const n of graph.node ?? []) {
    const op = n.opType ?? ''
    if (!['Conv', 'ConvTranspose', 'Gemm', 'MatMul'].includes(op)) continue
    const weightName = n.input?.[1] ?? ''
    const proto = constants.get(weightName)
    if (!proto || proto.dataType !== DataType.FLOAT) continue
    const t = tensorFromProto({ ...proto, name: weightName })
    if (t.dims.length < 2) continue
    const channelAxis = op === 'Conv' ? 0 : op === 'Gemm' ? (intAttr(n, 'transB') ? 0 : 1) : op === 'ConvTranspose' ? 1 : t.dims.length - 1
    weights.push({ layer: n.name || weightName, opType: op, weightName, dims: t.dims, data: t.data as Float32Array, channelAxis })
  }
  return weights
}
