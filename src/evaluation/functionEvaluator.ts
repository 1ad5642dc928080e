// An Evaluator over an in-process function: the API's `evaluate` option. The function receives
// the candidate as ONNX bytes, the same thing a worker or a remote machine would receive, so a
// callback can move behind a module path or a queue unchanged, and it can hand the bytes straight
// to onnxruntime (InferenceSession.create(bytes)). It runs on the caller's thread: a callback that
// runs onnxruntime-node synchronously blocks the event loop while it runs (use a module path and
// workerEvaluator.ts to avoid that).
import { AbortError } from '../errors.js'
import type { Model } from '../graph/model.js'
import { candidateBytes, checkScore, EvaluationError, type EvaluateFunction, type Evaluator } from './evaluator.js'

export function functionEvaluator(fn: EvaluateFunction, opts: { threads?: number } = {}): Evaluator {
  if (typeof fn !== 'function') throw new TypeError(`evaluate: expected a function (modelBytes, ctx) => number, got ${typeof fn}`)
  let closed = false
  return {
    async evaluate(candidate: Model | Uint8Array, label: string, signal?: AbortSignal): Promise<number> {
      if (closed) throw new EvaluationError(`evaluator is closed (evaluating ${label})`, label)
      if (signal?.aborted) throw new AbortError(`evaluation of ${label} aborted`, { cause: signal.reason })
      const bytes = candidateBytes(candidate)
      let value: unknown
      try {
        value = await fn(bytes, { label, worker: 0, threads: opts.threads ?? 1 })
      } catch (err) {
        throw new EvaluationError(`evaluate threw for ${label}: ${err instanceof Error ? err.message : String(err)}`, label, { cause: err })
      }
      return checkScore(value, label, 'evaluate')
    },
    async close() {
      closed = true
    },
  }
}
