//! Errors of the affine kernels. Every message names the argument at fault (`scale`, `offset`,
//! `qmin`/`qmax`, `shape`, `axis`, `block_size`, `out`, the data) and what was expected.

use std::fmt;

/// How the N-API binding should surface an [`AffineError`] to JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AffineErrorKind {
    /// A value is out of range (scale ≤ 0, bad grid, offset overflow, axis, block size): `RangeError`.
    Range,
    /// An array has the wrong length or a shape does not match the data: `TypeError`.
    Type,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AffineError {
    /// `scale[index]` is ≤ 0, NaN or infinite.
    InvalidScale { index: usize, value: f32 },
    /// `qmin > qmax`.
    InvalidGrid { qmin: i64, qmax: i64 },
    /// The grid `[qmin, qmax]` does not fit a 32-bit signed integer (the widest supported type).
    GridTooWide { qmin: i64, qmax: i64 },
    /// The grid `[qmin, qmax]` is not representable in the element type of `q` / `out`.
    GridNotHeldByType {
        qmin: i64,
        qmax: i64,
        type_name: &'static str,
    },
    /// `qmin + offset[index]` or `qmax + offset[index]` (the clamp bounds of round(x/scale),
    /// i.e. `qmin − zero_point`, `qmax − zero_point`) overflow a 32-bit signed integer.
    OffsetOverflow {
        index: usize,
        offset: i32,
        qmin: i64,
        qmax: i64,
    },
    /// `axis` is not smaller than the rank of `shape`.
    AxisOutOfRange { axis: usize, rank: usize },
    /// `block_size` is 0.
    BlockSizeZero,
    /// The product of `shape` differs from the data length (or overflows usize).
    ShapeMismatch { shape: Vec<usize>, len: usize },
    /// `scale` has the wrong length for the granularity and shape.
    ScaleLength { expected: usize, got: usize },
    /// `offset` is neither of length 1 nor of the length of `scale`.
    OffsetLength { expected: usize, got: usize },
    /// The output buffer's length differs from the input's.
    OutLength { expected: usize, got: usize },
}

impl AffineError {
    /// Shorthand for `kind() == AffineErrorKind::Range`.
    pub fn is_range_error(&self) -> bool {
        self.kind() == AffineErrorKind::Range
    }

    pub fn kind(&self) -> AffineErrorKind {
        use AffineError::*;
        match self {
            InvalidScale { .. }
            | InvalidGrid { .. }
            | GridTooWide { .. }
            | GridNotHeldByType { .. }
            | OffsetOverflow { .. }
            | AxisOutOfRange { .. }
            | BlockSizeZero => AffineErrorKind::Range,
            ShapeMismatch { .. } | ScaleLength { .. } | OffsetLength { .. } | OutLength { .. } => {
                AffineErrorKind::Type
            }
        }
    }
}

impl fmt::Display for AffineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use AffineError::*;
        match self {
            InvalidScale { index, value } => write!(
                f,
                "scale[{index}] must be a finite number greater than 0, got {value}"
            ),
            InvalidGrid { qmin, qmax } => {
                write!(f, "qmin must not exceed qmax, got qmin = {qmin}, qmax = {qmax}")
            }
            GridTooWide { qmin, qmax } => write!(
                f,
                "qmin/qmax grid [{qmin}, {qmax}] must fit a 32-bit signed integer \
                 (int8, uint8, int16, uint16 or int32)"
            ),
            GridNotHeldByType {
                qmin,
                qmax,
                type_name,
            } => write!(
                f,
                "qmin/qmax grid [{qmin}, {qmax}] is not representable in the integer array type {type_name}"
            ),
            OffsetOverflow {
                index,
                offset,
                qmin,
                qmax,
            } => write!(
                f,
                "offset[{index}] = {offset} makes the clamp bounds qmin + offset, qmax + offset \
                 (qmin = {qmin}, qmax = {qmax}) overflow a 32-bit signed integer"
            ),
            AxisOutOfRange { axis, rank } => write!(
                f,
                "axis {axis} is out of range for a shape of rank {rank} (expected 0..{rank})"
            ),
            BlockSizeZero => write!(f, "block_size must be at least 1, got 0"),
            ShapeMismatch { shape, len } => write!(
                f,
                "shape {shape:?} does not match the data: its product must equal the data length {len}"
            ),
            ScaleLength { expected, got } => {
                write!(
                    f,
                    "scale has length {got}, expected {expected} for this granularity and shape"
                )
            }
            OffsetLength { expected, got } => write!(
                f,
                "offset has length {got}, expected 1 or {expected} (the length of scale)"
            ),
            OutLength { expected, got } => {
                write!(f, "out has length {got}, expected {expected} (the input length)")
            }
        }
    }
}

impl std::error::Error for AffineError {}
