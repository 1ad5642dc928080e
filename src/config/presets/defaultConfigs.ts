// aimet-onnx 2.42's two generic configs, written out from what those files say (see
// docs/presets.md; a test resolves each against AIMET's own file when the venv is present).
//   PER_TENSOR  ↔ common/quantsim_config/default_config.json             (quantkit: `per_tensor`)
//   PER_CHANNEL ↔ common/quantsim_config/default_config_per_channel.json (AIMET's `default` alias)

import type { QuantsimConfigJson } from '../format.js'

const BN_RUNNING_STATS_OFF = {
  params: { running_mean: { is_quantized: 'False' }, running_var: { is_quantized: 'False' } },
} as const

export const PER_TENSOR: QuantsimConfigJson = {
  defaults: {
    ops: { is_output_quantized: 'True' },
    params: { is_quantized: 'True', is_symmetric: 'True' },
    strict_symmetric: 'False',
    per_channel_quantization: 'False',
  },
  params: { bias: { is_quantized: 'False' } },
  op_type: {
    BatchNormalization: BN_RUNNING_STATS_OFF,
    Cast: { is_output_quantized: 'False' },
  },
  supergroup_pass_list: ['MatmulAdd'],
  supergroups: [
    { op_list: ['Conv', 'Relu'] },
    { op_list: ['ConvTranspose', 'Relu'] },
    { op_list: ['Conv', 'Clip'] },
    { op_list: ['Add', 'Relu'] },
    { op_list: ['Gemm', 'Relu'] },
  ],
  model_input: { is_input_quantized: 'True' },
  model_output: {},
}

export const PER_CHANNEL: QuantsimConfigJson = {
  ...PER_TENSOR,
  op_type: {
    // PRelu is marked as in AIMET's file; it has no params there, so the mark changes nothing.
    Conv: { per_channel_quantization: 'True' },
    ConvTranspose: { per_channel_quantization: 'True' },
    Gemm: { per_channel_quantization: 'True' },
    MatMul: { per_channel_quantization: 'True' },
    PRelu: { per_channel_quantization: 'True' },
    BatchNormalization: BN_RUNNING_STATS_OFF,
    Cast: { is_output_quantized: 'False' },
  },
  supergroups: [
    { op_list: ['Conv', 'Relu'] },
    { op_list: ['Conv', 'Clip'] },
    { op_list: ['ConvTranspose', 'Relu'] },
    { op_list: ['Add', 'Relu'] },
    { op_list: ['Gemm', 'Relu'] },
  ],
}
