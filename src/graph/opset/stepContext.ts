// What a conversion step (opsetTable.ts) sees and may do: read facts about values, add constant
// initializers to the graph the node lives in, and make new nodes with fresh, model-wide unique
// names. Steps never touch other nodes; they return the nodes that replace the one they convert.
import { DataType } from '../../onnx/elementType.js'
import type { Tensor } from '../../onnx/tensor.js'
import type { AttributeValue, Graph, Node } from '../model.js'
import { uniqueName } from '../names.js'
import type { ValueFacts } from './valueFacts.js'

export interface StepContext extends ValueFacts {
  /** The opset the step converts to (the op's next since_version). */
  readonly opset: number
  /** The opset the whole upgrade ends at. */
  readonly target: number
  /** A value name no graph of the model uses yet, derived from `base`. */
  freshName(base: string): string
  /** Adds an initializer to the node's graph and returns its (fresh) name. */
  addConstant(base: string, tensor: Omit<Tensor, 'name'>): string
  /** An int64 1-D initializer holding `values`. */
  int64s(base: string, values: readonly (number | bigint)[]): string
  /** Whether a node (or subgraph) of the node's graph reads `name`, or it is a graph output. */
  isUsed(name: string): boolean
  /** A new default-domain node (its name fresh and derived from `like`). */
  makeNode(like: Node, opType: string, inputs: string[], outputs: string[], attributes?: Record<string, AttributeValue>): Node
}

export function stringAttr(value: string): AttributeValue {
  return { type: 'string', value: new Uint8Array(Buffer.from(value, 'utf8')) }
}

export function intAttr(value: number): AttributeValue {
  return { type: 'int', value }
}

/**
 * A float32 scalar holding the (float32) attribute `value` when `dataType` is FLOAT, else undefined.
 * Clip-6 and Pad-2 also allowed float16 and double, but ONNX Runtime has no kernel to prove such a
 * conversion against, so those stay blockers.
 */
export function floatScalar(dataType: number, value: number): Omit<Tensor, 'name'> | undefined {
  if (dataType === DataType.FLOAT) return { dataType, dims: [], data: Float32Array.of(value) }
  return undefined
}

export function createStepContext(
  graph: Graph,
  facts: ValueFacts,
  taken: Set<string>,
  takenNodeNames: Set<string>,
  isUsed: (name: string) => boolean,
  opset: number,
  target: number,
): StepContext {
  const freshName = (base: string) => {
    const name = uniqueName(graph, base, taken)
    taken.add(name)
    return name
  }
  const freshNodeName = (base: string) => {
    let name = base
    for (let i = 1; takenNodeNames.has(name); i++) name = `${base}_${i}`
    takenNodeNames.add(name)
    return name
  }
  const addConstant = (base: string, tensor: Omit<Tensor, 'name'>) => {
    const name = freshName(base)
    graph.initializers.set(name, { ...tensor, name })
    return name
  }
  return {
    opset,
    target,
    rank: facts.rank,
    elemType: facts.elemType,
    // Constants added by earlier steps (Upsample's scales before Resize-11 reads them) count too.
    constant: (name) => facts.constant(name) ?? (graph.inputs.some((v) => v.name === name) ? undefined : graph.initializers.get(name)),
    freshName,
    addConstant,
    isUsed,
    int64s: (base, values) =>
      addConstant(base, { dataType: DataType.INT64, dims: [values.length], data: BigInt64Array.from(values, (v) => BigInt(v)) }),
    makeNode: (like, opType, inputs, outputs, attributes = {}) => ({
      name: freshNodeName(`${like.name || like.opType}/${opType}`),
      opType,
      domain: '',
      inputs,
      outputs,
      attributes: new Map(Object.entries(attributes)),
    }),
  }
}
