// NumPy's .npy format (numpy/lib/format.py, "NPY format" in NumPy's docs):
//   magic "\x93NUMPY", major, minor version bytes,
//   header length: uint16 LE (v1.0) or uint32 LE (v2.0, v3.0),
//   header: a Python dict literal {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
//           (latin-1 in v1/v2, UTF-8 in v3), space-padded and ending in '\n',
//   then the array's bytes.
// quantkit reads little-endian (or single-byte) numeric arrays in C order; the data is not read
// here, only located, so that sources can read one batch at a time.
import { DataSourceError } from '../errors.js'
import type { TensorData, TensorType } from '../sim/feeds.js'

export interface NpyHeader {
  /** The descr string as written, e.g. '<f4'. */
  descr: string
  type: TensorType
  /** Bytes per element. */
  itemSize: number
  shape: number[]
  /** Offset of the array's first byte from the start of the .npy bytes. */
  dataOffset: number
  /** Elements (product of shape; 1 for a 0-d array). */
  size: number
}

// descr without its byte-order character → feed type. float16 stays raw bits (Uint16Array), as ORT wants.
const DESCR: Record<string, TensorType> = {
  f2: 'float16', f4: 'float32', f8: 'float64', i1: 'int8', i2: 'int16', i4: 'int32', i8: 'int64',
  u1: 'uint8', u2: 'uint16', u4: 'uint32', u8: 'uint64', b1: 'bool',
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

/** Bytes needed to read any header: the 10- or 12-byte prefix tells how many more. */
export const NPY_PREFIX_BYTES = 12

/** Header length from the first NPY_PREFIX_BYTES bytes: where the dict ends. */
export function npyHeaderEnd(prefix: Uint8Array, file: string): number {
  if (prefix.length < 10 || MAGIC.some((b, i) => prefix[i] !== b)) {
    throw new DataSourceError(`${file}: not a .npy file (it does not start with "\\x93NUMPY")`, { file })
  }
  const major = prefix[6]!
  const view = new DataView(prefix.buffer, prefix.byteOffset, prefix.byteLength)
  if (major === 1) return 10 + view.getUint16(8, true)
  if (major === 2 || major === 3) {
    if (prefix.length < 12) throw new DataSourceError(`${file}: truncated .npy header`, { file })
    return 12 + view.getUint32(8, true)
  }
  throw new DataSourceError(`${file}: unsupported .npy format version ${major}.${prefix[7]} (quantkit reads 1.0, 2.0 and 3.0)`, { file })
}

/**
 * Parses a .npy header from bytes holding at least its first `npyHeaderEnd()` bytes.
 * `available` is the byte length of the whole .npy (file or zip entry), to check it holds the data.
 */
export function parseNpyHeader(bytes: Uint8Array, available: number, file: string): NpyHeader {
  const end = npyHeaderEnd(bytes, file)
  if (end > bytes.length || end > available) throw new DataSourceError(`${file}: truncated .npy header (${end} bytes announced, ${Math.min(bytes.length, available)} present)`, { file })
  const major = bytes[6]!
  const text = Buffer.from(bytes.buffer, bytes.byteOffset + (major === 1 ? 10 : 12), end - (major === 1 ? 10 : 12)).toString(major === 3 ? 'utf8' : 'latin1')

  const field = (key: string): string | undefined => {
    const at = new RegExp(`['"]${key}['"]\\s*:`).exec(text)?.index
    return at === undefined ? undefined : text.slice(at)
  }
  if (!text.trimStart().startsWith('{')) throw new DataSourceError(`${file}: malformed .npy header ${JSON.stringify(text.trim())}`, { file })

  const descrField = field('descr')
  const descrMatch = descrField && /^['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(descrField)
  if (!descrMatch) {
    if (descrField && /^['"]descr['"]\s*:\s*\[/.test(descrField)) {
      throw new DataSourceError(`${file}: structured (record) arrays are not supported; save one plain numeric array per input`, { file })
    }
    throw new DataSourceError(`${file}: .npy header has no 'descr' ${JSON.stringify(text.trim())}`, { file })
  }
  const descr = descrMatch[2]!
  const order = descr[0]!
  const code = '<>|='.includes(order) ? descr.slice(1) : descr
  const type = DESCR[code]
  if (type === undefined) {
    throw new DataSourceError(`${file}: unsupported dtype '${descr}' (quantkit reads float16/32/64, int8/16/32/64, uint8/16/32/64 and bool)`, { file })
  }
  const itemSize = Number(code.slice(1))
  if (order === '>' && itemSize > 1) {
    throw new DataSourceError(`${file}: big-endian dtype '${descr}' is not supported; save it little-endian (arr.astype('<${code}'))`, { file })
  }

  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)
  if (!fortran) throw new DataSourceError(`${file}: .npy header has no 'fortran_order' ${JSON.stringify(text.trim())}`, { file })
  if (fortran[1] === 'True') {
    throw new DataSourceError(`${file}: the array is stored in Fortran order; save it in C order (np.ascontiguousarray(arr))`, { file })
  }

  const shapeMatch = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)
  if (!shapeMatch) throw new DataSourceError(`${file}: .npy header has no 'shape' ${JSON.stringify(text.trim())}`, { file })
  const parts = shapeMatch[1]!.split(',').map((s) => s.trim()).filter((s) => s !== '')
  const shape = parts.map((s) => {
    const m = /^(\d+)L?$/.exec(s) // Python 2 wrote longs as 3L
    if (!m) throw new DataSourceError(`${file}: bad dimension '${s}' in .npy shape (${shapeMatch[1]})`, { file })
    return Number(m[1])
  })
  const size = shape.reduce((a, b) => a * b, 1)
  if (!Number.isSafeInteger(size * itemSize)) throw new DataSourceError(`${file}: shape (${shapeMatch[1]}) is too large`, { file })
  if (end + size * itemSize > available) {
    throw new DataSourceError(`${file}: truncated: shape (${shape.join(', ')}) of '${descr}' needs ${size * itemSize} bytes of data but only ${Math.max(0, available - end)} follow the header`, { file })
  }
  return { descr, type, itemSize, shape, dataOffset: end, size }
}

/** Copies `bytes` (whole elements of `header`'s dtype) into a fresh, aligned typed array. */
export function npyElements(header: NpyHeader, bytes: Uint8Array): TensorData {
  const copy = new Uint8Array(bytes.length)
  copy.set(bytes)
  const n = bytes.length / header.itemSize
  const b = copy.buffer
  switch (header.type) {
    case 'float16': case 'uint16': return new Uint16Array(b, 0, n)
    case 'float32': return new Float32Array(b, 0, n)
    case 'float64': return new Float64Array(b, 0, n)
    case 'int8': return new Int8Array(b, 0, n)
    case 'int16': return new Int16Array(b, 0, n)
    case 'int32': return new Int32Array(b, 0, n)
    case 'uint32': return new Uint32Array(b, 0, n)
    case 'int64': return new BigInt64Array(b, 0, n)
    case 'uint64': return new BigUint64Array(b, 0, n)
    default: return copy // uint8, bool
  }
}
