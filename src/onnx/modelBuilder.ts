// Builds small ONNX models from a plain description: one-node conformance models for tests, and
// the pieces later passes emit. Returns serialized ModelProto bytes.

import { onnx } from '../../generated/onnx.js'
import { OnnxFormatError } from '../errors.js'
import { elementType } from './elementType.js'
import { tensorToProto, type Tensor } from './tensor.js'
import { toLong, type Long } from './int64.js'
import { minIrVersion, type OpsetId } from './versionTable.js'

export interface ValueInfoSpec {
  name: string
  /** TensorProto.DataType number (see `DataType`). */
  dataType: number
  /** Sizes; a string is a symbolic dim (dim_param), null an unknown one. Omit for unknown rank. */
  dims?: (number | string | null)[]
}

/** An attribute whose ONNX type is given explicitly, e.g. `{ type: 'FLOAT', value: 1 }`. */
export type TypedAttribute =
  | { type: 'INT'; value: number | bigint }
  | { type: 'INTS'; value: (number | bigint)[] }
  | { type: 'FLOAT'; value: number }
  | { type: 'FLOATS'; value: number[] }
  | { type: 'STRING'; value: string }
  | { type: 'STRINGS'; value: string[] }
  | { type: 'TENSOR'; value: Tensor }
  | { type: 'TENSORS'; value: Tensor[] }
  /** A subgraph (If's branches, Loop's and Scan's bodies). */
  | { type: 'GRAPH'; value: GraphSpec }
  | { type: 'GRAPHS'; value: GraphSpec[] }

/**
 * An attribute value. Untagged values are typed by their JS form: an integer number or a bigint is
 * INT, any other number FLOAT; an array of integers INTS, with any non-integer FLOATS (an empty
 * array is INTS); string STRING, string[] STRINGS, Tensor TENSOR, Tensor[] TENSORS.
 * Use a TypedAttribute where that guess is wrong (a FLOAT attribute equal to 1, an empty FLOATS).
 */
export type AttributeValue =
  | number
  | bigint
  | (number | bigint)[]
  | string
  | string[]
  | Tensor
  | Tensor[]
  | TypedAttribute

export interface NodeSpec {
  opType: string
  inputs: string[]
  outputs: string[]
  attributes?: Record<string, AttributeValue>
  /** '' or omitted for ai.onnx. */
  domain?: string
  /** Defaults to `${opType}_${index}`. */
  name?: string
}

/** A graph: the model's main graph, or a subgraph given as a GRAPH attribute. */
export interface GraphSpec {
  inputs: ValueInfoSpec[]
  outputs: ValueInfoSpec[]
  initializers?: Tensor[]
  nodes: NodeSpec[]
  /** Defaults to 'graph'. */
  name?: string
}

export interface ModelSpec {
  /** A number is the ai.onnx opset; a list imports each domain at its version. */
  opset: number | OpsetId[]
  /** Defaults to the smallest IR version carrying the opsets (versionTable.ts). */
  irVersion?: number
  inputs: ValueInfoSpec[]
  outputs: ValueInfoSpec[]
  initializers?: Tensor[]
  nodes: NodeSpec[]
  graphName?: string
  producerName?: string
}

const AttrType = onnx.AttributeProto.AttributeType

function isTensor(v: unknown): v is Tensor {
  return typeof v === 'object' && v !== null && 'dataType' in v && 'dims' in v && 'data' in v
}

function typeAttribute(value: AttributeValue, where: string): TypedAttribute {
  if (typeof value === 'number') return Number.isInteger(value) ? { type: 'INT', value } : { type: 'FLOAT', value }
  if (typeof value === 'bigint') return { type: 'INT', value }
  if (typeof value === 'string') return { type: 'STRING', value }
  if (Array.isArray(value)) {
    const items = value as unknown[]
    if (items.every((v) => typeof v === 'string')) return items.length > 0 ? { type: 'STRINGS', value: items as string[] } : { type: 'INTS', value: [] }
    if (items.every((v) => typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)))) {
      return { type: 'INTS', value: items as (number | bigint)[] }
    }
    if (items.every((v) => typeof v === 'number')) return { type: 'FLOATS', value: items as number[] }
    if (items.every(isTensor)) return { type: 'TENSORS', value: items }
    throw new OnnxFormatError(`${where}: an attribute list must hold only numbers, only strings or only tensors`)
  }
  if (isTensor(value)) return { type: 'TENSOR', value }
  if (typeof value === 'object' && value !== null && 'type' in value && 'value' in value) return value
  throw new OnnxFormatError(`${where}: cannot tell the ONNX attribute type of ${String(value)}`)
}

function int64Field(v: number | bigint, where: string): Long {
  try {
    return toLong(v)
  } catch (e) {
    throw new OnnxFormatError(`${where}: ${(e as Error).message} (INT attributes need int64 values; use a bigint beyond 2^53)`)
  }
}

