// Blockwise (per-block) and low-power blockwise (LPBQ) weight quantization: AIMET's
// `set_blockwise_quantization_for_weights` and `set_grouped_blockwise_quantization_for_weights`.
//
// Axes (aimet-onnx 2.42 `quantsim.py` `_get_quantization_axes`): one scale per output channel and
// per block of `blockSize` input channels (the reduction axis). Conv (channel 0, block 1),
// ConvTranspose (1, 0), Gemm (transB: 0, 1; else 1, 0), MatMul (−1, −2). A quantizer's `spec.axis`
// is the block axis (ONNX's blocked DequantizeLinear `axis`); the channel axis is the other one.
//
// Layout of `Quantizer.encodings` for a blocked quantizer: the weight's shape with the block axis
// replaced by the number of blocks and every axis other than channel and block replaced by 1,
// row-major — AIMET's own encoding shape (2.0.0's `y_scale`, e.g. [32, 2, 1, 1] for a Conv; for a
// 2-D weight also ONNX's blocked scale layout). AIMET's 1.0.0 files list the same values channel
// by channel (channel-major) whatever the axes: `toChannelMajor` / `fromChannelMajor`.
//
// LPBQ (aimet-onnx `lpbq_utils.py` `grouped_dynamic_quantize`, `qc_quantize_op.py`
// `LPBQScaleQuantizer`): from the per-block scales s[c, b] of a symmetric `bitwidth` quantizer,
// with k = decompressedBitwidth − bitwidth scale bits,
//   channel scale  p[c] = max_b s[c, b] / 2^k
//   int scale      i[c, b] = clip(round_half_even(s[c, b] / p[c]), 1, 2^k)
//   block scale    = i[c, b] · p[c]
// The integer scales run from 1 to 2^k inclusive (AIMET's comment: "following aimet_torch
// implementation, clip to 2 ** bitwidth"): the largest block of each channel gets exactly 2^k.
import type { Encoding } from '../encoding.js'
import { callNative, native } from '../native.js'
import { MinMaxObserver } from '../observers.js'
import type { Tensor } from '../onnx/tensor.js'

/** Channel and block axes of a weight, AIMET's `_get_quantization_axes`; undefined: not blockable. */
export function blockAxes(opType: string, rank: number, opts: { transB?: boolean } = {}): { channelAxis: number; blockAxis: number } | undefined {
  switch (opType) {
    case 'Conv': return rank >= 3 ? { channelAxis: 0, blockAxis: 1 } : undefined
    case 'ConvTranspose': return rank >= 3 ? { channelAxis: 1, blockAxis: 0 } : undefined
    case 'Gemm': return rank === 2 ? (opts.transB ? { channelAxis: 0, blockAxis: 1 } : { channelAxis: 1, blockAxis: 0 }) : undefined
    // Batched MatMul weights (rank > 2) would need one block grid per matrix: not supported.
    case 'MatMul': return rank === 2 ? { channelAxis: 1, blockAxis: 0 } : undefined
    // An embedding table [V, D] (a Gather param, QuantSimOptions.gatherTables): one grid per row,
    // blocks along D (ONNX Runtime's GatherBlockQuantized quantize_axis 1). Not an AIMET axis rule.
    case 'Gather': return rank === 2 ? { channelAxis: 0, blockAxis: 1 } : undefined
    default: return undefined
  }
}

export interface BlockGeometry {
  dims: number[]
  channelAxis: number
  blockAxis: number
  blockSize: number
  channels: number
  blocks: number
  /** AIMET's encoding shape: dims with block axis → blocks, other non-channel axes → 1. */
  compactDims: number[]
  /** ONNX's blocked scale shape: dims with block axis → blocks. */
  onnxDims: number[]
}

/** The blocking of a weight of shape `dims`; the channel axis is the other of axes 0 and 1. */
export function blockGeometry(dims: readonly number[], blockAxis: number, blockSize: number): BlockGeometry {
  const channelAxis = blockAxis === 0 ? 1 : 0
  const blocks = Math.ceil(dims[blockAxis]! / blockSize)
  return {
    dims: [...dims], channelAxis, blockAxis, blockSize,
    channels: dims[channelAxis]!, blocks,
    compactDims: dims.map((d, i) => (i === blockAxis ? blocks : i === channelAxis ? d : 1)),
    onnxDims: dims.map((d, i) => (i === blockAxis ? blocks : d)),
  }
}

/**
 * Per-block min-max encodings of a weight, in the compact layout. The weight is observed through
 * views that make each block a channel of MinMaxObserver (no element loop here):
 * channel axis 0, block axis 1 → [C·blocks, rest] on axis 0 (block b of channel c is contiguous);
 * block axis 0, channel axis 1 → per block, the contiguous slab [blockSize, C, rest] on axis 1.
 */
