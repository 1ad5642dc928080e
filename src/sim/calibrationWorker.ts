// The calibration worker: runs the model with the observed tensors as extra outputs, one batch at
// a time, and feeds each output straight into a Rust observer. Nothing of a batch outlives it, so
// memory does not grow with the number of samples. When the outputs of one run would exceed
// `maxBytesPerRun`, the observed tensors are split into groups and each batch is run once per
// group (ORT computes only what a run fetches).
import { parentPort } from 'node:worker_threads'
import { HistogramObserver, MinMaxObserver } from '../observers.js'
import type { PlainTensor } from './feeds.js'
import type { CalibrationRequest, CalibrationResponse, ObserveTarget, ObservedEncoding } from './calibrationProtocol.js'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node')

interface Observed {
  target: ObserveTarget
  /** min_max targets: running extremes. */
  minmax?: MinMaxObserver
  /** Histogram schemes: the histogram also keeps the exact extremes. */
  histogram?: HistogramObserver
}

let session: import('onnxruntime-node').InferenceSession | undefined
let observed = new Map<string, Observed>()
let groups: string[][] = []
let maxBytesPerRun = Infinity

class CalibrationDataError extends Error {
  constructor(message: string, readonly tensor: string) {
    super(message)
  }
}

function reply(msg: CalibrationResponse): void {
  parentPort!.postMessage(msg)
}

function toOrt(feeds: Record<string, PlainTensor>): Record<string, import('onnxruntime-node').Tensor> {
  const out: Record<string, import('onnxruntime-node').Tensor> = {}
  for (const [name, t] of Object.entries(feeds)) out[name] = new ort.Tensor(t.type, t.data as never, t.dims)
  return out
}

/** The ORT outputs a target is read from: the tensor itself, or its in-graph min and max. */
function outputsOf(o: Observed): string[] {
  return o.target.reduce ? [o.target.reduce.min, o.target.reduce.max] : [o.target.tensor]
}

/** Feeds a target's observer from a run's results. */
function observeFrom(o: Observed, results: Record<string, import('onnxruntime-node').Tensor>, batchIndex: number): void {
  const name = o.target.tensor
  const outs = outputsOf(o).map((n) => results[n])
  if (outs.some((t) => !t)) throw new CalibrationDataError(`tensor ${JSON.stringify(name)} is not an output of the tapped model`, name)
  if (o.target.reduce) {
    const [lo, hi] = outs as [import('onnxruntime-node').Tensor, import('onnxruntime-node').Tensor]
    observe(name, new ort.Tensor('float32', Float32Array.of(Number(lo.data[0]), Number(hi.data[0])), [2]), batchIndex)
  } else {
    observe(name, outs[0]!, batchIndex)
  }
}

function observe(name: string, t: import('onnxruntime-node').Tensor, batchIndex: number): void {
  const o = observed.get(name)
  if (!o) return
  if (t.type !== 'float32') throw new CalibrationDataError(`tensor ${JSON.stringify(name)} is ${t.type}, not float32: it cannot be calibrated`, name)
  const data = t.data as Float32Array
  try {
    o.minmax?.update(data)
    o.histogram?.update(data)
  } catch (err) {
    const m = err instanceof Error ? err.message : String(err)
    throw new CalibrationDataError(`tensor ${JSON.stringify(name)} in calibration batch ${batchIndex}: ${m} (NaN or ±inf reached this tensor; check the input data and the layers before it)`, name)
  }
}

/**
 * Runs the session fetching only `names`. onnxruntime-node 1.23 returns such a subset under the
 * wrong keys: the values come in the session's output order, keyed by the session's first output
 * names. Results are re-keyed here; if a later version keys them correctly, they are used as is.
 */
async function runFetch(feeds: Record<string, import('onnxruntime-node').Tensor>, names: string[]): Promise<Record<string, import('onnxruntime-node').Tensor>> {
  const all = session!.outputNames
  if (names.length === all.length) return session!.run(feeds)
  const results = await session!.run(feeds, names)
  const keys = Object.keys(results)
  if (names.every((n) => n in results)) return results
  const order = new Map(all.map((n, i) => [n, i]))
  const sorted = [...names].sort((a, b) => order.get(a)! - order.get(b)!)
  if (keys.length !== sorted.length || keys.some((k, i) => k !== all[i])) {
    throw new Error(`onnxruntime returned outputs ${keys.join(', ')} for a fetch of ${names.join(', ')}`)
  }
  const fixed: Record<string, import('onnxruntime-node').Tensor> = {}
  keys.forEach((k, i) => { fixed[sorted[i]!] = results[k]! })
  return fixed
}

