// The activation tap for techniques: runs a model in ORT (worker thread) with chosen intermediate
// tensors as extra outputs, over the first `numBatches` batches of the data. Either keeps whole
// tensors (SeqMSE needs a layer's inputs; bounded by `maxBytes`, an error past it, never silent
// growth) or reduces them in the graph to per-channel means (bias correction), which keeps only
// one number per channel and batch.
import { availableParallelism } from 'node:os'
import { AbortError, CalibrationError } from '../errors.js'
import { addGraphOutput } from '../graph/graphEdits.js'
import { cloneModel, opsetVersion, type Model } from '../graph/model.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { batchSize, forEachBatch, type CalibrationData } from '../sim/calibrationData.js'
import { toPlainTensor, type Feeds, type PlainTensor } from '../sim/feeds.js'
import { OrtRunner } from '../sim/ortRunner.js'
import type { Float32Tensor } from '../layers.js'

export interface TapOptions {
  /** Batches to use from the start of the data (default: all). */
  numBatches?: number
  signal?: AbortSignal
  /** What the tensors are for, in error messages ('SeqMSE', 'bias correction'). */
  purpose: string
}

const STOP = Symbol('enough batches')

function aborted(signal: AbortSignal, purpose: string): AbortError {
  return new AbortError(`${purpose} aborted`, { cause: signal.reason })
}

/** Calls `each` with the outputs of the first `numBatches` batches. */
async function runBatches(model: Model, outputs: string[], data: CalibrationData, opts: TapOptions, each: (out: Record<string, PlainTensor>, feeds: Feeds, samples: number) => void): Promise<number> {
  const { signal, numBatches, purpose } = opts
  if (numBatches !== undefined && !(Number.isInteger(numBatches) && numBatches >= 1)) throw new RangeError(`numBatches: expected a positive integer, got ${String(numBatches)}`)
  if (signal?.aborted) throw aborted(signal, purpose)
  const runner = await OrtRunner.create(modelToBytes(model), {
    graphOptimizationLevel: 'disabled',
    intraOpNumThreads: Math.max(1, Math.min(availableParallelism(), 2)),
    name: `${model.path ?? 'model'} (${purpose})`,
  })
  let batches = 0
  try {
    await forEachBatch(data, async (feeds) => {
      if (signal?.aborted) throw aborted(signal, purpose)
      if (numBatches !== undefined && batches >= numBatches) throw STOP
      const out = await runner.run(feeds, { outputs })
      each(out, feeds, batchSize(feeds))
      batches++
    })
  } catch (e) {
    if (e !== STOP) throw e
  } finally {
    await runner.close()
  }
  if (batches === 0) throw new CalibrationError(`${purpose}: the data is empty; give at least one batch of feeds`)
  return batches
}

function asFloat(t: PlainTensor, name: string, purpose: string): Float32Tensor {
  if (!(t.data instanceof Float32Array)) throw new CalibrationError(`${purpose}: tensor ${JSON.stringify(name)} is ${t.type}, expected float32`, name)
  return { data: t.data, dims: t.dims.map(Number) }
}

/**
 * Whole tensors `names` of `model` (graph inputs or node outputs) for each batch. Throws
 * CalibrationError once they would take more than `maxBytes` (default 1 GiB).
 */
export async function collectTensors(model: Model, names: string[], data: CalibrationData, opts: TapOptions & { maxBytes?: number }): Promise<Map<string, Float32Tensor[]>> {
  const maxBytes = opts.maxBytes ?? 2 ** 30
  const tapped = cloneModel(model)
  const inputs = new Set(model.graph.inputs.map((i) => i.name))
  for (const n of names) if (!inputs.has(n)) addGraphOutput(tapped.graph, n)
  const outputs = names.filter((n) => !inputs.has(n))
  const kept = new Map<string, Float32Tensor[]>(names.map((n) => [n, []]))
  let bytes = 0
  await runBatches(tapped, outputs, data, opts, (out, feeds) => {
    for (const n of names) {
      const t = inputs.has(n) ? toPlainTensor(feeds[n], `feeds.${n}`) : out[n]!
      const f = asFloat(t, n, opts.purpose)
      bytes += f.data.byteLength
      if (bytes > maxBytes) {
        throw new CalibrationError(`${opts.purpose}: caching ${names.map((x) => JSON.stringify(x)).join(', ')} over ${kept.get(n)!.length + 1} batches needs more than maxCacheBytes = ${maxBytes} bytes; lower numBatches or raise maxCacheBytes`, n)
      }
      kept.get(n)!.push(f)
    }
  })
  return kept
}

/**
 * Per-channel means of tensors (reduced in the graph with ReduceMean over `axes`), averaged over
 * the batches weighted by their sample counts.
 */
export async function channelMeans(model: Model, targets: { tensor: string; axes: number[] }[], data: CalibrationData, opts: TapOptions): Promise<Map<string, Float64Array>> {
  const tapped = cloneModel(model)
  const taken = allValueNames(tapped.graph)
  const fresh = (base: string) => { const n = uniqueName(tapped.graph, base, taken); taken.add(n); return n }
  const axesAsInput = (opsetVersion(model) ?? 13) >= 18
  const reduced = targets.map((t) => {
    const out = fresh(`${t.tensor}__quantkit_channel_mean`)
    const node = { name: fresh(`${t.tensor}__quantkit_ReduceMean`), opType: 'ReduceMean', domain: '', inputs: [t.tensor], outputs: [out], attributes: new Map([['keepdims', { type: 'int' as const, value: 0 }]]) as Map<string, import('../graph/model.js').AttributeValue> }
    if (axesAsInput) {
      const axes = fresh(`${t.tensor}__quantkit_axes`)
      tapped.graph.initializers.set(axes, { name: axes, dataType: 7, dims: [t.axes.length], data: BigInt64Array.from(t.axes.map(BigInt)) })
      node.inputs.push(axes)
    } else node.attributes.set('axes', { type: 'ints', value: t.axes })
    tapped.graph.nodes.push(node)
    tapped.graph.outputs.push({ name: out, elemType: 1 })
    return out
  })
  const sums = new Map<string, Float64Array>()
  let total = 0
  await runBatches(tapped, reduced, data, opts, (out, _feeds, samples) => {
    targets.forEach((t, i) => {
      const m = asFloat(out[reduced[i]!]!, t.tensor, opts.purpose).data
      let s = sums.get(t.tensor)
      if (!s) sums.set(t.tensor, s = new Float64Array(m.length))
      for (let c = 0; c < m.length; c++) s[c]! += m[c]! * samples
    })
    total += samples
  })
  for (const s of sums.values()) for (let c = 0; c < s.length; c++) s[c]! /= total
  return sums
}
