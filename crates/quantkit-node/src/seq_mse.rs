//! SeqMSE's per-channel loss reduction (quantkit_core::seq_mse).
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::seq_mse::channel_sum_squares;

use crate::errors::range_error;

#[napi(catch_unwind)]
pub fn channel_sum_squares_native(data: Float32Array, outer: u32, channels: u32, inner: u32) -> napi::Result<Float64Array> {
    let s = channel_sum_squares(&data, outer as usize, channels as usize, inner as usize).map_err(range_error)?;
    Ok(Float64Array::new(s))
}
