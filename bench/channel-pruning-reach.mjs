// How far channel pruning reaches on real models: which Convs it can prune, why the others are
// skipped (grouped by reason), and the costed-MAC ratio with every prunable layer at 0.5 (compressAll).
// Structure only: random feeds, 2 batches, 20 samples per layer. Writes bench/results/channel-pruning-reach.json.
// Run: npm run build && RAYON_NUM_THREADS=1 node bench/channel-pruning-reach.mjs
import { writeFileSync, renameSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createChannelPruner, loadModel, prepareModel } from '../dist/index.js'
import { REAL_MODELS, floatFeed } from '../__test__/helpers/models.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const models = [
  ['MNIST CNN', join(here, '..', 'examples', 'mnist', 'mnist-cnn.onnx'), (i) => ({ input: floatFeed([2, 1, 28, 28], 10 + i) })],
  ['PP-OCRv4 det', REAL_MODELS['PP-OCRv4 det'].path, (i) => ({ x: floatFeed([1, 3, 64, 96], 10 + i) })],
  ['PP-OCRv4 rec', REAL_MODELS['PP-OCRv4 rec'].path, (i) => ({ x: floatFeed([1, 3, 48, 80], 10 + i) })],
]
const results = []
for (const [name, path, feeds] of models) {
  const { model } = await prepareModel(await loadModel(path))
  const t0 = performance.now()
  const pruner = await createChannelPruner(model, [feeds(0), feeds(1)], { maxSamples: 20 })
  const reasons = {}
  for (const s of pruner.skipped) {
    const key = s.reason.replace(/"[^"]*"/g, '…').replace(/\b\d+\b/g, 'N')
    reasons[key] = (reasons[key] ?? 0) + 1
  }
  const ratios = Object.fromEntries(pruner.layers.map((l) => [l.node, 0.5]))
  const before = pruner.cost({})
  let compressAllSeconds = null
  if (pruner.layers.length > 0) {
    const t1 = performance.now()
    await pruner.compressAll(ratios)
    compressAllSeconds = (performance.now() - t1) / 1000
  }
  const after = pruner.cost(ratios)
  const row = {
    model: name, convs: model.graph.nodes.filter((n) => n.opType === 'Conv').length, prunable: pruner.layers.map((l) => l.node),
    skipped: pruner.skipped.length, reasons, macRatioAllAtHalf: after.mac / before.mac, memoryRatioAllAtHalf: after.memory / before.memory,
    createSeconds: (performance.now() - t0) / 1000 - (compressAllSeconds ?? 0), compressAllSeconds,
  }
  results.push(row)
  console.log(`${name}: ${row.prunable.length}/${row.convs} Convs prunable; MACs at 0.5 everywhere: ${row.macRatioAllAtHalf.toFixed(3)}`)
}
const out = join(here, 'results', 'channel-pruning-reach.json')
writeFileSync(out + '.tmp', JSON.stringify({ date: new Date().toISOString(), rayonThreads: process.env.RAYON_NUM_THREADS ?? null, results }, null, 1) + '\n')
renameSync(out + '.tmp', out)
