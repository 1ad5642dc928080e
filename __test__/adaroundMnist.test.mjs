// MNIST CNN at W4A8 (per-channel 4-bit weights, 8-bit activations), in aimet's documented order
// (QuantSim → applyAdaround → computeEncodings): AdaRound (500 iterations, 256 training digits)
// must win back at least half of what plain min-max with round-to-nearest loses against the float
// model (issue 8), top-1 on the 2,000 held-out digits; FP32 accuracy from ONNX Runtime on the
// float model. Figures for the notes (docs/adaround.md).
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { loadMnist, mnistAccuracy, mnistBatch } from './helpers/mnist.mjs'
import { runModel } from './helpers/ort.mjs'
const require = createRequire(import.meta.url)
const { QuantSim, applyAdaround } = require('../dist/index.js')

const MODEL = join(dirname(new URL(import.meta.url).pathname), 'fixtures', 'mnist-cnn.onnx')

test('MNIST CNN W4A8: AdaRound recovers at least half of the plain W4A8 drop against FP32', async (t) => {
  const testSet = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 256 })
  const calib = Array.from({ length: 4 }, (_, b) => mnistBatch(train, b * 64, 64))
  const bytes = readFileSync(MODEL)
  const accFp32 = await mnistAccuracy((f) => runModel(bytes, { input: { type: 'float32', ...f.input } }), testSet)
  const accuracy = (sim) => mnistAccuracy((f) => sim.run(f), testSet)
  const opts = { intraOpNumThreads: 1, paramBitwidth: 4, activationBitwidth: 8 }
  const plain = await QuantSim.create(MODEL, opts)
  await plain.computeEncodings(calib)
  const accPlain = await accuracy(plain)
  const ada = await QuantSim.create(MODEL, opts)
  const report = await applyAdaround(ada, calib, { numIterations: 500 })
  await ada.computeEncodings(calib) // activations see the AdaRounded weights; weight encodings stay frozen
  const accAda = await accuracy(ada)
  for (const l of report.layers) t.log(`${l.node} (${l.opType}, ${l.activation}): loss ${l.lossNearest.toExponential(3)} → ${l.lossAdaround.toExponential(3)}, ${l.flips}/${l.weights} flips, ${l.ms.toFixed(0)} ms`)
  t.log(`top-1: FP32 ${(accFp32 * 100).toFixed(2)} %, W4A8 round-to-nearest ${(accPlain * 100).toFixed(2)} %, AdaRound ${(accAda * 100).toFixed(2)} % (${(report.ms / 1000).toFixed(1)} s, ${report.layers.length} layers)`)
  t.true(report.layers.length >= 2)
  t.true(accPlain < accFp32, 'plain W4A8 loses accuracy (else there is nothing to recover)')
  for (const l of report.layers) t.true(l.lossAdaround <= l.lossNearest * 1.01, `${l.node}: ${l.lossAdaround} > ${l.lossNearest}`)
  t.true(accAda - accPlain >= 0.5 * (accFp32 - accPlain), `AdaRound ${accAda} recovers less than half of the drop from ${accFp32} to ${accPlain}`)
  await plain.close()
  await ada.close()
})
