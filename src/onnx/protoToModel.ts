// ModelProto (decoded by generated/onnx.js) → quantkit's IR (src/graph/model.ts).
//
// Graphs convert recursively, so If/Loop/Scan bodies are IR graphs too. Tensors become typed
// arrays (tensor.ts copies raw_data once into an aligned array); external tensors get a
// placeholder and an ExternalRequest that loadModel fulfils afterwards. What the IR does not
// interpret is kept verbatim in `extra`, re-encoded once so that it holds no view into the file's
// buffer (a byte field decoded by protobufjs is a subarray of the whole file, which would keep
// the file in memory for as long as the model lives).
//
// Not kept (they do not change what a runtime computes, and the IR has no place for them):
// AttributeProto.doc_string, TensorProto.metadata_props, and
// `denotation` on tensor types and dimensions.

import { onnx } from '../../generated/onnx.js'
import { ExternalDataError, OnnxFormatError } from '../errors.js'
import type { AttributeValue, Dim, Graph, Model, Node, ValueInfo } from '../graph/model.js'
import { externalRequest, type ExternalRequest } from './externalData.js'
import { longToNumber, type LongLike } from './int64.js'
import { tensorFromProto, type Tensor } from './tensor.js'
import { DataType } from './elementType.js'

/** IR versions quantkit reads: 3 (the first with opset_import) to 12 (onnx 1.19). */
export const MIN_IR_VERSION = 3
export const MAX_IR_VERSION = 12

interface Context {
  /** The model file, or a description of the bytes, for messages. */
  file: string
  external: ExternalRequest[]
}

const AttrType = onnx.AttributeProto.AttributeType
/** String tensors are not numeric (no typed array holds them): kept verbatim rather than refused. */
const isStringTensor = (t: onnx.ITensorProto): boolean => t.dataType === DataType.STRING
const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL

function has(message: object, field: string): boolean {
  const v = (message as Record<string, unknown>)[field]
  return Object.prototype.hasOwnProperty.call(message, field) && v != null
}

/** Prefixes an error's message with where it happened, keeping its class and details. */
function within(prefix: string, e: unknown): Error {
  if (e instanceof ExternalDataError) return e // already names the file and the tensor
  if (e instanceof OnnxFormatError) {
    const wrapped = new OnnxFormatError(`${prefix}: ${e.message}`)
    wrapped.cause = e
    return wrapped
  }
  return e as Error
}

function tensor(proto: onnx.ITensorProto, ctx: Context): Tensor {
  if (proto.dataLocation === EXTERNAL) {
    const request = externalRequest(proto, ctx.file)
    ctx.external.push(request)
    return request.tensor
  }
  const t = tensorFromProto(proto)
  if (proto.docString) t.docString = proto.docString
  return t
}

function copyBytes(b: Uint8Array | null | undefined): Uint8Array {
  return b ? Uint8Array.prototype.slice.call(b) : new Uint8Array(0)
}

/** An int64 attribute value: a number when exact, else a bigint. */
function intValue(v: LongLike): number | bigint {
  if (typeof v === 'number') return v
  const big = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)
  const signed = BigInt.asIntN(64, big)
  return signed >= BigInt(Number.MIN_SAFE_INTEGER) && signed <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(signed) : signed
}

/** Decoded messages re-encoded into their own buffer, so they share no memory with the file. */
function detach<T extends object>(codec: { encode(m: T): { finish(): Uint8Array }; decode(b: Uint8Array): T }, message: T): T {
  return codec.decode(codec.encode(message).finish())
}

/** The attribute's type; old files leave `type` unset, so it is inferred from the field present. */
function attributeType(a: onnx.IAttributeProto): number {
  if (a.type) return a.type
  const single: [string, number][] = [
    ['f', AttrType.FLOAT], ['i', AttrType.INT], ['s', AttrType.STRING], ['t', AttrType.TENSOR], ['g', AttrType.GRAPH],
    ['sparseTensor', AttrType.SPARSE_TENSOR], ['tp', AttrType.TYPE_PROTO],
  ]
  const repeated: [keyof onnx.IAttributeProto, number][] = [
    ['floats', AttrType.FLOATS], ['ints', AttrType.INTS], ['strings', AttrType.STRINGS], ['tensors', AttrType.TENSORS],
    ['graphs', AttrType.GRAPHS], ['sparseTensors', AttrType.SPARSE_TENSORS], ['typeProtos', AttrType.TYPE_PROTOS],
  ]
  for (const [field, type] of single) if (has(a, field)) return type
  for (const [field, type] of repeated) if (((a[field] as unknown[] | undefined) ?? []).length > 0) return type
  return AttrType.UNDEFINED
}

