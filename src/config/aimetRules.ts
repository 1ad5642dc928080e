// Rules aimet-onnx 2.42 applies in code to every config, whatever the file says. Each table cites
// the function it was read from (paths relative to site-packages/aimet_onnx). They are data so
// that QuantSim's placement can look an op type up instead of branching on it.

// ---------------------------------------------------------------------------------------------
// Outputs

/**
 * Grid-preserving ops (q(f(x)) == f(q(x))): their output quantizer is turned off unless the config
 * names the op type in `op_type` (then the config's own `is_output_quantized`, or the default,
 * applies). `common/onnx/_utils.py` `_is_grid_preserving_op`, applied in
 * `quantsim_config/quantsim_config.py` `QuantSimConfigurator._set_op_type_configs`.
 * BatchToSpace and SpaceToBatch are in the `qti_aisw` domain; the rest in ai.onnx.
 */
export const GRID_PRESERVING_OP_TYPES: ReadonlySet<string> = new Set([
  'Col2Im', 'Compress', 'DepthToSpace', 'Dropout', 'Expand', 'Flatten', 'Gather', 'GatherElements',
  'GatherND', 'Identity', 'MaxPool', 'MaxRoiPool', 'NonZero', 'Pad', 'ReduceMax', 'ReduceMin',
  'Reshape', 'Slice', 'SpaceToDepth', 'Split', 'SplitToSequence', 'Squeeze', 'Tile', 'TopK',
  'Transpose', 'Unsqueeze',
  'BatchToSpace', 'SpaceToBatch', // qti_aisw domain
])

/**
 * Op types whose outputs never get a quantizer at all, whatever the config says
 * (`quantsim.py` `op_outputs_to_ignore`, checked in `QuantizationSimModel._is_tensor_quantizable`).
 * AIMET's list also holds "branch", a ConnectedGraph pseudo-op with no ONNX counterpart.
 */
export const NO_OUTPUT_QUANTIZER_OP_TYPES: ReadonlySet<string> = new Set([
  'Flatten', 'Gather', 'Reshape', 'Shape', 'Unsqueeze', 'Squeeze', 'Split', 'Compress', 'Tile',
  'Transpose', 'Identity',
])

/**
 * Op types whose non-data inputs (every input but the first) are never quantized
 * (`quantsim.py` `op_params_to_ignore`: Resize's roi/scales/sizes).
 */
export const DATA_INPUT_ONLY_OP_TYPES: ReadonlySet<string> = new Set(['Resize'])

/**
 * Only tensors of these element types get quantizers (`quantsim.py` `data_types_to_quantize`:
 * float32, float16, bfloat16); integer and bool tensors (shapes, indices, masks) never do.
 */
export const QUANTIZABLE_ELEMENT_TYPES: ReadonlySet<string> = new Set(['float32', 'float16', 'bfloat16'])

// ---------------------------------------------------------------------------------------------
// Tied quantizers (`quantsim.py` `QuantizationSimModel.__init__` → `_tie_quantizers_for_op_types`)

/**
 * Multi-input grid-equivariant ops: their inputs take the output's encoding (one encoding for all),
 * `_propagate_output_encodings`. Concat is also in `op_types_to_tie_qtzrs`; the rest come from
 * `common/onnx/_utils.py` `_is_grid_equivariant_op(include_unary=False)`. An input that has other
 * consumers keeps its own quantizer.
 */
export const TIE_INPUTS_TO_OUTPUT_OP_TYPES: ReadonlySet<string> = new Set(['Concat', 'Scatter', 'ScatterElements', 'ScatterND'])

/**
 * Ops whose output takes the (first) input's encoding, `_propagate_input_encodings`:
 * `op_types_to_tie_qtzrs` (AveragePool, Relu) and `_is_htp_interpolation_op` (Resize, Upsample,
 * qti_aisw CropAndResize). Skipped when the output quantizer is off (inside a supergroup).
 */
export const TIE_OUTPUT_TO_INPUT_OP_TYPES: ReadonlySet<string> = new Set(['AveragePool', 'Relu', 'Resize', 'Upsample', 'CropAndResize'])

// ---------------------------------------------------------------------------------------------
// Params: which op inputs are parameters, and under which name the config addresses them

/**
 * Op input index → param name, per op type (`meta/connectedgraph.py` `find_all_node_info`, its
 * `switcher`; WEIGHT_INDEX 1, BIAS_INDEX 2, RUNNING_MEAN_INDEX 3, RUNNING_VAR_INDEX 4). An input
 * is a param only when it is static: an initializer or a Constant node's output, also through
 * Identity chains (`ir_utils.py` `get_constant_value`, `is_static`). A config addresses params by
 * these names (`params.bias`, `op_type.BatchNormalization.params.running_var`).
 *
 * Not params: PRelu's slope, constant operands of Add/Mul/Div…, and any other static input of an
 * op type missing here. aimet-onnx quantizes those as activations (activation bitwidth,
 * activation symmetry) when `model_input.is_input_quantized` is True (`_set_model_input_configs`,
 * `input_quantizers_name`); `per_channel_quantization` on PRelu therefore does nothing.
 */
