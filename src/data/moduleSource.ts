// A JS module that makes the feeds itself (tokenizers, audio, custom image code). It exports, as
// `default`, `feeds` or `data`: an array or (async) iterable of feeds, or a function returning
// one (async functions and async generator functions included). A function is called with
// `{ inputs, batchSize, count }` once per pass, so each pass starts afresh.
import { pathToFileURL } from 'node:url'
import { DataSourceError } from '../errors.js'
import type { ValueInfo } from '../graph/model.js'
import { limitSamples } from './batchPlan.js'
import { feedsFromValue } from './feedValues.js'
import { requiredInputs, staticBatch, type ModelInputs, type PlainFeeds } from './modelInputs.js'

/** What a module's function receives. */
export interface DataModuleContext {
  /** The inputs to feed (those not backed by initializers). */
  inputs: ValueInfo[]
  batchSize?: number
  count?: number
}

export interface ModuleSource {
  kind: 'module'
  count?: number
  batches(): AsyncGenerator<PlainFeeds>
  describe(): string
}

const EXPORT_NAMES = ['default', 'feeds', 'data'] as const

const isIterable = (v: unknown): v is Iterable<unknown> | AsyncIterable<unknown> =>
  v != null && typeof v === 'object' && (Symbol.iterator in v || Symbol.asyncIterator in v)

/** An iterator that is its own iterable can be walked once only. */
const isOneShot = (v: Iterable<unknown> | AsyncIterable<unknown>): boolean =>
  !Array.isArray(v) && typeof (v as { next?: unknown }).next === 'function'

export async function openModule(path: string, model: ModelInputs, opts: { batchSize?: number; count?: number }): Promise<ModuleSource> {
  let mod: Record<string, unknown>
  try {
    // A real dynamic import (kept as import() in the CommonJS build): .mjs, .cjs and .js alike.
    mod = await import(pathToFileURL(path).href) as Record<string, unknown>
  } catch (e) {
    const code = (e as { code?: string }).code
    const hint = code === 'ERR_UNKNOWN_FILE_EXTENSION' ? ' (this Node cannot load TypeScript directly: compile the module to .mjs, or use a Node that strips types)' : ''
    throw new DataSourceError(`${path}: cannot load the data module${hint}: ${(e as Error).message}`, { file: path }, { cause: e })
  }
  // A CommonJS module's exports arrive as `default`; look inside it for `feeds` / `data` as well.
  const holders = [mod, mod.default as Record<string, unknown> | undefined]
  let found: { name: string; value: unknown } | undefined
  for (const name of EXPORT_NAMES) {
    for (const h of holders) {
      if (found || h == null || (typeof h !== 'object' && typeof h !== 'function')) continue
      const v = h[name]
      if (typeof v === 'function' || isIterable(v)) found = { name: h === mod ? name : `default.${name}`, value: v }
    }
  }
  if (!found) {
    const names = Object.keys(mod).concat(mod.default && typeof mod.default === 'object' ? Object.keys(mod.default).map((k) => `default.${k}`) : [])
    throw new DataSourceError(`${path}: the module exports no feeds; export (as default, "feeds" or "data") an array or (async) iterable of feeds, or a function returning one; it exports ${names.length ? names.join(', ') : 'nothing'}`, { file: path })
  }
  const exported = found
  const ctx: DataModuleContext = { inputs: requiredInputs(model), batchSize: opts.batchSize, count: opts.count }
  const first = requiredInputs(model)[0]
  const fixed = first !== undefined && staticBatch(first) !== undefined
  let passes = 0

  async function iterableOf(): Promise<Iterable<unknown> | AsyncIterable<unknown>> {
    let v = exported.value
    if (typeof v === 'function') {
      try {
        v = await (v as (c: DataModuleContext) => unknown)(ctx)
      } catch (e) {
        throw new DataSourceError(`${path}: export "${exported.name}" threw: ${(e as Error).message}`, { file: path }, { cause: e })
      }
    }
    if (!isIterable(v)) {
      throw new DataSourceError(`${path}: export "${exported.name}" returned ${v === null ? 'null' : typeof v}, not an array or (async) iterable of feeds`, { file: path })
    }
    if (isOneShot(v) && typeof exported.value !== 'function' && passes > 0) {
      throw new DataSourceError(`${path}: export "${exported.name}" is an iterator and can be read once only; export a function (e.g. an async generator function) or an array to read it again`, { file: path })
    }
    return v
  }

  async function* checked(): AsyncGenerator<PlainFeeds> {
    const source = await iterableOf()
    passes++
    let i = 0
    for await (const batch of source as AsyncIterable<unknown>) {
      yield feedsFromValue(batch, model, path, `${path}, batch ${i}`)
      i++
    }
  }

  let count: number | undefined
  if (Array.isArray(exported.value)) {
    count = 0
    for await (const f of limitSamples(checked(), opts.count, fixed)) {
      const t = first && f[first.name]
      count += t && t.dims.length > 0 ? t.dims[0]! : 1
    }
  }

  return {
    kind: 'module',
    count,
    batches: () => limitSamples(checked(), opts.count, fixed),
    describe: () => `module: ${path} (export "${exported.name}"${count === undefined ? '' : `, ${count} samples`})`,
  }
}