function raw(a: onnx.IAttributeProto): AttributeValue {
  return { type: 'raw', value: detach(onnx.AttributeProto, onnx.AttributeProto.fromObject(a)) }
}

function attribute(a: onnx.IAttributeProto, ctx: Context): AttributeValue {
  if (a.refAttrName) return raw(a) // a reference to a function's attribute, not a value
  const type = attributeType(a)
  const need = <T>(v: T | null | undefined, field: string): T => {
    if (v == null) throw new OnnxFormatError(`attribute type is ${AttrType[type]} but field ${field} is missing`)
    return v
  }
  switch (type) {
    case AttrType.FLOAT: return { type: 'float', value: a.f ?? 0 }
    case AttrType.INT: return { type: 'int', value: intValue(a.i ?? 0) }
    case AttrType.STRING: return { type: 'string', value: copyBytes(a.s) }
    case AttrType.TENSOR: {
      const t = need(a.t, 't')
      return isStringTensor(t) ? raw(a) : { type: 'tensor', value: tensor(t, ctx) }
    }
    case AttrType.GRAPH: return { type: 'graph', value: graph(need(a.g, 'g'), ctx) }
    case AttrType.FLOATS: return { type: 'floats', value: [...(a.floats ?? [])] }
    case AttrType.INTS: return { type: 'ints', value: (a.ints ?? []).map(intValue) }
    case AttrType.STRINGS: return { type: 'strings', value: (a.strings ?? []).map(copyBytes) }
    case AttrType.TENSORS: {
      const list = a.tensors ?? []
      return list.some(isStringTensor) ? raw(a) : { type: 'tensors', value: list.map((t) => tensor(t, ctx)) }
    }
    case AttrType.GRAPHS: return { type: 'graphs', value: (a.graphs ?? []).map((g) => graph(g, ctx)) }
    default: return raw(a) // sparse tensors, type protos, or nothing set
  }
}

function node(n: onnx.INodeProto, index: number, ctx: Context): Node {
  const name = n.name ?? ''
  const attributes = new Map<string, AttributeValue>()
  for (const a of n.attribute ?? []) {
    const key = a.name ?? ''
    const where = `node ${JSON.stringify(name || `#${index}`)} (${n.opType ?? '?'}) attribute ${JSON.stringify(key)}`
    if (attributes.has(key)) throw new OnnxFormatError(`${where}: appears twice`)
    try {
      attributes.set(key, attribute(a, ctx))
    } catch (e) {
      throw within(where, e)
    }
  }
  const out: Node = {
    name,
    opType: n.opType ?? '',
    domain: n.domain ?? '',
    inputs: [...(n.input ?? [])],
    outputs: [...(n.output ?? [])],
    attributes,
  }
  if (n.docString) out.docString = n.docString
  const extra: Partial<onnx.INodeProto> = {}
  if (n.overload) extra.overload = n.overload
  if (n.metadataProps?.length) extra.metadataProps = n.metadataProps
  if (n.deviceConfigurations?.length) extra.deviceConfigurations = n.deviceConfigurations
  if (Object.keys(extra).length > 0) out.extra = extra
  return out
}

function dim(d: onnx.TensorShapeProto.IDimension, where: string): Dim {
  if (has(d, 'dimValue')) return longToNumber(d.dimValue!, where)
  if (has(d, 'dimParam')) return d.dimParam!
  return null
}

function valueInfo(v: onnx.IValueInfoProto): ValueInfo {
  const out: ValueInfo = { name: v.name ?? '' }
  const t = v.type
  if (t) {
    if (has(t, 'tensorType') && t.tensorType) {
      out.elemType = t.tensorType.elemType ?? 0
      if (t.tensorType.shape) {
        out.shape = (t.tensorType.shape.dim ?? []).map((d, i) => dim(d, `value ${JSON.stringify(out.name)}: dim ${i}`))
      }
    } else {
      out.rawType = t // holds no bytes, so no view into the file's buffer
    }
  }
  if (v.docString) out.docString = v.docString
  if (v.metadataProps?.length) out.extra = { metadataProps: v.metadataProps }
  return out
}

