// Which kernels ONNX Runtime's CPU execution provider will actually run for a model: ORT writes
// the graph it optimised (`optimizedModelFilePath`, the same session option as Python's
// `optimized_model_filepath`), and we read that graph back and sort its nodes into integer
// kernels, integer data movement, the Q/DQ that stayed, and float ops still fed by a
// DequantizeLinear (fake quantization ORT did not fuse — the reason a QDQ model is not faster).
// Nothing here trusts quantkit's own export: the answer is whatever ORT wrote.
import { mkdtempSync, rmSync, copyFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Model, Node } from '../graph/model.js'
import { loadModel } from '../onnx/loadModel.js'
import { isModel, type ModelSource } from '../onnx/modelSource.js'
import { saveModel } from '../onnx/saveModel.js'
import { OrtRunner } from '../sim/ortRunner.js'

/**
 * ORT CPU ops that compute on 8-bit integers (ai.onnx and com.microsoft), and what each is.
 * `floatOut`: the op returns float (the activations' quantization ends inside it).
 */
export const ORT_INTEGER_KERNELS: Readonly<Record<string, { floatOut?: boolean; what: string }>> = {
  QLinearConv: { what: 'Conv on uint8/int8 activations and int8 weights (com.microsoft: channels-last variant)' },
  QLinearMatMul: { what: 'MatMul with quantized inputs and output' },
  QGemm: { what: 'Gemm with quantized inputs (com.microsoft); quantized or float output' },
  MatMulInteger: { floatOut: true, what: 'MatMul to int32 (dynamic quantization)' },
  ConvInteger: { floatOut: true, what: 'Conv to int32 (dynamic quantization)' },
  MatMulIntegerToFloat: { floatOut: true, what: 'MatMul of quantized inputs to float, optional bias (com.microsoft)' },
  DynamicQuantizeMatMul: { floatOut: true, what: 'quantizes A at run time, int8 B, float output (com.microsoft)' },
  MatMulNBits: { floatOut: true, what: '4/8-bit blocked weights, float activations (com.microsoft)' },
  QLinearAdd: { what: 'Add (com.microsoft)' },
  QLinearMul: { what: 'Mul (com.microsoft)' },
  QLinearSigmoid: { what: 'Sigmoid (com.microsoft)' },
  QLinearLeakyRelu: { what: 'LeakyRelu (com.microsoft)' },
  QLinearSoftmax: { what: 'Softmax (com.microsoft)' },
  QLinearAveragePool: { what: 'AveragePool (com.microsoft)' },
  QLinearGlobalAveragePool: { what: 'GlobalAveragePool (com.microsoft)' },
  QLinearConcat: { what: 'Concat (com.microsoft)' },
  QLinearWhere: { what: 'Where (com.microsoft)' },
  QLinearReduceMean: { what: 'ReduceMean (com.microsoft)' },
  QAttention: { floatOut: true, what: 'attention with int8 weights (com.microsoft)' },
  QEmbedLayerNormalization: { floatOut: true, what: 'embedding + LayerNorm with int8 weights (com.microsoft)' },
  DynamicQuantizeLSTM: { floatOut: true, what: 'LSTM with int8 weights (com.microsoft)' },
}

/** Ops that move or select values without arithmetic: on integer inputs they run on integers. */
const DATA_MOVEMENT = new Set([
  'MaxPool', 'NhwcMaxPool', 'Reshape', 'Flatten', 'Transpose', 'Squeeze', 'Unsqueeze', 'Slice', 'Gather', 'GatherElements',
  'Split', 'Expand', 'Tile', 'Identity', 'Resize', 'Upsample', 'Pad', 'DepthToSpace', 'SpaceToDepth', 'ReduceMax', 'ReduceMin', 'ArgMax', 'Concat',
])

/** ORT CPU op types with a QDQ fusion rule (qdq_selector_action_transformer.cc), for the "why not fused" hint. */
const FUSABLE = new Set(['Conv', 'MatMul', 'Gemm', 'Add', 'Mul', 'AveragePool', 'GlobalAveragePool', 'LeakyRelu', 'Sigmoid', 'Softmax', 'Concat', 'Where'])

export interface FloatFakeQuantNode {
  node: string
  opType: string
  /** Why ORT left it in float, as far as the graph shows. */
  reason: string
}

