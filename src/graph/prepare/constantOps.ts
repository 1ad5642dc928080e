// The ops foldConstants.ts evaluates ahead of time, implemented in TypeScript for small tensors.
//
// Why not run ONNX Runtime on the subgraph: these chains are short layout and scaling steps on
// weights (Transpose, Reshape, Cast, Unsqueeze, Mul by a constant, …), and a session per chain
// would cost more than the work, on the event loop's thread (session.run is synchronous in
// onnxruntime-node). The results match ORT bit for bit: layout ops copy, and float32 +, −, ×, ÷
// and sqrt computed in float64 and rounded once to float32 are the correctly rounded float32
// results (float64 has more than 2·24 + 2 significand bits). Ops and element types outside this
// table are left in the graph with a note.
import { DataType, elementType, type TypedArray } from '../../onnx/elementType.js'
import type { Tensor } from '../../onnx/tensor.js'
import { attrInt, attrInts } from '../attributes.js'
import type { Node } from '../model.js'

/** Largest output foldConstants evaluates (elements); bigger ones stay in the graph. */
export const MAX_FOLD_ELEMENTS = 1 << 22

/** The tensors an op produces from its constant inputs, or the reason it cannot. */
export type ConstantOp = (node: Node, inputs: (Tensor | undefined)[], opset: number) => Tensor[] | string

const count = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1)

function same(t: Tensor, dims: number[]): Tensor {
  return { ...t, dims }
}

/** Layout ops move whole elements: refuse packed 4-bit and complex types. */
function layoutOk(t: Tensor): boolean {
  return elementType(t.dataType).entriesPerElement === 1
}

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis
}

function intList(t: Tensor | undefined): number[] | undefined {
  if (!t || (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32)) return undefined
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v))
}

function transpose(t: Tensor, perm: number[]): Tensor {
  const rank = t.dims.length
  const outDims = perm.map((p) => t.dims[p]!)
  const inStrides = new Array<number>(rank)
  for (let i = rank - 1, s = 1; i >= 0; i--) {
    inStrides[i] = s
    s *= t.dims[i]!
  }
  const n = count(outDims)
  const src = t.data as unknown as ArrayLike<number | bigint> & { constructor: new (n: number) => TypedArray }
  const out = new (src.constructor as new (n: number) => TypedArray)(n) as unknown as (number | bigint)[]
  const idx = new Array<number>(rank).fill(0)
  for (let o = 0; o < n; o++) {
    let off = 0
    for (let k = 0; k < rank; k++) off += idx[k]! * inStrides[perm[k]!]!
    out[o] = src[off]!
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < outDims[k]!) break
      idx[k] = 0
    }
  }
  return { ...t, dims: outDims, data: out as unknown as TypedArray }
}

function broadcastDims(a: number[], b: number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length)
  const out: number[] = []
  for (let i = 0; i < rank; i++) {
    const x = a[a.length - rank + i] ?? 1
    const y = b[b.length - rank + i] ?? 1
    if (x !== y && x !== 1 && y !== 1) return undefined
    out.push(Math.max(x, y))
  }
  return out
}

/** Flat index into a tensor of `dims` broadcast to `outDims`, for each output position. */
function broadcastIndex(dims: number[], outDims: number[]): Int32Array {
  const n = count(outDims)
  const rank = outDims.length
  const strides = new Array<number>(rank).fill(0)
  for (let i = dims.length - 1, s = 1; i >= 0; i--) {
    const r = rank - dims.length + i
    strides[r] = dims[i] === 1 ? 0 : s
    s *= dims[i]!
  }
  const out = new Int32Array(n)
  const idx = new Array<number>(rank).fill(0)
  for (let o = 0; o < n; o++) {
    let off = 0
    for (let k = 0; k < rank; k++) off += idx[k]! * strides[k]!
    out[o] = off
    for (let k = rank - 1; k >= 0; k--) {
      if (++idx[k]! < outDims[k]!) break
      idx[k] = 0
    }
  }
  return out
}

const FLOATS: ReadonlySet<number> = new Set([DataType.FLOAT, DataType.DOUBLE])

function binary(f: (x: number, y: number) => number): ConstantOp {
  return (node, [a, b]) => {
    if (!a || !b) return 'needs two inputs'
    if (a.dataType !== b.dataType || !FLOATS.has(a.dataType)) return 'evaluates float32 or float64 operands of one type only'
    const dims = broadcastDims(a.dims, b.dims)
    if (!dims) return `shapes ${JSON.stringify(a.dims)} and ${JSON.stringify(b.dims)} do not broadcast`
    const ia = broadcastIndex(a.dims, dims)
    const ib = broadcastIndex(b.dims, dims)
    const x = a.data as Float32Array | Float64Array
    const y = b.data as Float32Array | Float64Array
    const out = a.dataType === DataType.FLOAT ? new Float32Array(ia.length) : new Float64Array(ia.length)
    for (let i = 0; i < out.length; i++) out[i] = f(x[ia[i]!]!, y[ib[i]!]!)
    return [{ name: '', dataType: a.dataType, dims, data: out }]
  }
}

function unary(f: (x: number) => number): ConstantOp {
  return (node, [a]) => {
    if (!a || !FLOATS.has(a.dataType)) return 'evaluates float32 or float64 only'
    const x = a.data as Float32Array | Float64Array
    const out = a.dataType === DataType.FLOAT ? new Float32Array(x.length) : new Float64Array(x.length)
    for (let i = 0; i < out.length; i++) out[i] = f(x[i]!)
    return [{ name: '', dataType: a.dataType, dims: [...a.dims], data: out }]
  }
}

