// From a config (preset name, file path or object) to the answers quantizer placement needs,
// with AIMET's defaults and code-level rules applied. Precedence is aimet-onnx 2.42's
// (`quantsim_config/quantsim_config.py` `QuantSimConfigurator._set_quantsim_configs`):
// defaults → params → op_type → supergroups → model_input → model_output.

import { existsSync, readFileSync, statSync } from 'node:fs'
import { basename } from 'node:path'
import { ConfigError } from '../errors.js'
import {
  DYNAMIC_WEIGHT_SYMMETRY_OP_TYPES, GRID_PRESERVING_OP_TYPES, NO_OUTPUT_QUANTIZER_OP_TYPES, NORM_OP_TYPES, PARAM_INPUTS,
  PARAM_NAMES, PER_CHANNEL_OP_TYPES, TIE_INPUTS_TO_OUTPUT_OP_TYPES, TIE_OUTPUT_TO_INPUT_OP_TYPES,
} from './aimetRules.js'
import type { QuantsimConfig, SupportedKernel } from './format.js'
import { nearest } from './nearest.js'
import { AIMET_FILE_NAME_TO_PRESET, PRESET_NAMES, isPresetName, presetConfig, type PresetName } from './presets/index.js'
import { validateQuantsimConfig } from './validate.js'

export interface ParamRule {
  /** Whether the param gets an enabled quantizer. */
  isQuantized: boolean
  /** Whether that quantizer is symmetric (before the hardware exception rules of aimetRules.ts). */
  isSymmetric: boolean
}

export interface OpRule {
  opType: string
  /** False for op types aimet-onnx never gives an output quantizer (Reshape, Transpose, Gather, …). */
  hasOutputQuantizer: boolean
  /**
   * Whether the op's outputs are quantized, before supergroups and model_output: the op type's
   * `is_output_quantized`, else False for a grid-preserving op type the config does not name,
   * else `defaults.ops.is_output_quantized` (False when absent). Always False without a quantizer.
   */
  isOutputQuantized: boolean
  /** True when the config asks for the op's input tensors to be quantized (`is_input_quantized`); absent otherwise. */
  isInputQuantized?: boolean
  /**
   * Symmetry of the op's output quantizer: the op type's `is_symmetric` (which aimet-onnx applies
   * to the op's input quantizers too), else `defaults.ops.is_symmetric`, else False; forced True
   * by an encoding constraint whose min is −max.
   */
  isSymmetric: boolean
  /** Per-channel weights: only ever for Conv, ConvTranspose, Gemm and MatMul. */
  perChannel: boolean
  /** A fixed output range (`encoding_constraints`); max absent means only min is fixed. */
  encodingConstraints?: { min: number; max?: number; symmetric: boolean }
  /** Each param the op type has in aimet-onnx (plus any the config names for it). */
  params: Record<string, ParamRule>
  /** Conv/ConvTranspose/Gemm/MatMul: symmetry of a non-constant input 1 (`_apply_param_symmetry_to_inputs`). */
  dynamicWeightIsSymmetric?: boolean
  /** Quantizers sharing one encoding: the inputs take the output's (Concat…), or the output takes input 0's (Relu, AveragePool, Resize…). */
  tie?: 'inputs-take-output' | 'output-takes-input'
  /** `supported_kernels` of the op type, else of the defaults. */
  supportedKernels?: SupportedKernel[]
}

export interface ResolvedConfigSummary {
  source: string
  hwVersion?: string
  strictSymmetric: boolean
  unsignedSymmetric: boolean
  modelInput: { isInputQuantized: boolean }
  modelOutput: { isOutputQuantized?: boolean }
  perChannelOpTypes: string[]
  supergroups: string[][]
  fusionPasses: string[]
  supportedKernels?: SupportedKernel[]
  defaults: { isOutputQuantized: boolean; isSymmetric: boolean; perChannel: boolean; params: ParamRule }
  params: Record<string, ParamRule>
  ops: Record<string, OpRule>
}

export interface ResolvedConfig {
  /** `preset:<name>`, a file path, or `<object>`. */
  readonly source: string
  /** The preset name when the config is one. */
  readonly preset?: PresetName
  /** The validated config, every flag a boolean. */
  readonly config: QuantsimConfig
  readonly hwVersion?: string
  readonly strictSymmetric: boolean
  readonly unsignedSymmetric: boolean
  /**
   * Whether model inputs are quantized. aimet-onnx applies the same flag to constant inputs that
   * are not params (PRelu slopes, Add/Mul constants, Constant-node outputs).
   */
  readonly modelInput: { isInputQuantized: boolean }
  /** True forces the outputs of the graph's output ops quantized, after supergroups; absent leaves them as op rules say. */
  readonly modelOutput: { isOutputQuantized?: boolean }
  /** Op sequences with no quantizer between their ops (only the last op's output is quantized). */
  readonly supergroups: string[][]
  /** `supergroup_pass_list`: fusion passes run before placement (LayerNormalization, RMSNormalization, MatmulAdd, MaskedSoftmax). */
  readonly fusionPasses: string[]
  /** The op types among Conv, ConvTranspose, Gemm, MatMul whose weights are per-channel. */
  readonly perChannelOpTypes: string[]
  /** Non-fatal findings: settings that match nothing (misspelled op type or param name), unknown hw_version. */
  readonly warnings: string[]
  op(opType: string): OpRule
  param(opType: string, paramName: string): ParamRule
  /** Everything above as plain data, for every op type the config names or a rule table lists (plus `opTypes`). */
  summary(opTypes?: Iterable<string>): ResolvedConfigSummary
  toJSON(): ResolvedConfigSummary
}

