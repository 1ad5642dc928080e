// Feeds as people write them by hand (JSON files, JS modules): `{ dims, data: number[], type? }`,
// nested arrays, or tensors proper (typed arrays, onnxruntime Tensors). Untyped numbers take the
// model input's element type; an explicit type must match it.
import { DataSourceError } from '../errors.js'
import type { ValueInfo } from '../graph/model.js'
import { toPlainTensor, type PlainTensor, type TensorData, type TensorType } from '../sim/feeds.js'
import { checkFeeds, describeInputs, feedType, type ModelInputs, type PlainFeeds } from './modelInputs.js'

const ARRAY_OF: Partial<Record<TensorType, { from(v: ArrayLike<number>): TensorData; new(n: number): TensorData }>> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, bool: Uint8Array,
}

const TENSOR_TYPES: readonly TensorType[] = ['float32', 'float64', 'float16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string']

/** Dims of a rectangular nested array, or a message saying where it is ragged. */
function nestedDims(value: unknown, path: string): number[] {
  if (!Array.isArray(value)) return []
  const dims = [value.length]
  if (value.length === 0) return dims
  const inner = nestedDims(value[0], `${path}[0]`)
  for (let i = 1; i < value.length; i++) {
    const d = nestedDims(value[i], `${path}[${i}]`)
    if (d.length !== inner.length || d.some((x, k) => x !== inner[k])) {
      throw new Error(`ragged nested array: ${path}[${i}] has shape [${d.join(', ')}] but ${path}[0] has [${inner.join(', ')}]`)
    }
  }
  return dims.concat(inner)
}

function toTypedArray(values: unknown[], type: TensorType): TensorData {
  if (type === 'string') {
    if (!values.every((s) => typeof s === 'string')) throw new Error('a string tensor needs string values')
    return values as string[]
  }
  if (type === 'int64' || type === 'uint64') {
    const out = type === 'int64' ? new BigInt64Array(values.length) : new BigUint64Array(values.length)
    for (let i = 0; i < values.length; i++) {
      const v = values[i]
      if (typeof v === 'bigint') out[i] = v
      else if (typeof v === 'number' && Number.isSafeInteger(v)) out[i] = BigInt(v)
      else if (typeof v === 'string' && /^-?\d+$/.test(v)) out[i] = BigInt(v)
      else throw new Error(`element ${i} (${JSON.stringify(v)}) is not an integer`)
      if (BigInt(out[i]!) !== BigInt(v as number | bigint | string)) throw new Error(`element ${i} (${String(v)}) is out of ${type} range`)
    }
    return out
  }
  if (type === 'float16') throw new Error('float16 data must be given as a Uint16Array of raw bits, not as numbers')
  const ctor = ARRAY_OF[type]!
  const nums = values.map((v, i) => {
    if (typeof v === 'number') return v
    if (typeof v === 'boolean' && type === 'bool') return v ? 1 : 0
    throw new Error(`element ${i} (${JSON.stringify(v)}) is not a number`)
  })
  const out = ctor.from(nums)
  if (type !== 'float32' && type !== 'float64') {
    for (let i = 0; i < nums.length; i++) {
      if ((out as ArrayLike<number>)[i] !== nums[i] || (type === 'bool' && nums[i]! > 1)) {
        throw new Error(`element ${i} (${nums[i]}) is not ${type === 'bool' ? 'a bool (0, 1, true, false)' : `an integer in ${type} range`}`)
      }
    }
  }
  return out
}

/** One feed value as written by hand → a PlainTensor of the model input's type. */
export function feedValue(value: unknown, input: ValueInfo | undefined, where: string): PlainTensor {
  const modelType = feedType(input?.elemType)
  const isObject = value !== null && typeof value === 'object' && !Array.isArray(value) && !ArrayBuffer.isView(value)
  if (isObject && 'data' in (value as object)) {
    const v = value as { data: unknown; dims?: unknown; shape?: unknown; type?: unknown }
    if (ArrayBuffer.isView(v.data)) return toPlainTensor(v, where)
    if (v.type !== undefined && !TENSOR_TYPES.includes(v.type as TensorType)) {
      throw new Error(`${where}: unknown type ${JSON.stringify(v.type)} (expected one of ${TENSOR_TYPES.join(', ')})`)
    }
    const type = (v.type as TensorType | undefined) ?? modelType ?? 'float32'
    const rawDims = v.dims ?? v.shape
    if (!Array.isArray(v.data)) throw new Error(`${where}: data must be an array of numbers`)
    const flat = (v.data as unknown[]).flat(Infinity)
    const dims = rawDims === undefined ? nestedDims(v.data, `${where}.data`) : rawDims
    if (!Array.isArray(dims) || dims.some((d) => !Number.isInteger(d) || d < 0)) throw new Error(`${where}: dims must be a list of non-negative integers`)
    const n = (dims as number[]).reduce((a, b) => a * b, 1)
    if (n !== flat.length) throw new Error(`${where}: dims [${dims.join(', ')}] hold ${n} elements but data has ${flat.length}`)
    return { type, data: toTypedArray(flat, type), dims: dims as number[] }
  }
  if (Array.isArray(value) || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    const dims = nestedDims(value, where)
    const flat = Array.isArray(value) ? (value as unknown[]).flat(Infinity) : [value]
    return { type: modelType ?? 'float32', data: toTypedArray(flat, modelType ?? 'float32'), dims }
  }
  // A typed-array tensor (PlainTensor, onnxruntime Tensor) or something wrong: let feeds.ts say which.
  return toPlainTensor(value, where)
}

/**
 * A batch as a source yielded it → checked PlainFeeds. Errors become DataSourceErrors naming
 * `file` and `where`.
 */
export function feedsFromValue(batch: unknown, model: ModelInputs, file: string, where: string): PlainFeeds {
  if (batch === null || typeof batch !== 'object' || Array.isArray(batch)) {
    throw new DataSourceError(`${where}: expected an object mapping input names to tensors, got ${batch === null ? 'null' : Array.isArray(batch) ? 'an array' : typeof batch}`, { file })
  }
  const byName = new Map(model.inputs.map((v) => [v.name, v]))
  const out: PlainFeeds = {}
  for (const [name, value] of Object.entries(batch)) {
    const input = byName.get(name)
    if (input === undefined) {
      throw new DataSourceError(`${where}: the model has no input "${name}"; its inputs are ${describeInputs(model)}`, { file, input: name })
    }
    try {
      out[name] = feedValue(value, input, `input "${name}"`)
    } catch (e) {
      if (e instanceof DataSourceError) throw e
      throw new DataSourceError(`${where}: ${(e as Error).message.replace(/^feeds\[/, 'input [')}`, { file, input: name }, { cause: e })
    }
  }
  checkFeeds(out, model, file, where)
  return out
}
