// Latency, accuracy and size of the tiny transformer (__test__/fixtures/tiny-transformer.onnx) in
// FP32 and after quantizeDynamic, in onnxruntime-node, all variants in one run (the figures in
// docs/dynamic.md). Needs a built package (npm run build). Dev-time evidence, not a test.
//
//   node scripts/transformer/measure-dynamic.mjs [--threads 1] [--reps 200]
//
// Each variant gets its own session (default graph optimisations, intra-op threads as given);
// batch 1 and batch 64 are timed in interleaved rounds after a warm-up, and the median is reported.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from '../../__test__/helpers/mnist.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { quantizeDynamic, modelToBytes } = require(join(root, 'dist', 'index.js'))

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
const threads = arg('threads', 1)
const reps = arg('reps', 200)
const fixture = join(root, '__test__', 'fixtures', 'tiny-transformer.onnx')

const variants = [['FP32', null]]
for (const v of [
  ['dynamic fused (DynamicQuantizeMatMul), per-channel', { format: 'fused' }],
  ['dynamic standard (DQL + MatMulInteger), per-channel', { format: 'standard' }],
  ['dynamic fused, per-tensor', { format: 'fused', perChannel: false }],
  ['dynamic standard, per-tensor', { format: 'standard', perChannel: false }],
]) variants.push(v)

const { images, labels, count } = loadMnist({ split: 'test' })
const rows = []
for (const [name, opts] of variants) {
  const bytes = opts ? modelToBytes((await quantizeDynamic(fixture, opts)).model) : readFileSync(fixture)
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1 })
  let correct = 0
  for (let i = 0; i < count; i += 250) {
    const m = Math.min(250, count - i)
    const logits = (await session.run({ input: new ort.Tensor('float32', images.subarray(i * 784, (i + m) * 784), [m, 28, 28]) })).logits.data
    for (let r = 0; r < m; r++) {
      let best = 0
      for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c
      if (best === labels[i + r]) correct++
    }
  }
  rows.push({ name, session, bytes: bytes.length, accuracy: correct / count, times: { 1: [], 64: [] } })
}

const feeds = {
  1: { input: new ort.Tensor('float32', images.slice(0, 784), [1, 28, 28]) },
  64: { input: new ort.Tensor('float32', images.slice(0, 64 * 784), [64, 28, 28]) },
}
for (let round = -20; round < reps; round++) {
  for (const row of rows) {
    for (const b of [1, 64]) {
      const t0 = process.hrtime.bigint()
      await row.session.run(feeds[b])
      const dt = Number(process.hrtime.bigint() - t0) / 1e6
      if (round >= 0 && (b === 1 || round % 4 === 0)) row.times[b].push(dt)
    }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1]
const fp = rows[0]
console.log(`onnxruntime-node ${require('onnxruntime-node/package.json').version}, ${threads} intra-op thread(s), node ${process.version}`)
console.log('| variant | accuracy | file bytes | size vs FP32 | batch 1 (ms) | vs FP32 | batch 64 (ms) | vs FP32 |')
console.log('|---|---|---|---|---|---|---|---|')
for (const r of rows) {
  const [m1, m64] = [median(r.times[1]), median(r.times[64])]
  const [f1, f64] = [median(fp.times[1]), median(fp.times[64])]
  console.log(`| ${r.name} | ${(r.accuracy * 100).toFixed(2)} % | ${r.bytes} | ${((r.bytes / fp.bytes) * 100).toFixed(1)} % | ${m1.toFixed(3)} | ${(m1 / f1).toFixed(2)}× | ${m64.toFixed(2)} | ${(m64 / f64).toFixed(2)}× |`)
  await r.session.release()
}
