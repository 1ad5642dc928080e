//! Channel pruning's numerics (quantkit_core::pruning): sampling patches and outputs, channel
//! selection (weight magnitude or greedy contribution), gathering kept channels.
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::pruning::{self, PatchWindow};

use crate::errors::range_error;

/// A 2-D Conv window: sizes are [h, w] pairs, pads the [top, left] ones.
#[napi(object)]
pub struct PruningWindow {
    pub channels: u32,
    pub image: Vec<u32>,
    pub out: Vec<u32>,
    pub kernel: Vec<u32>,
    pub strides: Vec<u32>,
    pub dilations: Vec<u32>,
    pub pad_begin: Vec<u32>,
}

fn pair(name: &str, v: &[u32]) -> napi::Result<[usize; 2]> {
    match v {
        [a, b] => Ok([*a as usize, *b as usize]),
        _ => Err(range_error(format!("window.{name}: expected 2 values, got {}", v.len()))),
    }
}

fn window(w: &PruningWindow) -> napi::Result<PatchWindow> {
    Ok(PatchWindow {
        channels: w.channels as usize,
        image: pair("image", &w.image)?,
        out: pair("out", &w.out)?,
        kernel: pair("kernel", &w.kernel)?,
        strides: pair("strides", &w.strides)?,
        dilations: pair("dilations", &w.dilations)?,
        pad_begin: pair("padBegin", &w.pad_begin)?,
    })
}

fn indices(v: &[u32]) -> Vec<usize> {
    v.iter().map(|&i| i as usize).collect()
}

#[napi(catch_unwind)]
pub fn pruning_sample_positions(images: u32, per_image: u32, win: PruningWindow, seed: u32) -> napi::Result<Uint32Array> {
    let p = pruning::sample_positions(images as usize, per_image as usize, &window(&win)?, seed as u64).map_err(range_error)?;
    Ok(Uint32Array::new(p))
}

#[napi(catch_unwind)]
pub fn pruning_sample_patches(x: Float32Array, images: u32, win: PruningWindow, positions: Uint32Array, channels_kept: Option<Uint32Array>) -> napi::Result<Float32Array> {
    let kept = channels_kept.as_ref().map(|k| indices(k));
    let rows = pruning::sample_patches(&x, images as usize, &window(&win)?, &positions, kept.as_deref()).map_err(range_error)?;
    Ok(Float32Array::new(rows))
}

#[napi(catch_unwind)]
pub fn pruning_sample_outputs(y: Float32Array, images: u32, channels: u32, win: PruningWindow, positions: Uint32Array) -> napi::Result<Float32Array> {
    let rows = pruning::sample_outputs(&y, images as usize, channels as usize, &window(&win)?, &positions).map_err(range_error)?;
    Ok(Float32Array::new(rows))
}

#[napi(catch_unwind)]
pub fn pruning_channel_magnitudes(w: Float32Array, m: u32, c: u32, inner: u32) -> napi::Result<Float64Array> {
    let s = pruning::input_channel_magnitudes(&w, m as usize, c as usize, inner as usize).map_err(range_error)?;
    Ok(Float64Array::new(s))
}

#[napi(catch_unwind)]
pub fn pruning_top_channels(scores: Float64Array, keep: u32) -> napi::Result<Uint32Array> {
    let k = pruning::top_channels(&scores, keep as usize).map_err(range_error)?;
    Ok(Uint32Array::new(k.into_iter().map(|i| i as u32).collect()))
}

#[napi(catch_unwind)]
pub fn pruning_gather_axis(data: Float32Array, dims: Vec<u32>, axis: u32, keep: Uint32Array) -> napi::Result<Float32Array> {
    let d = indices(&dims);
    let out = pruning::gather_axis(&data, &d, axis as usize, &indices(&keep)).map_err(range_error)?;
    Ok(Float32Array::new(out))
}

#[napi(catch_unwind)]
pub fn pruning_design_matrix(patches: Float32Array, rows: u32, c: u32, inner: u32, keep: Uint32Array, intercept: bool) -> napi::Result<Float32Array> {
    let out = pruning::design_matrix(&patches, rows as usize, c as usize, inner as usize, &indices(&keep), intercept).map_err(range_error)?;
    Ok(Float32Array::new(out))
}

/// A reconstructed Conv weight [m, cols] and bias (empty without an intercept).
#[napi(object)]
pub struct PruningSolution {
    pub weight: Float32Array,
    pub bias: Float32Array,
}

#[napi(catch_unwind)]
pub fn pruning_split_solution(x: Float32Array, cols: u32, m: u32, intercept: bool) -> napi::Result<PruningSolution> {
    let (w, b) = pruning::split_solution(&x, cols as usize, m as usize, intercept).map_err(range_error)?;
    Ok(PruningSolution { weight: Float32Array::new(w), bias: Float32Array::new(b) })
}

#[napi(catch_unwind)]
pub fn pruning_contribution_gram(x: Float32Array, rows: u32, w: Float32Array, m: u32, c: u32, inner: u32) -> napi::Result<Float64Array> {
    let g = pruning::contribution_gram(&x, rows as usize, &w, m as usize, c as usize, inner as usize).map_err(range_error)?;
    Ok(Float64Array::new(g))
}

#[napi(catch_unwind)]
pub fn pruning_greedy_keep(gram: Float64Array, c: u32, keep: u32) -> napi::Result<Uint32Array> {
    let k = pruning::greedy_keep(&gram, c as usize, keep as usize).map_err(range_error)?;
    Ok(Uint32Array::new(k.into_iter().map(|i| i as u32).collect()))
}

/// The largest channels·kernel `pruningContributionGram` accepts.
#[napi]
pub fn pruning_max_contribution_cols() -> u32 {
    pruning::MAX_CONTRIBUTION_COLS as u32
}
