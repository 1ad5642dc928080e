// AdaRound on a ConvTranspose (stride 2, asymmetric pads, output_padding; group 1 with a per-channel
// weight on axis 1, group 2 per tensor as aimet's exception rule makes it, the latter followed by a
// Sigmoid that the loss goes through). Checked independently in ONNX Runtime:
// - the reported round-to-nearest loss equals aimet's loss (‖Δ‖² over channels, mean over samples
//   and positions, after the activation) between the float model and the float model with the
//   nearest-rounded weight (computed here with affine.quantizeDequantize);
// - the reported AdaRound loss equals the same loss between the float model and the exported QDQ
//   model (activation quantizers off, so only the weight's rounding differs);
// - the exported QDQ model's integer weight (INT4, unpacked here) and the encodings file reproduce
//   exactly the integers the sim holds, and its code changes against nearest are the reported flips.
import test from 'ava'
import { createRequire } from 'node:module'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { correlatedImageBatches, random } from './helpers/random.mjs'
const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, applyAdaround, affine } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { loadModel } = require('../dist/onnx/loadModel.js')
const { unpack4bit } = require('../dist/onnx/packed4bit.js')
const { DataType: T } = require('../dist/onnx/elementType.js')

const [N, C, M, H] = [16, 4, 6, 6]
// (H − 1)·2 + 3 + output_padding 1 − pads (1 + 0) rows, (H − 1)·2 + 3 + 1 − (0 + 1) columns.
const HO = (H - 1) * 2 + 3 + 1 - 1
const ATTRS = { strides: [2, 2], pads: [1, 0, 0, 1], output_padding: [1, 1], kernel_shape: [3, 3] }

function ctModel(w, b, group, activation) {
  const nodes = [{ opType: 'ConvTranspose', inputs: ['x', 'w', 'b'], outputs: [activation ? 't' : 'y'], attributes: { ...ATTRS, group } }]
  if (activation) nodes.push({ opType: activation, inputs: ['t'], outputs: ['y'] })
  return buildModel({
    opset: 13,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: ['n', C, H, H] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: ['n', M, HO, HO] }],
    initializers: [{ name: 'w', dataType: T.FLOAT, dims: [C, M / group, 3, 3], data: w }, { name: 'b', dataType: T.FLOAT, dims: [M], data: b }],
    nodes,
  })
}

const batches = (n, seed) => correlatedImageBatches(n, seed, { samples: N, channels: C, size: H })

/** aimet's reconstruction loss between the outputs `y` of two ORT sessions over `data`. */
async function loss(a, b, data) {
  let sum = 0
  let rows = 0
  for (const f of data) {
    const feeds = { x: new ort.Tensor('float32', f.x.data, f.x.dims) }
    const [ya, yb] = [(await a.run(feeds)).y.data, (await b.run(feeds)).y.data]
    for (let i = 0; i < ya.length; i++) sum += (yb[i] - ya[i]) ** 2
    rows += N * HO * HO
  }
  return sum / rows
}

