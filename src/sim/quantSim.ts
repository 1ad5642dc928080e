// QuantSim: the ONNX counterpart of AIMET's QuantizationSimModel. Places quantizers in a
// (prepared) model, calibrates them on data, simulates quantized inference, exports what
// runtimes load. See docs/quantsim.md.
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { computeEncoding, type Encoding, type EncodingOptions } from '../encoding.js'
import { QuantkitError } from '../errors.js'
import { resolveConfig, type ResolvedConfig } from '../config/resolve.js'
import { resolveQuantizerDefaults, type QuantizerDefaultsOptions } from '../config/quantizerDefaults.js'
import { prepareModel } from '../graph/prepare/prepareModel.js'
import type { PrepareReport } from '../graph/prepare/report.js'
import type { Model } from '../graph/model.js'
import { HistogramObserver, MinMaxObserver, type CalibrationScheme } from '../observers.js'
import { resolveModelSource, type ModelSource } from '../onnx/modelSource.js'
import { modelToBytes, saveModel } from '../onnx/saveModel.js'
import { buildQdqModel, type QdqBuildReport } from '../export/qdqModel.js'
import { ENCODING_VERSIONS, encodingsFileV061, encodingsFileV1, type EncodingVersion, type QuantizerArgs } from '../export/encodingsFile.js'
import { encodingsFileV2 } from '../export/encodingsFileV2.js'
import { parseEncodingsFile, readEncodingsFile } from '../export/readEncodingsFile.js'
import { applyEncodings, type LoadEncodingsOptions, type LoadEncodingsResult } from './loadEncodings.js'
import { calibrate, type CalibrateOptions } from './calibrator.js'
import type { CalibrationData } from './calibrationData.js'
import type { ObserveTarget } from './calibrationProtocol.js'
import type { Feeds, PlainTensor } from './feeds.js'
import { OrtRunner } from './ortRunner.js'
import { placeQuantizers, type Placement } from './placement.js'
import type { Quantizer } from './quantizer.js'
import { discoverValueTypes } from './valueTypes.js'

export class QuantSimError extends QuantkitError {
  override name = 'QuantSimError'
}

const SCHEMES: readonly CalibrationScheme[] = ['min_max', 'tf_enhanced', 'percentile', 'mse', 'entropy']

export interface QuantSimOptions extends QuantizerDefaultsOptions {
  /** Calibration scheme for activations: min_max (AIMET's default), tf_enhanced, percentile, mse, entropy. */
  quantScheme?: CalibrationScheme
  /** For quantScheme 'percentile': in [50, 100]; default 99.99. */
  percentile?: number
  /** A preset name ('default', 'per_tensor', 'htp_v73', …), a config file path, or a config object. */
  config?: string | object
  /** Run prepareModel first (BN folding and friends); default true. */
  prepare?: boolean
  /** ORT threads for calibration and simulation; default: the machine's parallelism. */
  intraOpNumThreads?: number
}

export interface QuantSimReport {
  config: string
  preparation?: PrepareReport
  placement: Pick<Placement, 'fusions' | 'notes'>
  quantizers: { activations: number; params: number; disabled: number; tied: number }
}

export interface SetQuantizerOptions {
  enabled?: boolean
  bitwidth?: number
  symmetric?: boolean
  /** Params only: per-channel on the op's channel axis (true) or per-tensor (false). */
  perChannel?: boolean
}

export interface ExportOptions {
  /** 'encodings' (AIMET JSON + the float model) and/or 'qdq' (a QDQ model); default both. */
  formats?: ('encodings' | 'qdq')[]
  /**
   * AIMET encodings format version: '1.0.0' (default, aimet-onnx's), '0.6.1' (legacy, keyed by
   * tensor name) or '2.0.0' (QuantizeLinear terms, with int32 biases and encodings copied through
   * data-movement ops, as aimet-onnx 2.42 writes it).
   */
  encodingVersion?: EncodingVersion
  /** Lowest opset for the QDQ model (default 13). */
  opset?: number
}

export interface ExportResult {
  files: string[]
  qdq?: QdqBuildReport
}

const VERSION = (require('../../package.json') as { version: string }).version

export class QuantSim {
  /** The float model the sim quantizes (prepared unless `prepare: false`). */
  readonly model: Model
  readonly report: QuantSimReport
  readonly #quantizers: Quantizer[]
  readonly #scheme: CalibrationScheme
  readonly #percentile: number | undefined
  readonly #threads: number | undefined
  readonly #args: { activationBitwidth: number; paramBitwidth: number; perChannel: boolean; dtype: 'int' | 'float' }
  #runner: Promise<OrtRunner> | undefined
  #calibrated = false
  #busy = false

