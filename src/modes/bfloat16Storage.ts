// bfloat16 storage: float32 weights are written as bfloat16 (half the bytes) and each is followed
// by a Cast to float32 that takes the weight's old name, so every node still computes in float32.
// bfloat16 keeps float32's exponent range (no overflow) but only 8 significant bits: a weight's
// relative error is up to 2⁻⁹. With graph optimisations on, ONNX Runtime folds the Casts at
// session creation, so the saving is on disk and in transfer, not in memory or speed.
import { GraphError } from '../errors.js'
import { opsetVersion, type Model, type Node } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { float32ToBfloat16 } from '../halfFloat.js'
import { DataType } from '../onnx/elementType.js'
import type { Float16Cast } from './float16Report.js'

/** Cast from bfloat16 appears in opset 13 (Cast-13). */
export const BFLOAT16_MIN_OPSET = 13

export interface Bfloat16StorageResult {
  converted: number
  kept: number
  casts: Float16Cast[]
}

/**
 * Rewrites `model` (a clone: it is changed in place). Initializers with fewer than `minElements`
 * elements (scalars, scales, epsilons) and initializers that are graph inputs stay float32.
 */
export function storeInitializersAsBfloat16(model: Model, opts: { minElements: number }): Bfloat16StorageResult {
  const opset = opsetVersion(model) ?? 0
  if (opset < BFLOAT16_MIN_OPSET) {
    throw new GraphError(
      `convertFloat16({ bfloat16: true })${model.path ? ` on ${model.path}` : ''}: the model imports ai.onnx opset ${opset}; ` +
        `Cast from bfloat16 needs opset ${BFLOAT16_MIN_OPSET}. Upgrade the model's opset first (upgradeOpset)`,
    )
  }
  const g = model.graph
  const inputs = new Set(g.inputs.map((v) => v.name))
  const taken = allValueNames(g)
  const casts: Float16Cast[] = []
  const castNodes: Node[] = []
  let kept = 0
  const entries = [...g.initializers]
  g.initializers = new Map()
  for (const [name, t] of entries) {
    const elements = t.dims.reduce((a, b) => a * b, 1)
    if (t.dataType !== DataType.FLOAT || inputs.has(name) || elements < opts.minElements) {
      if (t.dataType === DataType.FLOAT) kept++
      g.initializers.set(name, t)
      continue
    }
    const stored = uniqueName(g, `${name}_bf16`, taken)
    taken.add(stored)
    g.initializers.set(stored, { ...t, name: stored, dataType: DataType.BFLOAT16, data: float32ToBfloat16(t.data as Float32Array) })
    const castName = uniqueName(g, `${name}_Cast`, taken)
    taken.add(castName)
    castNodes.push({ name: castName, opType: 'Cast', domain: '', inputs: [stored], outputs: [name], attributes: new Map([['to', { type: 'int', value: DataType.FLOAT }]]) })
    casts.push({ from: stored, to: name, type: 'float32', at: 'bfloat16 weight' })
  }
  g.nodes = [...castNodes, ...g.nodes]
  return { converted: casts.length, kept, casts }
}
