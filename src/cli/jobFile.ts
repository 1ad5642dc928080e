// `quantkit run job.json`: the job file format (in the spirit of SpacemiT xquant's config), as data
// that both validates a file and generates schemas/job.schema.json, and the conversion to a
// QuantizeJob. An error names the file, the JSON path and what is allowed (for an unknown key, the
// nearest valid one); it is a UsageError, so the CLI exits with 2.
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'
import { existsSync, statSync } from 'node:fs'
import { resolveConfig } from '../config/resolve.js'
import { resolveQuantizerDefaults, QUANT_TYPES } from '../config/quantizerDefaults.js'
import { PRESET_NAMES } from '../config/presets/index.js'
import { formatPath } from '../config/validate.js'
import { nearest } from '../config/nearest.js'
import { ConfigError } from '../errors.js'
import type { DataSourceKind, DataSourceSpec } from '../data/dataSource.js'
import type { ImagePreprocessOptions } from '../data/imagePreprocess.js'
import type { CalibrationScheme } from '../observers.js'
import type { QuantizeJob, TensorOverride } from './quantizeJob.js'
import { UsageError } from './usageError.js'

type PathPart = string | number

/** A bad job file: `path` is the JSON path of the offending key or value ('' for the whole file). */
export class JobFileError extends UsageError {
  override name = 'JobFileError'
  constructor(message: string, readonly file: string, readonly path: string, readonly suggestion?: string) {
    super(message)
  }
}

// ---- The format, as data -------------------------------------------------------------------

interface Common {
  description?: string
  /** Emit this spec once under `$defs/<def>` in the JSON schema and refer to it. */
  def?: string
}

/** One value in a job file. `anyOf` options must differ in JSON type (string, number, boolean, object, array). */
export type FieldSpec = Common & (
  | { type: 'string'; enum?: readonly string[]; minLength?: number }
  | { type: 'integer'; minimum?: number; maximum?: number; enum?: readonly number[]; refused?: Readonly<Record<number, string>> }
  | { type: 'number'; minimum?: number; maximum?: number; exclusiveMinimum?: number }
  | { type: 'boolean'; const?: boolean }
  | { type: 'object'; properties: Readonly<Record<string, FieldSpec>>; required?: readonly string[] }
  | { type: 'array'; items: FieldSpec; minItems?: number; maxItems?: number; uniqueItems?: boolean }
  | { type: 'anyOf'; options: readonly FieldSpec[] }
)

const SCHEMES: readonly CalibrationScheme[] = ['min_max', 'tf_enhanced', 'percentile', 'mse', 'entropy']
const KINDS: readonly DataSourceKind[] = ['images', 'npy', 'npz', 'json', 'module']
const FORMATS = ['encodings', 'qdq'] as const

const size2: FieldSpec = {
  type: 'anyOf',
  options: [
    { type: 'integer', minimum: 1 },
    { type: 'array', items: { type: 'integer', minimum: 1 }, minItems: 2, maxItems: 2, description: '[height, width]' },
  ],
}
const perChannel = (what: string): FieldSpec => ({
  type: 'anyOf',
  description: what,
  options: [{ type: 'number' }, { type: 'array', items: { type: 'number' }, minItems: 1, description: 'one number per channel' }],
})

const PREPROCESS: FieldSpec = {
  type: 'object',
  description: 'Image preprocessing (image folders only), torchvision-style: resize, center crop, then (pixel × scale − mean) / std.',
  properties: {
    resize: { ...size2, description: 'A number: the shorter side in pixels, aspect ratio kept (torchvision Resize(n)); [height, width]: exactly that size.' },
    center_crop: { ...size2, description: 'Cut [height, width] (or n × n) from the middle after resizing.' },
    channel_order: { type: 'string', enum: ['rgb', 'bgr'], description: 'Channel order of a 3-channel input (default rgb).' },
    mean: perChannel('Subtracted per channel after scale, in 0–1 units with the default scale (default 0).'),
    std: perChannel('Divides per channel after subtracting mean (default 1).'),
    scale: { type: 'number', exclusiveMinimum: 0, description: 'Multiplies the 0–255 pixel values first (default 1/255).' },
    layout: { type: 'string', enum: ['nchw', 'nhwc'], description: "Default: from the input's shape." },
    dtype: { type: 'string', enum: ['float32', 'uint8'], description: "Default: the input's element type; uint8 feeds raw pixels." },
    interpolation: { type: 'string', enum: ['nearest', 'bilinear', 'bicubic', 'lanczos'], description: 'Resampling filter for resize (default bilinear).' },
  },
}

