// The package surface: argument checking and error classes, async variants, borrowed inputs,
// concurrent observer updates. Numbers are checked against hand-computed values.
import test from 'ava'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const q = require('../dist/index.js')
const { affine, computeEncoding, MinMaxObserver, HistogramObserver, compareTensors } = q

test('quantize picks the smallest integer array for the grid and follows AIMET\'s convention', (t) => {
  const x = Float32Array.of(-1, -0.5, 0, 0.25, 0.5, 1, 2)
  // q = clamp(round(x/0.5) − offset, qmin, qmax); offset −2 → zero point 2
  const u8 = affine.quantize(x, 0.5, -2, 0, 255)
  t.true(u8 instanceof Uint8Array)
  t.deepEqual([...u8], [0, 1, 2, 2, 3, 4, 6]) // 0.25/0.5 = 0.5 → 0 (half to even) → 0 + 2
  t.true(affine.quantize(x, 1, 0, -8, 7) instanceof Int8Array)
  t.true(affine.quantize(x, 1, 0, -32768, 32767) instanceof Int16Array)
  t.true(affine.quantize(x, 1, 0, 0, 65535) instanceof Uint16Array)
  t.true(affine.quantize(x, 1, 0, -(2 ** 31), 2 ** 31 - 1) instanceof Int32Array)
  // x̂ = (q + offset)·scale
  t.deepEqual([...affine.dequantize(u8, 0.5, -2)], [-1, -0.5, 0, 0, 0.5, 1, 2])
})

test('bad arguments throw RangeError/TypeError naming the argument', (t) => {
  const x = new Float32Array(6)
  t.throws(() => affine.quantize(x, 0, 0, 0, 255), { instanceOf: RangeError, message: /scale/ })
  t.throws(() => affine.quantize(x, NaN, 0, 0, 255), { instanceOf: RangeError, message: /scale/ })
  t.throws(() => affine.quantize(x, 1, 0, 10, 5), { instanceOf: RangeError, message: /qmin/ })
  t.throws(() => affine.quantize(x, 1, 0.5, 0, 255), { instanceOf: TypeError, message: /offset/ })
  t.throws(() => affine.quantize([1, 2], 1, 0, 0, 255), { instanceOf: TypeError, message: /^x: expected a Float32Array/ })
  t.throws(() => affine.quantize(x, 1, 0, 0, 255, { shape: [2, 2] }), { instanceOf: TypeError, message: /shape/ })
  t.throws(() => affine.quantize(x, Float32Array.of(1, 1), 0, 0, 255, { shape: [2, 3], axis: 5 }), { instanceOf: RangeError, message: /axis/ })
  t.throws(() => affine.quantize(x, Float32Array.of(1, 1), 0, 0, 255), { instanceOf: TypeError, message: /per-tensor/ })
  // Checked in Rust: a per-channel scale array with a zero in it, and a wrong number of scales.
  t.throws(() => affine.quantize(x, Float32Array.of(1, 0), 0, 0, 255, { shape: [2, 3], axis: 0 }), { instanceOf: RangeError, message: /scale\[1\]/ })
  t.throws(() => affine.quantize(x, Float32Array.of(1, 1, 1), 0, 0, 255, { shape: [2, 3], axis: 0 }), { instanceOf: TypeError, message: /scale/ })
  t.throws(() => affine.quantize(x, 1, 0, 0, 2 ** 33), { instanceOf: RangeError })
  t.throws(() => affine.dequantize(new Float64Array(2), 1, 0), { instanceOf: TypeError, message: /^q:/ })
  t.throws(() => computeEncoding({ min: 1, max: 0 }, { bitwidth: 8 }), { instanceOf: RangeError, message: /min/ })
  t.throws(() => computeEncoding({ min: 0, max: 1 }, { bitwidth: 1 }), { instanceOf: RangeError, message: /bitwidth/ })
  t.throws(() => new HistogramObserver().encoding({ scheme: 'kl', bitwidth: 8 }), { instanceOf: TypeError, message: /scheme/ })
  t.throws(() => new HistogramObserver().encoding({ scheme: 'min_max', bitwidth: 8 }), { message: /empty|no data|observed/i })
})

