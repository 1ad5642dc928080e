// Per-layer cost — multiply-accumulates per sample and parameter count — of the layers model
// compression can touch (Conv, ConvTranspose, Gemm, MatMul with a constant weight), and of the
// whole model as AIMET counts it (aimet_common/cost_calculator.py: the sum over those layers only;
// memory is the weight's element count, bias left out; MACs are the weight's elements times the
// output's spatial size).
//
// MACs need output (ConvTranspose: input) spatial sizes. They come from the graph's value_info
// when it has every one of them with fixed numbers; otherwise from one onnxruntime-node run, on a
// worker thread (DECISIONS: never block the event loop), of the model with those values added as
// outputs, fed zeros (symbolic dims set to 1) or a sample the caller gives.
import { QuantkitError } from '../errors.js'
import { attrInt } from '../graph/attributes.js'
import { addGraphOutput } from '../graph/graphEdits.js'
import { cloneModel, type Graph, type Model, type Node } from '../graph/model.js'
import { feedType, requiredInputs } from '../data/modelInputs.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { toPlainFeeds, type Feeds, type PlainTensor, type TensorType } from '../sim/feeds.js'
import { OrtRunner } from '../sim/ortRunner.js'
import type { Cost } from './layerCompressor.js'

export type { Cost }

const q = JSON.stringify

/** A model cannot be priced: a weight that is not a constant of the expected rank, a size ORT did not give. */
export class LayerCostError extends QuantkitError {
  override name = 'LayerCostError'
}

/** The op types that have a cost (everything else is free, as in AIMET). */
export const COSTED_OP_TYPES = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const
export type CostedOpType = (typeof COSTED_OP_TYPES)[number]

/** Value name → its dims, measured or read from value_info (the batch dim included). */
export type LayerShapes = ReadonlyMap<string, readonly number[]>

export interface LayerCostEntry {
  node: string
  opType: CostedOpType
  /** The weight initializer's name and dims. */
  weight: string
  weightDims: number[]
  /** Dims of the value the MAC count scales with: the output (ConvTranspose: the input), batch dim first. */
  activationDims: number[]
  cost: Cost
}

/** The constant weight of a costed node: its initializer name, or undefined when the node has none (then it is not a layer). */
export function layerWeight(graph: Graph, node: Node): string | undefined {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return undefined
  switch (node.opType) {
    case 'Conv':
    case 'ConvTranspose':
    case 'Gemm': {
      const w = node.inputs[1]
      return w && graph.initializers.has(w) ? w : undefined
    }
    case 'MatMul': {
      // Only X · W with a constant 2-D W: a constant first operand or a batched weight is not a layer AIMET would compress.
      const w = node.inputs[1]
      const t = w ? graph.initializers.get(w) : undefined
      return t && t.dims.length === 2 && !graph.initializers.has(node.inputs[0] ?? '') ? w : undefined
    }
    default:
      return undefined
  }
}

/** The nodes with a cost, in graph order. */
export function costedNodes(graph: Graph): Node[] {
  return graph.nodes.filter((n) => layerWeight(graph, n) !== undefined)
}

/** The value a node's MAC count scales with: the output, except ConvTranspose (its input). */
export function activationValue(node: Node): string {
  return node.opType === 'ConvTranspose' ? node.inputs[0]! : node.outputs[0]!
}

const product = (xs: readonly number[]) => xs.reduce((a, b) => a * b, 1)

/** Conv: weight [M, C/g, k…], output [N, M, spatial…]: every output element costs C/g · ∏k MACs. */
export function convCost(weightDims: readonly number[], outputSpatial: readonly number[]): Cost {
  const memory = product(weightDims)
  return { memory, mac: memory * product(outputSpatial) }
}

/** ConvTranspose: weight [C, M/g, k…]: every input element scatters into M/g · ∏k outputs. */
export function convTransposeCost(weightDims: readonly number[], inputSpatial: readonly number[]): Cost {
  const memory = product(weightDims)
  return { memory, mac: memory * product(inputSpatial) }
}

/** Gemm or MatMul of a K×N weight applied to `rows` rows per sample. */
export function denseCost(k: number, n: number, rowsPerSample = 1): Cost {
  return { memory: k * n, mac: k * n * rowsPerSample }
}

export const addCost = (a: Cost, b: Cost): Cost => ({ mac: a.mac + b.mac, memory: a.memory + b.memory })
export const ZERO_COST: Cost = Object.freeze({ mac: 0, memory: 0 })

/**
 * The cost of one costed node given the dims of its activation value (see `activationValue`).
 * For MatMul the rows per sample are the product of the output's dims between the first (batch)
 * and the last; a rank-2 output counts its first dim as the batch.
 */
export function nodeCost(graph: Graph, node: Node, activationDims: readonly number[]): Cost {
  const weight = layerWeight(graph, node)
  if (weight === undefined) throw new LayerCostError(`node ${q(node.name)} (${node.opType}) has no constant weight to price`)
  const w = graph.initializers.get(weight)!.dims
  const where = `node ${q(node.name)} (${node.opType}) weight ${q(weight)} [${w.join(', ')}]`
  switch (node.opType) {
    case 'Conv':
      if (w.length < 3) throw new LayerCostError(`${where}: expected rank ≥ 3`)
      return convCost(w, activationDims.slice(2))
    case 'ConvTranspose':
      if (w.length < 3) throw new LayerCostError(`${where}: expected rank ≥ 3`)
      return convTransposeCost(w, activationDims.slice(2))
    case 'Gemm': {
      if (w.length !== 2) throw new LayerCostError(`${where}: expected rank 2`)
      const transB = attrInt(node, 'transB', 0) !== 0
      const [k, n] = transB ? [w[1]!, w[0]!] : [w[0]!, w[1]!]
      return denseCost(k, n)
    }
    default: {
      const rows = activationDims.length >= 3 ? product(activationDims.slice(1, -1)) : 1
      return denseCost(w[0]!, w[1]!, rows)
    }
  }
}