  private constructor(model: Model, quantizers: Quantizer[], report: QuantSimReport, opts: QuantSimOptions, args: { activationBitwidth: number; paramBitwidth: number; perChannel: boolean; dtype: 'int' | 'float' }) {
    this.model = model
    this.#quantizers = quantizers
    this.report = report
    this.#scheme = opts.quantScheme ?? 'min_max'
    this.#percentile = opts.percentile
    this.#threads = opts.intraOpNumThreads
    this.#args = args
  }

  static async create(source: ModelSource, opts: QuantSimOptions = {}): Promise<QuantSim> {
    if (opts.quantScheme !== undefined && !SCHEMES.includes(opts.quantScheme)) {
      throw new TypeError(`quantScheme: unknown scheme '${String(opts.quantScheme)}'; expected one of ${SCHEMES.join(', ')}`)
    }
    if (opts.percentile !== undefined && !(opts.percentile >= 50 && opts.percentile <= 100)) {
      throw new RangeError(`percentile: expected a number in [50, 100], got ${opts.percentile}`)
    }
    const defaults = resolveQuantizerDefaults(opts)
    const config: ResolvedConfig = resolveConfig(opts.config)
    let model = await resolveModelSource(source)
    let preparation: PrepareReport | undefined
    if (opts.prepare ?? true) ({ model, report: preparation } = await prepareModel(model))
    const types = await discoverValueTypes(model)
    const placement = placeQuantizers(model, { config, param: defaults.param, activation: defaults.activation, types })
    const q = placement.quantizers
    const report: QuantSimReport = {
      config: config.source,
      preparation,
      placement: { fusions: placement.fusions, notes: [...config.warnings.map((w) => `config: ${w}`), ...placement.notes] },
      quantizers: {
        activations: q.filter((x) => x.kind !== 'param' && x.enabled).length,
        params: q.filter((x) => x.kind === 'param' && x.enabled).length,
        disabled: q.filter((x) => !x.enabled).length,
        tied: q.filter((x) => x.enabled && x.tiedTo).length,
      },
    }
    return new QuantSim(model, q, report, opts, {
      activationBitwidth: defaults.activation.bitwidth,
      paramBitwidth: defaults.param.bitwidth,
      perChannel: config.perChannelOpTypes.length > 0,
      dtype: defaults.param.dtype,
    })
  }

  /** Every quantizer, with its tensor, kind, enabled flag, spec and (after calibration) encodings. */
  get quantizers(): readonly Quantizer[] {
    return this.#quantizers
  }

