//! Dense linear algebra in f64. `cholesky` is the hand-written SPD solver GPTQ uses; the SVD,
//! least squares and rank arithmetic of model compression (issue #9) run on faer
//! (docs/linalg.md). `crate::linalg::{dot, cholesky_lower, upper_cholesky_of_inverse, …}` stay
//! where gptq.rs expects them.

mod cholesky;
mod error;
pub mod least_squares;
pub mod low_rank;
pub mod svd;
#[cfg(test)]
mod tests;

pub use cholesky::*;
pub use error::LinalgError;
pub use least_squares::least_squares;
pub use low_rank::{low_rank_factors, matrix_rank_for_ratio, rank_for_cost_ratio, round_down_to_multiple, round_up_to_multiple, LowRankFactors, Split};
pub use svd::{randomized_svd, singular_values, thin_svd, truncated_svd, Svd, SvdMethod, SvdOptions};
