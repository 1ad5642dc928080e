// MNIST CNN at W4A8 (per-channel 4-bit weights, 8-bit activations): AdaRound (500 iterations,
// 256 training digits) against plain min-max with round-to-nearest, top-1 on the 2,000 held-out
// digits. Figures for the notes (docs/adaround.md).
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { loadMnist, mnistAccuracy, mnistBatch } from './helpers/mnist.mjs'
const require = createRequire(import.meta.url)
const { QuantSim, applyAdaround } = require('../dist/index.js')

const MODEL = join(dirname(new URL(import.meta.url).pathname), 'fixtures', 'mnist-cnn.onnx')

test('MNIST CNN W4A8: AdaRound accuracy ≥ round-to-nearest', async (t) => {
  const testSet = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 256 })
  const calib = Array.from({ length: 4 }, (_, b) => mnistBatch(train, b * 64, 64))
  const accuracy = (sim) => mnistAccuracy((f) => sim.run(f), testSet)
  const opts = { intraOpNumThreads: 1, paramBitwidth: 4, activationBitwidth: 8 }
  const plain = await QuantSim.create(MODEL, opts)
  await plain.computeEncodings(calib)
  const accPlain = await accuracy(plain)
  const ada = await QuantSim.create(MODEL, opts)
  await ada.computeEncodings(calib)
  const report = await applyAdaround(ada, calib, { numIterations: 500 })
  await ada.computeEncodings(calib) // activations see the AdaRounded weights; weight encodings stay frozen
  const accAda = await accuracy(ada)
  for (const l of report.layers) t.log(`${l.node} (${l.opType}, ${l.activation}): loss ${l.lossNearest.toExponential(3)} → ${l.lossAdaround.toExponential(3)}, ${l.flips}/${l.weights} flips, ${l.ms.toFixed(0)} ms`)
  t.log(`W4A8 top-1: round-to-nearest ${(accPlain * 100).toFixed(2)} %, AdaRound ${(accAda * 100).toFixed(2)} % (${(report.ms / 1000).toFixed(1)} s, ${report.layers.length} layers)`)
  t.true(report.layers.length >= 2)
  for (const l of report.layers) t.true(l.lossAdaround <= l.lossNearest * 1.01, `${l.node}: ${l.lossAdaround} > ${l.lossNearest}`)
  t.true(accAda >= accPlain, `AdaRound ${accAda} < nearest ${accPlain}`)
  await plain.close()
  await ada.close()
})
