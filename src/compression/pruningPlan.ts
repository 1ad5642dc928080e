// Where channel pruning may remove a Conv's input channels exactly: walking up from the Conv's
// input through per-channel ops (activations, pooling, BN, depthwise Convs, per-channel constants)
// to the Conv that produces those channels, whose output channels then go too (AIMET's winnowing,
// aimet_common/winnow, restricted to chains it can narrow without inserting ops). Anything else — a graph input, Concat, Reshape/Flatten, an Add of
// two tensors (a residual), a value read by a second node — stops the walk and the layer is
// skipped with the reason.
//
// Per-op rules are data (PASS_THROUGH): which of the op's initializers carry one value per channel
// and must be narrowed with it.
import { attrInt } from '../graph/attributes.js'
import type { GraphIndex } from '../graph/graphIndex.js'
import type { Graph, Node } from '../graph/model.js'
import type { Tensor } from '../onnx/tensor.js'
import { gatherAxis } from './pruningKernels.js'

const q = JSON.stringify
const FLOAT = 1

/** An initializer that loses the pruned channels along `axis`. */
export interface ChannelSlice {
  tensor: string
  axis: number
}

export interface PruningPlan {
  consumer: Node
  /** The Conv (or ConvTranspose) whose output channels are removed. */
  producer: Node
  /** The per-channel nodes between producer and consumer, producer side first (depthwise Convs among them). */
  chain: Node[]
  /** Values whose channel dimension (1) shrinks: the producer's output … the consumer's input. */
  values: string[]
  /** Initializers narrowed with the channels (producer weight and bias, per-channel parameters). */
  slices: ChannelSlice[]
}

export type PlanResult = { plan: PruningPlan } | { reason: string }

type Rule = (node: Node, graph: Graph, channels: number) => { data: string; slices: ChannelSlice[] } | { reason: string }

const unary: Rule = (node) => ({ data: node.inputs[0]!, slices: [] })

/** Inputs 1.. of the node each hold one value per channel (BatchNormalization, InstanceNormalization). */
const perChannelInputs = (count: number): Rule => (node, graph, channels) => {
  const slices: ChannelSlice[] = []
  for (const name of node.inputs.slice(1, 1 + count)) {
    const t = graph.initializers.get(name)
    if (!t || t.dataType !== FLOAT || t.dims.length !== 1 || t.dims[0] !== channels) return { reason: `its parameter ${q(name)} is not a float32 constant with one value per channel` }
    slices.push({ tensor: name, axis: 0 })
  }
  return { data: node.inputs[0]!, slices }
}

/**
 * A constant operand broadcast against an NCHW value: a scalar (nothing to narrow) or one value
 * per channel ([C, 1, 1] or [1, C, 1, 1]); anything else mixes channels or spatial positions.
 */
function channelConstant(t: Tensor, channels: number): ChannelSlice | null | undefined {
  const n = t.dims.reduce((a, b) => a * b, 1)
  if (n === 1) return null
  const d = t.dims
  if (d.length === 3 && d[0] === channels && d[1] === 1 && d[2] === 1) return { tensor: t.name, axis: 0 }
  if (d.length === 4 && d[0] === 1 && d[1] === channels && d[2] === 1 && d[3] === 1) return { tensor: t.name, axis: 1 }
  return undefined
}

/** Add/Sub/Mul/Div/PRelu with one constant operand that is a scalar or per-channel. */
const withConstant: Rule = (node, graph, channels) => {
  const consts = node.inputs.filter((i) => graph.initializers.has(i))
  const data = node.inputs.filter((i) => !graph.initializers.has(i))
  if (data.length !== 1 || consts.length !== 1) {
    return { reason: `it combines ${data.length} computed tensors (a residual or a join); removing channels of one side only would not be exact` }
  }
  const t = graph.initializers.get(consts[0]!)!
  if (t.dataType !== FLOAT) return { reason: `its constant ${q(t.name)} is not float32` }
  const slice = channelConstant(t, channels)
  if (slice === undefined) return { reason: `its constant ${q(t.name)} [${t.dims.join(', ')}] is neither a scalar nor one value per channel` }
  return { data: data[0]!, slices: slice ? [slice] : [] }
}

/** Ops that act on each channel separately, and their per-channel parameters. */
export const PASS_THROUGH: Readonly<Record<string, Rule>> = {
  Relu: unary, LeakyRelu: unary, Elu: unary, Selu: unary, Celu: unary, Sigmoid: unary, HardSigmoid: unary,
  HardSwish: unary, Tanh: unary, Softplus: unary, Softsign: unary, Mish: unary, Gelu: unary, Abs: unary, Neg: unary,
  Identity: unary, Dropout: unary, Clip: unary,
  MaxPool: unary, AveragePool: unary, LpPool: unary, GlobalAveragePool: unary, GlobalMaxPool: unary, GlobalLpPool: unary,
  BatchNormalization: perChannelInputs(4), InstanceNormalization: perChannelInputs(2),
  Add: withConstant, Sub: withConstant, Mul: withConstant, Div: withConstant, PRelu: withConstant,
}

/** True when `name` is read only by `node` (once, or more than once by the same node). */
function onlyReader(index: GraphIndex, name: string, node: Node): boolean {
  return index.consumerNodes(name).every((n) => n === node)
}

/**
 * How to remove input channels of `consumer` (a Conv with C input channels) exactly, or why not.
 * Extra outputs (MaxPool indices, Dropout mask, BN training outputs) must be unused.
 */
