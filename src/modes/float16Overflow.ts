// The float16 range check: runs the float32 model over the caller's data with every float tensor
// of the main graph tapped, and names the tensors whose magnitude exceeds float16's largest finite
// value (65504). It uses the shared activation tap (src/sim/calibrator.ts) with min_max targets,
// which reduces each tensor inside the graph (ReduceMin/ReduceMax) so that only two scalars per
// tensor and batch leave ONNX Runtime, never the tensors themselves.
import type { Model } from '../graph/model.js'
import { calibrate, type CalibrateOptions } from '../sim/calibrator.js'
import type { CalibrationData } from '../sim/calibrationData.js'

/** Largest finite float16. Values rounding above 65520 become ±inf. */
export const FLOAT16_MAX = 65504

export interface RangeFinding {
  tensor: string
  /** Largest |x| seen over all batches. */
  maxAbs: number
}

/**
 * Largest |x| of each tensor in `tensors` (float32 values of `model`'s main graph, graph inputs
 * allowed) over `data`; returns those above FLOAT16_MAX, largest first.
 */
export async function findFloat16Overflows(model: Model, tensors: readonly string[], data: CalibrationData, opts: CalibrateOptions = {}): Promise<RangeFinding[]> {
  const observed = await calibrate(model, tensors.map((tensor) => ({ tensor, scheme: 'min_max', encoding: { bitwidth: 8 } })), data, opts)
  return observed
    .map((o) => ({ tensor: o.tensor, maxAbs: Math.max(Math.abs(o.min), Math.abs(o.max)) }))
    .filter((f) => f.maxAbs > FLOAT16_MAX)
    .sort((a, b) => b.maxAbs - a.maxAbs)
}
