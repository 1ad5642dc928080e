//! Affine quantize, dequantize and quantize-dequantize of f32 data, computed exactly as ONNX
//! Runtime's QuantizeLinear / DequantizeLinear kernels compute them.
//!
//! # Conventions
//! Both are served by one spec; `offset` is AIMET's offset and `zero_point = −offset`.
//! - AIMET: `q = clamp(round(x / scale) − offset, qmin, qmax)`, `x̂ = (q + offset) · scale`.
//! - ONNX:  `q = saturate(round(x / scale) + zero_point)`, `x̂ = (q − zero_point) · scale`.
//!
//! # Arithmetic (bit-exact with ONNX Runtime's MLAS kernels)
//! - `x / scale` is an f32 division, never a multiplication by a reciprocal.
//! - Rounding is half to even (0.5 → 0, 1.5 → 2, 2.5 → 2, −0.5 → −0, −2.5 → −2).
//! - The quotient is clamped to `[qmin + offset, qmax + offset]` before rounding, which equals
//!   rounding and then saturating because the bounds are integers.
//! - **NaN quantizes to `qmin`** (the type's minimum for a full-range grid): ORT's kernels clamp
//!   with `maxps`, which returns the bound when the value is NaN. Dequantize never produces NaN.
//!   `+inf → qmax`, `−inf → qmin`, `−0.0 →` the zero point.
//! - Dequantize computes `q + offset` in integer arithmetic (i32, or i64 for int32 data and
//!   wide offsets, so it never wraps), converts it to f32 and multiplies by `scale`. `q` is not
//!   clamped to the grid first (ORT does not either).
//! - `quantize_dequantize(x)` equals `dequantize(quantize(x))` bit for bit; it is computed as
//!   `round(clamp(x / scale, qmin + offset, qmax + offset)) · scale` without the integer detour.
//!   Its zeros are +0.0 (as dequantize's are).
//!
//! # Layouts
//! The data (shape `shape`, row-major) is viewed as (outer, C, inner) around the axis.
//! - `PerTensor`: `scale.len() == 1`.
//! - `PerChannel { axis }`: `scale.len() == shape[axis]`.
//! - `PerBlock { axis, block_size }`: `scale` has `shape` with `shape[axis]` replaced by
//!   `ceil(shape[axis] / block_size)`, row-major (ONNX blocked Q/DQ); the last block may be partial.
//!
//! `offset` has the length of `scale`, or length 1 to broadcast.
//!
//! # Speed
//! Clamp bounds within ±2²² (every grid up to 16 bits with a sane offset) use an f32 path that
//! rounds with the add-and-subtract-1.5·2²³ trick and vectorises; wider bounds (the int32 bias
//! grid) clamp and round in f64. Inputs above 2¹⁶ elements are split across rayon's pool.

mod error;
mod kernels;
mod layout;
#[cfg(test)]
mod tests;

pub use error::{AffineError, AffineErrorKind};

use layout::{check_grid, Plan};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    PerTensor,
    PerChannel { axis: usize },
    PerBlock { axis: usize, block_size: usize },
}

#[derive(Clone, Copy, Debug)]
pub struct AffineSpec<'a> {
    /// The shape of x; its product must equal the data length. PerTensor may pass `&[len]`.
    pub shape: &'a [usize],
    pub granularity: Granularity,
    /// PerTensor: 1; PerChannel: shape[axis]; PerBlock: shape with shape[axis] replaced by
    /// ceil(shape[axis] / block_size), row-major.
    pub scale: &'a [f32],
    /// AIMET offset (= −zero_point), the length of `scale` or 1 to broadcast.
    pub offset: &'a [i32],
    /// The integer grid, e.g. −128..127, 0..255, −8..7, 0..65535, the i32 range for bias.
    pub qmin: i64,
    pub qmax: i64,
}

/// The integer element types quantized data can be stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntType {
    I8,
    U8,
    I16,
    U16,
    I32,
}

impl IntType {
    pub fn min(self) -> i64 {
        match self {
            IntType::I8 => i8::MIN as i64,
            IntType::U8 | IntType::U16 => 0,
            IntType::I16 => i16::MIN as i64,
            IntType::I32 => i32::MIN as i64,
        }
    }
    pub fn max(self) -> i64 {
        match self {
            IntType::I8 => i8::MAX as i64,
            IntType::U8 => u8::MAX as i64,
            IntType::I16 => i16::MAX as i64,
            IntType::U16 => u16::MAX as i64,
            IntType::I32 => i32::MAX as i64,
        }
    }
    pub fn bits(self) -> u32 {
        match self {
            IntType::I8 | IntType::U8 => 8,
            IntType::I16 | IntType::U16 => 16,
            IntType::I32 => 32,
        }
    }
    /// The Rust name, as used in error messages: "i8", "u8", "i16", "u16", "i32".
    pub fn name(self) -> &'static str {
        match self {
            IntType::I8 => "i8",
            IntType::U8 => "u8",
            IntType::I16 => "i16",
            IntType::U16 => "u16",
            IntType::I32 => "i32",
        }
    }
}

