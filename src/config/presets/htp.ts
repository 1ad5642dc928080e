// Qualcomm HTP configs of aimet-onnx 2.42 (common/quantsim_config/htp_quantsim_config_vNN.json),
// written out from what the files say. Common to all: params symmetric (not strict, not
// unsigned), bias and BatchNorm running stats not quantized, LayerNorm weight asymmetric, model
// inputs quantized, outputs of Cast, ChannelShuffle, Gather and NonMaxSuppression not quantized,
// Relu ≥ 0 and Sin/Cos/Tanh in [−1, 1]. The `_per_channel_linear` files AIMET also ships are
// byte-identical to their base files.

import type { OpTypeSettingsJson, QuantsimConfigJson } from '../format.js'

const OFF = { is_output_quantized: 'False' } as const
const ASYMMETRIC_WEIGHT = { params: { weight: { is_symmetric: 'False' } } } as const
const PER_CHANNEL = { per_channel_quantization: 'True' } as const
const UNIT_RANGE = { encoding_constraints: { min: -1.0, max: 1.0 } }

function htpDefaults(hwVersion: string): QuantsimConfigJson['defaults'] {
  return {
    hw_version: hwVersion,
    ops: { is_output_quantized: 'True' },
    params: { is_quantized: 'True', is_symmetric: 'True' },
    per_channel_quantization: 'False',
    strict_symmetric: 'False',
    unsigned_symmetric: 'False',
  }
}

const COMMON_OP_TYPES: Record<string, OpTypeSettingsJson> = {
  Cast: OFF,
  ChannelShuffle: OFF,
  Gather: OFF,
  NonMaxSuppression: OFF,
  LayerNormalization: ASYMMETRIC_WEIGHT,
  BatchNormalization: { params: { running_mean: { is_quantized: 'False' }, running_var: { is_quantized: 'False' } } },
  Relu: { encoding_constraints: { min: 0.0 } },
  Sin: UNIT_RANGE,
  Cos: UNIT_RANGE,
  Tanh: UNIT_RANGE,
}

const COMMON = {
  params: { bias: { is_quantized: 'False' } },
  model_input: { is_input_quantized: 'True' },
  model_output: {},
} as const

const FUSIONS = ['LayerNormalization', 'RMSNormalization', 'MatmulAdd']

const SUPERGROUPS_V66_TO_V69 = [
  { op_list: ['ConvTranspose', 'Relu'] },
  { op_list: ['Add', 'Relu'] },
  { op_list: ['Gemm', 'Relu'] },
]

export const HTP_V66: QuantsimConfigJson = {
  defaults: htpDefaults('V66'),
  ...COMMON,
  op_type: { ...COMMON_OP_TYPES, Flatten: OFF },
  supergroups: SUPERGROUPS_V66_TO_V69,
}

export const HTP_V68: QuantsimConfigJson = {
  defaults: htpDefaults('V68'),
  ...COMMON,
  op_type: {
    Conv: PER_CHANNEL,
    ConvTranspose: PER_CHANNEL,
    PRelu: PER_CHANNEL,
    ...COMMON_OP_TYPES,
    RMSNormalization: ASYMMETRIC_WEIGHT,
    InstanceNormalization: ASYMMETRIC_WEIGHT,
  },
  supergroup_pass_list: FUSIONS,
  supergroups: SUPERGROUPS_V66_TO_V69,
}

export const HTP_V69: QuantsimConfigJson = {
  ...HTP_V68,
  defaults: htpDefaults('V69'),
  op_type: { Gemm: PER_CHANNEL, MatMul: PER_CHANNEL, ...HTP_V68.op_type },
}

function htpV73Plus(hwVersion: string): QuantsimConfigJson {
  return {
    defaults: htpDefaults(hwVersion),
    ...COMMON,
    op_type: {
      ...HTP_V69.op_type,
      GroupNormalization: { params: { bias: { is_quantized: 'True' } } },
      Sigmoid: { encoding_constraints: { min: 0.0, max: 1.0 } },
      Softmax: { encoding_constraints: { min: 0.0, max: 1.0 } },
    },
    supergroup_pass_list: FUSIONS,
    supergroups: [
      { op_list: ['Add', 'Relu'] },
      { op_list: ['Conv', 'BatchNormalization', 'HardSwish'] },
      { op_list: ['Conv', 'BatchNormalization', 'PRelu'] },
      { op_list: ['Conv', 'BatchNormalization', 'LeakyRelu'] },
      { op_list: ['Conv', 'BatchNormalization', 'Relu'] },
      { op_list: ['Conv', 'Transpose', 'Relu'] },
      { op_list: ['Conv', 'Transpose', 'PRelu'] },
      { op_list: ['Conv', 'Transpose', 'LeakyRelu'] },
      { op_list: ['Conv', 'Clip'] },
      { op_list: ['Conv', 'PRelu'] },
      { op_list: ['Conv', 'LeakyRelu'] },
      { op_list: ['Conv', 'Relu'] },
      { op_list: ['ConvTranspose', 'Relu'] },
      { op_list: ['Gemm', 'Relu'] },
    ],
  }
}

export const HTP_V73 = htpV73Plus('V73')
export const HTP_V75 = htpV73Plus('V75')
export const HTP_V79 = htpV73Plus('V79')
export const HTP_V81 = htpV73Plus('V81')
export const HTP_V85 = htpV73Plus('V85')
