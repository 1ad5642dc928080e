//! float32 → float16 / bfloat16 bit patterns, round to nearest, ties to even (IEEE 754's default,
//! what numpy's `astype(np.float16)` and ONNX Runtime's Cast do).
//!
//! float16 (binary16): 1 sign, 5 exponent (bias 15), 10 mantissa bits. Largest finite 65504
//! (0x7bff); anything that rounds above it (|x| ≥ 65520, the midpoint to 65536) becomes ±inf.
//! Below 2⁻¹⁴ the result is subnormal (unit 2⁻²⁴); below 2⁻²⁵ (and 2⁻²⁵ itself, a tie to the
//! even 0) it is ±0. NaN stays NaN: quiet bit set, top payload bits kept, sign kept.
//!
//! bfloat16: the top 16 bits of the float32, rounded to nearest even on the 16 bits dropped;
//! overflow rounds to ±inf by the same carry. NaN is kept quiet (a NaN whose payload sits only in
//! the dropped bits would otherwise become inf).
//!
//! Tensors above PARALLEL_MIN elements are converted in chunks on rayon's pool.

use rayon::prelude::*;

const PARALLEL_MIN: usize = 1 << 16;
const CHUNK: usize = 1 << 14;

/// One float32 → float16 bits.
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    let sign = ((b >> 16) & 0x8000) as u16;
    let abs = b & 0x7fff_ffff;
    if abs >= 0x7f80_0000 {
        if abs > 0x7f80_0000 {
            // NaN: quiet, keep the top 9 payload bits that fit.
            return sign | 0x7e00 | ((abs >> 13) as u16 & 0x01ff);
        }
        return sign | 0x7c00;
    }
    if abs >= 0x477f_f000 {
        // ≥ 65520: rounds to 65536 or more, beyond float16's range.
        return sign | 0x7c00;
    }
    if abs < 0x3880_0000 {
        // Below 2⁻¹⁴: subnormal float16 (or zero). Value = m·2^(e−150); in units of 2⁻²⁴ that is
        // m >> (126 − e), rounded to nearest even.
        if abs < 0x3300_0000 {
            return sign; // below 2⁻²⁵: rounds to zero
        }
        let e = abs >> 23;
        let m = (abs & 0x007f_ffff) | 0x0080_0000;
        let shift = 126 - e; // 14 ..= 24
        let q = m >> shift;
        let rem = m & ((1 << shift) - 1);
        let half = 1 << (shift - 1);
        let up = rem > half || (rem == half && (q & 1) == 1);
        // q + 1 may reach 0x400, the smallest normal: the bit pattern is right as it stands.
        return sign | (q + up as u32) as u16;
    }
    // Normal: rebias the exponent (127 → 15) and round the 13 dropped mantissa bits to nearest
    // even; a carry out of the mantissa correctly bumps the exponent.
    let rebased = abs - (112 << 23);
    let rounded = (rebased + 0x0fff + ((rebased >> 13) & 1)) >> 13;
    sign | rounded as u16
}

/// One float32 → bfloat16 bits.
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if (b & 0x7fff_ffff) > 0x7f80_0000 {
        return ((b >> 16) as u16) | 0x0040;
    }
    let rounded = b.wrapping_add(0x7fff + ((b >> 16) & 1)) >> 16;
    rounded as u16
}

/// float16 bits → float32 (exact: every float16 is a float32).
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1f) as u32;
    let man = (h & 0x03ff) as u32;
    let bits = if exp == 0 {
        if man == 0 {
            sign
        } else {
            // Subnormal: value = man·2⁻²⁴, exact in float32.
            return f32::from_bits(sign) + (if sign != 0 { -1.0 } else { 1.0 }) * man as f32 * (1.0 / 16_777_216.0);
        }
    } else if exp == 0x1f {
        sign | 0x7f80_0000 | (man << 13)
    } else {
        sign | ((exp + 112) << 23) | (man << 13)
    };
    f32::from_bits(bits)
}

fn convert(x: &[f32], out: &mut [u16], f: fn(f32) -> u16) {
    assert_eq!(x.len(), out.len(), "half conversion: input and output lengths differ");
    if x.len() < PARALLEL_MIN {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = f(v);
        }
        return;
    }
    out.par_chunks_mut(CHUNK).zip(x.par_chunks(CHUNK)).for_each(|(o, xs)| {
        for (o, &v) in o.iter_mut().zip(xs) {
            *o = f(v);
        }
    });
}

