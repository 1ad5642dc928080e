//! GPTQ (core: gptq.rs). `NativeGptqHessian` holds one layer's running Σ xᵀx behind a mutex, so
//! two in-flight `updateAsync` calls serialise; `quantizeAsync` solves for a weight with it and
//! packs the result exactly as nbits.rs packs round-to-nearest. Both run on the libuv pool and
//! borrow their typed arrays without copying (src/modes/gptq.ts does not touch them meanwhile).
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::gptq::{self as core, GptqError, GptqOptions, Hessian};
use quantkit_core::nbits::{self, NbitsError, NbitsSpec};

use crate::errors::{guard, range_error, type_error};

fn lock(m: &Mutex<Hessian>) -> MutexGuard<'_, Hessian> {
    // An update writes the sum only after validating its input, so a poisoned lock still holds a valid sum.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn core_error(err: GptqError) -> napi::Error {
    match err {
        GptqError::Nbits(NbitsError::Length { .. }) | GptqError::Shape(_) => type_error(err),
        _ => range_error(err),
    }
}

#[napi]
pub struct NativeGptqHessian {
    inner: Arc<Mutex<Hessian>>,
}

#[napi]
impl NativeGptqHessian {
    /// `k`: the layer's input features (rows of W).
    #[napi(constructor)]
    pub fn new(k: u32) -> napi::Result<Self> {
        if k == 0 {
            return Err(range_error("k: expected a positive integer"));
        }
        Ok(NativeGptqHessian { inner: Arc::new(Mutex::new(Hessian::new(k as usize))) })
    }

    #[napi(getter)]
    pub fn k(&self) -> u32 {
        lock(&self.inner).k() as u32
    }

    /// Calibration rows accumulated so far.
    #[napi(getter)]
    pub fn rows(&self) -> f64 {
        lock(&self.inner).rows() as f64
    }

    /// Adds the rows of `x` (any shape whose last dimension is K) to Σ xᵀx.
    #[napi]
    pub fn update_async(&self, x: Float32Array, signal: Option<AbortSignal>) -> AsyncTask<HessianUpdate> {
        AsyncTask::with_optional_signal(HessianUpdate { inner: self.inner.clone(), x }, signal)
    }

    /// Adds `other`'s rows (a weight read by several nodes with different inputs gets the sum).
    #[napi(catch_unwind)]
    pub fn merge(&self, other: &NativeGptqHessian) -> napi::Result<()> {
        if Arc::ptr_eq(&self.inner, &other.inner) {
            return Err(type_error("GptqHessian.merge: cannot merge an accumulator into itself"));
        }
        let snapshot = lock(&other.inner).clone();
        lock(&self.inner).merge(&snapshot).map_err(core_error)
    }

    /// GPTQ of W [K, N] ([N, K] when `transposed`), packed as `format` ('matmulnbits' | 'qdq').
    #[napi]
    #[allow(clippy::too_many_arguments)]
    pub fn quantize_async(
        &self,
        w: Float32Array,
        n: u32,
        transposed: bool,
        bits: u32,
        block_size: u32,
        symmetric: bool,
        format: String,
        damp_percent: f64,
        measure_output_error: bool,
        signal: Option<AbortSignal>,
    ) -> AsyncTask<GptqTask> {
        let k = lock(&self.inner).k();
        let spec = NbitsSpec { k, n: n as usize, bits, block_size: block_size as usize, symmetric };
        let opts = GptqOptions { damp_percent, measure_output_error };
        AsyncTask::with_optional_signal(GptqTask { inner: self.inner.clone(), w, spec, transposed, format, opts }, signal)
    }
}

pub struct HessianUpdate {
    inner: Arc<Mutex<Hessian>>,
    x: Float32Array,
}

impl Task for HessianUpdate {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guard("GptqHessian.update", || lock(&self.inner).update(&self.x).map_err(core_error))
    }

    fn resolve(&mut self, _env: Env, _: ()) -> napi::Result<()> {
        Ok(())
    }
}

