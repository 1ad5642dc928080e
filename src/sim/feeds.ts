// Input feeds: onnxruntime-node Tensors or `{ data, dims }` / `{ data, shape }` with a typed
// array. Recognised by shape (type, data, dims), never by `instanceof`: several copies of
// onnxruntime-node can be installed, and their Tensor classes differ.

export type TensorType =
  | 'float32' | 'float64' | 'float16' | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool' | 'string'

export type TensorData =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array | string[]

/** What quantkit passes around: plain, structured-clone-able. */
export interface PlainTensor {
  type: TensorType
  data: TensorData
  dims: number[]
}

export type FeedTensor =
  | PlainTensor
  | { data: TensorData; dims: readonly number[]; type?: TensorType }
  | { data: TensorData; shape: readonly number[]; type?: TensorType }

export type Feeds = Record<string, FeedTensor>

const TYPE_OF_ARRAY: Record<string, TensorType> = {
  Float32Array: 'float32', Float64Array: 'float64', Int8Array: 'int8', Uint8Array: 'uint8',
  Int16Array: 'int16', Uint16Array: 'uint16', Int32Array: 'int32', Uint32Array: 'uint32',
  BigInt64Array: 'int64', BigUint64Array: 'uint64',
}

function arrayTag(v: unknown): string | undefined {
  return ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
}

/** Normalises one feed; `where` names it in errors (e.g. `feeds["input"]`). */
export function toPlainTensor(feed: unknown, where: string): PlainTensor {
  if (feed === null || typeof feed !== 'object') throw new TypeError(`${where}: expected a tensor ({ type, data, dims } or an onnxruntime Tensor), got ${feed === null ? 'null' : typeof feed}`)
  const f = feed as { type?: unknown; data?: unknown; dims?: unknown; shape?: unknown }
  const dims = (f.dims ?? f.shape) as unknown
  if (!Array.isArray(dims) && !(ArrayBuffer.isView(dims))) throw new TypeError(`${where}: missing dims (or shape)`)
  const d = Array.from(dims as ArrayLike<number>, Number)
  if (d.some((x) => !Number.isInteger(x) || x < 0)) throw new TypeError(`${where}: dims must be non-negative integers, got [${d.join(', ')}]`)
  const data = f.data
  const tag = arrayTag(data)
  let type: TensorType
  if (tag) {
    const natural = TYPE_OF_ARRAY[tag]
    if (!natural) throw new TypeError(`${where}: unsupported data array ${tag}`)
    type = (f.type as TensorType | undefined) ?? natural
    // ORT's 'bool' and 'float16' tensors hold Uint8Array / Uint16Array.
    const ok = type === natural || (type === 'bool' && tag === 'Uint8Array') || (type === 'float16' && tag === 'Uint16Array')
    if (!ok) throw new TypeError(`${where}: type '${String(f.type)}' does not match its data (${tag})`)
  } else if (Array.isArray(data) && (f.type === 'string' || data.every((s) => typeof s === 'string'))) {
    type = 'string'
  } else {
    throw new TypeError(`${where}: data must be a typed array (or a string array for string tensors)`)
  }
  const n = d.reduce((a, b) => a * b, 1)
  const len = (data as { length: number }).length
  if (n !== len) throw new TypeError(`${where}: dims [${d.join(', ')}] hold ${n} elements but data has ${len}`)
  return { type, data: data as TensorData, dims: d }
}

export function toPlainFeeds(feeds: unknown, where = 'feeds'): Record<string, PlainTensor> {
  if (feeds === null || typeof feeds !== 'object' || Array.isArray(feeds)) throw new TypeError(`${where}: expected an object mapping input names to tensors`)
  const out: Record<string, PlainTensor> = {}
  for (const [name, t] of Object.entries(feeds)) out[name] = toPlainTensor(t, `${where}[${JSON.stringify(name)}]`)
  return out
}
