// Blockwise and LPBQ weights (sim.setBlockwise, sim.setLpbq; src/sim/blockwise.ts) against an
// independent per-block min-max, against aimet-onnx 2.42's own files (fixtures/golden/blockwise/,
// written by scripts/golden/aimet_blockwise.py), and through export → ONNX Runtime → loadEncodings.
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, QuantSimError, computeEncoding, parseNpyHeader } = require('../dist/index.js')
const { npyElements } = require('../dist/data/npy.js')

const here = dirname(fileURLToPath(import.meta.url))
const P = join(here, 'fixtures', 'golden', 'parity')
const B = join(here, 'fixtures', 'golden', 'blockwise')
const MNIST = join(here, 'fixtures', 'mnist-cnn.onnx')
const BLOCK = join(P, 'block.onnx')
const THREADS = { intraOpNumThreads: 1 }

function npy(path) {
  const b = new Uint8Array(readFileSync(path))
  const h = parseNpyHeader(b, b.length, path)
  return { data: npyElements(h, b.subarray(h.dataOffset)), dims: h.shape }
}
function firstBatch(file, input) {
  const c = npy(join(P, file))
  const per = c.data.length / c.dims[0]
  return { [input]: { data: c.data.slice(0, 32 * per), dims: [32, ...c.dims.slice(1)] } }
}
const mnistBatch = () => firstBatch('mnist-calib.npy', 'input')
const blockBatch = () => firstBatch('block-calib.npy', 'x')
const aimet = (name) => JSON.parse(readFileSync(join(B, name), 'utf8'))
const paramsOf = (file) => new Map(file.param_encodings.map((e) => [e.name, e]))

// The calls scripts/golden/aimet_blockwise.py makes, in quantkit's terms (quantkit matches ONNX
// op types: the block's projections are MatMul, which aimet-onnx's connected graph calls Gemm).
async function mnistSim(kind, opts = {}) {
  const sim = await QuantSim.create(MNIST, { ...THREADS, ...opts })
  const set = (o) => (kind === 'lpbq' ? sim.setLpbq({ ...o, decompressedBitwidth: 8 }) : sim.setBlockwise(o))
  set({ opTypes: ['Gemm'], bitwidth: 4, blockSize: 32 })
  set({ opTypes: ['Conv'], bitwidth: 4, blockSize: 8 })
  return sim
}
async function blockSim(kind) {
  const sim = await QuantSim.create(BLOCK, THREADS)
  if (kind === 'lpbq') sim.setLpbq({ opTypes: ['MatMul'], bitwidth: 4, decompressedBitwidth: 8, blockSize: 16 })
  else sim.setBlockwise({ opTypes: ['MatMul'], bitwidth: 4, blockSize: 16 })
  return sim
}

/** Independent per-block symmetric min-max: block b of channel c, in AIMET's (compact) layout. */
function referenceBlocks(w, dims, channelAxis, blockSize, bitwidth) {
  const [d0, d1] = dims
  const inner = w.length / (d0 * d1)
  const C = dims[channelAxis]
  const nb = dims[1 - channelAxis] / blockSize
  const out = []
  for (let i = 0; i < C * nb; i++) {
    const c = channelAxis === 0 ? Math.floor(i / nb) : i % C
    const b = channelAxis === 0 ? i % nb : Math.floor(i / C)
    let min = Infinity
    let max = -Infinity
    for (let k = b * blockSize; k < (b + 1) * blockSize; k++) {
      const [i0, i1] = channelAxis === 0 ? [c, k] : [k, c]
      for (let r = 0; r < inner; r++) {
        const v = w[(i0 * d1 + i1) * inner + r]
        min = Math.min(min, v)
        max = Math.max(max, v)
      }
    }
    out.push(computeEncoding({ min, max }, { bitwidth, symmetric: true }))
  }
  return out
}

async function runFile(path, feeds) {
  const s = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'disabled', intraOpNumThreads: 1 })
  const out = await s.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)])))
  await s.release()
  return out
}
function sqnr(ref, y) {
  let s = 0
  let e = 0
  for (let i = 0; i < ref.length; i++) { s += ref[i] ** 2; e += (ref[i] - y[i]) ** 2 }
  return e === 0 ? Infinity : 10 * Math.log10(s / e)
}
const weightQ = (sim, t) => sim.quantizers.find((q) => q.tensor === t && q.kind === 'param')

