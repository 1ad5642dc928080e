// .npy and .npz sources: arrays holding N samples along axis 0, fed in batches. Only the headers
// are read when the source opens; each batch is one positioned read (stored entries) or a slice
// of the inflated entry (np.savez_compressed), copied once into an aligned typed array.
import { open, stat } from 'node:fs/promises'
import { DataSourceError } from '../errors.js'
import type { ValueInfo } from '../graph/model.js'
import { planBatches, type BatchPlan } from './batchPlan.js'
import { checkTensor, describeInput, describeInputs, formatDims, requiredInputs, staticBatch, type ModelInputs, type PlainFeeds } from './modelInputs.js'
import { NPY_PREFIX_BYTES, npyElements, npyHeaderEnd, parseNpyHeader, type NpyHeader } from './npy.js'
import { entryDataOffset, readZipDirectory, readZipEntry } from './zip.js'

export interface ArraySourceOptions {
  batchSize?: number
  count?: number
}

interface Reader {
  /** Bytes of the array's data, from `offset` (relative to the data's start). */
  read(offset: number, length: number): Promise<Uint8Array>
  close(): Promise<void>
}

/** One array of a .npy or .npz, bound to a model input. */
interface BoundArray {
  input: ValueInfo
  /** `data.npy` or `data.npz:input.npy`, for messages. */
  label: string
  header: NpyHeader
  /** True when the array has no batch axis of its own: one sample per feed, stacked along a new axis 0. */
  stacked: boolean
  open(): Promise<Reader>
}

export interface ArraySource {
  kind: 'npy' | 'npz'
  count: number
  batches(): AsyncGenerator<PlainFeeds>
  describe(): string
}

async function positionedReader(path: string, base: number): Promise<Reader> {
  const fh = await open(path, 'r')
  return {
    async read(offset, length) {
      const buf = new Uint8Array(length)
      const { bytesRead } = await fh.read(buf, 0, length, base + offset)
      if (bytesRead !== length) throw new DataSourceError(`${path}: file shrank while being read`, { file: path })
      return buf
    },
    close: () => fh.close(),
  }
}

async function readHeaderAt(path: string, base: number, available: number, label: string): Promise<NpyHeader> {
  const fh = await open(path, 'r')
  try {
    const prefix = new Uint8Array(Math.min(NPY_PREFIX_BYTES, available))
    await fh.read(prefix, 0, prefix.length, base)
    const end = npyHeaderEnd(prefix, label)
    const head = new Uint8Array(Math.min(end, available))
    await fh.read(head, 0, head.length, base)
    return parseNpyHeader(head, available, label)
  } finally {
    await fh.close()
  }
}

/** How an array's shape maps onto an input: batched along axis 0, or one sample per feed. */
function bind(input: ValueInfo, header: NpyHeader, label: string, file: string, open: () => Promise<Reader>): BoundArray {
  const s = header.shape
  const want = input.shape
  if (s.length === 0) {
    throw new DataSourceError(`${label}: a 0-d array cannot hold samples; input ${describeInput(input)} needs N samples along axis 0`, { file, input: input.name })
  }
  let stacked = false
  // One more axis than the input: samples stacked along a new axis 0, unless the input's own
  // leading dim is a free batch dim (then the ranks simply disagree).
  const freeBatch = want !== undefined && want.length > 0 && typeof want[0] !== 'number'
  if (want !== undefined && s.length === want.length + 1 && !freeBatch) stacked = true
  else if (want !== undefined && s.length !== want.length) {
    throw new DataSourceError(`${label}: shape ${formatDims(s)} does not fit input ${describeInput(input)}; give its samples along axis 0 (a ${want.length}-d array, batched${freeBatch ? '' : `; or ${want.length + 1}-d, one sample per feed`})`, { file, input: input.name })
  }
  return { input, label, header, stacked, open }
}

function dimsOf(a: BoundArray, batch: number): number[] {
  return a.stacked ? a.header.shape.slice(1) : [batch, ...a.header.shape.slice(1)]
}

