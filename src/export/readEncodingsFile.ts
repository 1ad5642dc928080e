// Reads an AIMET encodings file of any version aimet-onnx 2.42 writes (0.6.1, 1.0.0, 2.0.0) into
// one neutral form: per tensor, its bitwidth, whether the grid is signed, the scales and AIMET's
// offsets on the 0-based grid (x̂ = (q + offset)·scale with q in [0, 2^bw − 1]). The version is
// taken from `version`, or inferred as aimet-onnx's `_infer_encoding_version` does (0.6.1: lists;
// 1.0.0: `bw`; 2.0.0: `output_dtype`). LPBQ entries (1.0.0 `enc_type: "LPBQ"`, 2.0.0
// `per_block_int_scale`) are read as per-block encodings of the compressed bitwidth whose scales
// are per_block_int_scale × the channel's float scale, with both factors kept in `lpbq`.
import { readFile } from 'node:fs/promises'
import { QuantkitError } from '../errors.js'
import type { EncodingVersion } from './encodingsFile.js'

export class EncodingsFileError extends QuantkitError {
  override name = 'EncodingsFileError'
}

export interface FileEncoding {
  name: string
  /** 'activation' or 'param' in 0.6.1/1.0.0 files; 'any' in 2.0.0 (one flat list). */
  section: 'activation' | 'param' | 'any'
  dtype: 'int' | 'float'
  bitwidth: number
  /** AIMET's `is_sym` (1.0.0), `is_symmetric` (0.6.1), a signed `output_dtype` (2.0.0). */
  signed: boolean
  /** Per-tensor ('tensor'), per-channel ('channel') or per-block ('block'). */
  granularity: 'tensor' | 'channel' | 'block'
  scale: number[]
  /** AIMET's offsets on the grid starting at 0 (symmetric int8: −128). */
  offset: number[]
  /** 2.0.0 only: the channel or block axis as written. */
  axis?: number
  blockSize?: number
  /**
   * LPBQ entries: the decompressed bitwidth (1.0.0's `bw`), one float scale per channel and one
   * integer scale per block (in the file's order, like `scale`). `bitwidth` is the compressed one.
   */
  lpbq?: { decompressedBitwidth: number; channelScales: number[]; intScales: number[] }
}

export interface EncodingsFileContents {
  version: EncodingVersion
  encodings: FileEncoding[]
  producer?: { package?: string; version?: string }
}

const Q = JSON.stringify
const GRANULARITY: Record<string, FileEncoding['granularity'] | undefined> = { PER_TENSOR: 'tensor', PER_CHANNEL: 'channel', PER_BLOCK: 'block' }

function num(v: unknown, where: string): number {
  const n = typeof v === 'string' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new EncodingsFileError(`${where}: expected a finite number, got ${Q(v)}`)
  return n
}
function nums(v: unknown, where: string): number[] {
  if (Array.isArray(v)) return (v.flat(Infinity) as unknown[]).map((x, i) => num(x, `${where}[${i}]`))
  return [num(v, where)]
}
function bool(v: unknown, where: string): boolean {
  if (v === true || v === 'True' || v === 'true') return true
  if (v === false || v === 'False' || v === 'false') return false
  throw new EncodingsFileError(`${where}: expected true/false or "True"/"False", got ${Q(v)}`)
}

function read061(section: 'activation' | 'param', name: string, list: unknown, where: string): FileEncoding {
  if (!Array.isArray(list) || list.length === 0) throw new EncodingsFileError(`${where}: expected a non-empty list of encodings`)
  const first = list[0] as Record<string, unknown>
  const bitwidth = num(first.bitwidth, `${where}[0].bitwidth`)
  if (first.dtype === 'float') return { name, section, dtype: 'float', bitwidth, signed: true, granularity: 'tensor', scale: [], offset: [] }
  const signed = bool(first.is_symmetric ?? 'False', `${where}[0].is_symmetric`)
  return {
    name, section, dtype: 'int', bitwidth, signed,
    granularity: list.length > 1 ? 'channel' : 'tensor',
    scale: list.map((e: Record<string, unknown>, i) => num(e.scale, `${where}[${i}].scale`)),
    offset: list.map((e: Record<string, unknown>, i) => num(e.offset, `${where}[${i}].offset`)),
  }
}

