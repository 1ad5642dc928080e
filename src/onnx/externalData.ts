// External tensor data (TensorProto.data_location = EXTERNAL): the tensor's bytes live in another
// file, named by the `location` key relative to the model's folder, at `offset` for `length` bytes
// (onnx.proto, "external_data"). The `checksum` key is optional in the spec, ill-defined there
// (digest "of the file" or of the tensor?) and never written by onnx's own tools: it is ignored.
//
// Safety: a model file is untrusted input. A location must name a file inside the model's folder:
// absolute paths, drive letters, UNC paths and `..` segments are refused before touching the disk,
// and the path is resolved with realpath so that a symlink leading outside the folder is refused
// too. Offsets and lengths are checked against the file's size before anything is allocated, so a
// lying length field cannot make quantkit allocate more than the file holds.
//
// Bytes are read with positioned reads straight into the tensor's (aligned) typed array: one copy
// from the page cache, no intermediate buffer, and no 2 GiB limit of fs.readFile.

import * as fs from 'node:fs'
import * as path from 'node:path'
import type { onnx } from '../../generated/onnx.js'
import { ExternalDataError } from '../errors.js'
import { fromLittleEndianInPlace, tensorHeader, type Tensor, type TensorHeader } from './tensor.js'

/** One external tensor waiting for its bytes. */
export interface ExternalRequest {
  /** The tensor the bytes go into; its `data` is a placeholder until the read. */
  tensor: Tensor
  header: TensorHeader
  location: string
  offset: number
  length: number
}

/** fs.read moves at most 2 GiB - 1 per call; stay well below. */
const READ_CHUNK = 1 << 30

function fail(modelFile: string, tensor: string, location: string | undefined, problem: string): never {
  const where = location === undefined ? '' : ` external data ${JSON.stringify(location)}:`
  throw new ExternalDataError(`${modelFile}: tensor ${JSON.stringify(tensor)}:${where} ${problem}`, {
    modelFile,
    tensor,
    location,
  })
}

function parseCount(value: string, key: string, fail_: (p: string) => never): number {
  if (!/^\d+$/.test(value.trim())) fail_(`${key} ${JSON.stringify(value)} is not a non-negative integer`)
  const n = Number(value.trim())
  if (!Number.isSafeInteger(n)) fail_(`${key} ${value} is beyond what quantkit handles (2^53)`)
  return n
}

/**
 * Checks an external tensor's header and keys and returns the tensor (with an empty placeholder
 * for its data) and what to read. Nothing is read or allocated here.
 */
export function externalRequest(proto: onnx.ITensorProto, modelFile: string): ExternalRequest {
  const header = tensorHeader(proto)
  const entries = new Map((proto.externalData ?? []).map((e) => [e.key ?? '', e.value ?? '']))
  const location = entries.get('location')
  const bad = (problem: string): never => fail(modelFile, header.name, location, problem)
  if (location === undefined || location === '') bad('data_location is EXTERNAL but external_data has no "location" key')
  const offset = entries.has('offset') ? parseCount(entries.get('offset')!, 'offset', bad) : 0
  const length = entries.has('length') ? parseCount(entries.get('length')!, 'length', bad) : header.byteLength
  if (length !== header.byteLength) {
    bad(`length is ${length} bytes, expected ${header.byteLength} for dims ${JSON.stringify(header.dims)} of ${header.info.name}`)
  }
  const tensor: Tensor = { name: header.name, dataType: header.info.dataType, dims: header.dims, data: new header.info.arrayType(0) }
  if (proto.docString) tensor.docString = proto.docString
  return { tensor, header, location: location!, offset, length }
}

/** Why `location` may not be used as an external-data location, or undefined when it may. */
export function locationProblem(location: string): string | undefined {
  if (location.includes('\0')) return 'contains a NUL character'
  if (/^[\\/]{2}/.test(location)) return 'is a UNC path; expected a path relative to the model\'s folder'
  if (/^[A-Za-z]:/.test(location)) return 'starts with a drive letter; expected a path relative to the model\'s folder'
  if (path.posix.isAbsolute(location) || path.win32.isAbsolute(location)) {
    return 'is absolute; expected a path relative to the model\'s folder'
  }
  if (location.split(/[\\/]/).includes('..')) return 'contains ".."; external data must stay inside the model\'s folder'
  return undefined
}

/**
 * The real path of `location` under `baseDir`, refusing anything that is not a regular file
 * inside baseDir (after resolving symlinks).
 */