const DATA_SOURCE: FieldSpec = {
  type: 'anyOf',
  def: 'dataSource',
  options: [
    { type: 'string', minLength: 1, description: 'A path: an image folder or file, .npy, .npz, .json, or a .js/.mjs/.ts module.' },
    {
      type: 'object',
      required: ['path'],
      properties: {
        path: { type: 'string', minLength: 1, description: 'An image folder or file, .npy, .npz, .json, or a JS/TS module; relative to the job file.' },
        kind: { type: 'string', enum: KINDS, description: 'Default: from the path (a folder or an image file → images, else the extension).' },
        batch_size: { type: 'integer', minimum: 1, description: "Samples per batch (default: the input's fixed batch, else 1)." },
        count: { type: 'integer', minimum: 1, description: 'Use at most this many samples (xquant: calibration_step).' },
        preprocess: PREPROCESS,
      },
    },
  ],
}

const PRECISION_LEVELS: Readonly<Record<number, string>> = {
  0: 'full int8 with calibration, the default',
  1: 'int8 with some sensitive ops at higher precision',
  2: 'int8 with most ops at higher precision',
  3: 'dynamic quantization (weights ahead, activations at run time)',
  4: 'float16 conversion',
}

/** The job file format. schemas/job.schema.json is `jobFileSchema()` of this, checked by a test. */
export const JOB_FILE_FORMAT: FieldSpec = {
  type: 'object',
  description: 'A quantkit job file (quantkit run job.json). Relative paths resolve against the job file\'s folder. See docs/job-file.md.',
  required: ['model', 'calibration'],
  properties: {
    $schema: { type: 'string', description: 'The JSON schema this file follows (for editors); ignored by quantkit.' },
    model: { type: 'string', minLength: 1, description: 'The float ONNX model (xquant: onnx_model).' },
    working_dir: { type: 'string', minLength: 1, description: "Output folder (xquant's name); the same as output.dir, give one of them." },
    output: {
      type: 'object',
      description: 'Where and what to write.',
      properties: {
        dir: { type: 'string', minLength: 1, description: 'Output folder (default: out, beside the job file).' },
        prefix: { type: 'string', minLength: 1, description: "File name prefix (default: the model's file name without .onnx)." },
        formats: { type: 'array', items: { type: 'string', enum: FORMATS }, minItems: 1, uniqueItems: true, description: 'encodings: <prefix>.onnx + <prefix>.encodings (AIMET); qdq: <prefix>.qdq.onnx. Default both.' },
      },
    },
    calibration: { ...DATA_SOURCE, description: 'Calibration data.' },
    evaluation: { ...DATA_SOURCE, description: 'Data to compare FP32 and quantized outputs on (SQNR, top-1 agreement; accuracy with labels).' },
    labels: { type: 'string', minLength: 1, description: 'Class labels of the evaluation samples: .npy of integers, .json array, or one per line.' },
    quantization: {
      type: 'object',
      description: 'Quantization settings.',
      properties: {
        config: { type: 'string', minLength: 1, description: `A preset (${PRESET_NAMES.join(', ')}) or an AIMET quantsim config file (default: default).` },
        preset: { type: 'string', minLength: 1, description: 'The same as config; give one of them.' },
        mode: { type: 'string', enum: ['static', 'dynamic', 'weight-only', 'fp16'], description: 'static (default: QuantSim with calibration), dynamic, weight-only (param_bitwidth 4 or 8), fp16.' },
        precision_level: { type: 'integer', enum: [0, 3, 4], refused: PRECISION_LEVELS, description: "xquant's precision level: 0 full int8 (mode static), 3 dynamic, 4 float16." },
        param_bitwidth: { type: 'integer', minimum: 2, maximum: 32, description: 'Weight bitwidth (default 8).' },
        param_type: { type: 'string', enum: Object.keys(QUANT_TYPES), description: "Weight type, AIMET's names (default int8); or param_bitwidth." },
        activation_bitwidth: { type: 'integer', minimum: 2, maximum: 32, description: 'Activation bitwidth (default 8).' },
        activation_type: { type: 'string', enum: Object.keys(QUANT_TYPES), description: "Activation type, AIMET's names (default int8); or activation_bitwidth." },
        scheme: { type: 'string', enum: SCHEMES, description: 'Activation calibration scheme (default min_max; xquant: calibration_type).' },
        percentile: { type: 'number', minimum: 50, maximum: 100, description: 'For scheme percentile (default 99.99).' },
        prepare: { type: 'boolean', description: 'Prepare the model first (BatchNorm folding and friends); default true.' },
        overrides: {
          type: 'array',
          description: 'Per-tensor changes, applied in order after placement.',
          items: {
            type: 'object',
            required: ['tensor'],
            properties: {
              tensor: { type: 'string', minLength: 1, description: 'An exact tensor name, or /regex/flags.' },
              disable: { type: 'boolean', const: true, description: 'Turn the quantizers off (the same as enabled: false).' },
              enabled: { type: 'boolean', description: 'Turn the quantizers on or off.' },
              bitwidth: { type: 'integer', minimum: 2, maximum: 32, description: 'Bitwidth of these quantizers.' },
              symmetric: { type: 'boolean', description: 'Symmetric or asymmetric grid.' },
            },
          },
        },
      },
    },
    techniques: {
      type: 'object',
      description: "Post-training techniques, applied in AIMET's order: cle before the sim, seq_mse and adaround before calibration, bias_correction after.",
      properties: {
        cle: { type: 'boolean', description: 'Cross-layer equalization and high-bias fold (default false).' },
        seq_mse: { type: 'boolean', description: 'Weight ranges by layer output MSE (default false).' },
        adaround: { type: 'integer', minimum: 1, description: 'AdaRound iterations per layer (AIMET: 10000); omit for none.' },
        bias_correction: { type: 'boolean', description: 'Empirical bias correction after calibration (default false).' },
      },
    },
    analysis: {
      type: 'anyOf',
      description: 'The quantization analyzer (sensitivity, SQNR per layer, weight ranges, histograms) in the report; on by default, as in xquant.',
      options: [
        { type: 'boolean' },
        {
          type: 'object',
          properties: {
            enabled: { type: 'boolean', description: 'Default true.' },
            layers: { type: 'integer', minimum: 1, description: 'Measure the sensitivity of the n largest layers only (default: all).' },
          },
        },
      ],
    },
  },
}

