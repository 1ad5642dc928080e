//! N-API binding of quantkit-core. Converts JS arguments, calls the core, converts results.
//! No numerics and no graph logic here. Errors carry a `[RangeError]`/`[TypeError]` prefix that
//! `src/native.ts` turns into the JS error class; panics are caught and never cross N-API.

mod adaround;
mod affine;
mod bias_correction;
mod encoding;
mod errors;
mod gptq;
mod half;
mod layers;
mod linalg;
mod metrics;
mod nbits;
mod observers;
mod permute;
mod pruning;
mod seq_mse;

use napi_derive::napi;

#[napi]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
