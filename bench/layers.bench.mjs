// Conv forward: quantkit's layer kernel (crates/quantkit-core/src/layers, `layers.conv`) against
// onnxruntime-node's Conv on the same shapes and data (a one-node model, graph optimisations off),
// same thread count, rounds interleaved so both see the same machine load. Shapes: the convs of
// PP-OCR mobile v2 cls at batch 32 (AdaRound's mini-batch) and of the MNIST CNN at batch 64.
// Usage: node bench/layers.bench.mjs [--threads 2] [--rounds 15]. Writes bench/results/layers.json.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { renameSync, writeFileSync, mkdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import os from 'node:os'

const require = createRequire(import.meta.url)
const here = dirname(fileURLToPath(import.meta.url))
const ort = require('onnxruntime-node')
const { layers } = require('../dist/layers.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')
const { random } = await import('../__test__/helpers/random.mjs')

const args = process.argv.slice(2)
const flag = (name, def) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : def)
const threads = flag('threads', 2)
const rounds = flag('rounds', 15)

// [what, x dims, w dims, attributes]
const cases = [
  ['cls conv1 3→8 3×3 s2, 48×192', [32, 3, 48, 192], [8, 3, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 2] }],
  ['cls dw 8ch 3×3 s(2,1), 24×96', [32, 8, 24, 96], [8, 1, 3, 3], { pads: [1, 1, 1, 1], strides: [2, 1], group: 8 }],
  ['cls 1×1 8→24, 12×96', [32, 8, 12, 96], [24, 8, 1, 1], {}],
  ['cls dw 32ch 3×3, 6×96', [32, 32, 6, 96], [32, 1, 3, 3], { pads: [1, 1, 1, 1], group: 32 }],
  ['cls 1×1 16→88, 3×96', [32, 16, 3, 96], [88, 16, 1, 1], {}],
  ['cls 1×1 32→200, 2×96', [32, 32, 2, 96], [200, 32, 1, 1], {}],
  ['cls dw 200ch 3×3, 2×96', [32, 200, 2, 96], [200, 1, 3, 3], { pads: [1, 1, 1, 1], group: 200 }],
  ['mnist conv1 1→16 3×3, 28×28', [64, 1, 28, 28], [16, 1, 3, 3], { pads: [1, 1, 1, 1] }],
  ['mnist conv2 16→32 3×3, 14×14', [64, 16, 14, 14], [32, 16, 3, 3], { pads: [1, 1, 1, 1] }],
]

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
const results = []
for (const [what, xd, wd, attrs] of cases) {
  const r = random(xd.reduce((a, b) => a + b, 0))
  const x = Float32Array.from({ length: xd.reduce((a, b) => a * b) }, () => r() * 2 - 1)
  const w = Float32Array.from({ length: wd.reduce((a, b) => a * b) }, () => r() - 0.5)
  const b = Float32Array.from({ length: wd[0] }, () => r() - 0.5)
  const y = layers.conv({ data: x, dims: xd }, { data: w, dims: wd }, b, attrs, { threads })
  const model = buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: xd }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: y.dims }],
    initializers: [{ name: 'w', dataType: T.FLOAT, dims: wd, data: w }, { name: 'b', dataType: T.FLOAT, dims: [wd[0]], data: b }],
    nodes: [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attributes: { kernel_shape: wd.slice(2), ...attrs } }],
  })
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'disabled' })
  const feeds = { x: new ort.Tensor('float32', x, xd) }
  const want = (await session.run(feeds)).y.data
  let maxDiff = 0
  for (let i = 0; i < want.length; i++) maxDiff = Math.max(maxDiff, Math.abs(want[i] - y.data[i]))
  const reps = Math.max(3, Math.round(2e8 / (y.data.length * wd.slice(1).reduce((a, c) => a * c))))
  const [tq, to] = [[], []]
  for (let k = 0; k < rounds; k++) {
    let t = performance.now()
    for (let i = 0; i < reps; i++) layers.conv({ data: x, dims: xd }, { data: w, dims: wd }, b, attrs, { threads })
    tq.push((performance.now() - t) / reps)
    t = performance.now()
    for (let i = 0; i < reps; i++) await session.run(feeds)
    to.push((performance.now() - t) / reps)
  }
  await session.release()
  const row = { conv: what, x: xd, w: wd, quantkitMs: median(tq), ortMs: median(to), ratio: median(tq) / median(to), maxAbsDiff: maxDiff }
  results.push(row)
  console.log(`${what.padEnd(32)} quantkit ${row.quantkitMs.toFixed(3)} ms  ORT ${row.ortMs.toFixed(3)} ms  ×${row.ratio.toFixed(2)} of ORT  (max |Δ| ${maxDiff.toExponential(1)})`)
}
const geo = Math.exp(results.reduce((s, r) => s + Math.log(r.ratio), 0) / results.length)
console.log(`geometric mean: quantkit time ×${geo.toFixed(2)} of ORT's`)
const out = join(here, 'results', 'layers.json')
mkdirSync(dirname(out), { recursive: true })
const doc = { what: 'Conv forward, quantkit layers.conv vs onnxruntime-node Conv (one-node model, optimisations off); median of interleaved rounds', threads, rounds, date: new Date().toISOString(), machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}`, loadAverage: os.loadavg(), geometricMeanRatio: geo, results }
writeFileSync(out + '.tmp', JSON.stringify(doc, null, 2) + '\n')
renameSync(out + '.tmp', out)
