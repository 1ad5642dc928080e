// How much each layer's weights lose under a few weight quantizers (int8 per-tensor, int8
// per-channel, int4 per-channel; symmetric min-max encodings as AIMET computes them). Used by
// `quantkit demo`; the numbers all come from the Rust kernels.
import { affine } from '../affine.js'
import { compareTensors } from '../metrics.js'
import { MinMaxObserver } from '../observers.js'

export interface LayerWeight {
  /** Node name, or the weight's name when the node has none. */
  layer: string
  opType: string
  weightName: string
  dims: number[]
  data: Float32Array
  /** The output-channel axis of this weight (Conv 0, ConvTranspose 1, MatMul 1, Gemm 0 or 1). */
  channelAxis: number
}

export interface WeightQuantizer {
  name: string
  bitwidth: number
  perChannel: boolean
}

export const DEMO_QUANTIZERS: readonly WeightQuantizer[] = [
  { name: 'int8 per-tensor', bitwidth: 8, perChannel: false },
  { name: 'int8 per-channel', bitwidth: 8, perChannel: true },
  { name: 'int4 per-channel', bitwidth: 4, perChannel: true },
]

export interface LayerWeightStats {
  layer: string
  opType: string
  weightName: string
  dims: number[]
  /** SQNR in dB per quantizer name. */
  sqnrDb: Record<string, number>
}

export function weightQuantStats(weight: LayerWeight, quantizers: readonly WeightQuantizer[] = DEMO_QUANTIZERS): LayerWeightStats {
  const sqnrDb: Record<string, number> = {}
  for (const q of quantizers) {
    const observer = new MinMaxObserver(q.perChannel ? { axis: weight.channelAxis } : {})
    observer.update(weight.data, weight.dims)
    const encodings = observer.encodings({ bitwidth: q.bitwidth, symmetric: true })
    const { qmin, qmax } = encodings[0]!
    const opts = q.perChannel ? { shape: weight.dims, axis: weight.channelAxis } : { shape: weight.dims }
    const scale = Float32Array.from(encodings, (e) => e.scale)
    const offset = Int32Array.from(encodings, (e) => e.offset)
    const approx = affine.quantizeDequantize(weight.data, q.perChannel ? scale : scale[0]!, q.perChannel ? offset : offset[0]!, qmin, qmax, opts)
    sqnrDb[q.name] = compareTensors(weight.data, approx).sqnrDb
  }
  return { layer: weight.layer, opType: weight.opType, weightName: weight.weightName, dims: weight.dims, sqnrDb }
}