function read100(section: 'activation' | 'param', e: Record<string, unknown>, where: string): FileEncoding {
  if (typeof e.name !== 'string') throw new EncodingsFileError(`${where}.name: expected a tensor name`)
  const bitwidth = num(e.bw, `${where}.bw`)
  if (e.dtype === 'FLOAT') return { name: e.name, section, dtype: 'float', bitwidth, signed: true, granularity: 'tensor', scale: [], offset: [] }
  if (e.dtype !== 'INT') throw new EncodingsFileError(`${where}.dtype: expected "INT" or "FLOAT", got ${Q(e.dtype)}`)
  if (e.enc_type === 'LPBQ') return readLpbq100(section, e, where, bitwidth)
  const granularity = GRANULARITY[String(e.enc_type)]
  if (!granularity) {
    throw new EncodingsFileError(`${where}.enc_type: ${Q(e.enc_type)} is not one of PER_TENSOR, PER_CHANNEL, PER_BLOCK, LPBQ (tensor ${Q(e.name)})`)
  }
  const scale = nums(e.scale, `${where}.scale`)
  const offset = nums(e.offset, `${where}.offset`)
  if (scale.length !== offset.length) throw new EncodingsFileError(`${where}: ${scale.length} scales but ${offset.length} offsets (tensor ${Q(e.name)})`)
  if (e.zero_point_shift !== undefined) throw new EncodingsFileError(`${where}.zero_point_shift: fractional zero points are not supported (tensor ${Q(e.name)})`)
  const out: FileEncoding = { name: e.name, section, dtype: 'int', bitwidth, signed: bool(e.is_sym, `${where}.is_sym`), granularity, scale, offset }
  if (granularity === 'block') out.blockSize = num(e.block_size, `${where}.block_size`)
  return out
}

/** The integer block scales: positive integers. */
function intScales(v: unknown, where: string): number[] {
  const out = nums(v, where)
  out.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) throw new EncodingsFileError(`${where}[${i}]: expected a positive integer, got ${n}`)
  })
  return out
}

/**
 * 1.0.0 LPBQ (aimet-onnx 2.42 `_encoding.py` LPBQEncoding): `bw` decompressed, `compressed_bw`,
 * `scale`/`offset` per channel (offset −2^(bw−1): symmetric), `per_block_int_scale` per
 * (channel, block) channel by channel, `block_size`.
 */
function readLpbq100(section: 'activation' | 'param', e: Record<string, unknown>, where: string, bw: number): FileEncoding {
  const name = e.name as string
  const compressed = num(e.compressed_bw, `${where}.compressed_bw`)
  const channelScales = nums(e.scale, `${where}.scale`)
  const offsets = nums(e.offset, `${where}.offset`)
  const ints = intScales(e.per_block_int_scale, `${where}.per_block_int_scale`)
  if (!(compressed >= 2 && compressed < bw)) throw new EncodingsFileError(`${where}: compressed_bw ${compressed} must be at least 2 and below bw ${bw} (tensor ${Q(name)})`)
  if (offsets.length !== channelScales.length) throw new EncodingsFileError(`${where}: ${channelScales.length} scales but ${offsets.length} offsets (tensor ${Q(name)})`)
  if (offsets.some((o) => o !== -(2 ** (bw - 1)))) throw new EncodingsFileError(`${where}.offset: LPBQ is symmetric, expected every offset to be ${-(2 ** (bw - 1))} (tensor ${Q(name)})`)
  if (ints.length % channelScales.length !== 0) throw new EncodingsFileError(`${where}: ${ints.length} block scales do not split into ${channelScales.length} channels (tensor ${Q(name)})`)
  const nb = ints.length / channelScales.length
  const half = 2 ** (compressed - 1)
  return {
    name, section, dtype: 'int', bitwidth: compressed, signed: true, granularity: 'block',
    scale: ints.map((n, i) => n * channelScales[Math.floor(i / nb)]!),
    offset: ints.map(() => -half),
    blockSize: num(e.block_size, `${where}.block_size`),
    lpbq: { decompressedBitwidth: bw, channelScales, intScales: ints },
  }
}

/** 2.0.0 LPBQ: nested per_block_int_scale and per_channel_float_scale in the encoding's shape, `axis` the block axis. */
function readLpbq200(e: Record<string, unknown>, where: string): FileEncoding {
  const name = e.name as string
  const m = /^int(\d+)$/.exec(String(e.output_dtype))
  if (!m) throw new EncodingsFileError(`${where}.output_dtype: an LPBQ entry needs a signed int<N> type, got ${Q(e.output_dtype)} (tensor ${Q(name)})`)
  const bitwidth = Number(m[1])
  const channelScales = nums(e.per_channel_float_scale, `${where}.per_channel_float_scale`)
  const ints = intScales(e.per_block_int_scale, `${where}.per_block_int_scale`)
  const axis = num(e.axis, `${where}.axis`)
  if (ints.length % channelScales.length !== 0) throw new EncodingsFileError(`${where}: ${ints.length} block scales do not split into ${channelScales.length} channels (tensor ${Q(name)})`)
  const c = channelScales.length
  const nb = ints.length / c
  // Block axis 0: [blocks, channels, …]; otherwise [channels, blocks, …] (AIMET's shapes).
  const channelOf = (i: number) => (axis === 0 ? i % c : Math.floor(i / nb))
  const scale = ints.map((n, i) => n * channelScales[channelOf(i)]!)
  // 2.0.0 does not write the decompressed bitwidth: aimet-onnx takes it as twice the compressed
  // one (`_encoding.py` LPBQEncoding: decompressed_dtype defaults to int<2·bw>; `_to_2_0_0`
  // refuses any other).
  return {
    name, section: 'any', dtype: 'int', bitwidth, signed: true, granularity: 'block',
    scale, offset: ints.map(() => -(2 ** (bitwidth - 1))), axis,
    blockSize: num(e.block_size, `${where}.block_size`),
    lpbq: { decompressedBitwidth: 2 * bitwidth, channelScales, intScales: ints },
  }
}

