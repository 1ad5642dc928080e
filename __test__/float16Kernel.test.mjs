// The Rust float32 → float16/bfloat16 conversion through the binding, against bit patterns
// computed by hand (crates/quantkit-core/src/half.rs has the exhaustive tests).
import test from 'ava'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { float32ToFloat16, float32ToBfloat16, float16ToFloat32, maxAbsFinite } = require('../dist/index.js')

const hex = (a) => [...a].map((v) => `0x${v.toString(16).padStart(4, '0')}`)

test('float32 → float16 bit patterns: 1, max, overflow, subnormal, NaN, ties to even', (t) => {
  const cases = [
    [1.0, 0x3c00], [-2.0, 0xc000], [0, 0x0000], [-0, 0x8000],
    [65504, 0x7bff], [65519.99, 0x7bff], [65520, 0x7c00], [-1e6, 0xfc00], [Infinity, 0x7c00],
    [5.96e-8, 0x0001], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -24, 0x0002], [2 ** -14, 0x0400],
    [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [2049, 0x6800], [2051, 0x6802], [0.1, 0x2e66],
  ]
  const got = float32ToFloat16(Float32Array.from(cases, (c) => c[0]))
  t.deepEqual(hex(got), hex(cases.map((c) => c[1])))
  const nan = float32ToFloat16(Float32Array.of(NaN))[0]
  t.is(nan & 0x7c00, 0x7c00)
  t.not(nan & 0x03ff, 0, 'NaN stays NaN')
  t.true(Number.isNaN(float16ToFloat32(Uint16Array.of(nan))[0]))
})

test('float32 → bfloat16 bit patterns and the range helper', (t) => {
  const x = new Float32Array(new Uint32Array([0x3f800000, 0x3f808000, 0x3f818000, 0x3f808001, 0x7f7fffff, 0x7f800001]).buffer)
  const got = float32ToBfloat16(x)
  t.deepEqual(hex(got.subarray(0, 5)), hex([0x3f80, 0x3f80, 0x3f82, 0x3f81, 0x7f80]))
  t.true((got[5] & 0x7f80) === 0x7f80 && (got[5] & 0x7f) !== 0, 'NaN stays NaN')
  t.is(maxAbsFinite(Float32Array.of(1, -7e4, Infinity, NaN)), 70000)
  t.throws(() => float32ToFloat16([1, 2]), { instanceOf: TypeError })
})

test('a large tensor converts on the pool and round-trips within half an ulp', (t) => {
  const n = 1 << 20
  const x = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 100)
  const back = float16ToFloat32(float32ToFloat16(x))
  let worst = 0
  for (let i = 0; i < n; i += 997) worst = Math.max(worst, Math.abs(back[i] - x[i]) / Math.abs(x[i] || 1))
  t.true(worst <= 2 ** -11, `relative error ${worst}`)
})
