// quantkit's affine kernels against ONNX Runtime's own QuantizeLinear / DequantizeLinear,
// bit for bit: one-node models built by the test, run with graph optimisations off.
import test from 'ava'
import { random as rng } from './helpers/random.mjs'
import { createRequire } from 'node:module'
import { runModel } from './helpers/ort.mjs'

const require = createRequire(import.meta.url)
const { affine } = require('../dist/index.js')
const { buildModel } = require('../dist/onnx/modelBuilder.js')
const { DataType: T } = require('../dist/onnx/elementType.js')
const { pack4bit } = require('../dist/onnx/packed4bit.js')

const GRIDS = {
  int8: { qmin: -128, qmax: 127, dt: T.INT8, Arr: Int8Array },
  uint8: { qmin: 0, qmax: 255, dt: T.UINT8, Arr: Uint8Array },
  int16: { qmin: -32768, qmax: 32767, dt: T.INT16, Arr: Int16Array },
  uint16: { qmin: 0, qmax: 65535, dt: T.UINT16, Arr: Uint16Array },
  int4: { qmin: -8, qmax: 7, dt: T.INT4, Arr: Int8Array, packed: true },
  uint4: { qmin: 0, qmax: 15, dt: T.UINT4, Arr: Uint8Array, packed: true },
}


function zpTensor(grid, name, dims, zps) {
  const data = grid.packed ? pack4bit(zps, grid.qmin < 0) : grid.Arr.from(zps)
  return { name, dataType: grid.dt, dims, data }
}

/**
 * A model computing, from x: q (the quantized values, read back through a DequantizeLinear with
 * scale 1 and zero point 0, which is exact and also works for 4-bit types whose tensors
 * onnxruntime-node cannot return) and y = DequantizeLinear(q) with the real parameters.
 */
function qdqModel(grid, shape, scale, zps, { axis, blockSize, scaleDims } = {}) {
  const attrs = {}
  if (axis !== undefined) attrs.axis = axis
  if (blockSize !== undefined) attrs.block_size = blockSize
  const sdims = scaleDims ?? (axis === undefined ? [] : [scale.length])
  return buildModel({
    opset: 21,
    inputs: [{ name: 'x', dataType: T.FLOAT, dims: shape }],
    outputs: [{ name: 'qf', dataType: T.FLOAT, dims: shape }, { name: 'y', dataType: T.FLOAT, dims: shape }],
    initializers: [
      { name: 's', dataType: T.FLOAT, dims: sdims, data: Float32Array.from(scale) },
      zpTensor(grid, 'zp', sdims, zps),
      { name: 'one', dataType: T.FLOAT, dims: [], data: Float32Array.of(1) },
      zpTensor(grid, 'zero', [], [0]),
    ],
    nodes: [
      { opType: 'QuantizeLinear', inputs: ['x', 's', 'zp'], outputs: ['q'], attributes: { ...attrs } },
      { opType: 'DequantizeLinear', inputs: ['q', 'one', 'zero'], outputs: ['qf'] },
      { opType: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['y'], attributes: { ...attrs } },
    ],
  })
}

function sameBits(t, actual, expected, what) {
  t.is(actual.length, expected.length, `${what}: length`)
  const a = new Uint32Array(Float32Array.from(actual).buffer)
  const e = new Uint32Array(Float32Array.from(expected).buffer)
  let bad = -1
  for (let i = 0; i < a.length; i++) if (a[i] !== e[i]) { bad = i; break }
  t.is(bad, -1, bad >= 0 ? `${what}: first difference at ${bad}: quantkit ${actual[bad]} vs ORT ${expected[bad]}` : what)
}

function sameInts(t, actual, expectedFloats, what) {
  t.is(actual.length, expectedFloats.length, `${what}: length`)
  let bad = -1
  for (let i = 0; i < actual.length; i++) if (actual[i] !== expectedFloats[i]) { bad = i; break }
  t.is(bad, -1, bad >= 0 ? `${what}: first difference at ${bad}: quantkit ${actual[bad]} vs ORT ${expectedFloats[bad]}` : what)
}

// Values that probe the edges: ties at k + 0.5 (exact in float32 with a power-of-two scale),
// saturation, signed zeros, subnormals, infinities, NaN.
function edgeValues(scale) {
  const v = []
  for (let k = -300; k <= 300; k++) v.push((k + 0.5) * scale, k * scale, (k + 0.49999997) * scale)
  v.push(0, -0, 1e-45, -1e-45, 1.1754942e-38, -1.1754942e-38, Infinity, -Infinity, NaN, 1e30, -1e30, 3.4028235e38)
  // An even count: ORT 1.23's 4-bit QuantizeLinear sends a lone trailing element whose quotient
  // overflows to inf (3.4e38 / 0.25) to the grid's minimum, unlike the same value elsewhere.
  v.push(0.125)
  return Float32Array.from(v)
}

async function checkAgainstOrt(t, gridName, x, shape, scale, offsets, opts = {}) {
  const grid = GRIDS[gridName]
  const zps = offsets.map((o) => -o)
  const bytes = qdqModel(grid, shape, scale, zps, opts)
  const ort = await runModel(bytes, { x: { type: 'float32', data: x, dims: shape } })
  const kopts = { shape, axis: opts.axis, blockSize: opts.blockSize }
  const sc = scale.length === 1 && opts.axis === undefined ? scale[0] : Float32Array.from(scale)
  const off = offsets.length === 1 && opts.axis === undefined ? offsets[0] : Int32Array.from(offsets)
  const q = affine.quantize(x, sc, off, grid.qmin, grid.qmax, kopts)
  sameInts(t, q, ort.qf.data, `${gridName} quantize`)
  sameBits(t, affine.dequantize(q, sc, off, kopts), ort.y.data, `${gridName} dequantize`)
  sameBits(t, affine.quantizeDequantize(x, sc, off, grid.qmin, grid.qmax, kopts), ort.y.data, `${gridName} quantizeDequantize`)
  const qa = await affine.quantizeAsync(x, sc, off, grid.qmin, grid.qmax, kopts)
  sameInts(t, qa, ort.qf.data, `${gridName} quantizeAsync`)
  sameBits(t, await affine.quantizeDequantizeAsync(x, sc, off, grid.qmin, grid.qmax, kopts), ort.y.data, `${gridName} quantizeDequantizeAsync`)
}