/// A GPTQ-quantized weight in the layout of `nbitsQuantizeAsync`, plus what the solve measured.
#[napi(object)]
pub struct GptqWeights {
    pub data: Uint8Array,
    pub scales: Float32Array,
    pub zero_points: Option<Uint8Array>,
    /// 10·log10(Σw² / Σ(w − ŵ)²) against the original weight.
    pub sqnr_db: f64,
    /// ‖X(W − Ŵ)‖²/n over the calibration rows, for GPTQ's Ŵ and for round-to-nearest's (absent unless measured).
    pub output_error: Option<f64>,
    pub output_error_rtn: Option<f64>,
    pub dead_inputs: u32,
    pub damp: f64,
    pub rows: f64,
    /// Wall time of the solve (Cholesky, inverse, blocked updates), without the error measurement.
    pub solve_ms: f64,
}

pub struct GptqOut {
    data: Vec<u8>,
    scales: Vec<f32>,
    zero_points: Option<Vec<u8>>,
    result: core::GptqResult,
    rows: u64,
    solve_ms: f64,
}

pub struct GptqTask {
    inner: Arc<Mutex<Hessian>>,
    w: Float32Array,
    spec: NbitsSpec,
    transposed: bool,
    format: String,
    opts: GptqOptions,
}

impl GptqTask {
    fn run(&self) -> napi::Result<GptqOut> {
        if self.format != "matmulnbits" && self.format != "qdq" {
            return Err(type_error(format!("format: expected 'matmulnbits' or 'qdq', got {:?}", self.format)));
        }
        let (h, rows) = {
            let acc = lock(&self.inner);
            (acc.matrix().map_err(core_error)?, acc.rows())
        };
        let transposed;
        let w: &[f32] = if self.transposed {
            transposed = core::transpose_nk(&self.w, self.spec.k, self.spec.n).map_err(core_error)?;
            &transposed
        } else {
            &self.w
        };
        let start = Instant::now();
        let solve = core::gptq_quantize(w, &h, self.spec, GptqOptions { measure_output_error: false, ..self.opts }).map_err(core_error)?;
        let solve_ms = start.elapsed().as_secs_f64() * 1e3;
        let mut result = solve;
        if self.opts.measure_output_error {
            let q = &result.quantized;
            let deq = core::dequantize(&q.codes, &q.scales, &q.zero_points, self.spec);
            let rtn = nbits::quantize_blockwise(w, self.spec).map_err(|e| core_error(e.into()))?;
            let rtn_deq = core::dequantize(&rtn.codes, &rtn.scales, &rtn.zero_points, self.spec);
            result.output_error = Some(core::output_error(&h, w, &deq, self.spec.k, self.spec.n));
            result.output_error_rtn = Some(core::output_error(&h, w, &rtn_deq, self.spec.k, self.spec.n));
        }
        let (data, scales, zero_points) = if self.format == "matmulnbits" {
            let p = nbits::pack_matmul_nbits(&result.quantized);
            (p.b, p.scales, p.zero_points)
        } else {
            let p = nbits::pack_qdq(&result.quantized);
            (p.data, p.scales, p.zero_points)
        };
        Ok(GptqOut { data, scales, zero_points, result, rows, solve_ms })
    }
}

impl Task for GptqTask {
    type Output = GptqOut;
    type JsValue = GptqWeights;

    fn compute(&mut self) -> napi::Result<GptqOut> {
        guard("gptqQuantize", || self.run())
    }

    fn resolve(&mut self, _env: Env, o: GptqOut) -> napi::Result<GptqWeights> {
        Ok(GptqWeights {
            data: Uint8Array::new(o.data),
            scales: Float32Array::new(o.scales),
            zero_points: o.zero_points.map(Uint8Array::new),
            sqnr_db: o.result.quantized.sqnr_db(),
            output_error: o.result.output_error,
            output_error_rtn: o.result.output_error_rtn,
            dead_inputs: o.result.dead_inputs as u32,
            damp: o.result.damp,
            rows: o.rows as f64,
            solve_ms: o.solve_ms,
        })
    }
}
