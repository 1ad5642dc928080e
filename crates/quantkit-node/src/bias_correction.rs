//! Analytical bias correction's reduction (quantkit_core::bias_correction).
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::bias_correction::weight_delta_dot;

use crate::errors::range_error;

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn weight_delta_dot_native(w: Float32Array, wq: Float32Array, m: u32, cg: u32, k: u32, group: u32, transposed: bool, e: Float64Array) -> napi::Result<Float64Array> {
    let s = weight_delta_dot(&w, &wq, m as usize, cg as usize, k as usize, group as usize, transposed, &e).map_err(range_error)?;
    Ok(Float64Array::new(s))
}