export interface OrtKernelReport {
  /** What was inspected (a path, or `<bytes>` / `<model>`). */
  model: string
  ortVersion: string
  graphOptimizationLevel: 'basic' | 'extended' | 'all'
  /** Nodes in the optimised graph. */
  nodes: number
  /** Integer compute kernels by op type (`com.microsoft.` prefixed when in that domain), with counts. */
  integerKernels: Record<string, number>
  /** Data-movement ops that run on integer tensors (MaxPool, Reshape, Transpose … fed by a QuantizeLinear or an integer kernel). */
  integerDataMovement: Record<string, number>
  /** Float compute ops that still read a DequantizeLinear output: fake quantization ORT ran in float. */
  floatFakeQuant: Record<string, number>
  floatFakeQuantNodes: FloatFakeQuantNode[]
  /** The Q/DQ left in the graph. */
  qdq: {
    quantizeLinear: number
    dequantizeLinear: number
    /** DequantizeLinear of an initializer: a weight dequantized to float at run time. */
    weightDequantize: number
    /** DequantizeLinear → QuantizeLinear: a requantization done in float. */
    requantizePairs: number
  }
  /** Every other op (plain float compute), with counts. */
  floatOps: Record<string, number>
  /** Float compute ops among all compute ops that run integer kernels: integer / (integer + fake-quant float + plain float). */
  integerShare: number
  /** Where the optimised model was kept (with `keepOptimizedModel`). */
  optimizedModelPath?: string
}

export interface OrtKernelOptions {
  /** ORT's optimisation level; default 'all' (what a session runs by default). */
  graphOptimizationLevel?: 'basic' | 'extended' | 'all'
  /** Copy the optimised model here (ORT's file, which may hold hardware-specific layout ops). */
  keepOptimizedModel?: string
  intraOpNumThreads?: number
}

const key = (n: Node) => (n.domain && n.domain !== 'ai.onnx' ? `${n.domain}.${n.opType}` : n.opType)
const bump = (r: Record<string, number>, k: string) => { r[k] = (r[k] ?? 0) + 1 }

/** Sorts the nodes of an optimised graph (ORT's output, already loaded) into the report's groups. */
export function classifyOrtKernels(model: Model): Omit<OrtKernelReport, 'model' | 'ortVersion' | 'graphOptimizationLevel'> {
  const g = model.graph
  const producer = new Map<string, Node>()
  for (const n of g.nodes) for (const o of n.outputs) if (o) producer.set(o, n)
  const readers = new Map<string, Node[]>()
  for (const n of g.nodes) for (const i of n.inputs) if (i) readers.set(i, [...(readers.get(i) ?? []), n])
  const integerValues = new Set<string>()
  const r: Omit<OrtKernelReport, 'model' | 'ortVersion' | 'graphOptimizationLevel' | 'integerShare'> = {
    nodes: g.nodes.length, integerKernels: {}, integerDataMovement: {}, floatFakeQuant: {}, floatFakeQuantNodes: [],
    qdq: { quantizeLinear: 0, dequantizeLinear: 0, weightDequantize: 0, requantizePairs: 0 }, floatOps: {},
  }
  // ORT writes the optimised graph in topological order, so producers come first.
  for (const n of g.nodes) {
    const kernel = ORT_INTEGER_KERNELS[n.opType]
    if (n.opType === 'QuantizeLinear' || n.opType === 'DynamicQuantizeLinear') {
      if (n.opType === 'QuantizeLinear') r.qdq.quantizeLinear++
      else bump(r.integerKernels, key(n))
      if (producer.get(n.inputs[0] ?? '')?.opType === 'DequantizeLinear') r.qdq.requantizePairs++
      integerValues.add(n.outputs[0]!)
      continue
    }
    if (n.opType === 'DequantizeLinear') {
      r.qdq.dequantizeLinear++
      if (g.initializers.has(n.inputs[0] ?? '')) r.qdq.weightDequantize++
      continue
    }
    if (kernel) {
      bump(r.integerKernels, key(n))
      if (!kernel.floatOut) for (const o of n.outputs) if (o) integerValues.add(o)
      continue
    }
    if (DATA_MOVEMENT.has(n.opType) && integerValues.has(n.inputs[0] ?? '')) {
      bump(r.integerDataMovement, key(n))
      for (const o of n.outputs) if (o) integerValues.add(o)
      continue
    }
    const fromDq = n.inputs.filter((i) => i && producer.get(i)?.opType === 'DequantizeLinear')
    if (fromDq.length > 0 && !DATA_MOVEMENT.has(n.opType)) {
      bump(r.floatFakeQuant, key(n))
      r.floatFakeQuantNodes.push({ node: n.name, opType: key(n), reason: whyFloat(n, producer, readers, g.initializers) })
      continue
    }
    bump(r.floatOps, key(n))
  }
  const count = (x: Record<string, number>) => Object.values(x).reduce((a, b) => a + b, 0)
  const integer = count(r.integerKernels) - (r.integerKernels.DynamicQuantizeLinear ?? 0)
  const compute = integer + count(r.floatFakeQuant) + count(r.floatOps)
  return { ...r, integerShare: compute === 0 ? 0 : integer / compute }
}

