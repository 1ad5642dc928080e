// Per-op facts the float16 conversion needs, as tables keyed by op type (adding an op = adding a
// row). Sources: the ONNX operator type constraints (onnx/defs, ONNX 1.19), and ONNX Runtime 1.23's
// CPU execution provider as probed by bench/float16Kernels.mjs (one-node float16 models, session
// created, optimized graph read back): see docs/float16.md for the table of results.
//
// What the probe showed: ORT's CPU provider on x86-64 has native float16 kernels only for data
// movement (Reshape, Transpose, Concat, Flatten, …) and a handful of ops (Clip, LayerNormalization,
// Min, Max, Round, Cast). For every other op its InsertCastTransformer wraps the node in
// Cast(float16→float) … Cast(float→float16) and runs the float kernel, so a float16 model runs but
// computes in float32 with float16 rounding between ops. Ops that fail outright are those whose
// ONNX type constraints exclude float16 (Range, NonMaxSuppression, Resize's `scales`).

/** Why an op type is kept in float32 by default. */
export type DefaultBlockReason = 'type-constraint' | 'precision' | 'accumulation' | 'dtype-attribute' | 'quantized' | 'runtime-bug'

export interface DefaultBlockEntry {
  reason: DefaultBlockReason
  detail: string
}

const typeConstraint = (detail: string): DefaultBlockEntry => ({ reason: 'type-constraint', detail })
const accumulation: DefaultBlockEntry = {
  reason: 'accumulation',
  detail: 'accumulates squares, products or exponentials: intermediate sums overflow float16 (65504) in kernels that accumulate in float16 (ARM, GPU) even when the result fits',
}
const dtypeAttribute: DefaultBlockEntry = {
  reason: 'dtype-attribute',
  detail: 'output type is set by a dtype attribute, not by its inputs',
}
const quantized: DefaultBlockEntry = {
  reason: 'quantized',
  detail: 'quantized graph: scales stay float32 (float16 scales need opset 19); quantized parts are left as they are',
}

/** Op types kept in float32 unless the caller passes its own `blockList`. */
export const DEFAULT_FLOAT16_BLOCK_LIST: Readonly<Record<string, DefaultBlockEntry>> = Object.freeze({
  Range: typeConstraint('ONNX Range-11: T is float, double, int16, int32, int64 (no float16); ORT rejects the model'),
  NonMaxSuppression: typeConstraint('ONNX NonMaxSuppression: boxes and scores are tensor(float) only; ORT rejects the model'),
  RoiAlign: { reason: 'precision', detail: 'box coordinates in float16 move sampling points by up to 1/2048 of the coordinate (the float16 step above 1024 is 1 pixel)' },
  TopK: { reason: 'precision', detail: 'values that differ in float32 can round to the same float16 and change which indices are returned' },
  CumSum: accumulation,
  ReduceSumSquare: accumulation,
  ReduceL2: accumulation,
  ReduceLogSumExp: accumulation,
  ReduceProd: accumulation,
  RandomNormal: dtypeAttribute,
  RandomUniform: dtypeAttribute,
  RandomNormalLike: dtypeAttribute,
  RandomUniformLike: dtypeAttribute,
  EyeLike: dtypeAttribute,
  Multinomial: dtypeAttribute,
  Bernoulli: dtypeAttribute,
  // onnxruntime 1.23: a float16 Pow makes session creation fail at optimisation level 'all'
  // (microsoft/onnxruntime#26717; seen on PP-OCRv4 rec's decomposed LayerNorms).
  Pow: { reason: 'runtime-bug', detail: "ONNX Runtime 1.23 fails to create a session with a float16 Pow at optimisation level 'all' (microsoft/onnxruntime#26717)" },
  QuantizeLinear: quantized,
  DequantizeLinear: quantized,
  DynamicQuantizeLinear: quantized,
  QLinearConv: quantized,
  QLinearMatMul: quantized,
  MatMulInteger: quantized,
  ConvInteger: quantized,
})

/**
 * Float inputs that must stay float32 when their node runs in float16, by op type and opset:
 * ONNX gives them their own type variable limited to float (Resize's `scales`, Upsample's
 * `scales`) or lets them differ from the data (Resize's `roi`). Input positions.
 */
export const FLOAT32_INPUTS: Readonly<Record<string, (opset: number) => readonly number[]>> = Object.freeze({
  Resize: (opset: number) => (opset >= 11 ? [1, 2] : [1]),
  Upsample: () => [1],
})

/**
 * Float outputs that stay float32 when their node runs in float16: LayerNormalization's Mean and
 * InvStdDev have type U ∈ {float, bfloat16} (ONNX LayerNormalization-17).
 */
export const FLOAT32_OUTPUTS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  LayerNormalization: [1, 2],
})

/** Inputs that accept any element type: the node reads whichever precision exists, no Cast. */
export const ANY_TYPE_INPUTS: Readonly<Record<string, readonly number[]>> = Object.freeze({
  Shape: [0],
  Size: [0],
  Cast: [0],
  CastLike: [0],
})

/** Ops whose float output type comes from an attribute the conversion rewrites. */
export const TYPE_ATTRIBUTE_OPS = new Set(['Cast', 'Constant', 'ConstantOfShape'])

/** Ops whose bodies (subgraphs) stay float32; the node keeps float32 inputs and outputs. */
export const SUBGRAPH_OPS = new Set(['If', 'Loop', 'Scan', 'SequenceMap'])
