// A quantization job: what `quantkit quantize` flags and `quantkit run job.json` both become.
import type { DataSourceSpec } from '../data/dataSource.js'
import type { CalibrationScheme } from '../observers.js'
import type { QuantSimOptions } from '../sim/quantSim.js'

/** A per-tensor change, matched by exact name or by regular expression. */
export interface TensorOverride {
  /** Exact tensor name, or `/regex/flags`. */
  match: string
  enabled?: boolean
  bitwidth?: number
  symmetric?: boolean
}

export interface QuantizeJob {
  model: string
  /** A precision mode other than static (QuantSim): see src/cli/modeJob.ts. */
  mode?: 'dynamic' | 'weight-only' | 'fp16'
  calibration: string | DataSourceSpec
  evaluation?: string | DataSourceSpec
  labels?: string
  sim: Pick<QuantSimOptions, 'config' | 'prepare' | 'quantScheme' | 'percentile' | 'paramBitwidth' | 'activationBitwidth' | 'paramType' | 'activationType'>
  overrides: TensorOverride[]
  analysis: { enabled: boolean; layers?: number }
  /** Post-training techniques, in AIMET's order: CLE before the sim, SeqMSE and AdaRound before calibration, bias correction after. */
  techniques?: { cle?: boolean; seqMse?: boolean; adaroundIterations?: number; biasCorrection?: boolean }
  output: { dir: string; prefix: string; formats: ('encodings' | 'qdq')[] }
  batchSize?: number
  calibrationCount?: number
}

export type { CalibrationScheme }
