// Parity with aimet-onnx 2.42 on two models (fixtures/golden/parity/, written by
// scripts/golden/aimet_parity.py): the MNIST CNN (Conv+BN, depthwise Conv, Gemm; folded by AIMET's
// fold_all_batch_norms_to_weight, by quantkit's prepareModel) and a transformer block (LayerNorm,
// MatMul+Add, MatMul of two activations, Softmax). min_max and tf_enhanced × default, per_tensor,
// htp_v68, htp_v73. Differences found are listed (and explained) in docs/aimet-differences.md;
// the KNOWN_* tables below must match what is measured exactly, so a fix shows up here.
import test from 'ava'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const ort = require('onnxruntime-node')
const { QuantSim, affine, compareTensors, cloneModel, addGraphOutput, modelToBytes, parseNpyHeader } = require('../dist/index.js')
const { npyElements } = require('../dist/data/npy.js')

const here = dirname(fileURLToPath(import.meta.url))
const G = join(here, 'fixtures', 'golden', 'parity')
const manifest = JSON.parse(readFileSync(join(G, 'manifest.json'), 'utf8'))
const THREADS = { intraOpNumThreads: 1 }
const SCHEMES = ['min_max', 'tf_enhanced']
const CONFIGS = ['default', 'per_tensor', 'htp_v68', 'htp_v73']

function npy(path) {
  const b = new Uint8Array(readFileSync(path))
  const h = parseNpyHeader(b, b.length, path)
  return { data: npyElements(h, b.subarray(h.dataOffset)), dims: h.shape }
}
function batchesOf(name) {
  const m = manifest.models[name]
  const c = npy(join(G, m.calibration))
  const { batches, batchSize } = manifest.quantSim
  const per = c.data.length / c.dims[0]
  return Array.from({ length: batches }, (_, i) => ({ [m.input]: { data: c.data.subarray(i * batchSize * per, (i + 1) * batchSize * per), dims: [batchSize, ...c.dims.slice(1)] } }))
}
const modelPath = (name) => join(G, manifest.models[name].model)
const aimetFile = (name, scheme, config) => JSON.parse(readFileSync(join(G, `${name}.${scheme}.${config}.encodings`), 'utf8'))

// quantkit tensors AIMET does not quantize, and the reverse (placement differences), per model and config.
const KNOWN_PLACEMENT = {
  block: { onlyAimet: [], onlyQuantkit: [] },
  'mnist-cnn': { onlyAimet: [], onlyQuantkit: [] },
}
// Tensors whose min_max encodings differ beyond the calibration-order effect (see the test below).
const KNOWN_ENCODING = {
  // htp_v68 has no Conv+Relu supergroup; AIMET ties the Conv output to the Relu output, whose
  // encoding constraint (min 0) then applies to both, so the Conv output is quantized on [0, max].
  'mnist-cnn/htp_v68': ['/conv1/Conv_output_0', '/conv2/Conv_output_0', '/conv3/Conv_output_0', '/Relu_output_0', '/Relu_1_output_0', '/Relu_2_output_0'],
  // The same for the depthwise conv3 under htp_v73 (quantkit does not fuse a depthwise Conv+Relu).
  'mnist-cnn/htp_v73': ['/conv3/Conv_output_0', '/Relu_2_output_0'],
}

/**
 * aimet-onnx calibrates activations on the model with its weights already quantized (param
 * quantizers run in quantize-dequantize mode during compute_encodings); quantkit observes the
 * float model. For parity the test reproduces AIMET's order: weights from a first sim, then
 * activations from a second sim over the fake-quantized weights.
 */
