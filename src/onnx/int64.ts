// int64/uint64 protobuf fields ⇄ BigInt and number. generated/onnx.js is built with --force-long,
// so every int64 field decodes as a Long (long.js, protobufjs' own dependency) and never as a lossy
// JS number. quantkit's own types use bigint for int64 tensor elements and number (checked safe)
// for dims, versions and similar counts.

import * as protobuf from 'protobufjs/minimal.js'
import type { onnx } from '../../generated/onnx.js'
import { OnnxFormatError } from '../errors.js'

/** long.js's Long, as the generated typings name it (without a direct dependency on `long`). */
export type Long = NonNullable<onnx.ITensorProto['dims']>[number]

/** Also accepts plain numbers, which protobufjs produces when a message was built by hand. */
export type LongLike = Long | number | { low: number; high: number; unsigned?: boolean }

/** Exact BigInt of an int64 (or, with `unsigned`, uint64) field value. */
export function longToBigInt(v: LongLike, unsigned = false): bigint {
  if (typeof v === 'number') {
    if (!Number.isSafeInteger(v)) throw new OnnxFormatError(`int64 value ${v} is not a safe integer`)
    return unsigned ? BigInt.asUintN(64, BigInt(v)) : BigInt.asIntN(64, BigInt(v))
  }
  const bits = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0)
  return unsigned ? bits : BigInt.asIntN(64, bits)
}

/** An int64 field as a number; throws OnnxFormatError naming `what` unless it is a safe integer. */
export function longToNumber(v: LongLike, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v
  const n = typeof v === 'number' ? v : longToBigInt(v, v.unsigned ?? false)
  if (typeof n === 'bigint' && n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return Number(n)
  }
  throw new OnnxFormatError(`${what} is ${n}, beyond what quantkit handles (±2^53)`)
}

/** A number (safe integer) or bigint as a Long for an int64 (or uint64) field. */
export function toLong(v: number | bigint, unsigned = false): Long {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new RangeError(`${v} is not a safe integer`)
  const b = unsigned ? BigInt.asUintN(64, BigInt(v)) : BigInt.asIntN(64, BigInt(v))
  if (b !== BigInt(v)) throw new RangeError(`${v} does not fit ${unsigned ? 'uint64' : 'int64'}`)
  const LongClass = protobuf.util.Long as unknown as new (low: number, high: number, unsigned?: boolean) => Long
  if (!LongClass) throw new Error('protobufjs found no long.js; int64 fields cannot be written exactly')
  return new LongClass(Number(BigInt.asIntN(32, b)), Number(BigInt.asIntN(32, b >> 32n)), unsigned)
}
