// Results as JSON, on stdout or in report.json. JSON has no Infinity or NaN (an exact output has
// infinite SQNR): they are written as the strings "Infinity", "-Infinity", "NaN". Typed arrays
// (raw tensor data inside technique and mode reports) are left out.
import { rename, writeFile } from 'node:fs/promises'

function replacer(_key: string, value: unknown): unknown {
  if (ArrayBuffer.isView(value)) return undefined
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value)
  return value
}

export function toJson(value: unknown): string {
  return JSON.stringify(value, replacer, 2)
}

/** Writes `value` as JSON through a temporary file and a rename, so no reader sees half a file. */
export async function writeJsonFile(path: string, value: unknown): Promise<void> {
  await writeFile(`${path}.tmp`, toJson(value) + '\n')
  await rename(`${path}.tmp`, path)
}
