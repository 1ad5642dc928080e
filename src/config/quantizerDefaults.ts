// Default quantizer precision from either of the two forms users bring (DECISIONS.md): AIMET's
// types (`param_type`/`activation_type` in aimet-onnx 2.42's QuantizationSimModel, here
// `paramType`/`activationType`) or bitwidths (the deprecated `default_param_bw`/
// `default_activation_bw`, here `paramBitwidth`/`activationBitwidth`).

import { nearest } from './nearest.js'

/** aimet-onnx 2.42's qtype aliases (`common/defs.py` QTYPE_ALIASES) and what each is. */
export const QUANT_TYPES = {
  int2: { dtype: 'int', bitwidth: 2 },
  int4: { dtype: 'int', bitwidth: 4 },
  int8: { dtype: 'int', bitwidth: 8 },
  int16: { dtype: 'int', bitwidth: 16 },
  float16: { dtype: 'float', bitwidth: 16 },
  float32: { dtype: 'float', bitwidth: 32 },
  float8e4m3fn: { dtype: 'float', bitwidth: 8 },
  float8e5m2: { dtype: 'float', bitwidth: 8 },
} as const satisfies Record<string, { dtype: 'int' | 'float'; bitwidth: number }>

export type QuantType = keyof typeof QUANT_TYPES

/** Other tools' names for AIMET's types, for the suggestion in an error (not accepted as such). */
const COMMON_SPELLINGS: Record<string, QuantType> = {
  fp16: 'float16', half: 'float16', fp32: 'float32', float: 'float32', fp8: 'float8e4m3fn', e4m3: 'float8e4m3fn', e5m2: 'float8e5m2',
  uint8: 'int8', qint8: 'int8', quint8: 'int8', uint16: 'int16', int: 'int8', uint4: 'int4',
}

export interface QuantizerDtype {
  dtype: 'int' | 'float'
  bitwidth: number
  /** The AIMET type name (`int8`, `float16`, …); `int<N>` for an integer bitwidth without an alias. */
  type: string
}

export interface QuantizerDefaultsOptions {
  /** AIMET's param type, e.g. 'int8' (default), 'int4', 'int16', 'float16'. */
  paramType?: QuantType | string
  /** AIMET's activation type, e.g. 'int8' (default), 'int16', 'float16'. */
  activationType?: QuantType | string
  /** Integer param bitwidth, 2–32; the same as paramType `int<N>`. */
  paramBitwidth?: number
  /** Integer activation bitwidth, 2–32; the same as activationType `int<N>`. */
  activationBitwidth?: number
}

function one(opts: QuantizerDefaultsOptions, typeKey: 'paramType' | 'activationType', bwKey: 'paramBitwidth' | 'activationBitwidth'): QuantizerDtype {
  const type = opts[typeKey]
  const bitwidth = opts[bwKey]
  let fromBitwidth: QuantizerDtype | undefined
  if (bitwidth !== undefined) {
    if (typeof bitwidth !== 'number' || !Number.isInteger(bitwidth)) throw new TypeError(`${bwKey}: expected an integer from 2 to 32, got ${typeof bitwidth === 'string' ? JSON.stringify(bitwidth) : String(bitwidth)}`)
    if (bitwidth < 2 || bitwidth > 32) throw new RangeError(`${bwKey}: expected an integer from 2 to 32, got ${bitwidth}`)
    fromBitwidth = { dtype: 'int', bitwidth, type: `int${bitwidth}` }
  }
  let fromType: QuantizerDtype | undefined
  if (type !== undefined) {
    if (typeof type !== 'string') throw new TypeError(`${typeKey}: expected one of ${Object.keys(QUANT_TYPES).join(', ')}, got ${typeof type}`)
    const t = QUANT_TYPES[type as QuantType]
    if (t === undefined) {
      const near = COMMON_SPELLINGS[type.toLowerCase()] ?? nearest(type, Object.keys(QUANT_TYPES))?.name
      throw new RangeError(`${typeKey}: unknown type "${type}"; the nearest is "${near}" (AIMET's types: ${Object.keys(QUANT_TYPES).join(', ')}; for another integer width use ${bwKey})`)
    }
    fromType = { ...t, type }
  }
  if (fromType && fromBitwidth && (fromType.dtype !== 'int' || fromType.bitwidth !== fromBitwidth.bitwidth)) {
    throw new RangeError(`${typeKey} "${type}" and ${bwKey} ${bitwidth} disagree: give one of them, or both meaning the same integer width`)
  }
  return fromType ?? fromBitwidth ?? { dtype: 'int', bitwidth: 8, type: 'int8' }
}

/**
 * The default param and activation precision from either form; int8 for both when neither is
 * given (aimet-onnx's defaults). Errors name the option: TypeError for a wrong kind of value,
 * RangeError for an unknown type, a bitwidth out of range, or a type and a bitwidth that disagree.
 */
export function resolveQuantizerDefaults(opts: QuantizerDefaultsOptions = {}): { param: QuantizerDtype; activation: QuantizerDtype } {
  if (opts === null || typeof opts !== 'object') throw new TypeError('quantizer options: expected an object')
  return { param: one(opts, 'paramType', 'paramBitwidth'), activation: one(opts, 'activationType', 'activationBitwidth') }
}