  #find(tensor: string): Quantizer[] {
    const found = this.#quantizers.filter((q) => q.tensor === tensor)
    if (found.length === 0) throw new QuantSimError(`no quantizer on tensor ${JSON.stringify(tensor)}; sim.quantizers lists them`)
    return found
  }

  /** Changes a quantizer; its encodings are cleared, so computeEncodings must run again. */
  setQuantizer(tensor: string, change: SetQuantizerOptions): void {
    for (const q of this.#find(tensor)) {
      if (change.enabled !== undefined) q.enabled = change.enabled
      if (change.bitwidth !== undefined) {
        if (!Number.isInteger(change.bitwidth) || change.bitwidth < 2 || change.bitwidth > 32) throw new RangeError(`bitwidth: expected an integer from 2 to 32, got ${change.bitwidth}`)
        q.spec.bitwidth = change.bitwidth
      }
      if (change.symmetric !== undefined) q.spec.symmetric = change.symmetric
      if (change.perChannel !== undefined) {
        if (q.kind !== 'param') throw new QuantSimError(`perChannel: ${JSON.stringify(tensor)} is an activation; only params are per-channel`)
        const axis = { Conv: 0, ConvTranspose: 1, Gemm: 0, MatMul: 1 }[q.opType]
        if (change.perChannel && axis === undefined) throw new QuantSimError(`perChannel: ${q.opType} weights cannot be per-channel`)
        q.spec.axis = change.perChannel ? axis : undefined
      }
      q.encodings = undefined
      q.frozen = false
    }
    this.#calibrated = false
    this.#dropRunner()
  }

  #encodingOptions(q: Quantizer): EncodingOptions {
    return { bitwidth: q.spec.bitwidth, symmetric: q.spec.symmetric, strictSymmetric: q.spec.strictSymmetric, unsignedSymmetric: q.spec.unsignedSymmetric }
  }

  /** Params' encodings straight from the weights (min-max, per channel where set). */
  #paramEncodings(q: Quantizer): Encoding[] {
    const w = this.model.graph.initializers.get(q.tensor)!
    const o = new MinMaxObserver(q.spec.axis !== undefined ? { axis: q.spec.axis } : {})
    o.update(w.data as Float32Array, w.dims)
    return o.encodings(this.#encodingOptions(q))
  }

  /** A constant operand quantized as an activation: its encoding comes from its own values. */
  #constantEncoding(q: Quantizer): Encoding[] {
    const t = this.model.graph.initializers.get(q.tensor)!
    const data = t.data as Float32Array
    if (this.#scheme === 'min_max' || data.length < 2) {
      const o = new MinMaxObserver()
      o.update(data)
      return [o.encoding(this.#encodingOptions(q))]
    }
    const h = new HistogramObserver()
    h.update(data)
    return [h.encoding({ ...this.#encodingOptions(q), scheme: this.#scheme, percentile: this.#percentile })]
  }

  /**
   * Calibrates every enabled quantizer: params from their values, activations by running the
   * model over `data` (an array or (async) iterable of feeds, or a callback receiving `run`).
   */
  async computeEncodings(data: CalibrationData, opts: Pick<CalibrateOptions, 'onProgress' | 'signal' | 'maxBytesPerRun'> = {}): Promise<void> {
    if (this.#busy) throw new QuantSimError('computeEncodings is already running on this sim')
    this.#busy = true
    try {
      const active = this.#quantizers.filter((q) => q.enabled && q.spec.dtype === 'int')
      const byName = new Map(active.filter((q) => q.kind !== 'param').map((q) => [q.tensor, q]))
      // A tie counts only while its source quantizer is enabled; otherwise the quantizer is calibrated on its own.
      const tiedSource = (q: Quantizer): Quantizer | undefined => {
        let src = q.tiedTo ? byName.get(q.tiedTo) : undefined
        for (let hops = 0; src?.tiedTo && byName.has(src.tiedTo) && hops < 100; hops++) src = byName.get(src.tiedTo)
        return src
      }
      const targets: ObserveTarget[] = []
      for (const q of active) {
        if (q.kind === 'param' || q.frozen || tiedSource(q)) continue
        if (this.model.graph.initializers.has(q.tensor)) continue
        if (q.fixedRange && !Number.isNaN(q.fixedRange.max)) continue
        if (targets.some((t) => t.tensor === q.tensor)) continue
        targets.push({ tensor: q.tensor, scheme: this.#scheme, percentile: this.#percentile, encoding: this.#encodingOptions(q) })
      }
      const observed = await calibrate(this.model, targets, data, { ...opts, intraOpNumThreads: this.#threads })
      const byTensor = new Map(observed.map((o) => [o.tensor, o]))
      const next = new Map<Quantizer, Encoding[]>()
      for (const q of active) {
        if (q.frozen) continue // loaded with freeze: kept as they are
        if (q.kind === 'param') next.set(q, this.#paramEncodings(q))
        else if (this.model.graph.initializers.has(q.tensor)) next.set(q, this.#constantEncoding(q))
        else if (q.fixedRange && !Number.isNaN(q.fixedRange.max)) next.set(q, [computeEncoding({ min: q.fixedRange.min, max: q.fixedRange.max }, this.#encodingOptions(q))])
        else if (!tiedSource(q)) {
          const o = byTensor.get(q.tensor)!
          next.set(q, [q.fixedRange ? computeEncoding({ min: q.fixedRange.min, max: Math.max(o.max, q.fixedRange.min) }, this.#encodingOptions(q)) : o.encoding])
        }
      }
      // Tied quantizers take their source's encoding (following chains of ties).
      for (const q of active) {
        if (q.frozen) continue
        const src = q.kind === 'param' ? undefined : tiedSource(q)
        const e = src && (next.get(src) ?? (src.frozen ? src.encodings : undefined))
        if (e) next.set(q, e)
      }
      // Only now, with everything computed, do the quantizers change (an abort leaves them as they were).
      for (const [q, e] of next) q.encodings = e
      this.#calibrated = true
      this.#dropRunner()
    } finally {
      this.#busy = false
    }
  }

  /**
   * Applies an AIMET encodings file (0.6.1, 1.0.0 or 2.0.0; a path or the parsed JSON) to the
   * quantizers: encodings, bitwidth, symmetry, per-channel or per-block layout. With `freeze`
   * (default) computeEncodings keeps them; with `partial` the file may cover only some quantizers
   * (call computeEncodings for the rest). Mismatches name the tensor: errors, or warnings in the
   * result with `strict: false`. See src/sim/loadEncodings.ts for the grid conversion.
   */
  async loadEncodings(source: string | object, opts: LoadEncodingsOptions = {}): Promise<LoadEncodingsResult> {
    if (this.#busy) throw new QuantSimError('loadEncodings: computeEncodings is running on this sim')
    const file = typeof source === 'string' ? await readEncodingsFile(source) : parseEncodingsFile(source)
    const result = applyEncodings(this.model, this.#quantizers, file, opts)
    this.#calibrated = this.#quantizers.every((q) => !q.enabled || q.spec.dtype === 'float' || (q.encodings?.length ?? 0) > 0 || this.#tiedToEncoded(q))
    this.#dropRunner()
    return result
  }

  /** A tied activation quantizer without encodings of its own whose source has them (set by loadEncodings). */
  #tiedToEncoded(q: Quantizer): boolean {
    if (!q.tiedTo) return false
    const src = this.#quantizers.find((x) => x.tensor === q.tiedTo && x.kind !== 'param' && x.enabled)
    if (!src?.encodings) return false
    q.encodings = src.encodings
    return true
  }

  #requireEncodings(what: string): void {
    if (!this.#calibrated) throw new QuantSimError(`${what} needs encodings: call computeEncodings first`)
  }

  /** The QDQ model the sim runs (and exports). */
  qdqModel(purpose: 'simulation' | 'export' = 'simulation', opset?: number): { model: Model; report: QdqBuildReport } {
    this.#requireEncodings(purpose === 'export' ? 'export' : 'run')
    return buildQdqModel(this.model, this.#quantizers, { purpose, minOpset: opset })
  }

  /** Simulated quantized inference: the QDQ model in ORT with graph optimisations off. */
  async run(feeds: Feeds): Promise<Record<string, PlainTensor>> {
    this.#requireEncodings('run')
    this.#runner ??= (async () => {
      const { model } = this.qdqModel('simulation')
      return OrtRunner.create(modelToBytes(model), { graphOptimizationLevel: 'disabled', intraOpNumThreads: this.#threads, name: `${this.model.path ?? 'model'} (simulation)` })
    })()
    const runner = await this.#runner
    return runner.run(feeds)
  }

  #dropRunner(): void {
    const r = this.#runner
    this.#runner = undefined
    void r?.then((x) => x.close()).catch(() => {})
  }

  /**
   * Writes `<prefix>.onnx` (the float model) and `<prefix>.encodings` (AIMET 1.0.0, or the
   * `encodingVersion` asked for), and
   * `<prefix>.qdq.onnx`. All files are written into a staging folder first and renamed into
   * `dir` only when every one succeeded.
   */
  async export(dir: string, prefix: string, opts: ExportOptions = {}): Promise<ExportResult> {
    this.#requireEncodings('export')
    if (!prefix || /[/\\]/.test(prefix)) throw new TypeError(`prefix: expected a file name prefix without slashes, got ${JSON.stringify(prefix)}`)
    const encodingVersion = opts.encodingVersion ?? '1.0.0'
    if (!ENCODING_VERSIONS.includes(encodingVersion)) {
      throw new RangeError(`encodingVersion: expected one of ${ENCODING_VERSIONS.join(', ')}, got ${JSON.stringify(opts.encodingVersion)}`)
    }
    const formats = opts.formats ?? ['encodings', 'qdq']
    const target = resolve(dir)
    await mkdir(target, { recursive: true })
    const staging = await mkdtemp(join(target, `.${prefix}.staging-`))
    const result: ExportResult = { files: [] }
    try {
      if (formats.includes('encodings')) {
        await saveModel(this.model, join(staging, `${prefix}.onnx`))
        const args: QuantizerArgs = {
          activation_bitwidth: this.#args.activationBitwidth,
          dtype: this.#args.dtype,
          is_symmetric: true,
          param_bitwidth: this.#args.paramBitwidth,
          per_channel_quantization: this.#args.perChannel,
          quant_scheme: this.#scheme,
        }
        const file = encodingVersion === '0.6.1' ? encodingsFileV061(this.#quantizers, args, VERSION)
          : encodingVersion === '2.0.0' ? encodingsFileV2(this.model, this.#quantizers, VERSION)
            : encodingsFileV1(this.#quantizers, args, VERSION)
        await writeFile(join(staging, `${prefix}.encodings`), JSON.stringify(file, null, 2) + '\n')
      }
      if (formats.includes('qdq')) {
        const { model, report } = this.qdqModel('export', opts.opset)
        await saveModel(model, join(staging, `${prefix}.qdq.onnx`))
        result.qdq = report
      }
      // Every file is complete: move them in (external data files included), data before models.
      const names = (await readdir(staging)).filter((n) => !n.startsWith('.')).sort((a, b) => Number(a.endsWith('.onnx')) - Number(b.endsWith('.onnx')))
      for (const name of names) {
        await rename(join(staging, name), join(target, name))
        result.files.push(join(target, name))
      }
      return result
    } finally {
      await rm(staging, { recursive: true, force: true })
    }
  }

  /** Stops the simulation worker. */
  async close(): Promise<void> {
    const r = this.#runner
    this.#runner = undefined
    if (r) await (await r).close()
  }
}
