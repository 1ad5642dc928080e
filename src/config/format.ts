// The quantsim config format: AIMET's JSON (aimet-onnx 2.42,
// `common/quantsim_config/quantsim_config_schema.py` QUANTSIM_CONFIG_SCHEMA and
// `json_config_importer.py`), as a file holds it and as quantkit reads it.

/** How a file writes a flag: AIMET's own files use the strings "True"/"False"; quantkit also takes JSON booleans. */
export type BoolLike = boolean | 'True' | 'False'

export interface KernelSpecJson { bitwidth: 4 | 8 | 16 | 32; dtype: 'int' | 'float' }
export interface SupportedKernelJson { activation: KernelSpecJson; param?: KernelSpecJson }
export interface ParamSettingsJson { is_quantized?: BoolLike; is_symmetric?: BoolLike }
export interface EncodingConstraintsJson { min: number; max?: number; [extra: string]: unknown }

export interface OpTypeSettingsJson {
  is_input_quantized?: BoolLike
  is_output_quantized?: BoolLike
  is_symmetric?: BoolLike
  per_channel_quantization?: BoolLike
  params?: Record<string, ParamSettingsJson>
  encoding_constraints?: EncodingConstraintsJson
  supported_kernels?: SupportedKernelJson[]
}

/** A quantsim config as written in an AIMET config file (what `presetConfig` returns). */
export interface QuantsimConfigJson {
  defaults: {
    ops: { is_output_quantized?: BoolLike; is_input_quantized?: BoolLike; is_symmetric?: BoolLike }
    params: ParamSettingsJson
    strict_symmetric?: BoolLike
    unsigned_symmetric?: BoolLike
    per_channel_quantization?: BoolLike
    supported_kernels?: SupportedKernelJson[]
    hw_version?: string
  }
  params: Record<string, ParamSettingsJson>
  op_type: Record<string, OpTypeSettingsJson>
  supergroups: { op_list: string[] }[]
  supergroup_pass_list?: string[]
  model_input: { is_input_quantized?: BoolLike }
  model_output: { is_output_quantized?: BoolLike }
}

export interface KernelSpec { bitwidth: 4 | 8 | 16 | 32; dtype: 'int' | 'float' }
export interface SupportedKernel { activation: KernelSpec; param?: KernelSpec }
export interface ParamSettings { is_quantized?: boolean; is_symmetric?: boolean }
export interface EncodingConstraints { min: number; max?: number }

export interface OpTypeSettings {
  is_input_quantized?: boolean
  is_output_quantized?: boolean
  is_symmetric?: boolean
  per_channel_quantization?: boolean
  params?: Record<string, ParamSettings>
  encoding_constraints?: EncodingConstraints
  supported_kernels?: SupportedKernel[]
}

/**
 * A validated config with every flag a boolean, as aimet-onnx holds it after
 * `convert_configs_values_to_bool`. Keys absent from the file stay absent (absent and "False"
 * do not always mean the same in AIMET: an op type named without `is_output_quantized` keeps
 * the default, a grid-preserving op type not named at all loses its output quantizer).
 */
export interface QuantsimConfig {
  defaults: {
    ops: { is_output_quantized?: boolean; is_symmetric?: boolean }
    params: ParamSettings
    strict_symmetric?: boolean
    unsigned_symmetric?: boolean
    per_channel_quantization?: boolean
    supported_kernels?: SupportedKernel[]
    hw_version?: string
  }
  params: Record<string, ParamSettings>
  op_type: Record<string, OpTypeSettings>
  supergroups: { op_list: string[] }[]
  supergroup_pass_list?: string[]
  model_input: { is_input_quantized?: boolean }
  model_output: { is_output_quantized?: boolean }
}

/**
 * The keys each object of the format may hold, exactly AIMET's schema (every object there has
 * `additionalProperties: false` except `encoding_constraints`). The JSON schema in
 * `schemas/quantsim-config.schema.json` is checked against this table by a test.
 */
export const CONFIG_KEYS = {
  root: ['defaults', 'params', 'op_type', 'supergroups', 'supergroup_pass_list', 'model_input', 'model_output'],
  rootRequired: ['defaults', 'params', 'op_type', 'supergroups', 'model_input', 'model_output'],
  defaults: ['ops', 'params', 'strict_symmetric', 'unsigned_symmetric', 'per_channel_quantization', 'supported_kernels', 'hw_version'],
  defaultsRequired: ['ops', 'params'],
  defaultsOps: ['is_input_quantized', 'is_output_quantized', 'is_symmetric'],
  paramSettings: ['is_quantized', 'is_symmetric'],
  opType: ['is_input_quantized', 'is_output_quantized', 'is_symmetric', 'params', 'supported_kernels', 'per_channel_quantization', 'encoding_constraints'],
  encodingConstraints: ['min', 'max'],
  supportedKernel: ['activation', 'param'],
  kernelSpec: ['bitwidth', 'dtype'],
  supergroup: ['op_list'],
  modelInput: ['is_input_quantized'],
  modelOutput: ['is_output_quantized'],
} as const

/** `supported_kernels` bitwidths AIMET's schema allows. */
export const KERNEL_BITWIDTHS = [4, 8, 16, 32] as const
