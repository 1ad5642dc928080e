// quantizeWeights with ops including 'Gather': an embedding table [V, D] (Gather on axis 0) is
// quantized per block of blockSize along D and written as com.microsoft.GatherBlockQuantized
// ('matmulnbits') or as an opset-21 DequantizeLinear (axis 1, block_size) → Gather ('qdq').
// The model Gather(table, indices) → MatMul(·, W) is quantized, run in onnxruntime-node 1.23.2,
// and compared with a computation done here: the table's codes, scales and zero points read back
// from the written initializers (layouts from ONNX Runtime's ContribOperators.md and onnx.proto),
// dequantized with affine.dequantize per block along axis 1, rows gathered in JavaScript for the
// indices, and multiplied in float64 by W dequantized the same way (axis 0).
// Tolerance: ORT multiplies in float32 (graph optimisations off, accuracy_level unset), so
// |y_ORT − y| ≤ 2·K·2⁻²³·Σ|e_k·ŵ_k| + ulp(y), the float32 dot-product bound used by
// weightOnlyPacking.test.mjs, plus 2⁻²³·|e|·|ŵ| for a dequantized element rounded differently.
import test from 'ava'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'
import { random, randoms } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { unpack4bit } = require('../dist/onnx/packed4bit.js')
const { quantizeWeights, unpackMatMulNBits, affine } = require('../dist/index.js')

const FLOAT = 1
const INT64 = 7
const INDICES = [3, 0, 49, 17, 17, 8]

function embeddingModel({ v = 50, d = 64, n = 16, axis = 0, seed = 7 } = {}) {
  const table = randoms(v * d, seed, 0.8)
  const r = random(seed + 1)
  for (let i = 0; i < 6; i++) table[Math.floor(r() * table.length)] = (r() < 0.5 ? -1 : 1) * 3
  const w = randoms(d * n, seed + 2, 0.5)
  const m = INDICES.length
  const bytes = buildModel({
    opset: 17,
    inputs: [{ name: 'ids', dataType: INT64, dims: [m] }],
    outputs: [{ name: 'Y', dataType: FLOAT, ...(axis === 0 ? { dims: [m, n] } : {}) }],
    initializers: [
      { name: 'table', dataType: FLOAT, dims: [v, d], data: table },
      { name: 'W', dataType: FLOAT, dims: [d, n], data: w },
    ],
    nodes: [
      { opType: 'Gather', inputs: ['table', 'ids'], outputs: ['E'], name: 'embed', ...(axis !== 0 ? { attributes: { axis } } : {}) },
      { opType: 'MatMul', inputs: ['E', 'W'], outputs: ['Y'], name: 'proj' },
    ],
  })
  return { bytes, table, w, v, d, n, m }
}

const init = (model, name) => model.graph.initializers.get(name)

/** T̂ [V, D] from the table's quantized initializers, read here from the documented layouts. */
function tableHat(model, node, { v, d }, bits, bs) {
  const nb = Math.ceil(d / bs)
  if (node.opType === 'GatherBlockQuantized') {
    // data uint8 [V, D·bits/8]: unsigned codes, two per byte low nibble first (4 bits); scales [V, nb];
    // zero_points uint8 [V, ceil(nb·bits/8)] packed per row, absent = 2^(bits−1).
    const [data, , scales, zp] = [init(model, node.inputs[0]), null, init(model, node.inputs[2]), node.inputs[3] && init(model, node.inputs[3])]
    const codes = bits === 4 ? unpack4bit(data.data, v * d, false) : data.data
    const zeros = new Int32Array(v * nb).fill(-(1 << (bits - 1)))
    if (zp) {
      const per = Math.ceil((nb * bits) / 8)
      for (let r = 0; r < v; r++) {
        for (let b = 0; b < nb; b++) zeros[r * nb + b] = -(bits === 8 ? zp.data[r * per + b] : (zp.data[r * per + (b >> 1)] >> ((b & 1) * 4)) & 15)
      }
    }
    return affine.dequantize(codes, scales.data, zeros, { shape: [v, d], axis: 1, blockSize: bs })
  }
  // DequantizeLinear (axis 1, block_size): INT4/UINT4 packed over the whole tensor, or INT8/UINT8.
  const [x, s, z] = node.inputs.map((name) => init(model, name))
  const signed = x.dataType === 22 || x.dataType === 3
  const q = bits === 4 ? unpack4bit(x.data, v * d, signed) : x.data
  const offset = z ? Int32Array.from(bits === 4 ? unpack4bit(z.data, v * nb, false) : z.data, (c) => -c) : 0
  return affine.dequantize(q, s.data, offset, { shape: [v, d], axis: 1, blockSize: bs })
}

