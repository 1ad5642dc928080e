// The float16 range check: the float32 model runs over the caller's data with every float tensor
// the float16 sim placed a quantizer on tapped (graph inputs and node outputs), and the tensors
// whose magnitude exceeds float16's largest finite value (65504) are named. The tap is the sim's
// (`QuantSim.observeRanges`, the shared activation tap of src/sim/calibrator.ts with min_max
// targets), which reduces each tensor inside the graph (ReduceMin/ReduceMax) so that only two
// scalars per tensor and batch leave ONNX Runtime, never the tensors themselves.
import type { ObservedRange } from '../sim/quantSim.js'

/** Largest finite float16. Values rounding above 65520 become ±inf. */
export const FLOAT16_MAX = 65504

export interface RangeFinding {
  tensor: string
  /** Largest |x| seen over all batches. */
  maxAbs: number
}

/** The observed tensors whose largest |x| exceeds FLOAT16_MAX, largest first. */
export function findFloat16Overflows(observed: readonly ObservedRange[]): RangeFinding[] {
  return observed
    .map((o) => ({ tensor: o.tensor, maxAbs: Math.max(Math.abs(o.min), Math.abs(o.max)) }))
    .filter((f) => f.maxAbs > FLOAT16_MAX)
    .sort((a, b) => b.maxAbs - a.maxAbs)
}