export const PARAM_INPUTS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  Conv: { 1: 'weight', 2: 'bias' },
  ConvTranspose: { 1: 'weight', 2: 'bias' },
  Gemm: { 1: 'weight', 2: 'bias' }, // B and C
  MatMul: { 1: 'weight' }, // only when input 1 is static (see MATMUL_WEIGHT_THROUGH_TRANSPOSE)
  BatchNormalization: { 1: 'weight', 2: 'bias', 3: 'running_mean', 4: 'running_var' }, // scale, B, input_mean, input_var
  InstanceNormalization: { 1: 'weight', 2: 'bias' }, // scale, B
  LayerNormalization: { 1: 'weight', 2: 'bias' }, // Scale, B
  GroupNormalization: { 1: 'weight', 2: 'bias' }, // scale, bias
  RMSNormalization: { 1: 'weight' }, // scale
  RNN: { 1: 'weight', 2: 'weight_r', 3: 'bias' }, // W, R, B
  LSTM: { 1: 'weight', 2: 'weight_r', 3: 'bias' },
  GRU: { 1: 'weight', 2: 'weight_r', 3: 'bias' },
}

/** Every param name aimet-onnx gives (a config may name others; they never match). */
export const PARAM_NAMES: ReadonlySet<string> = new Set(['weight', 'bias', 'running_mean', 'running_var', 'weight_r'])

/**
 * A MatMul (or Gemm) whose input 1 is a Transpose of a static tensor has that tensor as its
 * weight, marked transposed ([out, in]); only input 1 is ever considered, so a constant left
 * operand is not a weight (`ir_utils.py` `get_weight_value`).
 */
export const MATMUL_WEIGHT_THROUGH_TRANSPOSE = true

// ---------------------------------------------------------------------------------------------
// Per-channel

/**
 * The only op types whose weights can be per-channel. aimet-onnx enables per-channel on every
 * param quantizer of an op whose type the config marks (`quantsim_config.py`
 * `_generate_and_apply_op_instance_specific_config`), but `quantsim.py` `_get_quantization_axes`
 * knows a channel axis only for these four (`allowed_op_type_for_per_channel` holds the same list),
 * and PRelu, which every per-channel file marks, has no params (see PARAM_INPUTS). quantkit applies
 * per-channel to these four only, whatever a file says (DECISIONS.md).
 */
export const PER_CHANNEL_OP_TYPES: ReadonlySet<string> = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])

/**
 * Channel axis of a per-channel weight (`quantsim.py` `_get_quantization_axes`; the second number
 * there is the block axis). 1-D params use axis 0 (`_create_tensor_quantizer_params`).
 */
export function perChannelAxis(opType: string, opts: { transB?: boolean; weightThroughTranspose?: boolean } = {}): number | undefined {
  switch (opType) {
    case 'Conv': return 0
    case 'ConvTranspose': return 1
    case 'Gemm': return opts.transB ? 0 : 1
    case 'MatMul': return opts.weightThroughTranspose ? -2 : -1
    default: return undefined
  }
}

/**
 * Grouped ConvTranspose (group ≠ 1) loses per-channel on its weight (`quantsim.py`
 * `_apply_exception_rules`, "TODO: Fix handling of PCQ for grouped ConvTranspose").
 */
export function perChannelAllowed(opType: string, opts: { group?: number } = {}): boolean {
  if (!PER_CHANNEL_OP_TYPES.has(opType)) return false
  if (opType === 'ConvTranspose' && opts.group !== undefined && opts.group !== 1) return false
  return true
}

// ---------------------------------------------------------------------------------------------
// Weights that are activations

/**
 * Conv, ConvTranspose, Gemm and MatMul whose input 1 is not static (a "dynamic weight", e.g.
 * attention's K·Qᵀ): the quantizer of that input takes the param symmetry of the config,
 * `op_type.<T>.params.weight.is_symmetric` else `defaults.params.is_symmetric` else False; the
 * global `params.weight` section is not consulted (`quantsim.py` `_apply_param_symmetry_to_inputs`).
 */
export const DYNAMIC_WEIGHT_SYMMETRY_OP_TYPES: ReadonlySet<string> = PER_CHANNEL_OP_TYPES

// ---------------------------------------------------------------------------------------------
// Supergroups

/**
 * Ops never taken into a `supergroups` pattern (`quantsim_config/quantsim_config.py`
 * `_set_supergroup_configs` → `common/graph_searcher.py` `_check_if_conv3d_or_depthwise_conv`):
 * 3-D convolutions (5-D input or weight) and depthwise ones (Conv: group > 1 and weight dim 1 == 1;
 * ConvTranspose: group > 1 and weight dim 0 == group). Ops matched by a `supergroup_pass_list`
 * pass are excluded too (the passes take priority). Patterns match disjointly.
 */
export function excludedFromSupergroups(op: { opType: string; group?: number; weightShape?: readonly number[]; inputRank?: number }): boolean {
  if (op.opType !== 'Conv' && op.opType !== 'ConvTranspose') return false
  if (op.inputRank === 5 || op.weightShape?.length === 5) return true
  const group = op.group ?? 1
  if (group === 1 || op.weightShape === undefined) return false
  return op.opType === 'Conv' ? op.weightShape[1] === 1 : op.weightShape[0] === group
}

