//! The one error type of `linalg`: the Cholesky solver's two failures (used by GPTQ) and the
//! argument checks of the SVD, least-squares and rank functions. Every message names the argument.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub enum LinalgError {
    /// The matrix has `len` elements, not n².
    Shape { n: usize, len: usize },
    /// The pivot at `index` was not positive (or not finite): the matrix is not positive definite.
    NotPositiveDefinite { index: usize, pivot: f64 },
    /// `arg` does not have the shape the other arguments imply (`expected` says which).
    ShapeMismatch { arg: &'static str, expected: String, got: String },
    /// `arg` holds NaN or ±inf at flat index `index`.
    NonFinite { arg: &'static str, index: usize, value: f64 },
    /// A rank outside 1..=max (max = min(rows, cols)).
    RankOutOfRange { arg: &'static str, rank: usize, max: usize },
    /// A scalar argument outside its domain (a negative ridge, a zero rank multiple, …).
    InvalidValue { arg: &'static str, expected: &'static str, got: String },
    /// Least squares without (enough) ridge on a matrix whose columns are linearly dependent.
    RankDeficient { arg: &'static str, detail: String },
    /// faer's iterative SVD did not converge (not seen on finite input; reported, never hidden).
    NoConvergence { what: &'static str },
}

impl LinalgError {
    /// True for errors a JS caller would see as a RangeError (bad values or sizes); the rest are
    /// numerical failures.
    pub fn is_range_error(&self) -> bool {
        !matches!(self, LinalgError::NoConvergence { .. } | LinalgError::NotPositiveDefinite { .. })
    }
}

impl fmt::Display for LinalgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinalgError::Shape { n, len } => write!(f, "expected an {n}×{n} matrix ({} elements), got {len}", n * n),
            LinalgError::NotPositiveDefinite { index, pivot } => {
                write!(f, "the matrix is not positive definite: Cholesky pivot {index} is {pivot}")
            }
            LinalgError::ShapeMismatch { arg, expected, got } => write!(f, "{arg}: expected {expected}, got {got}"),
            LinalgError::NonFinite { arg, index, value } => {
                write!(f, "{arg}: holds a non-finite value ({value}) at flat index {index}")
            }
            LinalgError::RankOutOfRange { arg, rank, max } => {
                write!(f, "{arg}: expected an integer in 1..={max} (min(rows, cols)), got {rank}")
            }
            LinalgError::InvalidValue { arg, expected, got } => write!(f, "{arg}: expected {expected}, got {got}"),
            LinalgError::RankDeficient { arg, detail } => write!(f, "{arg}: {detail}"),
            LinalgError::NoConvergence { what } => write!(f, "{what}: the SVD iteration did not converge"),
        }
    }
}

impl std::error::Error for LinalgError {}
