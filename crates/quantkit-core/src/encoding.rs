//! Encodings from a range, the AIMET way.
//!
//! Sources (read 2025, `qualcomm/aimet`):
//! - [EA]  aimet_torch v2 `quantization/encoding_analyzer.py` (`MinMaxEncodingAnalyzer`,
//!         `adjust_min_max`): zero in range, non-finite clamp, tiny-range guard, symmetric delta.
//! - [QZ]  aimet_torch v2 `quantization/affine/quantizer.py` (`get_scale`, `get_offset`):
//!         scale = (max − min)/num_steps in float32, asymmetric offset = round(min/scale) − qmin.
//! - [MS]  aimet_common `quantsim.py` `_get_minimum_scale`: min(float32 eps, 0.01/num_steps).
//! - [PY]  libpymo `quantization_utils.cpp` `getComputedEncodings` (what aimet-onnx runs):
//!         strict symmetric removes one step (num_steps = 2^b − 2), unsigned symmetric applies
//!         when min ≥ 0 and then uses the asymmetric formula with offset 0.
//!
//! Arithmetic: float64, as libpymo (what aimet-onnx runs) does, with the scale rounded to f32 at
//! the end. All 108 range cases of the aimet-onnx 2.42 golden file match exactly this way; f32
//! arithmetic (aimet_torch's) changes rounding ties of the offset.
//!
//! Not reproduced: libpymo's 2-bit symmetric special case (`numSteps == 3` divides max by 2
//! instead of 1). aimet_torch does not have it; golden numbers from aimet-onnx will say whether
//! quantkit needs it.

use std::fmt;

/// What grid an encoding should use. `unsigned_symmetric` only matters when `symmetric` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodingSpec {
    /// 2..=32.
    pub bitwidth: u32,
    pub symmetric: bool,
    pub strict_symmetric: bool,
    pub unsigned_symmetric: bool,
}

impl EncodingSpec {
    /// AIMET's default for a bitwidth: symmetric = `symmetric`, not strict, not unsigned.
    pub fn new(bitwidth: u32, symmetric: bool) -> Self {
        EncodingSpec { bitwidth, symmetric, strict_symmetric: false, unsigned_symmetric: false }
    }

    pub fn asymmetric(bitwidth: u32) -> Self {
        Self::new(bitwidth, false)
    }

    pub fn symmetric(bitwidth: u32) -> Self {
        Self::new(bitwidth, true)
    }

    pub fn validate(&self) -> Result<(), EncodingError> {
        if !(2..=32).contains(&self.bitwidth) {
            return Err(EncodingError::BitwidthOutOfRange { bitwidth: self.bitwidth });
        }
        Ok(())
    }

    /// The grid chosen for a range whose (unclamped) minimum is `min`: (qmin, qmax).
    pub fn grid(&self, min: f32) -> (i64, i64) {
        let b = self.bitwidth;
        let full = (1i64 << b) - 1;
        let half = 1i64 << (b - 1);
        if !self.symmetric || (self.unsigned_symmetric && min >= 0.0) {
            (0, full)
        } else if self.strict_symmetric {
            (-(half - 1), half - 1)
        } else {
            (-half, half - 1)
        }
    }

    /// Whether `min` selects the unsigned grid of an unsigned-symmetric quantizer ([PY]).
    pub fn uses_unsigned_symmetric(&self, min: f32) -> bool {
        self.symmetric && self.unsigned_symmetric && min >= 0.0
    }

    /// qmax − qmin of the grid used for `min`: 2^b − 1, or 2^b − 2 for strict symmetric ([PY]).
    pub fn num_steps(&self, min: f32) -> u64 {
        let (qmin, qmax) = self.grid(min);
        (qmax - qmin) as u64
    }
}

/// An encoding: a scale and an offset on an explicit integer grid.
///
/// `x̂ = (q + offset)·scale` for `q` in `[qmin, qmax]` (AIMET torch-v2 convention);
/// ONNX QuantizeLinear's zero point is `−offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoding {
    pub bitwidth: u32,
    /// Grid ends in real units: `(qmin + offset)·scale` and `(qmax + offset)·scale`.
    pub min: f32,
    pub max: f32,
    pub scale: f32,
    pub offset: i32,
    pub qmin: i64,
    pub qmax: i64,
    pub symmetric: bool,
    pub strict_symmetric: bool,
    pub unsigned_symmetric: bool,
}

