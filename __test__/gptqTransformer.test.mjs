// GPTQ against round-to-nearest on the tiny MNIST transformer (__test__/fixtures/tiny-transformer.onnx,
// see scripts/transformer/README.md): int4, block 32, symmetric, MatMulNBits; GPTQ calibrated on
// the first 256 training digits (one batch [256, 28, 28]). Held-out accuracy on the 2,000 test
// digits in onnxruntime-node, and the logits' SQNR against FP32 over the same digits.
// Asserts: GPTQ's accuracy ≥ RTN's − 0.1 points; every layer's output error on the calibration
// rows (‖X(W − Ŵ)‖²/n, computed in Rust from H) below RTN's; FP32 SQNR of GPTQ's logits ≥ RTN's.
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
const CALIBRATION_DIGITS = 256

async function logitsOf(bytes, images, n) {
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 })
  try {
    const out = new Float32Array(n * 10)
    const batch = 250
    for (let i = 0; i < n; i += batch) {
      const m = Math.min(batch, n - i)
      const input = new ort.Tensor('float32', images.subarray(i * 784, (i + m) * 784), [m, 28, 28])
      out.set((await session.run({ input })).logits.data, i * 10)
    }
    return out
  } finally {
    await session.release()
  }
}

function accuracy(logits, labels) {
  let correct = 0
  for (let r = 0; r < labels.length; r++) {
    let best = 0
    for (let c = 1; c < 10; c++) if (logits[r * 10 + c] > logits[r * 10 + best]) best = c
    if (best === labels[r]) correct++
  }
  return correct / labels.length
}

function sqnrDb(ref, x) {
  let s = 0
  let e = 0
  for (let i = 0; i < ref.length; i++) {
    s += ref[i] ** 2
    e += (ref[i] - x[i]) ** 2
  }
  return 10 * Math.log10(s / e)
}

test('int4 block 32: GPTQ (256 calibration digits) keeps accuracy ≥ RTN − 0.1 points and lowers every layer\'s output error', async (t) => {
  const test_ = loadMnist({ split: 'test' })
  const calib = loadMnist({ split: 'train', count: CALIBRATION_DIGITS })
  const data = [{ input: { type: 'float32', data: calib.images, dims: [CALIBRATION_DIGITS, 28, 28] } }]
  const fp32 = await logitsOf(readFileSync(FIXTURE), test_.images, test_.count)
  const opts = { bits: 4, blockSize: 32, symmetric: true }
  const rtn = await quantizeWeights(FIXTURE, opts)
  const started = performance.now()
  const gptq = await quantizeWeights(FIXTURE, { ...opts, algorithm: 'gptq', data })
  const gptqMs = performance.now() - started
  const [lr, lg] = [await logitsOf(modelToBytes(rtn.model), test_.images, test_.count), await logitsOf(modelToBytes(gptq.model), test_.images, test_.count)]
  const acc = { fp32: accuracy(fp32, test_.labels), rtn: accuracy(lr, test_.labels), gptq: accuracy(lg, test_.labels) }
  const sqnr = { rtn: sqnrDb(fp32, lr), gptq: sqnrDb(fp32, lg) }
  const rows = [
    `FP32 ${(acc.fp32 * 100).toFixed(2)} %; RTN ${(acc.rtn * 100).toFixed(2)} % (logits SQNR ${sqnr.rtn.toFixed(2)} dB); GPTQ ${(acc.gptq * 100).toFixed(2)} % (logits SQNR ${sqnr.gptq.toFixed(2)} dB)`,
    `quantizeWeights with GPTQ: ${gptqMs.toFixed(0)} ms in all (tap + Hessians + solves); per layer:`,
  ]
  t.is(gptq.report.layers.length, 14)
  for (const l of gptq.report.layers) {
    const g = l.gptq
    rows.push(`  ${l.node} [${l.shape}]: solve ${g.solveMs.toFixed(2)} ms, output error RTN ${g.outputErrorRtn.toExponential(3)} → GPTQ ${g.outputError.toExponential(3)} ` +
      `(${(g.outputErrorRtn / g.outputError).toFixed(1)}×), rows ${g.rows}, dead inputs ${g.deadInputs}`)
    t.true(g.outputError < g.outputErrorRtn, `${l.node}: ${g.outputError} vs RTN ${g.outputErrorRtn}`)
  }
  t.log(rows.join('\n'))
  t.true(acc.gptq >= acc.rtn - 0.001, `GPTQ ${acc.gptq} vs RTN ${acc.rtn}`)
  t.true(sqnr.gptq >= sqnr.rtn, `logits SQNR GPTQ ${sqnr.gptq} vs RTN ${sqnr.rtn}`)
  t.true(Math.abs(acc.gptq - acc.fp32) <= 0.01, 'issue 10: int4 block 32 within 1 point of FP32')
})
