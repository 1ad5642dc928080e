//! Axis permutation of a float32 tensor, for weight rearrangements in graph rewrites. Input
//! borrowed for the (synchronous) call; output handed over without a copy.
use crate::errors::range_error;
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::permute::permute;

#[napi(catch_unwind)]
pub fn permute_axes(data: Float32Array, dims: Vec<u32>, perm: Vec<u32>) -> napi::Result<Float32Array> {
    let dims: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let perm: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
    permute(&data, &dims, &perm).map(Float32Array::new).map_err(range_error)
}
