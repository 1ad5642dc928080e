// Small helpers for command-line values.
import { UsageError } from './usageError.js'

/** A `--flag <n>` value as a positive integer, undefined when absent; a UsageError otherwise. */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag}: expected a positive integer, got ${JSON.stringify(value)}`)
  return n
}
