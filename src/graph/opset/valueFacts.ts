// What the opset upgrade needs to know about a value without running the model: its rank (Softmax's
// old axis semantics differ from the new ones unless the axis is the last one), its element type
// (Clip's min/max and Pad's constant_value become inputs that must match it) and, for constants,
// its data (Resize-10's nearest rounding depends on whether the scales up- or down-sample).
//
// This is deliberately small: value_info, graph inputs, initializers and Constant nodes seed it,
// and per-op rules carry rank and type forward through the ops the real fixtures use. Anything it
// cannot tell is `undefined`, and the converters then use a rewrite that does not need it (or
// report a blocker); a wrong answer would silently change a model, so rules are only added where
// the op's output rank/type follows from its inputs and attributes alone.
import { DataType } from '../../onnx/elementType.js'
import type { Tensor } from '../../onnx/tensor.js'
import { attrInt, attrInts } from '../attributes.js'
import type { Graph, Node } from '../model.js'
import { topologicalOrder } from '../topologicalOrder.js'

export interface ValueFacts {
  rank(name: string): number | undefined
  elemType(name: string): number | undefined
  /** The value's data when it is an initializer (not overridable by a graph input) or a Constant's `value`. */
  constant(name: string): Tensor | undefined
}

type RankRule = (node: Node, rank: (i: number) => number | undefined, facts: ValueFacts) => number | undefined

const sameAsFirst: RankRule = (_n, rank) => rank(0)

function broadcastRank(node: Node, rank: (i: number) => number | undefined): number | undefined {
  let r = 0
  for (let i = 0; i < node.inputs.length; i++) {
    if (node.inputs[i] === '') continue
    const k = rank(i)
    if (k === undefined) return undefined
    r = Math.max(r, k)
  }
  return r
}

const ELEMENTWISE = [
  'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Equal', 'Greater', 'Less', 'GreaterOrEqual',
  'LessOrEqual', 'And', 'Or', 'Xor', 'Where', 'PRelu', 'Mod', 'BitShift',
]
const SAME_RANK = [
  'Relu', 'Sigmoid', 'Tanh', 'Sqrt', 'Exp', 'Log', 'Neg', 'Abs', 'Floor', 'Ceil', 'Round', 'Reciprocal', 'Erf', 'Sin',
  'Cos', 'Not', 'Sign', 'Clip', 'Cast', 'CastLike', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Elu', 'Selu', 'Softplus',
  'Softsign', 'Gelu', 'Identity', 'Dropout', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization',
  'LRN', 'Softmax', 'LogSoftmax', 'Hardmax', 'Conv', 'ConvTranspose', 'AveragePool', 'MaxPool', 'LpPool',
  'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool', 'Resize', 'Upsample', 'Pad', 'Slice', 'Concat', 'Split',
  'Tile', 'Transpose', 'DepthToSpace', 'SpaceToDepth', 'QuantizeLinear', 'DequantizeLinear', 'CumSum', 'ScatterND',
  'ScatterElements', 'GatherElements', 'TopK', 'Trilu',
]
const REDUCE = [
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
  'ReduceLogSumExp', 'ReduceSumSquare', 'ArgMax', 'ArgMin',
]