for (const [group, activation] of [[1, undefined], [2, 'Sigmoid']]) {
  test(`ConvTranspose group ${group}${activation ? ` → ${activation}` : ''}: reported losses match ORT on the float and exported QDQ models; export carries the learned integers`, async (t) => {
    const r = random(40 + group)
    const W = Float32Array.from({ length: C * (M / group) * 9 }, () => (r() - 0.5) * 0.8)
    const B = Float32Array.from({ length: M }, () => (r() - 0.5) * 0.2)
    const model = ctModel(W, B, group, activation)
    const calib = batches(6, 7 + group)
    const sim = await QuantSim.create(model, { intraOpNumThreads: 1, paramBitwidth: 4 })
    // Weights only: the losses then compare exactly the float model and the rounded weight.
    for (const q of sim.quantizers) if (q.kind !== 'param') sim.setQuantizer(q.tensor, { enabled: false })
    const q = sim.quantizers.find((x) => x.tensor === 'w')
    t.is(q.spec.axis, group === 1 ? 1 : undefined, 'per channel on axis 1; grouped ConvTranspose per tensor (aimet)')
    const report = await applyAdaround(sim, calib, { numIterations: 600 })
    t.is(report.layers.length, 1)
    const layer = report.layers[0]
    t.is(layer.opType, 'ConvTranspose')
    t.is(layer.activation, activation ? activation.toLowerCase() : 'none')
    t.log(`loss nearest ${layer.lossNearest.toExponential(4)} → AdaRound ${layer.lossAdaround.toExponential(4)}, ${layer.flips}/${layer.weights} flips`)

    const encs = q.encodings
    const axisLen = group === 1 ? M / group : 1
    const inner = group === 1 ? 9 : W.length
    const enc = (i) => encs[Math.floor(i / inner) % axisLen]
    const shape = [C, M / group, 3, 3]
    const nearest = affine.quantizeDequantize(W, Float32Array.from(encs, (e) => e.scale), Int32Array.from(encs, (e) => e.offset), encs[0].qmin, encs[0].qmax, group === 1 ? { shape, axis: 1 } : { shape })
    const wa = sim.model.graph.initializers.get('w').data
    const codes = Int32Array.from(wa, (w, i) => Math.round(w / enc(i).scale - enc(i).offset))
    let flips = 0
    for (let i = 0; i < W.length; i++) {
      t.true(Math.abs(wa[i] / enc(i).scale - enc(i).offset - codes[i]) < 1e-3, `weight ${i} is off the grid`)
      t.true(codes[i] >= encs[0].qmin && codes[i] <= encs[0].qmax)
      const near = Math.round(nearest[i] / enc(i).scale - enc(i).offset)
      t.true(Math.abs(codes[i] - near) <= 1)
      if (codes[i] !== near) flips++
    }
    t.is(flips, layer.flips)
    t.true(layer.flips > 0)

    const dir = await mkdtemp(join(tmpdir(), 'quantkit-adaround-ct-'))
    try {
      await sim.export(dir, 'ct')
      const qdqPath = join(dir, 'ct.qdq.onnx')
      // The integers in the exported model and in the encodings file.
      const exported = await loadModel(qdqPath)
      const dq = exported.graph.nodes.find((n) => n.opType === 'DequantizeLinear' && n.outputs[0] === exported.graph.nodes.find((m) => m.opType === 'ConvTranspose').inputs[1])
      const [wq, ws, wz] = dq.inputs.map((name) => exported.graph.initializers.get(name))
      t.deepEqual(wq.dims, shape)
      const ints4 = (x, count) => Int32Array.from(x.dataType === T.INT4 || x.dataType === T.UINT4 ? unpack4bit(x.data, count, x.dataType === T.INT4) : x.data)
      const ints = ints4(wq, W.length)
      const zp = wz ? ints4(wz, ws.data.length) : new Int32Array(axisLen)
      // QDQ's q − zero point is AIMET's code + offset, i.e. the sim's weight / scale.
      const perAxis = (a, i) => a[a.length === 1 ? 0 : Math.floor(i / inner) % axisLen]
      t.deepEqual(Array.from(ints, (v, i) => v - perAxis(zp, i)), Array.from(codes, (c, i) => c + enc(i).offset))
      t.deepEqual(Array.from(ws.data), Array.from(encs, (e) => Math.fround(e.scale)))
      const file = JSON.parse(await readFile(join(dir, 'ct.encodings'), 'utf8'))
      const pe = file.param_encodings.find((e) => e.name === 'w')
      t.deepEqual(pe.scale.map(Math.fround), encs.map((e) => Math.fround(e.scale)))
      // The file writes AIMET's unsigned offset for symmetric grids (−2^(bw−1)): the learned
      // weights sit on its grid, x = (q + offset)·scale with q in [0, 2^bw − 1].
      t.is(pe.bw, 4)
      for (let i = 0; i < W.length; i++) {
        const qf = wa[i] / perAxis(pe.scale, i) - perAxis(pe.offset, i)
        t.true(Math.abs(qf - Math.round(qf)) < 1e-3 && Math.round(qf) >= 0 && Math.round(qf) <= 15, `weight ${i}: ${qf} off the file's grid`)
      }

      // The losses, measured in ORT.
      const opts = { intraOpNumThreads: 1 }
      const [fp, near, qdq] = await Promise.all([
        ort.InferenceSession.create(model, opts),
        ort.InferenceSession.create(ctModel(nearest, B, group, activation), opts),
        ort.InferenceSession.create(qdqPath, { ...opts, graphOptimizationLevel: 'disabled' }),
      ])
      const [lossNear, lossQdq] = [await loss(fp, near, calib), await loss(fp, qdq, calib)]
      t.log(`ORT: nearest ${lossNear.toExponential(4)}, exported QDQ ${lossQdq.toExponential(4)}`)
      t.true(Math.abs(layer.lossNearest - lossNear) <= 1e-3 * lossNear, `nearest: reported ${layer.lossNearest}, ORT ${lossNear}`)
      t.true(Math.abs(layer.lossAdaround - lossQdq) <= 1e-3 * lossQdq, `AdaRound: reported ${layer.lossAdaround}, ORT ${lossQdq}`)
      t.true(lossQdq < lossNear, 'AdaRound lowers the loss measured in ORT')
      // Held-out digits of the same distribution too.
      const held = batches(3, 99 + group)
      const [heldNear, heldQdq] = [await loss(fp, near, held), await loss(fp, qdq, held)]
      t.log(`held out: nearest ${heldNear.toExponential(4)}, AdaRound ${heldQdq.toExponential(4)}`)
      t.true(heldQdq < heldNear)
    } finally {
      await rm(dir, { recursive: true, force: true })
      await sim.close()
    }
  })
}
