// Per-op upgrade rules, as data: op type → the op's version history from the oldest version the
// pass understands up to opset 21, one step per since_version, each saying what ONNX changed and,
// where that changes the meaning of an existing node, how to convert it (conversions.ts). A step
// without `convert` changed nothing an existing node relies on (new types, new attributes whose
// defaults keep the old behaviour). Adding an op is adding a row; an op with no row blocks the
// upgrade. Versions: the onnx 1.19 operator changelog (docs/Changelog.md), default domain only.
import {
  attributeToInput,
  batchNormOutputs,
  batchNormSpatial,
  clipInputs,
  dropoutMask,
  dropoutRatio,
  padInputs,
  resizeNoTfHalfPixel,
  resizeRoi,
  sliceInputs,
  softmaxAxis,
  splitNumOutputs,
  upsampleScalesInput,
  upsampleToResize,
  type Convert,
} from './conversions.js'

export interface OpsetStep {
  /** The since_version a node is at before the step. */
  from: number
  /** The op's next since_version. */
  to: number
  /** What ONNX changed at `to`. */
  change: string
  /** Rewrites a node for `to`; absent when existing nodes keep their meaning. */
  convert?: Convert
}

/** The highest opset the table covers. */
export const MAX_TABLE_OPSET = 21

type Later = readonly [to: number, change: string, convert?: Convert]

/** The steps of an op understood from version `base` on. */
function history(base: number, ...later: Later[]): OpsetStep[] {
  let from = base
  return later.map(([to, change, convert]) => {
    const step: OpsetStep = { from, to, change, ...(convert ? { convert } : {}) }
    from = to
    return step
  })
}

/** Several ops sharing one history. */
function rows(ops: readonly string[], steps: OpsetStep[]): Record<string, OpsetStep[]> {
  return Object.fromEntries(ops.map((op) => [op, steps]))
}

const BF16 = 'bfloat16 added'
const TYPES = 'more element types'

