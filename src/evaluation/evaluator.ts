// The one evaluation interface (DECISIONS: "one evaluation interface taking a module path"): a
// candidate model goes in, the user's score comes out. Compression's greedy search uses it today;
// eval, per-layer sensitivity and mixed precision can use it too. Implementations:
// - functionEvaluator.ts: an in-process callback (the API's `evaluate` option);
// - workerEvaluator.ts: a pool of worker threads, each loading a user module by path (the CLI's
//   `--eval`), so that onnxruntime-node's synchronous `run` never blocks the caller's event loop.
// A queue of machines fits the same shape: `evaluate` serialises the candidate (modelBytes),
// ships it with the label, and resolves with the score that comes back.
import { QuantkitError } from '../errors.js'
import type { Model } from '../graph/model.js'
import { modelToBytes } from '../onnx/saveModel.js'

export interface Evaluator {
  /**
   * The score of one candidate (higher is better). `label` names it in errors and progress (for
   * compression: the layer and ratio). Rejects with EvaluationError when the user's code throws
   * or returns something other than a finite number, AbortError when `signal` fires first.
   */
  evaluate(candidate: Model | Uint8Array, label: string, signal?: AbortSignal): Promise<number>
  /** Releases workers or connections. Further evaluations reject. */
  close(): Promise<void>
}

/** What the user's evaluate function receives beside the model's bytes. */
export interface EvaluationContext {
  /** What is being evaluated, e.g. `layer "conv2" at ratio 0.5`, or `original model`. */
  label: string
  /** Which worker of the pool runs this (0 in process). */
  worker: number
  /** ORT intra-op threads the evaluation may use without oversubscribing the machine. */
  threads: number
}

/** The user's function: the candidate as ONNX bytes in, a score (higher is better) out. */
export type EvaluateFunction = (modelBytes: Uint8Array, ctx: EvaluationContext) => number | Promise<number>

/** The user's evaluation failed or returned a non-number; `label` says on which candidate. */
export class EvaluationError extends QuantkitError {
  override name = 'EvaluationError'
  constructor(message: string, readonly label: string, options?: ErrorOptions) {
    super(message, options)
  }
}

/** Serialised ONNX bytes of a candidate (passed through when already bytes). */
export function candidateBytes(candidate: Model | Uint8Array): Uint8Array {
  return candidate instanceof Uint8Array ? candidate : modelToBytes(candidate)
}

/** A score as the evaluator returns it, or an EvaluationError naming the candidate. */
export function checkScore(value: unknown, label: string, where: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    const shown = typeof value === 'number' ? String(value) : value === null ? 'null' : typeof value === 'object' ? Object.prototype.toString.call(value) : `${typeof value} ${JSON.stringify(value)}`
    throw new EvaluationError(`${where} returned ${shown} for ${label}; expected a finite number (higher is better)`, label)
  }
  return value
}
