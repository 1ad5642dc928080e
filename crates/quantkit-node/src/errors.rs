//! Error conversion and the panic guard shared by every binding function.
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Which JS error class a failure becomes (see src/native.ts).
#[derive(Clone, Copy)]
pub enum JsErrorKind {
    Range,
    Type,
    Generic,
}

pub fn js_error(kind: JsErrorKind, message: impl std::fmt::Display) -> napi::Error {
    let prefix = match kind {
        JsErrorKind::Range => "[RangeError] ",
        JsErrorKind::Type => "[TypeError] ",
        JsErrorKind::Generic => "",
    };
    napi::Error::new(napi::Status::GenericFailure, format!("{prefix}{message}"))
}

pub fn range_error(message: impl std::fmt::Display) -> napi::Error {
    js_error(JsErrorKind::Range, message)
}

pub fn type_error(message: impl std::fmt::Display) -> napi::Error {
    js_error(JsErrorKind::Type, message)
}

/// Runs `f`, turning a panic into an ordinary error so that it never unwinds into N-API
/// (which would abort the process). Used inside async tasks, where napi-rs's own
/// `catch_unwind` attribute does not reach.
pub fn guard<T>(what: &str, f: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(panic) => {
            let detail = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(js_error(JsErrorKind::Generic, format!("quantkit internal error in {what}: {detail}")))
        }
    }
}

pub fn to_usize_vec(values: &[u32]) -> Vec<usize> {
    values.iter().map(|&v| v as usize).collect()
}

/// Test hook: panics inside a sync call (napi-rs's catch_unwind) or an async task (our guard),
/// so that `__test__/api.test.mjs` can check a panic becomes a JS error and Node survives.
#[napi_derive::napi(catch_unwind)]
pub fn test_panic_sync() -> napi::Result<()> {
    panic!("deliberate panic (test hook)")
}

pub struct PanicTask;

impl napi::Task for PanicTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guard("testPanicAsync", || panic!("deliberate panic (test hook)"))
    }

    fn resolve(&mut self, _env: napi::Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}

#[napi_derive::napi]
pub fn test_panic_async() -> napi::bindgen_prelude::AsyncTask<PanicTask> {
    napi::bindgen_prelude::AsyncTask::new(PanicTask)
}
