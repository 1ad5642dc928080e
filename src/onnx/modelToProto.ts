// quantkit's IR (src/graph/model.ts) → ModelProto, the inverse of protoToModel.ts.
//
// Tensors are written as raw_data (views of their typed arrays: protobufjs copies them once, into
// the output buffer), or, for tensors the caller placed in an external data file, as
// data_location = EXTERNAL with location/offset/length. Verbatim parts (`extra`, raw attributes,
// non-tensor value types) are written back as they were read.

import { onnx } from '../../generated/onnx.js'
import { OnnxFormatError } from '../errors.js'
import type { AttributeValue, Dim, Graph, Model, Node, ValueInfo } from '../graph/model.js'
import { toLong } from './int64.js'
import { tensorToProto, type Tensor } from './tensor.js'

/** Where a tensor's bytes go in the external data file. */
export interface ExternalPlacement {
  location: string
  offset: number
  length: number
}

const AttrType = onnx.AttributeProto.AttributeType

/** Every distinct Tensor the model holds (initializers and tensor attributes, subgraphs included), in file order. */
export function modelTensors(model: Model): Tensor[] {
  const seen = new Set<Tensor>()
  const visit = (g: Graph): void => {
    for (const t of g.initializers.values()) seen.add(t)
    for (const n of g.nodes) {
      for (const a of n.attributes.values()) {
        if (a.type === 'tensor') seen.add(a.value)
        else if (a.type === 'tensors') a.value.forEach((t) => seen.add(t))
        else if (a.type === 'graph') visit(a.value)
        else if (a.type === 'graphs') a.value.forEach(visit)
      }
    }
  }
  visit(model.graph)
  return [...seen]
}

class Writer {
  constructor(private readonly placement: ReadonlyMap<Tensor, ExternalPlacement>) {}

  tensor(t: Tensor, name: string): onnx.TensorProto {
    const proto = tensorToProto(name === t.name ? t : { ...t, name })
    if (!name) delete (proto as Partial<onnx.TensorProto>).name // as most exporters write a Constant's tensor
    if (t.docString) proto.docString = t.docString
    const place = this.placement.get(t)
    if (place) {
      delete (proto as Partial<onnx.TensorProto>).rawData
      proto.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL
      proto.externalData = [
        onnx.StringStringEntryProto.create({ key: 'location', value: place.location }),
        onnx.StringStringEntryProto.create({ key: 'offset', value: String(place.offset) }),
        onnx.StringStringEntryProto.create({ key: 'length', value: String(place.length) }),
      ]
    }
    return proto
  }

  attribute(name: string, a: AttributeValue, where: string): onnx.AttributeProto {
    const make = (fields: onnx.IAttributeProto) => onnx.AttributeProto.create({ name, ...fields })
    const long = (v: number | bigint) => {
      try {
        return toLong(v)
      } catch (e) {
        throw new OnnxFormatError(`${where}: ${(e as Error).message}; INT attributes hold int64 values`)
      }
    }
    switch (a.type) {
      case 'float': return make({ type: AttrType.FLOAT, f: a.value })
      case 'int': return make({ type: AttrType.INT, i: long(a.value) })
      case 'string': return make({ type: AttrType.STRING, s: a.value })
      case 'tensor': return make({ type: AttrType.TENSOR, t: this.tensor(a.value, a.value.name) })
      case 'graph': return make({ type: AttrType.GRAPH, g: this.graph(a.value) })
      case 'floats': return make({ type: AttrType.FLOATS, floats: a.value })
      case 'ints': return make({ type: AttrType.INTS, ints: a.value.map(long) })
      case 'strings': return make({ type: AttrType.STRINGS, strings: a.value })
      case 'tensors': return make({ type: AttrType.TENSORS, tensors: a.value.map((t) => this.tensor(t, t.name)) })
      case 'graphs': return make({ type: AttrType.GRAPHS, graphs: a.value.map((g) => this.graph(g)) })
      case 'raw': return onnx.AttributeProto.create({ ...a.value, name })
      default:
        throw new OnnxFormatError(`${where}: unknown attribute kind ${JSON.stringify((a as { type: unknown }).type)}`)
    }
  }