for (const gridName of Object.keys(GRIDS)) {
  const grid = GRIDS[gridName]
  const mid = Math.round((grid.qmin + grid.qmax) / 2)

  test(`${gridName} per-tensor: ties, saturation, ±0, subnormals, ±inf, NaN`, async (t) => {
    const scale = grid.qmax > 1000 ? 0.0078125 : 0.25
    const x = edgeValues(scale)
    for (const offset of [0, grid.qmin < 0 ? 3 : -mid]) {
      await checkAgainstOrt(t, gridName, x, [x.length], [scale], [offset])
    }
  })

  test(`${gridName} per-tensor: large random tensor with an awkward scale`, async (t) => {
    const r = rng(grid.qmax + 17)
    const n = 300_001 // above the kernels' threading threshold
    const x = new Float32Array(n)
    for (let i = 0; i < n; i++) x[i] = (r() - 0.45) * 7 + (r() < 0.001 ? 1000 : 0)
    const scale = Math.fround(6.3 / (grid.qmax - grid.qmin))
    const offset = grid.qmin < 0 ? -1 : -Math.round(mid * 0.9)
    await checkAgainstOrt(t, gridName, x, [n], [scale], [offset])
  })

  test(`${gridName} per-axis (axis 0 and a middle axis)`, async (t) => {
    const r = rng(7 + grid.qmax)
    const shape = [5, 6, 7]
    const n = 5 * 6 * 7
    const x = new Float32Array(n)
    for (let i = 0; i < n; i++) x[i] = (r() - 0.5) * 4
    for (const axis of [0, 1]) {
      const c = shape[axis]
      const scale = Array.from({ length: c }, (_, i) => Math.fround((0.5 + i) / (grid.qmax - grid.qmin)))
      const offsets = Array.from({ length: c }, (_, i) => (grid.qmin < 0 ? i - 2 : -((mid + i) % (grid.qmax + 1))))
      await checkAgainstOrt(t, gridName, x, shape, scale, offsets, { axis })
    }
  })

  test(`${gridName} blocked (last axis, partial last block; and axis 0)`, async (t) => {
    const r = rng(99 + grid.qmax)
    const shape = [4, 10]
    const x = new Float32Array(40)
    for (let i = 0; i < 40; i++) x[i] = (r() - 0.5) * 6
    // axis 1, block 4: scales [4, 3]; the last block holds 2 columns.
    let scale = Array.from({ length: 12 }, (_, i) => Math.fround((1 + i * 0.25) / (grid.qmax - grid.qmin)))
    let offsets = Array.from({ length: 12 }, (_, i) => (grid.qmin < 0 ? (i % 3) - 1 : -((mid + i) % (grid.qmax + 1))))
    await checkAgainstOrt(t, gridName, x, shape, scale, offsets, { axis: 1, blockSize: 4, scaleDims: [4, 3] })
    // axis 0, block 3: scales [2, 10]; rows 3.. form the partial block.
    scale = Array.from({ length: 20 }, (_, i) => Math.fround((1 + i * 0.1) / (grid.qmax - grid.qmin)))
    offsets = Array.from({ length: 20 }, (_, i) => (grid.qmin < 0 ? (i % 3) - 1 : -((mid + i) % (grid.qmax + 1))))
    await checkAgainstOrt(t, gridName, x, shape, scale, offsets, { axis: 0, blockSize: 3, scaleDims: [2, 10] })
  })
}

// QuantizeLinear has no int32 output type; DequantizeLinear takes int32 (the bias grid) with a
// zero point of 0 only.
test('int32 (bias grid): quantize by hand, dequantize against ORT', async (t) => {
  const x = Float32Array.from([0, 1.5, -2.5, 1e9, -1e9, 3e9, -3e9, 12345.678, NaN, Infinity, -Infinity])
  const q = affine.quantize(x, 0.5, 0, -2147483648, 2147483647)
  t.true(q instanceof Int32Array)
  t.deepEqual([...q], [0, 3, -5, 2e9, -2e9, 2147483647, -2147483648, 24691, -2147483648, 2147483647, -2147483648])
  const ints = Int32Array.from([0, 3, -5, 2147483647, -2147483648, 123456789, -7])
  const bytes = buildModel({
    opset: 21,
    inputs: [{ name: 'q', dataType: T.INT32, dims: [ints.length] }],
    outputs: [{ name: 'y', dataType: T.FLOAT, dims: [ints.length] }],
    initializers: [
      { name: 's', dataType: T.FLOAT, dims: [], data: Float32Array.of(0.37) },
      { name: 'zp', dataType: T.INT32, dims: [], data: Int32Array.of(0) },
    ],
    nodes: [{ opType: 'DequantizeLinear', inputs: ['q', 's', 'zp'], outputs: ['y'] }],
  })
  const ort = await runModel(bytes, { q: { type: 'int32', data: ints, dims: [ints.length] } })
  sameBits(t, affine.dequantize(ints, 0.37, 0), ort.y.data, 'int32 dequantize')
})
