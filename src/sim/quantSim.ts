// QuantSim: the ONNX counterpart of AIMET's QuantizationSimModel. Places quantizers in a
// (prepared) model, calibrates them on data, simulates quantized inference, exports what
// runtimes load. See docs/quantsim.md.
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { computeEncoding, type Encoding, type EncodingOptions } from '../encoding.js'
import { QuantkitError } from '../errors.js'
import { resolveConfig, type ResolvedConfig } from '../config/resolve.js'
import { presetQuantizerDefaults } from '../config/presets/index.js'
import { checkTarget, htpTarget, type HtpTarget, type TargetRequest } from '../config/htpTargets.js'
import { attrInt } from '../graph/attributes.js'
import { PER_CHANNEL_OP_TYPES, perChannelAxis } from '../config/aimetRules.js'
import { resolveQuantizerDefaults, type QuantizerDefaultsOptions } from '../config/quantizerDefaults.js'
import { prepareModel } from '../graph/prepare/prepareModel.js'
import type { PrepareReport } from '../graph/prepare/report.js'
import type { Model, Node } from '../graph/model.js'
import type { Tensor } from '../onnx/tensor.js'
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
import { blockAxes, blockEncodings, blockGeometry, lpbqFromBlocks, onnxruntimeBlockEncodings, onnxruntimeRuleUnsupported, type LpbqScales } from './blockwise.js'
import { declaredValueTypes, discoverValueTypes } from './valueTypes.js'
import { placeFloat16Quantizers, type Float16PlacementRules } from './float16Placement.js'

export class QuantSimError extends QuantkitError {
  override name = 'QuantSimError'
}

const SCHEMES: readonly CalibrationScheme[] = ['min_max', 'tf_enhanced', 'percentile', 'mse', 'entropy']

export interface QuantSimOptions extends QuantizerDefaultsOptions {
  /** Calibration scheme for activations: min_max (AIMET's default), tf_enhanced, percentile, mse, entropy. */
  quantScheme?: CalibrationScheme
  /** For quantScheme 'percentile': in [50, 100]; default 99.99. */
  percentile?: number
  /**
   * A preset name ('default', 'per_tensor', 'htp_v73', 'ort_x86', …), a config file path, or a config object.
   * `ort_x86` also makes 7-bit weights the default (ONNX Runtime's reduce_range; docs/ort-cpu.md).
   */
  config?: string | object
  /** Run prepareModel first (BN folding and friends); default true. */
  prepare?: boolean
  /** ORT threads for calibration and simulation; default: the machine's parallelism. */
  intraOpNumThreads?: number
  /**
   * With an HTP config (htp_v66 … htp_v85, or a file with hw_version): requests the generation
   * does not run (src/config/htpTargets.ts) are errors instead of warnings. Default false.
   */
  strictTarget?: boolean
  /**
   * Also place a parameter quantizer ('weight') on embedding tables: input 0 of a Gather on axis 0
   * when it is a constant 2-D float initializer. Off by default (aimet-onnx places none); the
   * weight-only mode turns it on to quantize tables (src/modes/quantizeWeights.ts).
   */
  gatherTables?: boolean
  /**
   * Where placement learns which values are float: 'onnxruntime' (default) runs the model's shape
   * inference in ONNX Runtime; 'declared' reads only what the model declares (graph inputs,
   * outputs, value_info) and never loads it in ORT — values it declares nothing about get no
   * activation quantizer. For sims whose activation quantizers are off anyway (precision modes).
   */
  valueTypes?: 'onnxruntime' | 'declared'
  /**
   * Float16 placement instead of AIMET's (src/sim/float16Placement.ts): every float32 tensor of the
   * regions the rules leave in float16 carries a float16 quantizer (a Cast pair in the QDQ model),
   * the nodes the rules keep in float32 carry disabled ones with the reason as their note. The
   * float16 precision mode's sim (src/modes/convertFloat16.ts). No ORT type discovery: the rules
   * say which values are float. Node names must be unique and non-empty.
   */
  float16?: Float16PlacementRules
}

/** `sim.observeRanges`: the extremes of a float tensor over the data. */
export interface ObservedRange {
  tensor: string
  min: number
  max: number
}