export function planInputPruning(graph: Graph, index: GraphIndex, consumer: Node, channels: number): PlanResult {
  const chain: Node[] = []
  const values: string[] = []
  const slices: ChannelSlice[] = []
  let down = consumer
  let v = consumer.inputs[0]!
  for (;;) {
    if (index.isGraphInput(v)) return { reason: `its input comes straight from the graph input ${q(v)}, whose channels cannot be removed` }
    if (index.isInitializer(v) || index.isOuterScope(v)) return { reason: `its input ${q(v)} is a constant or outer-scope value` }
    if (index.isGraphOutput(v)) return { reason: `the value ${q(v)} on the way to its producer is a graph output, which would change shape` }
    if (!onlyReader(index, v, down)) {
      const others = index.consumerNodes(v).filter((n) => n !== down).map((n) => q(n.name))
      return { reason: `the value ${q(v)} is also read by ${others.join(', ')}; removing its channels would change those nodes` }
    }
    values.unshift(v)
    const p = index.producer(v)
    if (!p) return { reason: `nothing in the graph produces its input ${q(v)}` }
    const node = p.node
    if (p.outputIndex !== 0 || node.outputs.slice(1).some((o) => o !== '' && (index.consumers(o).length > 0 || index.isGraphOutput(o)))) {
      return { reason: `its input comes from ${node.opType} node ${q(node.name)} whose other outputs are used` }
    }
    if (node.domain === '' || node.domain === 'ai.onnx') {
      if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
        const w = graph.initializers.get(node.inputs[1] ?? '')
        if (!w || w.dataType !== FLOAT) return { reason: `its producer ${node.opType} ${q(node.name)} has no float32 constant weight` }
        const group = attrInt(node, 'group', 1)
        if (node.opType === 'Conv' && group === channels && w.dims[0] === channels && w.dims[1] === 1) {
          // Depthwise (one filter per channel): a per-channel op whose weight, bias and group shrink with the channels.
          const b = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined
          if (node.inputs[2] && (!b || b.dataType !== FLOAT)) return { reason: `depthwise Conv ${q(node.name)} on the way has a bias that is not a float32 constant` }
          slices.unshift({ tensor: w.name, axis: 0 }, ...(b ? [{ tensor: b.name, axis: 0 }] : []))
          chain.unshift(node)
          down = node
          v = node.inputs[0]!
          continue
        }
        if (group !== 1) return { reason: `its producer ${node.opType} ${q(node.name)} is grouped or depthwise (group ${attrInt(node, 'group', 1)}); narrowing it would change its own input channels` }
        const axis = node.opType === 'Conv' ? 0 : 1
        if (w.dims[axis] !== channels) return { reason: `its producer ${q(node.name)} has ${w.dims[axis]} output channels, expected ${channels}` }
        slices.unshift({ tensor: w.name, axis })
        const b = node.inputs[2] ? graph.initializers.get(node.inputs[2]) : undefined
        if (node.inputs[2] && (!b || b.dataType !== FLOAT)) return { reason: `its producer ${q(node.name)} has a bias that is not a float32 constant` }
        if (b) slices.unshift({ tensor: b.name, axis: 0 })
        const owners = new Set<Node>([node, ...chain])
        for (const s of slices) {
          if (index.consumerNodes(s.tensor).some((n) => !owners.has(n)) || index.isGraphOutput(s.tensor)) {
            return { reason: `the initializer ${q(s.tensor)} is shared with nodes outside the pruned chain` }
          }
        }
        return { plan: { consumer, producer: node, chain, values, slices } }
      }
      const rule = PASS_THROUGH[node.opType]
      if (rule) {
        const r = rule(node, graph, channels)
        if ('reason' in r) return { reason: `${node.opType} node ${q(node.name)} on the way to its producer: ${r.reason}` }
        chain.unshift(node)
        slices.unshift(...r.slices)
        down = node
        v = r.data
        continue
      }
    }
    return { reason: `its input comes from ${node.opType} node ${q(node.name)}, which channel pruning cannot narrow exactly (only a Conv producer through per-channel ops)` }
  }
}

/**
 * Narrows `graph` (a copy the caller owns) along `plan`: every sliced initializer keeps only the
 * `keep` channels (new arrays; the shared originals are untouched), depthwise Convs on the way
 * get `group` = the kept count, and value_info of the values in between records it too.
 */
export function narrowProducer(graph: Graph, plan: PruningPlan, keep: Uint32Array): void {
  for (const s of plan.slices) {
    const t = graph.initializers.get(s.tensor)!
    const data = gatherAxis(t.data as Float32Array, t.dims, s.axis, keep)
    const dims = [...t.dims]
    dims[s.axis] = keep.length
    graph.initializers.set(s.tensor, { ...t, dims, data })
  }
  for (const n of plan.chain) {
    if (n.opType !== 'Conv') continue
    const node = graph.nodes.find((x) => x.name === n.name && x.opType === 'Conv')!
    node.attributes.set('group', { type: 'int', value: keep.length })
  }
  const values = new Set(plan.values)
  graph.valueInfo = graph.valueInfo.map((vi) =>
    values.has(vi.name) && vi.shape && vi.shape.length >= 2 ? { ...vi, shape: vi.shape.map((d, i) => (i === 1 ? keep.length : d)) } : vi)
}
