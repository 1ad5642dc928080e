// An Evaluator that runs a user module (exporting `evaluate(modelBytes, ctx) => number |
// Promise<number>`) in a pool of worker threads: functions cannot cross into workers, a path can
// (DECISIONS), and onnxruntime-node's synchronous `run` then blocks a worker, not the caller.
// Jobs go to the first idle worker, in order. Each worker loads the module once; one that dies is
// replaced for the next job. An aborted job rejects at once; its worker finishes the evaluation
// it is in (ORT cannot be interrupted) and its result is dropped.
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { Worker } from 'node:worker_threads'
import { AbortError } from '../errors.js'
import type { Model } from '../graph/model.js'
import type { EvaluatorRequest, EvaluatorResponse } from './evaluatorProtocol.js'
import { candidateBytes, checkScore, EvaluationError, type Evaluator } from './evaluator.js'

export interface WorkerEvaluatorOptions {
  /** Workers evaluating at once. Default: half the machine's cores, at least 1 (1 on 2 cores). */
  concurrency?: number
  /** ORT intra-op threads each evaluation is told it may use (ctx.threads). Default: cores / concurrency, at least 1. */
  threads?: number
}

interface Job {
  id: number
  bytes: Uint8Array
  label: string
  resolve: (score: number) => void
  reject: (err: Error) => void
  signal?: AbortSignal
  onAbort?: () => void
  /** Aborted while running: the worker's answer is dropped. */
  dropped?: boolean
}

interface Slot {
  index: number
  worker: Worker
  ready: Promise<void>
  job?: Job
}

/** The default pool size: half the cores (ORT inside each evaluation wants threads too), at least 1. */
export function defaultConcurrency(): number {
  return Math.max(1, Math.floor(availableParallelism() / 2))
}

function pinOnnxRuntime(): void {
  // onnxruntime-node's binding is not context-aware: once every thread that loaded it has exited,
  // a new worker cannot load it again (see src/sim/ortRunner.ts). Keeping it loaded here lets
  // workers come and go. Not an error when it is missing: the module may not use it.
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require('onnxruntime-node')
  } catch { /* not installed */ }
}

export async function workerEvaluator(modulePath: string, opts: WorkerEvaluatorOptions = {}): Promise<Evaluator> {
  if (typeof modulePath !== 'string' || modulePath === '') throw new TypeError('workerEvaluator: expected the path of a module exporting evaluate(modelBytes, ctx)')
  const path = resolve(modulePath)
  const concurrency = opts.concurrency ?? defaultConcurrency()
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency: expected a positive integer, got ${concurrency}`)
  const threads = opts.threads ?? Math.max(1, Math.floor(availableParallelism() / concurrency))
  pinOnnxRuntime()

  const queue: Job[] = []
  let nextId = 1
  let closed = false

  const finish = (slot: Slot, job: Job) => {
    slot.job = undefined
    if (job.onAbort) job.signal?.removeEventListener('abort', job.onAbort)
    dispatch()
  }

  const spawn = (index: number): Slot => {
    const worker = new Worker(join(__dirname, 'evaluatorWorker.js'))
    const slot: Slot = { index, worker, ready: Promise.resolve() }
    slot.ready = new Promise<void>((ready, failed) => {
      worker.on('message', (msg: EvaluatorResponse) => {
        if (msg.kind === 'ready') return ready()
        if (msg.kind === 'init-error') return failed(new EvaluationError(msg.message, 'module'))
        const job = slot.job
        if (!job || job.id !== msg.id) return
        finish(slot, job)
        if (job.dropped) return
        if (!msg.ok) job.reject(new EvaluationError(`evaluate threw for ${job.label}: ${msg.message}`, job.label))
        else if (msg.score === undefined) job.reject(new EvaluationError(`${path}: evaluate returned ${msg.returned} for ${job.label}; expected a finite number (higher is better)`, job.label))
        else {
          try {
            job.resolve(checkScore(msg.score, job.label, `${path}: evaluate`))
          } catch (err) {
            job.reject(err as Error)
          }
        }
      })
      const die = (why: string) => {
        failed(new EvaluationError(`evaluation worker for ${path} ${why}`, 'module'))
        const job = slot.job
        if (job) {
          slot.job = undefined
          job.reject(new EvaluationError(`evaluation worker for ${path} ${why} while evaluating ${job.label}`, job.label))
        }
        if (!closed) slots[index] = spawn(index)
        dispatch()
      }
      worker.on('error', (e) => die(`failed: ${e.message}`))
      worker.on('exit', (code) => { if (!closed) die(`exited (code ${code})`) })
    })
    slot.ready.catch(() => {})
    worker.postMessage({ kind: 'init', modulePath: path, worker: index, threads } satisfies EvaluatorRequest)
    return slot
  }

  const dispatch = () => {
    for (const slot of slots) {
      if (slot.job || queue.length === 0) continue
      const job = queue.shift()!
      slot.job = job
      slot.ready.then(
        () => {
          if (slot.job !== job) return
          slot.worker.postMessage({ kind: 'evaluate', id: job.id, bytes: job.bytes, label: job.label } satisfies EvaluatorRequest, [job.bytes.buffer as ArrayBuffer])
        },
        (err: Error) => {
          if (slot.job !== job) return
          slot.job = undefined
          job.reject(new EvaluationError(`${err.message} (evaluating ${job.label})`, job.label, { cause: err }))
        },
      )
    }
  }

  const slots: Slot[] = []
  for (let i = 0; i < concurrency; i++) slots.push(spawn(i))
  try {
    // Fail early on a module that does not load or exports no evaluate.
    await Promise.all(slots.map((s) => s.ready))
  } catch (err) {
    closed = true
    await Promise.all(slots.map((s) => s.worker.terminate()))
    throw err
  }

  return {
    evaluate(candidate: Model | Uint8Array, label: string, signal?: AbortSignal): Promise<number> {
      if (closed) return Promise.reject(new EvaluationError(`evaluator for ${path} is closed (evaluating ${label})`, label))
      if (signal?.aborted) return Promise.reject(new AbortError(`evaluation of ${label} aborted`, { cause: signal.reason }))
      // A private copy: its buffer moves to the worker.
      const bytes = candidate instanceof Uint8Array ? candidate.slice() : candidateBytes(candidate)
      return new Promise<number>((resolvePromise, reject) => {
        const job: Job = { id: nextId++, bytes, label, resolve: resolvePromise, reject, signal }
        if (signal) {
          job.onAbort = () => {
            const i = queue.indexOf(job)
            if (i >= 0) queue.splice(i, 1)
            else job.dropped = true // running: the worker finishes it, the answer is ignored
            reject(new AbortError(`evaluation of ${label} aborted`, { cause: signal.reason }))
          }
          signal.addEventListener('abort', job.onAbort, { once: true })
        }
        queue.push(job)
        dispatch()
      })
    },
    async close() {
      if (closed) return
      closed = true
      for (const job of queue.splice(0)) job.reject(new EvaluationError(`evaluator for ${path} closed before evaluating ${job.label}`, job.label))
      await Promise.all(slots.map((s) => s.worker.terminate()))
    },
  }
}