/** `np.allclose(min, -max)` with numpy's default tolerances, as `_modify_activation_quantize_op` tests it. */
function symmetricRange(min: number, max: number | undefined): boolean {
  return max !== undefined && Math.abs(min + max) <= 1e-8 + 1e-5 * Math.abs(max)
}

class Resolved implements ResolvedConfig {
  readonly hwVersion?: string
  readonly strictSymmetric: boolean
  readonly unsignedSymmetric: boolean
  readonly modelInput: { isInputQuantized: boolean }
  readonly modelOutput: { isOutputQuantized?: boolean }
  readonly supergroups: string[][]
  readonly fusionPasses: string[]
  readonly perChannelOpTypes: string[]
  private readonly cache = new Map<string, OpRule>()

  constructor(readonly source: string, readonly config: QuantsimConfig, readonly warnings: string[], readonly preset?: PresetName) {
    const d = config.defaults
    this.hwVersion = d.hw_version
    // QcQuantizeOp's defaults when the file is silent: not strict, not unsigned.
    this.strictSymmetric = d.strict_symmetric ?? false
    this.unsignedSymmetric = d.unsigned_symmetric ?? false
    // Default op settings switch model-input quantizers off; only model_input turns them on.
    this.modelInput = { isInputQuantized: config.model_input.is_input_quantized ?? false }
    this.modelOutput = config.model_output.is_output_quantized === undefined ? {} : { isOutputQuantized: config.model_output.is_output_quantized }
    this.supergroups = config.supergroups.map((s) => [...s.op_list])
    this.fusionPasses = [...(config.supergroup_pass_list ?? [])]
    this.perChannelOpTypes = [...PER_CHANNEL_OP_TYPES].filter((t) => this.op(t).perChannel)
  }

  param(opType: string, paramName: string): ParamRule {
    const c = this.config
    const rule: ParamRule = { isQuantized: c.defaults.params.is_quantized ?? false, isSymmetric: c.defaults.params.is_symmetric ?? false }
    for (const s of [c.params[paramName], c.op_type[opType]?.params?.[paramName]]) {
      if (s?.is_quantized !== undefined) rule.isQuantized = s.is_quantized
      if (s?.is_symmetric !== undefined) rule.isSymmetric = s.is_symmetric
    }
    return rule
  }

  op(opType: string): OpRule {
    const cached = this.cache.get(opType)
    if (cached) return structuredClone(cached)
    const c = this.config
    const o = c.op_type[opType]
    const hasOutputQuantizer = !NO_OUTPUT_QUANTIZER_OP_TYPES.has(opType)
    let isOutputQuantized: boolean
    if (!hasOutputQuantizer) isOutputQuantized = false
    else if (o?.is_output_quantized !== undefined) isOutputQuantized = o.is_output_quantized
    else if (o === undefined && GRID_PRESERVING_OP_TYPES.has(opType)) isOutputQuantized = false
    else isOutputQuantized = c.defaults.ops.is_output_quantized ?? false

    const rule: OpRule = {
      opType,
      hasOutputQuantizer,
      isOutputQuantized,
      isSymmetric: o?.is_symmetric ?? c.defaults.ops.is_symmetric ?? false,
      perChannel: PER_CHANNEL_OP_TYPES.has(opType) && (o?.per_channel_quantization ?? c.defaults.per_channel_quantization ?? false),
      params: {},
    }
    if (o?.is_input_quantized !== undefined) rule.isInputQuantized = o.is_input_quantized
    if (o?.encoding_constraints) {
      const { min, max } = o.encoding_constraints
      const symmetric = symmetricRange(min, max)
      rule.encodingConstraints = max === undefined ? { min, symmetric } : { min, max, symmetric }
      if (symmetric) rule.isSymmetric = true
    }
    const names = new Set([...Object.values(PARAM_INPUTS[opType] ?? {}), ...Object.keys(o?.params ?? {})])
    for (const name of names) rule.params[name] = this.param(opType, name)
    if (DYNAMIC_WEIGHT_SYMMETRY_OP_TYPES.has(opType)) {
      rule.dynamicWeightIsSymmetric = o?.params?.weight?.is_symmetric ?? c.defaults.params.is_symmetric ?? false
    }
    if (TIE_INPUTS_TO_OUTPUT_OP_TYPES.has(opType)) rule.tie = 'inputs-take-output'
    else if (TIE_OUTPUT_TO_INPUT_OP_TYPES.has(opType)) rule.tie = 'output-takes-input'
    const kernels = o?.supported_kernels ?? c.defaults.supported_kernels
    if (kernels) rule.supportedKernels = structuredClone(kernels)
    this.cache.set(opType, rule)
    return structuredClone(rule)
  }

