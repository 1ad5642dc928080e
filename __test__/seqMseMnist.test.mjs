// MNIST CNN at W4A8 (per-channel 4-bit weights, 8-bit activations): SeqMSE before
// computeEncodings against plain min-max, top-1 on the 2,000 held-out digits. Figures for the notes.
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { loadMnist, mnistAccuracy, mnistBatch } from './helpers/mnist.mjs'
const require = createRequire(import.meta.url)
const { QuantSim, applySeqMse, applyBiasCorrection } = require('../dist/index.js')

const MODEL = join(dirname(new URL(import.meta.url).pathname), 'fixtures', 'mnist-cnn.onnx')

test('MNIST CNN W4A8: SeqMSE accuracy ≥ plain min-max', async (t) => {
  const testSet = loadMnist({ split: 'test' })
  const train = loadMnist({ split: 'train', count: 256 })
  const calib = Array.from({ length: 4 }, (_, b) => mnistBatch(train, b * 64, 64))
  const accuracy = (sim) => mnistAccuracy((f) => sim.run(f), testSet)
  const opts = { intraOpNumThreads: 1, paramBitwidth: 4, activationBitwidth: 8 }
  const plain = await QuantSim.create(MODEL, opts)
  await plain.computeEncodings(calib)
  const accPlain = await accuracy(plain)
  const seq = await QuantSim.create(MODEL, opts)
  const started = Date.now()
  const report = await applySeqMse(seq, calib, { numBatches: 4 })
  const seconds = (Date.now() - started) / 1000
  await seq.computeEncodings(calib)
  const accSeq = await accuracy(seq)
  const bc = await applyBiasCorrection(seq, calib, { numBatches: 4 })
  const accSeqBc = await accuracy(seq)
  for (const l of report.layers) t.log(`${l.node}: loss ${l.lossBefore.toExponential(3)} → ${l.lossAfter.toExponential(3)}, mean fraction ${(l.fractions.reduce((a, b) => a + b, 0) / l.fractions.length).toFixed(3)}`)
  t.log(`W4A8 top-1: plain ${(accPlain * 100).toFixed(2)} %, SeqMSE ${(accSeq * 100).toFixed(2)} % (${seconds.toFixed(1)} s, ${report.layers.length} layers), SeqMSE + bias correction ${(accSeqBc * 100).toFixed(2)} % (${bc.layers.length} layers)`)
  t.true(report.layers.length >= 2)
  for (const l of report.layers) t.true(l.lossAfter <= l.lossBefore)
  t.true(accSeq >= accPlain, `SeqMSE ${accSeq} < plain ${accPlain}`)
  await plain.close()
  await seq.close()
})