/** Output 0's rank by op type (other outputs: Split's and TopK's share it; the rest are unknown). */
const RANK_RULES: Record<string, RankRule> = {
  ...Object.fromEntries(ELEMENTWISE.map((op) => [op, (n: Node, r: (i: number) => number | undefined) => broadcastRank(n, r)])),
  ...Object.fromEntries(SAME_RANK.map((op) => [op, sameAsFirst])),
  ...Object.fromEntries(
    REDUCE.map((op): [string, RankRule] => [
      op,
      (n, rank, facts) => {
        const r = rank(0)
        if (r === undefined) return undefined
        if (attrInt(n, 'keepdims', 1) === 1) return r
        if (op === 'ArgMax' || op === 'ArgMin') return r - 1
        const axes = attrInts(n, 'axes') ?? intData(facts.constant(n.inputs[1] ?? ''))
        if (axes === undefined) return n.inputs[1] ? undefined : 0
        return r - new Set(axes.map((a) => (a < 0 ? a + r : a))).size
      },
    ]),
  ),
  MatMul: (_n, rank) => {
    const a = rank(0)
    const b = rank(1)
    if (a === undefined || b === undefined) return undefined
    if (a === 1 && b === 1) return 0
    if (a === 1) return b - 1
    if (b === 1) return a - 1
    return Math.max(a, b)
  },
  Gemm: () => 2,
  Flatten: () => 2,
  Shape: () => 1,
  Size: () => 0,
  NonZero: () => 2,
  Gather: (_n, rank) => {
    const a = rank(0)
    const b = rank(1)
    return a === undefined || b === undefined ? undefined : a + b - 1
  },
  Squeeze: (n, rank, facts) => {
    const r = rank(0)
    const axes = attrInts(n, 'axes') ?? intData(facts.constant(n.inputs[1] ?? ''))
    return r === undefined || axes === undefined ? undefined : r - axes.length
  },
  Unsqueeze: (n, rank, facts) => {
    const r = rank(0)
    const axes = attrInts(n, 'axes') ?? intData(facts.constant(n.inputs[1] ?? ''))
    return r === undefined || axes === undefined ? undefined : r + axes.length
  },
  Reshape: (n, _rank, facts) => lengthOf(n.inputs[1], facts),
  Expand: (n, rank, facts) => {
    const r = rank(0)
    const l = lengthOf(n.inputs[1], facts)
    return r === undefined || l === undefined ? undefined : Math.max(r, l)
  },
  ConstantOfShape: (n, _rank, facts) => lengthOf(n.inputs[0], facts),
  Range: () => 1,
  Einsum: () => undefined,
}

/** Output element type by op type; ops not listed keep input 0's type. */
const TYPE_RULES: Record<string, (node: Node, type: (i: number) => number | undefined) => number | undefined> = {
  Cast: (n) => attrInt(n, 'to'),
  CastLike: (_n, type) => type(1),
  Shape: () => DataType.INT64,
  Size: () => DataType.INT64,
  NonZero: () => DataType.INT64,
  ArgMax: () => DataType.INT64,
  ArgMin: () => DataType.INT64,
  Equal: () => DataType.BOOL,
  Greater: () => DataType.BOOL,
  Less: () => DataType.BOOL,
  GreaterOrEqual: () => DataType.BOOL,
  LessOrEqual: () => DataType.BOOL,
  Not: () => DataType.BOOL,
  And: () => DataType.BOOL,
  Or: () => DataType.BOOL,
  Xor: () => DataType.BOOL,
  IsNaN: () => DataType.BOOL,
  IsInf: () => DataType.BOOL,
  Where: (_n, type) => type(1),
  DequantizeLinear: (_n, type) => type(1),
  QuantizeLinear: (n, type) => (n.inputs[2] ? type(2) : DataType.UINT8),
  ConstantOfShape: (n) => {
    const v = n.attributes.get('value')
    return v?.type === 'tensor' ? v.value.dataType : DataType.FLOAT
  },
  // Types these ops produce depend on more than input 0; unknown unless value_info says.
  If: () => undefined,
  Loop: () => undefined,
  Scan: () => undefined,
  Range: (_n, type) => type(0),
}

function intData(t: Tensor | undefined): number[] | undefined {
  if (!t || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32)) return undefined
  return Array.from(t.data as ArrayLike<number | bigint>, Number)
}

/** Elements a 1-D Slice (attribute or constant-input form, step 1) keeps of an input of length `length`. */
function sliceLength(node: Node, length: number | undefined, facts: ValueFacts): number | undefined {
  if (length === undefined) return undefined
  const starts = attrInts(node, 'starts') ?? intData(facts.constant(node.inputs[1] ?? ''))
  const ends = attrInts(node, 'ends') ?? intData(facts.constant(node.inputs[2] ?? ''))
  const steps = node.inputs[4] ? intData(facts.constant(node.inputs[4])) : [1]
  if (!starts || !ends || !steps || starts.length !== 1 || ends.length !== 1 || steps[0] !== 1) return undefined
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + length : v, 0), length)
  return Math.max(clamp(ends[0]!) - clamp(starts[0]!), 0)
}

/** The element count of a 1-D value (a shape tensor), from its constant data or a Shape/Concat producing it. */
function lengthOf(name: string | undefined, facts: ValueFacts & { length?(name: string): number | undefined }): number | undefined {
  if (!name) return undefined
  return facts.length?.(name)
}

