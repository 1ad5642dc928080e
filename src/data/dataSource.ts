// openDataSource: calibration and evaluation data (`--calib <source>`, `--data <source>`, job
// files) as batches of feeds for a model's inputs. The kind comes from the path: a folder (or a
// single file) of images, .npy, .npz, .json, or a JS module. Every batch is checked against the
// model, and a mismatch is reported against the file, with what the model expects.
import { stat } from 'node:fs/promises'
import { extname, resolve } from 'node:path'
import { DataSourceError } from '../errors.js'
import { openNpy, openNpz } from './arraySource.js'
import { checkBatchOptions } from './batchPlan.js'
import type { ImagePreprocessOptions } from './imagePreprocess.js'
import { IMAGE_EXTENSIONS, openImages } from './imageSource.js'
import { openJson } from './jsonSource.js'
import type { ModelInputs, PlainFeeds } from './modelInputs.js'
import { openModule } from './moduleSource.js'

export type DataSourceKind = 'images' | 'npy' | 'npz' | 'json' | 'module'

export interface DataSourceOptions {
  /**
   * Samples per batch for images, .npy and .npz (JSON and module batches come as written).
   * Default: the input's leading dim when it is fixed, else 1.
   */
  batchSize?: number
  /** At most this many samples (`--calib-count`). */
  count?: number
  /** Image preprocessing; ignored by other kinds. */
  preprocess?: ImagePreprocessOptions
  /** Relative paths resolve against this folder (a job file's); default the working directory. */
  baseDir?: string
}

/** A source as a job file gives it. Options given to openDataSource override these, key by key. */
export interface DataSourceSpec extends DataSourceOptions {
  path: string
  /** Default: from the path (folder or image file → images, else by extension). */
  kind?: DataSourceKind
}

export interface DataSource {
  readonly kind: DataSourceKind
  /** The resolved path. */
  readonly path: string
  /** Samples the batches hold, when known before iterating (all kinds but non-array modules). */
  readonly count?: number
  /** Batches in a deterministic order; each call starts a new pass. Plain tensors: `{ type, data, dims }`. */
  batches(): AsyncIterable<PlainFeeds>
  /** One line for logs and reports: the files, the mapping to inputs, the preprocessing, the batching. */
  describe(): string
}

const MODULE_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts']
const KINDS: readonly DataSourceKind[] = ['images', 'npy', 'npz', 'json', 'module']

function kindOf(path: string, isDir: boolean): DataSourceKind | undefined {
  if (isDir) return 'images'
  const ext = extname(path).toLowerCase()
  if (IMAGE_EXTENSIONS.includes(ext)) return 'images'
  if (ext === '.npy') return 'npy'
  if (ext === '.npz') return 'npz'
  if (ext === '.json') return 'json'
  if (MODULE_EXTENSIONS.includes(ext)) return 'module'
  return undefined
}

export async function openDataSource(spec: string | DataSourceSpec, model: ModelInputs, options: DataSourceOptions = {}): Promise<DataSource> {
  const s: DataSourceSpec = typeof spec === 'string' ? { path: spec } : spec
  if (typeof s.path !== 'string' || s.path === '') throw new DataSourceError('data source: no path given', { file: '' })
  const baseDir = options.baseDir ?? s.baseDir ?? process.cwd()
  const path = resolve(baseDir, s.path)
  const batchSize = options.batchSize ?? s.batchSize
  const count = options.count ?? s.count
  const preprocess = s.preprocess || options.preprocess ? { ...s.preprocess, ...options.preprocess } : undefined
  checkBatchOptions(batchSize, count, path)

  let isDir: boolean
  try {
    isDir = (await stat(path)).isDirectory()
  } catch (e) {
    throw new DataSourceError(`${path}: no such file or folder${s.path !== path ? ` (from "${s.path}")` : ''}`, { file: path }, { cause: e })
  }
  if (s.kind !== undefined && !KINDS.includes(s.kind)) {
    throw new DataSourceError(`${path}: unknown data source kind "${String(s.kind)}"; the kinds are ${KINDS.join(', ')}`, { file: path })
  }
  const kind = s.kind ?? kindOf(path, isDir)
  if (kind === undefined) {
    throw new DataSourceError(`${path}: unknown kind of data source; give a folder of images (${IMAGE_EXTENSIONS.join(', ')}), a .npy, .npz or .json file, or a module (${MODULE_EXTENSIONS.join(', ')})`, { file: path })
  }
  if (isDir && kind !== 'images') throw new DataSourceError(`${path}: is a folder; only images come as a folder`, { file: path })

  const src = kind === 'images' ? await openImages(path, model, { batchSize, count, preprocess })
    : kind === 'npy' ? await openNpy(path, model, { batchSize, count })
    : kind === 'npz' ? await openNpz(path, model, { batchSize, count })
    : kind === 'json' ? await openJson(path, model, { count })
    : await openModule(path, model, { batchSize, count })
  return { kind, path, count: src.count, batches: () => src.batches(), describe: () => src.describe() }
}
