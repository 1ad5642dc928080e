// AIMET's encodings files, versions 1.0.0 (what aimet-onnx 2.42 writes by default; the Qualcomm
// converters read it) and 0.6.1 (the legacy layout). Layouts checked against files exported by
// aimet-onnx 2.42 (__test__/fixtures/golden/parity/*.encodings, `_encoding.py` `_to_1_0_0`,
// `_to_0_6_1`): keys sorted; 1.0.0 has `activation_encodings` and `param_encodings` as lists of
// { name, enc_type, dtype, bw, is_sym, scale[], offset[] }; 0.6.1 has them as objects keyed by
// tensor name, each a list (one per channel) of { bitwidth, dtype, is_symmetric "True"/"False",
// max, min, offset, scale }. Offsets in both live on a grid starting at 0 (symmetric int8: −128),
// plus `quantizer_args`, `producer` and `version`. Version 2.0.0 needs the graph (int32 biases,
// encodings copied through data-movement ops): encodingsFileV2.ts.
import type { Encoding } from '../encoding.js'
import type { Quantizer } from '../sim/quantizer.js'
import type { Model } from '../graph/model.js'
import { blockGeometry, toChannelMajor } from '../sim/blockwise.js'

export type EncodingVersion = '0.6.1' | '1.0.0' | '2.0.0'
export const ENCODING_VERSIONS: readonly EncodingVersion[] = ['0.6.1', '1.0.0', '2.0.0']

export interface QuantizerArgs {
  activation_bitwidth: number
  dtype: 'int' | 'float'
  is_symmetric: boolean
  param_bitwidth: number
  per_channel_quantization: boolean
  quant_scheme: string
}

/**
 * One 1.0.0 entry. PER_BLOCK (aimet-onnx 2.42, checked on __test__/fixtures/golden/blockwise/):
 * `bw` the weights' bitwidth, `scale`/`offset` one per (channel, block) listed channel by channel,
 * `block_size`. LPBQ: `bw` is the decompressed bitwidth and `compressed_bw` the weights', `scale`
 * and `offset` one per channel (offset −2^(bw−1), written as integers), `per_block_int_scale` one
 * per (channel, block), channel by channel; the block scale is per_block_int_scale × scale.
 */
export interface EncodingEntry {
  block_size?: number
  bw: number
  compressed_bw?: number
  dtype: 'INT' | 'FLOAT'
  enc_type: 'PER_TENSOR' | 'PER_CHANNEL' | 'PER_BLOCK' | 'LPBQ'
  is_sym?: boolean
  name: string
  offset?: number[]
  per_block_int_scale?: number[]
  scale?: number[]
}

export interface EncodingsFileV1 {
  activation_encodings: EncodingEntry[]
  param_encodings: EncodingEntry[]
  producer: { package: string; version: string }
  quantizer_args: QuantizerArgs
  version: '1.0.0'
}

/** AIMET's offset lives on a grid starting at 0 (symmetric int8: −128): ours is on [qmin, qmax]. */
export function fileOffset(e: Encoding): number {
  return e.offset + e.qmin
}

function entry(q: Quantizer, model?: Model): EncodingEntry {
  const enc_type = q.spec.blockSize !== undefined ? 'PER_BLOCK' : q.spec.axis !== undefined ? 'PER_CHANNEL' : 'PER_TENSOR'
  if (q.spec.dtype === 'float') return { bw: q.spec.bitwidth, dtype: 'FLOAT', enc_type: 'PER_TENSOR', name: q.tensor }
  let encs = q.encodings ?? []
  if (q.spec.blockSize !== undefined && q.spec.axis !== undefined) {
    const w = model?.graph.initializers.get(q.tensor)
    if (!w) throw new RangeError(`encodings 1.0.0: the per-block quantizer on ${JSON.stringify(q.tensor)} needs the model (its weight's shape) to order its blocks`)
    const g = blockGeometry(w.dims, q.spec.axis, q.spec.blockSize)
    encs = toChannelMajor(g, encs)
    if (q.spec.lpbq && q.lpbqScales) {
      const bw = q.spec.lpbq.decompressedBitwidth
      return {
        block_size: q.spec.blockSize,
        bw,
        compressed_bw: q.spec.bitwidth,
        dtype: 'INT',
        enc_type: 'LPBQ',
        is_sym: true,
        name: q.tensor,
        offset: q.lpbqScales.channelScales.map(() => -(2 ** (bw - 1))),
        per_block_int_scale: toChannelMajor(g, q.lpbqScales.intScales),
        scale: [...q.lpbqScales.channelScales],
      }
    }
  }
  const e: EncodingEntry = {
    ...(q.spec.blockSize !== undefined ? { block_size: q.spec.blockSize } : {}),
    bw: q.spec.bitwidth,
    dtype: 'INT',
    enc_type,
    is_sym: q.spec.symmetric,
    name: q.tensor,
    offset: encs.map(fileOffset),
    scale: encs.map((x) => x.scale),
  }
  return e
}