for (const [model, make, batch, tensors] of [
  ['mnist-cnn', mnistSim, mnistBatch, [['fc1.weight', 0, 32], ['fc2.weight', 0, 32], ['conv2.weight', 0, 8]]],
  ['block', blockSim, blockBatch, [['onnx::MatMul_46', 1, 16], ['onnx::MatMul_50', 1, 16], ['onnx::MatMul_51', 1, 16]]],
]) {
  test(`${model}: blockwise int4 — per-block min-max, AIMET's file, QDQ export equals the sim bit for bit`, async (t) => {
    const sim = await make('blockwise')
    const feeds = batch()
    await sim.computeEncodings([feeds])
    const file = paramsOf(aimet(`${model}.blockwise.encodings`))
    for (const [name, channelAxis, bs] of tensors) {
      const q = weightQ(sim, name)
      const w = sim.model.graph.initializers.get(name)
      t.is(q.spec.blockSize, bs)
      t.is(q.spec.axis, 1 - channelAxis, `${name}: axis is the block axis`)
      const ref = referenceBlocks(w.data, w.dims, channelAxis, bs, 4)
      t.deepEqual(q.encodings.map((e) => [e.scale, e.offset, e.qmin, e.qmax]), ref.map((e) => [e.scale, e.offset, e.qmin, e.qmax]), `${name}: per-block encodings`)
      // AIMET's 1.0.0 entry lists the same blocks channel by channel.
      const a = file.get(name)
      t.is(a.enc_type, 'PER_BLOCK')
      t.is(a.block_size, bs)
      t.is(a.scale.length, ref.length)
    }
    const dir = mkdtempSync(join(tmpdir(), 'qk-bw-'))
    try {
      const r = await sim.export(dir, 'm')
      t.is(r.qdq.opset, 21)
      const ours = JSON.parse(readFileSync(join(dir, 'm.encodings'), 'utf8'))
      const mine = paramsOf(ours)
      for (const [name, a] of file) {
        const o = mine.get(name)
        t.deepEqual(Object.keys(o), Object.keys(a), `${name}: same keys as aimet-onnx`)
        t.is(o.enc_type, a.enc_type)
        t.deepEqual(o.offset, a.offset)
        for (let i = 0; i < a.scale.length; i++) t.true(Math.abs(o.scale[i] - a.scale[i]) <= 1e-6 * a.scale[i], `${name}[${i}]: ${o.scale[i]} vs AIMET ${a.scale[i]}`)
      }
      const sim1 = await sim.run(feeds)
      const qdq = await runFile(join(dir, 'm.qdq.onnx'), feeds)
      for (const k of Object.keys(sim1)) t.deepEqual(Array.from(qdq[k].data), Array.from(sim1[k].data), `${k}: QDQ equals the sim`)
      // And back: the exported file loaded into a fresh sim simulates identically.
      const again = await QuantSim.create(model === 'block' ? BLOCK : MNIST, THREADS)
      await again.loadEncodings(join(dir, 'm.encodings'))
      for (const [name] of tensors) t.deepEqual(weightQ(again, name).encodings.map((e) => e.scale), weightQ(sim, name).encodings.map((e) => e.scale))
      const out2 = await again.run(feeds)
      for (const k of Object.keys(sim1)) t.deepEqual(Array.from(out2[k].data), Array.from(sim1[k].data))
      await again.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await sim.close()
    }
  })

  test(`${model}: LPBQ — block scale = channel scale × int scale, AIMET's numbers, export/import round trip`, async (t) => {
    const sim = await make('lpbq')
    const feeds = batch()
    await sim.computeEncodings([feeds])
    const file = paramsOf(aimet(`${model}.lpbq.encodings`))
    for (const [name, channelAxis, bs] of tensors) {
      const q = weightQ(sim, name)
      const w = sim.model.graph.initializers.get(name)
      const { channelScales, intScales } = q.lpbqScales
      const C = w.dims[channelAxis]
      const nb = w.dims[1 - channelAxis] / bs
      t.is(channelScales.length, C)
      t.is(intScales.length, C * nb)
      q.encodings.forEach((e, i) => {
        const c = channelAxis === 0 ? Math.floor(i / nb) : i % C
        t.is(e.scale, Math.fround(channelScales[c] * intScales[i]))
        t.true(Number.isInteger(intScales[i]) && intScales[i] >= 1 && intScales[i] <= 16)
      })
      // Each channel's largest block gets 2^(8−4) = 16, as in aimet-onnx's grouped_dynamic_quantize.
      for (let c = 0; c < C; c++) {
        const ints = intScales.filter((_, i) => (channelAxis === 0 ? Math.floor(i / nb) : i % C) === c)
        t.is(Math.max(...ints), 16)
      }
      // The blocks come from the same per-block min-max as blockwise: p = max s / 16, i = round(s / p).
      const ref = referenceBlocks(w.data, w.dims, channelAxis, bs, 4)
      ref.forEach((e, i) => {
        const c = channelAxis === 0 ? Math.floor(i / nb) : i % C
        const n = Math.min(16, Math.max(1, Math.round(e.scale / channelScales[c])))
        t.is(intScales[i], n)
      })
      const a = file.get(name)
      t.is(a.enc_type, 'LPBQ')
    }
    const dir = mkdtempSync(join(tmpdir(), 'qk-lpbq-'))
    try {
      await sim.export(dir, 'm')
      const mine = paramsOf(JSON.parse(readFileSync(join(dir, 'm.encodings'), 'utf8')))
      for (const [name, a] of file) {
        const o = mine.get(name)
        t.deepEqual(Object.keys(o), Object.keys(a), `${name}: same keys as aimet-onnx`)
        t.deepEqual([o.enc_type, o.bw, o.compressed_bw, o.block_size, o.is_sym], [a.enc_type, a.bw, a.compressed_bw, a.block_size, a.is_sym])
        t.deepEqual(o.offset, a.offset)
        if (a.per_block_int_scale) t.deepEqual(o.per_block_int_scale, a.per_block_int_scale, `${name}: integer scales equal AIMET's`)
        for (let i = 0; i < a.scale.length; i++) t.true(Math.abs(o.scale[i] - a.scale[i]) <= 1e-6 * a.scale[i], `${name}[${i}]: ${o.scale[i]} vs AIMET ${a.scale[i]}`)
      }
      const sim1 = await sim.run(feeds)
      const qdq = await runFile(join(dir, 'm.qdq.onnx'), feeds)
      for (const k of Object.keys(sim1)) t.deepEqual(Array.from(qdq[k].data), Array.from(sim1[k].data), `${k}: QDQ equals the sim`)
      for (const version of ['1.0.0', '2.0.0']) {
        await sim.export(dir, `v${version}`, { formats: ['encodings'], encodingVersion: version })
        const again = await QuantSim.create(model === 'block' ? BLOCK : MNIST, THREADS)
        const r = await again.loadEncodings(join(dir, `v${version}.encodings`), { partial: version === '2.0.0' })
        if (version === '2.0.0') await again.computeEncodings([feeds])
        t.true(r.loaded.length > 0)
        for (const [name] of tensors) {
          const q0 = weightQ(sim, name)
          const q1 = weightQ(again, name)
          t.deepEqual(q1.spec.lpbq, { decompressedBitwidth: 8 }, `${version} ${name}`)
          t.deepEqual(q1.lpbqScales, q0.lpbqScales, `${version} ${name}: LPBQ scales round-trip`)
          t.deepEqual(q1.encodings.map((e) => e.scale), q0.encodings.map((e) => e.scale))
        }
        const out2 = await again.run(feeds)
        for (const k of Object.keys(sim1)) t.deepEqual(Array.from(out2[k].data), Array.from(sim1[k].data), `${version}: same simulation after loading`)
        await again.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
      await sim.close()
    }
  })

  test(`${model}: AIMET-written blockwise and LPBQ files load with their structure`, async (t) => {
    const feeds = batch()
    for (const kind of ['blockwise', 'lpbq']) {
      const files = [`${model}.${kind}.encodings`, ...(model === 'block' ? [`${model}.${kind}.v200.encodings`] : [])]
      for (const f of files) {
        const sim = await QuantSim.create(model === 'block' ? BLOCK : MNIST, THREADS)
        const r = await sim.loadEncodings(join(B, f), { partial: f.includes('v200'), strict: !f.includes('v200') })
        if (f.includes('v200')) await sim.computeEncodings([feeds])
        for (const [name, channelAxis, bs] of tensors) {
          const q = weightQ(sim, name)
          t.is(q.spec.blockSize, bs, `${f} ${name}`)
          t.is(q.spec.axis, 1 - channelAxis)
          t.is(q.spec.bitwidth, 4)
          t.is(Boolean(q.spec.lpbq), kind === 'lpbq')
          if (kind === 'lpbq') q.encodings.forEach((e, i) => t.true(e.scale > 0 && q.lpbqScales.intScales[i] <= 16))
        }
        const out = Object.values(await sim.run(feeds))[0].data
        const ref = npy(join(B, `${model}.${kind}.aimet-output.npy`)).data
        const db = sqnr(ref, out)
        t.log(`${f}: ${r.loaded.length} tensors loaded; quantkit's simulation vs AIMET's output: ${db.toFixed(1)} dB`)
        // Measured: identical (∞ dB) for all six files; the bound leaves room for ORT versions.
        t.true(db > 60, `${f}: ${db.toFixed(1)} dB`)
        await sim.close()
      }
    }
  })
}

test('MNIST accuracy with int4 blockwise and LPBQ Gemm weights (W4 blocks of 32, A8)', async (t) => {
  const train = loadMnist({ split: 'train', count: 256 })
  const testSet = loadMnist({ split: 'test' })
  const calib = [{ input: { data: train.images, dims: train.dims } }]
  const accuracy = async (run) => {
    let ok = 0
    for (let i = 0; i < testSet.count; i += 500) {
      const n = Math.min(500, testSet.count - i)
      const out = await run({ input: { data: testSet.images.subarray(i * 784, (i + n) * 784), dims: [n, 1, 28, 28] } })
      const logits = Object.values(out)[0].data
      for (let k = 0; k < n; k++) {
        let best = 0
        for (let c = 1; c < 10; c++) if (logits[k * 10 + c] > logits[k * 10 + best]) best = c
        if (best === testSet.labels[i + k]) ok++
      }
    }
    return ok / testSet.count
  }
  const fp = await ort.InferenceSession.create(MNIST, { intraOpNumThreads: 1 })
  const fp32 = await accuracy(async (f) => fp.run({ input: new ort.Tensor('float32', f.input.data, f.input.dims) }))
  await fp.release()
  const results = { fp32 }
  for (const kind of ['w8', 'blockwise', 'lpbq']) {
    const sim = await QuantSim.create(MNIST, THREADS)
    if (kind === 'blockwise') sim.setBlockwise({ opTypes: ['Gemm'], bitwidth: 4, blockSize: 32 })
    if (kind === 'lpbq') sim.setLpbq({ opTypes: ['Gemm'], bitwidth: 4, decompressedBitwidth: 8, blockSize: 32 })
    await sim.computeEncodings(calib)
    results[kind] = await accuracy((f) => sim.run(f))
    await sim.close()
  }
  t.log(Object.entries(results).map(([k, v]) => `${k} ${(v * 100).toFixed(2)} %`).join(', '))
  t.true(results.blockwise >= fp32 - 0.01)
  t.true(results.lpbq >= fp32 - 0.01)
})

test('setBlockwise / setLpbq: AIMET\'s strict, exclusions, argument checks', async (t) => {
  const sim = await QuantSim.create(MNIST, THREADS)
  t.throws(() => sim.setBlockwise({ opTypes: ['Conv'], bitwidth: 4, blockSize: 8, strict: true }), { instanceOf: QuantSimError, message: /conv1\.weight.*block size 8 does not divide/ })
  const r = sim.setBlockwise({ opTypes: ['Gemm'], bitwidth: 4, blockSize: 32, nodesToExclude: ['/fc2/Gemm'] })
  t.deepEqual(r.tensors, ['fc1.weight'])
  t.is(weightQ(sim, 'fc2.weight').spec.blockSize, undefined)
  t.throws(() => sim.setLpbq({ bitwidth: 4, decompressedBitwidth: 4, blockSize: 32 }), { instanceOf: RangeError, message: /decompressedBitwidth/ })
  t.throws(() => sim.setBlockwise({ bitwidth: 4, blockSize: 0 }), { instanceOf: RangeError, message: /blockSize/ })
  // Back to per-channel.
  sim.setQuantizer('fc1.weight', { perChannel: true, bitwidth: 8 })
  t.is(weightQ(sim, 'fc1.weight').spec.blockSize, undefined)
  t.is(weightQ(sim, 'fc1.weight').spec.axis, 0)
  await sim.close()
})