export interface QuantSimReport {
  config: string
  preparation?: PrepareReport
  placement: Pick<Placement, 'fusions' | 'notes'>
  quantizers: { activations: number; params: number; disabled: number; tied: number }
  /** Target warnings (what the config's HTP generation does not run); also in placement.notes. */
  warnings: string[]
}

/** `sim.setBlockwise`: AIMET's set_blockwise_quantization_for_weights. */
export interface BlockwiseOptions {
  /** Op types whose weights become blockwise (ONNX op types); default Conv, Gemm, MatMul. */
  opTypes?: string[]
  /** Bitwidth of the weights, 2–16 (4 is the usual). */
  bitwidth: number
  /** Elements per block along the input-channel (reduction) axis. */
  blockSize: number
  /** Default true (AIMET's argument has no default; its examples use true). */
  symmetric?: boolean
  /** Node names left as they are. */
  nodesToExclude?: string[]
  /**
   * false (default, as AIMET): weights the block size does not divide (or that cannot be blocked)
   * keep their quantizer and are listed in `skipped`; true: that is an error.
   */
  strict?: boolean
  /**
   * How the block encodings are computed: 'aimet' (default, min-max per block as aimet-onnx) or
   * 'onnxruntime' (ONNX Runtime's MatMulNBits grids, QuantizerSpec.blockRule; bitwidth 4 or 8,
   * block size a power of two from 16 to 256, 2-D weights).
   */
  rule?: 'aimet' | 'onnxruntime'
  /** 'onnxruntime' rule only: a block size that does not divide the dimension leaves a partial last block instead of skipping. */
  partialBlocks?: boolean
  /** Only these weights (tensor names); default every weight of `opTypes`. */
  tensors?: string[]
}

/** `sim.setLpbq`: AIMET's set_grouped_blockwise_quantization_for_weights (always symmetric). */
export interface LpbqOptions extends Omit<BlockwiseOptions, 'symmetric' | 'rule' | 'partialBlocks'> {
  /** Bitwidth of the per-channel scale × integer block scale (AIMET's decompressed_bw), > bitwidth. */
  decompressedBitwidth: number
}

export interface BlockwiseResult {
  /** Weights now blockwise (or LPBQ). */
  tensors: string[]
  skipped: { tensor: string; node: string; reason: string }[]
}

export interface SetQuantizerOptions {
  enabled?: boolean
  bitwidth?: number
  symmetric?: boolean
  /** Symmetric grid without its most negative value ([−(2^(b−1)−1), 2^(b−1)−1]), as ONNX Runtime's int8 weights. */
  strictSymmetric?: boolean
  /** Params only: per-channel on the op's channel axis (true) or per-tensor (false). */
  perChannel?: boolean
  /**
   * Activations only: quantize at run time (DynamicQuantizeLinear: uint8, asymmetric, each tensor's
   * own range; QuantizerSpec.dynamic). `true` also sets 8 bits, asymmetric. Such a quantizer has no
   * encodings; the QDQ model (run, export with format 'qdq') writes DynamicQuantizeLinear →
   * DequantizeLinear, and AIMET's encodings file cannot hold it (export refuses 'encodings').
   */
  dynamic?: boolean
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
  readonly #target: { row: HtpTarget | undefined; preset: string; strict: boolean }
  #runner: Promise<OrtRunner> | undefined
  #calibrated = false
  #busy = false