/**
 * Facts about every value of `graph`, falling back to `outer` (the enclosing graph's facts) for
 * names read from an outer scope.
 */
export function valueFacts(graph: Graph, outer?: ValueFacts): ValueFacts {
  const ranks = new Map<string, number>()
  const types = new Map<string, number>()
  const constants = new Map<string, Tensor>()
  const lengths = new Map<string, number>()
  const graphInputs = new Set(graph.inputs.map((v) => v.name))

  for (const v of [...graph.inputs, ...graph.valueInfo, ...graph.outputs]) {
    if (v.shape) ranks.set(v.name, v.shape.length)
    if (v.elemType) types.set(v.name, v.elemType)
    if (v.shape?.length === 1 && typeof v.shape[0] === 'number') lengths.set(v.name, v.shape[0])
  }
  for (const [name, t] of graph.initializers) {
    ranks.set(name, t.dims.length)
    types.set(name, t.dataType)
    if (t.dims.length === 1) lengths.set(name, t.dims[0]!)
    if (!graphInputs.has(name)) constants.set(name, t)
  }

  const facts: ValueFacts & { length(name: string): number | undefined } = {
    rank: (name) => ranks.get(name) ?? outer?.rank(name),
    elemType: (name) => types.get(name) ?? outer?.elemType(name),
    constant: (name) => constants.get(name) ?? outer?.constant(name),
    length: (name) => {
      const own = lengths.get(name)
      if (own !== undefined) return own
      const c = outer?.constant(name)
      return c && c.dims.length === 1 ? c.dims[0] : undefined
    },
  }

  let order: Node[]
  try {
    order = topologicalOrder(graph)
  } catch {
    order = graph.nodes
  }
  for (const node of order) {
    const out = node.outputs[0]
    if (!out) continue
    if (node.opType === 'Constant' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const v = node.attributes.get('value')
      if (v?.type === 'tensor') {
        constants.set(out, v.value)
        if (!ranks.has(out)) ranks.set(out, v.value.dims.length)
        if (!types.has(out)) types.set(out, v.value.dataType)
        if (v.value.dims.length === 1) lengths.set(out, v.value.dims[0]!)
      }
      continue
    }
    if (node.domain !== '' && node.domain !== 'ai.onnx') continue
    const rankOf = (i: number) => (node.inputs[i] ? facts.rank(node.inputs[i]!) : undefined)
    const typeOf = (i: number) => (node.inputs[i] ? facts.elemType(node.inputs[i]!) : undefined)
    const rule = RANK_RULES[node.opType]
    const r = rule ? rule(node, rankOf, facts) : undefined
    const typeRule = TYPE_RULES[node.opType]
    const t = typeRule ? typeRule(node, typeOf) : typeOf(0)
    const multi = node.opType === 'Split' || node.opType === 'TopK' ? node.outputs : [out]
    for (const o of multi) {
      if (o === '') continue
      if (r !== undefined && !ranks.has(o)) ranks.set(o, r)
      if (t !== undefined && !types.has(o) && (node.opType !== 'TopK' || o === out)) types.set(o, t)
    }
    if (node.opType === 'Shape' && !lengths.has(out)) {
      const x = facts.rank(node.inputs[0] ?? '')
      const start = attrInt(node, 'start', 0)
      const end = attrInt(node, 'end')
      if (x !== undefined && start === 0 && end === undefined) lengths.set(out, x)
    }
    if ((node.opType === 'Cast' || node.opType === 'Identity') && !lengths.has(out)) {
      const l = facts.length(node.inputs[0] ?? '')
      if (l !== undefined) lengths.set(out, l)
    }
    if (node.opType === 'Slice' && !lengths.has(out)) {
      const l = sliceLength(node, facts.length(node.inputs[0] ?? ''), facts)
      if (l !== undefined) lengths.set(out, l)
    }
    if (node.opType === 'Concat' && !lengths.has(out) && facts.rank(node.inputs[0] ?? '') === 1) {
      let total = 0
      for (const i of node.inputs) {
        const l = facts.length(i)
        if (l === undefined) {
          total = NaN
          break
        }
        total += l
      }
      if (!Number.isNaN(total)) lengths.set(out, total)
    }
  }
  return facts
}