const INT_RANGE: Partial<Record<number, [number, number]>> = {
  [DataType.INT8]: [-128, 127],
  [DataType.UINT8]: [0, 255],
  [DataType.INT16]: [-32768, 32767],
  [DataType.UINT16]: [0, 65535],
  [DataType.INT32]: [-2147483648, 2147483647],
  [DataType.UINT32]: [0, 4294967295],
  [DataType.INT64]: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
}

const cast: ConstantOp = (node, [a]) => {
  if (!a) return 'needs an input'
  const to = attrInt(node, 'to', 0)
  const fromOk = FLOATS.has(a.dataType) || INT_RANGE[a.dataType] !== undefined
  const toRange = INT_RANGE[to]
  if (!fromOk || (!FLOATS.has(to) && !toRange)) return `casts between float32, float64 and integer types only (here ${a.dataType} → ${to})`
  const src = Array.from(a.data as ArrayLike<number | bigint>, (v) => Number(v))
  if (a.dataType === DataType.INT64 && src.some((v) => !Number.isSafeInteger(v))) return 'int64 values beyond 2^53'
  let values = src
  if (toRange) {
    // C++ static_cast truncates toward zero; out-of-range values are undefined behaviour there, so refuse them.
    values = src.map((v) => (FLOATS.has(a.dataType) ? Math.trunc(v) : v))
    if (values.some((v) => !(v >= toRange[0] && v <= toRange[1]))) return 'values outside the target integer range (or NaN)'
  }
  const info = elementType(to)
  const out = to === DataType.INT64 ? BigInt64Array.from(values, (v) => BigInt(v)) : (info.arrayType as Float32ArrayConstructor).from(values)
  return [{ name: '', dataType: to, dims: [...a.dims], data: out as TypedArray }]
}

const reshape: ConstantOp = (node, [a, shapeT]) => {
  if (!a || !layoutOk(a)) return 'needs a whole-element tensor'
  const shape = intList(shapeT)
  if (!shape) return 'shape is not an int64 tensor'
  const allowZero = attrInt(node, 'allowzero', 0) !== 0
  const dims = shape.map((d, i) => (d === 0 && !allowZero ? a.dims[i]! : d))
  const unknown = dims.indexOf(-1)
  if (unknown >= 0) {
    const known = dims.reduce((p, d, i) => (i === unknown ? p : p * d), 1)
    if (known === 0) return 'cannot infer -1 next to a zero dim'
    dims[unknown] = count(a.dims) / known
  }
  if (dims.some((d) => !Number.isInteger(d) || d < 0) || count(dims) !== count(a.dims)) return `cannot reshape ${JSON.stringify(a.dims)} to ${JSON.stringify(shape)}`
  return [same(a, dims)]
}

function axesOf(node: Node, axesInput: Tensor | undefined, opset: number): number[] | undefined | string {
  if (opset >= 13) {
    if (node.inputs[1] && node.inputs[1] !== '' && !axesInput) return 'axes input is not constant'
    return intList(axesInput)
  }
  return attrInts(node, 'axes')
}

const unsqueeze: ConstantOp = (node, [a, axesT], opset) => {
  if (!a || !layoutOk(a)) return 'needs a whole-element tensor'
  const axes = axesOf(node, axesT, opset)
  if (typeof axes === 'string' || !axes) return typeof axes === 'string' ? axes : 'no axes'
  const rank = a.dims.length + axes.length
  const set = new Set(axes.map((x) => normAxis(x, rank)))
  const dims: number[] = []
  for (let i = 0, j = 0; i < rank; i++) dims.push(set.has(i) ? 1 : a.dims[j++]!)
  return [same(a, dims)]
}

const squeeze: ConstantOp = (node, [a, axesT], opset) => {
  if (!a || !layoutOk(a)) return 'needs a whole-element tensor'
  const axes = axesOf(node, axesT, opset)
  if (typeof axes === 'string') return axes
  const rank = a.dims.length
  const set = axes ? new Set(axes.map((x) => normAxis(x, rank))) : new Set(a.dims.flatMap((d, i) => (d === 1 ? [i] : [])))
  if ([...set].some((i) => a.dims[i] !== 1)) return 'squeezes a dim that is not 1'
  return [same(a, a.dims.filter((_, i) => !set.has(i)))]
}

const flatten: ConstantOp = (node, [a]) => {
  if (!a || !layoutOk(a)) return 'needs a whole-element tensor'
  const axis = normAxis(attrInt(node, 'axis', 1), a.dims.length)
  return [same(a, [count(a.dims.slice(0, axis)), count(a.dims.slice(axis))])]
}

const transposeOp: ConstantOp = (node, [a]) => {
  if (!a || !layoutOk(a)) return 'needs a whole-element tensor'
  const perm = attrInts(node, 'perm') ?? a.dims.map((_, i) => a.dims.length - 1 - i)
  if (perm.length !== a.dims.length) return 'perm does not match the rank'
  return [transpose(a, perm)]
}

/** Op type (ai.onnx) → evaluator. Float results are rounded to the operands' type by the typed array. */
export const CONSTANT_OPS: Readonly<Record<string, ConstantOp>> = {
  Identity: (node, [a]) => (a ? [a] : 'needs an input'),
  Cast: cast,
  Reshape: reshape,
  Transpose: transposeOp,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Flatten: flatten,
  Add: binary((x, y) => x + y),
  Sub: binary((x, y) => x - y),
  Mul: binary((x, y) => x * y),
  Div: binary((x, y) => x / y),
  Neg: unary((x) => -x),
  Sqrt: unary((x) => Math.sqrt(x)),
  Reciprocal: unary((x) => 1 / x),
}
