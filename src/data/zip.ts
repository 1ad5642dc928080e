// A minimal zip reader for .npz files: the central directory (with zip64 records, which numpy
// writes: np.savez opens every member with force_zip64=True), stored and deflated entries, all
// offsets and sizes checked against the file. Layout from PKWARE's APPNOTE.TXT §4.3.
import type { FileHandle } from 'node:fs/promises'
import { crc32, inflateRawSync } from 'node:zlib'
import { DataSourceError } from '../errors.js'

export interface ZipEntry {
  name: string
  /** 0 stored, 8 deflated. */
  method: number
  compressedSize: number
  uncompressedSize: number
  crc32: number
  localHeaderOffset: number
}

const EOCD = 0x06054b50
const ZIP64_LOCATOR = 0x07064b50
const ZIP64_EOCD = 0x06064b50
const CENTRAL = 0x02014b50
const LOCAL = 0x04034b50

async function readAt(fh: FileHandle, position: number, length: number, fileSize: number, file: string, what: string): Promise<Buffer> {
  if (position < 0 || length < 0 || position + length > fileSize) {
    throw new DataSourceError(`${file}: corrupt zip: ${what} (bytes ${position}–${position + length}) lies outside the file (${fileSize} bytes)`, { file })
  }
  const buf = Buffer.alloc(length)
  const { bytesRead } = await fh.read(buf, 0, length, position)
  if (bytesRead !== length) throw new DataSourceError(`${file}: short read of ${what}`, { file })
  return buf
}

function u64(buf: Buffer, at: number, file: string): number {
  const v = buf.readBigUInt64LE(at)
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new DataSourceError(`${file}: corrupt zip: a 64-bit size or offset is too large`, { file })
  return Number(v)
}

/** Reads the central directory: every entry, in directory order. */
export async function readZipDirectory(fh: FileHandle, fileSize: number, file: string): Promise<ZipEntry[]> {
  // The end-of-central-directory record is 22 bytes plus a comment of up to 65535.
  const tailLength = Math.min(fileSize, 22 + 0xffff)
  const tail = await readAt(fh, fileSize - tailLength, tailLength, fileSize, file, 'end of file')
  let eocd = -1
  for (let i = tail.length - 22; i >= 0; i--) {
    if (tail.readUInt32LE(i) === EOCD && i + 22 + tail.readUInt16LE(i + 20) <= tail.length) { eocd = i; break }
  }
  if (eocd < 0) throw new DataSourceError(`${file}: not a zip file (no end-of-central-directory record); a .npz is written by np.savez`, { file })
  let entries = tail.readUInt16LE(eocd + 10)
  let cdSize = tail.readUInt32LE(eocd + 12)
  let cdOffset = tail.readUInt32LE(eocd + 16)
  const eocdPosition = fileSize - tailLength + eocd
  if (eocd >= 20 && tail.readUInt32LE(eocd - 20) === ZIP64_LOCATOR) {
    const recordOffset = u64(tail, eocd - 20 + 8, file)
    const rec = await readAt(fh, recordOffset, 56, fileSize, file, 'zip64 end-of-central-directory record')
    if (rec.readUInt32LE(0) !== ZIP64_EOCD) throw new DataSourceError(`${file}: corrupt zip: bad zip64 end-of-central-directory record`, { file })
    entries = u64(rec, 32, file)
    cdSize = u64(rec, 40, file)
    cdOffset = u64(rec, 48, file)
  }
  if (cdOffset + cdSize > eocdPosition) {
    throw new DataSourceError(`${file}: corrupt zip: the central directory (offset ${cdOffset}, ${cdSize} bytes) overlaps its end record at ${eocdPosition}`, { file })
  }
  const cd = await readAt(fh, cdOffset, cdSize, fileSize, file, 'central directory')
  const out: ZipEntry[] = []
  let p = 0
  for (let k = 0; k < entries; k++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== CENTRAL) throw new DataSourceError(`${file}: corrupt zip: central directory entry ${k} is malformed`, { file })
    const flags = cd.readUInt16LE(p + 8)
    const method = cd.readUInt16LE(p + 10)
    const crc = cd.readUInt32LE(p + 16)
    let compressedSize = cd.readUInt32LE(p + 20)
    let uncompressedSize = cd.readUInt32LE(p + 24)
    const nameLength = cd.readUInt16LE(p + 28)
    const extraLength = cd.readUInt16LE(p + 30)
    const commentLength = cd.readUInt16LE(p + 32)
    let localHeaderOffset = cd.readUInt32LE(p + 42)
    const next = p + 46 + nameLength + extraLength + commentLength
    if (next > cd.length) throw new DataSourceError(`${file}: corrupt zip: central directory entry ${k} runs past the directory`, { file })
    const name = cd.toString(flags & 0x800 ? 'utf8' : 'latin1', p + 46, p + 46 + nameLength)
    // Zip64 extended information (header 0x0001): 8-byte values for the fields saturated at 0xffffffff, in this order.
    for (let e = p + 46 + nameLength; e + 4 <= p + 46 + nameLength + extraLength;) {
      const id = cd.readUInt16LE(e)
      const size = cd.readUInt16LE(e + 2)
      if (e + 4 + size > p + 46 + nameLength + extraLength) throw new DataSourceError(`${file}: corrupt zip: extra field of "${name}" runs past its entry`, { file })
      if (id === 0x0001) {
        let q = e + 4
        const take = (): number => {
          if (q + 8 > e + 4 + size) throw new DataSourceError(`${file}: corrupt zip: short zip64 field for "${name}"`, { file })
          const v = u64(cd, q, file)
          q += 8
          return v
        }
        if (uncompressedSize === 0xffffffff) uncompressedSize = take()
        if (compressedSize === 0xffffffff) compressedSize = take()
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take()
      }
      e += 4 + size
    }
    if (flags & 0x1) throw new DataSourceError(`${file}: "${name}" is encrypted`, { file })
    if (method !== 0 && method !== 8) throw new DataSourceError(`${file}: "${name}" uses zip compression method ${method}; quantkit reads stored (0) and deflated (8) entries (np.savez / np.savez_compressed)`, { file })
    if (localHeaderOffset + 30 + compressedSize > cdOffset) {
      throw new DataSourceError(`${file}: corrupt zip: the data of "${name}" (offset ${localHeaderOffset}, ${compressedSize} bytes) runs into the central directory`, { file })
    }
    out.push({ name, method, compressedSize, uncompressedSize, crc32: crc, localHeaderOffset })
    p = next
  }
  return out
}