/// The smallest integer type holding [qmin, qmax]: I8, U8, I16, U16, I32; error if none.
/// Smallest by width; within a width an unsigned grid (qmin ≥ 0) gets the unsigned type and
/// any other grid the signed one (so 0..127 → U8, −8..7 → I8, 0..300 → U16, 0..65536 → I32).
pub fn int_type_for(qmin: i64, qmax: i64) -> Result<IntType, AffineError> {
    check_grid(qmin, qmax)?;
    let order: &[IntType] = if qmin >= 0 {
        &[IntType::U8, IntType::U16, IntType::I32]
    } else {
        &[IntType::I8, IntType::I16, IntType::I32]
    };
    Ok(*order
        .iter()
        .find(|t| t.min() <= qmin && qmax <= t.max())
        .expect("i32 holds any checked grid"))
}

mod sealed {
    pub trait Sealed {}
}

/// An integer element type for quantized data; implemented for i8, u8, i16, u16 and i32 only.
pub trait QInt: Copy + Send + Sync + Default + 'static + sealed::Sealed {
    const INT_TYPE: IntType;
    #[doc(hidden)]
    fn from_i32(v: i32) -> Self;
    #[doc(hidden)]
    fn from_i64(v: i64) -> Self;
    #[doc(hidden)]
    fn to_i32(self) -> i32;
    #[doc(hidden)]
    fn to_i64(self) -> i64;
}

macro_rules! qint {
    ($t:ty, $it:expr) => {
        impl sealed::Sealed for $t {}
        impl QInt for $t {
            const INT_TYPE: IntType = $it;
            #[inline(always)]
            fn from_i32(v: i32) -> Self {
                v as $t
            }
            #[inline(always)]
            fn from_i64(v: i64) -> Self {
                v as $t
            }
            #[inline(always)]
            fn to_i32(self) -> i32 {
                self as i32
            }
            #[inline(always)]
            fn to_i64(self) -> i64 {
                self as i64
            }
        }
    };
}
qint!(i8, IntType::I8);
qint!(u8, IntType::U8);
qint!(i16, IntType::I16);
qint!(u16, IntType::U16);
qint!(i32, IntType::I32);

/// Check a spec against a data length without running anything.
pub fn validate(spec: &AffineSpec, len: usize) -> Result<(), AffineError> {
    Plan::new(spec, len).map(|_| ())
}

fn check_type<T: QInt>(spec: &AffineSpec) -> Result<(), AffineError> {
    let t = T::INT_TYPE;
    if spec.qmin < t.min() || spec.qmax > t.max() {
        return Err(AffineError::GridNotHeldByType {
            qmin: spec.qmin,
            qmax: spec.qmax,
            type_name: t.name(),
        });
    }
    Ok(())
}

fn check_out(expected: usize, got: usize) -> Result<(), AffineError> {
    if expected != got {
        return Err(AffineError::OutLength { expected, got });
    }
    Ok(())
}

/// `out[i] = clamp(round_half_even(x[i] / scale) − offset, qmin, qmax)`; NaN → qmin.
pub fn quantize<T: QInt>(x: &[f32], spec: &AffineSpec, out: &mut [T]) -> Result<(), AffineError> {
    let plan = Plan::new(spec, x.len())?;
    check_type::<T>(spec)?;
    check_out(x.len(), out.len())?;
    let (qmin, qmax) = (plan.qmin, plan.qmax);
    if plan.wide {
        plan.run(x, out, move |x, s, o| {
            kernels::quantize_wide::<T>(x, s, o, qmin, qmax)
        });
    } else {
        plan.run(x, out, move |x, s, o| {
            kernels::quantize_fast::<T>(x, s, o, qmin, qmax)
        });
    }
    Ok(())
}

/// `out[i] = ((q[i] + offset) as f32) · scale`. The grid must be held by T; q is not clamped.
pub fn dequantize<T: QInt>(q: &[T], spec: &AffineSpec, out: &mut [f32]) -> Result<(), AffineError> {
    let plan = Plan::new(spec, q.len())?;
    check_type::<T>(spec)?;
    check_out(q.len(), out.len())?;
    // Narrow types on the fast path: |q| ≤ 2¹⁶ and |offset| ≤ 2²² + 2¹⁶, so i32 cannot overflow.
    if plan.wide || T::INT_TYPE.bits() > 16 {
        plan.run(q, out, |q, s, o| kernels::dequantize_wide(q, s, o));
    } else {
        plan.run(q, out, |q, s, o| kernels::dequantize_narrow(q, s, o));
    }
    Ok(())
}

/// `out = dequantize(quantize(x))`, bit for bit, without the integer buffer.
pub fn quantize_dequantize(
    x: &[f32],
    spec: &AffineSpec,
    out: &mut [f32],
) -> Result<(), AffineError> {
    let plan = Plan::new(spec, x.len())?;
    check_out(x.len(), out.len())?;
    let (qmin, qmax) = (plan.qmin, plan.qmax);
    if plan.wide {
        plan.run(x, out, move |x, s, o| {
            kernels::qdq_wide(x, s, o, qmin, qmax)
        });
    } else {
        plan.run(x, out, move |x, s, o| {
            kernels::qdq_fast(x, s, o, qmin, qmax)
        });
    }
    Ok(())
}

/// [`quantize_dequantize`] overwriting its input.
pub fn quantize_dequantize_in_place(x: &mut [f32], spec: &AffineSpec) -> Result<(), AffineError> {
    let plan = Plan::new(spec, x.len())?;
    let (qmin, qmax) = (plan.qmin, plan.qmax);
    if plan.wide {
        plan.run_in_place(x, move |x, s, o| kernels::qdq_wide(x, s, o, qmin, qmax));
    } else {
        plan.run_in_place(x, move |x, s, o| kernels::qdq_fast(x, s, o, qmin, qmax));
    }
    Ok(())
}
