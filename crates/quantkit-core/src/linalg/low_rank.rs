//! Low-rank factorisation W ≈ left·right from the truncated SVD, and the rank arithmetic of
//! model compression: the rank that meets a cost ratio, and rounding a rank to a multiple.
//!
//! Cost model: a layer of cost `full_cost` replaced by two layers whose joint cost grows by
//! `cost_per_rank` per kept rank. For a rows×cols matrix (Gemm, or weight SVD of a Conv reshaped
//! to out × in·kh·kw) both MACs and parameters are rows·cols before and r·(rows + cols) after;
//! spatial SVD and output-size effects (strides) are for the caller to fold into the two numbers.

use super::svd::{truncated_svd, SvdOptions};
use super::LinalgError;

/// How the singular values are shared between the two factors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// left = U·diag(√σ), right = diag(√σ)·Vᵀ: both factors on the same scale (good for
    /// quantizing them afterwards).
    Balanced,
    /// left = U·diag(σ), right = Vᵀ.
    Left,
    /// left = U, right = diag(σ)·Vᵀ.
    Right,
}

#[derive(Clone, Debug)]
pub struct LowRankFactors {
    /// rows×rank, row-major.
    pub left: Vec<f32>,
    /// rank×cols, row-major.
    pub right: Vec<f32>,
    pub rank: usize,
    /// Descending; all min(rows, cols) when `exact`, rank + oversampling when randomized.
    pub singular_values: Vec<f64>,
    pub exact: bool,
}

/// Factors the row-major rows×cols `a` into left (rows×rank) · right (rank×cols).
pub fn low_rank_factors(a: &[f32], rows: usize, cols: usize, rank: usize, split: Split, opts: &SvdOptions) -> Result<LowRankFactors, LinalgError> {
    let svd = truncated_svd(a, rows, cols, rank, opts)?;
    let (l_scale, r_scale): (Vec<f64>, Vec<f64>) = svd.s[..rank]
        .iter()
        .map(|&s| match split {
            Split::Balanced => (s.sqrt(), s.sqrt()),
            Split::Left => (s, 1.0),
            Split::Right => (1.0, s),
        })
        .unzip();
    let mut left = vec![0f32; rows * rank];
    for i in 0..rows {
        for j in 0..rank {
            left[i * rank + j] = (svd.u[i * rank + j] * l_scale[j]) as f32;
        }
    }
    let mut right = vec![0f32; rank * cols];
    for j in 0..rank {
        for c in 0..cols {
            right[j * cols + c] = (svd.vt[j * cols + c] * r_scale[j]) as f32;
        }
    }
    Ok(LowRankFactors { left, right, rank, singular_values: svd.s, exact: svd.exact })
}

fn check_ratio(ratio: f64) -> Result<(), LinalgError> {
    if !(ratio.is_finite() && ratio > 0.0) {
        return Err(LinalgError::InvalidValue { arg: "ratio", expected: "a finite number > 0", got: format!("{ratio}") });
    }
    Ok(())
}

/// The largest rank r ≤ max_rank with r·cost_per_rank ≤ ratio·full_cost, at least 1 (a layer is
/// never factored to rank 0; the caller decides whether rank 1 still meets its target).
pub fn rank_for_cost_ratio(full_cost: f64, cost_per_rank: f64, ratio: f64, max_rank: usize) -> Result<usize, LinalgError> {
    check_ratio(ratio)?;
    for (arg, v) in [("fullCost", full_cost), ("costPerRank", cost_per_rank)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(LinalgError::InvalidValue { arg, expected: "a finite number > 0", got: format!("{v}") });
        }
    }
    if max_rank == 0 {
        return Err(LinalgError::InvalidValue { arg: "maxRank", expected: "an integer ≥ 1", got: "0".into() });
    }
    // The small tolerance keeps an exact budget (ratio·full = r·per_rank) from losing a rank to
    // rounding of the division.
    let r = (ratio * full_cost / cost_per_rank * (1.0 + 1e-12)).floor();
    Ok((r.max(1.0) as usize).min(max_rank))
}

/// [`rank_for_cost_ratio`] for one rows×cols matrix split into rows×r and r×cols.
pub fn matrix_rank_for_ratio(rows: usize, cols: usize, ratio: f64) -> Result<usize, LinalgError> {
    rank_for_cost_ratio(rows as f64 * cols as f64, (rows + cols) as f64, ratio, rows.min(cols))
}

/// Cost of the factored pair relative to the matrix: r·(rows + cols) / (rows·cols).
pub fn matrix_cost_ratio(rows: usize, cols: usize, rank: usize) -> f64 {
    rank as f64 * (rows + cols) as f64 / (rows as f64 * cols as f64)
}

fn check_multiple(multiple: usize) -> Result<(), LinalgError> {
    if multiple == 0 {
        return Err(LinalgError::InvalidValue { arg: "rankMultiple", expected: "an integer ≥ 1", got: "0".into() });
    }
    Ok(())
}

/// Rounds `rank` up to a multiple of `multiple`, capped at `max_rank`: AIMET's
/// `round_up_to_multiplicity` (aimet_common/utils.py), which its SVD and channel-pruning rank
/// selection use.
pub fn round_up_to_multiple(rank: usize, multiple: usize, max_rank: usize) -> Result<usize, LinalgError> {
    check_multiple(multiple)?;
    let up = rank.div_ceil(multiple) * multiple;
    Ok(if up >= max_rank { max_rank } else { up })
}

/// Rounds `rank` down to a multiple of `multiple` (at least `multiple`, at most `max_rank`).
pub fn round_down_to_multiple(rank: usize, multiple: usize, max_rank: usize) -> Result<usize, LinalgError> {
    check_multiple(multiple)?;
    let down = (rank / multiple * multiple).max(multiple);
    Ok(down.min(max_rank))
}
