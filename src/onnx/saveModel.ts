// saveModel: quantkit's IR → an ONNX file (or bytes), with large tensors in external data.
//
// Sizes. A ModelProto cannot exceed 2 GiB (protobuf's limit; ONNX Runtime refuses larger ones),
// and protobufjs encodes a message into one buffer. So:
// - Without a threshold, every tensor is embedded, unless the model's tensors together exceed
//   AUTO_EXTERNAL_TOTAL (1.8 GiB, leaving room for the graph itself); then every tensor of 1 KiB
//   or more goes to external data, as onnx's `save_model(..., save_as_external_data=True)` does
//   with its default size_threshold of 1024.
// - With `externalDataThreshold`, every tensor of at least that many bytes goes external.
// - Either way, if the encoded ModelProto would still reach 2 GiB, saving fails with an
//   OnnxFormatError before the output buffer is allocated.
// Empty tensors always stay embedded.
//
// External data goes into one file beside the model (`<model file>.data` unless named), each
// tensor at an aligned offset: 64 KiB for tensors of 1 MiB or more (the allocation granularity on
// Windows, a multiple of the page size elsewhere, so that ONNX Runtime can memory-map them), 64
// bytes otherwise. A tensor object shared by several places is written once.
//
// Atomicity. Both files are written into a staging folder created inside the destination folder
// (same file system), flushed, then renamed over their destinations, the data file first. An
// existing file is never left half-written: it is either the old file or the new one.

import * as fs from 'node:fs'
import * as path from 'node:path'
import { onnx } from '../../generated/onnx.js'
import { OnnxFormatError } from '../errors.js'
import type { Model } from '../graph/model.js'
import { locationProblem } from './externalData.js'
import { modelTensors, modelToProto, type ExternalPlacement } from './modelToProto.js'
import { tensorToProto, type Tensor } from './tensor.js'

export interface SaveOptions {
  /**
   * Tensors of at least this many bytes are stored in the external data file. Default: none,
   * unless the model's tensors total more than 1.8 GiB; then 1024 (onnx's default).
   */
  externalDataThreshold?: number
  /** Name of the external data file, in the model's folder. Default: the model's file name + `.data`. */
  externalDataFile?: string
}

/** Protobuf's hard limit on one message. */
export const MAX_PROTO_BYTES = 2 ** 31 - 1
/** Above this many tensor bytes, large tensors go to external data without being asked. */
export const AUTO_EXTERNAL_TOTAL = Math.floor(1.8 * 2 ** 30)
export const AUTO_EXTERNAL_THRESHOLD = 1024
const LARGE_TENSOR = 1 << 20
const LARGE_ALIGN = 1 << 16
const SMALL_ALIGN = 64
/** fs.write moves at most 2 GiB - 1 per call. */
const WRITE_CHUNK = 1 << 30

const alignUp = (n: number, a: number) => Math.ceil(n / a) * a

function totalTensorBytes(tensors: readonly Tensor[]): number {
  return tensors.reduce((sum, t) => sum + t.data.byteLength, 0)
}

function encode(proto: onnx.ModelProto, what: string): Uint8Array {
  const writer = onnx.ModelProto.encode(proto)
  // writer.len is known before finish() allocates the output.
  if (writer.len > MAX_PROTO_BYTES) {
    throw new OnnxFormatError(
      `${what}: the ModelProto would take ${writer.len} bytes, over protobuf's 2 GiB limit; ` +
        'save to a path with a lower externalDataThreshold so that more tensors go to external data',
    )
  }
  return writer.finish()
}

/** The model as ModelProto bytes, every tensor embedded (no external data). */
export function modelToBytes(model: Model): Uint8Array {
  const total = totalTensorBytes(modelTensors(model))
  if (total > AUTO_EXTERNAL_TOTAL) {
    throw new OnnxFormatError(
      `model${model.path ? ` ${model.path}` : ''}: its tensors take ${total} bytes, too close to protobuf's 2 GiB limit for ` +
        'one ModelProto; save it to a path so that its large tensors go to an external data file',
    )
  }
  return encode(modelToProto(model), 'model')
}

interface Plan {
  placement: Map<Tensor, ExternalPlacement>
  /** Tensor bytes in file order with their offsets. */
  writes: { bytes: Uint8Array; offset: number }[]
  size: number
}

