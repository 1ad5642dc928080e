// eNPU configs of aimet-onnx 2.42 (common/quantsim_config/enpu_quantsim_config_v6.json and
// enpu_quantsim_config_v7.json; the `enpu_v7` alias names the per-tensor v7 file), written out
// from what the files say. Unlike HTP: activations symmetric too (`defaults.ops.is_symmetric`),
// per-tensor everywhere, BatchNorm params all unquantized, model outputs forced quantized, no
// hw_version, Sigmoid/Softmax in [0, 1] and Sin/Cos/Tanh in [−1, 1], and long supergroup lists
// that are products of a head op and a trailing activation, generated below in AIMET's order.

import type { QuantsimConfigJson } from '../format.js'

const NO_PER_CHANNEL = { per_channel_quantization: 'False' } as const
const UNIT_RANGE = { encoding_constraints: { min: -1.0, max: 1.0 } }
const PROBABILITY = { encoding_constraints: { min: 0.0, max: 1.0 } }
const ASYMMETRIC_WEIGHT = { params: { weight: { is_symmetric: 'False' } } } as const

const ACTS_WITH_PRELU = ['Relu', 'Clip', 'Sigmoid', 'Tanh', 'PRelu', 'LeakyRelu', 'HardSwish', 'Gelu']
const ACTS = ['Relu', 'Clip', 'Sigmoid', 'Tanh', 'LeakyRelu', 'HardSwish', 'Gelu']
const ACTS_AFTER_BN = ['Relu', 'Clip', 'Sigmoid', 'Tanh', 'HardSwish', 'Gelu']

/** head+act for each act, head+BN, head+BN+act for each act after BN (Conv, ConvTranspose, pools). */
function withBatchNorm(head: string): string[][] {
  return [
    ...ACTS_WITH_PRELU.map((a) => [head, a]),
    [head, 'BatchNormalization'],
    ...ACTS_AFTER_BN.map((a) => [head, 'BatchNormalization', a]),
  ]
}

function plain(head: string): string[][] {
  return ACTS.map((a) => [head, a])
}

const V6_SUPERGROUPS: string[][] = [
  ...withBatchNorm('Conv'),
  ...withBatchNorm('ConvTranspose'),
  ...plain('Gemm'),
  ...plain('MatMul'),
  ...withBatchNorm('AveragePool'),
  ...withBatchNorm('MaxPool'),
  ...plain('Add'),
  ...plain('Sub'),
  ...plain('Mul'),
]

export const ENPU_V6: QuantsimConfigJson = {
  defaults: {
    ops: { is_output_quantized: 'True', is_symmetric: 'True' },
    params: { is_quantized: 'True', is_symmetric: 'True' },
    per_channel_quantization: 'False',
    strict_symmetric: 'False',
    unsigned_symmetric: 'False',
  },
  params: { bias: { is_quantized: 'False' } },
  op_type: {
    BatchNormalization: {
      params: {
        weight: { is_quantized: 'False' },
        bias: { is_quantized: 'False' },
        running_mean: { is_quantized: 'False' },
        running_var: { is_quantized: 'False' },
      },
    },
    Conv: NO_PER_CHANNEL,
    ConvTranspose: NO_PER_CHANNEL,
    Gemm: NO_PER_CHANNEL,
    MatMul: NO_PER_CHANNEL,
    Sigmoid: PROBABILITY,
    Softmax: PROBABILITY,
    Sin: UNIT_RANGE,
    Cos: UNIT_RANGE,
    Tanh: UNIT_RANGE,
  },
  supergroup_pass_list: ['LayerNormalization', 'RMSNormalization', 'MatmulAdd'],
  supergroups: V6_SUPERGROUPS.map((op_list) => ({ op_list })),
  model_input: { is_input_quantized: 'True' },
  model_output: { is_output_quantized: 'True' },
}

export const ENPU_V7: QuantsimConfigJson = {
  ...ENPU_V6,
  op_type: {
    ...ENPU_V6.op_type,
    LayerNormalization: ASYMMETRIC_WEIGHT,
    RMSNormalization: ASYMMETRIC_WEIGHT,
  },
  supergroups: [...V6_SUPERGROUPS, ...ACTS_AFTER_BN.map((a) => ['BatchNormalization', a])].map((op_list) => ({ op_list })),
}