impl Encoding {
    /// The offset as AIMET's encodings files write it (libpymo convention, grid starting at 0):
    /// −128 for symmetric int8, −127 strict, 0 unsigned symmetric, `round(min/scale)` asymmetric.
    pub fn aimet_file_offset(&self) -> i32 {
        (self.offset as i64 + self.qmin) as i32
    }

    /// ONNX QuantizeLinear zero point on this encoding's grid (signed for signed grids).
    pub fn zero_point(&self) -> i64 {
        -(self.offset as i64)
    }

    /// Number of steps of the grid, qmax − qmin.
    pub fn num_steps(&self) -> u64 {
        (self.qmax - self.qmin) as u64
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum EncodingError {
    BitwidthOutOfRange { bitwidth: u32 },
    /// `argument` is "min" or "max".
    NaN { argument: &'static str },
    MinGreaterThanMax { min: f32, max: f32 },
    /// Asymmetric 32-bit grids need offsets down to −(2^32 − 1), which `i32` cannot hold.
    OffsetOutOfRange { bitwidth: u32, offset: i64 },
}

impl fmt::Display for EncodingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodingError::BitwidthOutOfRange { bitwidth } => {
                write!(f, "bitwidth must be between 2 and 32, got {bitwidth}")
            }
            EncodingError::NaN { argument } => write!(f, "{argument} is NaN; expected a number"),
            EncodingError::MinGreaterThanMax { min, max } => {
                write!(f, "min ({min}) is greater than max ({max})")
            }
            EncodingError::OffsetOutOfRange { bitwidth, offset } => write!(
                f,
                "asymmetric {bitwidth}-bit encoding needs offset {offset}, outside the 32-bit \
                 offset range; use a symmetric encoding or at most 31 bits"
            ),
        }
    }
}

impl std::error::Error for EncodingError {}

/// AIMET's minimum scale [MS]: the largest s ≤ float32 eps with s·num_steps ≤ 0.01.
/// Equals `f32::EPSILON` up to 16 bits (num_steps ≤ 83 886), smaller above.
pub fn minimum_scale(num_steps: u64) -> f32 {
    let eps = f32::EPSILON as f64;
    eps.min(0.01 / num_steps as f64) as f32
}

