// Weight-only quantization of the tiny MNIST transformer (__test__/fixtures/tiny-transformer.onnx,
// 2 pre-norm attention blocks, d_model 64; see fixtures/README.md): accuracy on the 2,000 held-out
// digits in onnxruntime-node against FP32, and file size. Int4 with block size 32 must stay within
// 1 point of FP32 (issue 10). Latency is measured by scripts/transformer/measure-weight-only.mjs
// (docs/weight-only.md), not here.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadMnist } from './helpers/mnist.mjs'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { quantizeWeights } = require('../dist/index.js')

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tiny-transformer.onnx')
const FP32_ACCURACY = 0.9725 // fixtures/README.md (train_transformer.py's ORT figure)

async function accuracy(bytes, images, labels, n) {
  // Default graph optimisations: what a user runs. One thread each way (2-core CI).
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  try {
    let correct = 0
    const batch = 250
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i)
      const input = new ort.Tensor('float32', images.subarray(i * 784, (i + m) * 784), [m, 28, 28])
      const logits = (await session.run({ input })).logits.data
      for (let r = 0; r < m; r++) {
        let best = 0
        for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c
        if (best === labels[i + r]) correct++
      }
    }
    return correct / n
  } finally {
    await session.release()
  }
}

test('int4 block 32 (MatMulNBits) keeps accuracy within 1 point of FP32; int8 too; files shrink', async (t) => {
  const { images, labels, count } = loadMnist({ split: 'test' })
  const fp32Bytes = readFileSync(FIXTURE)
  const fp32 = await accuracy(fp32Bytes, images, labels, count)
  t.is(fp32, FP32_ACCURACY, 'the fixture scores what its README records')
  const rows = [`FP32: accuracy ${(fp32 * 100).toFixed(2)} %, ${fp32Bytes.length} bytes`]
  for (const [bits, symmetric] of [[4, true], [4, false], [8, true]]) {
    const { model, report } = await quantizeWeights(FIXTURE, { bits, blockSize: 32, symmetric })
    t.is(report.layers.length, 14, '13 MatMuls with constant weights and the Gemm head')
    const bytes = modelToBytes(model)
    const acc = await accuracy(bytes, images, labels, count)
    const ratio = bytes.length / fp32Bytes.length
    rows.push(`int${bits} ${symmetric ? 'sym' : 'asym'} b32: accuracy ${(acc * 100).toFixed(2)} % (${((acc - fp32) * 100).toFixed(2)} points), ` +
      `${bytes.length} bytes (${(ratio * 100).toFixed(1)} % of FP32), weights ${report.totals.weightBytesBefore} → ${report.totals.weightBytesAfter} bytes, min SQNR ${report.totals.minSqnrDb.toFixed(1)} dB`)
    t.true(Math.abs(acc - fp32) <= 0.01, `int${bits}: ${acc} vs FP32 ${fp32}`)
    t.true(ratio < (bits === 4 ? 0.35 : 0.45), `file ratio ${ratio}`)
  }
  t.log(rows.join('\n'))
})
