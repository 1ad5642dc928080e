// Messages between the Calibrator (main thread) and its worker.
import type { Encoding, EncodingOptions } from '../encoding.js'
import type { CalibrationScheme } from '../observers.js'
import type { PlainTensor } from './feeds.js'

/** One tensor to observe during calibration. */
export interface ObserveTarget {
  tensor: string
  /** min_max needs only running extremes; the other schemes a histogram. */
  scheme: CalibrationScheme
  percentile?: number
  encoding: EncodingOptions
  /**
   * min_max targets are reduced inside the graph (ReduceMin/ReduceMax to scalars, set by the
   * calibrator): only two numbers per batch leave ONNX Runtime instead of the whole tensor.
   */
  reduce?: { min: string; max: string }
}

export type CalibrationRequest =
  | { id: number; kind: 'init'; model: Uint8Array; targets: ObserveTarget[]; options: Record<string, unknown>; maxBytesPerRun: number }
  | { id: number; kind: 'batch'; feeds: Record<string, PlainTensor>; batchIndex: number }
  | { id: number; kind: 'finish' }
  | { id: number; kind: 'close' }

export type CalibrationResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string; tensor?: string } }

/** What `finish` returns per observed tensor. */
export interface ObservedEncoding {
  tensor: string
  encoding: Encoding
  /** The exact extremes seen, for reports. */
  min: number
  max: number
}
