// ModelSource: what every quantkit entry point accepts as a model (DECISIONS.md, "API shapes"):
// a file path, the file's bytes, or a Model already loaded.

import type { Model } from '../graph/model.js'
import { loadModel, type LoadOptions } from './loadModel.js'

export type ModelSource = string | Uint8Array | Model

/** True for a loaded Model (checked by shape, not by class: Models are plain objects). */
export function isModel(source: unknown): source is Model {
  if (typeof source !== 'object' || source === null || ArrayBuffer.isView(source)) return false
  const m = source as Partial<Model>
  return typeof m.irVersion === 'number' && Array.isArray(m.opsetImports) && typeof m.graph === 'object' && m.graph !== null
}

/**
 * The Model a source stands for: a path or bytes are loaded (with `opts`), a Model is returned
 * as it is (not copied: transforms copy what they change, see model.ts).
 */
export async function resolveModelSource(source: ModelSource, opts?: LoadOptions): Promise<Model> {
  if (isModel(source)) return source
  if (typeof source === 'string' || ArrayBuffer.isView(source)) return loadModel(source, opts)
  throw new TypeError(
    `expected a model: a file path, a Uint8Array of ONNX bytes or a loaded Model, got ${Object.prototype.toString.call(source)}`,
  )
}
