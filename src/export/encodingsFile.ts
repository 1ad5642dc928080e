// AIMET's encodings file, version 1.0.0 (what aimet-onnx 2.42 writes by default; the Qualcomm
// converters read it). Layout checked against a file exported by aimet-onnx 2.42: keys sorted,
// `activation_encodings` and `param_encodings` as lists of { name, enc_type, dtype, bw, is_sym,
// scale[], offset[] }, offsets on a grid starting at 0 (symmetric int8: −128), plus
// `quantizer_args`, `producer` and `version`.
import type { Quantizer } from '../sim/quantizer.js'

export interface QuantizerArgs {
  activation_bitwidth: number
  dtype: 'int' | 'float'
  is_symmetric: boolean
  param_bitwidth: number
  per_channel_quantization: boolean
  quant_scheme: string
}

export interface EncodingEntry {
  bw: number
  dtype: 'INT' | 'FLOAT'
  enc_type: 'PER_TENSOR' | 'PER_CHANNEL' | 'PER_BLOCK'
  is_sym?: boolean
  name: string
  offset?: number[]
  scale?: number[]
  block_size?: number
}

export interface EncodingsFileV1 {
  activation_encodings: EncodingEntry[]
  param_encodings: EncodingEntry[]
  producer: { package: string; version: string }
  quantizer_args: QuantizerArgs
  version: '1.0.0'
}

function entry(q: Quantizer): EncodingEntry {
  const enc_type = q.spec.blockSize !== undefined ? 'PER_BLOCK' : q.spec.axis !== undefined ? 'PER_CHANNEL' : 'PER_TENSOR'
  if (q.spec.dtype === 'float') return { bw: q.spec.bitwidth, dtype: 'FLOAT', enc_type: 'PER_TENSOR', name: q.tensor }
  const encs = q.encodings ?? []
  const e: EncodingEntry = {
    bw: q.spec.bitwidth,
    dtype: 'INT',
    enc_type,
    is_sym: q.spec.symmetric,
    name: q.tensor,
    // AIMET's offset lives on a grid starting at 0: ours is on [qmin, qmax].
    offset: encs.map((x) => x.offset + x.qmin),
    scale: encs.map((x) => x.scale),
  }
  if (q.spec.blockSize !== undefined) e.block_size = q.spec.blockSize
  return e
}

/**
 * The file for a calibrated sim. One entry per quantized tensor: a tensor quantized by several
 * quantizers (tied ones) appears once. Disabled quantizers are left out, as AIMET does.
 */
export function encodingsFileV1(quantizers: readonly Quantizer[], args: QuantizerArgs, version: string): EncodingsFileV1 {
  const activations = new Map<string, EncodingEntry>()
  const params = new Map<string, EncodingEntry>()
  for (const q of quantizers) {
    if (!q.enabled) continue
    const target = q.kind === 'param' ? params : activations
    if (!target.has(q.tensor)) target.set(q.tensor, entry(q))
  }
  const byName = (a: EncodingEntry, b: EncodingEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  return {
    activation_encodings: [...activations.values()].sort(byName),
    param_encodings: [...params.values()].sort(byName),
    producer: { package: 'quantkit', version },
    quantizer_args: args,
    version: '1.0.0',
  }
}
