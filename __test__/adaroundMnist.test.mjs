// MNIST CNN at W4A8 (per-channel 4-bit weights, 8-bit activations), in aimet's documented order
// (QuantSim → applyAdaround → computeEncodings): AdaRound (500 iterations, 256 training digits)
// must win back at least half of what plain min-max with round-to-nearest loses against the float
// model (issue 8), top-1 on the 2,000 held-out digits; FP32 accuracy from ONNX Runtime on the
// float model. Figures for the notes (docs/adaround.md).
//
// The drop is 8 digits, so one run's recovery moves in steps of 12.5 %: over mini-batch seeds 0–7
// it ranged 50–100 % (seed 0: 62 %). A run is bit-identical across thread counts and reruns, but
// another CPU (AVX2 instead of AVX-512 kernels) rounds differently, which acts like another seed.
// So the claim is checked on the digits recovered by four seeds together (each run must not lose
// to round-to-nearest), in whole digits, not in float fractions.
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
  const correct = async (sim) => Math.round((await mnistAccuracy((f) => sim.run(f), testSet)) * testSet.count)
  const okFp32 = Math.round(accFp32 * testSet.count)
  const opts = { intraOpNumThreads: 1, paramBitwidth: 4, activationBitwidth: 8 }
  const plain = await QuantSim.create(MODEL, opts)
  await plain.computeEncodings(calib)
  const okPlain = await correct(plain)
  t.true(okPlain < okFp32, 'plain W4A8 loses accuracy (else there is nothing to recover)')
  const pct = (ok) => `${(ok / testSet.count * 100).toFixed(2)} %`
  let recovered = 0
  const SEEDS = [0, 1, 2, 3]
  for (const seed of SEEDS) {
    const ada = await QuantSim.create(MODEL, opts)
    const report = await applyAdaround(ada, calib, { numIterations: 500, seed })
    await ada.computeEncodings(calib) // activations see the AdaRounded weights; weight encodings stay frozen
    const okAda = await correct(ada)
    if (seed === 0) for (const l of report.layers) t.log(`${l.node} (${l.opType}, ${l.activation}): loss ${l.lossNearest.toExponential(3)} → ${l.lossAdaround.toExponential(3)}, ${l.flips}/${l.weights} flips, ${l.ms.toFixed(0)} ms`)
    t.log(`seed ${seed}: top-1 FP32 ${pct(okFp32)}, W4A8 round-to-nearest ${pct(okPlain)}, AdaRound ${pct(okAda)}: ${okAda - okPlain} of ${okFp32 - okPlain} digits recovered (${(report.ms / 1000).toFixed(1)} s, ${report.layers.length} layers)`)
    t.true(report.layers.length >= 2)
    for (const l of report.layers) t.true(l.lossAdaround <= l.lossNearest * 1.01, `${l.node}: ${l.lossAdaround} > ${l.lossNearest}`)
    t.true(okAda >= okPlain, `seed ${seed}: AdaRound ${okAda} correct < round-to-nearest ${okPlain}`)
    recovered += okAda - okPlain
    await ada.close()
  }
  const lost = SEEDS.length * (okFp32 - okPlain)
  t.log(`recovered ${recovered} of ${lost} digits over ${SEEDS.length} seeds (${(recovered / lost * 100).toFixed(0)} %)`)
  t.true(2 * recovered >= lost, `AdaRound recovers ${recovered} of ${lost} digits lost (seeds ${SEEDS.join(', ')}), less than half`)
  await plain.close()
})