function read200(e: Record<string, unknown>, where: string): FileEncoding {
  if (typeof e.name !== 'string') throw new EncodingsFileError(`${where}.name: expected a tensor name`)
  if ('per_block_int_scale' in e) return readLpbq200(e, where)
  const m = /^(u?)int(\d+)$/.exec(String(e.output_dtype))
  if (!m) {
    if (/^float|^bfloat/.test(String(e.output_dtype))) {
      return { name: e.name, section: 'any', dtype: 'float', bitwidth: Number(/\d+/.exec(String(e.output_dtype))?.[0] ?? 16), signed: true, granularity: 'tensor', scale: [], offset: [] }
    }
    throw new EncodingsFileError(`${where}.output_dtype: expected int<N> or uint<N>, got ${Q(e.output_dtype)} (tensor ${Q(e.name)})`)
  }
  const signed = m[1] === ''
  const bitwidth = Number(m[2])
  const scale = nums(e.y_scale, `${where}.y_scale`)
  const zp = e.y_zero_point === undefined ? scale.map(() => 0) : nums(e.y_zero_point, `${where}.y_zero_point`)
  if (zp.length !== scale.length) throw new EncodingsFileError(`${where}: ${scale.length} scales but ${zp.length} zero points (tensor ${Q(e.name)})`)
  // ONNX: x̂ = (q − zp)·s with q on the type's range; AIMET's 0-based offset is −zp + the type's minimum.
  const typeMin = signed ? -(2 ** (bitwidth - 1)) : 0
  const out: FileEncoding = {
    name: e.name, section: 'any', dtype: 'int', bitwidth, signed,
    granularity: e.block_size !== undefined ? 'block' : Array.isArray(e.y_scale) ? 'channel' : 'tensor',
    scale, offset: zp.map((z) => -z + typeMin),
  }
  if (e.axis !== undefined) out.axis = num(e.axis, `${where}.axis`)
  if (e.block_size !== undefined) out.blockSize = num(e.block_size, `${where}.block_size`)
  return out
}

/** Parses an encodings file's JSON (already parsed) into the neutral form. */
export function parseEncodingsFile(json: unknown, source = 'encodings'): EncodingsFileContents {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new EncodingsFileError(`${source}: expected a JSON object`)
  const f = json as Record<string, unknown>
  let version = f.version as string | undefined
  if (version === undefined) {
    if (Array.isArray(f.encodings)) version = '2.0.0'
    else if (Array.isArray(f.activation_encodings) || Array.isArray(f.param_encodings)) version = '1.0.0'
    else version = '0.6.1'
  }
  const encodings: FileEncoding[] = []
  if (version === '0.6.1' || version === '1.0.0') {
    for (const [key, section] of [['activation_encodings', 'activation'], ['param_encodings', 'param']] as const) {
      const s = f[key]
      if (s === undefined) continue
      if (version === '0.6.1') {
        if (s === null || typeof s !== 'object' || Array.isArray(s)) throw new EncodingsFileError(`${source}: ${key} must be an object keyed by tensor name in version 0.6.1`)
        for (const [name, list] of Object.entries(s)) encodings.push(read061(section, name, list, `${source}: ${key}[${Q(name)}]`))
      } else {
        if (!Array.isArray(s)) throw new EncodingsFileError(`${source}: ${key} must be a list in version 1.0.0`)
        s.forEach((e, i) => encodings.push(read100(section, e as Record<string, unknown>, `${source}: ${key}[${i}]`)))
      }
    }
  } else if (version === '2.0.0') {
    if (!Array.isArray(f.encodings)) throw new EncodingsFileError(`${source}: encodings must be a list in version 2.0.0`)
    f.encodings.forEach((e, i) => encodings.push(read200(e as Record<string, unknown>, `${source}: encodings[${i}]`)))
  } else {
    throw new EncodingsFileError(`${source}: version ${Q(version)} is not supported; expected 0.6.1, 1.0.0 or 2.0.0`)
  }
  return { version, encodings, producer: f.producer as EncodingsFileContents['producer'] }
}

/** Reads and parses an encodings file from disk. */
export async function readEncodingsFile(path: string): Promise<EncodingsFileContents> {
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (e) {
    throw new EncodingsFileError(`${path}: cannot read the encodings file (${(e as Error).message})`)
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw new EncodingsFileError(`${path}: not valid JSON (${(e as Error).message})`)
  }
  return parseEncodingsFile(json, path)
}
