// The worker side of OrtRunner: owns one onnxruntime-node InferenceSession and runs it on
// request. onnxruntime-node's `session.run` is synchronous on the calling thread, so running it
// here keeps the main thread's event loop free.
import { parentPort } from 'node:worker_threads'
import type { PlainTensor } from './feeds.js'
import type { WorkerRequest, WorkerResponse } from './ortRunnerProtocol.js'

// onnxruntime-node is loaded lazily inside the worker only.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ort = require('onnxruntime-node') as typeof import('onnxruntime-node')

let session: import('onnxruntime-node').InferenceSession | undefined

function reply(msg: WorkerResponse, transfer: ArrayBuffer[] = []): void {
  parentPort!.postMessage(msg, transfer)
}

function errorOf(err: unknown): { name: string; message: string } {
  return err instanceof Error ? { name: err.name, message: err.message } : { name: 'Error', message: String(err) }
}

async function handle(req: WorkerRequest): Promise<void> {
  try {
    switch (req.kind) {
      case 'create': {
        const source = typeof req.model === 'string' ? req.model : req.model
        session = await ort.InferenceSession.create(source as Uint8Array, req.options as import('onnxruntime-node').InferenceSession.SessionOptions)
        const meta = (m: readonly unknown[]) => m.map((v) => ({ ...(v as object) }))
        reply({
          id: req.id,
          ok: true,
          result: {
            inputNames: [...session.inputNames],
            outputNames: [...session.outputNames],
            inputMetadata: meta(session.inputMetadata ?? []),
            outputMetadata: meta(session.outputMetadata ?? []),
          },
        })
        return
      }
      case 'run': {
        if (!session) throw new Error('no session')
        const feeds: Record<string, import('onnxruntime-node').Tensor> = {}
        for (const [name, t] of Object.entries(req.feeds)) feeds[name] = new ort.Tensor(t.type, t.data as never, t.dims)
        // Every output is fetched and the requested ones picked by name: onnxruntime-node 1.23.2
        // keys the results of a fetch list by position in session.outputNames, not by the names
        // asked for (microsoft/onnxruntime#26865, fixed after 1.23), so asking for outputs 2 and 3
        // returned their tensors under the names of outputs 1 and 2.
        const results = await session.run(feeds)
        const wanted = req.outputs ? new Set(req.outputs) : undefined
        if (wanted) for (const name of wanted) if (!(name in results)) throw new Error(`the model has no output ${JSON.stringify(name)}`)
        const out: Record<string, PlainTensor> = {}
        const transfer: ArrayBuffer[] = []
        for (const [name, t] of Object.entries(results)) {
          if (wanted && !wanted.has(name)) { t.dispose?.(); continue }
          const data = t.data as PlainTensor['data']
          out[name] = { type: t.type as PlainTensor['type'], data, dims: [...t.dims] }
          if (ArrayBuffer.isView(data) && data.buffer instanceof ArrayBuffer && !transfer.includes(data.buffer)) transfer.push(data.buffer)
          t.dispose?.()
        }
        try {
          reply({ id: req.id, ok: true, result: out }, transfer)
        } catch {
          // An output buffer that cannot be transferred (external memory) is copied instead.
          reply({ id: req.id, ok: true, result: out })
        }
        return
      }
      case 'close': {
        await session?.release()
        session = undefined
        reply({ id: req.id, ok: true, result: null })
        return
      }
    }
  } catch (err) {
    reply({ id: req.id, ok: false, error: errorOf(err) })
  }
}

// Requests are handled one at a time, in order.
let queue: Promise<void> = Promise.resolve()
parentPort!.on('message', (req: WorkerRequest) => {
  queue = queue.then(() => handle(req))
})