  node(n: Node): onnx.NodeProto {
    const where = `node ${JSON.stringify(n.name)} (${n.opType})`
    const fields: onnx.INodeProto = {
      ...n.extra,
      input: n.inputs,
      output: n.outputs,
      opType: n.opType,
      attribute: [...n.attributes].map(([k, v]) => this.attribute(k, v, `${where} attribute ${JSON.stringify(k)}`)),
    }
    if (n.name) fields.name = n.name
    if (n.domain) fields.domain = n.domain
    if (n.docString) fields.docString = n.docString
    return onnx.NodeProto.create(fields)
  }

  graph(g: Graph): onnx.GraphProto {
    const fields: onnx.IGraphProto = {
      node: g.nodes.map((n) => this.node(n)),
      name: g.name,
      initializer: [...g.initializers].map(([name, t]) => this.tensor(t, name)),
      input: g.inputs.map(valueInfo),
      output: g.outputs.map(valueInfo),
      valueInfo: g.valueInfo.map(valueInfo),
    }
    const extra = g.extra ?? {}
    // String initializers, kept verbatim on load (tensor.ts holds numeric tensors only).
    if (extra.initializer?.length) fields.initializer!.push(...extra.initializer.map((t) => onnx.TensorProto.create(t)))
    if (extra.sparseInitializer) fields.sparseInitializer = extra.sparseInitializer
    if (extra.quantizationAnnotation) fields.quantizationAnnotation = extra.quantizationAnnotation
    if (extra.metadataProps) fields.metadataProps = extra.metadataProps
    if (g.docString) fields.docString = g.docString
    return onnx.GraphProto.create(fields)
  }
}

function dim(d: Dim): onnx.TensorShapeProto.IDimension {
  if (typeof d === 'number') return { dimValue: toLong(d) }
  if (typeof d === 'string') return { dimParam: d }
  return {}
}

function valueInfo(v: ValueInfo): onnx.ValueInfoProto {
  const fields: onnx.IValueInfoProto = { name: v.name }
  if (v.elemType !== undefined || v.shape !== undefined) {
    fields.type = {
      tensorType: { elemType: v.elemType ?? 0, ...(v.shape === undefined ? {} : { shape: { dim: v.shape.map(dim) } }) },
    }
  } else if (v.rawType) {
    fields.type = v.rawType
  }
  if (v.docString) fields.docString = v.docString
  if (v.extra?.metadataProps) fields.metadataProps = v.extra.metadataProps
  return onnx.ValueInfoProto.fromObject(fields)
}

/**
 * Builds the ModelProto for `model`. Tensors in `placement` are written as external data
 * references; every other tensor is embedded.
 */
export function modelToProto(model: Model, placement: ReadonlyMap<Tensor, ExternalPlacement> = new Map()): onnx.ModelProto {
  const w = new Writer(placement)
  const fields: onnx.IModelProto = {
    irVersion: toLong(model.irVersion),
    opsetImport: model.opsetImports.map((o) => ({ domain: o.domain, version: toLong(o.version) })),
    graph: w.graph(model.graph),
    metadataProps: model.metadataProps.map((p) => ({ key: p.key, value: p.value })),
  }
  if (model.producerName !== undefined) fields.producerName = model.producerName
  if (model.producerVersion !== undefined) fields.producerVersion = model.producerVersion
  if (model.domain !== undefined) fields.domain = model.domain
  if (model.modelVersion !== undefined) fields.modelVersion = toLong(model.modelVersion)
  if (model.docString !== undefined) fields.docString = model.docString
  const extra = model.extra ?? {}
  if (extra.functions) fields.functions = extra.functions
  if (extra.trainingInfo) fields.trainingInfo = extra.trainingInfo
  if (extra.configuration) fields.configuration = extra.configuration
  return onnx.ModelProto.fromObject(fields)
}
