//! float32 → float16 / bfloat16 bit patterns (and float16 → float32) for weight conversion.
//! Input borrowed from JS for the duration of the (synchronous) call; output handed over without a copy.
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::half;

#[napi(catch_unwind)]
pub fn f32_to_f16_native(x: Float32Array) -> Uint16Array {
    Uint16Array::new(half::f32_to_f16(&x))
}

#[napi(catch_unwind)]
pub fn f32_to_bf16_native(x: Float32Array) -> Uint16Array {
    Uint16Array::new(half::f32_to_bf16(&x))
}

#[napi(catch_unwind)]
pub fn f16_to_f32_native(h: Uint16Array) -> Float32Array {
    Float32Array::new(half::f16_to_f32(&h))
}

#[napi(catch_unwind)]
pub fn max_abs_finite_native(x: Float32Array) -> f64 {
    half::max_abs_finite(&x) as f64
}