export function resolveLocation(baseDir: string, location: string, modelFile: string, tensor: string): string {
  const problem = locationProblem(location)
  if (problem) fail(modelFile, tensor, location, problem)
  let realBase: string
  try {
    realBase = fs.realpathSync(baseDir)
  } catch (e) {
    fail(modelFile, tensor, location, `the model's folder ${JSON.stringify(baseDir)} cannot be resolved (${(e as Error).message})`)
  }
  let real: string
  try {
    real = fs.realpathSync(path.join(realBase, location))
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code
    fail(modelFile, tensor, location, code === 'ENOENT' ? `file not found in ${JSON.stringify(realBase)}` : (e as Error).message)
  }
  const rel = path.relative(realBase, real)
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    fail(modelFile, tensor, location, `resolves to ${JSON.stringify(real)}, outside the model's folder ${JSON.stringify(realBase)} (a symlink?)`)
  }
  return real
}

function groupByLocation(requests: readonly ExternalRequest[]): Map<string, ExternalRequest[]> {
  const groups = new Map<string, ExternalRequest[]>()
  for (const r of requests) {
    const list = groups.get(r.location)
    if (list) list.push(r)
    else groups.set(r.location, [r])
  }
  return groups
}

function checkRange(r: ExternalRequest, size: number, modelFile: string): void {
  if (r.offset + r.length > size) {
    fail(modelFile, r.header.name, r.location,
      `offset ${r.offset} + length ${r.length} = ${r.offset + r.length} is beyond the end of the file (${size} bytes)`)
  }
}

function allocate(r: ExternalRequest): Uint8Array {
  // length === header.byteLength was checked, so this is the element count in array entries.
  const data = new r.header.info.arrayType(r.length / r.header.info.arrayType.BYTES_PER_ELEMENT)
  r.tensor.data = data
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
}

function noBaseDir(requests: readonly ExternalRequest[], modelFile: string): never {
  const r = requests[0]!
  fail(modelFile, r.header.name, r.location,
    'the model was given as bytes and its tensors are stored in external data; pass the model\'s path ' +
      '(or opts.baseDir, the folder holding the data files) so that quantkit can find them')
}

function readError(r: ExternalRequest, modelFile: string, e: unknown): never {
  fail(modelFile, r.header.name, r.location, `read failed: ${(e as Error).message}`)
}

/** Reads every request's bytes into its tensor, synchronously. */
export function readExternalDataSync(requests: readonly ExternalRequest[], baseDir: string | undefined, modelFile: string): void {
  if (requests.length === 0) return
  if (baseDir === undefined) noBaseDir(requests, modelFile)
  for (const [location, list] of groupByLocation(requests)) {
    const file = resolveLocation(baseDir, location, modelFile, list[0]!.header.name)
    let fd: number
    try {
      fd = fs.openSync(file, 'r')
    } catch (e) {
      readError(list[0]!, modelFile, e)
    }
    try {
      const stat = fs.fstatSync(fd)
      if (!stat.isFile()) fail(modelFile, list[0]!.header.name, location, 'is not a regular file')
      for (const r of list) checkRange(r, stat.size, modelFile)
      for (const r of list) {
        const bytes = allocate(r)
        for (let done = 0; done < bytes.length;) {
          let n: number
          try {
            n = fs.readSync(fd, bytes, done, Math.min(READ_CHUNK, bytes.length - done), r.offset + done)
          } catch (e) {
            readError(r, modelFile, e)
          }
          if (n === 0) fail(modelFile, r.header.name, location, `file ended after ${r.offset + done} bytes while reading`)
          done += n
        }
        fromLittleEndianInPlace(r.tensor.data)
      }
    } finally {
      fs.closeSync(fd)
    }
  }
}

/** Reads every request's bytes into its tensor. */
export async function readExternalData(requests: readonly ExternalRequest[], baseDir: string | undefined, modelFile: string): Promise<void> {
  if (requests.length === 0) return
  if (baseDir === undefined) noBaseDir(requests, modelFile)
  for (const [location, list] of groupByLocation(requests)) {
    const file = resolveLocation(baseDir, location, modelFile, list[0]!.header.name)
    let handle: fs.promises.FileHandle
    try {
      handle = await fs.promises.open(file, 'r')
    } catch (e) {
      readError(list[0]!, modelFile, e)
    }
    try {
      const stat = await handle.stat()
      if (!stat.isFile()) fail(modelFile, list[0]!.header.name, location, 'is not a regular file')
      for (const r of list) checkRange(r, stat.size, modelFile)
      for (const r of list) {
        const bytes = allocate(r)
        for (let done = 0; done < bytes.length;) {
          let n: number
          try {
            ;({ bytesRead: n } = await handle.read(bytes, done, Math.min(READ_CHUNK, bytes.length - done), r.offset + done))
          } catch (e) {
            readError(r, modelFile, e)
          }
          if (n === 0) fail(modelFile, r.header.name, location, `file ended after ${r.offset + done} bytes while reading`)
          done += n
        }
        fromLittleEndianInPlace(r.tensor.data)
      }
    } finally {
      await handle.close()
    }
  }
}
