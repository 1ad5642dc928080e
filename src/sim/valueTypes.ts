// Element types and shapes of every value in a model's main graph, as ONNX Runtime infers them:
// each node output becomes an extra graph output (without a declared type) and the session's
// output metadata says what ORT found. Placement needs this to leave integer and shape tensors
// unquantized; calibration uses the shapes to size its batches.
import { cloneModel, type Model } from '../graph/model.js'
import { addGraphOutput } from '../graph/graphEdits.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { OrtRunner } from './ortRunner.js'

export interface ValueType {
  /** ORT's tensor type name ('float32', 'int64', …); undefined for non-tensor values. */
  type?: string
  /** Dims as ORT inferred them: numbers, symbolic names, or -1/undefined when unknown. */
  shape?: (number | string)[]
}

export async function discoverValueTypes(model: Model, opts: { name?: string } = {}): Promise<Map<string, ValueType>> {
  const tapped = cloneModel(model)
  for (const node of tapped.graph.nodes) {
    for (const out of node.outputs) if (out) addGraphOutput(tapped.graph, out)
  }
  const runner = await OrtRunner.create(modelToBytes(tapped), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled', name: opts.name ?? model.path })
  try {
    const types = new Map<string, ValueType>()
    for (const v of [...runner.inputMetadata, ...runner.outputMetadata]) {
      types.set(v.name, v.isTensor ? { type: v.type, shape: v.shape } : {})
    }
    return types
  } finally {
    await runner.close()
  }
}

const DECLARED_TYPE_NAMES: Record<number, string> = { 1: 'float32', 10: 'float16', 16: 'bfloat16', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' }

/**
 * Element types the model itself declares (graph inputs, outputs, value_info), without running ONNX
 * Runtime. Values the model declares nothing about are absent, so placement gives them no
 * activation quantizer: enough for a sim whose activation quantizers the caller turns off (the
 * precision modes' sims, src/modes/modeSim.ts).
 */
export function declaredValueTypes(model: Model): Map<string, ValueType> {
  const types = new Map<string, ValueType>()
  const g = model.graph
  for (const v of [...g.inputs, ...g.outputs, ...g.valueInfo]) {
    if (v.elemType === undefined) continue
    types.set(v.name, { type: DECLARED_TYPE_NAMES[v.elemType] ?? `onnx type ${v.elemType}`, ...(v.shape ? { shape: v.shape.map((d) => d ?? -1) } : {}) })
  }
  return types
}
