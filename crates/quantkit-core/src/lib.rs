//! quantkit-core: the numerics of quantkit. Pure Rust, no N-API, no graph knowledge.
//! Typed slices in, typed slices out; the binding crate converts JS values.

pub mod affine;
pub mod encoding;
pub mod observer;
pub mod search;
pub mod metrics;
pub mod nbits;
pub mod gptq;
pub mod linalg;
pub mod half;
pub mod layers;
pub mod seq_mse;
pub mod adaround;
pub mod pruning;
pub mod permute;
pub mod bias_correction;
