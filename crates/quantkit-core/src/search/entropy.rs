//! `Entropy`: TensorRT's KL-divergence calibration (Migacz, "8-bit Inference with TensorRT",
//! GTC 2017; MXNet `_get_optimal_threshold`). Not an AIMET scheme.
//!
//! On a histogram of |x| with 2048 bins over [0, a]: for each candidate cut i = levels..=2048,
//! the reference P is bins [0, i) with everything beyond folded into bin i − 1; the candidate Q
//! merges bins [0, i) into `levels` groups (the last takes the remainder) and spreads each
//! group's mass evenly over the bins that are non-empty in P. The cut with the smallest KL(P‖Q)
//! wins; the threshold is its upper edge i·a/2048 (TensorRT uses the bin centre, (i + 0.5)·w).
//!
//! Which values and how many levels:
//! - signed symmetric: |x| of both sides together, levels = ceil(num_steps/2) (128 for int8);
//!   range [−T, T].
//! - data on one side of zero (min ≥ 0 or max ≤ 0), asymmetric or unsigned symmetric: that side
//!   alone with levels = num_steps + 1 (256 for 8 bit); range [0, T] or [−T, 0].
//! - asymmetric data on both sides: each side on its own with levels = ceil(num_steps/2) (each
//!   side treated as owning half the grid); range [−T_neg, T_pos].
//! When levels ≥ 2048 (bitwidths above 10 one-sided / 11 symmetric) nothing can be clipped at
//! this resolution and the observed range is returned.
//!
//! The |x| histogram is rebuilt from the signed bins by splitting bins that straddle zero and
//! re-binning proportionally (uniform within a bin).

use super::Bins;
use crate::encoding::EncodingSpec;

const KL_BINS: usize = 2048;
const SMOOTH_EPS: f64 = 1e-4;

pub(crate) fn clip_range(b: &Bins, spec: &EncodingSpec) -> (f32, f32) {
    let ns = spec.num_steps(b.min) as usize;
    let half = ns.div_ceil(2);
    let (min, max) = (b.min.min(0.0) as f64, b.max.max(0.0) as f64);
    let signed_sym = spec.symmetric && !spec.uses_unsigned_symmetric(b.min);
    if signed_sym {
        let a = max.max(-min);
        let t = threshold(&abs_histogram(b, a, true, true), a, half) as f32;
        return (-t, t);
    }
    if min == 0.0 {
        return (0.0, threshold(&abs_histogram(b, max, true, false), max, ns + 1) as f32);
    }
    if max == 0.0 {
        return (-(threshold(&abs_histogram(b, -min, false, true), -min, ns + 1) as f32), 0.0);
    }
    let tp = threshold(&abs_histogram(b, max, true, false), max, half);
    let tn = threshold(&abs_histogram(b, -min, false, true), -min, half);
    (-(tn as f32), tp as f32)
}

/// Histogram of |x| over [0, extent] with KL_BINS bins, from the positive and/or negative side.
fn abs_histogram(b: &Bins, extent: f64, positive: bool, negative: bool) -> Vec<f64> {
    let mut out = vec![0.0; KL_BINS];
    if extent <= 0.0 {
        return out;
    }
    let w = extent / KL_BINS as f64;
    let mut spread = |a: f64, z: f64, c: f64| {
        // mass c uniform on [a, z) in |x| units
        if c <= 0.0 {
            return;
        }
        let pa = (a / w).clamp(0.0, KL_BINS as f64);
        let pz = (z / w).clamp(0.0, KL_BINS as f64);
        let ia = (pa.floor() as usize).min(KL_BINS - 1);
        let iz = (pz.ceil() as usize).clamp(ia + 1, KL_BINS);
        if pz - pa <= 0.0 || iz - ia == 1 {
            out[ia] += c;
            return;
        }
        for i in ia..iz {
            let ov = (pz.min((i + 1) as f64) - pa.max(i as f64)).max(0.0);
            out[i] += c * ov / (pz - pa);
        }
    };
    for (i, &c) in b.counts.iter().enumerate() {
        if c == 0.0 {
            continue;
        }
        let lo = b.lo + b.width * i as f64;
        let hi = lo + b.width;
        let span = hi - lo;
        if positive && hi > 0.0 {
            let s = lo.max(0.0);
            spread(s, hi, c * (hi - s) / span);
        }
        if negative && lo < 0.0 {
            let e = hi.min(0.0);
            spread(-e, -lo, c * (e - lo) / span);
        }
    }
    out
}