/** Where an entry's (compressed) bytes start: after its local header, whose lengths may differ from the directory's. */
export async function entryDataOffset(fh: FileHandle, entry: ZipEntry, fileSize: number, file: string): Promise<number> {
  const local = await readAt(fh, entry.localHeaderOffset, 30, fileSize, file, `local header of "${entry.name}"`)
  if (local.readUInt32LE(0) !== LOCAL) throw new DataSourceError(`${file}: corrupt zip: no local header for "${entry.name}" at offset ${entry.localHeaderOffset}`, { file })
  const start = entry.localHeaderOffset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28)
  if (start + entry.compressedSize > fileSize) throw new DataSourceError(`${file}: corrupt zip: the data of "${entry.name}" runs past the end of the file`, { file })
  return start
}

/** An entry's uncompressed bytes, with its size and CRC-32 checked. */
export async function readZipEntry(fh: FileHandle, entry: ZipEntry, fileSize: number, file: string): Promise<Buffer> {
  const start = await entryDataOffset(fh, entry, fileSize, file)
  const raw = await readAt(fh, start, entry.compressedSize, fileSize, file, `data of "${entry.name}"`)
  let data: Buffer
  if (entry.method === 0) {
    data = raw
  } else {
    try {
      // maxOutputLength: a corrupt or hostile entry cannot inflate past what the directory declares.
      data = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.uncompressedSize) })
    } catch (e) {
      throw new DataSourceError(`${file}: cannot inflate "${entry.name}": ${(e as Error).message}`, { file }, { cause: e })
    }
  }
  if (data.length !== entry.uncompressedSize) {
    throw new DataSourceError(`${file}: corrupt zip: "${entry.name}" holds ${data.length} bytes but its directory entry says ${entry.uncompressedSize}`, { file })
  }
  if (crc32(data) !== entry.crc32) throw new DataSourceError(`${file}: corrupt zip: CRC-32 mismatch in "${entry.name}"`, { file })
  return data
}