/** True when `dims` are all fixed positive numbers. */
function fixed(dims: readonly unknown[] | undefined): dims is number[] {
  return dims !== undefined && dims.every((d) => typeof d === 'number' && d > 0)
}

/** Dims of the first input and the output of every costed node (spatial SVD prices its first half at the input's width), from value_info, graph inputs and outputs; undefined for those not fully known. */
function declaredShapes(graph: Graph): Map<string, number[] | undefined> {
  const known = new Map<string, number[]>()
  for (const v of [...graph.inputs, ...graph.outputs, ...graph.valueInfo]) if (fixed(v.shape)) known.set(v.name, v.shape)
  const out = new Map<string, number[] | undefined>()
  for (const n of costedNodes(graph)) {
    for (const name of [n.inputs[0]!, n.outputs[0]!]) out.set(name, known.get(name))
  }
  return out
}

/** Zeros for every input that must be fed, symbolic and unknown dims set to 1. */
function zeroFeeds(graph: Graph): Record<string, PlainTensor> {
  const feeds: Record<string, PlainTensor> = {}
  for (const v of requiredInputs(graph)) {
    const type = feedType(v.elemType)
    if (!type || type === 'string' || v.shape === undefined) {
      throw new LayerCostError(`cannot make a zero feed for input ${q(v.name)} (type ${type ?? v.elemType}, shape ${v.shape ? 'known' : 'unknown'}); pass a sample`)
    }
    const dims = v.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1))
    feeds[v.name] = { type, data: zeroArray(type, product(dims)), dims }
  }
  return feeds
}

function zeroArray(type: Exclude<TensorType, 'string'>, n: number): PlainTensor['data'] {
  switch (type) {
    case 'float32': return new Float32Array(n)
    case 'float64': return new Float64Array(n)
    case 'float16': case 'uint16': return new Uint16Array(n)
    case 'int8': return new Int8Array(n)
    case 'uint8': case 'bool': return new Uint8Array(n)
    case 'int16': return new Int16Array(n)
    case 'int32': return new Int32Array(n)
    case 'uint32': return new Uint32Array(n)
    case 'int64': return new BigInt64Array(n)
    case 'uint64': return new BigUint64Array(n)
  }
}

export interface MeasureOptions {
  /** Feeds for the one run (default: zeros, symbolic dims 1). Used only when value_info lacks a size. */
  sample?: Feeds
  /** ORT intra-op threads for that run (default 1). */
  intraOpNumThreads?: number
  signal?: AbortSignal
}

/**
 * The dims of the first input and the output of every costed node, from
 * value_info when complete, else measured by one onnxruntime-node run in a worker thread.
 */
export async function measureLayerShapes(model: Model, opts: MeasureOptions = {}): Promise<Map<string, number[]>> {
  const declared = declaredShapes(model.graph)
  const shapes = new Map<string, number[]>()
  const missing: string[] = []
  for (const [name, dims] of declared) {
    if (dims) shapes.set(name, dims)
    else missing.push(name)
  }
  if (missing.length === 0) return shapes
  opts.signal?.throwIfAborted()
  const probe = cloneModel(model)
  for (const name of missing) {
    if (model.graph.initializers.has(name) || model.graph.inputs.some((v) => v.name === name)) continue
    addGraphOutput(probe.graph, name, { elemType: undefined, shape: undefined })
  }
  const runner = await OrtRunner.create(modelToBytes(probe), {
    name: model.path ?? 'model', intraOpNumThreads: opts.intraOpNumThreads ?? 1, graphOptimizationLevel: 'disabled',
  })
  try {
    const feeds = opts.sample ? toPlainFeeds(opts.sample) : zeroFeeds(model.graph)
    const out = await runner.run(feeds, { outputs: missing.filter((n) => runner.outputNames.includes(n)) })
    for (const name of missing) {
      const dims = out[name]?.dims ?? feeds[name]?.dims
      if (!dims) throw new LayerCostError(`${model.path ?? 'model'}: onnxruntime gave no shape for ${q(name)}`)
      shapes.set(name, [...dims])
    }
  } finally {
    await runner.close()
  }
  return shapes
}

/** The cost of every costed node, in graph order. `shapes` from measureLayerShapes. */
export function layerCosts(model: Model, shapes: LayerShapes): LayerCostEntry[] {
  const graph = model.graph
  return costedNodes(graph).map((node) => {
    const value = activationValue(node)
    const dims = shapes.get(value)
    if (!dims) throw new LayerCostError(`no measured shape for ${q(value)} (of node ${q(node.name)}); measure the shapes of this model first`)
    const weight = layerWeight(graph, node)!
    return {
      node: node.name, opType: node.opType as CostedOpType, weight,
      weightDims: [...graph.initializers.get(weight)!.dims], activationDims: [...dims],
      cost: nodeCost(graph, node, dims),
    }
  })
}

/** The whole model's cost: the sum over its costed nodes (AIMET's compute_model_cost). */
export function modelCost(model: Model, shapes: LayerShapes): Cost {
  return layerCosts(model, shapes).reduce((sum, e) => addCost(sum, e.cost), { ...ZERO_COST })
}