  private constructor(model: Model, quantizers: Quantizer[], report: QuantSimReport, opts: QuantSimOptions, args: { activationBitwidth: number; paramBitwidth: number; perChannel: boolean; dtype: 'int' | 'float' }, target: { row: HtpTarget | undefined; preset: string; strict: boolean }) {
    this.#target = target
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
    const config: ResolvedConfig = resolveConfig(opts.config)
    // A preset may imply quantizer defaults AIMET's format cannot hold (ort_x86: 7-bit weights,
    // ORT's reduce_range); the caller's own paramType/paramBitwidth always win.
    const implied = presetQuantizerDefaults(config.preset)
    const defaults = resolveQuantizerDefaults({
      ...opts,
      ...(opts.paramType === undefined && opts.paramBitwidth === undefined && implied.paramBitwidth !== undefined ? { paramBitwidth: implied.paramBitwidth } : {}),
      ...(opts.activationType === undefined && opts.activationBitwidth === undefined && implied.activationBitwidth !== undefined ? { activationBitwidth: implied.activationBitwidth } : {}),
    })
    let model = await resolveModelSource(source)
    let preparation: PrepareReport | undefined
    if (opts.prepare ?? true) ({ model, report: preparation } = await prepareModel(model))
    if (opts.valueTypes !== undefined && opts.valueTypes !== 'onnxruntime' && opts.valueTypes !== 'declared') {
      throw new TypeError(`valueTypes: expected 'onnxruntime' or 'declared', got ${JSON.stringify(opts.valueTypes)}`)
    }
    const placement = opts.float16 !== undefined
      ? placeFloat16Quantizers(model, opts.float16)
      : placeQuantizers(model, { config, param: defaults.param, activation: defaults.activation, types: opts.valueTypes === 'declared' ? declaredValueTypes(model) : await discoverValueTypes(model), gatherTables: opts.gatherTables ?? false })
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
      warnings: [],
    }
    const sim = new QuantSim(model, q, report, opts, {
      activationBitwidth: defaults.activation.bitwidth,
      paramBitwidth: defaults.param.bitwidth,
      perChannel: config.perChannelOpTypes.length > 0,
      dtype: defaults.param.dtype,
    }, { row: htpTarget(config), preset: config.preset ?? config.source, strict: opts.strictTarget ?? false })
    sim.#checkTarget()
    return sim
  }

  /** What the enabled quantizers ask of the target (biases at 32 bits are the runtime's own). */
  #targetRequests(): TargetRequest[] {
    return this.#quantizers.filter((q) => q.enabled && !(q.paramName === 'bias' && q.spec.bitwidth === 32)).map((q) => ({
      tensor: q.tensor, opType: q.opType, kind: q.kind === 'param' ? 'param' as const : 'activation' as const,
      dtype: q.spec.dtype, bitwidth: q.spec.bitwidth, blockwise: q.spec.blockSize !== undefined, lpbq: q.spec.lpbq !== undefined,
    }))
  }

  /**
   * Checks the quantizers against the config's HTP generation (src/config/htpTargets.ts): new
   * findings go to report.warnings and report.placement.notes, or throw with strictTarget.
   */
  #checkTarget(): void {
    const found = checkTarget(this.#target.row, this.#target.preset, this.#targetRequests())
    if (found.length === 0) return
    if (this.#target.strict) {
      throw new QuantSimError(`strictTarget: ${found.join('; ')}. Change the quantizers, or drop strictTarget to get warnings instead`)
    }
    for (const w of found) {
      if (this.report.warnings.includes(w)) continue
      this.report.warnings.push(w)
      this.report.placement.notes.push(`target: ${w}`)
    }
  }

  /** Runs a change of quantizers; with strictTarget, a change the target cannot run is undone and thrown. */
  #change<T>(fn: () => T): T {
    const saved = this.#target.strict ? this.#quantizers.map((q) => structuredClone(q)) : undefined
    const result = fn()
    try {
      this.#checkTarget()
    } catch (e) {
      saved?.forEach((s, i) => {
        const q = this.#quantizers[i]!
        for (const k of Object.keys(q)) delete (q as unknown as Record<string, unknown>)[k]
        Object.assign(q, s)
      })
      throw e
    }
    return result
  }

  /** Every quantizer, with its tensor, kind, enabled flag, spec and (after calibration) encodings. */
  get quantizers(): readonly Quantizer[] {
    return this.#quantizers
  }

  /**
   * Places the quantizers again with new float16 rules (a sim created with `float16`): how the
   * float16 mode disables the quantizers of ops its range check found overflowing. Encodings are
   * cleared (float16 quantizers have none; computeEncodings must run again before `run`).
   */
  setFloat16Placement(rules: Float16PlacementRules): void {
    if (this.#busy) throw new QuantSimError('setFloat16Placement: computeEncodings is running on this sim')
    if (!this.#quantizers.every((q) => q.spec.dtype === 'float' && q.spec.bitwidth === 16)) {
      throw new QuantSimError('setFloat16Placement: this sim was not created with float16 placement (QuantSimOptions.float16)')
    }
    const placement = placeFloat16Quantizers(this.model, rules)
    this.#quantizers.splice(0, this.#quantizers.length, ...placement.quantizers)
    const q = this.#quantizers
    this.report.placement.notes.push(...placement.notes)
    this.report.quantizers = {
      activations: q.filter((x) => x.kind !== 'param' && x.enabled).length,
      params: q.filter((x) => x.kind === 'param' && x.enabled).length,
      disabled: q.filter((x) => !x.enabled).length,
      tied: 0,
    }
    this.#calibrated = false
    this.#dropRunner()
  }

  /**
   * The extremes (min, max) of float tensors of the sim's float model over `data`, through the
   * calibration tap (src/sim/calibrator.ts: min_max targets are reduced inside the graph, so two
   * scalars per tensor and batch leave ORT). The float16 mode's range check. Quantizers are not
   * changed.
   */
  async observeRanges(data: CalibrationData, tensors: readonly string[], opts: Pick<CalibrateOptions, 'onProgress' | 'signal' | 'maxBytesPerRun'> = {}): Promise<ObservedRange[]> {
    if (this.#busy) throw new QuantSimError('observeRanges: computeEncodings is running on this sim')
    this.#busy = true
    try {
      const observed = await calibrate(this.model, tensors.map((tensor) => ({ tensor, scheme: 'min_max' as const, encoding: { bitwidth: 8 } })), data, { ...opts, intraOpNumThreads: this.#threads })
      return observed.map((o) => ({ tensor: o.tensor, min: o.min, max: o.max }))
    } finally {
      this.#busy = false
    }
  }

  #find(tensor: string): Quantizer[] {
    const found = this.#quantizers.filter((q) => q.tensor === tensor)
    if (found.length === 0) throw new QuantSimError(`no quantizer on tensor ${JSON.stringify(tensor)}; sim.quantizers lists them`)
    return found
  }

  /** Changes a quantizer; its encodings are cleared, so computeEncodings must run again. */
  setQuantizer(tensor: string, change: SetQuantizerOptions): void {
    this.#change(() => this.#setQuantizer(tensor, change))
  }

  /**
   * Sets a parameter quantizer's encodings (one per channel, or one) and freezes them, so that
   * computeEncodings keeps them: how SeqMSE and AdaRound hand back what they chose.
   */
  freezeEncodings(tensor: string, encodings: Encoding[]): void {
    if (this.#busy) throw new QuantSimError('freezeEncodings: computeEncodings is running on this sim')
    const found = this.#find(tensor).filter((q) => q.kind === 'param')
    if (found.length === 0) throw new QuantSimError(`freezeEncodings: ${JSON.stringify(tensor)} is not a parameter`)
    for (const q of found) {
      const dims = this.model.graph.initializers.get(tensor)!.dims
      // Blocked quantizers take one encoding per (channel, block) in the compact layout (blockwise.ts).
      const blocked = q.spec.blockSize !== undefined && q.spec.axis !== undefined ? blockGeometry(dims, q.spec.axis, q.spec.blockSize) : undefined
      const want = blocked ? blocked.channels * blocked.blocks : q.spec.axis === undefined ? 1 : dims[q.spec.axis]!
      if (q.spec.lpbq !== undefined || encodings.length !== want) {
        throw new QuantSimError(`freezeEncodings: ${JSON.stringify(tensor)} needs ${q.spec.lpbq !== undefined ? 'LPBQ (not frozen per block)' : want} encodings, got ${encodings.length}`)
      }
      q.encodings = encodings.map((e) => ({ ...e }))
      q.lpbqScales = undefined
      q.frozen = true
    }
    this.#dropRunner()
  }

  /**
   * Replaces the values of a float initializer of the model the sim quantizes (bias correction
   * writes corrected biases here); adds it when `name` is new. A non-frozen parameter quantizer
   * of that tensor is recalibrated from the new values if the sim has encodings.
   */
  setInitializer(tensor: Tensor): void {
    if (this.#busy) throw new QuantSimError('setInitializer: computeEncodings is running on this sim')
    const old = this.model.graph.initializers.get(tensor.name)
    if (old && old.data.length !== tensor.data.length) throw new QuantSimError(`setInitializer: ${JSON.stringify(tensor.name)} has ${old.data.length} elements, got ${tensor.data.length}`)
    this.model.graph.initializers.set(tensor.name, tensor)
    for (const q of this.#quantizers) {
      if (q.tensor !== tensor.name || q.kind !== 'param' || q.frozen || !q.enabled || q.spec.dtype !== 'int' || !q.encodings) continue
      const p = this.#paramEncodings(q)
      q.encodings = p.encodings
      q.lpbqScales = p.lpbq
    }
    this.#dropRunner()
  }

  #setQuantizer(tensor: string, change: SetQuantizerOptions): void {
    for (const q of this.#find(tensor)) {
      if (change.enabled !== undefined) q.enabled = change.enabled
      if (change.bitwidth !== undefined) {
        if (!Number.isInteger(change.bitwidth) || change.bitwidth < 2 || change.bitwidth > 32) throw new RangeError(`bitwidth: expected an integer from 2 to 32, got ${change.bitwidth}`)
        q.spec.bitwidth = change.bitwidth
      }
      if (change.symmetric !== undefined) q.spec.symmetric = change.symmetric
      if (change.strictSymmetric !== undefined) q.spec.strictSymmetric = change.strictSymmetric
      if (change.dynamic !== undefined) {
        if (q.kind === 'param') throw new QuantSimError(`dynamic: ${JSON.stringify(tensor)} is a parameter; only activations are quantized at run time`)
        if (change.dynamic) {
          q.spec.dtype = 'int'
          q.spec.bitwidth = 8
          q.spec.symmetric = false
          q.spec.dynamic = true
          q.tiedTo = undefined
        } else delete q.spec.dynamic
      }
      if (change.perChannel !== undefined) {
        if (q.kind !== 'param') throw new QuantSimError(`perChannel: ${JSON.stringify(tensor)} is an activation; only params are per-channel`)
        // The op's channel axis as placement computes it (a Gemm's depends on transB: the output
        // channels of B [K, N] are axis 1, of Bᵀ stored [N, K] axis 0).
        const node = this.#nodeOf(q)
        const rank = this.model.graph.initializers.get(q.tensor)?.dims.length ?? 0
        let axis = PER_CHANNEL_OP_TYPES.has(q.opType) ? perChannelAxis(q.opType, { transB: node ? attrInt(node, 'transB', 0) === 1 : false }) : undefined
        if (axis !== undefined && axis < 0) axis += rank
        if (change.perChannel && axis === undefined) throw new QuantSimError(`perChannel: ${q.opType} weights cannot be per-channel`)
        q.spec.axis = change.perChannel ? axis : undefined
        delete q.spec.blockSize
        delete q.spec.lpbq
        delete q.spec.blockRule
      }
      q.encodings = undefined
      q.lpbqScales = undefined
      q.frozen = false
    }
    this.#calibrated = false
    this.#dropRunner()
  }

  /**
   * Blockwise weights (AIMET's `set_blockwise_quantization_for_weights`): for each weight of
   * `opTypes`, one encoding per output channel and per block of `blockSize` input channels,
   * min-max from the weight values (src/sim/blockwise.ts). Clears those encodings.
   */
  setBlockwise(opts: BlockwiseOptions): BlockwiseResult {
    checkBits(opts.bitwidth, 'bitwidth')
    return this.#change(() => this.#setBlocked(opts, { bitwidth: opts.bitwidth, symmetric: opts.symmetric ?? true }))
  }

  /**
   * Low-power blockwise weights (AIMET's `set_grouped_blockwise_quantization_for_weights`): per-block
   * `bitwidth` encodings whose scales are a per-channel float scale × an integer block scale of
   * decompressedBitwidth − bitwidth bits, computed as aimet-onnx does (src/sim/blockwise.ts).
   */
  setLpbq(opts: LpbqOptions): BlockwiseResult {
    checkBits(opts.bitwidth, 'bitwidth')
    if (!Number.isInteger(opts.decompressedBitwidth) || opts.decompressedBitwidth <= opts.bitwidth || opts.decompressedBitwidth > 32) {
      throw new RangeError(`decompressedBitwidth: expected an integer above bitwidth (${opts.bitwidth}) and at most 32, got ${opts.decompressedBitwidth}`)
    }
    return this.#change(() => this.#setBlocked(opts, { bitwidth: opts.bitwidth, symmetric: true, lpbq: { decompressedBitwidth: opts.decompressedBitwidth } }))
  }

  #setBlocked(opts: BlockwiseOptions, spec: { bitwidth: number; symmetric: boolean; lpbq?: { decompressedBitwidth: number } }): BlockwiseResult {
    const bs = opts.blockSize
    if (!Number.isInteger(bs) || bs < 1) throw new RangeError(`blockSize: expected a positive integer, got ${bs}`)
    const opTypes = new Set(opts.opTypes ?? ['Conv', 'Gemm', 'MatMul'])
    const exclude = new Set(opts.nodesToExclude ?? [])
    const rule = opts.rule ?? 'aimet'
    if (rule !== 'aimet' && rule !== 'onnxruntime') throw new RangeError(`rule: expected 'aimet' or 'onnxruntime', got ${JSON.stringify(opts.rule)}`)
    if (rule === 'onnxruntime') {
      if (spec.lpbq) throw new RangeError("rule: LPBQ has no 'onnxruntime' rule")
      const why = onnxruntimeRuleUnsupported(spec.bitwidth, bs)
      if (why) throw new RangeError(why)
    }
    if (opts.partialBlocks && rule !== 'onnxruntime') throw new RangeError("partialBlocks: only the 'onnxruntime' rule computes partial blocks (AIMET's needs the block size to divide the dimension)")
    const only = opts.tensors ? new Set(opts.tensors) : undefined
    const result: BlockwiseResult = { tensors: [], skipped: [] }
    const planned: { q: Quantizer; axis: number }[] = []
    for (const q of this.#quantizers) {
      if (q.kind !== 'param' || q.paramName !== 'weight' || !opTypes.has(q.opType) || exclude.has(q.node) || (only && !only.has(q.tensor))) continue
      const w = this.model.graph.initializers.get(q.tensor)
      const node = this.#nodeOf(q)
      const skip = (reason: string) => {
        if (opts.strict) throw new QuantSimError(`${spec.lpbq ? 'setLpbq' : 'setBlockwise'}: weight ${JSON.stringify(q.tensor)} of ${q.opType} ${JSON.stringify(q.node)}: ${reason}`)
        result.skipped.push({ tensor: q.tensor, node: q.node, reason })
      }
      if (!w || w.dataType !== 1) { skip('not a float32 initializer'); continue }
      const axes = blockAxes(q.opType, w.dims.length, { transB: node ? attrInt(node, 'transB', 0) === 1 : false })
      if (!axes) { skip(`a rank-${w.dims.length} ${q.opType} weight cannot be blocked`); continue }
      if (q.opType === 'ConvTranspose' && node && attrInt(node, 'group', 1) !== 1) { skip('grouped ConvTranspose weights are per-tensor (as in aimet-onnx)'); continue }
      const d = w.dims[axes.blockAxis]!
      if (rule === 'onnxruntime' && w.dims.length !== 2) { skip(`the 'onnxruntime' rule takes 2-D weights, not [${w.dims.join(', ')}]`); continue }
      if (d % bs !== 0 && !opts.partialBlocks) { skip(`block size ${bs} does not divide dimension ${axes.blockAxis} (${d}) of [${w.dims.join(', ')}]`); continue }
      planned.push({ q, axis: axes.blockAxis })
    }
    for (const { q, axis } of planned) {
      q.spec.bitwidth = spec.bitwidth
      q.spec.symmetric = spec.symmetric
      q.spec.dtype = 'int'
      q.spec.axis = axis
      q.spec.blockSize = bs
      if (spec.lpbq) {
        q.spec.lpbq = { ...spec.lpbq }
        q.spec.strictSymmetric = false
        q.spec.unsignedSymmetric = false
      } else delete q.spec.lpbq
      if (rule === 'onnxruntime') q.spec.blockRule = 'onnxruntime'
      else delete q.spec.blockRule
      q.encodings = undefined
      q.lpbqScales = undefined
      q.frozen = false
      result.tensors.push(q.tensor)
    }
    if (planned.length > 0) {
      this.#calibrated = false
      this.#dropRunner()
    }
    return result
  }

  /** The node a parameter quantizer belongs to (by name, and reading the tensor: unnamed nodes share the name ''). */
  #nodeOf(q: Quantizer): Node | undefined {
    const g = this.model.graph
    const reads = (n: Node) => n.opType === q.opType && n.inputs.includes(q.tensor)
    return g.nodes.find((n) => n.name === q.node && reads(n)) ?? g.nodes.find(reads)
  }

  #encodingOptions(q: Quantizer): EncodingOptions {
    return { bitwidth: q.spec.bitwidth, symmetric: q.spec.symmetric, strictSymmetric: q.spec.strictSymmetric, unsignedSymmetric: q.spec.unsignedSymmetric }
  }

  /** Params' encodings straight from the weights (min-max, per channel or per block where set). */
  #paramEncodings(q: Quantizer): { encodings: Encoding[]; lpbq?: LpbqScales } {
    const w = this.model.graph.initializers.get(q.tensor)!
    if (q.spec.blockSize !== undefined && q.spec.axis !== undefined) {
      const g = blockGeometry(w.dims, q.spec.axis, q.spec.blockSize)
      if (q.spec.blockRule === 'onnxruntime') return { encodings: onnxruntimeBlockEncodings(w, g, { bitwidth: q.spec.bitwidth, symmetric: q.spec.symmetric }) }
      const blocks = blockEncodings(w, g, this.#encodingOptions(q) as { bitwidth: number; symmetric: boolean })
      if (!q.spec.lpbq) return { encodings: blocks }
      const { scales, encodings } = lpbqFromBlocks(g, blocks, q.spec.bitwidth, q.spec.lpbq.decompressedBitwidth)
      return { encodings, lpbq: scales }
    }
    const o = new MinMaxObserver(q.spec.axis !== undefined ? { axis: q.spec.axis } : {})
    o.update(w.data as Float32Array, w.dims)
    return { encodings: o.encodings(this.#encodingOptions(q)) }
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
    this.#checkTarget()
    this.#busy = true
    try {
      // Dynamic activation quantizers have no encodings (they are computed at run time).
      const active = this.#quantizers.filter((q) => q.enabled && q.spec.dtype === 'int' && !q.spec.dynamic)
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
      const lpbq = new Map<Quantizer, LpbqScales | undefined>()
      for (const q of active) {
        if (q.frozen) continue // loaded with freeze: kept as they are
        if (q.kind === 'param') {
          const p = this.#paramEncodings(q)
          next.set(q, p.encodings)
          lpbq.set(q, p.lpbq)
        }
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
      for (const [q, s] of lpbq) q.lpbqScales = s
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
    const result = this.#change(() => applyEncodings(this.model, this.#quantizers, file, opts))
    this.#calibrated = this.#quantizers.every((q) => !q.enabled || q.spec.dtype === 'float' || q.spec.dynamic === true || (q.encodings?.length ?? 0) > 0 || this.#tiedToEncoded(q))
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

  /**
   * The QDQ model the sim runs (and exports). `omitZeroPoints`: weights whose zero points are all
   * 0 get a DequantizeLinear without its zero-point input (ONNX's default), as ONNX Runtime's
   * weight-only writer does; same numbers.
   */
  qdqModel(purpose: 'simulation' | 'export' = 'simulation', opset?: number, opts: { omitZeroPoints?: boolean } = {}): { model: Model; report: QdqBuildReport } {
    this.#requireEncodings(purpose === 'export' ? 'export' : 'run')
    return buildQdqModel(this.model, this.#quantizers, { purpose, minOpset: opset, ...(opts.omitZeroPoints ? { omitZeroPoints: true } : {}) })
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
    this.#checkTarget()
    if (!prefix || /[/\\]/.test(prefix)) throw new TypeError(`prefix: expected a file name prefix without slashes, got ${JSON.stringify(prefix)}`)
    const encodingVersion = opts.encodingVersion ?? '1.0.0'
    if (!ENCODING_VERSIONS.includes(encodingVersion)) {
      throw new RangeError(`encodingVersion: expected one of ${ENCODING_VERSIONS.join(', ')}, got ${JSON.stringify(opts.encodingVersion)}`)
    }
    const formats = opts.formats ?? ['encodings', 'qdq']
    const dynamic = this.#quantizers.find((q) => q.enabled && q.spec.dynamic)
    if (formats.includes('encodings') && dynamic) {
      throw new QuantSimError(`export: the activation quantizer on ${JSON.stringify(dynamic.tensor)} is dynamic (quantized at run time); AIMET's encodings file cannot hold it. Export with formats: ['qdq']`)
    }
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
            : encodingsFileV1(this.#quantizers, args, VERSION, this.model)
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

function checkBits(bits: number, name: string): void {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16) throw new RangeError(`${name}: expected an integer from 2 to 16, got ${bits}`)
}