export function blockEncodings(w: Tensor, g: BlockGeometry, opts: { bitwidth: number; symmetric: boolean; strictSymmetric?: boolean; unsignedSymmetric?: boolean }): Encoding[] {
  const data = w.data as Float32Array
  const { dims, blockSize, blocks } = g
  if (dims[g.blockAxis]! % blockSize !== 0) throw new RangeError(`block size ${blockSize} does not divide dimension ${g.blockAxis} of [${dims.join(', ')}]`)
  const enc = { bitwidth: opts.bitwidth, symmetric: opts.symmetric, strictSymmetric: opts.strictSymmetric ?? false, unsignedSymmetric: opts.unsignedSymmetric ?? false }
  if (g.channelAxis === 0) {
    const o = new MinMaxObserver({ axis: 0 })
    o.update(data, [g.channels * blocks, data.length / (g.channels * blocks)])
    return o.encodings(enc)
  }
  const slab = data.length / blocks
  const out: Encoding[] = []
  for (let b = 0; b < blocks; b++) {
    const o = new MinMaxObserver({ axis: 1 })
    o.update(data.subarray(b * slab, (b + 1) * slab), [blockSize, g.channels, slab / (blockSize * g.channels)])
    out.push(...o.encodings(enc))
  }
  return out
}

/** Index in the compact layout of (channel c, block b). */
function compactIndex(g: BlockGeometry, c: number, b: number): number {
  return g.channelAxis === 0 ? c * g.blocks + b : b * g.channels + c
}

/** Compact-layout values in AIMET 1.0.0's order (channel by channel, blocks within). */
export function toChannelMajor<T>(g: BlockGeometry, values: readonly T[]): T[] {
  const out = new Array<T>(values.length)
  for (let c = 0; c < g.channels; c++) for (let b = 0; b < g.blocks; b++) out[c * g.blocks + b] = values[compactIndex(g, c, b)]!
  return out
}

/** The inverse of toChannelMajor. */
export function fromChannelMajor<T>(g: BlockGeometry, values: readonly T[]): T[] {
  const out = new Array<T>(values.length)
  for (let c = 0; c < g.channels; c++) for (let b = 0; b < g.blocks; b++) out[compactIndex(g, c, b)] = values[c * g.blocks + b]!
  return out
}

/** Broadcasts compact-layout values to ONNX's blocked scale layout (the same for 2-D weights). */
export function toOnnxLayout<T>(g: BlockGeometry, values: readonly T[]): T[] {
  if (g.onnxDims.every((d, i) => d === g.compactDims[i])) return [...values]
  const n = g.onnxDims.reduce((a, b) => a * b, 1)
  const out = new Array<T>(n)
  const rank = g.onnxDims.length
  const idx = new Array<number>(rank).fill(0)
  for (let i = 0; i < n; i++) {
    let k = 0
    for (let a = 0; a < rank; a++) k = k * g.compactDims[a]! + (g.compactDims[a] === 1 ? 0 : idx[a]!)
    out[i] = values[k]!
    for (let a = rank - 1; a >= 0; a--) {
      if (++idx[a]! < g.onnxDims[a]!) break
      idx[a] = 0
    }
  }
  return out
}

/** Nests flat row-major values into arrays of shape `dims` (AIMET's 2.0.0 files nest them). */
export function nest(values: readonly number[], dims: readonly number[]): unknown {
  if (dims.length <= 1) return [...values]
  const step = values.length / dims[0]!
  return Array.from({ length: dims[0]! }, (_, i) => nest(values.slice(i * step, (i + 1) * step), dims.slice(1)))
}

/** LPBQ's split of a quantizer's block scales: per-channel float scales and per-block integer scales. */
export interface LpbqScales {
  /** One float32 scale per output channel. */
  channelScales: number[]
  /** One integer scale per block, compact layout, in [1, 2^(decompressedBitwidth − bitwidth)]. */
  intScales: number[]
}