test('per-channel and per-block layouts use the right scale for each element', (t) => {
  // shape [2, 3], axis 0: row 0 scale 1, row 1 scale 0.5
  const x = Float32Array.of(1, 2, 3, 1, 2, 3)
  t.deepEqual([...affine.quantize(x, Float32Array.of(1, 0.5), Int32Array.of(0, 0), -128, 127, { shape: [2, 3], axis: 0 })], [1, 2, 3, 2, 4, 6])
  // axis -1 (columns): scales 1, 2, 4
  t.deepEqual([...affine.quantize(x, [1, 2, 4], [0, 0, 0], -128, 127, { shape: [2, 3], axis: -1 })], [1, 1, 1, 1, 1, 1])
  // blocks of 2 along axis 1: scales [[1, 10], [2, 20]]; the last block holds one column
  t.deepEqual([...affine.quantize(x, [1, 10, 2, 20], [0, 0, 0, 0], -128, 127, { shape: [2, 3], axis: 1, blockSize: 2 })], [1, 2, 0, 0, 1, 0])
})

test('async variants give the same results as the sync ones and return promises at once', async (t) => {
  const n = 1 << 20
  const x = new Float32Array(n)
  for (let i = 0; i < n; i++) x[i] = Math.sin(i) * 3
  const p = affine.quantizeDequantizeAsync(x, 6 / 255, -128, 0, 255)
  t.true(p instanceof Promise)
  const [a, b] = await Promise.all([p, affine.quantizeAsync(x, 6 / 255, -128, 0, 255)])
  t.deepEqual(a, affine.quantizeDequantize(x, 6 / 255, -128, 0, 255))
  t.deepEqual(b, affine.quantize(x, 6 / 255, -128, 0, 255))
  t.deepEqual(await affine.dequantizeAsync(b, 6 / 255, -128), a)
  await t.throwsAsync(() => affine.quantizeAsync(x, Float32Array.of(1, -1), 0, 0, 255, { shape: [2, n / 2], axis: 0 }), { instanceOf: RangeError, message: /scale\[1\]/ })
})

test('a detached input is refused, not read', (t) => {
  const x = new Float32Array(16).fill(1)
  structuredClone(x.buffer, { transfer: [x.buffer] })
  t.is(x.length, 0)
  t.throws(() => affine.quantize(x, 1, 0, 0, 255, { shape: [16] }), { instanceOf: TypeError, message: /shape/ })
})

test('computeEncoding: hand-computed symmetric, strict, unsigned and asymmetric cases', (t) => {
  const sym = computeEncoding({ min: -1, max: 1 }, { bitwidth: 8, symmetric: true })
  t.is(sym.scale, Math.fround(1 / 127))
  t.is(sym.offset, 0)
  t.deepEqual([sym.qmin, sym.qmax], [-128, 127])
  const strict = computeEncoding({ min: -1, max: 0.5 }, { bitwidth: 8, symmetric: true, strictSymmetric: true })
  t.is(strict.scale, Math.fround(1 / 127))
  t.deepEqual([strict.qmin, strict.qmax], [-127, 127])
  const uns = computeEncoding({ min: 0.2, max: 2.55 }, { bitwidth: 8, symmetric: true, unsignedSymmetric: true })
  t.is(uns.scale, Math.fround(2.55 / 255))
  t.deepEqual([uns.qmin, uns.qmax, uns.offset], [0, 255, 0])
  // [−0.5, 1.5]: scale 2/255, offset round(−0.5/(2/255)) = round(−63.75) = −64
  const asym = computeEncoding({ min: -0.5, max: 1.5 }, { bitwidth: 8 })
  t.is(asym.scale, Math.fround(2 / 255))
  t.is(asym.offset, -64)
  // zero always in range: [2, 3] becomes [0, 3]
  const pos = computeEncoding({ min: 2, max: 3 }, { bitwidth: 8 })
  t.is(pos.offset, 0)
  t.is(pos.scale, Math.fround(3 / 255))
})

