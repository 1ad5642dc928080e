// quantkit's presets for ONNX Runtime's CPU execution provider (DECISIONS.md: `ort_x86`, `ort_arm`),
// written in AIMET's config format so that resolveConfig, `quantkit config show` and aimet-onnx
// all read them. Each setting and its source is in docs/ort-cpu.md; in short:
//
//  - activations asymmetric → uint8 in the QDQ export. ORT's QDQ transformer fuses int8
//    activations into integer kernels only on ARM (`QDQIsInt8Allowed()` is false unless
//    MLAS_TARGET_ARM_ANY, qdq_selector_action_transformer.h); uint8 is fused everywhere.
//  - weights symmetric int8 (zero point 0): QLinearConv takes MLAS's symmetric "ConvSym" path
//    only when every weight zero point is 0 (core/providers/cpu/nn/qlinearconv.cc).
//  - per-channel weights for Conv, ConvTranspose, Gemm and MatMul: QLinearConv takes a weight
//    zero point per output channel, QGemm/QLinearMatMul/MatMulIntegerToFloat per column.
//  - supergroups X+Relu and Conv+Clip: ORT's ReluQuantFusion/ClipQuantFusion drop a Relu/Clip
//    that feeds a QuantizeLinear whose range it cannot change, so DQ→Conv→Relu→Q becomes one
//    QLinearConv; a quantizer between Conv and Relu would leave a float DQ→Relu→Q behind.
//  - model inputs quantized (the first Conv needs a DQ on its input to become QLinearConv).
//  - `ort_x86` implies 7-bit weights (ORT's `reduce_range`, for AVX2/AVX-512 without VNNI, where
//    VPMADDUBSW saturates u8×s8 pair sums at int16): AIMET's format has no key for it and
//    quantkit's validator rejects unknown keys, so it is a QuantSim default the preset implies
//    (PRESET_QUANTIZER_DEFAULTS in ./index.ts), not part of this data.

import type { QuantsimConfigJson } from '../format.js'

const PER_CHANNEL = { per_channel_quantization: 'True' } as const

/** ONNX Runtime CPU (x86-64 and ARM64): uint8 asymmetric activations, int8 symmetric per-channel weights. */
export const ORT_CPU: QuantsimConfigJson = {
  defaults: {
    ops: { is_output_quantized: 'True', is_symmetric: 'False' },
    params: { is_quantized: 'True', is_symmetric: 'True' },
    strict_symmetric: 'False',
    unsigned_symmetric: 'False',
    per_channel_quantization: 'False',
  },
  // Float bias, as ORT's own QDQ quantizer may leave it: the CPU EP quantizes a float Conv/Gemm
  // bias to int32 (scale = input scale × weight scale) when it fuses the node.
  params: { bias: { is_quantized: 'False' } },
  op_type: {
    Conv: PER_CHANNEL,
    ConvTranspose: PER_CHANNEL,
    Gemm: PER_CHANNEL,
    MatMul: PER_CHANNEL,
    BatchNormalization: { params: { running_mean: { is_quantized: 'False' }, running_var: { is_quantized: 'False' } } },
    Cast: { is_output_quantized: 'False' },
  },
  supergroup_pass_list: ['MatmulAdd'],
  supergroups: [
    { op_list: ['Conv', 'Relu'] },
    { op_list: ['Conv', 'Clip'] },
    { op_list: ['ConvTranspose', 'Relu'] },
    { op_list: ['Gemm', 'Relu'] },
    { op_list: ['MatMul', 'Relu'] },
    { op_list: ['Add', 'Relu'] },
  ],
  model_input: { is_input_quantized: 'True' },
  model_output: {},
}

export const ORT_X86 = ORT_CPU
export const ORT_X86_VNNI = ORT_CPU
export const ORT_ARM = ORT_CPU
