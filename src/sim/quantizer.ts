// A quantizer: one tensor of the model quantized with one spec (AIMET's QcQuantizeOp in spirit).
// Placement (placement.ts) decides which quantizers exist; calibration fills their encodings;
// the QDQ builder (src/export/qdqModel.ts) turns them into QuantizeLinear/DequantizeLinear pairs.
import type { Encoding } from '../encoding.js'
import type { LpbqScales } from './blockwise.js'

/** Where the quantizer sits: a model/op input, an op output (activation), or a parameter. */
export type QuantizerKind = 'input' | 'output' | 'param'

/** How a tensor is quantized (DECISIONS: `{ dtype, bitwidth, symmetric, strictSymmetric, unsignedSymmetric, axis, blockSize, lpbq }`). */
export interface QuantizerSpec {
  dtype: 'int' | 'float'
  /** 2–16 for activations and weights, 32 for biases; 16 for float16. */
  bitwidth: number
  symmetric: boolean
  strictSymmetric: boolean
  unsignedSymmetric: boolean
  /** Per-channel axis of a parameter (undefined: per-tensor). */
  axis?: number
  /**
   * Per-block along `axis` (blocked quantization): `axis` is then the block (reduction) axis, as
   * in ONNX's blocked DequantizeLinear, and the channel axis is the other of axes 0 and 1
   * (src/sim/blockwise.ts).
   */
  blockSize?: number
  /**
   * Low-power blockwise quantization (needs `blockSize`): per-block integer scales under a
   * per-channel float scale; `bitwidth` is the compressed bitwidth, the integer scales have
   * decompressedBitwidth − bitwidth bits.
   */
  lpbq?: { decompressedBitwidth: number }
  /**
   * How a blocked parameter's encodings are computed from its values: AIMET's min-max encoding per
   * block (undefined, the default), or 'onnxruntime': the block grids of ONNX Runtime's
   * MatMulNBitsQuantizer (crates/quantkit-core/src/nbits.rs `block_grids`; symmetric scale
   * max(−min/2^(b−1), max/(2^(b−1)−1)), a zero block gets scale 1), which also allows a partial
   * last block. Set by `sim.setBlockwise({ rule: 'onnxruntime' })`; the precision modes use it.
   */
  blockRule?: 'onnxruntime'
  /**
   * Activations only: quantized at run time from each tensor's own range, as ONNX's
   * DynamicQuantizeLinear does (uint8, asymmetric, range widened to include 0); no encodings. The
   * QDQ model writes DynamicQuantizeLinear → DequantizeLinear. Set by `sim.setQuantizer(t, {
   * dynamic: true })`; the dynamic precision mode's sim marks its layers' inputs so.
   */
  dynamic?: boolean
}

export interface Quantizer {
  /** The tensor quantized: an initializer (param), a graph input, or a node output. */
  tensor: string
  kind: QuantizerKind
  /** The node the tensor belongs to: its producer (outputs), its reader (params, inputs). */
  node: string
  opType: string
  /** For params: AIMET's name for the input ('weight', 'bias', 'running_mean', …). */
  paramName?: string
  enabled: boolean
  spec: QuantizerSpec
  /** Calibrated (or fixed) encodings: one for per-tensor, one per channel or block otherwise. */
  encodings?: Encoding[]
  /** LPBQ quantizers: the per-channel and integer per-block scales whose products are `encodings`' scales. */
  lpbqScales?: LpbqScales
  /** Encodings set from outside (sim.loadEncodings with `freeze`): computeEncodings leaves them as they are. */
  frozen?: boolean
  /** A fixed range from the config's encoding_constraints (Relu min 0, Sigmoid [0, 1], …). */
  fixedRange?: { min: number; max: number }
  /** Shares the encoding of another quantizer (AIMET ties Concat, pools, Relu, Resize, … in and out). */
  tiedTo?: string
  /** Why a quantizer is disabled or absent, for the placement report. */
  note?: string
}