/**
 * The file for a calibrated sim. One entry per quantized tensor: a tensor quantized by several
 * quantizers (tied ones) appears once. Disabled quantizers are left out, as AIMET does.
 */
export function encodingsFileV1(quantizers: readonly Quantizer[], args: QuantizerArgs, version: string, model?: Model): EncodingsFileV1 {
  const { activations, params } = splitQuantizers(quantizers, (q) => entry(q, model))
  const byName = (a: EncodingEntry, b: EncodingEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return {
    activation_encodings: [...activations.values()].sort(byName),
    param_encodings: [...params.values()].sort(byName),
    producer: { package: 'quantkit', version },
    quantizer_args: args,
    version: '1.0.0',
  }
}

/** Enabled quantizers, one per tensor, split into activations and params (first quantizer wins). */
function splitQuantizers<T>(quantizers: readonly Quantizer[], make: (q: Quantizer) => T): { activations: Map<string, T>; params: Map<string, T> } {
  const activations = new Map<string, T>()
  const params = new Map<string, T>()
  for (const q of quantizers) {
    if (!q.enabled) continue
    const target = q.kind === 'param' ? params : activations
    if (!target.has(q.tensor)) target.set(q.tensor, make(q))
  }
  return { activations, params }
}

export type EncodingEntryV061 =
  | { bitwidth: number; dtype: 'int'; is_symmetric: 'True' | 'False'; max: number; min: number; offset: number; scale: number }
  | { bitwidth: number; dtype: 'float' }

export interface EncodingsFileV061 {
  activation_encodings: Record<string, EncodingEntryV061[]>
  param_encodings: Record<string, EncodingEntryV061[]>
  producer: { package: string; version: string }
  quantizer_args: QuantizerArgs
  version: '0.6.1'
}

function entryV061(q: Quantizer): EncodingEntryV061[] {
  if (q.spec.dtype === 'float') return [{ bitwidth: q.spec.bitwidth, dtype: 'float' }]
  return (q.encodings ?? []).map((e) => {
    // AIMET's `_to_0_6_1`: min/max are the ends of the full 2^bw grid from the file offset (so a
    // strict-symmetric int8 encoding shows [−127δ, 128δ]); offsets are written as floats.
    const offset = fileOffset(e)
    return {
      bitwidth: e.bitwidth,
      dtype: 'int' as const,
      is_symmetric: q.spec.symmetric ? 'True' as const : 'False' as const,
      max: (offset + 2 ** e.bitwidth - 1) * e.scale,
      min: offset * e.scale,
      offset,
      scale: e.scale,
    }
  })
}

/** The legacy 0.6.1 file (aimet-onnx 2.42 still writes it, with a deprecation warning). */
export function encodingsFileV061(quantizers: readonly Quantizer[], args: QuantizerArgs, version: string): EncodingsFileV061 {
  for (const q of quantizers) {
    if (q.enabled && q.spec.blockSize !== undefined) {
      throw new RangeError(`encodingVersion 0.6.1 cannot express the per-block encoding of ${JSON.stringify(q.tensor)}; use 1.0.0 or 2.0.0`)
    }
  }
  const { activations, params } = splitQuantizers(quantizers, entryV061)
  const sorted = (m: Map<string, EncodingEntryV061[]>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
  return {
    activation_encodings: sorted(activations),
    param_encodings: sorted(params),
    producer: { package: 'quantkit', version },
    quantizer_args: args,
    version: '0.6.1',
  }
}