async function quantkitLikeAimet(name, scheme, config, aimet) {
  const opts = { ...THREADS, quantScheme: scheme, config }
  const first = await QuantSim.create(modelPath(name), opts)
  await first.computeEncodings(batchesOf(name))
  const model = cloneModel(first.model)
  for (const q of first.quantizers) {
    if (q.kind !== 'param' || !q.enabled || q.spec.dtype !== 'int') continue
    const w = model.graph.initializers.get(q.tensor)
    const e = q.encodings
    const fq = e.length === 1
      ? affine.quantizeDequantize(w.data, e[0].scale, e[0].offset, e[0].qmin, e[0].qmax)
      : affine.quantizeDequantize(w.data, Float32Array.from(e, (x) => x.scale), Int32Array.from(e, (x) => x.offset), e[0].qmin, e[0].qmax, { shape: w.dims, axis: q.spec.axis })
    model.graph.initializers.set(q.tensor, { ...w, data: fq })
  }
  // Weights quantkit does not quantize (KNOWN_PLACEMENT) are fake-quantized with AIMET's own
  // encodings, so that the activations downstream of them can still be compared.
  for (const tensor of KNOWN_PLACEMENT[name].onlyAimet) {
    const w = model.graph.initializers.get(tensor)
    const e = aimet.get(tensor)
    if (!w || !e) continue
    const qmax = 2 ** e.bw - 1
    const fq = e.scale.length === 1
      ? affine.quantizeDequantize(w.data, Math.fround(e.scale[0]), e.offset[0], 0, qmax)
      : affine.quantizeDequantize(w.data, Float32Array.from(e.scale), Int32Array.from(e.offset), 0, qmax, { shape: w.dims, axis: w.dims.length - 1 })
    model.graph.initializers.set(tensor, { ...w, data: fq })
  }
  const second = await QuantSim.create(model, { ...opts, prepare: false })
  await second.computeEncodings(batchesOf(name))
  const enc = new Map()
  for (const q of first.quantizers) if (q.enabled && q.kind === 'param') enc.set(q.tensor, q)
  for (const q of second.quantizers) if (q.enabled && q.kind !== 'param' && !enc.has(q.tensor)) enc.set(q.tensor, q)
  await first.close()
  await second.close()
  return { quantizers: enc, model, floatModel: first.model }
}

const fileOffset = (e) => e.offset + e.qmin
const rel = (a, b) => Math.abs(a - b) / Math.max(Math.abs(a), Math.abs(b), 1e-30)
const sorted = (xs) => [...xs].sort()

function placementDiff(ours, theirs) {
  return { onlyAimet: sorted([...theirs.keys()].filter((k) => !ours.has(k))), onlyQuantkit: sorted([...ours.keys()].filter((k) => !theirs.has(k))) }
}
const entries = (f) => new Map([...f.activation_encodings, ...f.param_encodings].map((e) => [e.name, e]))

// Float values of activations (on the weight-quantized model AIMET observed) and of weights.
async function tensorValues(model, floatModel, names, input, batches) {
  const m = cloneModel(model)
  const acts = names.filter((n) => !m.graph.initializers.has(n))
  for (const n of acts) addGraphOutput(m.graph, n)
  const s = await ort.InferenceSession.create(modelToBytes(m), { ...THREADS, graphOptimizationLevel: 'disabled' })
  const out = new Map(acts.map((n) => [n, []]))
  for (const b of batches) {
    const r = await s.run({ [input]: new ort.Tensor('float32', b[input].data, b[input].dims) })
    for (const n of acts) out.get(n).push(r[n].data)
  }
  await s.release()
  const values = new Map()
  for (const [n, parts] of out) {
    const all = new Float32Array(parts.reduce((a, p) => a + p.length, 0))
    let o = 0
    for (const p of parts) { all.set(p, o); o += p.length }
    values.set(n, all)
  }
  for (const n of names) if (m.graph.initializers.has(n)) values.set(n, floatModel.graph.initializers.get(n).data)
  return values
}