function roundHalfEven(x: number): number {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/**
 * LPBQ from per-block encodings (compact layout, symmetric): AIMET's grouped_dynamic_quantize.
 * Returns the two scale factors and the effective block encodings (scale = float32(int · channel)).
 */
export function lpbqFromBlocks(g: BlockGeometry, blockEncs: readonly Encoding[], bitwidth: number, decompressedBitwidth: number): { scales: LpbqScales; encodings: Encoding[] } {
  const k = decompressedBitwidth - bitwidth
  const top = 2 ** k
  const channelScales = new Array<number>(g.channels)
  for (let c = 0; c < g.channels; c++) {
    let m = 0
    for (let b = 0; b < g.blocks; b++) m = Math.max(m, blockEncs[compactIndex(g, c, b)]!.scale)
    channelScales[c] = Math.fround(m / top)
  }
  const intScales = new Array<number>(blockEncs.length)
  for (let c = 0; c < g.channels; c++) {
    for (let b = 0; b < g.blocks; b++) {
      const i = compactIndex(g, c, b)
      intScales[i] = Math.min(top, Math.max(1, roundHalfEven(blockEncs[i]!.scale / channelScales[c]!)))
    }
  }
  const scales = { channelScales, intScales }
  return { scales, encodings: lpbqEncodings(g, scales, bitwidth) }
}

/** The effective per-block encodings of LPBQ scales: symmetric on the signed `bitwidth` grid. */
export function lpbqEncodings(g: BlockGeometry, s: LpbqScales, bitwidth: number): Encoding[] {
  const half = 2 ** (bitwidth - 1)
  return s.intScales.map((n, i) => {
    const c = g.channelAxis === 0 ? Math.floor(i / g.blocks) : i % g.channels
    const scale = Math.fround(n * s.channelScales[c]!)
    return { bitwidth, scale, offset: 0, qmin: -half, qmax: half - 1, min: -half * scale, max: (half - 1) * scale, symmetric: true, strictSymmetric: false, unsignedSymmetric: false }
  })
}

/** Bitwidths and block sizes the 'onnxruntime' block rule takes (those of MatMulNBits). */
export function onnxruntimeRuleUnsupported(bitwidth: number, blockSize: number): string | undefined {
  if (bitwidth !== 4 && bitwidth !== 8) return `the 'onnxruntime' block rule takes bitwidth 4 or 8, got ${bitwidth}`
  if (!(blockSize >= 16 && blockSize <= 256 && (blockSize & (blockSize - 1)) === 0)) {
    return `the 'onnxruntime' block rule takes a block size that is a power of two from 16 to 256, got ${blockSize}`
  }
  return undefined
}

/**
 * Per-block encodings by the 'onnxruntime' rule (QuantizerSpec.blockRule), in the compact layout,
 * for a 2-D weight. The grids come from Rust (nbits.rs `block_grids`, the numbers MatMulNBits'
 * writer used before QuantSim computed them); a partial last block is allowed. Symmetric grids are
 * the signed [−2^(b−1), 2^(b−1)−1] with offset 0, asymmetric ones [0, 2^b−1] with offset −zero point.
 */
export function onnxruntimeBlockEncodings(w: Tensor, g: BlockGeometry, opts: { bitwidth: number; symmetric: boolean }): Encoding[] {
  if (g.dims.length !== 2) throw new RangeError(`the 'onnxruntime' block rule takes 2-D weights, got [${g.dims.join(', ')}]`)
  // The grids are [nb, N] of W [K, N] with K the block axis; a weight blocked on axis 1 is W stored transposed.
  const transposed = g.blockAxis === 1
  const [k, n] = [g.dims[g.blockAxis]!, g.dims[g.channelAxis]!]
  const r = callNative(() => native.nbitsBlockGrids(w.data as Float32Array, k, n, transposed, opts.bitwidth, g.blockSize, opts.symmetric))
  return encodingsFromGrids(g, r.scales, r.zeroPoints, opts.bitwidth, opts.symmetric)
}

/**
 * Compact-layout encodings from [nb, N] grids (scales, unsigned zero points; 2^(b−1) on symmetric
 * grids) of W [K, N] with K the block axis: the inverse of `gridsOf`.
 */
export function encodingsFromGrids(g: BlockGeometry, scales: Float32Array, zeroPoints: Uint8Array, bitwidth: number, symmetric: boolean): Encoding[] {
  const n = g.channels
  if (scales.length !== g.blocks * n || zeroPoints.length !== g.blocks * n) {
    throw new RangeError(`block grids: expected ${g.blocks}·${n} scales and zero points, got ${scales.length} and ${zeroPoints.length}`)
  }
  const b = bitwidth
  const [qmin, qmax] = symmetric ? [-(2 ** (b - 1)), 2 ** (b - 1) - 1] : [0, 2 ** b - 1]
  const out = new Array<Encoding>(g.channels * g.blocks)
  for (let blk = 0; blk < g.blocks; blk++) {
    for (let c = 0; c < n; c++) {
      const scale = scales[blk * n + c]!
      const offset = symmetric ? 0 : -zeroPoints[blk * n + c]!
      out[compactIndex(g, c, blk)] = {
        bitwidth: b, scale, offset, qmin, qmax,
        min: Math.fround((qmin + offset) * scale), max: Math.fround((qmax + offset) * scale),
        symmetric, strictSymmetric: false, unsignedSymmetric: false,
      }
    }
  }
  return out
}

/** A blocked quantizer's compact-layout encodings as [nb, N] grids of W [K, N] (K the block axis): what nbitsPack reads. */
export function gridsOf(g: BlockGeometry, encodings: readonly Encoding[]): { scales: Float32Array; zeroPoints: Uint8Array } {
  const n = g.channels
  const scales = new Float32Array(g.blocks * n)
  const zeroPoints = new Uint8Array(g.blocks * n)
  for (let blk = 0; blk < g.blocks; blk++) {
    for (let c = 0; c < n; c++) {
      const e = encodings[compactIndex(g, c, blk)]!
      scales[blk * n + c] = e.scale
      // Unsigned zero point: −offset on an unsigned grid; a signed symmetric grid is 2^(b−1) shifted.
      zeroPoints[blk * n + c] = e.qmin < 0 ? -e.qmin - e.offset : -e.offset
    }
  }
  return { scales, zeroPoints }
}
