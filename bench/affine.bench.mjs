// One benchmark process: affine kernels and the histogram observer against a plain copy of the
// same bytes, and against onnxruntime-node's QuantizeLinear → DequantizeLinear, all measured in
// this run. Thread counts come from the environment (RAYON_NUM_THREADS for quantkit; the
// ORT_THREADS variable for onnxruntime). Prints one JSON object on stdout.
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { affine, HistogramObserver } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')
const ort = require('onnxruntime-node')

const N = Number(process.env.BENCH_N ?? 64 * 1024 * 1024)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const ortThreads = Number(process.env.ORT_THREADS ?? 1)

// Outputs of allocating calls are dropped before the next repeat (run with --expose-gc).
const gc = globalThis.gc ?? (() => {})

function best(fn) {
  let bestMs = Infinity
  for (let i = 0; i < REPEATS; i++) {
    gc()
    const t0 = process.hrtime.bigint()
    fn()
    bestMs = Math.min(bestMs, Number(process.hrtime.bigint() - t0) / 1e6)
  }
  return bestMs
}

async function bestAsync(fn) {
  let bestMs = Infinity
  for (let i = 0; i < REPEATS; i++) {
    gc()
    const t0 = process.hrtime.bigint()
    await fn()
    bestMs = Math.min(bestMs, Number(process.hrtime.bigint() - t0) / 1e6)
  }
  return bestMs
}

const x = new Float32Array(N)
let seed = 1
for (let i = 0; i < N; i++) {
  seed = (seed * 1103515245 + 12345) >>> 0
  x[i] = (seed / 4294967296 - 0.5) * 8
}
const bytes = N * 4
const gbps = (ms) => bytes / (ms / 1000) / 1e9

// A copy into a preallocated array (memcpy) and an allocate-and-copy (what a kernel that returns
// a fresh array has to beat).
const dst = new Float32Array(N)
const copyMs = best(() => dst.set(x))
const sliceMs = best(() => x.slice())

const scale = 8 / 255
// Like for like: a kernel writing into a preallocated array against a copy into one.
const out = new Float32Array(N)
const qdqIntoMs = best(() => affine.quantizeDequantize(x, scale, -128, 0, 255, { out }))
const work = x.slice()
const qdqInPlaceMs = best(() => affine.quantizeDequantize(work, scale, -128, 0, 255, { out: work }))
// Allocating forms against an allocating copy (fresh pages cost page faults on both sides).
const qdqMs = best(() => affine.quantizeDequantize(x, scale, -128, 0, 255))
const quantizeMs = best(() => affine.quantize(x, scale, -128, 0, 255))
const q = affine.quantize(x, scale, -128, 0, 255)
const dequantizeMs = best(() => affine.dequantize(q, scale, -128))

// Per-channel int8 weights-like layout: 4096 channels on axis 0; per-block int4, blocks of 32.
const C = 4096
const chScales = new Float32Array(C).fill(scale)
const qdqChannelMs = best(() => affine.quantizeDequantize(x, chScales, 0, -128, 127, { shape: [C, N / C], axis: 0, out }))
const blockScales = new Float32Array(N / 32).fill(scale * 16)
const qdqBlockMs = best(() => affine.quantizeDequantize(x, blockScales, 0, -8, 7, { shape: [C, N / C], axis: 1, blockSize: 32, out }))

const hist = new HistogramObserver({ bins: 2048 })
const histMs = best(() => hist.update(x))

// ONNX Runtime: x → QuantizeLinear(uint8) → DequantizeLinear → y, same scale and zero point.
const model = buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: [N] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: [N] }],
  initializers: [
    { name: 's', dataType: T.FLOAT, dims: [], data: Float32Array.of(scale) },
    { name: 'zp', dataType: T.UINT8, dims: [], data: Uint8Array.of(128) },
  ],
  nodes: [
    { opType: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q'] },
    { opType: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['y'] },
  ],
})
const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: ortThreads, interOpNumThreads: 1, graphOptimizationLevel: 'disabled', executionProviders: ['cpu'],
})
const feed = { x: new ort.Tensor('float32', x, [N]) }
const ortMs = await bestAsync(() => session.run(feed))
await session.release()

console.log(JSON.stringify({
  elements: N,
  rayonThreads: process.env.RAYON_NUM_THREADS ?? 'default',
  ortThreads,
  copyGBps: gbps(copyMs),
  allocCopyGBps: gbps(sliceMs),
  qdqIntoGBps: gbps(qdqIntoMs),
  qdqInPlaceGBps: gbps(qdqInPlaceMs),
  qdqGBps: gbps(qdqMs),
  quantizeGBps: gbps(quantizeMs),
  dequantizeGBps: gbps(dequantizeMs),
  qdqPerChannelGBps: gbps(qdqChannelMs),
  qdqPerBlockGBps: gbps(qdqBlockMs),
  histogramGBps: gbps(histMs),
  ortQdqGBps: gbps(ortMs),
  ratios: {
    qdqIntoVsCopy: copyMs / qdqIntoMs,
    qdqInPlaceVsCopy: copyMs / qdqInPlaceMs,
    qdqVsAllocCopy: sliceMs / qdqMs,
    quantizeVsAllocCopy: sliceMs / quantizeMs,
    qdqPerChannelVsCopy: copyMs / qdqChannelMs,
    qdqPerBlockInt4VsCopy: copyMs / qdqBlockMs,
    histogramVsCopy: copyMs / histMs,
    qdqSpeedupVsOrt: ortMs / qdqMs,
  },
}))
