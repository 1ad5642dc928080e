// Validating a quantsim config the way aimet-onnx 2.42 does (`json_config_importer.py`:
// `_validate_syntax` against QUANTSIM_CONFIG_SCHEMA, `convert_configs_values_to_bool`,
// `_validate_semantics`), with errors that name the JSON path, what is allowed, and for an unknown
// key the nearest valid one. Flags may be AIMET's strings "True"/"False" or JSON booleans.

import { ConfigError } from '../errors.js'
import { FUSION_PASSES, KNOWN_HW_VERSIONS, PARAM_NAMES } from './aimetRules.js'
import {
  CONFIG_KEYS, KERNEL_BITWIDTHS, type EncodingConstraints, type KernelSpec, type OpTypeSettings, type ParamSettings,
  type QuantsimConfig, type SupportedKernel,
} from './format.js'
import { closeMatch, nearest } from './nearest.js'
import { isKnownOpType, knownOpTypes } from './onnxOpTypes.js'

export interface ValidatedConfig {
  config: QuantsimConfig
  /** Things AIMET accepts silently but that are probably mistakes (a param or op type name that matches nothing). */
  warnings: string[]
}

type PathPart = string | number

/** `op_type.Conv.params.weight`, `supergroups[2].op_list`, `op_type["my.op"]`. */
export function formatPath(parts: readonly PathPart[]): string {
  let s = ''
  for (const p of parts) {
    if (typeof p === 'number') s += `[${p}]`
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p)) s += s === '' ? p : `.${p}`
    else s += `[${JSON.stringify(p)}]`
  }
  return s
}

class Validator {
  readonly warnings: string[] = []
  constructor(readonly source: string) {}

  fail(path: readonly PathPart[], message: string, suggestion?: string): never {
    const where = path.length === 0 ? 'the config' : formatPath(path)
    throw new ConfigError(`${this.source}: ${where}: ${message}`, { path: formatPath(path), source: this.source, suggestion })
  }

  warn(path: readonly PathPart[], message: string): void {
    this.warnings.push(`${formatPath(path)}: ${message}`)
  }

