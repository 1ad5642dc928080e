//! Layer kernels shared by the post-training techniques (AdaRound, SeqMSE, bias correction,
//! channel pruning, GPTQ-style solvers): ONNX Conv, ConvTranspose, Gemm and MatMul in f32,
//! forward and backward, computed as ONNX Runtime's CPU kernels define them (NCHW, ORT's
//! padding rules) and checked against ORT by `__test__/layers.test.mjs`.
//!
//! Each layer is a struct built once from shapes and attributes (`Conv::new`, …) whose
//! `forward` / `backward` take the data and write into caller-owned buffers, so an optimisation
//! loop allocates nothing per iteration beyond per-thread scratch that is reused.
//!
//! Convolutions lower to im2col + a cache-blocked GEMM ([`sgemm`]); work is spread over rayon's
//! current pool (per sample × group when there are enough of those, else inside the GEMM);
//! [`with_threads`] runs a call on a pool of a chosen size.

mod conv;
mod conv_transpose;
mod error;
mod gemm;
mod geometry;
mod im2col;
mod scratch;
pub mod sgemm;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

pub use conv::{Conv, ConvGrads};
pub use conv_transpose::{ConvTranspose, ConvTransposeGrads};
pub use error::{LayerError, LayerErrorKind};
pub use gemm::{Gemm, GemmAttrs, GemmGrads, MatMul, MatMulGrads};
pub use geometry::{AutoPad, ConvAttrs, ConvTransposeAttrs, Geometry};

use rayon::prelude::*;
use sgemm::MatRef;

/// Below this many multiply-adds a layer call runs on the calling thread.
const PAR_MIN_MACS: usize = 1 << 20;

/// Runs `f` on a rayon pool of `threads` threads (1 = strictly on one thread), or on the current
/// pool when `threads` is `None`. A pool is built per call (tens of microseconds); loops that
/// call layers many times should build their own pool once and `install` it.
pub fn with_threads<R: Send>(threads: Option<usize>, f: impl FnOnce() -> R + Send) -> R {
    match threads {
        None => f(),
        Some(t) => match rayon::ThreadPoolBuilder::new().num_threads(t.max(1)).build() {
            Ok(pool) => pool.install(f),
            Err(_) => f(),
        },
    }
}

/// C = A·B (accumulating when asked), on the pool when `parallel`, else on this thread.
fn gemm_call(parallel: bool, a: MatRef, b: MatRef, c: &mut [f32], ldc: usize, accumulate: bool) {
    if parallel {
        sgemm::sgemm(a, b, c, ldc, accumulate)
    } else {
        sgemm::sgemm_serial(a, b, c, ldc, accumulate)
    }
}

/// Splits `out` into tasks of `chunk` elements and runs `f(task, slice, inner_parallel)` on
/// each. With at least as many tasks as threads (and enough work), tasks run in parallel with
/// serial GEMMs inside; otherwise tasks run in order and each GEMM may use the pool itself.
fn run_tasks(out: &mut [f32], chunk: usize, macs: usize, f: impl Fn(usize, &mut [f32], bool) + Sync) {
    if chunk == 0 {
        return;
    }
    let threads = rayon::current_num_threads();
    let tasks = out.len() / chunk;
    if threads > 1 && macs >= PAR_MIN_MACS && tasks >= threads {
        out.par_chunks_mut(chunk).enumerate().for_each(|(t, c)| f(t, c, false));
    } else {
        let inner = macs >= PAR_MIN_MACS;
        out.chunks_mut(chunk).enumerate().for_each(|(t, c)| f(t, c, inner));
    }
}
