// A JSON file holding a list of feeds: each element is one batch, `{ inputName: value }`, where a
// value is `{ dims, data: number[], type? }` or nested arrays (dims from the nesting). Numbers
// take the model input's element type; an explicit `type` must match it.
import { readFile } from 'node:fs/promises'
import { DataSourceError } from '../errors.js'
import { limitSamples } from './batchPlan.js'
import { feedsFromValue } from './feedValues.js'
import { requiredInputs, staticBatch, type ModelInputs, type PlainFeeds } from './modelInputs.js'

export interface JsonSource {
  kind: 'json'
  count?: number
  batches(): AsyncGenerator<PlainFeeds>
  describe(): string
}

export async function openJson(path: string, model: ModelInputs, opts: { count?: number }): Promise<JsonSource> {
  let parsed: unknown
  try {
    parsed = JSON.parse(await readFile(path, 'utf8'))
  } catch (e) {
    throw new DataSourceError(`${path}: not valid JSON: ${(e as Error).message}`, { file: path }, { cause: e })
  }
  if (!Array.isArray(parsed)) {
    throw new DataSourceError(`${path}: expected a JSON list of feeds ([{ "<input>": { "dims": [...], "data": [...] } }, ...]), got ${parsed === null ? 'null' : typeof parsed}`, { file: path })
  }
  if (parsed.length === 0) throw new DataSourceError(`${path}: the list of feeds is empty`, { file: path })
  // Small by nature (numbers as text): convert and check every batch now, so errors come before any work.
  const all = parsed.map((b, i) => feedsFromValue(b, model, path, `${path}, batch ${i}`))
  const first = requiredInputs(model)[0]
  const fixed = first !== undefined && staticBatch(first) !== undefined
  const samples = (f: PlainFeeds): number => { const t = first && f[first.name]; return t && t.dims.length > 0 ? t.dims[0]! : 1 }
  let count = 0
  const taken: PlainFeeds[] = []
  for await (const f of limitSamples((async function* () { yield* all })(), opts.count, fixed)) {
    taken.push(f)
    count += samples(f)
  }
  return {
    kind: 'json',
    count,
    async *batches() { yield* taken },
    describe: () => `json: ${path} (${taken.length} of ${all.length} batches, ${count} samples)`,
  }
}
