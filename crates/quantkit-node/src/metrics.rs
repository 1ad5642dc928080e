//! compareTensors: SQNR and error statistics between a reference and an approximation.
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::metrics::error_stats;

use crate::errors::type_error;

#[napi(object)]
pub struct JsErrorStats {
    pub sqnr_db: f64,
    pub mse: f64,
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
    pub non_finite: u32,
}

#[napi(catch_unwind)]
pub fn compare_tensors_native(reference: Float32Array, other: Float32Array) -> napi::Result<JsErrorStats> {
    let s = error_stats(&reference, &other).map_err(type_error)?;
    Ok(JsErrorStats { sqnr_db: s.sqnr_db, mse: s.mse, max_abs_error: s.max_abs_error, mean_abs_error: s.mean_abs_error, non_finite: s.non_finite as u32 })
}