// ---- Validation against the table ------------------------------------------------------------

function jsonType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

function describe(v: unknown): string {
  const t = jsonType(v)
  if (t === 'array') return 'an array'
  if (t === 'object') return 'an object'
  if (t === 'null') return 'null'
  if (t === 'string') return JSON.stringify(String(v).length > 40 ? `${String(v).slice(0, 40)}…` : v)
  return `${t} ${String(v)}`
}

function matchesType(spec: FieldSpec, v: unknown): boolean {
  switch (spec.type) {
    case 'integer': return typeof v === 'number' && Number.isInteger(v)
    case 'number': return typeof v === 'number'
    case 'anyOf': return spec.options.some((o) => matchesType(o, v))
    case 'object': return jsonType(v) === 'object'
    default: return jsonType(v) === spec.type
  }
}

function expected(spec: FieldSpec): string {
  switch (spec.type) {
    case 'string': return spec.enum ? `one of ${spec.enum.map((s) => JSON.stringify(s)).join(', ')}` : 'a string'
    case 'integer': return spec.enum ? `one of ${spec.enum.join(', ')}` : `an integer${range(spec)}`
    case 'number': return `a number${range(spec)}`
    case 'boolean': return spec.const === undefined ? 'true or false' : String(spec.const)
    case 'object': return `an object with keys ${Object.keys(spec.properties).join(', ')}`
    case 'array': return `an array${spec.minItems !== undefined && spec.minItems === spec.maxItems ? ` of ${spec.minItems}` : ''}`
    case 'anyOf': return spec.options.map((o) => (o.type === 'array' && o.description ? o.description : expected(o))).join(', or ')
  }
}

