// Which IR version a model needs for the opsets it imports.
// Source: VERSION_TABLE in onnx/helper.py of onnx 1.19.0 (the release proto/onnx.proto comes from),
// copied row for row; the minimum IR version of an opset is that of the first release shipping it,
// as onnx.helper.find_min_ir_version_for computes it.

import { OnnxFormatError } from '../errors.js'

/** [onnx release, IR version, ai.onnx opset, ai.onnx.ml opset, ai.onnx.training opset?] */
export const VERSION_TABLE: readonly (readonly [string, number, number, number, number?])[] = [
  ['1.0', 3, 1, 1],
  ['1.1', 3, 5, 1],
  ['1.1.2', 3, 6, 1],
  ['1.2', 3, 7, 1],
  ['1.3', 3, 8, 1],
  ['1.4.1', 4, 9, 1],
  ['1.5.0', 5, 10, 1],
  ['1.6.0', 6, 11, 2],
  ['1.7.0', 7, 12, 2, 1],
  ['1.8.0', 7, 13, 2, 1],
  ['1.8.1', 7, 13, 2, 1],
  ['1.9.0', 7, 14, 2, 1],
  ['1.10.0', 8, 15, 2, 1],
  ['1.10.1', 8, 15, 2, 1],
  ['1.10.2', 8, 15, 2, 1],
  ['1.11.0', 8, 16, 3, 1],
  ['1.12.0', 8, 17, 3, 1],
  ['1.13.0', 8, 18, 3, 1],
  ['1.13.1', 8, 18, 3, 1],
  ['1.14.0', 9, 19, 3, 1],
  ['1.14.1', 9, 19, 3, 1],
  ['1.15.0', 9, 20, 4, 1],
  ['1.16.0', 10, 21, 5, 1],
  ['1.17.0', 10, 22, 5, 1],
  ['1.18.0', 11, 23, 5, 1],
  ['1.19.0', 12, 24, 5, 1],
]

export interface OpsetId {
  /** '' (or 'ai.onnx') for the default domain. */
  domain: string
  version: number
}

const DOMAIN_COLUMN: Record<string, 2 | 3 | 4> = {
  '': 2,
  'ai.onnx': 2,
  'ai.onnx.ml': 3,
  'ai.onnx.training': 4,
  'ai.onnx.preview.training': 4,
}

/** IR version of the first onnx release shipping `domain` at `version`, or undefined if none does. */
export function irVersionForOpset(domain: string, version: number): number | undefined {
  const column = DOMAIN_COLUMN[domain]
  if (column === undefined) return undefined
  return VERSION_TABLE.find((row) => row[column] === version)?.[1]
}

/**
 * The smallest IR version that can carry all of `opsets` (onnx.helper.find_min_ir_version_for).
 * Domains onnx does not define (com.microsoft, custom ones) do not constrain it; an unknown
 * version of a standard domain is an error. With no standard-domain opset the answer is 3.
 */
export function minIrVersion(opsets: readonly OpsetId[]): number {
  let ir = 3
  for (const { domain, version } of opsets) {
    if (DOMAIN_COLUMN[domain] === undefined) continue
    const v = irVersionForOpset(domain, version)
    if (v === undefined) {
      throw new OnnxFormatError(
        `opset ${domain || 'ai.onnx'} version ${version} is not in onnx 1.19.0's VERSION_TABLE; pass irVersion explicitly`,
      )
    }
    ir = Math.max(ir, v)
  }
  return ir
}
