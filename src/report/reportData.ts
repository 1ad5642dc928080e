// Everything the HTML report (report.ts) shows, as plain JSON: the analyzer and the quantize
// command fill it; `report.json` is this object too. Numbers only, no model objects.
import type { CompressionStats } from '../compression/compressModel.js'
import type { TechniquesReportData } from './techniquesData.js'

export interface ModelInfo {
  file: string
  /** Bytes of the float model and of the quantized (QDQ) model. */
  floatBytes: number
  quantizedBytes?: number
  parameters: number
  ops: Record<string, number>
}

/** One row of the accuracy/SQNR table: a configuration of the sim and how it did. */
export interface ResultRow {
  name: string
  /** e.g. { scheme: 'tf_enhanced', paramBitwidth: 8, activationBitwidth: 8, config: 'default' } */
  settings: Record<string, string | number | boolean>
  /** Top-1 accuracy in [0, 1] when labels were given. */
  accuracy?: number
  /** SQNR (dB) of each model output against FP32. */
  outputSqnrDb?: Record<string, number>
  /** Share of samples whose top-1 class agrees with FP32 (classifiers). */
  top1Agreement?: number
}

export interface LayerSensitivity {
  /** Node name (or fused group) whose quantizers were toggled. */
  layer: string
  opType: string
  /** Quality with only this layer's quantizers enabled (everything else float). */
  onlyThisQuantized: number
  /** Quality with every quantizer enabled except this layer's. */
  allButThis: number
}

export interface LayerSqnr {
  /** The activation tensor measured (a quantized op output). */
  tensor: string
  layer: string
  opType: string
  /** SQNR (dB) of the simulated activation against the FP32 one, over the evaluation data. */
  sqnrDb: number
}

export interface WeightRanges {
  /** The weight initializer. */
  tensor: string
  layer: string
  opType: string
  /** Per output channel. */
  min: number[]
  max: number[]
  /** max over channels of (max − min) divided by the median of the same: high values point at CLE. */
  spread: number
}

export interface ActivationHistogram {
  tensor: string
  layer: string
  /** Bin edges (bins + 1 values) and counts. */
  edges: number[]
  counts: number[]
  /** The chosen encoding's representable range. */
  encodingMin: number
  encodingMax: number
}

export interface ReportData {
  title: string
  createdAt: string
  quantkitVersion: string
  model: ModelInfo
  /** What the quality numbers are: 'accuracy' (labels given) or 'sqnr' (dB against FP32). */
  metric: 'accuracy' | 'sqnr'
  results: ResultRow[]
  sensitivity?: LayerSensitivity[]
  layerSqnr?: LayerSqnr[]
  weightRanges?: WeightRanges[]
  histograms?: ActivationHistogram[]
  /** Model compression (quantkit compress): per-layer score curves and the chosen ratios. */
  compression?: CompressionStats
  /** Post-training techniques (CLE, SeqMSE, AdaRound, bias correction): what each did per layer. */
  techniques?: TechniquesReportData
  notes: string[]
}
