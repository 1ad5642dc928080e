// loadModel: an ONNX file (or its bytes) → quantkit's IR, with every tensor's data in memory.
//
// The file is read with positioned reads into one buffer (fs.readFile refuses files over 2 GiB),
// decoded by the generated protobuf code (whose byte fields are views into that buffer, not
// copies), and converted by protoToModel.ts, which copies each tensor once into an aligned typed
// array. External data is then read straight into its tensors' arrays (externalData.ts). When
// loading returns, nothing refers to the file's buffer any more.
//
// Errors: anything wrong with the bytes is an OnnxFormatError naming the file (protobufjs' own
// errors, including its RangeErrors for lengths that run past the end, are wrapped); anything
// wrong with external data is an ExternalDataError. A missing or unreadable model file is Node's
// own error (ENOENT, EACCES, …), which names the path.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { constants as bufferConstants } from 'node:buffer'
import { onnx } from '../../generated/onnx.js'
import { OnnxFormatError } from '../errors.js'
import type { Model } from '../graph/model.js'
import { readExternalData, readExternalDataSync } from './externalData.js'
import { modelFromProto } from './protoToModel.js'

export interface LoadOptions {
  /**
   * The folder external data is resolved against when the model is given as bytes. For a path,
   * the model's own folder is used and this option is ignored.
   */
  baseDir?: string
}

/** fs.read moves at most 2 GiB - 1 per call. */
const READ_CHUNK = 1 << 30

/** How a model given as bytes is named in messages. */
const BYTES = 'model bytes'

function allocateFor(file: string, size: number): Buffer {
  if (size > bufferConstants.MAX_LENGTH) {
    throw new OnnxFormatError(`${file}: ${size} bytes is larger than this Node.js can hold in one buffer (${bufferConstants.MAX_LENGTH})`)
  }
  // Not pooled: the buffer is dropped as soon as the model is converted.
  return Buffer.allocUnsafeSlow(size)
}

function shortRead(file: string, done: number, size: number): never {
  throw new OnnxFormatError(`${file}: the file shrank while being read (${done} of ${size} bytes)`)
}

function readFileSync(file: string): Buffer {
  const fd = fs.openSync(file, 'r')
  try {
    const size = fs.fstatSync(fd).size
    const buf = allocateFor(file, size)
    for (let done = 0; done < size;) {
      const n = fs.readSync(fd, buf, done, Math.min(READ_CHUNK, size - done), done)
      if (n === 0) shortRead(file, done, size)
      done += n
    }
    return buf
  } finally {
    fs.closeSync(fd)
  }
}

async function readFile(file: string): Promise<Buffer> {
  const handle = await fs.promises.open(file, 'r')
  try {
    const size = (await handle.stat()).size
    const buf = allocateFor(file, size)
    for (let done = 0; done < size;) {
      const { bytesRead } = await handle.read(buf, done, Math.min(READ_CHUNK, size - done), done)
      if (bytesRead === 0) shortRead(file, done, size)
      done += bytesRead
    }
    return buf
  } finally {
    await handle.close()
  }
}

/** Decodes ModelProto bytes, turning protobufjs' errors into an OnnxFormatError naming `file`. */
export function decodeModelProto(bytes: Uint8Array, file: string): onnx.ModelProto {
  try {
    return onnx.ModelProto.decode(bytes)
  } catch (e) {
    const err = new OnnxFormatError(
      `${file}: not a readable ONNX model (${(e as Error).message}); the file is truncated, corrupt or not ONNX`,
    )
    err.cause = e
    throw err
  }
}

function checkSource(source: unknown): asserts source is string | Uint8Array {
  if (typeof source !== 'string' && !(ArrayBuffer.isView(source) && (source as Uint8Array).BYTES_PER_ELEMENT === 1)) {
    throw new TypeError(`loadModel: expected a file path or a Uint8Array of ONNX bytes, got ${Object.prototype.toString.call(source)}`)
  }
}

interface Where {
  file: string
  baseDir?: string
  path?: string
}

function where(source: string | Uint8Array, opts: LoadOptions): Where {
  if (typeof source === 'string') {
    const resolved = path.resolve(source)
    return { file: resolved, baseDir: path.dirname(resolved), path: resolved }
  }
  return { file: BYTES, baseDir: opts.baseDir === undefined ? undefined : path.resolve(opts.baseDir) }
}

function finish(model: Model, w: Where): Model {
  if (w.baseDir !== undefined) model.baseDir = w.baseDir
  if (w.path !== undefined) model.path = w.path
  return model
}

/**
 * Reads an ONNX model from a file path or from its bytes. External data is read relative to the
 * model's folder (or `opts.baseDir` for bytes).
 */
export async function loadModel(source: string | Uint8Array, opts: LoadOptions = {}): Promise<Model> {
  checkSource(source)
  const w = where(source, opts)
  const bytes = typeof source === 'string' ? await readFile(w.file) : source
  const { model, external } = modelFromProto(decodeModelProto(bytes, w.file), w.file)
  await readExternalData(external, w.baseDir, w.file)
  return finish(model, w)
}

/** loadModel, synchronously. */
export function loadModelSync(source: string | Uint8Array, opts: LoadOptions = {}): Model {
  checkSource(source)
  const w = where(source, opts)
  const bytes = typeof source === 'string' ? readFileSync(w.file) : source
  const { model, external } = modelFromProto(decodeModelProto(bytes, w.file), w.file)
  readExternalDataSync(external, w.baseDir, w.file)
  return finish(model, w)
}
