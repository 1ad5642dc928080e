// quantizeWeights, format 'qdq' (opset-21 blocked DequantizeLinear → MatMul) encodes the same
// numbers as 'matmulnbits': the dequantized weights are identical bit for bit, and ONNX Runtime's
// outputs agree within 1e-5 of the output's magnitude (the two run different float32 kernels:
// DequantizeLinear + sgemm against MatMulNBits, which sum in different orders).
import test from 'ava'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runModel } from './helpers/ort.mjs'
import { randoms } from './helpers/random.mjs'

const require = createRequire(import.meta.url)
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { modelToBytes } = require('../dist/onnx/saveModel.js')
const { unpack4bit } = require('../dist/onnx/packed4bit.js')
const { quantizeWeights, unpackMatMulNBits, affine } = require('../dist/index.js')

const FLOAT = 1
const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tiny-transformer.onnx')

function maxRelDiff(a, b) {
  let peak = 0
  let diff = 0
  for (let i = 0; i < a.length; i++) {
    peak = Math.max(peak, Math.abs(a[i]))
    diff = Math.max(diff, Math.abs(a[i] - b[i]))
  }
  return diff / peak
}

/** Ŵ [K, N] from the DequantizeLinear inputs of a 'qdq' model. */
function qdqWeight(model, dq, k, n, bits, bs) {
  const [x, s, z] = dq.inputs.map((name) => model.graph.initializers.get(name))
  const count = k * n
  const signed = x.dataType === 22 || x.dataType === 3
  const q = bits === 4 ? unpack4bit(x.data, count, signed) : x.data
  const nb = Math.ceil(k / bs)
  const offset = z ? Int32Array.from(bits === 4 ? unpack4bit(z.data, nb * n, false) : z.data, (v) => -v) : 0
  return affine.dequantize(q, s.data, offset, { shape: [k, n], axis: 0, blockSize: bs })
}

function matmulNBitsWeight(model, node, k, n, bits, bs) {
  const [b, s, z] = node.inputs.slice(1).map((name) => model.graph.initializers.get(name))
  const u = unpackMatMulNBits(b.data, s.data, z?.data, { k, n, bits, blockSize: bs })
  return affine.dequantize(u.codes, u.scales, Int32Array.from(u.zeroPoints, (v) => -v), { shape: [k, n], axis: 0, blockSize: bs })
}

for (const bits of [4, 8]) {
  for (const symmetric of [true, false]) {
    test(`int${bits} ${symmetric ? 'symmetric' : 'asymmetric'}: qdq and matmulnbits dequantize to the same weight and agree in ORT`, async (t) => {
      const [m, k, n, bs] = [6, 72, 20, 32]
      const bytes = buildModel({
        opset: 13,
        inputs: [{ name: 'A', dataType: FLOAT, dims: [m, k] }],
        outputs: [{ name: 'Y', dataType: FLOAT, dims: [m, n] }],
        initializers: [{ name: 'W', dataType: FLOAT, dims: [k, n], data: randoms(k * n, bits * 10 + k, 0.3) }],
        nodes: [{ opType: 'MatMul', inputs: ['A', 'W'], outputs: ['Y'], name: 'mm' }],
      })
      const nbits = await quantizeWeights(bytes, { bits, symmetric, blockSize: bs })
      const qdq = await quantizeWeights(bytes, { bits, symmetric, blockSize: bs, format: 'qdq' })
      t.deepEqual(qdq.model.graph.nodes.map((x) => x.opType), ['DequantizeLinear', 'MatMul'])
      t.is(qdq.report.opsetAfter, 21)
      const dq = qdq.model.graph.nodes[0]
      t.deepEqual(Object.fromEntries([...dq.attributes].map(([key, v]) => [key, Number(v.value)])), { axis: 0, block_size: bs })
      t.is(dq.inputs.length, symmetric ? 2 : 3)
      t.deepEqual(qdqWeight(qdq.model, dq, k, n, bits, bs), matmulNBitsWeight(nbits.model, nbits.model.graph.nodes[0], k, n, bits, bs))
      t.is(qdq.report.layers[0].sqnrDb, nbits.report.layers[0].sqnrDb)

      const feeds = { A: { type: 'float32', data: randoms(m * k, 3, 1), dims: [m, k] } }
      const a = (await runModel(modelToBytes(nbits.model), feeds)).Y.data
      const b = (await runModel(modelToBytes(qdq.model), feeds)).Y.data
      const rel = maxRelDiff(a, b)
      t.log(`max |Δ| / max |y| = ${rel.toExponential(2)}`)
      t.true(rel <= 1e-5, `relative difference ${rel}`)
    })
  }
}

test('tiny transformer: qdq (opset 17 → 21) and matmulnbits logits agree within 1e-5 relative', async (t) => {
  const nbits = await quantizeWeights(FIXTURE, { bits: 4 })
  const qdq = await quantizeWeights(FIXTURE, { bits: 4, format: 'qdq' })
  t.is(qdq.report.opsetBefore, 17)
  t.is(qdq.report.opsetAfter, 21)
  t.is(qdq.report.layers.length, nbits.report.layers.length)
  const feeds = { input: { type: 'float32', data: randoms(16 * 784, 11, 0.5).map(Math.abs), dims: [16, 28, 28] } }
  const a = (await runModel(modelToBytes(nbits.model), feeds)).logits.data
  const b = (await runModel(modelToBytes(qdq.model), feeds)).logits.data
  const rel = maxRelDiff(a, b)
  t.log(`transformer logits: max |Δ| / max |y| = ${rel.toExponential(2)}`)
  t.true(rel <= 1e-5, `relative difference ${rel}`)
})
