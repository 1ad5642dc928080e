//! Observers: statistics with memory that does not grow with the data seen.
//!
//! - [`MinMaxObserver`]: running min/max, per tensor or per channel.
//! - [`HistogramObserver`]: a fixed number of bins over a range that grows with the data.
//!
//! Calibration data must be finite: NaN or ±inf is an error ([`ObserverError::NonFinite`] gives
//! the flat element index; the caller adds the tensor's name).

pub mod histogram;
pub mod minmax;

pub use histogram::{HistogramObserver, DEFAULT_BINS};
pub use minmax::MinMaxObserver;

use std::fmt;

/// Below this many elements, kernels run on the calling thread (rayon's overhead dominates).
pub(crate) const PARALLEL_THRESHOLD: usize = 1 << 17;
/// Elements per rayon task above the threshold.
pub(crate) const PARALLEL_CHUNK: usize = 1 << 15;

#[derive(Debug, Clone, PartialEq)]
pub enum ObserverError {
    /// Element `index` (flat, row-major) of the data is NaN or ±inf.
    NonFinite { index: usize, value: f32 },
    /// The data's length is not the product of the shape.
    ShapeMismatch { len: usize, shape: Vec<usize> },
    /// The channel axis is not an axis of the shape.
    AxisOutOfRange { axis: usize, rank: usize },
    /// The data has a different number of channels than the observer.
    ChannelMismatch { axis: usize, expected: usize, got: usize },
    /// Two observers of different kinds (per tensor / per channel, axis or channel count).
    MergeMismatch { what: String },
    /// A histogram needs at least one bin.
    ZeroBins,
    /// A fixed histogram range must be finite with lo < hi.
    InvalidRange { lo: f32, hi: f32 },
}

impl fmt::Display for ObserverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObserverError::NonFinite { index, value } => write!(
                f,
                "calibration data contains {value} at element {index}; expected finite values"
            ),
            ObserverError::ShapeMismatch { len, shape } => write!(
                f,
                "data has {len} elements but shape {shape:?} holds {}",
                shape.iter().product::<usize>()
            ),
            ObserverError::AxisOutOfRange { axis, rank } => {
                write!(f, "channel axis {axis} is out of range for a tensor of rank {rank}")
            }
            ObserverError::ChannelMismatch { axis, expected, got } => write!(
                f,
                "expected {expected} channels along axis {axis}, got {got}"
            ),
            ObserverError::MergeMismatch { what } => write!(f, "cannot merge observers: {what}"),
            ObserverError::ZeroBins => write!(f, "a histogram needs at least one bin, got 0"),
            ObserverError::InvalidRange { lo, hi } => {
                write!(f, "histogram range [{lo}, {hi}] must be finite with lo < hi")
            }
        }
    }
}

impl std::error::Error for ObserverError {}