/// Computes the encoding aimet-onnx 2.42 derives from an observed range.
///
/// Arithmetic in f64 from the f32 min/max, as libpymo does [PY]; the scale is rounded to f32
/// once at the end (what an ONNX QuantizeLinear can carry). The offset is rounded from the f64
/// quotient: on [−1, 1] asymmetric 8 bit, −1/(2/255) = −127.5 exactly, which rounds to −128,
/// while an f32 scale would give −127.499… → −127 (aimet-onnx writes −128; checked against the
/// golden file `__test__/fixtures/golden/aimet-encodings.json`).
/// Tiny ranges: the scale is floored at the minimum scale (f32 epsilon up to 16 bits), which is
/// what aimet-onnx exports (all-zero data give scale 2^−23 exactly) — not aimet_torch's nudge of
/// the range [EA].
pub fn compute_encoding(min: f32, max: f32, spec: &EncodingSpec) -> Result<Encoding, EncodingError> {
    spec.validate()?;
    if min.is_nan() {
        return Err(EncodingError::NaN { argument: "min" });
    }
    if max.is_nan() {
        return Err(EncodingError::NaN { argument: "max" });
    }
    if min > max {
        return Err(EncodingError::MinGreaterThanMax { min, max });
    }

    let (qmin, qmax) = spec.grid(min);
    let unsigned_sym = spec.uses_unsigned_symmetric(min);
    let signed_sym = spec.symmetric && !unsigned_sym;
    let num_steps_u = (qmax - qmin) as u64;
    let num_steps = num_steps_u as f64;
    let min_scale = minimum_scale(num_steps_u) as f64;

    // Zero is always representable, and non-finite ends clamp to ±f32::MAX [EA adjust_min_max].
    let lo = (min.min(0.0).max(f32::MIN)) as f64;
    let hi = (max.max(0.0).min(f32::MAX)) as f64;

    let base = Encoding {
        bitwidth: spec.bitwidth,
        min: 0.0,
        max: 0.0,
        scale: 0.0,
        offset: 0,
        qmin,
        qmax,
        symmetric: spec.symmetric,
        strict_symmetric: spec.strict_symmetric,
        unsigned_symmetric: spec.unsigned_symmetric,
    };

    if signed_sym {
        // delta = max(max/pos, −min/neg) [EA]; strict uses pos = neg [PY] (num_steps even).
        let pos = (num_steps_u / 2) as f64;
        let neg = num_steps_u.div_ceil(2) as f64;
        let delta = (hi / pos).max(-lo / neg).max(min_scale);
        // Keep the grid's ends finite [PY: "Clamp delta such that dequantized tensor always lie
        // in range [FLOAT32_MIN, FLOAT32_MAX]"]; only bites for ranges near ±f32::MAX.
        let delta = delta.min(f32::MAX as f64 / neg) as f32;
        // The signed grid [qmin, qmax] is centred: offset 0, ends −neg·δ and pos·δ.
        return Ok(Encoding { min: (-neg * delta as f64) as f32, max: (pos * delta as f64) as f32, scale: delta, offset: 0, ..base });
    }

    // Asymmetric, or unsigned symmetric (then lo = 0 and the offset comes out 0) [PY].
    let scale = ((hi - lo) / num_steps).max(min_scale);
    let offset = (lo / scale).round_ties_even().clamp(-num_steps, 0.0);
    // Keep the grid's ends finite, as libpymo does [PY]; no effect below ~1e38.
    let mut scale = scale;
    if offset < 0.0 {
        scale = scale.min(f32::MIN as f64 / offset);
    }
    if offset + num_steps > 0.0 {
        scale = scale.min(f32::MAX as f64 / (offset + num_steps));
    }
    let offset_i = offset as i64;
    if offset_i < i32::MIN as i64 {
        return Err(EncodingError::OffsetOutOfRange { bitwidth: spec.bitwidth, offset: offset_i });
    }
    let scale32 = scale as f32;
    Ok(Encoding {
        min: (offset * scale32 as f64) as f32,
        max: ((offset + num_steps) * scale32 as f64) as f32,
        scale: scale32,
        offset: offset_i as i32,
        ..base
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(bitwidth: u32, symmetric: bool) -> EncodingSpec {
        EncodingSpec::new(bitwidth, symmetric)
    }

    #[test]
    fn symmetric_int8_unit_range() {
        let e = compute_encoding(-1.0, 1.0, &spec(8, true)).unwrap();
        // delta = max(1/127, 1/128) = 1/127
        assert_eq!(e.scale, 1.0f32 / 127.0);
        assert_eq!(e.offset, 0);
        assert_eq!(e.aimet_file_offset(), -128);
        assert_eq!((e.qmin, e.qmax), (-128, 127));
        assert_eq!(e.min, -128.0 * (1.0f32 / 127.0));
        assert_eq!(e.max, 127.0 * (1.0f32 / 127.0));
        assert_eq!(e.zero_point(), 0);
    }

    #[test]
    fn symmetric_negative_side_dominates() {
        // −min/neg = 2/128 > max/pos = 1/127
        let e = compute_encoding(-2.0, 1.0, &spec(8, true)).unwrap();
        assert_eq!(e.scale, 2.0f32 / 128.0);
        assert_eq!(e.min, -2.0);
        assert_eq!(e.max, 127.0 * (2.0f32 / 128.0));
    }

    #[test]
    fn symmetric_int4() {
        // num_steps 15: pos 7, neg 8 → delta = max(1/7, 1/8) = 1/7, file offset −8
        let e = compute_encoding(-1.0, 1.0, &spec(4, true)).unwrap();
        assert_eq!(e.scale, 1.0f32 / 7.0);
        assert_eq!(e.aimet_file_offset(), -8);
        assert_eq!((e.qmin, e.qmax), (-8, 7));
        assert_eq!(e.min, -8.0 * (1.0f32 / 7.0));
    }

    #[test]
    fn asymmetric_int8() {
        let e = compute_encoding(-0.5, 1.5, &spec(8, false)).unwrap();
        let s = 2.0f32 / 255.0;
        assert_eq!(e.scale, s);
        // round(−0.5/(2/255)) = round(−63.75) = −64
        assert_eq!(e.offset, -64);
        assert_eq!(e.aimet_file_offset(), -64);
        assert_eq!(e.zero_point(), 64);
        assert_eq!((e.qmin, e.qmax), (0, 255));
        assert_eq!(e.min, -64.0 * s);
        assert_eq!(e.max, 191.0 * s);
    }

    #[test]
    fn asymmetric_offset_rounds_half_to_even() {
        // scale = (255/256)/255 = 1/256 exactly; min/scale = −2.5 → −2 (half away would give −3)
        let min = -2.5f32 / 256.0;
        let max = min + 255.0 / 256.0;
        let e = compute_encoding(min, max, &spec(8, false)).unwrap();
        assert_eq!(e.scale, 1.0 / 256.0);
        assert_eq!(e.offset, -2);
    }

    #[test]
    fn zero_is_always_in_range() {
        let e = compute_encoding(1.0, 2.0, &spec(8, false)).unwrap();
        assert_eq!(e.offset, 0);
        assert_eq!(e.min, 0.0);
        assert_eq!(e.scale, 2.0f32 / 255.0);
        let e = compute_encoding(-3.0, -1.0, &spec(8, false)).unwrap();
        assert_eq!(e.offset, -255);
        assert_eq!(e.max, 0.0);
        assert_eq!(e.min, -255.0 * (3.0f32 / 255.0));
    }

    #[test]
    fn tiny_range_floors_the_scale_asymmetric() {
        // min = max = 0: the scale is floored at eps (aimet-onnx exports 2^−23), offset 0
        let e = compute_encoding(0.0, 0.0, &spec(8, false)).unwrap();
        assert_eq!(e.scale, f32::EPSILON);
        assert_eq!(e.offset, 0);
        assert_eq!(e.max, 255.0 * f32::EPSILON);
        // a range of 1e-6 (step 3.9e-9 < eps) is floored the same way
        let e = compute_encoding(0.0, 1e-6, &spec(8, false)).unwrap();
        assert_eq!(e.scale, f32::EPSILON);
    }

    #[test]
    fn offset_ties_round_in_f64() {
        // −1/(2/255) = −127.5 exactly in f64 → −128 (half to even); in f32 it would be −127.
        let e = compute_encoding(-1.0, 1.0, &spec(8, false)).unwrap();
        assert_eq!(e.offset, -128);
        assert_eq!(e.scale, (2.0f64 / 255.0) as f32);
    }

    #[test]
    fn tiny_range_floors_the_scale_symmetric() {
        // delta = max(0/127, 0/128) floored at eps
        let e = compute_encoding(0.0, 0.0, &spec(8, true)).unwrap();
        assert_eq!(e.scale, f32::EPSILON);
        assert_eq!(e.min, -128.0 * f32::EPSILON);
        assert_eq!(e.max, 127.0 * f32::EPSILON);
    }

    #[test]
    fn minimum_scale_follows_aimet() {
        assert_eq!(minimum_scale(255), f32::EPSILON);
        assert_eq!(minimum_scale(65535), f32::EPSILON);
        assert_eq!(minimum_scale(u32::MAX as u64), (0.01 / 4294967295.0f64) as f32);
    }

    #[test]
    fn strict_symmetric() {
        // grid −127..127, num_steps 254: delta = max(1/127, 1/127)
        let mut sp = spec(8, true);
        sp.strict_symmetric = true;
        let e = compute_encoding(-1.0, 1.0, &sp).unwrap();
        assert_eq!(e.scale, 1.0f32 / 127.0);
        assert_eq!((e.qmin, e.qmax), (-127, 127));
        assert_eq!(e.aimet_file_offset(), -127);
        assert_eq!(e.min, -e.max);
        // −min/127 dominates when |min| > max
        let e = compute_encoding(-2.0, 1.0, &sp).unwrap();
        assert_eq!(e.scale, 2.0f32 / 127.0);
    }

    #[test]
    fn unsigned_symmetric() {
        let mut sp = spec(8, true);
        sp.unsigned_symmetric = true;
        let e = compute_encoding(0.5, 2.0, &sp).unwrap();
        assert_eq!((e.qmin, e.qmax), (0, 255));
        assert_eq!(e.offset, 0);
        assert_eq!(e.aimet_file_offset(), 0);
        assert_eq!(e.scale, 2.0f32 / 255.0);
        assert_eq!(e.min, 0.0);
        // min < 0: back to the signed symmetric grid
        let e = compute_encoding(-0.5, 2.0, &sp).unwrap();
        assert_eq!((e.qmin, e.qmax), (-128, 127));
        assert_eq!(e.scale, 2.0f32 / 127.0);
        // without the flag, a non-negative range stays signed
        let e = compute_encoding(0.5, 2.0, &spec(8, true)).unwrap();
        assert_eq!(e.aimet_file_offset(), -128);
        assert_eq!(e.scale, 2.0f32 / 127.0);
    }

    #[test]
    fn non_finite_ends_clamp() {
        let e = compute_encoding(f32::NEG_INFINITY, f32::INFINITY, &spec(8, true)).unwrap();
        // delta = max/127 would put −128·delta beyond f32; libpymo caps delta at MAX/128
        assert_eq!(e.scale, f32::MAX / 128.0);
        assert!(e.min.is_finite() && e.max.is_finite());
        let e = compute_encoding(f32::NEG_INFINITY, f32::INFINITY, &spec(8, false)).unwrap();
        assert!(e.scale.is_finite() && e.min.is_finite() && e.max.is_finite());
        assert_eq!(e.offset, -128);
        assert_eq!(e.scale, f32::MAX / 128.0);
    }

    #[test]
    fn errors_name_the_argument() {
        assert_eq!(
            compute_encoding(0.0, 1.0, &spec(1, true)),
            Err(EncodingError::BitwidthOutOfRange { bitwidth: 1 })
        );
        assert_eq!(
            compute_encoding(0.0, 1.0, &spec(33, false)),
            Err(EncodingError::BitwidthOutOfRange { bitwidth: 33 })
        );
        assert_eq!(compute_encoding(f32::NAN, 1.0, &spec(8, true)), Err(EncodingError::NaN { argument: "min" }));
        assert_eq!(compute_encoding(0.0, f32::NAN, &spec(8, true)), Err(EncodingError::NaN { argument: "max" }));
        assert_eq!(
            compute_encoding(2.0, 1.0, &spec(8, true)),
            Err(EncodingError::MinGreaterThanMax { min: 2.0, max: 1.0 })
        );
        let msg = compute_encoding(2.0, 1.0, &spec(8, true)).unwrap_err().to_string();
        assert!(msg.contains("min") && msg.contains("max"));
    }

    #[test]
    fn wide_bitwidths() {
        let e = compute_encoding(-1.0, 1.0, &spec(16, true)).unwrap();
        assert_eq!(e.scale, 1.0f32 / 32767.0);
        assert_eq!(e.aimet_file_offset(), -32768);
        let e = compute_encoding(-1.0, 1.0, &spec(32, true)).unwrap();
        assert_eq!(e.aimet_file_offset(), i32::MIN);
        assert_eq!(e.scale, 1.0f32 / 2147483647.0);
        assert!(matches!(
            compute_encoding(-3.0, 1.0, &spec(32, false)),
            Err(EncodingError::OffsetOutOfRange { .. })
        ));
        // asymmetric 31 bit still fits
        let e = compute_encoding(-1.0, 1.0, &spec(31, false)).unwrap();
        assert!(e.offset < 0);
    }
}