function graph(g: onnx.IGraphProto, ctx: Context): Graph {
  const name = g.name ?? ''
  const where = `graph ${JSON.stringify(name)}`
  const initializers = new Map<string, Tensor>()
  const verbatimInitializers: onnx.ITensorProto[] = []
  for (const t of g.initializer ?? []) {
    const key = t.name ?? ''
    if (initializers.has(key)) throw new OnnxFormatError(`${where}: initializer ${JSON.stringify(key)} appears twice`)
    if (isStringTensor(t)) {
      verbatimInitializers.push(t)
      continue
    }
    try {
      initializers.set(key, tensor(t, ctx))
    } catch (e) {
      throw within(`${where} initializer`, e)
    }
  }
  const out: Graph = {
    name,
    nodes: (g.node ?? []).map((n, i) => node(n, i, ctx)),
    inputs: (g.input ?? []).map(valueInfo),
    outputs: (g.output ?? []).map(valueInfo),
    valueInfo: (g.valueInfo ?? []).map(valueInfo),
    initializers,
  }
  if (g.docString) out.docString = g.docString
  const extra: onnx.IGraphProto = {}
  if (verbatimInitializers.length) extra.initializer = verbatimInitializers
  if (g.sparseInitializer?.length) extra.sparseInitializer = g.sparseInitializer
  if (g.quantizationAnnotation?.length) extra.quantizationAnnotation = g.quantizationAnnotation
  if (g.metadataProps?.length) extra.metadataProps = g.metadataProps
  if (Object.keys(extra).length > 0) {
    const copy: onnx.IGraphProto = detach(onnx.GraphProto, onnx.GraphProto.fromObject(extra))
    out.extra = Object.fromEntries(Object.keys(extra).map((k) => [k, copy[k as keyof onnx.IGraphProto]]))
  }
  return out
}

/**
 * Converts a decoded ModelProto. `file` names the model in messages; external tensors are
 * returned as requests to read, with placeholders in the model until then.
 */
export function modelFromProto(proto: onnx.IModelProto, file: string): { model: Model; external: ExternalRequest[] } {
  const ctx: Context = { file, external: [] }
  const irVersion = has(proto, 'irVersion') ? longToNumber(proto.irVersion!, 'ir_version') : 0
  if (irVersion < MIN_IR_VERSION || irVersion > MAX_IR_VERSION) {
    throw new OnnxFormatError(
      `${file}: IR version ${irVersion} is not supported; quantkit reads IR versions ${MIN_IR_VERSION} to ${MAX_IR_VERSION} ` +
        `(onnx 1.0 to 1.19)${irVersion === 0 ? ' — is this an ONNX model?' : ''}`,
    )
  }
  if (!proto.graph) throw new OnnxFormatError(`${file}: the model has no graph`)
  let g: Graph
  try {
    g = graph(proto.graph, ctx)
  } catch (e) {
    throw within(file, e)
  }
  const model: Model = {
    irVersion,
    opsetImports: (proto.opsetImport ?? []).map((o, i) => ({
      domain: o.domain ?? '',
      version: has(o, 'version') ? longToNumber(o.version!, `${file}: opset_import[${i}].version`) : 0,
    })),
    metadataProps: (proto.metadataProps ?? []).map((p) => ({ key: p.key ?? '', value: p.value ?? '' })),
    graph: g,
  }
  if (has(proto, 'producerName')) model.producerName = proto.producerName!
  if (has(proto, 'producerVersion')) model.producerVersion = proto.producerVersion!
  if (has(proto, 'domain')) model.domain = proto.domain!
  if (has(proto, 'modelVersion')) model.modelVersion = longToNumber(proto.modelVersion!, `${file}: model_version`)
  if (has(proto, 'docString')) model.docString = proto.docString!
  const extra: onnx.IModelProto = {}
  if (proto.functions?.length) extra.functions = proto.functions
  if (proto.trainingInfo?.length) extra.trainingInfo = proto.trainingInfo
  if (proto.configuration?.length) extra.configuration = proto.configuration
  if (Object.keys(extra).length > 0) {
    const copy: onnx.IModelProto = detach(onnx.ModelProto, onnx.ModelProto.fromObject(extra))
    model.extra = Object.fromEntries(Object.keys(extra).map((k) => [k, copy[k as keyof onnx.IModelProto]]))
  }
  return { model, external: ctx.external }
}
