// Messages between OrtRunner (main thread) and its worker.
import type { PlainTensor } from './feeds.js'

export type WorkerRequest =
  | { id: number; kind: 'create'; model: Uint8Array | string; options: Record<string, unknown> }
  | { id: number; kind: 'run'; feeds: Record<string, PlainTensor>; outputs?: string[] }
  | { id: number; kind: 'close' }

export type WorkerResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string } }
