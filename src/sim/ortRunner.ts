// Runs an ONNX model in onnxruntime-node on a worker thread, so that inference never blocks the
// caller's event loop (onnxruntime-node's `run` is synchronous on its calling thread).
// One runner = one worker = one session; requests run in order. Outputs come back without a copy
// (their buffers are transferred); inputs are copied into the worker unless `transferInputs`.
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { QuantkitError } from '../errors.js'
import { toPlainFeeds, type Feeds, type PlainTensor } from './feeds.js'
import type { WorkerRequest, WorkerResponse } from './ortRunnerProtocol.js'

export class InferenceError extends QuantkitError {
  override name = 'InferenceError'
}

/** ORT's description of an input or output: element type and shape (symbolic dims as strings). */
export interface ValueMetadata {
  name: string
  isTensor: boolean
  type?: string
  shape?: (number | string)[]
}

interface SessionIo {
  inputNames: string[]
  outputNames: string[]
  inputMetadata: ValueMetadata[]
  outputMetadata: ValueMetadata[]
}

export interface OrtRunnerOptions {
  /** ORT intra-op threads; default: the machine's parallelism. */
  intraOpNumThreads?: number
  /** 'disabled' | 'basic' | 'extended' | 'all' (default 'all'). Simulation uses 'disabled'. */
  graphOptimizationLevel?: 'disabled' | 'basic' | 'extended' | 'all'
  /** What the model is called in error messages. */
  name?: string
  /** ORT writes the graph it will run (after its optimisations) to this path (src/export/ortKernels.ts). */
  optimizedModelFilePath?: string
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void }

export class OrtRunner {
  readonly inputNames: readonly string[]
  readonly outputNames: readonly string[]
  readonly inputMetadata: readonly ValueMetadata[]
  readonly outputMetadata: readonly ValueMetadata[]
  readonly #worker: Worker
  readonly #pending = new Map<number, Pending>()
  readonly #name: string
  #nextId = 1
  #dead: Error | undefined

  private constructor(worker: Worker, name: string, io: SessionIo) {
    this.#worker = worker
    this.#name = name
    this.inputNames = io.inputNames
    this.outputNames = io.outputNames
    this.inputMetadata = io.inputMetadata
    this.outputMetadata = io.outputMetadata
  }

  /** Starts a worker and creates the session there from a file path or model bytes. */
  static async create(model: string | Uint8Array, opts: OrtRunnerOptions = {}): Promise<OrtRunner> {
    pinOnnxRuntime()
    const name = opts.name ?? (typeof model === 'string' ? model : 'model')
    const worker = new Worker(join(__dirname, 'ortRunnerWorker.js'))
    const pending = new Map<number, Pending>()
    const boot = new Promise<SessionIo>((resolve, reject) => {
      pending.set(0, { resolve: resolve as (v: unknown) => void, reject })
    })
    const listener = (msg: WorkerResponse) => settle(pending, msg, name)
    const failAll = (err: Error) => { for (const p of pending.values()) p.reject(err); pending.clear() }
    worker.on('message', listener)
    worker.on('error', (e) => failAll(new InferenceError(`onnxruntime worker for ${name} failed: ${e.message}`)))
    worker.on('exit', (code) => failAll(new InferenceError(`onnxruntime worker for ${name} exited (code ${code})`)))
    const options = {
      intraOpNumThreads: opts.intraOpNumThreads ?? availableParallelism(),
      interOpNumThreads: 1,
      graphOptimizationLevel: opts.graphOptimizationLevel ?? 'all',
      executionProviders: ['cpu'],
      // ORT warns on every such session that a level-'all' graph may hold hardware-specific layout ops; docs/ort-cpu.md says so once.
      ...(opts.optimizedModelFilePath !== undefined ? { optimizedModelFilePath: opts.optimizedModelFilePath, logSeverityLevel: 3 } : {}),
    }
    worker.postMessage({ id: 0, kind: 'create', model, options } satisfies WorkerRequest)
    let io: SessionIo
    try {
      io = await boot
    } catch (err) {
      await worker.terminate()
      throw err
    }
    const runner = new OrtRunner(worker, name, io)
    worker.off('message', listener)
    worker.removeAllListeners('error')
    worker.removeAllListeners('exit')
    worker.on('message', (msg: WorkerResponse) => settle(runner.#pending, msg, name))
    const die = (err: Error) => {
      runner.#dead ??= err
      for (const p of runner.#pending.values()) p.reject(err)
      runner.#pending.clear()
    }
    worker.on('error', (e) => die(new InferenceError(`onnxruntime worker for ${name} failed: ${e.message}`)))
    worker.on('exit', (code) => die(new InferenceError(`onnxruntime worker for ${name} has stopped (code ${code})`)))
    return runner
  }

  #request<T>(req: DistributiveOmit<WorkerRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<T> {
    if (this.#dead) return Promise.reject(this.#dead)
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#worker.postMessage({ ...req, id } as WorkerRequest, transfer)
    })
  }

  /**
   * Runs the model. `outputs` picks output names (default: all). With `transferInputs` the input
   * buffers move to the worker (no copy) and become unusable for the caller.
   */
  async run(feeds: Feeds, opts: { outputs?: string[]; transferInputs?: boolean } = {}): Promise<Record<string, PlainTensor>> {
    const plain = toPlainFeeds(feeds)
    for (const name of this.inputNames) {
      if (!(name in plain)) throw new TypeError(`feeds: ${this.#name} needs input ${JSON.stringify(name)}; given: ${Object.keys(plain).map((n) => JSON.stringify(n)).join(', ') || 'none'}`)
    }
    for (const name of Object.keys(plain)) {
      if (!this.inputNames.includes(name)) throw new TypeError(`feeds: ${this.#name} has no input ${JSON.stringify(name)}; its inputs are ${this.inputNames.map((n) => JSON.stringify(n)).join(', ')}`)
    }
    const transfer: ArrayBuffer[] = []
    if (opts.transferInputs) {
      for (const t of Object.values(plain)) {
        if (ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer && !transfer.includes(t.data.buffer)) transfer.push(t.data.buffer)
      }
    }
    return this.#request({ kind: 'run', feeds: plain, outputs: opts.outputs }, transfer)
  }

  /** Releases the session and stops the worker. */
  async close(): Promise<void> {
    if (!this.#dead) {
      try {
        await this.#request({ kind: 'close' })
      } finally {
        this.#dead ??= new InferenceError(`onnxruntime runner for ${this.#name} is closed`)
        await this.#worker.terminate()
      }
    }
  }
}

let pinned = false

// onnxruntime-node's binding is not context-aware: once the last thread that loaded it exits,
// loading it in a new worker fails ("Module did not self-register"). Loading it once on the main
// thread keeps the library resident, so runners can come and go.
function pinOnnxRuntime(): void {
  if (pinned) return
  require('onnxruntime-node')
  pinned = true
}

function settle(pending: Map<number, Pending>, msg: WorkerResponse, name: string): void {
  const p = pending.get(msg.id)
  if (!p) return
  pending.delete(msg.id)
  if (msg.ok) p.resolve(msg.result)
  else p.reject(new InferenceError(`onnxruntime (${name}): ${msg.error.message}`))
}