/// float32 slice → float16 bits.
pub fn f32_to_f16(x: &[f32]) -> Vec<u16> {
    let mut out = vec![0u16; x.len()];
    convert(x, &mut out, f32_to_f16_bits);
    out
}

/// float32 slice → bfloat16 bits.
pub fn f32_to_bf16(x: &[f32]) -> Vec<u16> {
    let mut out = vec![0u16; x.len()];
    convert(x, &mut out, f32_to_bf16_bits);
    out
}

/// float16 bits → float32.
pub fn f16_to_f32(h: &[u16]) -> Vec<f32> {
    h.iter().map(|&v| f16_bits_to_f32(v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected patterns computed by hand from the binary16 layout (sign | exp+15 | mantissa).
    #[test]
    fn f16_hand_computed_patterns() {
        let cases: &[(f32, u16)] = &[
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (1.0, 0x3c00),
            (-2.0, 0xc000),
            (0.5, 0x3800),
            (65504.0, 0x7bff),            // largest finite
            (65519.996, 0x7bff),          // just below the midpoint to 65536
            (65520.0, 0x7c00),            // the midpoint: ties to even = 65536 = inf
            (-65520.0, 0xfc00),
            (1.0e6, 0x7c00),              // overflow
            (f32::MAX, 0x7c00),
            (f32::INFINITY, 0x7c00),
            (f32::NEG_INFINITY, 0xfc00),
            (6.103_515_6e-5, 0x0400),     // 2⁻¹⁴, smallest normal
            (5.96e-8, 0x0001),            // ≈ 2⁻²⁴, smallest subnormal
            (5.960_464_5e-8, 0x0001),     // 2⁻²⁴ exactly
            (2.980_232_2e-8, 0x0000),     // 2⁻²⁵: tie between 0 and 2⁻²⁴ → even (0)
            (4.470_348_4e-8, 0x0001),     // 1.5·2⁻²⁵ rounds up to 2⁻²⁴
            (8.940_697e-8, 0x0002),       // 1.5·2⁻²⁴: tie between 1 and 2 units → even (2)
            (1.0e-10, 0x0000),            // underflow to zero
            (-1.0e-10, 0x8000),
            (6.097_555e-5, 0x03ff),       // largest subnormal 1023·2⁻²⁴
            (0.1, 0x2e66),                // 0.1 → 0x2e66 (0.0999755859375)
            (3.140_625, 0x4248),          // exact
        ];
        for &(x, want) in cases {
            assert_eq!(f32_to_f16_bits(x), want, "{x:e} → {:#06x}, want {want:#06x}", f32_to_f16_bits(x));
        }
    }

    #[test]
    fn f16_ties_to_even() {
        // Around 1.0 the float16 step is 2⁻¹⁰. 1 + 2⁻¹¹ is halfway between 0x3c00 (even) and 0x3c01.
        assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11)), 0x3c00);
        // 1 + 3·2⁻¹¹ is halfway between 0x3c01 (odd) and 0x3c02 (even).
        assert_eq!(f32_to_f16_bits(1.0 + 3.0 * 2f32.powi(-11)), 0x3c02);
        // Just above a midpoint rounds up.
        assert_eq!(f32_to_f16_bits(1.0 + 2f32.powi(-11) + 2f32.powi(-20)), 0x3c01);
        // 2048 + 1 is a midpoint between 2048 (0x6800, even) and 2050 (0x6801).
        assert_eq!(f32_to_f16_bits(2049.0), 0x6800);
        assert_eq!(f32_to_f16_bits(2051.0), 0x6802);
        // A carry out of the mantissa bumps the exponent: 2047.9 → 2048.
        assert_eq!(f32_to_f16_bits(2047.9), 0x6800);
    }

    #[test]
    fn f16_nan_stays_nan() {
        for x in [f32::NAN, -f32::NAN, f32::from_bits(0x7f80_0001), f32::from_bits(0xffc0_1234)] {
            let h = f32_to_f16_bits(x);
            assert_eq!(h & 0x7c00, 0x7c00, "{:#x}", x.to_bits());
            assert_ne!(h & 0x03ff, 0, "NaN {:#x} became inf", x.to_bits());
            assert_eq!(h & 0x8000, ((x.to_bits() >> 16) & 0x8000) as u16, "sign kept");
        }
    }

    #[test]
    fn f16_round_trip_is_exact_for_every_half() {
        for h in 0u16..=0xffff {
            let x = f16_bits_to_f32(h);
            if x.is_nan() {
                assert!(f16_bits_to_f32(f32_to_f16_bits(x)).is_nan());
            } else {
                assert_eq!(f32_to_f16_bits(x), h, "{h:#06x} → {x:e}");
            }
        }
    }

    #[test]
    fn f16_matches_a_reference_on_random_floats() {
        // Reference: pick the nearer of the two neighbouring float16 values in f64, ties to even.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let x = f32::from_bits((state >> 32) as u32);
            if !x.is_finite() || x.abs() >= 65520.0 {
                continue;
            }
            let got = f32_to_f16_bits(x);
            let lo = {
                // largest float16 ≤ |x| by search over the monotone positive patterns
                let (mut a, mut b) = (0u16, 0x7bffu16);
                while a < b {
                    let mid = (a + b + 1) / 2;
                    if (f16_bits_to_f32(mid) as f64) <= x.abs() as f64 { a = mid } else { b = mid - 1 }
                }
                a
            };
            let (l, u) = (f16_bits_to_f32(lo) as f64, f16_bits_to_f32(lo + 1) as f64);
            let ax = x.abs() as f64;
            let pick = if ax - l < u - ax { lo } else if ax - l > u - ax { lo + 1 } else if lo & 1 == 0 { lo } else { lo + 1 };
            let want = pick | if x.is_sign_negative() { 0x8000 } else { 0 };
            assert_eq!(got, want, "{x:e}");
        }
    }

    #[test]
    fn bf16_hand_computed_patterns() {
        let cases: &[(f32, u16)] = &[
            (0.0, 0x0000),
            (-0.0, 0x8000),
            (1.0, 0x3f80),
            (-2.0, 0xc000),
            (f32::INFINITY, 0x7f80),
            (f32::MAX, 0x7f80),                 // rounds up past bfloat16's largest finite: inf
            (f32::from_bits(0x3f80_8000), 0x3f80), // 1 + 2⁻⁸: tie, even stays 0x3f80
            (f32::from_bits(0x3f81_8000), 0x3f82), // tie from odd 0x3f81 rounds up to even
            (f32::from_bits(0x3f80_8001), 0x3f81), // above the tie rounds up
            (3.140_625, 0x4049),
        ];
        for &(x, want) in cases {
            assert_eq!(f32_to_bf16_bits(x), want, "{x:e} → {:#06x}, want {want:#06x}", f32_to_bf16_bits(x));
        }
        let nan = f32_to_bf16_bits(f32::from_bits(0x7f80_0001));
        assert!(nan & 0x7f80 == 0x7f80 && nan & 0x007f != 0, "payload-only NaN stays NaN: {nan:#06x}");
    }

    #[test]
    fn slices_parallel_and_serial_agree() {
        let x: Vec<f32> = (0..(PARALLEL_MIN * 3 + 7)).map(|i| (i as f32 - 1e5) * 0.731).collect();
        let h = f32_to_f16(&x);
        let b = f32_to_bf16(&x);
        for (i, &v) in x.iter().enumerate() {
            assert_eq!(h[i], f32_to_f16_bits(v));
            assert_eq!(b[i], f32_to_bf16_bits(v));
        }
    }
}

/// Largest |x| over the finite elements (0 for an empty or all-non-finite slice): tells whether a
/// float32 tensor fits float16's range before it is converted.
pub fn max_abs_finite(x: &[f32]) -> f32 {
    let fold = |xs: &[f32]| xs.iter().filter(|v| v.is_finite()).fold(0f32, |m, v| m.max(v.abs()));
    if x.len() < PARALLEL_MIN {
        return fold(x);
    }
    x.par_chunks(CHUNK).map(fold).reduce(|| 0f32, f32::max)
}

#[cfg(test)]
mod range_tests {
    use super::*;

    #[test]
    fn max_abs_finite_skips_inf_and_nan() {
        assert_eq!(max_abs_finite(&[]), 0.0);
        assert_eq!(max_abs_finite(&[1.0, -70000.0, f32::INFINITY, f32::NAN, 3.0]), 70000.0);
        let big: Vec<f32> = (0..(PARALLEL_MIN * 2)).map(|i| if i == 99_999 { -1.0e5 } else { 1.0 }).collect();
        assert_eq!(max_abs_finite(&big), 1.0e5);
    }
}
