//! MinMaxObserver and HistogramObserver classes. The core observer sits behind a mutex so that
//! two in-flight async updates on one observer serialise instead of racing.
use std::sync::{Arc, Mutex, MutexGuard};

use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::encoding::compute_encoding;
use quantkit_core::observer::{HistogramObserver, MinMaxObserver};
use quantkit_core::search::{search_encoding, Scheme};

use crate::encoding::{spec, JsEncoding};
use crate::errors::{guard, range_error, to_usize_vec, type_error};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic inside a previous update poisons the lock; the observer's state is still a valid
    // histogram (updates write it only after computing), so keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[napi]
pub struct NativeMinMaxObserver {
    inner: Arc<Mutex<MinMaxObserver>>,
}

#[napi]
impl NativeMinMaxObserver {
    /// `axis` given: per-channel along that axis of the shapes passed to `update`.
    #[napi(constructor)]
    pub fn new(axis: Option<u32>) -> Self {
        let observer = match axis {
            Some(axis) => MinMaxObserver::per_channel(axis as usize),
            None => MinMaxObserver::per_tensor(),
        };
        NativeMinMaxObserver { inner: Arc::new(Mutex::new(observer)) }
    }

    #[napi(catch_unwind)]
    pub fn update(&self, x: Float32Array, shape: Vec<u32>) -> napi::Result<()> {
        lock(&self.inner).update(&x, &to_usize_vec(&shape)).map_err(range_error)
    }

    #[napi]
    pub fn update_async(&self, x: Float32Array, shape: Vec<u32>, signal: Option<AbortSignal>) -> AsyncTask<MinMaxUpdate> {
        AsyncTask::with_optional_signal(MinMaxUpdate { inner: self.inner.clone(), x, shape: to_usize_vec(&shape) }, signal)
    }

    #[napi(catch_unwind)]
    pub fn merge(&self, other: &NativeMinMaxObserver) -> napi::Result<()> {
        let snapshot = lock(&other.inner).clone();
        lock(&self.inner).merge(&snapshot).map_err(range_error)
    }

    /// Per-tensor: one value; per-channel: one per channel. Empty before the first update.
    #[napi]
    pub fn min(&self) -> Vec<f64> {
        lock(&self.inner).min().iter().map(|&v| v as f64).collect()
    }

    #[napi]
    pub fn max(&self) -> Vec<f64> {
        lock(&self.inner).max().iter().map(|&v| v as f64).collect()
    }

    #[napi(catch_unwind)]
    pub fn encodings(&self, bitwidth: u32, symmetric: bool, strict_symmetric: bool, unsigned_symmetric: bool) -> napi::Result<Vec<JsEncoding>> {
        let observer = lock(&self.inner);
        let spec = spec(bitwidth, symmetric, strict_symmetric, unsigned_symmetric);
        let (mins, maxs) = (observer.min(), observer.max());
        if mins.is_empty() {
            return Err(type_error("MinMaxObserver.encoding: no data observed yet (call update first)"));
        }
        mins.iter()
            .zip(maxs.iter())
            .map(|(&lo, &hi)| compute_encoding(lo, hi, &spec).map(|e| JsEncoding::from(&e)).map_err(range_error))
            .collect()
    }
}

pub struct MinMaxUpdate {
    inner: Arc<Mutex<MinMaxObserver>>,
    x: Float32Array,
    shape: Vec<usize>,
}

impl Task for MinMaxUpdate {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guard("MinMaxObserver.update", || lock(&self.inner).update(&self.x, &self.shape).map_err(range_error))
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi]
pub struct NativeHistogramObserver {
    inner: Arc<Mutex<HistogramObserver>>,
}

fn parse_scheme(scheme: &str, percentile: Option<f64>) -> napi::Result<Scheme> {
    Ok(match scheme {
        "min_max" | "tf" => Scheme::MinMax,
        "tf_enhanced" => Scheme::TfEnhanced,
        "percentile" => Scheme::Percentile(percentile.unwrap_or(99.99)),
        "mse" => Scheme::Mse,
        "entropy" => Scheme::Entropy,
        other => {
            return Err(type_error(format!(
                "scheme: unknown calibration scheme '{other}'; expected one of min_max, tf_enhanced, percentile, mse, entropy"
            )))
        }
    })
}

#[napi]
impl NativeHistogramObserver {
    #[napi(constructor, catch_unwind)]
    pub fn new(bins: u32) -> napi::Result<Self> {
        if bins < 2 {
            return Err(range_error(format!("bins: expected at least 2 bins, got {bins}")));
        }
        Ok(NativeHistogramObserver { inner: Arc::new(Mutex::new(HistogramObserver::new(bins as usize))) })
    }

    #[napi(catch_unwind)]
    pub fn update(&self, x: Float32Array) -> napi::Result<()> {
        lock(&self.inner).update(&x).map_err(range_error)
    }

    #[napi]
    pub fn update_async(&self, x: Float32Array, signal: Option<AbortSignal>) -> AsyncTask<HistogramUpdate> {
        AsyncTask::with_optional_signal(HistogramUpdate { inner: self.inner.clone(), x }, signal)
    }

    #[napi(catch_unwind)]
    pub fn merge(&self, other: &NativeHistogramObserver) -> napi::Result<()> {
        let snapshot = lock(&other.inner).clone();
        lock(&self.inner).merge(&snapshot).map_err(range_error)
    }

    /// [lo, hi, observed min, observed max]; empty before the first update.
    #[napi]
    pub fn range(&self) -> Vec<f64> {
        let h = lock(&self.inner);
        match h.range() {
            Some((lo, hi)) => vec![lo as f64, hi as f64, h.observed_min() as f64, h.observed_max() as f64],
            None => vec![],
        }
    }

    #[napi]
    pub fn counts(&self) -> Float64Array {
        Float64Array::new(lock(&self.inner).counts().to_vec())
    }

    #[napi(catch_unwind)]
    #[allow(clippy::too_many_arguments)]
    pub fn encoding(&self, scheme: String, percentile: Option<f64>, bitwidth: u32, symmetric: bool, strict_symmetric: bool, unsigned_symmetric: bool) -> napi::Result<JsEncoding> {
        let scheme = parse_scheme(&scheme, percentile)?;
        let spec = spec(bitwidth, symmetric, strict_symmetric, unsigned_symmetric);
        let h = lock(&self.inner);
        search_encoding(&h, &scheme, &spec).map(|e| JsEncoding::from(&e)).map_err(range_error)
    }
}

pub struct HistogramUpdate {
    inner: Arc<Mutex<HistogramObserver>>,
    x: Float32Array,
}

impl Task for HistogramUpdate {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guard("HistogramObserver.update", || lock(&self.inner).update(&self.x).map_err(range_error))
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}