const REDUCE_TO_18 = ['ReduceMean', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']
const AXES_18 = 'axes attribute → optional int64 input; noop_with_empty_axes (default 0) added'

export const OPSET_TABLE: Readonly<Record<string, readonly OpsetStep[]>> = {
  // Elementwise arithmetic: numpy broadcasting since 7 (the base), types only after.
  ...rows(['Add', 'Sub', 'Mul', 'Div'], history(7, [13, BF16], [14, 'int8/int16/uint8/uint16 added'])),
  Pow: history(7, [12, 'exponent may have its own type'], [13, BF16], [15, 'bfloat16 exponent']),
  ...rows(['Max', 'Min'], history(6, [8, 'multidirectional broadcasting'], [12, 'integer types'], [13, BF16])),
  ...rows(['Sum', 'Mean'], history(6, [8, 'multidirectional broadcasting'], [13, BF16])),
  ...rows(['Sqrt', 'Sigmoid', 'Tanh', 'Exp', 'Log', 'Neg', 'Abs', 'Floor', 'Ceil', 'Reciprocal'], history(6, [13, BF16])),
  Relu: history(6, [13, BF16], [14, 'signed integer types']),
  ...rows(['HardSigmoid', 'Elu', 'Selu', 'InstanceNormalization'], history(6)),
  LeakyRelu: history(6, [16, BF16]),
  PRelu: history(7, [9, 'integer types'], [16, BF16]),
  ...rows(['Softplus', 'Softsign', 'GlobalAveragePool', 'GlobalMaxPool', 'Not'], history(1)),
  ...rows(['And', 'Or', 'Xor'], history(7)),
  ...rows(['Sin', 'Cos'], history(7)),
  ...rows(['Erf', 'Sign'], history(9, [13, BF16])),
  ...rows(['Where'], history(9, [16, BF16])),
  ...rows(['NonZero'], history(9, [13, BF16])),
  Mod: history(10, [13, BF16]),
  Round: history(11),
  HardSwish: history(14),
  Gelu: history(20),
  LayerNormalization: history(17),
  Equal: history(7, [11, 'float types'], [13, BF16], [19, 'string type']),
  ...rows(['Greater', 'Less'], history(7, [9, 'integer types'], [13, BF16])),
  ...rows(['GreaterOrEqual', 'LessOrEqual'], history(12, [16, BF16])),

  // Convolution, pooling, normalization.
  Conv: history(1, [11, 'auto_pad/pads wording clarified; kernel unchanged']),
  ConvTranspose: history(1, [11, 'auto_pad/output_shape wording clarified; kernel unchanged']),
  AveragePool: history(1, [7, 'count_include_pad (default 0) added'], [10, 'ceil_mode (default 0) added'], [11, 'pads wording clarified'], [19, 'dilations (default 1) added']),
  MaxPool: history(1, [8, 'storage_order and Indices output added'], [10, 'ceil_mode, dilations added'], [11, 'pads wording clarified'], [12, 'int8/uint8 added']),
  BatchNormalization: history(
    7,
    [9, 'spatial attribute removed (spatial = 1 behaviour kept)', batchNormSpatial],
    [14, 'training_mode added; optional outputs are now running mean/var of training mode', batchNormOutputs],
    [15, 'scale/bias and mean/var may have their own types'],
  ),
  LRN: history(1, [13, BF16]),
  Gemm: history(7, [9, 'integer types'], [11, 'C optional'], [13, BF16]),
  MatMul: history(1, [9, 'integer types'], [13, BF16]),

  // Softmax family: coerced-to-2D semantics until 12, one axis (default −1) from 13.
  ...rows(['Softmax', 'LogSoftmax', 'Hardmax'], history(1, [11, 'negative axis allowed'], [13, 'operates on one axis, default −1 (was: input coerced to 2-D at axis, default 1)', softmaxAxis])),

  // Shape and layout ops.
  Reshape: history(5, [13, BF16], [14, 'allowzero (default 0) added'], [19, TYPES], [21, TYPES]),
  Shape: history(1, [13, BF16], [15, 'start/end attributes (default whole shape) added'], [19, TYPES], [21, TYPES]),
  Size: history(1, [13, BF16], [19, TYPES], [21, TYPES]),
  Transpose: history(1, [13, BF16], [21, TYPES]),
  Flatten: history(1, [9, TYPES], [11, 'negative axis allowed'], [13, BF16], [21, TYPES]),
  Concat: history(4, [11, 'negative axis allowed'], [13, BF16]),
  ...rows(['Squeeze', 'Unsqueeze'], history(1, [11, 'negative axes allowed'], [13, 'axes attribute → int64 input', attributeToInput('axes', 1)], [21, TYPES])),
  Split: history(
    2,
    [11, 'negative axis allowed'],
    [13, 'split attribute → int64 input', attributeToInput('split', 1)],
    [18, 'num_outputs attribute (required when split is omitted)', splitNumOutputs],
  ),
  Slice: history(1, [10, 'starts/ends/axes attributes → int64 inputs; steps input added', sliceInputs], [11, 'negative axes allowed'], [13, BF16]),
  Pad: history(2, [11, 'pads and value attributes → pads and constant_value inputs; edge mode wording', padInputs], [13, BF16], [18, 'axes input added'], [19, 'wrap mode added'], [21, TYPES]),
  Gather: history(1, [11, 'negative indices allowed'], [13, BF16]),
  GatherElements: history(11, [13, BF16]),
  Tile: history(6, [13, BF16]),
  Expand: history(8, [13, BF16]),
  DepthToSpace: history(1, [11, 'mode (default DCR) added'], [13, BF16]),
  SpaceToDepth: history(1, [13, BF16]),
  Range: history(11),
  CumSum: history(11, [14, BF16]),
  ...rows(['ScatterND', 'ScatterElements'], history(11, [13, BF16], [16, 'reduction (default none) added'], [18, 'max/min reductions added'])),
  TopK: history(1, [10, 'k attribute → int64 input', attributeToInput('k', 1, { scalarAsList: true })], [11, 'largest/sorted (default 1) added; negative axis']),
  ...rows(['ArgMax', 'ArgMin'], history(1, [11, 'negative axis allowed'], [12, 'select_last_index (default 0) added'], [13, BF16])),

  // Reductions.
  ReduceSum: history(1, [11, 'negative axes allowed'], [13, 'axes attribute → optional int64 input; noop_with_empty_axes (default 0) added', attributeToInput('axes', 1)]),
  ...rows(REDUCE_TO_18, history(1, [11, 'negative axes allowed'], [13, BF16], [18, AXES_18, attributeToInput('axes', 1)])),
  ...rows(['ReduceMax', 'ReduceMin'], history(1, [11, 'negative axes allowed'], [12, 'int8/uint8 added'], [13, BF16], [18, AXES_18, attributeToInput('axes', 1)], [20, 'bool added'])),

  // Element-type ops and constants.
  Cast: history(6, [9, 'string casts'], [13, BF16], [19, 'saturate (float8 only) added'], [21, '4-bit types']),
  CastLike: history(15, [19, 'saturate (float8 only) added'], [21, '4-bit types']),
  Clip: history(6, [11, 'min/max attributes → optional inputs', clipInputs], [12, 'integer types'], [13, BF16]),
  Constant: history(1, [9, TYPES], [11, 'sparse_value added'], [12, 'value_* attributes added'], [13, BF16], [19, TYPES], [21, TYPES]),
  ConstantOfShape: history(9, [20, TYPES], [21, TYPES]),
  Identity: history(1, [13, BF16], [14, 'sequence types'], [16, 'optional types'], [19, TYPES], [21, TYPES]),
  Dropout: history(
    7,
    [10, 'mask output becomes bool', dropoutMask],
    [12, 'ratio attribute → optional input; training_mode input added', dropoutRatio],
    [13, BF16],
  ),
  ...rows(['QuantizeLinear', 'DequantizeLinear'], history(10, [13, 'axis (per-axis scales) added'], [19, 'float8 types; saturate'], [21, 'int4/int16, block_size added'])),

  // Resizing.
  Upsample: history(7, [9, 'scales attribute → input', upsampleScalesInput], [10, 'deprecated: becomes Resize-10 (same inputs, same kernel)', upsampleToResize]),
  Resize: history(
    10,
    [11, 'roi input; coordinate_transformation_mode (default half_pixel) and nearest_mode (default round_prefer_floor) added; Resize-10 is asymmetric with its own rounding', resizeRoi],
    [13, 'roi/scales optional; tf_half_pixel_for_nn removed', resizeNoTfHalfPixel],
    [18, 'antialias, axes, keep_aspect_ratio_policy (defaults keep behaviour) added'],
    [19, 'half_pixel_symmetric mode added'],
  ),

  // Recurrent and control flow (subgraphs are upgraded with the model).
  ...rows(['LSTM', 'GRU', 'RNN'], history(7, [14, 'layout (default 0) added'])),
  If: history(1, [11, 'branches may output different shapes'], [13, TYPES], [16, 'optional types'], [19, TYPES], [21, TYPES]),
}
