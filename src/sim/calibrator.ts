// Streaming calibration: the model with every observed tensor exposed as an extra output runs
// in a worker (see calibrationWorker.ts), batch by batch; each batch's activations go straight
// into Rust observers there and are dropped. Memory is bounded by one batch's outputs (split
// into several runs above `maxBytesPerRun`), whatever the number of samples.
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { AbortError, CalibrationError } from '../errors.js'
import { cloneModel, type Model } from '../graph/model.js'
import { addGraphOutput } from '../graph/graphEdits.js'
import { allValueNames, uniqueName } from '../graph/names.js'
import { modelToBytes } from '../onnx/saveModel.js'
import { batchSize, forEachBatch, knownTotal, type CalibrationData } from './calibrationData.js'
import type { CalibrationRequest, CalibrationResponse, ObserveTarget, ObservedEncoding } from './calibrationProtocol.js'
import { toPlainFeeds, type Feeds } from './feeds.js'

export interface CalibrationProgress {
  samples: number
  batches: number
  /** Known when the data is an array. */
  total?: number
}

export interface CalibrateOptions {
  signal?: AbortSignal
  onProgress?: (p: CalibrationProgress) => void
  /** Cap on the bytes one ORT run may return; default 1 GiB. */
  maxBytesPerRun?: number
  intraOpNumThreads?: number
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

class CalibrationWorker {
  readonly #worker: Worker
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  #next = 1
  #dead: Error | undefined

  constructor() {
    require('onnxruntime-node') // keeps the binding loaded across workers (see ortRunner.ts)
    this.#worker = new Worker(join(__dirname, 'calibrationWorker.js'))
    this.#worker.on('message', (msg: CalibrationResponse) => {
      const p = this.#pending.get(msg.id)
      if (!p) return
      this.#pending.delete(msg.id)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new CalibrationError(msg.error.message, msg.error.tensor))
    })
    const die = (err: Error) => {
      this.#dead ??= err
      for (const p of this.#pending.values()) p.reject(err)
      this.#pending.clear()
    }
    this.#worker.on('error', (e) => die(new CalibrationError(`calibration worker failed: ${e.message}`)))
    this.#worker.on('exit', (code) => die(new CalibrationError(`calibration worker stopped (code ${code})`)))
  }

  request<T>(req: DistributiveOmit<CalibrationRequest, 'id'>): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead)
    const id = this.#next++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#worker.postMessage({ ...req, id })
    })
  }

  async stop(): Promise<void> {
    this.#dead ??= new CalibrationError('calibration worker closed')
    await this.#worker.terminate()
  }
}

function abortError(signal: AbortSignal): Error {
  return new AbortError('calibration aborted', { cause: signal.reason })
}

/**
 * Observes `targets` over `data` and returns one encoding per target. The model must produce
 * every target tensor; graph inputs may be targets too.
 */
export async function calibrate(model: Model, targets: ObserveTarget[], data: CalibrationData, opts: CalibrateOptions = {}): Promise<ObservedEncoding[]> {
  const { signal } = opts
  if (signal?.aborted) throw abortError(signal)
  if (targets.length === 0) return []
  const tapped = cloneModel(model)
  const inputs = new Set(model.graph.inputs.map((i) => i.name))
  const taken = allValueNames(tapped.graph)
  const fresh = (base: string) => { const n = uniqueName(tapped.graph, base, taken); taken.add(n); return n }
  targets = targets.map((t) => {
    if (inputs.has(t.tensor)) return t
    if (t.scheme !== 'min_max') {
      addGraphOutput(tapped.graph, t.tensor)
      return t
    }
    // min_max needs two numbers per batch: reduce in the graph (ONNX Runtime copies every output
    // it returns into JavaScript, which dominated calibration time when whole tensors came out).
    const reduce = { min: fresh(`${t.tensor}__quantkit_min`), max: fresh(`${t.tensor}__quantkit_max`) }
    for (const [op, out] of [['ReduceMin', reduce.min], ['ReduceMax', reduce.max]] as const) {
      tapped.graph.nodes.push({ name: fresh(`${t.tensor}__quantkit_${op}`), opType: op, domain: '', inputs: [t.tensor], outputs: [out], attributes: new Map([['keepdims', { type: 'int', value: 0 }]]) })
      tapped.graph.outputs.push({ name: out, elemType: 1, shape: [] })
    }
    return { ...t, reduce }
  })
  const worker = new CalibrationWorker()
  try {
    await worker.request({
      kind: 'init',
      model: modelToBytes(tapped),
      targets,
      maxBytesPerRun: opts.maxBytesPerRun ?? 2 ** 30,
      options: {
        intraOpNumThreads: opts.intraOpNumThreads ?? availableParallelism(),
        interOpNumThreads: 1,
        // Observe the float model as written: with optimisations ORT may fuse away tensors.
        graphOptimizationLevel: 'disabled',
        executionProviders: ['cpu'],
      },
    })
    const total = knownTotal(data)
    let samples = 0
    let batches = 0
    const inputNames = new Set(model.graph.inputs.map((i) => i.name).filter((n) => !model.graph.initializers.has(n)))
    await forEachBatch(data, async (feeds: Feeds) => {
      if (signal?.aborted) throw abortError(signal)
      const plain = toPlainFeeds(feeds, `calibration batch ${batches}`)
      for (const name of inputNames) {
        if (!(name in plain)) throw new TypeError(`calibration batch ${batches}: missing input ${JSON.stringify(name)} (the model's inputs: ${[...inputNames].join(', ')})`)
      }
      for (const name of Object.keys(plain)) {
        if (!inputNames.has(name)) throw new TypeError(`calibration batch ${batches}: the model has no input ${JSON.stringify(name)} (its inputs: ${[...inputNames].join(', ')})`)
      }
      await worker.request({ kind: 'batch', feeds: plain, batchIndex: batches })
      batches++
      samples += batchSize(feeds)
      opts.onProgress?.({ samples, batches, total })
    })
    if (signal?.aborted) throw abortError(signal)
    if (batches === 0) throw new CalibrationError('calibration data is empty: give at least one batch of feeds')
    return await worker.request<ObservedEncoding[]>({ kind: 'finish' })
  } finally {
    await worker.stop()
  }
}