function attributeProto(name: string, value: AttributeValue, where: string, imported: ReadonlySet<string>): onnx.AttributeProto {
  const a = typeAttribute(value, where)
  switch (a.type) {
    case 'INT':
      return onnx.AttributeProto.create({ name, type: AttrType.INT, i: int64Field(a.value, where) })
    case 'INTS':
      return onnx.AttributeProto.create({
        name,
        type: AttrType.INTS,
        ints: a.value.map((v) => int64Field(v, where)),
      })
    case 'FLOAT':
      return onnx.AttributeProto.create({ name, type: AttrType.FLOAT, f: a.value })
    case 'FLOATS':
      return onnx.AttributeProto.create({ name, type: AttrType.FLOATS, floats: a.value })
    case 'STRING':
      return onnx.AttributeProto.create({ name, type: AttrType.STRING, s: Buffer.from(a.value, 'utf8') })
    case 'STRINGS':
      return onnx.AttributeProto.create({ name, type: AttrType.STRINGS, strings: a.value.map((s) => Buffer.from(s, 'utf8')) })
    case 'TENSOR':
      return onnx.AttributeProto.create({ name, type: AttrType.TENSOR, t: tensorToProto(a.value) })
    case 'TENSORS':
      return onnx.AttributeProto.create({ name, type: AttrType.TENSORS, tensors: a.value.map(tensorToProto) })
    case 'GRAPH':
      return onnx.AttributeProto.create({ name, type: AttrType.GRAPH, g: graphProto(a.value, imported, `${where} graph`) })
    case 'GRAPHS':
      return onnx.AttributeProto.create({
        name,
        type: AttrType.GRAPHS,
        graphs: a.value.map((g, i) => graphProto(g, imported, `${where} graph ${i}`)),
      })
    default:
      throw new OnnxFormatError(`${where}: unknown attribute type ${JSON.stringify((a as { type: unknown }).type)}`)
  }
}

function valueInfoProto(v: ValueInfoSpec, where: string): onnx.ValueInfoProto {
  elementType(v.dataType, `${where} ${JSON.stringify(v.name)}`)
  const shape =
    v.dims === undefined
      ? undefined
      : {
          dim: v.dims.map((d) =>
            typeof d === 'number' ? { dimValue: toLong(d) } : typeof d === 'string' ? { dimParam: d } : {},
          ),
        }
  return onnx.ValueInfoProto.create({ name: v.name, type: { tensorType: { elemType: v.dataType, shape } } })
}

function normalizeOpsets(opset: ModelSpec['opset']): OpsetId[] {
  const list = typeof opset === 'number' ? [{ domain: '', version: opset }] : opset
  return list.map(({ domain, version }) => ({ domain: domain === 'ai.onnx' ? '' : domain, version }))
}

function graphProto(spec: GraphSpec, imported: ReadonlySet<string>, where: string): onnx.GraphProto {
  const nodes = spec.nodes.map((n, index) => {
    const name = n.name ?? `${n.opType}_${index}`
    const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '')
    if (!imported.has(domain)) {
      throw new OnnxFormatError(`node ${JSON.stringify(name)}: domain ${JSON.stringify(domain || 'ai.onnx')} is not among the model's opsets`)
    }
    const attribute = Object.entries(n.attributes ?? {}).map(([key, value]) =>
      attributeProto(key, value, `node ${JSON.stringify(name)} attribute ${JSON.stringify(key)}`, imported),
    )
    return onnx.NodeProto.create({ name, opType: n.opType, domain, input: n.inputs, output: n.outputs, attribute })
  })
  return onnx.GraphProto.create({
    name: spec.name ?? 'graph',
    node: nodes,
    initializer: (spec.initializers ?? []).map(tensorToProto),
    input: spec.inputs.map((v) => valueInfoProto(v, `${where} input`)),
    output: spec.outputs.map((v) => valueInfoProto(v, `${where} output`)),
  })
}

/** Serializes a model described by `spec` to ModelProto bytes. */
export function buildModel(spec: ModelSpec): Uint8Array {
  const opsets = normalizeOpsets(spec.opset)
  const imported = new Set(opsets.map((o) => o.domain))
  const irVersion = spec.irVersion ?? minIrVersion(opsets)

  const model = onnx.ModelProto.create({
    irVersion: toLong(irVersion),
    producerName: spec.producerName ?? 'quantkit',
    opsetImport: opsets.map((o) => onnx.OperatorSetIdProto.create({ domain: o.domain, version: toLong(o.version) })),
    graph: graphProto({ ...spec, name: spec.graphName }, imported, 'graph'),
  })
  return onnx.ModelProto.encode(model).finish()
}
