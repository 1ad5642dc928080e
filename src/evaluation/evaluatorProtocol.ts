// Messages between workerEvaluator.ts (main thread) and evaluatorWorker.ts.

export type EvaluatorRequest =
  | { kind: 'init'; modulePath: string; worker: number; threads: number }
  | { kind: 'evaluate'; id: number; bytes: Uint8Array; label: string }

export type EvaluatorResponse =
  | { kind: 'ready' }
  | { kind: 'init-error'; message: string }
  /** `score` is the function's value when it is a number; otherwise `returned` describes what came back. */
  | { kind: 'result'; id: number; ok: true; score?: number; returned?: string }
  | { kind: 'result'; id: number; ok: false; message: string }