function makeSource(kind: 'npy' | 'npz', file: string, arrays: BoundArray[], ignored: string[], opts: ArraySourceOptions): ArraySource {
  const n = arrays[0]!.header.shape[0]!
  for (const a of arrays) {
    if (a.header.shape[0] !== n) {
      throw new DataSourceError(`${file}: arrays hold different numbers of samples: ${arrays.map((b) => `${b.label} ${b.header.shape[0]}`).join(', ')}`, { file })
    }
  }
  const stacked = arrays[0]!.stacked
  const fixed = stacked ? 1 : staticBatch(arrays[0]!.input)
  if (fixed !== undefined && opts.batchSize !== undefined && opts.batchSize !== fixed) {
    throw new DataSourceError(`${file}: batchSize ${opts.batchSize} does not fit input ${describeInput(arrays[0]!.input)}${stacked ? ', whose arrays hold one sample per feed' : ''}; its batch is fixed at ${fixed}`, { file, input: arrays[0]!.input.name })
  }
  const batchSize = opts.batchSize ?? fixed ?? 1
  const plan: BatchPlan = planBatches(n, batchSize, fixed !== undefined, opts.count)
  if (plan.count === 0) {
    throw new DataSourceError(`${file}: no complete batch: ${n} sample(s) but input ${describeInput(arrays[0]!.input)} takes batches of ${batchSize}`, { file })
  }
  // Shapes and types are known now: check them before any data is read.
  for (const a of arrays) {
    const where = `${a.label} (array ${a.header.descr} ${formatDims(a.header.shape)}${a.stacked ? ', one sample per feed' : ', batched along axis 0'})`
    checkTensor({ type: a.header.type, data: new Uint8Array(0), dims: dimsOf(a, Math.min(batchSize, plan.count)) }, a.input, file, where)
  }

  async function* batches(): AsyncGenerator<PlainFeeds> {
    const readers: Reader[] = []
    try {
      for (const a of arrays) readers.push(await a.open())
      for (const [first, size] of plan.batches) {
        const feeds: PlainFeeds = {}
        for (let i = 0; i < arrays.length; i++) {
          const a = arrays[i]!
          const per = (a.header.size / n) * a.header.itemSize
          const bytes = await readers[i]!.read(first * per, size * per)
          feeds[a.input.name] = { type: a.header.type, data: npyElements(a.header, bytes), dims: dimsOf(a, size) }
        }
        yield feeds
      }
    } finally {
      for (const r of readers) await r.close()
    }
  }

  return {
    kind,
    count: plan.count,
    batches,
    describe() {
      const arr = arrays.map((a) => `${a.label} ${a.header.descr} ${formatDims(a.header.shape)} → "${a.input.name}"${a.stacked ? ' (one sample per feed)' : ''}`).join('; ')
      const extra = [
        plan.dropped ? `${plan.dropped} sample(s) dropped to keep batches full` : '',
        ignored.length ? `ignored: ${ignored.join(', ')}` : '',
      ].filter(Boolean).join('; ')
      return `${kind}: ${arr}; ${plan.count} of ${n} samples in batches of ${batchSize}${extra ? `; ${extra}` : ''}`
    },
  }
}

export async function openNpy(path: string, model: ModelInputs, opts: ArraySourceOptions): Promise<ArraySource> {
  const req = requiredInputs(model)
  if (req.length !== 1) {
    throw new DataSourceError(`${path}: a .npy file holds one array but the model has ${req.length} inputs (${describeInputs(model)}); use a .npz with one array per input name`, { file: path })
  }
  const size = (await stat(path)).size
  const header = await readHeaderAt(path, 0, size, path)
  const a = bind(req[0]!, header, path, path, () => positionedReader(path, header.dataOffset))
  return makeSource('npy', path, [a], [], opts)
}

export async function openNpz(path: string, model: ModelInputs, opts: ArraySourceOptions): Promise<ArraySource> {
  const size = (await stat(path)).size
  const fh = await open(path, 'r')
  let entries
  try {
    entries = (await readZipDirectory(fh, size, path)).filter((e) => e.name.endsWith('.npy'))
  } finally {
    await fh.close()
  }
  const names = entries.map((e) => e.name.slice(0, -4))
  const req = requiredInputs(model)
  const chosen = new Map<ValueInfo, (typeof entries)[number]>()
  for (const v of req) {
    const e = entries.find((x) => x.name === `${v.name}.npy`)
    if (e) chosen.set(v, e)
  }
  // np.savez(f, arr) names a positional array arr_0: accept it for a one-input model.
  if (chosen.size === 0 && req.length === 1 && entries.length === 1) chosen.set(req[0]!, entries[0]!)
  const missing = req.filter((v) => !chosen.has(v))
  if (missing.length > 0) {
    throw new DataSourceError(`${path}: no array for input${missing.length > 1 ? 's' : ''} ${missing.map(describeInput).join(', ')}; the file holds ${names.length ? names.map((n) => `"${n}"`).join(', ') : 'no arrays'}; name each array after a model input (np.savez(f, **{"${missing[0]!.name}": x}))`, { file: path, input: missing[0]!.name })
  }
  const used = new Set(chosen.values())
  const ignored = entries.filter((e) => !used.has(e)).map((e) => `"${e.name.slice(0, -4)}"`)

  const arrays: BoundArray[] = []
  const dir = await open(path, 'r')
  try {
    for (const [input, entry] of chosen) {
      const label = `${path}:${entry.name}`
      if (entry.method === 0) {
        const start = await entryDataOffset(dir, entry, size, path)
        const header = await readHeaderAt(path, start, entry.uncompressedSize, label)
        arrays.push(bind(input, header, label, path, () => positionedReader(path, start + header.dataOffset)))
      } else {
        // Deflated (np.savez_compressed): inflate once, keep the bytes for every pass.
        const bytes = await readZipEntry(dir, entry, size, path)
        const header = parseNpyHeader(bytes, bytes.length, label)
        const data = bytes.subarray(header.dataOffset)
        arrays.push(bind(input, header, label, path, async () => ({
          read: async (offset, length) => data.subarray(offset, offset + length),
          close: async () => {},
        })))
      }
    }
  } finally {
    await dir.close()
  }
  return makeSource('npz', path, arrays, ignored, opts)
}