function range(s: { minimum?: number; maximum?: number; exclusiveMinimum?: number }): string {
  if (s.minimum !== undefined && s.maximum !== undefined) return ` from ${s.minimum} to ${s.maximum}`
  if (s.minimum !== undefined) return ` ≥ ${s.minimum}`
  if (s.exclusiveMinimum !== undefined) return ` > ${s.exclusiveMinimum}`
  if (s.maximum !== undefined) return ` ≤ ${s.maximum}`
  return ''
}

class Checker {
  readonly warnings: string[] = []
  constructor(readonly file: string) {}

  fail(path: readonly PathPart[], message: string, suggestion?: string): never {
    const p = formatPath(path)
    throw new JobFileError(`${this.file}: ${p || 'the job file'}: ${message}`, this.file, p, suggestion)
  }

  check(spec: FieldSpec, v: unknown, path: readonly PathPart[]): void {
    if (!matchesType(spec, v)) this.fail(path, `expected ${expected(spec)}, got ${describe(v)}`)
    switch (spec.type) {
      case 'anyOf':
        return this.check(spec.options.find((o) => matchesType(o, v))!, v, path)
      case 'string': {
        const s = v as string
        if (spec.minLength !== undefined && s.length < spec.minLength) this.fail(path, 'expected a non-empty string')
        if (spec.enum && !spec.enum.includes(s)) {
          const near = nearest(s, spec.enum)?.name
          this.fail(path, `unknown value ${describe(s)}; the nearest is "${near}" (allowed: ${spec.enum.join(', ')})`, near)
        }
        return
      }
      case 'integer':
      case 'number': {
        const n = v as number
        if (!Number.isFinite(n)) this.fail(path, `expected a finite number, got ${describe(n)}`)
        if (spec.type === 'integer' && spec.enum && !spec.enum.includes(n)) {
          const refused = spec.refused
          const supported = spec.enum.map((k) => (refused?.[k] ? `${k} (${refused[k]})` : String(k))).join(', ')
          const all = refused ? `; the levels are ${Object.entries(refused).map(([k, d]) => `${k} = ${d}`).join(', ')}` : ''
          this.fail(path, refused?.[n]
            ? `${n} means ${refused[n]}, which is not supported yet; supported: ${supported}${all}`
            : `expected ${spec.enum.length > 1 ? 'one of ' : ''}${supported}, got ${n}${all}`)
        }
        const r = spec as { minimum?: number; maximum?: number; exclusiveMinimum?: number }
        if ((r.minimum !== undefined && n < r.minimum) || (r.maximum !== undefined && n > r.maximum) || (r.exclusiveMinimum !== undefined && n <= r.exclusiveMinimum)) {
          this.fail(path, `expected ${expected(spec)}, got ${n}`)
        }
        return
      }
      case 'boolean':
        if (spec.const !== undefined && v !== spec.const) this.fail(path, `only ${spec.const} is allowed here, got ${describe(v)}`)
        return
      case 'array': {
        const a = v as unknown[]
        if ((spec.minItems !== undefined && a.length < spec.minItems) || (spec.maxItems !== undefined && a.length > spec.maxItems)) {
          const n = spec.minItems === spec.maxItems ? `exactly ${spec.minItems}` : spec.maxItems === undefined ? `at least ${spec.minItems}` : `${spec.minItems ?? 0} to ${spec.maxItems}`
          this.fail(path, `expected ${n} item${spec.maxItems === 1 ? '' : 's'}${spec.description ? ` (${spec.description})` : ''}, got ${a.length}`)
        }
        a.forEach((item, i) => this.check(spec.items, item, [...path, i]))
        if (spec.uniqueItems) {
          const seen = a.map((x) => JSON.stringify(x))
          const dup = seen.findIndex((x, i) => seen.indexOf(x) !== i)
          if (dup >= 0) this.fail([...path, dup], `duplicate item ${describe(a[dup])}`)
        }
        return
      }
      case 'object': {
        const o = v as Record<string, unknown>
        const keys = Object.keys(spec.properties)
        for (const key of Object.keys(o)) {
          if (!keys.includes(key)) {
            const near = nearest(key, keys)?.name
            this.fail([...path, key], `unknown key "${key}"; the nearest valid key is "${near}" (valid keys here: ${keys.join(', ')})`, near)
          }
        }
        for (const key of spec.required ?? []) {
          if (!(key in o)) this.fail(path, `missing required key "${key}"${spec.properties[key]?.description ? ` (${spec.properties[key]!.description})` : ''}`)
        }
        for (const [key, value] of Object.entries(o)) this.check(spec.properties[key]!, value, [...path, key])
        return
      }
    }
  }
}

