//! linalg (core: linalg/svd.rs, low_rank.rs, least_squares.rs) on the libuv pool: low-rank
//! factors, singular values, ridge least squares. Inputs are copied once, on the calling thread,
//! so the caller may reuse its arrays at once; outputs are Rust vectors handed to JS without a
//! copy. faer runs on the rayon pool (`Par::rayon(0)`: RAYON_NUM_THREADS threads).
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::linalg::{self as core, LinalgError, LowRankFactors, Split, SvdMethod, SvdOptions};

use crate::errors::{guard, js_error, range_error, type_error, JsErrorKind};

fn core_error(e: LinalgError) -> napi::Error {
    if e.is_range_error() {
        range_error(e)
    } else {
        js_error(JsErrorKind::Generic, e)
    }
}

#[napi(object)]
pub struct LowRankFactorsResult {
    pub left: Float32Array,
    pub right: Float32Array,
    pub rank: u32,
    pub singular_values: Float64Array,
    pub exact: bool,
}

pub struct LowRankTask {
    a: Vec<f32>,
    rows: usize,
    cols: usize,
    rank: usize,
    split: Split,
    opts: SvdOptions,
}

impl Task for LowRankTask {
    type Output = LowRankFactors;
    type JsValue = LowRankFactorsResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("lowRankFactors", || core::low_rank_factors(&self.a, self.rows, self.cols, self.rank, self.split, &self.opts).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, f: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(LowRankFactorsResult {
            left: Float32Array::new(f.left),
            right: Float32Array::new(f.right),
            rank: f.rank as u32,
            singular_values: Float64Array::new(f.singular_values),
            exact: f.exact,
        })
    }
}

/// Factors the row-major rows×cols `a` into left (rows×rank) · right (rank×cols).
/// `split`: 'balanced' (default) | 'left' | 'right'; `method`: 'auto' (default) | 'full' |
/// 'randomized'; `seed`: a non-negative integer below 2⁵³ (default 0).
#[napi]
pub fn low_rank_factors_async(a: Float32Array, rows: u32, cols: u32, rank: u32, split: Option<String>, method: Option<String>, seed: Option<f64>) -> napi::Result<AsyncTask<LowRankTask>> {
    let split = match split.as_deref() {
        None | Some("balanced") => Split::Balanced,
        Some("left") => Split::Left,
        Some("right") => Split::Right,
        Some(o) => return Err(type_error(format!("split: expected 'balanced', 'left' or 'right', got {o:?}"))),
    };
    let method = match method.as_deref() {
        None | Some("auto") => SvdMethod::Auto,
        Some("full") => SvdMethod::Full,
        Some("randomized") => SvdMethod::Randomized,
        Some(o) => return Err(type_error(format!("method: expected 'auto', 'full' or 'randomized', got {o:?}"))),
    };
    let seed = match seed {
        None => 0,
        Some(s) if s >= 0.0 && s.fract() == 0.0 && s <= 9007199254740991.0 => s as u64,
        Some(s) => return Err(range_error(format!("seed: expected a non-negative safe integer, got {s}"))),
    };
    Ok(AsyncTask::new(LowRankTask {
        a: a.to_vec(),
        rows: rows as usize,
        cols: cols as usize,
        rank: rank as usize,
        split,
        opts: SvdOptions { method, seed, ..Default::default() },
    }))
}

pub struct SingularValuesTask {
    a: Vec<f32>,
    rows: usize,
    cols: usize,
}

impl Task for SingularValuesTask {
    type Output = Vec<f64>;
    type JsValue = Float64Array;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("singularValues", || core::singular_values(&self.a, self.rows, self.cols).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, s: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(Float64Array::new(s))
    }
}

/// All min(rows, cols) singular values of the row-major rows×cols `a`, descending.
#[napi]
pub fn singular_values_async(a: Float32Array, rows: u32, cols: u32) -> AsyncTask<SingularValuesTask> {
    AsyncTask::new(SingularValuesTask { a: a.to_vec(), rows: rows as usize, cols: cols as usize })
}

pub struct LeastSquaresTask {
    a: Vec<f32>,
    rows: usize,
    cols: usize,
    b: Vec<f32>,
    k: usize,
    ridge: f64,
}

impl Task for LeastSquaresTask {
    type Output = Vec<f32>;
    type JsValue = Float32Array;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("leastSquares", || core::least_squares(&self.a, self.rows, self.cols, &self.b, self.k, self.ridge).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, x: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(Float32Array::new(x))
    }
}

/// X (cols×k, row-major) minimising ‖A·X − B‖² + ridge·‖X‖²; A rows×cols, B rows×k.
#[napi]
pub fn least_squares_async(a: Float32Array, rows: u32, cols: u32, b: Float32Array, k: u32, ridge: Option<f64>) -> AsyncTask<LeastSquaresTask> {
    AsyncTask::new(LeastSquaresTask { a: a.to_vec(), rows: rows as usize, cols: cols as usize, b: b.to_vec(), k: k as usize, ridge: ridge.unwrap_or(0.0) })
}
