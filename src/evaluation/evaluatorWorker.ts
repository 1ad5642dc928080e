// The worker side of workerEvaluator.ts: loads the user's module once and runs its `evaluate`
// (the named export, or `default.evaluate`, or a default function) on each candidate, one at a
// time. The module may run onnxruntime-node synchronously: this thread is the one it blocks.
import { pathToFileURL } from 'node:url'
import { parentPort } from 'node:worker_threads'
import type { EvaluatorRequest, EvaluatorResponse } from './evaluatorProtocol.js'

type Fn = (bytes: Uint8Array, ctx: { label: string; worker: number; threads: number }) => unknown

let evaluate: Fn | undefined
let context = { worker: 0, threads: 1 }

function post(msg: EvaluatorResponse): void {
  parentPort!.postMessage(msg)
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (typeof v === 'object') return Object.prototype.toString.call(v)
  return `${typeof v} ${String(v)}`
}

async function handle(req: EvaluatorRequest): Promise<void> {
  if (req.kind === 'init') {
    context = { worker: req.worker, threads: req.threads }
    try {
      const mod = await import(pathToFileURL(req.modulePath).href) as Record<string, unknown>
      const d = mod.default as Record<string, unknown> | ((...a: unknown[]) => unknown) | undefined
      const fn = mod.evaluate ?? (typeof d === 'function' ? d : d?.evaluate)
      if (typeof fn !== 'function') {
        post({ kind: 'init-error', message: `${req.modulePath} exports no function \`evaluate(modelBytes, ctx)\` (exports: ${Object.keys(mod).join(', ') || 'none'})` })
        return
      }
      evaluate = fn as Fn
      post({ kind: 'ready' })
    } catch (err) {
      post({ kind: 'init-error', message: `cannot load ${req.modulePath}: ${err instanceof Error ? err.message : String(err)}` })
    }
    return
  }
  try {
    const value = await evaluate!(req.bytes, { label: req.label, ...context })
    post(typeof value === 'number' ? { kind: 'result', id: req.id, ok: true, score: value } : { kind: 'result', id: req.id, ok: true, returned: describe(value) })
  } catch (err) {
    post({ kind: 'result', id: req.id, ok: false, message: err instanceof Error ? err.message : String(err) })
  }
}

let queue: Promise<void> = Promise.resolve()
parentPort!.on('message', (req: EvaluatorRequest) => {
  queue = queue.then(() => handle(req))
})