test('MinMaxObserver: per-tensor and per-channel extremes, merge, and a NaN names its index', (t) => {
  const o = new MinMaxObserver({ axis: 1 })
  o.update(Float32Array.of(1, -2, 3, 4, 5, -6), [2, 3])
  t.deepEqual(o.min, [1, -2, -6])
  t.deepEqual(o.max, [4, 5, 3])
  const other = new MinMaxObserver({ axis: 1 })
  other.update(Float32Array.of(10, 0, 0), [1, 3])
  o.merge(other)
  t.deepEqual(o.max, [10, 5, 3])
  const enc = o.encodings({ bitwidth: 8, symmetric: true })
  t.is(enc.length, 3)
  t.is(enc[0].scale, Math.fround(10 / 127))
  t.throws(() => o.encoding({ bitwidth: 8 }), { instanceOf: TypeError, message: /per-channel/ })
  t.throws(() => new MinMaxObserver().update(Float32Array.of(0, NaN)), { message: /1/ })
})

test('HistogramObserver: two in-flight async updates on one observer do not race', async (t) => {
  const a = new HistogramObserver({ bins: 64 })
  const b = new HistogramObserver({ bins: 64 })
  const chunks = Array.from({ length: 8 }, (_, k) => Float32Array.from({ length: 200_000 }, (_, i) => ((i * 7919 + k * 104729) % 1000) / 100 - 5))
  await Promise.all(chunks.map((c) => a.updateAsync(c)))
  for (const c of chunks) b.update(c)
  const total = (h) => h.counts.reduce((s, v) => s + v, 0)
  t.is(total(a), 8 * 200_000)
  t.is(total(b), 8 * 200_000)
  t.deepEqual(a.range, b.range)
})

test('HistogramObserver: memory does not grow over 1,000 updates with a growing range', (t) => {
  const h = new HistogramObserver()
  for (let i = 1; i <= 1000; i++) h.update(Float32Array.of(-i, i * 1.5, 0.1 * i))
  t.is(h.counts.length, 2048)
  t.is(h.counts.reduce((s, v) => s + v, 0), 3000)
  t.deepEqual([h.range.min, h.range.max], [-1000, 1500])
})

test('percentile on a known distribution: 0..999 uniform, 99th percentile ≈ 989', (t) => {
  const h = new HistogramObserver()
  h.update(Float32Array.from({ length: 100_000 }, (_, i) => i % 1000))
  const e = h.encoding({ scheme: 'percentile', percentile: 99, bitwidth: 8 })
  // asymmetric from [0, p99]: the grid's top is p99 rounded onto the grid
  t.true(Math.abs(e.max - 989) < 2 * (999 / 2048) + e.scale, `max ${e.max}`)
})

test('compareTensors: hand-computed SQNR', (t) => {
  const s = compareTensors(Float32Array.of(1, 2, 3), Float32Array.of(1.5, 2, 2))
  t.is(s.sqnrDb, 10 * Math.log10(14 / 1.25))
  t.is(s.maxAbsError, 1)
})

test('quantizeDequantize into a caller\'s array and in place equal the allocating form', async (t) => {
  const x = Float32Array.from({ length: 100_000 }, (_, i) => Math.cos(i) * 2)
  const expected = affine.quantizeDequantize(x, 4 / 255, -128, 0, 255)
  const out = new Float32Array(x.length)
  t.is(affine.quantizeDequantize(x, 4 / 255, -128, 0, 255, { out }), out)
  t.deepEqual(out, expected)
  const y = x.slice()
  t.is(affine.quantizeDequantize(y, 4 / 255, -128, 0, 255, { out: y }), y)
  t.deepEqual(y, expected)
  const z = x.slice()
  await affine.quantizeDequantizeAsync(z, 4 / 255, -128, 0, 255, { out: z })
  t.deepEqual(z, expected)
  // A partial overlap is refused rather than computed wrongly.
  const buf = new Float32Array(200_001)
  t.throws(() => affine.quantizeDequantize(buf.subarray(0, 100_000), 1, 0, 0, 255, { out: buf.subarray(1, 100_001) }), { instanceOf: TypeError, message: /overlaps/ })
  t.throws(() => affine.quantizeDequantize(x, 1, 0, 0, 255, { out: new Float32Array(3) }), { instanceOf: TypeError, message: /opts\.out/ })
})

test('a Rust panic becomes a JS error, sync and async, and the process goes on', async (t) => {
  const native = require('../index.js') // the binding's test hooks are not part of the public API
  t.throws(() => native.testPanicSync(), { message: /deliberate panic/ })
  await t.throwsAsync(() => native.testPanicAsync(), { message: /internal error in testPanicAsync: deliberate panic/ })
  t.deepEqual([...affine.quantize(Float32Array.of(1), 1, 0, 0, 255)], [1])
})
