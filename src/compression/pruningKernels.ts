// Typed wrappers of channel pruning's Rust numerics (crates/quantkit-core/src/pruning.rs):
// sampling a Conv's receptive fields and outputs, channel selection, gathering kept channels.
// Everything here is per element of large tensors, so none of it is written in TypeScript.
import { callNative, native } from '../native.js'

/** A 2-D Conv window as the sampler sees it: [h, w] pairs, pads [top, left]. */
export interface ConvWindow {
  channels: number
  image: [number, number]
  out: [number, number]
  kernel: [number, number]
  strides: [number, number]
  dilations: [number, number]
  padBegin: [number, number]
}

/** `perImage` (oy, ox) output positions for each of `images` images, flattened; seeded. */
export function samplePositions(images: number, perImage: number, win: ConvWindow, seed: number): Uint32Array {
  return callNative(() => native.pruningSamplePositions(images, perImage, win, seed >>> 0))
}

/** One row of channels·kh·kw input values (or only `channelsKept`) per sampled position. */
export function samplePatches(x: Float32Array, images: number, win: ConvWindow, positions: Uint32Array, channelsKept?: Uint32Array): Float32Array {
  return callNative(() => native.pruningSamplePatches(x, images, win, positions, channelsKept))
}

/** The layer output [images, channels, oh, ow] at the sampled positions: rows of `channels` values. */
export function sampleOutputs(y: Float32Array, images: number, channels: number, win: ConvWindow, positions: Uint32Array): Float32Array {
  return callNative(() => native.pruningSampleOutputs(y, images, channels, win, positions))
}

/** Σ w² per input channel of a weight [m, c, inner] (AIMET's selection score). */
export function channelMagnitudes(w: Float32Array, m: number, c: number, inner: number): Float64Array {
  return callNative(() => native.pruningChannelMagnitudes(w, m, c, inner))
}

/** The `keep` highest-scoring channels, ascending. */
export function topChannels(scores: Float64Array, keep: number): Uint32Array {
  return callNative(() => native.pruningTopChannels(scores, keep))
}

/** The entries `keep` along `axis` of a row-major tensor. */
export function gatherAxis(data: Float32Array, dims: readonly number[], axis: number, keep: Uint32Array): Float32Array {
  return callNative(() => native.pruningGatherAxis(data, [...dims], axis, keep))
}

/** Kept channels' columns of patches [rows, c, inner], plus a ones column for an intercept. */
export function designMatrix(patches: Float32Array, rows: number, c: number, inner: number, keep: Uint32Array, intercept: boolean): Float32Array {
  return callNative(() => native.pruningDesignMatrix(patches, rows, c, inner, keep, intercept))
}

/** The largest c·inner `contributionGram` accepts. */
export const MAX_CONTRIBUTION_COLS: number = native.pruningMaxContributionCols()

/** G[c, c'] = ⟨Y_c, Y_c'⟩, the output parts input channels c and c' produce on the patches. */
export function contributionGram(patches: Float32Array, rows: number, w: Float32Array, m: number, c: number, inner: number): Float64Array {
  return callNative(() => native.pruningContributionGram(patches, rows, w, m, c, inner))
}

/** Greedy (ThiNet-style) selection on a contribution Gram: the `keep` channels kept, ascending. */
export function greedyKeep(gram: Float64Array, c: number, keep: number): Uint32Array {
  return callNative(() => native.pruningGreedyKeep(gram, c, keep))
}

/** A least-squares solution [cols, m] as a Conv weight [m, cols(−1)] and, with an intercept, its bias. */
export function splitSolution(x: Float32Array, cols: number, m: number, intercept: boolean): { weight: Float32Array; bias: Float32Array } {
  return callNative(() => native.pruningSplitSolution(x, cols, m, intercept))
}
