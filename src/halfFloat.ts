// float32 ⇄ float16 / bfloat16 conversion of whole tensors, done in Rust (round to nearest, ties
// to even; overflow to ±inf; NaN stays NaN; subnormals kept): crates/quantkit-core/src/half.rs.
// Half-precision values travel as Uint16Array bit patterns, as in ONNX tensors and ORT's float16.
import { callNative, native } from './native.js'

function checkArray(v: unknown, tag: string, where: string): void {
  const t = ArrayBuffer.isView(v) ? (v as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag] : undefined
  if (t !== tag) throw new TypeError(`${where}: expected a ${tag}, got ${t ?? typeof v}`)
}

/** float32 → float16 bit patterns. */
export function float32ToFloat16(x: Float32Array): Uint16Array {
  checkArray(x, 'Float32Array', 'float32ToFloat16')
  return callNative(() => native.f32ToF16Native(x))
}

/** float32 → bfloat16 bit patterns. */
export function float32ToBfloat16(x: Float32Array): Uint16Array {
  checkArray(x, 'Float32Array', 'float32ToBfloat16')
  return callNative(() => native.f32ToBf16Native(x))
}

/** float16 bit patterns → float32 (exact). */
export function float16ToFloat32(h: Uint16Array): Float32Array {
  checkArray(h, 'Uint16Array', 'float16ToFloat32')
  return callNative(() => native.f16ToF32Native(h))
}

/** Largest |x| over the finite elements (0 when there are none). */
export function maxAbsFinite(x: Float32Array): number {
  checkArray(x, 'Float32Array', 'maxAbsFinite')
  return callNative(() => native.maxAbsFiniteNative(x))
}
