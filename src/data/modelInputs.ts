// What a model expects of its feeds (names, shapes with symbolic dims, element types), and the
// checks every data source runs on what it yields, so that a mistake is reported against the file
// that holds it rather than deep inside ONNX Runtime.
import { DataSourceError } from '../errors.js'
import type { Dim, ValueInfo } from '../graph/model.js'
import type { PlainTensor, TensorType } from '../sim/feeds.js'

/** The part of a model (or graph) a data source needs. */
export interface ModelInputs {
  inputs: readonly ValueInfo[]
  /**
   * When given (e.g. a `Graph`), inputs that are also initializers are optional: models exported
   * for IR < 4 list every weight as a graph input.
   */
  initializers?: ReadonlyMap<string, unknown>
}

export type PlainFeeds = Record<string, PlainTensor>

// TensorProto.DataType → the feed type ORT takes; types without a feed form stay undefined.
const FEED_TYPE: Record<number, TensorType> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 8: 'string',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64',
}

/** The feed type for a TensorProto.DataType, or undefined when unknown or not feedable. */
export function feedType(elemType: number | undefined): TensorType | undefined {
  return elemType === undefined ? undefined : FEED_TYPE[elemType]
}

/** The inputs that must be fed (those not backed by an initializer). */
export function requiredInputs(model: ModelInputs): ValueInfo[] {
  return model.inputs.filter((v) => !model.initializers?.has(v.name))
}

export function formatDims(dims: readonly Dim[] | undefined): string {
  if (dims === undefined) return '(any rank)'
  return `[${dims.map((d) => (d === null ? '?' : String(d))).join(', ')}]`
}

/** `"input" [batch, 3, 224, 224] float32` */
export function describeInput(v: ValueInfo): string {
  const t = feedType(v.elemType)
  return `"${v.name}" ${formatDims(v.shape)}${t ? ` ${t}` : ''}`
}

export function describeInputs(model: ModelInputs): string {
  const req = requiredInputs(model)
  return req.length === 0 ? '(none)' : req.map(describeInput).join(', ')
}

/** The leading dim when it is a fixed number (a static batch), else undefined. */
export function staticBatch(v: ValueInfo): number | undefined {
  const d = v.shape?.[0]
  return typeof d === 'number' && d > 0 ? d : undefined
}

/** Default batch size: the model's static leading dim, else 1. */
export function defaultBatchSize(model: ModelInputs): number {
  const first = requiredInputs(model)[0]
  return (first && staticBatch(first)) ?? 1
}

/** Whether `dims` fits `expected`; symbolic dims must agree across the feeds (`bound`). */
function dimsFit(dims: readonly number[], expected: readonly Dim[], bound: Map<string, number>): boolean {
  if (dims.length !== expected.length) return false
  for (let i = 0; i < dims.length; i++) {
    const e = expected[i]
    if (typeof e === 'number' && e > 0 && e !== dims[i]) return false
    if (typeof e === 'string' && e !== '') {
      const b = bound.get(e)
      if (b !== undefined && b !== dims[i]) return false
    }
  }
  for (let i = 0; i < dims.length; i++) {
    const e = expected[i]
    if (typeof e === 'string' && e !== '') bound.set(e, dims[i]!)
  }
  return true
}

/**
 * Checks one batch against the model: every name is an input, every required input is there,
 * shapes fit (symbolic dims consistent across inputs), types match. `where` names the file and
 * batch (`data.json, batch 3`).
 */
export function checkFeeds(feeds: PlainFeeds, model: ModelInputs, file: string, where: string): void {
  const byName = new Map(model.inputs.map((v) => [v.name, v]))
  for (const name of Object.keys(feeds)) {
    if (!byName.has(name)) {
      throw new DataSourceError(`${where}: the model has no input "${name}"; its inputs are ${describeInputs(model)}`, { file, input: name })
    }
  }
  const bound = new Map<string, number>()
  for (const v of requiredInputs(model)) {
    const t = feeds[v.name]
    if (t === undefined) {
      throw new DataSourceError(`${where}: no data for input ${describeInput(v)} (got ${Object.keys(feeds).map((n) => `"${n}"`).join(', ') || 'nothing'}); the model's inputs are ${describeInputs(model)}`, { file, input: v.name })
    }
    checkTensor(t, v, file, where, bound)
  }
}

export function checkTensor(t: PlainTensor, v: ValueInfo, file: string, where: string, bound = new Map<string, number>()): void {
  const want = feedType(v.elemType)
  if (want !== undefined && t.type !== want) {
    throw new DataSourceError(`${where}: input "${v.name}" is ${t.type} but the model expects ${want} (shape ${formatDims(v.shape)})`, { file, input: v.name })
  }
  if (v.shape !== undefined && !dimsFit(t.dims, v.shape, bound)) {
    throw new DataSourceError(`${where}: input "${v.name}" has shape ${formatDims(t.dims)} but the model expects ${formatDims(v.shape)}${want ? ` ${want}` : ''}`, { file, input: v.name })
  }
}