  summary(opTypes: Iterable<string> = []): ResolvedConfigSummary {
    const c = this.config
    const all = new Set<string>([
      ...Object.keys(c.op_type), ...this.supergroups.flat(), ...Object.keys(PARAM_INPUTS), ...GRID_PRESERVING_OP_TYPES,
      ...NO_OUTPUT_QUANTIZER_OP_TYPES, ...TIE_INPUTS_TO_OUTPUT_OP_TYPES, ...TIE_OUTPUT_TO_INPUT_OP_TYPES, ...NORM_OP_TYPES, ...opTypes,
    ])
    const ops: Record<string, OpRule> = {}
    for (const t of [...all].sort()) ops[t] = this.op(t)
    const params: Record<string, ParamRule> = {}
    for (const name of [...new Set([...PARAM_NAMES, ...Object.keys(c.params)])].sort()) params[name] = this.param('', name)
    const s: ResolvedConfigSummary = {
      source: this.source,
      strictSymmetric: this.strictSymmetric,
      unsignedSymmetric: this.unsignedSymmetric,
      modelInput: { ...this.modelInput },
      modelOutput: { ...this.modelOutput },
      perChannelOpTypes: [...this.perChannelOpTypes],
      supergroups: this.supergroups.map((g) => [...g]),
      fusionPasses: [...this.fusionPasses],
      defaults: {
        isOutputQuantized: c.defaults.ops.is_output_quantized ?? false,
        isSymmetric: c.defaults.ops.is_symmetric ?? false,
        perChannel: c.defaults.per_channel_quantization ?? false,
        params: { isQuantized: c.defaults.params.is_quantized ?? false, isSymmetric: c.defaults.params.is_symmetric ?? false },
      },
      params,
      ops,
    }
    if (this.hwVersion !== undefined) s.hwVersion = this.hwVersion
    if (c.defaults.supported_kernels) s.supportedKernels = structuredClone(c.defaults.supported_kernels)
    return s
  }

  toJSON(): ResolvedConfigSummary {
    return this.summary()
  }
}

/** Parse and validate an AIMET quantsim config file. */
export function readConfigFile(path: string): ReturnType<typeof validateQuantsimConfig> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`${path}: cannot read the config file: ${(err as Error).message}`, { path: '', source: path })
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON: ${(err as Error).message}`, { path: '', source: path })
  }
  return validateQuantsimConfig(json, path)
}

function fromPreset(name: PresetName): ResolvedConfig {
  const source = `preset:${name}`
  const { config, warnings } = validateQuantsimConfig(presetConfig(name), source)
  return new Resolved(source, config, warnings, name)
}

/**
 * Resolve a config for placement. `config` is:
 *  - undefined: the `default` preset (AIMET's per-channel default file), as in aimet-onnx;
 *  - a string: a path to an existing file first (as aimet-onnx checks `os.path.exists` first),
 *    else a preset name (`default`, `per_channel`, `per_tensor`, `htp_v66` … `htp_v85`,
 *    `enpu_v6`, `enpu_v7`, `ort_x86`, `ort_x86_vnni`, `ort_arm`), else one of AIMET's bundled file names that a preset stands for
 *    (`htp_quantsim_config_v73.json`, …);
 *  - an object: a config in AIMET's format ("True"/"False" strings or booleans).
 * Throws ConfigError naming the JSON path (and the nearest valid key or name) for a bad config.
 */
export function resolveConfig(config?: string | object): ResolvedConfig {
  if (config === undefined) return fromPreset('default')
  if (typeof config === 'string') {
    if (existsSync(config) && statSync(config).isFile()) {
      const { config: c, warnings } = readConfigFile(config)
      return new Resolved(config, c, warnings)
    }
    if (isPresetName(config)) return fromPreset(config)
    const byFile = AIMET_FILE_NAME_TO_PRESET.get(config)
    if (byFile) return fromPreset(byFile)
    if (/[\\/]|\.json$/i.test(config)) {
      const aimetOnly = /^(dsp_quantsim_config|enpu_quantsim_config_v7_per_channel)\.json$/.test(basename(config))
      throw new ConfigError(
        `config file not found: ${config}${aimetOnly ? ' (an aimet-onnx file quantkit does not bundle: pass the path of the copy in aimet_onnx/common/quantsim_config/)' : ''}`,
        { path: '', source: config })
    }
    const near = nearest(config, PRESET_NAMES)?.name
    throw new ConfigError(`unknown config "${config}": not a file, and not a preset; the nearest preset is "${near}" (presets: ${PRESET_NAMES.join(', ')})`,
      { path: '', source: config, suggestion: near })
  }
  if (config === null || typeof config !== 'object' || Array.isArray(config)) {
    throw new TypeError(`config: expected a preset name, a file path or a config object, got ${config === null ? 'null' : Array.isArray(config) ? 'an array' : typeof config}`)
  }
  if (config instanceof Resolved) return config
  const { config: c, warnings } = validateQuantsimConfig(config, '<object>')
  return new Resolved('<object>', c, warnings)
}
