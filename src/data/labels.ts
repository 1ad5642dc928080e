// Class labels for accuracy (`--labels`): a .npy of integers, a .json array, or a text file with
// one label per line; one label per sample, in data order.
import { readFile } from 'node:fs/promises'
import { extname } from 'node:path'
import { DataSourceError } from '../errors.js'
import { npyElements, parseNpyHeader } from './npy.js'

export async function readLabels(path: string): Promise<Int32Array> {
  const bytes = new Uint8Array(await readFile(path))
  const ext = extname(path).toLowerCase()
  let values: ArrayLike<number | bigint>
  if (ext === '.npy') {
    const h = parseNpyHeader(bytes, bytes.length, path)
    if (!/^(u?int(8|16|32|64))$/.test(h.type)) throw new DataSourceError(`${path}: labels must be integers, got '${h.descr}'`, { file: path })
    values = npyElements(h, bytes.subarray(h.dataOffset, h.dataOffset + h.size * h.itemSize)) as ArrayLike<number | bigint>
  } else if (ext === '.json') {
    const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown
    if (!Array.isArray(json)) throw new DataSourceError(`${path}: expected a JSON array of class indices`, { file: path })
    values = json as number[]
  } else {
    values = Buffer.from(bytes).toString('utf8').split(/\r?\n/).filter((l) => l.trim() !== '').map(Number)
  }
  const out = new Int32Array(values.length)
  for (let i = 0; i < values.length; i++) {
    const v = Number(values[i])
    if (!Number.isInteger(v) || v < 0) throw new DataSourceError(`${path}: label ${i} is ${String(values[i])}, expected a non-negative integer class index`, { file: path })
    out[i] = v
  }
  return out
}