function whyFloat(n: Node, producer: Map<string, Node>, readers: Map<string, Node[]>, initializers: Map<string, unknown>): string {
  if (!FUSABLE.has(n.opType) || (n.domain && n.domain !== 'ai.onnx')) return `ONNX Runtime's CPU EP has no QDQ fusion for ${key(n)}`
  const weightInputs = n.opType === 'Conv' || n.opType === 'Gemm' ? 2 : n.inputs.length
  const notDq = n.inputs.slice(0, weightInputs).filter((i) => i && producer.get(i)?.opType !== 'DequantizeLinear' && !initializers.has(i))
  if (notDq.length > 0) {
    const from = notDq.map((i) => `${JSON.stringify(i)} from ${producer.get(i)?.opType ?? 'a graph input'}`).join(', ')
    return `input ${from} is not dequantized (no Q/DQ on it), so the node is not a QDQ group`
  }
  const out = readers.get(n.outputs[0] ?? '') ?? []
  if (n.opType !== 'MatMul' && n.opType !== 'Gemm' && !(out.length === 1 && out[0]!.opType === 'QuantizeLinear')) {
    return out.length === 0 ? 'its output is a graph output without QuantizeLinear' : `its output goes to ${[...new Set(out.map((o) => o.opType))].join(', ')}, not to one QuantizeLinear`
  }
  return 'the Q/DQ types or scales do not fit the kernel (16-bit, int8 activations on x86, per-channel where per-tensor is needed, or unequal scales)'
}

/**
 * Creates an ONNX Runtime CPU session for the model with graph optimisations on, has ORT write
 * the graph it will run, and reports which integer kernels that graph uses.
 */
export async function inspectOrtKernels(source: ModelSource, opts: OrtKernelOptions = {}): Promise<OrtKernelReport> {
  const level = opts.graphOptimizationLevel ?? 'all'
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-kernels-'))
  try {
    let input: string | Uint8Array = typeof source === 'string' ? source : source as Uint8Array
    if (isModel(source)) {
      // Written to a file so that ORT finds external data beside it (DECISIONS: ONNX I/O).
      input = join(dir, 'model.onnx')
      await saveModel(source, input)
    }
    const optimized = join(dir, 'optimized.onnx')
    const runner = await OrtRunner.create(input, {
      graphOptimizationLevel: level, intraOpNumThreads: opts.intraOpNumThreads ?? 1, optimizedModelFilePath: optimized,
      name: typeof source === 'string' ? source : 'model',
    })
    await runner.close()
    const report: OrtKernelReport = {
      model: typeof source === 'string' ? source : isModel(source) ? '<model>' : '<bytes>',
      ortVersion: (require('onnxruntime-node/package.json') as { version: string }).version,
      graphOptimizationLevel: level,
      ...classifyOrtKernels(await loadModel(optimized)),
    }
    if (opts.keepOptimizedModel) {
      copyFileSync(optimized, opts.keepOptimizedModel)
      report.optimizedModelPath = opts.keepOptimizedModel
    }
    return report
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The report as the lines `quantkit inspect --kernels` prints. */
export function formatOrtKernelReport(r: OrtKernelReport): string[] {
  const list = (x: Record<string, number>) => Object.entries(x).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
  const lines = [
    `${r.model}: kernels ONNX Runtime ${r.ortVersion} (CPU, graph optimisation '${r.graphOptimizationLevel}') runs, from its optimised graph (${r.nodes} nodes)`,
    `  integer kernels:          ${list(r.integerKernels)}`,
    `  integer data movement:    ${list(r.integerDataMovement)}`,
    `  float ops on DQ outputs:  ${list(r.floatFakeQuant)}   (fake quantization ORT did not fuse)`,
    `  other float ops:          ${list(r.floatOps)}`,
    `  Q/DQ left:                ${r.qdq.quantizeLinear} QuantizeLinear, ${r.qdq.dequantizeLinear} DequantizeLinear (${r.qdq.weightDequantize} of weights), ${r.qdq.requantizePairs} DQ→Q requantizations in float`,
    `  integer share of compute: ${(r.integerShare * 100).toFixed(0)} %`,
  ]
  for (const f of r.floatFakeQuantNodes.slice(0, 20)) lines.push(`  float: ${f.opType} ${JSON.stringify(f.node)}: ${f.reason}`)
  if (r.floatFakeQuantNodes.length > 20) lines.push(`  … ${r.floatFakeQuantNodes.length - 20} more (--json lists all)`)
  if (r.optimizedModelPath) lines.push(`  optimised model written to ${r.optimizedModelPath}`)
  return lines
}
