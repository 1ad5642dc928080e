// The contract between compressModel (greedy ratio selection, src/compression/compressModel.ts)
// and the schemes (weight SVD, spatial SVD, channel pruning): each scheme builds a LayerCompressor
// for one model, which knows its compressible layers, prices any choice of per-layer ratios
// analytically, and produces compressed models. The greedy search only ever talks to this.
import type { Model } from '../graph/model.js'

export type CompressionSchemeName = 'weight_svd' | 'spatial_svd' | 'channel_pruning'
export type CostMetric = 'mac' | 'memory'

/** Multiply-accumulates per sample and parameter count (elements, not bytes). */
export interface Cost {
  mac: number
  memory: number
}

export interface CompressibleLayer {
  /** Node name (the Conv/Gemm/MatMul being compressed). */
  node: string
  opType: string
  /** This layer's own cost, uncompressed. */
  cost: Cost
  /** What a ratio keeps: SVD rank or kept input channels, out of `full`. */
  full: number
}

export interface LayerCompressionDetail {
  node: string
  /** The ratio asked for and what it became after rounding (rank multiple, at least 1). */
  requestedRatio: number
  /** Kept rank (SVD) or kept input channels (pruning), out of `full`. */
  kept: number
  full: number
  /** Cost of the whole model before and after compressing this layer (for pruning this includes the producers that lost output channels). */
  costBefore: Cost
  costAfter: Cost
  /** New nodes that replaced the layer, producers that were narrowed, anything a user should know. */
  notes: string[]
}

export interface LayerCompressor {
  readonly scheme: CompressionSchemeName
  readonly layers: readonly CompressibleLayer[]
  readonly skipped: readonly { node: string; reason: string }[]
  /** Whole-model cost with these per-layer ratios (layers not named stay at 1). Analytical, no model is built. */
  cost(ratios: Readonly<Record<string, number>>): Cost
  /** The original model with only `node` compressed at `ratio` (the input model is never changed). */
  compressOne(node: string, ratio: number, signal?: AbortSignal): Promise<{ model: Model; detail: LayerCompressionDetail }>
  /** The original model with every named layer compressed, in topological order. */
  compressAll(ratios: Readonly<Record<string, number>>, signal?: AbortSignal): Promise<{ model: Model; details: LayerCompressionDetail[] }>
}