/** Ŵ [K, N] of the MatMul. */
function weightHat(model, k, n, bits, bs) {
  const mm = model.graph.nodes.find((x) => x.opType === 'MatMulNBits')
  if (mm) {
    const [b, s, z] = mm.inputs.slice(1).map((name) => init(model, name))
    const u = unpackMatMulNBits(b.data, s.data, z?.data, { k, n, bits, blockSize: bs })
    return affine.dequantize(u.codes, u.scales, Int32Array.from(u.zeroPoints, (c) => -c), { shape: [k, n], axis: 0, blockSize: bs })
  }
  const dq = model.graph.nodes.find((x) => x.opType === 'DequantizeLinear' && Number(x.attributes.get('axis').value) === 0)
  const [x, s, z] = dq.inputs.map((name) => init(model, name))
  const signed = x.dataType === 22 || x.dataType === 3
  const nb = Math.ceil(k / bs)
  const q = bits === 4 ? unpack4bit(x.data, k * n, signed) : x.data
  const offset = z ? Int32Array.from(bits === 4 ? unpack4bit(z.data, nb * n, false) : z.data, (c) => -c) : 0
  return affine.dequantize(q, s.data, offset, { shape: [k, n], axis: 0, blockSize: bs })
}

const ids = () => ({ ids: { type: 'int64', data: BigInt64Array.from(INDICES.map(BigInt)), dims: [INDICES.length] } })

for (const format of ['matmulnbits', 'qdq']) {
  for (const bits of [4, 8]) {
    for (const symmetric of [true, false]) {
      for (const d of [64, 48]) {
        test(`${format} int${bits} ${symmetric ? 'sym' : 'asym'} D=${d}: Gather → MatMul equals dequantize-gather-matmul computed here`, async (t) => {
          const bs = 32
          const f = embeddingModel({ d })
          const { model, report } = await quantizeWeights(f.bytes, { bits, blockSize: bs, symmetric, format, ops: ['Gather', 'MatMul'] })
          const ops = model.graph.nodes.map((x) => x.opType)
          t.deepEqual(ops, format === 'qdq'
            ? ['DequantizeLinear', 'Gather', 'DequantizeLinear', 'MatMul']
            : ['GatherBlockQuantized', 'MatMulNBits'])
          const gnode = model.graph.nodes[0]
          const attrs = Object.fromEntries([...gnode.attributes].map(([key, x]) => [key, Number(x.value)]))
          t.deepEqual(attrs, format === 'qdq' ? { axis: 1, block_size: bs } : { gather_axis: 0, quantize_axis: 1, block_size: bs, bits })
          t.false(model.graph.initializers.has('table'), 'the float table is dropped')

          // The report counts the Gather: shape [D, V], transposed, its bytes.
          t.is(report.totals.layers, 2)
          const layer = report.layers.find((l) => l.opType === 'Gather')
          t.like(layer, { node: 'embed', weight: 'table', shape: [d, f.v], transposed: true, bits, blockSize: bs, paddedRows: 0, bytesBefore: f.v * d * 4 })
          const nb = Math.ceil(d / bs)
          const expectBytes = (f.v * d * bits) / 8 + f.v * nb * 4 + (symmetric ? 0 : format === 'qdq' ? Math.ceil((f.v * nb * bits) / 8) : f.v * Math.ceil((nb * bits) / 8))
          t.is(layer.bytesAfter, expectBytes)

          // T̂ is the table rounded to its block grid: |t − t̂| ≤ scale/2 (no clipping) and SQNR matches.
          const th = tableHat(model, gnode, f, bits, bs)
          let sig = 0
          let noise = 0
          for (let i = 0; i < th.length; i++) {
            sig += f.table[i] ** 2
            noise += (f.table[i] - th[i]) ** 2
          }
          t.true(Math.abs(10 * Math.log10(sig / noise) - layer.sqnrDb) < 1e-3, `SQNR ${layer.sqnrDb} vs ${10 * Math.log10(sig / noise)}`)
          const maxAbs = Math.max(...f.table.map(Math.abs))
          const step = symmetric ? maxAbs / ((1 << (bits - 1)) - 1) : (2 * maxAbs) / ((1 << bits) - 1)
          t.true(f.table.every((x, i) => Math.abs(x - th[i]) <= step / 2 + 1e-6))

          const wh = weightHat(model, d, f.n, bits, bs)
          const y = (await runModel(modelToBytes(model), ids())).Y.data
          let worst = 0
          INDICES.forEach((row, i) => {
            for (let c = 0; c < f.n; c++) {
              let acc = 0
              let mag = 0
              for (let k = 0; k < d; k++) {
                const p = th[row * d + k] * wh[k * f.n + c]
                acc += p
                mag += Math.abs(p)
              }
              const got = y[i * f.n + c]
              const tol = 2 * d * 2 ** -23 * mag + 2 ** -23 * mag + 2 ** -23 * Math.abs(acc) + 1e-30
              worst = Math.max(worst, Math.abs(got - acc) / tol)
              if (Math.abs(got - acc) > tol) t.fail(`row ${i} col ${c}: ORT ${got}, here ${acc}, tol ${tol}`)
            }
          })
          t.log(`worst |Δ| / bound = ${worst.toFixed(3)}`)
          t.pass()
        })
      }
    }
  }
}