/// MXNet / ONNX Runtime `smooth_distribution`: give empty bins `SMOOTH_EPS` counts, taken
/// evenly from the non-empty ones, so that an outlier folded into a bin Q leaves empty costs a
/// large but finite KL. False when the bins cannot spare it (the candidate is skipped).
fn smooth(h: &mut [f64]) -> bool {
    let zeros = h.iter().filter(|&&v| v == 0.0).count();
    let nonzeros = h.len() - zeros;
    if nonzeros == 0 {
        return false;
    }
    let eps1 = SMOOTH_EPS * zeros as f64 / nonzeros as f64;
    if eps1 >= 1.0 {
        return false;
    }
    for v in h.iter_mut() {
        *v = if *v == 0.0 { SMOOTH_EPS } else { *v - eps1 };
    }
    h.iter().all(|&v| v > 0.0)
}

/// TensorRT's threshold search; returns the clip value in |x| units.
fn threshold(hist: &[f64], extent: f64, levels: usize) -> f64 {
    let n = hist.len();
    if levels >= n || hist.iter().all(|&c| c == 0.0) {
        return extent;
    }
    let w = extent / n as f64;
    let mut suffix = vec![0.0; n + 1];
    for i in (0..n).rev() {
        suffix[i] = suffix[i + 1] + hist[i];
    }
    let mut best = (f64::INFINITY, n);
    let mut p = vec![0.0; n];
    let mut q = vec![0.0; n];
    for i in levels..=n {
        p[..i].copy_from_slice(&hist[..i]);
        p[i - 1] += suffix[i];
        let per = i / levels;
        for j in 0..levels {
            let start = j * per;
            let end = if j == levels - 1 { i } else { start + per };
            let total: f64 = hist[start..end].iter().sum();
            let nonzero = p[start..end].iter().filter(|&&v| v != 0.0).count();
            for k in start..end {
                q[k] = if p[k] != 0.0 && nonzero > 0 { total / nonzero as f64 } else { 0.0 };
            }
        }
        if !smooth(&mut p[..i]) || !smooth(&mut q[..i]) {
            continue;
        }
        let (ps, qs): (f64, f64) = (p[..i].iter().sum(), q[..i].iter().sum());
        let mut kl = 0.0;
        for k in 0..i {
            if p[k] > 0.0 {
                let pk = p[k] / ps;
                let qk = q[k] / qs;
                kl += pk * (pk / qk).ln();
            }
        }
        if kl < best.0 {
            best = (kl, i);
        }
    }
    best.1 as f64 * w
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_abs_histogram_has_no_better_cut_than_the_end() {
        // Flat |x| histogram: any cut folds a spike into the edge bin, so the full range wins.
        let h = vec![10.0; KL_BINS];
        assert_eq!(threshold(&h, 1.0, 128), 1.0);
    }

    #[test]
    fn mass_below_levels_bins_is_kept_without_loss() {
        // All mass within the first 100 bins: cutting at i = 128 keeps P = Q exactly (KL 0).
        let mut h = vec![0.0; KL_BINS];
        for (i, v) in h.iter_mut().enumerate().take(100) {
            *v = 1.0 + (i % 7) as f64;
        }
        assert_eq!(threshold(&h, 2048.0, 128), 128.0);
    }

    #[test]
    fn straddling_bins_split_between_sides() {
        // one signed bin [−1, 3) with 8 values: |x| side gets 2 from [0, 1) (negative) and 6 from [0, 3)
        let counts = [8.0];
        let b = Bins { lo: -1.0, width: 4.0, counts: &counts, total: 8.0, min: -1.0, max: 3.0 };
        let both = abs_histogram(&b, 4.0, true, true);
        assert!((both.iter().sum::<f64>() - 8.0).abs() < 1e-9);
        let pos = abs_histogram(&b, 4.0, true, false);
        assert!((pos.iter().sum::<f64>() - 6.0).abs() < 1e-9);
        // the positive part lies in [0, 3): nothing in the last quarter
        assert!(pos[3 * KL_BINS / 4..].iter().all(|&v| v == 0.0));
    }
}
