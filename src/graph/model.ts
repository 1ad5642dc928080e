// quantkit's in-memory model: the graph IR every layer above src/onnx/ works on.
//
// It mirrors ONNX closely (so that a load → save round trip changes nothing that matters) but
// with plain JS values: tensors as typed arrays, attributes decoded, subgraphs (If/Loop/Scan
// bodies) as nested `Graph`s that stay visible to passes. What quantkit does not interpret
// (functions, training info, sparse initializers, non-tensor value types) is kept verbatim as
// protobuf objects and written back unchanged.
//
// Ownership: transforms never mutate their input model. They copy the graph structure
// (`cloneModel`) and share tensor data; a pass that changes a tensor's values makes a new typed
// array for it rather than writing into the shared one.
import type { onnx } from '../../generated/onnx.js'
import type { Tensor } from '../onnx/tensor.js'

export interface OpsetId {
  /** '' (or 'ai.onnx') for the default domain. */
  domain: string
  version: number
}

/** A dimension: a number, a symbolic name (dim_param), or null when unknown. */
export type Dim = number | string | null

export interface ValueInfo {
  name: string
  /** TensorProto.DataType of a tensor value; undefined when not a tensor or not known. */
  elemType?: number
  /** undefined when the rank is unknown. */
  shape?: Dim[]
  docString?: string
  /** The original TypeProto when it is not a plain tensor type (sequence, map, optional, sparse). */
  rawType?: onnx.ITypeProto
  /** Kept verbatim: metadata_props (torch.export writes them). */
  extra?: Partial<onnx.IValueInfoProto>
}

export type AttributeValue =
  | { type: 'float'; value: number }
  | { type: 'int'; value: number | bigint }
  | { type: 'string'; value: Uint8Array }
  | { type: 'tensor'; value: Tensor }
  | { type: 'graph'; value: Graph }
  | { type: 'floats'; value: number[] }
  | { type: 'ints'; value: (number | bigint)[] }
  | { type: 'strings'; value: Uint8Array[] }
  | { type: 'tensors'; value: Tensor[] }
  | { type: 'graphs'; value: Graph[] }
  /** Anything else (sparse tensors, type protos, ref_attr_name in functions): kept verbatim. */
  | { type: 'raw'; value: onnx.IAttributeProto }

export interface Node {
  name: string
  opType: string
  /** '' for the default ONNX domain. */
  domain: string
  /** '' marks an omitted optional input. */
  inputs: string[]
  outputs: string[]
  attributes: Map<string, AttributeValue>
  docString?: string
  /** Kept verbatim: overload, metadata_props, device configurations. */
  extra?: Partial<onnx.INodeProto>
}

export interface Graph {
  name: string
  /** In file order; `topologicalOrder()` gives an execution order. */
  nodes: Node[]
  inputs: ValueInfo[]
  outputs: ValueInfo[]
  valueInfo: ValueInfo[]
  /** Initializers by name, in file order. */
  initializers: Map<string, Tensor>
  docString?: string
  /** Kept verbatim: sparse_initializer, quantization_annotation, metadata_props. */
  extra?: Partial<onnx.IGraphProto>
}

export interface Model {
  irVersion: number
  opsetImports: OpsetId[]
  producerName?: string
  producerVersion?: string
  domain?: string
  modelVersion?: number
  docString?: string
  metadataProps: { key: string; value: string }[]
  graph: Graph
  /** Kept verbatim: functions, training_info, configuration. */
  extra?: Partial<onnx.IModelProto>
  /** The folder the model was loaded from (external data is resolved against it); undefined for bytes. */
  baseDir?: string
  /** The file the model was loaded from, for error messages. */
  path?: string
}

/** The opset version of a domain ('' and 'ai.onnx' are the same), or undefined. */
export function opsetVersion(model: Model, domain = ''): number | undefined {
  const d = domain === 'ai.onnx' ? '' : domain
  return model.opsetImports.find((o) => (o.domain === 'ai.onnx' ? '' : o.domain) === d)?.version
}

function cloneGraph(g: Graph): Graph {
  return {
    ...g,
    nodes: g.nodes.map(cloneNode),
    inputs: g.inputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    outputs: g.outputs.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    valueInfo: g.valueInfo.map((v) => ({ ...v, shape: v.shape && [...v.shape] })),
    initializers: new Map(g.initializers),
  }
}

function cloneAttribute(a: AttributeValue): AttributeValue {
  switch (a.type) {
    case 'graph': return { type: 'graph', value: cloneGraph(a.value) }
    case 'graphs': return { type: 'graphs', value: a.value.map(cloneGraph) }
    case 'floats': return { type: 'floats', value: [...a.value] }
    case 'ints': return { type: 'ints', value: [...a.value] }
    case 'strings': return { type: 'strings', value: [...a.value] }
    case 'tensors': return { type: 'tensors', value: [...a.value] }
    default: return a
  }
}

export function cloneNode(n: Node): Node {
  return {
    ...n,
    inputs: [...n.inputs],
    outputs: [...n.outputs],
    attributes: new Map([...n.attributes].map(([k, v]) => [k, cloneAttribute(v)])),
  }
}

/** A structural copy that shares tensor data (see "Ownership" above). */
export function cloneModel(m: Model): Model {
  return {
    ...m,
    opsetImports: m.opsetImports.map((o) => ({ ...o })),
    metadataProps: m.metadataProps.map((p) => ({ ...p })),
    graph: cloneGraph(m.graph),
  }
}