test('qdq and matmulnbits write the same table numbers (bit for bit)', async (t) => {
  const f = embeddingModel()
  for (const bits of [4, 8]) {
    for (const symmetric of [true, false]) {
      const a = await quantizeWeights(f.bytes, { bits, symmetric, format: 'qdq', ops: ['Gather'] })
      const b = await quantizeWeights(f.bytes, { bits, symmetric, ops: ['Gather'] })
      t.is(a.report.opsetAfter, 21)
      t.deepEqual(tableHat(a.model, a.model.graph.nodes[0], f, bits, 32), tableHat(b.model, b.model.graph.nodes[0], f, bits, 32))
      t.deepEqual(a.model.graph.nodes.map((x) => x.opType), ['DequantizeLinear', 'Gather', 'MatMul'])
      t.deepEqual(b.model.graph.nodes.map((x) => x.opType), ['GatherBlockQuantized', 'MatMul'])
    }
  }
})

test('a Gather on axis 1 is skipped with the reason; the default ops leave Gather alone', async (t) => {
  const f = embeddingModel({ axis: 1, v: 64, d: 64 })
  const { model, report } = await quantizeWeights(f.bytes, { bits: 4, ops: ['Gather', 'MatMul'] })
  t.deepEqual(report.skipped.map((s) => [s.node, s.opType]), [['embed', 'Gather']])
  t.regex(report.skipped[0].reason, /axis 1/)
  t.true(model.graph.initializers.has('table'))
  t.is(model.graph.nodes[0].opType, 'Gather')

  const plain = embeddingModel()
  const def = await quantizeWeights(plain.bytes, { bits: 4 })
  t.deepEqual(def.model.graph.nodes.map((x) => x.opType), ['Gather', 'MatMulNBits'])
  t.deepEqual(def.report.layers.map((l) => l.opType), ['MatMul'])
  t.deepEqual(def.report.skipped, [])

  await t.throwsAsync(() => quantizeWeights(plain.bytes, { bits: 4, ops: ['Gather', 'Conv'] }), { instanceOf: RangeError, message: /Gather/ })
})

test('4-bit GatherBlockQuantized with an odd row length is skipped with the reason; qdq writes it', async (t) => {
  const f = embeddingModel({ d: 33 })
  const nb = await quantizeWeights(f.bytes, { bits: 4, ops: ['Gather'] })
  t.is(nb.report.skipped.length, 1)
  t.regex(nb.report.skipped[0].reason, /odd/)
  const qdq = await quantizeWeights(f.bytes, { bits: 4, format: 'qdq', ops: ['Gather'] })
  t.is(qdq.report.layers.length, 1)
  const th = tableHat(qdq.model, qdq.model.graph.nodes[0], f, 4, 32)
  const y = (await runModel(modelToBytes(qdq.model), ids())).Y.data
  t.is(y.length, INDICES.length * f.n)
  t.true(th.every(Number.isFinite))
})
