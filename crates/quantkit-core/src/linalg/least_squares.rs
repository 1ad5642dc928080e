//! Ridge least squares: X = argmin ‖A·X − B‖² + ridge·‖X‖² for A rows×cols (rows = samples),
//! B rows×k, by Cholesky of the normal equations (AᵀA + ridge·I)·X = AᵀB in f64 (faer).
//!
//! Why the normal equations and not QR: channel pruning's reconstruction has many more samples
//! than unknowns (rows ≫ cols), so forming AᵀA is one matrix product (rows·cols² flops, half of
//! Householder QR's 2·rows·cols², and parallel) and the solve is cols³/3 on a small matrix. The
//! cost is squaring the condition number; in f64 that stays below the f32 rounding of the data for
//! κ(A) up to about 10⁴, and beyond that the problem is ill-posed for f32 inputs anyway, which is
//! what the ridge is for. A (numerically) rank-deficient system is detected from the Cholesky
//! pivots (relative to the largest diagonal entry of AᵀA + ridge·I) and reported as an error
//! rather than solved into garbage.

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, Side};

use super::svd::{par, to_mat};
use super::LinalgError;

/// A squared Cholesky pivot below this fraction of the largest diagonal entry of AᵀA + ridge·I
/// means the columns are linearly dependent to working precision: forming AᵀA in f64 leaves
/// rounding of about max(rows, cols)·ε relative, so anything below 16× that is noise.
pub fn rank_threshold(rows: usize, cols: usize) -> f64 {
    16.0 * rows.max(cols) as f64 * f64::EPSILON
}

/// X (cols×k, row-major f32) minimising ‖A·X − B‖² + ridge·‖X‖².
pub fn least_squares(a: &[f32], rows: usize, cols: usize, b: &[f32], k: usize, ridge: f64) -> Result<Vec<f32>, LinalgError> {
    if !(ridge.is_finite() && ridge >= 0.0) {
        return Err(LinalgError::InvalidValue { arg: "ridge", expected: "a finite number ≥ 0", got: format!("{ridge}") });
    }
    let am = to_mat("a", a, rows, cols)?;
    if k == 0 {
        return Err(LinalgError::ShapeMismatch { arg: "k", expected: "at least one right-hand side".into(), got: "0".into() });
    }
    let bm = to_mat("b", b, rows, k).map_err(|e| match e {
        LinalgError::ShapeMismatch { arg, .. } => LinalgError::ShapeMismatch {
            arg,
            expected: format!("rows×k = {rows}×{k} = {} elements", rows * k),
            got: format!("{} elements", b.len()),
        },
        other => other,
    })?;
    let par = par();
    let mut g = Mat::<f64>::zeros(cols, cols);
    matmul(g.as_mut(), Accum::Replace, am.transpose(), am.as_ref(), 1.0, par);
    for i in 0..cols {
        g[(i, i)] += ridge;
    }
    let mut rhs = Mat::<f64>::zeros(cols, k);
    matmul(rhs.as_mut(), Accum::Replace, am.transpose(), bm.as_ref(), 1.0, par);

    let scale = (0..cols).map(|i| g[(i, i)]).fold(0f64, f64::max);
    let deficient = |index: usize| LinalgError::RankDeficient {
        arg: "a",
        detail: if ridge == 0.0 && rows < cols {
            format!("{rows} rows (samples) cannot determine {cols} columns (unknowns): pass ridge > 0 or more rows")
        } else if ridge == 0.0 {
            format!("its columns are linearly dependent (column {index} is a combination of the earlier ones, to working precision): pass ridge > 0")
        } else {
            format!("AᵀA + ridge·I is singular to working precision at column {index} (ridge {ridge} is too small for this matrix): use a larger ridge")
        },
    };
    if !(scale > 0.0) {
        return Err(deficient(0));
    }
    let llt = g.llt(Side::Lower).map_err(|e| match e {
        faer::linalg::cholesky::llt::factor::LltError::NonPositivePivot { index } => deficient(index),
    })?;
    let l = llt.L();
    for i in 0..cols {
        let pivot = l[(i, i)] * l[(i, i)];
        if !(pivot > rank_threshold(rows, cols) * scale) {
            return Err(deficient(i));
        }
    }
    llt.solve_in_place(rhs.as_mut());
    let mut out = vec![0f32; cols * k];
    for i in 0..cols {
        for j in 0..k {
            out[i * k + j] = rhs[(i, j)] as f32;
        }
    }
    Ok(out)
}