// ---- The JSON schema, generated from the table -----------------------------------------------

/** schemas/job.schema.json as it must read (draft 2020-12). */
export function jobFileSchema(): Record<string, unknown> {
  const defs: Record<string, unknown> = {}
  const emit = (spec: FieldSpec, top = false): Record<string, unknown> => {
    if (spec.def && !top) {
      if (!(spec.def in defs)) {
        defs[spec.def] = {}
        defs[spec.def] = emit({ ...spec, description: undefined }, true)
      }
      return { ...(spec.description ? { description: spec.description } : {}), $ref: `#/$defs/${spec.def}` }
    }
    const out: Record<string, unknown> = spec.description ? { description: spec.description } : {}
    switch (spec.type) {
      case 'anyOf':
        out.anyOf = spec.options.map((o) => emit(o))
        break
      case 'string':
        out.type = 'string'
        if (spec.enum) out.enum = [...spec.enum]
        if (spec.minLength !== undefined) out.minLength = spec.minLength
        break
      case 'integer':
      case 'number':
        out.type = spec.type
        if (spec.type === 'integer' && spec.enum) out.enum = [...spec.enum]
        for (const k of ['minimum', 'maximum', 'exclusiveMinimum'] as const) {
          const x = (spec as { minimum?: number; maximum?: number; exclusiveMinimum?: number })[k]
          if (x !== undefined) out[k] = x
        }
        break
      case 'boolean':
        out.type = 'boolean'
        if (spec.const !== undefined) out.const = spec.const
        break
      case 'array':
        out.type = 'array'
        out.items = emit(spec.items)
        if (spec.minItems !== undefined) out.minItems = spec.minItems
        if (spec.maxItems !== undefined) out.maxItems = spec.maxItems
        if (spec.uniqueItems) out.uniqueItems = true
        break
      case 'object':
        out.type = 'object'
        out.properties = Object.fromEntries(Object.entries(spec.properties).map(([k, s]) => [k, emit(s)]))
        if (spec.required?.length) out.required = [...spec.required]
        out.additionalProperties = false
        break
    }
    return out
  }
  const root = emit(JOB_FILE_FORMAT)
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'quantkit job file',
    ...root,
    $defs: defs,
  }
}

// ---- The file as JSON, and its conversion to a QuantizeJob ------------------------------------

interface DataSourceJson {
  path: string
  kind?: DataSourceKind
  batch_size?: number
  count?: number
  preprocess?: {
    resize?: number | [number, number]; center_crop?: number | [number, number]; channel_order?: 'rgb' | 'bgr'
    mean?: number | number[]; std?: number | number[]; scale?: number; layout?: 'nchw' | 'nhwc'; dtype?: 'float32' | 'uint8'
    interpolation?: 'nearest' | 'bilinear' | 'bicubic' | 'lanczos'
  }
}

/** A job file as written (after validation against JOB_FILE_FORMAT). */
export interface JobFileJson {
  $schema?: string
  model: string
  working_dir?: string
  output?: { dir?: string; prefix?: string; formats?: ('encodings' | 'qdq')[] }
  calibration: string | DataSourceJson
  evaluation?: string | DataSourceJson
  labels?: string
  quantization?: {
    config?: string; preset?: string; precision_level?: 0 | 3 | 4; mode?: 'static' | 'dynamic' | 'weight-only' | 'fp16'
    param_bitwidth?: number; param_type?: string; activation_bitwidth?: number; activation_type?: string
    scheme?: CalibrationScheme; percentile?: number; prepare?: boolean
    overrides?: { tensor: string; disable?: true; enabled?: boolean; bitwidth?: number; symmetric?: boolean }[]
  }
  analysis?: boolean | { enabled?: boolean; layers?: number }
  techniques?: { cle?: boolean; seq_mse?: boolean; adaround?: number; bias_correction?: boolean }
}

