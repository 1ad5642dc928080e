// Per-output-channel weight ranges of every Conv, ConvTranspose, Gemm and MatMul with a constant
// weight (what AIMET's weight-range visualisation plots). One channel far wider than the others is what per-tensor quantization suffers
// from and what cross-layer equalization evens out; `spread` puts a number on it.
import { perChannelAxis } from '../config/aimetRules.js'
import { attrInt } from '../graph/attributes.js'
import type { Model } from '../graph/model.js'
import { topologicalOrder } from '../graph/topologicalOrder.js'
import { DataType } from '../onnx/elementType.js'
import { MinMaxObserver } from '../observers.js'
import type { WeightRanges } from '../report/reportData.js'
import type { LayerMap } from './layers.js'

const WEIGHT_OP_TYPES = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul'])

/** max over channels of (max − min) over their median; 1 when every channel is empty-ranged. */
export function rangeSpread(min: readonly number[], max: readonly number[]): number {
  const ranges = min.map((lo, i) => max[i]! - lo).sort((a, b) => a - b)
  if (ranges.length === 0) return 1
  const mid = ranges.length >> 1
  const median = ranges.length % 2 === 1 ? ranges[mid]! : (ranges[mid - 1]! + ranges[mid]!) / 2
  const widest = ranges[ranges.length - 1]!
  if (median === 0) return widest === 0 ? 1 : Infinity
  return widest / median
}

/**
 * The output-channel axis follows the per-channel axis of quantization (Conv 0, ConvTranspose 1,
 * Gemm 0 with transB else 1, MatMul the last); a grouped ConvTranspose's axis 1 holds
 * C_out / group channels, so its "channels" are per group.
 */
export function weightRanges(model: Model, layers: LayerMap): WeightRanges[] {
  const graph = model.graph
  const out: WeightRanges[] = []
  const seen = new Set<string>()
  for (const node of topologicalOrder(graph)) {
    if (!WEIGHT_OP_TYPES.has(node.opType) || node.domain !== '') continue
    const name = node.inputs[1]
    const w = name ? graph.initializers.get(name) : undefined
    if (!w || w.dataType !== DataType.FLOAT || w.dims.length === 0 || seen.has(name!)) continue
    seen.add(name!)
    let axis = perChannelAxis(node.opType, { transB: attrInt(node, 'transB', 0) === 1 })!
    if (axis < 0) axis += w.dims.length
    if (axis < 0 || axis >= w.dims.length) axis = w.dims.length - 1
    const o = new MinMaxObserver({ axis })
    o.update(w.data as Float32Array, w.dims)
    const min = o.min
    const max = o.max
    out.push({ tensor: name!, layer: layers.layerOf(node).name, opType: node.opType, min, max, spread: rangeSpread(min, max) })
  }
  return out
}