function planExternalData(tensors: readonly Tensor[], threshold: number, location: string): Plan {
  const plan: Plan = { placement: new Map(), writes: [], size: 0 }
  for (const t of tensors) {
    const length = t.data.byteLength
    if (length === 0 || length < threshold) continue
    const offset = alignUp(plan.size, length >= LARGE_TENSOR ? LARGE_ALIGN : SMALL_ALIGN)
    // tensorToProto checks the tensor and gives its little-endian bytes (a view on little-endian hosts).
    const bytes = tensorToProto(t).rawData
    plan.placement.set(t, { location, offset, length })
    plan.writes.push({ bytes, offset })
    plan.size = offset + length
  }
  return plan
}

async function writeAll(handle: fs.promises.FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(WRITE_CHUNK, bytes.length - done), position + done)
    done += bytesWritten
  }
}

async function writeFile(file: string, pieces: readonly { bytes: Uint8Array; offset: number }[], size: number): Promise<void> {
  const handle = await fs.promises.open(file, 'wx')
  try {
    for (const p of pieces) await writeAll(handle, p.bytes, p.offset)
    // Padding between pieces is left as holes (read back as zeros); set the size explicitly.
    await handle.truncate(size)
    await handle.sync()
  } finally {
    await handle.close()
  }
}

function checkThreshold(v: unknown): asserts v is number | undefined {
  if (v !== undefined && (typeof v !== 'number' || !(v >= 0))) {
    throw new TypeError(`saveModel: externalDataThreshold must be a non-negative number of bytes, got ${String(v)}`)
  }
}

function dataFileName(modelFile: string, name: string | undefined): string {
  const base = path.basename(modelFile)
  const chosen = name ?? `${base}.data`
  const problem = locationProblem(chosen) ?? (/[\\/]/.test(chosen) ? 'contains a path separator; expected a file name' : undefined)
  if (problem || chosen === base || chosen === '' || chosen === '.') {
    throw new TypeError(
      `saveModel: externalDataFile ${JSON.stringify(chosen)} ${problem ?? 'must differ from the model file'}; ` +
        'it is written beside the model',
    )
  }
  return chosen
}

/**
 * Writes `model` as an ONNX file at `path`, large tensors in an external data file beside it
 * (see SaveOptions), atomically. Without a path, returns the ModelProto bytes.
 */
export function saveModel(model: Model): Promise<Uint8Array>
export function saveModel(model: Model, path: string, opts?: SaveOptions): Promise<void>
export function saveModel(model: Model, path?: string, opts?: SaveOptions): Promise<Uint8Array | void>
export async function saveModel(model: Model, file?: string, opts: SaveOptions = {}): Promise<Uint8Array | void> {
  checkThreshold(opts.externalDataThreshold)
  if (file === undefined) {
    if (opts.externalDataThreshold !== undefined || opts.externalDataFile !== undefined) {
      throw new TypeError('saveModel: external data needs a path to write beside; pass one, or omit externalDataThreshold/externalDataFile')
    }
    return modelToBytes(model)
  }
  const target = path.resolve(file)
  const dir = path.dirname(target)
  const dataName = dataFileName(target, opts.externalDataFile)
  const tensors = modelTensors(model)
  const threshold =
    opts.externalDataThreshold ?? (totalTensorBytes(tensors) > AUTO_EXTERNAL_TOTAL ? AUTO_EXTERNAL_THRESHOLD : Infinity)
  const plan = planExternalData(tensors, threshold, dataName)
  const bytes = encode(modelToProto(model, plan.placement), target)

  const staging = await fs.promises.mkdtemp(path.join(dir, `.${path.basename(target)}.staging-`))
  try {
    const [stagedData, stagedModel] = [path.join(staging, 'data'), path.join(staging, 'model')]
    if (plan.writes.length > 0) await writeFile(stagedData, plan.writes, plan.size)
    await writeFile(stagedModel, [{ bytes, offset: 0 }], bytes.length)
    if (plan.writes.length > 0) await fs.promises.rename(stagedData, path.join(dir, dataName))
    await fs.promises.rename(stagedModel, target)
  } finally {
    await fs.promises.rm(staging, { recursive: true, force: true })
  }
}