export interface ParsedJob {
  job: QuantizeJob
  /** Settings that do nothing (a percentile without scheme percentile, …), for stderr. */
  warnings: string[]
}

const camel = (k: string) => k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase())

function dataSource(v: string | DataSourceJson, baseDir: string): string | DataSourceSpec {
  if (typeof v === 'string') return resolve(baseDir, v)
  const spec: DataSourceSpec = { path: resolve(baseDir, v.path), baseDir }
  if (v.kind !== undefined) spec.kind = v.kind
  if (v.batch_size !== undefined) spec.batchSize = v.batch_size
  if (v.count !== undefined) spec.count = v.count
  if (v.preprocess) spec.preprocess = Object.fromEntries(Object.entries(v.preprocess).map(([k, x]) => [camel(k), x])) as ImagePreprocessOptions
  return spec
}

function compileTensorMatch(c: Checker, match: string, path: readonly PathPart[]): void {
  const re = /^\/(.*)\/([a-z]*)$/s.exec(match)
  if (!re) return
  try {
    new RegExp(re[1]!, re[2])
  } catch (e) {
    c.fail(path, `not a valid regular expression: ${(e as Error).message}`)
  }
}

/**
 * A config value: a file beside the job file (or anywhere, by path) becomes an absolute path;
 * otherwise a preset name, checked now so that a misspelling is a job-file error with the nearest preset.
 */
function configValue(c: Checker, value: string, baseDir: string, path: readonly PathPart[]): string {
  const file = resolve(baseDir, value)
  const name = existsSync(file) && statSync(file).isFile() ? file : value
  try {
    resolveConfig(name)
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e
    const near = e.path === '' ? e.suggestion : undefined
    const where = e.path ? ` (at ${e.path} in that file)` : ''
    c.fail(path, `${e.message}${where}`, near)
  }
  return name
}

/**
 * Validates a parsed job file and turns it into a QuantizeJob; paths resolve against `baseDir`
 * (the job file's folder). `file` names the job file in messages.
 */