const results = []
for (const name of ['mnist-cnn', 'block']) {
  test.serial(`${name}: min_max under default, per_tensor, htp_v68, htp_v73 equals aimet-onnx (placement, axes, scale/offset within 1e-6)`, async (t) => {
    for (const config of CONFIGS) {
      const theirs = entries(aimetFile(name, 'min_max', config))
      const { quantizers: ours } = await quantkitLikeAimet(name, 'min_max', config, theirs)
      t.deepEqual(placementDiff(ours, theirs), KNOWN_PLACEMENT[name], `${name}/${config}: placement`)
      const known = new Set(KNOWN_ENCODING[`${name}/${config}`] ?? [])
      let worst = 0
      let compared = 0
      const differing = []
      for (const [tensor, e] of theirs) {
        const q = ours.get(tensor)
        if (!q) continue
        t.is(q.spec.bitwidth, e.bw, `${name}/${config}/${tensor}: bitwidth`)
        t.is(q.spec.symmetric, e.is_sym, `${name}/${config}/${tensor}: symmetric`)
        t.is(e.enc_type === 'PER_CHANNEL', q.spec.axis !== undefined, `${name}/${config}/${tensor}: per-channel`)
        t.is(q.encodings.length, e.scale.length, `${name}/${config}/${tensor}: channels`)
        let ok = true
        q.encodings.forEach((x, i) => {
          const r = rel(x.scale, e.scale[i])
          if (r > 1e-6 || fileOffset(x) !== e.offset[i]) ok = false
          else worst = Math.max(worst, r)
        })
        if (!ok) differing.push(tensor)
        else compared++
      }
      t.deepEqual(sorted(differing), sorted(known), `${name}/${config}: tensors whose encodings differ`)
      results.push(`${name}/min_max/${config}: ${compared} tensors equal (worst scale rel. diff ${worst.toExponential(1)}), ${differing.length} known differences`)
    }
  })

  test.serial(`${name}: tf_enhanced encodings are as good as aimet-onnx's on the calibration data (SQNR)`, async (t) => {
    const input = manifest.models[name].input
    for (const config of CONFIGS) {
      const theirs = entries(aimetFile(name, 'tf_enhanced', config))
      const { quantizers: ours, model, floatModel } = await quantkitLikeAimet(name, 'tf_enhanced', config, theirs)
      t.deepEqual(placementDiff(ours, theirs), KNOWN_PLACEMENT[name], `${name}/${config}: placement`)
      const known = new Set(KNOWN_ENCODING[`${name}/${config}`] ?? [])
      const shared = [...theirs.keys()].filter((k) => ours.has(k) && !known.has(k))
      const values = await tensorValues(model, floatModel, shared, input, batchesOf(name))
      let worstAct = Infinity
      let worstParam = Infinity
      for (const tensor of shared) {
        const q = ours.get(tensor)
        const e = theirs.get(tensor)
        const x = values.get(tensor)
        // Both encodings on AIMET's unsigned view of the grid (the same grid points).
        const qmax = 2 ** e.bw - 1
        const opts = q.spec.axis !== undefined ? { shape: floatModel.graph.initializers.get(tensor).dims, axis: q.spec.axis } : undefined
        const s = (scales, offsets) => compareTensors(x, affine.quantizeDequantize(x, scales.length === 1 ? Math.fround(scales[0]) : Float32Array.from(scales), offsets.length === 1 ? offsets[0] : Int32Array.from(offsets), 0, qmax, opts)).sqnrDb
        const aimet = s(e.scale, e.offset)
        const mine = s(q.encodings.map((z) => z.scale), q.encodings.map(fileOffset))
        const margin = mine - aimet
        if (q.kind === 'param') worstParam = Math.min(worstParam, margin)
        else worstAct = Math.min(worstAct, margin)
        // Activations: quantkit's 2048-bin histogram vs AIMET's 1536 bins over 3× the first batch's
        // range: the searches agree to within the bins' resolution. Measured: ≥ −0.34 dB. Tolerance 0.4 dB.
        if (q.kind !== 'param') t.true(margin >= -0.4, `${name}/${config}/${tensor}: SQNR ${mine.toFixed(2)} dB vs AIMET ${aimet.toFixed(2)} dB`)
        // Weights: quantkit takes min-max ranges for weights whatever the scheme; AIMET searches them
        // with tf_enhanced. Measured: ≥ −0.52 dB. Tolerance 0.6 dB.
        else t.true(margin >= -0.6, `${name}/${config}/${tensor} (weight): SQNR ${mine.toFixed(2)} dB vs AIMET ${aimet.toFixed(2)} dB`)
      }
      results.push(`${name}/tf_enhanced/${config}: ${shared.length} tensors; SQNR quantkit − AIMET ≥ ${worstAct.toFixed(2)} dB (activations), ≥ ${worstParam.toFixed(2)} dB (weights)`)
    }
  })
}

test.after.always((t) => { for (const r of results) console.log(`  ${r}`) })
