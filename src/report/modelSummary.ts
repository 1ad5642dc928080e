// What `quantkit inspect` reports about a model: opsets, inputs and outputs, op types,
// parameters, external data, and what preparation would change.
import { readFileSync } from 'node:fs'
import { onnx } from '../../generated/onnx.js'
import type { Dim, Model, ValueInfo } from '../graph/model.js'
import { opHistogram } from '../graph/opHistogram.js'
import { prepareModel } from '../graph/prepare/prepareModel.js'
import type { PrepareReport } from '../graph/prepare/report.js'
import { elementType } from '../onnx/elementType.js'
import { loadModel } from '../onnx/loadModel.js'

export interface ValueSummary {
  name: string
  type: string
  shape: Dim[] | null
}

export interface ModelSummary {
  file: string
  irVersion: number
  opsets: { domain: string; version: number }[]
  producer: string
  inputs: ValueSummary[]
  outputs: ValueSummary[]
  nodes: number
  ops: Record<string, number>
  /** Float and integer parameters: initializers plus Constant-node tensors. */
  parameters: { tensors: number; elements: number; bytes: number }
  externalData: { tensors: number; files: string[] }
  subgraphs: number
  preparation: Pick<PrepareReport, 'constantsToInitializers' | 'foldedConstants' | 'removedIdentities' | 'foldedMulAdd' | 'removedNodes' | 'notes'> & {
    foldedBatchNorms: { bn: string; into: string; position: string }[]
  }
}

function describeValue(v: ValueInfo): ValueSummary {
  let type = 'unknown'
  if (v.elemType !== undefined) {
    try {
      type = elementType(v.elemType).name.toLowerCase()
    } catch {
      type = `type ${v.elemType}`
    }
  } else if (v.rawType) type = 'non-tensor'
  return { name: v.name, type, shape: v.shape ?? null }
}

function countSubgraphs(model: Model): number {
  let n = 0
  for (const node of model.graph.nodes) {
    for (const a of node.attributes.values()) {
      if (a.type === 'graph') n++
      else if (a.type === 'graphs') n += a.value.length
    }
  }
  return n
}

/** External-data tensors and files, read from the protobuf (the IR no longer distinguishes them). */
function externalTensors(path: string): { tensors: number; files: string[] } {
  const proto = onnx.ModelProto.decode(readFileSync(path))
  const files = new Set<string>()
  let tensors = 0
  const visit = (t: onnx.ITensorProto | null | undefined) => {
    if (t?.dataLocation !== onnx.TensorProto.DataLocation.EXTERNAL) return
    tensors++
    const loc = t.externalData?.find((e) => e.key === 'location')?.value
    if (loc) files.add(loc)
  }
  for (const t of proto.graph?.initializer ?? []) visit(t)
  for (const n of proto.graph?.node ?? []) for (const a of n.attribute ?? []) visit(a.t)
  return { tensors, files: [...files] }
}

export async function summarizeModel(path: string): Promise<ModelSummary> {
  const model = await loadModel(path)
  let tensors = 0
  let elements = 0
  let bytes = 0
  const count = (dims: number[], byteLength: number) => {
    tensors++
    elements += dims.reduce((a, b) => a * b, 1)
    bytes += byteLength
  }
  for (const t of model.graph.initializers.values()) count(t.dims, t.data.byteLength)
  for (const n of model.graph.nodes) {
    const v = n.opType === 'Constant' ? n.attributes.get('value') : undefined
    if (v?.type === 'tensor') count(v.value.dims, v.value.data.byteLength)
  }
  const { report } = await prepareModel(model)
  return {
    file: path,
    irVersion: model.irVersion,
    opsets: model.opsetImports.map((o) => ({ domain: o.domain || 'ai.onnx', version: o.version })),
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    inputs: model.graph.inputs.filter((i) => !model.graph.initializers.has(i.name)).map(describeValue),
    outputs: model.graph.outputs.map(describeValue),
    nodes: model.graph.nodes.length,
    ops: opHistogram(model.graph),
    parameters: { tensors, elements, bytes },
    externalData: externalTensors(path),
    subgraphs: countSubgraphs(model),
    preparation: {
      constantsToInitializers: report.constantsToInitializers,
      foldedConstants: report.foldedConstants,
      removedIdentities: report.removedIdentities,
      foldedMulAdd: report.foldedMulAdd,
      removedNodes: report.removedNodes,
      notes: report.notes,
      foldedBatchNorms: report.foldedBatchNorms.map((f) => ({ bn: f.bn, into: f.into, position: f.position })),
    },
  }
}