/** NaN or ±inf in an input is named here, before it spreads into every activation. */
function checkInputs(feeds: Record<string, PlainTensor>, batchIndex: number): void {
  for (const [name, t] of Object.entries(feeds)) {
    if (t.type !== 'float32') continue
    try {
      new MinMaxObserver().update(t.data as Float32Array)
    } catch (err) {
      const m = err instanceof Error ? err.message : String(err)
      throw new CalibrationDataError(`input ${JSON.stringify(name)} of calibration batch ${batchIndex}: ${m}`, name)
    }
  }
}

/** Splits the observed tensors so that one run's outputs stay under the cap (sizes from the first batch). */
function planGroups(sizes: Map<string, number>): string[][] {
  const out: string[][] = []
  let current: string[] = []
  let bytes = 0
  for (const [name, size] of sizes) {
    if (current.length > 0 && bytes + size > maxBytesPerRun) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(name)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}

async function handle(req: CalibrationRequest): Promise<void> {
  try {
    switch (req.kind) {
      case 'init': {
        session = await ort.InferenceSession.create(req.model, req.options as import('onnxruntime-node').InferenceSession.SessionOptions)
        observed = new Map(req.targets.map((target) => [target.tensor, target.scheme === 'min_max'
          ? { target, minmax: new MinMaxObserver() }
          : { target, histogram: new HistogramObserver() }]))
        maxBytesPerRun = req.maxBytesPerRun
        groups = []
        reply({ id: req.id, ok: true, result: null })
        return
      }
      case 'batch': {
        if (!session) throw new Error('calibration worker: no session')
        checkInputs(req.feeds, req.batchIndex)
        // Graph inputs are observed from the feeds themselves; the rest are fetched from ORT.
        for (const [name, t] of Object.entries(req.feeds)) {
          if (observed.has(name)) observe(name, new ort.Tensor(t.type, t.data as never, t.dims), req.batchIndex)
        }
        const feeds = toOrt(req.feeds)
        const targets = [...observed.values()].filter((o) => !(o.target.tensor in req.feeds))
        if (groups.length === 0) {
          // First batch: one run fetching everything, which also measures each target's output
          // size; the later batches are split into groups of targets if that run exceeded the cap.
          const results = await session.run(feeds)
          const sizes = new Map<string, number>()
          for (const o of targets) {
            observeFrom(o, results, req.batchIndex)
            sizes.set(o.target.tensor, outputsOf(o).reduce((n, k) => n + (results[k]!.data as Float32Array).byteLength, 0))
          }
          for (const t of Object.values(results)) t.dispose?.()
          groups = planGroups(sizes)
        } else if (groups.length === 1) {
          const results = await session.run(feeds)
          for (const o of targets) observeFrom(o, results, req.batchIndex)
          for (const t of Object.values(results)) t.dispose?.()
        } else {
          for (const g of groups) {
            const members = g.map((n) => observed.get(n)!)
            const results = await runFetch(feeds, members.flatMap(outputsOf))
            for (const o of members) observeFrom(o, results, req.batchIndex)
            for (const t of Object.values(results)) t.dispose?.()
          }
        }
        reply({ id: req.id, ok: true, result: { runs: groups.length } })
        return
      }
      case 'finish': {
        const encodings: ObservedEncoding[] = []
        for (const [tensor, o] of observed) {
          const { target } = o
          const range = o.histogram?.range
          const min = o.minmax ? o.minmax.min[0] : range?.min
          const max = o.minmax ? o.minmax.max[0] : range?.max
          if (min === undefined || max === undefined) throw new CalibrationDataError(`tensor ${JSON.stringify(tensor)} was never observed`, tensor)
          const encoding = o.histogram
            ? o.histogram.encoding({ ...target.encoding, scheme: target.scheme, percentile: target.percentile })
            : o.minmax!.encoding(target.encoding)
          encodings.push({ tensor, encoding, min, max })
        }
        reply({ id: req.id, ok: true, result: encodings })
        return
      }
      case 'close': {
        await session?.release()
        session = undefined
        observed.clear()
        reply({ id: req.id, ok: true, result: null })
        return
      }
    }
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err))
    reply({ id: req.id, ok: false, error: { name: e.name, message: e.message, tensor: err instanceof CalibrationDataError ? err.tensor : undefined } })
  }
}

let queue: Promise<void> = Promise.resolve()
parentPort!.on('message', (req: CalibrationRequest) => {
  queue = queue.then(() => handle(req))
})