  object(value: unknown, path: readonly PathPart[], allowed: readonly string[], required: readonly string[] = []): Record<string, unknown> {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      this.fail(path, `expected an object${allowed.length ? ` with keys ${list(allowed)}` : ''}, got ${describe(value)}`)
    }
    const obj = value as Record<string, unknown>
    for (const key of Object.keys(obj)) {
      if (!allowed.includes(key)) {
        const near = nearest(key, allowed)
        this.fail([...path, key], `unknown key "${key}"; the nearest valid key is "${near?.name}" (valid keys here: ${list(allowed)})`, near?.name)
      }
    }
    for (const key of required) {
      if (!(key in obj)) this.fail(path, `missing required key "${key}" (aimet-onnx requires ${list(required)} here)`)
    }
    return obj
  }

  bool(value: unknown, path: readonly PathPart[]): boolean {
    if (value === 'True' || value === true) return true
    if (value === 'False' || value === false) return false
    const hint = typeof value === 'string' && /^(true|false)$/i.test(value) ? ' (AIMET\'s strings are case-sensitive)' : ''
    return this.fail(path, `expected "True" or "False" (AIMET's strings) or a JSON boolean, got ${describe(value)}${hint}`)
  }

  optionalBool(obj: Record<string, unknown>, key: string, path: readonly PathPart[]): boolean | undefined {
    return key in obj ? this.bool(obj[key], [...path, key]) : undefined
  }

  number(value: unknown, path: readonly PathPart[]): number {
    if (typeof value !== 'number' || !Number.isFinite(value)) this.fail(path, `expected a finite number, got ${describe(value)}`)
    return value
  }

  string(value: unknown, path: readonly PathPart[], what = 'a string'): string {
    if (typeof value !== 'string') this.fail(path, `expected ${what}, got ${describe(value)}`)
    return value
  }

  array(value: unknown, path: readonly PathPart[], what: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, `expected an array of ${what}, got ${describe(value)}`)
    return value
  }

  paramSettings(value: unknown, path: readonly PathPart[]): ParamSettings {
    const obj = this.object(value, path, CONFIG_KEYS.paramSettings)
    const out: ParamSettings = {}
    const q = this.optionalBool(obj, 'is_quantized', path)
    const s = this.optionalBool(obj, 'is_symmetric', path)
    if (q !== undefined) out.is_quantized = q
    if (s !== undefined) out.is_symmetric = s
    return out
  }

  paramsSection(value: unknown, path: readonly PathPart[]): Record<string, ParamSettings> {
    const obj = this.object(value, path, Object.keys(value && typeof value === 'object' ? value : {}))
    const out: Record<string, ParamSettings> = {}
    for (const [name, settings] of Object.entries(obj)) {
      if (!PARAM_NAMES.has(name)) {
        const near = closeMatch(name, PARAM_NAMES)
        this.warn([...path, name], `aimet-onnx names params ${list([...PARAM_NAMES])}; "${name}" matches none, so these settings apply to nothing${near ? ` (did you mean "${near}"?)` : ''}`)
      }
      out[name] = this.paramSettings(settings, [...path, name])
    }
    return out
  }

  kernelSpec(value: unknown, path: readonly PathPart[], role: 'activation' | 'param'): KernelSpec {
    const obj = this.object(value, path, CONFIG_KEYS.kernelSpec, CONFIG_KEYS.kernelSpec)
    const bitwidth = obj.bitwidth
    if (typeof bitwidth !== 'number' || !(KERNEL_BITWIDTHS as readonly number[]).includes(bitwidth)) {
      this.fail([...path, 'bitwidth'], `expected one of ${KERNEL_BITWIDTHS.join(', ')}, got ${describe(bitwidth)}`)
    }
    const dtype = obj.dtype
    if (dtype !== 'int' && dtype !== 'float') this.fail([...path, 'dtype'], `expected "int" or "float", got ${describe(dtype)}`)
    // json_config_importer._validate_supported_kernels
    if (dtype === 'float' && bitwidth !== 16 && bitwidth !== 32) {
      this.fail([...path, 'bitwidth'], `${role} dtype "float" is only supported with bitwidth 16 or 32 (aimet-onnx raises NotImplementedError), got ${bitwidth}`)
    }
    return { bitwidth: bitwidth as KernelSpec['bitwidth'], dtype }
  }

  supportedKernels(value: unknown, path: readonly PathPart[], paramRequired: boolean): SupportedKernel[] {
    const items = this.array(value, path, 'kernels ({activation, param})')
    if (items.length === 0) this.fail(path, 'expected at least one kernel (aimet-onnx\'s schema has minItems 1)')
    return items.map((item, i) => {
      const p = [...path, i]
      const obj = this.object(item, p, CONFIG_KEYS.supportedKernel, paramRequired ? CONFIG_KEYS.supportedKernel : ['activation'])
      const k: SupportedKernel = { activation: this.kernelSpec(obj.activation, [...p, 'activation'], 'activation') }
      if ('param' in obj) k.param = this.kernelSpec(obj.param, [...p, 'param'], 'param')
      return k
    })
  }

  encodingConstraints(value: unknown, path: readonly PathPart[]): EncodingConstraints {
    if (value === null || typeof value !== 'object' || Array.isArray(value)) this.fail(path, `expected an object {min, max?}, got ${describe(value)}`)
    const obj = value as Record<string, unknown>
    // AIMET's schema does not forbid other keys here, so neither do we: warn.
    for (const key of Object.keys(obj)) {
      if (!(CONFIG_KEYS.encodingConstraints as readonly string[]).includes(key)) {
        this.warn([...path, key], `ignored: encoding_constraints takes "min" and "max"; the nearest is "${nearest(key, CONFIG_KEYS.encodingConstraints)?.name}"`)
      }
    }
    if (!('min' in obj)) this.fail(path, 'missing required key "min" (encoding_constraints is {min, max?})')
    const out: EncodingConstraints = { min: this.number(obj.min, [...path, 'min']) }
    if ('max' in obj) {
      out.max = this.number(obj.max, [...path, 'max'])
      if (out.max < out.min) this.fail([...path, 'max'], `expected max ≥ min (${out.min}), got ${out.max}`)
    }
    return out
  }

  opType(name: string, value: unknown, path: readonly PathPart[]): OpTypeSettings {
    if (!isKnownOpType(name)) {
      const near = closeMatch(name, knownOpTypes())
      this.warn(path, `"${name}" is not an ONNX op type, so these settings match no node unless a custom op has that name${near ? ` (did you mean "${near}"?)` : ''}`)
    }
    const obj = this.object(value, path, CONFIG_KEYS.opType)
    const out: OpTypeSettings = {}
    for (const key of ['is_input_quantized', 'is_output_quantized', 'is_symmetric', 'per_channel_quantization'] as const) {
      const v = this.optionalBool(obj, key, path)
      if (v !== undefined) out[key] = v
    }
    // json_config_importer._validate_semantics
    if (out.is_input_quantized === false) {
      this.fail([...path, 'is_input_quantized'], 'only "True" is allowed: aimet-onnx rejects "False" here ("IS_INPUT_QUANTIZED false in op configs is currently unsupported"); leave the key out instead')
    }
    if ('params' in obj) {
      const params = this.object(obj.params, [...path, 'params'], Object.keys(obj.params && typeof obj.params === 'object' ? obj.params : {}))
      out.params = this.paramsSection(params, [...path, 'params'])
    }
    if ('encoding_constraints' in obj) out.encoding_constraints = this.encodingConstraints(obj.encoding_constraints, [...path, 'encoding_constraints'])
    if ('supported_kernels' in obj) out.supported_kernels = this.supportedKernels(obj.supported_kernels, [...path, 'supported_kernels'], false)
    return out
  }

  config(value: unknown): QuantsimConfig {
    const root = this.object(value, [], CONFIG_KEYS.root, CONFIG_KEYS.rootRequired)

    const d = this.object(root.defaults, ['defaults'], CONFIG_KEYS.defaults, CONFIG_KEYS.defaultsRequired)
    const ops = this.object(d.ops, ['defaults', 'ops'], CONFIG_KEYS.defaultsOps)
    if ('is_input_quantized' in ops) {
      this.bool(ops.is_input_quantized, ['defaults', 'ops', 'is_input_quantized'])
      this.fail(['defaults', 'ops', 'is_input_quantized'], 'not allowed in defaults: aimet-onnx rejects it ("IS_INPUT_QUANTIZED setting in default configs is not supported"); set it per op type or in model_input')
    }
    const defaults: QuantsimConfig['defaults'] = { ops: {}, params: this.paramSettings(d.params, ['defaults', 'params']) }
    const out = this.optionalBool(ops, 'is_output_quantized', ['defaults', 'ops'])
    if (out === false) {
      this.fail(['defaults', 'ops', 'is_output_quantized'], 'only "True" is allowed: aimet-onnx rejects "False" here ("IS_OUTPUT_QUANTIZED false setting in default configs is not supported"); turn outputs off per op type')
    }
    if (out !== undefined) defaults.ops.is_output_quantized = out
    const sym = this.optionalBool(ops, 'is_symmetric', ['defaults', 'ops'])
    if (sym !== undefined) defaults.ops.is_symmetric = sym
    for (const key of ['strict_symmetric', 'unsigned_symmetric', 'per_channel_quantization'] as const) {
      const v = this.optionalBool(d, key, ['defaults'])
      if (v !== undefined) defaults[key] = v
    }
    if ('supported_kernels' in d) defaults.supported_kernels = this.supportedKernels(d.supported_kernels, ['defaults', 'supported_kernels'], true)
    if ('hw_version' in d) {
      defaults.hw_version = this.string(d.hw_version, ['defaults', 'hw_version'], `a hardware version string such as ${list(KNOWN_HW_VERSIONS)}`)
      if (!KNOWN_HW_VERSIONS.includes(defaults.hw_version)) {
        const near = closeMatch(defaults.hw_version, KNOWN_HW_VERSIONS)
        this.warn(['defaults', 'hw_version'], `"${defaults.hw_version}" is none of AIMET's ${list(KNOWN_HW_VERSIONS)}; its hardware rules treat it as V73 or later${near ? ` (did you mean "${near}"?)` : ''}`)
      }
    }

    const params = this.paramsSection(root.params, ['params'])

    const opTypeObj = this.object(root.op_type, ['op_type'], Object.keys(root.op_type && typeof root.op_type === 'object' ? root.op_type : {}))
    const opType: Record<string, OpTypeSettings> = {}
    for (const [name, settings] of Object.entries(opTypeObj)) opType[name] = this.opType(name, settings, ['op_type', name])

    const supergroups = this.array(root.supergroups, ['supergroups'], 'objects {"op_list": [op types]}').map((sg, i) => {
      const p = ['supergroups', i]
      const obj = this.object(sg, p, CONFIG_KEYS.supergroup, CONFIG_KEYS.supergroup)
      const opList = this.array(obj.op_list, [...p, 'op_list'], 'op type names').map((o, j) => this.string(o, [...p, 'op_list', j], 'an op type name'))
      if (opList.length < 2) this.fail([...p, 'op_list'], `expected at least 2 op types (a supergroup is a sequence), got ${opList.length}`)
      for (const [j, o] of opList.entries()) {
        if (!isKnownOpType(o)) {
          const near = closeMatch(o, knownOpTypes())
          this.warn([...p, 'op_list', j], `"${o}" is not an ONNX op type, so this supergroup matches nothing${near ? ` (did you mean "${near}"?)` : ''}`)
        }
      }
      return { op_list: opList }
    })

    const config: QuantsimConfig = { defaults, params, op_type: opType, supergroups, model_input: {}, model_output: {} }

    if ('supergroup_pass_list' in root) {
      config.supergroup_pass_list = this.array(root.supergroup_pass_list, ['supergroup_pass_list'], 'fusion pass names').map((name, i) => {
        const s = this.string(name, ['supergroup_pass_list', i], `a fusion pass name (${list(FUSION_PASSES)})`)
        if (!FUSION_PASSES.includes(s)) {
          const near = nearest(s, FUSION_PASSES)?.name
          this.fail(['supergroup_pass_list', i], `unknown fusion pass "${s}"; the nearest is "${near}" (aimet-onnx knows ${list(FUSION_PASSES)} and raises "Graph pass requested but not found" for others)`, near)
        }
        return s
      })
    }

    const mi = this.object(root.model_input, ['model_input'], CONFIG_KEYS.modelInput)
    const inQ = this.optionalBool(mi, 'is_input_quantized', ['model_input'])
    if (inQ === false) {
      this.fail(['model_input', 'is_input_quantized'], 'only "True" is allowed: aimet-onnx rejects "False" here ("IS_INPUT_QUANTIZED for model input can only be set to True"); leave the key out to keep model inputs unquantized')
    }
    if (inQ !== undefined) config.model_input.is_input_quantized = inQ
    const mo = this.object(root.model_output, ['model_output'], CONFIG_KEYS.modelOutput)
    const outQ = this.optionalBool(mo, 'is_output_quantized', ['model_output'])
    if (outQ === false) {
      this.fail(['model_output', 'is_output_quantized'], 'only "True" is allowed: aimet-onnx rejects "False" here ("IS_OUTPUT_QUANTIZED for model output can only be set to True"); leave the key out instead')
    }
    if (outQ !== undefined) config.model_output.is_output_quantized = outQ
    return config
  }
}

/**
 * Validate a parsed config object (AIMET's JSON) and return it with every flag a boolean.
 * Throws a ConfigError naming the JSON path for anything aimet-onnx 2.42 would reject, and for an
 * unknown key also the nearest valid one. `source` names the config in messages (a file path).
 */
export function validateQuantsimConfig(value: unknown, source = '<object>'): ValidatedConfig {
  const v = new Validator(source)
  const config = v.config(value)
  return { config, warnings: v.warnings }
}

function list(items: readonly string[]): string {
  return items.map((s) => `"${s}"`).join(', ')
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  if (typeof value === 'object') return 'an object'
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)
  return `${typeof value} ${String(value)}`
}