/**
 * Names `supergroup_pass_list` may hold: the fusion passes aimet-onnx registers
 * (`graph_passes/passes/*.py` `@register_pass`, `graph_passes/fusions/*.py` `@register_fusion`).
 * Another name makes QuantizationSimModel raise "Graph pass requested but not found"
 * (`graph_passes/pass_registry.py` `apply_graph_passes`, `find_all_matches`).
 */
export const FUSION_PASSES: readonly string[] = ['LayerNormalization', 'RMSNormalization', 'MatmulAdd', 'MaskedSoftmax']

// ---------------------------------------------------------------------------------------------
// Hardware exception rules (`quantsim.py` `QuantizationSimModel._apply_exception_rules`, run after
// the config is applied and before quantizers are tied)

/** `_NORM_OP_TYPES`. */
export const NORM_OP_TYPES: ReadonlySet<string> = new Set(['BatchNormalization', 'LayerNormalization', 'GroupNormalization', 'RMSNormalization', 'InstanceNormalization'])
/** Norm ops whose params take their output quantizer's bitwidth and symmetry. */
export const NORM_PARAMS_FOLLOW_OUTPUT: ReadonlySet<string> = new Set(['GroupNormalization', 'InstanceNormalization', 'RMSNormalization'])
/** Norm ops whose params are symmetric exactly when 16 bit or wider, and 8 bit before V73. */
export const NORM_PARAMS_SYMMETRIC_FROM_16_BIT: ReadonlySet<string> = new Set(['LayerNormalization', 'BatchNormalization'])
/** hw_version values aimet-onnx treats as "before V73"; every other non-empty value is V73 and later. */
export const PRE_V73_HW_VERSIONS: ReadonlySet<string> = new Set(['V66', 'V68', 'V69'])
/** hw_version values AIMET's files use (any string is accepted). */
export const KNOWN_HW_VERSIONS: readonly string[] = ['V66', 'V68', 'V69', 'V73', 'V75', 'V79', 'V81', 'V85']

export interface QuantizerState { enabled: boolean; dtype: 'int' | 'float'; bitwidth: number; symmetric: boolean }

/**
 * A norm op's param quantizer after the exception rule, or undefined when the rule leaves it
 * alone (disabled or float). Every hw_version, including none:
 *  - bitwidth at least 8;
 *  - GroupNorm, InstanceNorm, RMSNorm: symmetry = the output quantizer's (False when the output is
 *    not quantized) and bitwidth = the output's when the output is quantized;
 *  - LayerNorm, BatchNorm: bitwidth forced to 8 on V66/V68/V69; symmetric iff bitwidth ≥ 16
 *    (this overrides the config's `is_symmetric`, so 8-bit LayerNorm weights are asymmetric even
 *    under `default`, whose params are symmetric).
 */
export function normParamRule(opType: string, hwVersion: string | undefined, param: QuantizerState, output?: QuantizerState): { bitwidth: number; symmetric: boolean } | undefined {
  if (!NORM_OP_TYPES.has(opType) || !param.enabled || param.dtype !== 'int') return undefined
  let bitwidth = Math.max(param.bitwidth, 8)
  let symmetric = param.symmetric
  const out = output?.enabled ? output : undefined
  if (NORM_PARAMS_FOLLOW_OUTPUT.has(opType)) {
    symmetric = out?.symmetric ?? false
    if (out) bitwidth = out.bitwidth
  } else {
    if (hwVersion !== undefined && PRE_V73_HW_VERSIONS.has(hwVersion)) bitwidth = 8
    symmetric = bitwidth >= 16
  }
  return { bitwidth, symmetric }
}

/**
 * A MatMul of two activations (input 1 not static) after the exception rule, or undefined when
 * it does not apply: no hw_version, either input without an enabled quantizer, or either float.
 * V66/V68/V69: input 1 becomes int8 symmetric. V73 and later: an int16 input 1 becomes symmetric
 * and input 0 becomes int16 ("16-bit weight needs 16-bit activation").
 */
export function dynamicMatMulRule(hwVersion: string | undefined, input0: QuantizerState | undefined, input1: QuantizerState | undefined): { input0: { bitwidth: number }; input1: { bitwidth: number; symmetric: boolean } } | undefined {
  if (hwVersion === undefined || !input0?.enabled || !input1?.enabled) return undefined
  if (input0.dtype === 'float' || input1.dtype === 'float') return undefined
  if (PRE_V73_HW_VERSIONS.has(hwVersion)) return { input0: { bitwidth: input0.bitwidth }, input1: { bitwidth: 8, symmetric: true } }
  if (input1.bitwidth === 16) return { input0: { bitwidth: 16 }, input1: { bitwidth: 16, symmetric: true } }
  return { input0: { bitwidth: input0.bitwidth }, input1: { bitwidth: input1.bitwidth, symmetric: input1.symmetric } }
}