export function jobFromJson(value: unknown, baseDir: string, file = 'job.json'): ParsedJob {
  const c = new Checker(file)
  c.check(JOB_FILE_FORMAT, value, [])
  const j = value as JobFileJson
  const q = j.quantization ?? {}
  const qp = (k: string) => ['quantization', k]

  if (q.config !== undefined && q.preset !== undefined && q.config !== q.preset) {
    c.fail(qp('preset'), `config ${JSON.stringify(q.config)} and preset ${JSON.stringify(q.preset)} name the same setting; give one`)
  }
  const configName = q.config ?? q.preset
  const config = configName === undefined ? undefined : configValue(c, configName, baseDir, qp(q.config !== undefined ? 'config' : 'preset'))
  try {
    resolveQuantizerDefaults({ paramType: q.param_type, paramBitwidth: q.param_bitwidth, activationType: q.activation_type, activationBitwidth: q.activation_bitwidth })
  } catch (e) {
    const which = /^activation/.test((e as Error).message) ? 'activation_type' : 'param_type'
    c.fail(qp(which), (e as Error).message.replace(/paramType|paramBitwidth|activationType|activationBitwidth/g, (m) => m.replace(/[A-Z]/g, (x) => `_${x.toLowerCase()}`)))
  }
  if (q.percentile !== undefined && q.scheme !== 'percentile') {
    c.warnings.push(`${file}: quantization.percentile: ignored, it applies to scheme "percentile" only (scheme is "${q.scheme ?? 'min_max'}")`)
  }

  const overrides: TensorOverride[] = (q.overrides ?? []).map((o, i) => {
    const p = ['quantization', 'overrides', i]
    compileTensorMatch(c, o.tensor, [...p, 'tensor'])
    if (o.disable && o.enabled === true) c.fail([...p, 'enabled'], 'disable: true and enabled: true contradict each other; give one')
    if (o.disable === undefined && o.enabled === undefined && o.bitwidth === undefined && o.symmetric === undefined) {
      c.fail(p, 'an override changes nothing without disable, enabled, bitwidth or symmetric')
    }
    const t: TensorOverride = { match: o.tensor }
    if (o.disable) t.enabled = false
    if (o.enabled !== undefined) t.enabled = o.enabled
    if (o.bitwidth !== undefined) t.bitwidth = o.bitwidth
    if (o.symmetric !== undefined) t.symmetric = o.symmetric
    return t
  })

  if (j.working_dir !== undefined && j.output?.dir !== undefined && resolve(baseDir, j.working_dir) !== resolve(baseDir, j.output.dir)) {
    c.fail(['output', 'dir'], `working_dir ${JSON.stringify(j.working_dir)} and output.dir ${JSON.stringify(j.output.dir)} name the same folder; give one`)
  }
  if (j.labels !== undefined && j.evaluation === undefined) c.fail(['labels'], 'labels need evaluation data (the labelled samples): add "evaluation"')

  const a = j.analysis
  const analysis = typeof a === 'boolean' || a === undefined
    ? { enabled: a ?? true }
    : { enabled: a.enabled ?? true, ...(a.layers !== undefined ? { layers: a.layers } : {}) }
  const model = resolve(baseDir, j.model)
  const sim: QuantizeJob['sim'] = {}
  if (config !== undefined) sim.config = config
  if (q.prepare !== undefined) sim.prepare = q.prepare
  if (q.scheme !== undefined) sim.quantScheme = q.scheme
  if (q.percentile !== undefined) sim.percentile = q.percentile
  if (q.param_bitwidth !== undefined) sim.paramBitwidth = q.param_bitwidth
  if (q.param_type !== undefined) sim.paramType = q.param_type
  if (q.activation_bitwidth !== undefined) sim.activationBitwidth = q.activation_bitwidth
  if (q.activation_type !== undefined) sim.activationType = q.activation_type

  const job: QuantizeJob = {
    model,
    calibration: dataSource(j.calibration, baseDir),
    sim,
    overrides,
    analysis,
    output: {
      dir: resolve(baseDir, j.output?.dir ?? j.working_dir ?? 'out'),
      prefix: j.output?.prefix ?? basename(model).replace(/\.onnx$/i, ''),
      formats: [...(j.output?.formats ?? FORMATS)],
    },
  }
  if (j.evaluation !== undefined) job.evaluation = dataSource(j.evaluation, baseDir)
  if (j.labels !== undefined) job.labels = resolve(baseDir, j.labels)
  if (j.techniques) {
    job.techniques = { cle: j.techniques.cle, seqMse: j.techniques.seq_mse, adaroundIterations: j.techniques.adaround, biasCorrection: j.techniques.bias_correction }
  }
  // xquant's precision levels are modes: 3 → dynamic, 4 → fp16 (0 is the default, static).
  const levelMode = q.precision_level === 3 ? 'dynamic' : q.precision_level === 4 ? 'fp16' : undefined
  if (levelMode && q.mode && q.mode !== levelMode) {
    throw new JobFileError(`${file}: quantization.precision_level ${q.precision_level} means mode "${levelMode}" but quantization.mode is "${q.mode}"; give one of them`, file, 'quantization.mode')
  }
  const mode = q.mode ?? levelMode
  if (mode && mode !== 'static') job.mode = mode
  return { job, warnings: c.warnings }
}

/** `line L, column C` for a JSON.parse error's "position N". */
function where(text: string, message: string): string {
  const m = /position (\d+)/.exec(message)
  if (!m) return ''
  const before = text.slice(0, Number(m[1]))
  const line = before.split('\n').length
  return ` (line ${line}, column ${before.length - before.lastIndexOf('\n')})`
}

/** Reads, validates and converts a job file; relative paths resolve against its folder. */
export async function readJobFile(path: string): Promise<ParsedJob> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new JobFileError(`${path}: cannot read the job file: ${(e as Error).message}`, path, '')
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new JobFileError(`${path}: not valid JSON${where(text, (e as Error).message)}: ${(e as Error).message}`, path, '')
  }
  return jobFromJson(json, dirname(resolve(path)), path)
}
