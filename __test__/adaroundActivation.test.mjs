// The activation that follows a layer (aimet-onnx's module_act_func_pair: Relu, Clip, Sigmoid, Tanh)
// goes into AdaRound's loss on both outputs: for a Conv followed by each of them, the reported
// round-to-nearest and AdaRound losses equal aimet's loss (‖Δ‖² over channels, mean over samples and
// positions) computed in ONNX Runtime on the model's output, i.e. after the activation, between the
// float model and the same model with the nearest-rounded weight and with the exported QDQ model.
// Clip takes the node's own bounds (opset-13 inputs). A Relu that is not the only reader of the
// layer's output is not applied (the loss is then on the Conv's output itself).
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { random } from './helpers/random.mjs'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, applyAdaround, affine } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const [N, C, M, H] = [8, 4, 6, 6]
const CLIP = [-0.4, 0.7]

/** x → Conv → act → y; with `shared`, the Conv's output is also a second output `t` (two readers). */
function model(w, b, act, shared = false) {
  const inits = [{ name: 'w', dataType: T.FLOAT, dims: [M, C, 3, 3], data: w }, { name: 'b', dataType: T.FLOAT, dims: [M], data: b }]
  const nodes = [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['t'], attributes: { pads: [1, 1, 1, 1], kernel_shape: [3, 3] } }]
  if (act === 'Clip') {
    inits.push({ name: 'lo', dataType: T.FLOAT, dims: [], data: Float32Array.of(CLIP[0]) }, { name: 'hi', dataType: T.FLOAT, dims: [], data: Float32Array.of(CLIP[1]) })
    nodes.push({ opType: 'Clip', inputs: ['t', 'lo', 'hi'], outputs: ['y'] })
  } else {
    nodes.push({ opType: act, inputs: ['t'], outputs: ['y'] })
  }
  if (shared) nodes.push({ opType: 'Identity', inputs: ['t'], outputs: ['t2'] })
  const outputs = [{ name: 'y', dataType: T.FLOAT, dims: ['n', M, H, H] }]
  if (shared) outputs.push({ name: 't2', dataType: T.FLOAT, dims: ['n', M, H, H] })
  return buildModel({ opset: 13, inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['n', C, H, H] }], outputs, initializers: inits, nodes })
}

function batches(n, seed) {
  const g = random(seed)
  return Array.from({ length: n }, () => {
    const data = new Float32Array(N * C * H * H)
    for (let s = 0; s < N; s++) {
      const base = Float32Array.from({ length: H * H }, () => g() * 2 - 1)
      for (let c = 0; c < C; c++) {
        const k = 0.5 + g()
        for (let i = 0; i < H * H; i++) data[(s * C + c) * H * H + i] = k * base[i] + 0.2 * (g() * 2 - 1)
      }
    }
    return { x: { type: 'float32', data, dims: [N, C, H, H] } }
  })
}

/** aimet's loss between output `out` of two ORT sessions. */
async function loss(a, b, data, out) {
  let sum = 0
  let rows = 0
  for (const f of data) {
    const feeds = { x: new ort.Tensor('float32', f.x.data, f.x.dims) }
    const [ya, yb] = [(await a.run(feeds))[out].data, (await b.run(feeds))[out].data]
    for (let i = 0; i < ya.length; i++) sum += (yb[i] - ya[i]) ** 2
    rows += N * H * H
  }
  return sum / rows
}

const CASES = [
  ['Relu', false, 'relu', 'y'],
  ['Clip', false, 'clip', 'y'],
  ['Sigmoid', false, 'sigmoid', 'y'],
  ['Tanh', false, 'tanh', 'y'],
  ['Relu', true, 'none', 't2'],
]

for (const [act, shared, expected, out] of CASES) {
  test(`Conv → ${act}${shared ? ' (not the only reader)' : ''}: activation ${expected}; reported losses equal ORT's on ${out}`, async (t) => {
    const r = random(5)
    const W = Float32Array.from({ length: M * C * 9 }, () => (r() - 0.5) * 0.8)
    const B = Float32Array.from({ length: M }, () => (r() - 0.5) * 0.4)
    const calib = batches(4, 11)
    const m = model(W, B, act, shared)
    const sim = await QuantSim.create(m, { intraOpNumThreads: 1, paramBitwidth: 4 })
    for (const q of sim.quantizers) if (q.kind !== 'param') sim.setQuantizer(q.tensor, { enabled: false })
    const report = await applyAdaround(sim, calib, { numIterations: 300 })
    const layer = report.layers[0]
    t.is(layer.activation, expected)
    const encs = sim.quantizers.find((x) => x.tensor === 'w').encodings
    const nearest = affine.quantizeDequantize(W, Float32Array.from(encs, (e) => e.scale), Int32Array.from(encs, (e) => e.offset), encs[0].qmin, encs[0].qmax, { shape: [M, C, 3, 3], axis: 0 })
    const dir = await mkdtemp(join(tmpdir(), 'quantkit-adaround-act-'))
    try {
      await sim.export(dir, 'm')
      const opts = { intraOpNumThreads: 1 }
      const [fp, near, qdq] = await Promise.all([
        ort.InferenceSession.create(m, opts),
        ort.InferenceSession.create(model(nearest, B, act, shared), opts),
        ort.InferenceSession.create(join(dir, 'm.qdq.onnx'), { ...opts, graphOptimizationLevel: 'disabled' }),
      ])
      const [ln, la] = [await loss(fp, near, calib, out), await loss(fp, qdq, calib, out)]
      t.log(`reported ${layer.lossNearest.toExponential(4)} → ${layer.lossAdaround.toExponential(4)} (${layer.flips} flips); ORT ${ln.toExponential(4)} → ${la.toExponential(4)}`)
      t.true(Math.abs(layer.lossNearest - ln) <= 1e-3 * ln, `nearest: reported ${layer.lossNearest}, ORT ${ln}`)
      t.true(Math.abs(layer.lossAdaround - la) <= 1e-3 * la, `AdaRound: reported ${layer.lossAdaround}, ORT ${la}`)
      t.true(la < ln)
    } finally {
      await rm(dir, { recursive: true, force: true })
      await sim.close()
    }
  })
}
