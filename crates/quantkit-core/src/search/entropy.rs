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
//!
//! Speed (same cut as the cut-by-cut search of `reference.rs`, ties included): KL(P‖Q) of each
//! cut is estimated in O(1) from prefix sums, with a bound on how far the estimate can be from
//! what the cut-by-cut search computes; only the cuts whose interval reaches the lowest upper
//! bound (usually one) are then evaluated exactly as before. The estimate writes
//! KL = (Σ p·ln p − Σ p·ln q)/Σp + ln(Σq/Σp):
//! - Σ p·ln p over the smoothed bins, (h − ε₁)·ln(h − ε₁): second-order Taylor series in ε₁
//!   (1e-4·zeros/non-zeros) over prefix sums of h·ln h, ln h, 1/h; remainder ≤ ε₁³/6·Σ 1/(h − ε₁)².
//! - Σ p·ln q: Q is constant on a group's P-non-empty bins, and groups 0 … levels − 2 are the same
//!   for all cuts with the same i/levels; their ln(v − ε₂) is a Taylor series in ε₂ over sums
//!   cached per i/levels (remainder bounded likewise), plus one log for the last group.
//!
//! Which cuts are skipped (smoothing impossible) is decided exactly, or the cut is evaluated.

use super::Bins;
use crate::encoding::EncodingSpec;

const KL_BINS: usize = 2048;
const SMOOTH_EPS: f64 = 1e-4;

pub(crate) fn clip_range(b: &Bins, spec: &EncodingSpec) -> (f32, f32) {
    clip_range_with(b, spec, threshold)
}

/// [`clip_range`] with the threshold search passed in (tests compare two of them).
pub(crate) fn clip_range_with(b: &Bins, spec: &EncodingSpec, threshold: fn(&[f64], f64, usize) -> f64) -> (f32, f32) {
    // Zero is exact on every grid (it is always in range), so the mass in the bin holding it
    // must not steer the search. With it, the ReLU spike (half the values of a ReLU output are
    // 0) makes every wide candidate look bad — its group's mass gets spread over many bins — and
    // KL clipped MNIST's ReLU outputs near their 97th percentile, losing 4.6 points of accuracy.
    let threshold_without_zero = |h: Vec<f64>, a: f64, levels: usize| {
        let mut h = h;
        h[0] = 0.0;
        if h.iter().all(|&c| c == 0.0) {
            return a;
        }
        threshold(&h, a, levels)
    };
    let ns = spec.num_steps(b.min) as usize;
    let half = ns.div_ceil(2);
    let (min, max) = (b.min.min(0.0) as f64, b.max.max(0.0) as f64);
    let signed_sym = spec.symmetric && !spec.uses_unsigned_symmetric(b.min);
    if signed_sym {
        let a = max.max(-min);
        let t = threshold_without_zero(abs_histogram(b, a, true, true), a, half) as f32;
        return (-t, t);
    }
    if min == 0.0 {
        return (0.0, threshold_without_zero(abs_histogram(b, max, true, false), max, ns + 1) as f32);
    }
    if max == 0.0 {
        return (-(threshold_without_zero(abs_histogram(b, -min, false, true), -min, ns + 1) as f32), 0.0);
    }
    let tp = threshold_without_zero(abs_histogram(b, max, true, false), max, half);
    let tn = threshold_without_zero(abs_histogram(b, -min, false, true), -min, half);
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
pub(crate) fn threshold(hist: &[f64], extent: f64, levels: usize) -> f64 {
    let n = hist.len();
    if levels >= n || hist.iter().all(|&c| c == 0.0) {
        return extent;
    }
    let w = extent / n as f64;
    let pre = Prefix::of(hist);
    // Pass 1: an interval per cut around what `kl_at` would return (None: evaluate it).
    let mut bounds: Vec<Option<(f64, f64)>> = Vec::with_capacity(n + 1 - levels);
    let mut lowest_upper = f64::INFINITY;
    let mut fixed = FixedGroups::of(&pre, 1, levels);
    for i in levels..=n {
        if i / levels != fixed.per {
            fixed = FixedGroups::of(&pre, i / levels, levels);
        }
        let b = match estimate(&pre, &fixed, hist, i, levels) {
            Estimate::Skipped => Some((f64::INFINITY, f64::INFINITY)),
            Estimate::Unsure => None,
            Estimate::Kl { kl, err } if kl.is_finite() && err.is_finite() => {
                lowest_upper = lowest_upper.min(kl + err);
                Some((kl - err, kl + err))
            }
            Estimate::Kl { .. } => None,
        };
        bounds.push(b);
    }
    // Pass 2: the cut-by-cut search, over the cuts that can still win.
    let mut best = (f64::INFINITY, n);
    let mut p = vec![0.0; n];
    let mut q = vec![0.0; n];
    for (i, b) in (levels..=n).zip(bounds) {
        if b.is_some_and(|(lower, _)| lower > lowest_upper) {
            continue;
        }
        if let Some(kl) = kl_at(hist, &pre.suffix, i, levels, &mut p, &mut q) {
            if kl < best.0 {
                best = (kl, i);
            }
        }
    }
    best.1 as f64 * w
}

/// KL(P‖Q) of cut `i`, exactly as the cut-by-cut search computes it; None if smoothing fails.
fn kl_at(hist: &[f64], suffix: &[f64], i: usize, levels: usize, p: &mut [f64], q: &mut [f64]) -> Option<f64> {
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
        return None;
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
    Some(kl)
}

/// Sums over bins [0, k) of the histogram, index k; the `h` terms over non-empty bins only.
struct Prefix {
    /// As the cut-by-cut search builds it: suffix[i] = Σ hist[i..].
    suffix: Vec<f64>,
    sum: Vec<f64>,
    nonzero: Vec<usize>,
    h_ln_h: Vec<f64>,
    abs_h_ln_h: Vec<f64>,
    ln_h: Vec<f64>,
    inv_h: Vec<f64>,
    inv_h2: Vec<f64>,
    /// Smallest non-zero count (∞ if none).
    min_h: Vec<f64>,
}

impl Prefix {
    fn of(hist: &[f64]) -> Self {
        let n = hist.len();
        let mut suffix = vec![0.0; n + 1];
        for i in (0..n).rev() {
            suffix[i] = suffix[i + 1] + hist[i];
        }
        let zeros = || Vec::with_capacity(n + 1);
        let mut p = Prefix {
            suffix,
            sum: zeros(),
            nonzero: Vec::with_capacity(n + 1),
            h_ln_h: zeros(),
            abs_h_ln_h: zeros(),
            ln_h: zeros(),
            inv_h: zeros(),
            inv_h2: zeros(),
            min_h: zeros(),
        };
        let (mut s, mut nz, mut a, mut g, mut l, mut c1, mut c2, mut m) = (0.0, 0, 0.0, 0.0, 0.0, 0.0, 0.0, f64::INFINITY);
        // one row per bin edge 0..=n; a trailing 0 pushes the last row and adds nothing
        for &h in hist.iter().chain([0.0].iter()) {
            p.sum.push(s);
            p.nonzero.push(nz);
            p.h_ln_h.push(a);
            p.abs_h_ln_h.push(g);
            p.ln_h.push(l);
            p.inv_h.push(c1);
            p.inv_h2.push(c2);
            p.min_h.push(m);
            if h != 0.0 {
                s += h;
                nz += 1;
                a += h * h.ln();
                g += (h * h.ln()).abs();
                l += h.ln();
                c1 += 1.0 / h;
                c2 += 1.0 / (h * h);
                m = m.min(h);
            }
        }
        p
    }
}

enum Estimate {
    /// The cut-by-cut search skips this cut (smoothing fails), for certain.
    Skipped,
    /// Too close to a skip decision to tell from the estimate.
    Unsure,
    /// KL within ±err of what `kl_at` returns.
    Kl { kl: f64, err: f64 },
}

/// Groups 0 … levels − 2 of every cut with the same `per = i/levels`: they lie before the fold
/// bin, so their Σhist, non-empty counts and Q value v = Σhist/non-empty do not depend on the
/// cut. Sums over the groups with data, for the Taylor series of ln(v − eps_q) in eps_q.
struct FixedGroups {
    per: usize,
    /// Σ H, Σ N (H = Σhist, N = non-empty bins of a group)
    h: f64,
    n: f64,
    /// Σ H·ln v, Σ N·ln v, Σ H/v, Σ N/v, Σ H/v², Σ N/v², Σ H/v³, Σ H·|ln v|
    h_ln: f64,
    n_ln: f64,
    h_inv: f64,
    n_inv: f64,
    h_inv2: f64,
    n_inv2: f64,
    h_inv3: f64,
    h_abs_ln: f64,
    min_v: f64,
    max_abs_ln: f64,
    /// Some v may underflow (the estimate then defers to `kl_at`).
    tiny: bool,
}

impl FixedGroups {
    fn of(pre: &Prefix, per: usize, levels: usize) -> Self {
        let mut f = FixedGroups {
            per,
            h: 0.0,
            n: 0.0,
            h_ln: 0.0,
            n_ln: 0.0,
            h_inv: 0.0,
            n_inv: 0.0,
            h_inv2: 0.0,
            n_inv2: 0.0,
            h_inv3: 0.0,
            h_abs_ln: 0.0,
            min_v: f64::INFINITY,
            max_abs_ln: 0.0,
            tiny: false,
        };
        for j in 0..levels - 1 {
            let (a, e) = (j * per, (j + 1) * per);
            let nz = pre.nonzero[e] - pre.nonzero[a];
            if nz == 0 {
                continue; // Σhist = 0 and no non-empty P bin: nothing in Q or Σ p·ln q
            }
            let (h, n) = (pre.sum[e] - pre.sum[a], nz as f64);
            f.tiny |= h < 1e-290;
            let v = h / n;
            let l = v.ln();
            f.h += h;
            f.n += n;
            f.h_ln += h * l;
            f.n_ln += n * l;
            f.h_inv += h / v;
            f.n_inv += n / v;
            f.h_inv2 += h / (v * v);
            f.n_inv2 += n / (v * v);
            f.h_inv3 += h / (v * v * v);
            f.h_abs_ln += h * l.abs();
            f.min_v = f.min_v.min(v);
            f.max_abs_ln = f.max_abs_ln.max(l.abs());
        }
        f
    }
}

/// O(1) estimate of cut `i` (see the module notes); mirrors `kl_at` step by step.
fn estimate(pre: &Prefix, fixed: &FixedGroups, hist: &[f64], i: usize, levels: usize) -> Estimate {
    let last = i - 1; // the bin the outliers fold into
    let p_last = hist[last] + pre.suffix[i];
    let last_nz = (p_last != 0.0) as usize;
    // smooth(P), decided exactly: same counts, same eps1 expression, h − eps1 > 0 ⇔ h > eps1
    let zp = last - pre.nonzero[last] + 1 - last_nz;
    let nzp = i - zp;
    if nzp == 0 {
        return Estimate::Skipped;
    }
    let eps_p = SMOOTH_EPS * zp as f64 / nzp as f64;
    let min_p = if last_nz == 1 { pre.min_h[last].min(p_last) } else { pre.min_h[last] };
    if eps_p >= 1.0 || min_p <= eps_p {
        return Estimate::Skipped;
    }
    if fixed.tiny {
        return Estimate::Unsure;
    }
    // Q: per group, v = Σhist / (non-empty P bins) on those bins, smoothed to v − eps_q. The
    // fixed groups' Q is zero only where P is; the last group's may also be (Σhist = 0 with
    // only the folded outliers in P).
    let a = (levels - 1) * fixed.per;
    let (nzp_l, total_l) = group_counts(pre, a, i, last, last_nz);
    let last_empty = pre.nonzero[i] == pre.nonzero[a];
    let (mut zq, mut min_v) = (zp, fixed.min_v);
    if last_empty {
        zq += nzp_l;
    } else if nzp_l > 0 {
        if total_l < 1e-290 {
            return Estimate::Unsure; // v might underflow to 0
        }
        min_v = min_v.min(total_l / nzp_l as f64);
    }
    let nzq = i - zq;
    if nzq == 0 {
        return Estimate::Skipped;
    }
    let eps_q = SMOOTH_EPS * zq as f64 / nzq as f64;
    if eps_q >= 1.0 {
        return Estimate::Skipped;
    }
    // v comes from prefix sums, not the in-order sum: within 1e-9 of eps_q, ask kl_at.
    if min_v <= eps_q * (1.0 - 1e-9) {
        return Estimate::Skipped;
    }
    if min_v <= eps_q * (1.0 + 1e-9) {
        return Estimate::Unsure;
    }

    let ln_eps = SMOOTH_EPS.ln();
    let (ep, eq) = (eps_p, eps_q);
    // Fixed groups: Σ (H − N·ep)·ln(v − eq), ln(v − eq) = ln v − eq/v − eq²/(2v²) − r with
    // 0 ≤ r ≤ (eq/v)³/(3(1 − eq/v)).
    let mut spq = fixed.h_ln - ep * fixed.n_ln - eq * (fixed.h_inv - ep * fixed.n_inv)
        - 0.5 * eq * eq * (fixed.h_inv2 - ep * fixed.n_inv2);
    let rem_q = if eq == 0.0 || fixed.n == 0.0 { 0.0 } else { eq * eq * eq / 3.0 * fixed.h_inv3 / (1.0 - eq / fixed.min_v) };
    let mut qs = fixed.h - eq * fixed.n;
    let mut mag_q = fixed.h_abs_ln + 2.0 * eq * fixed.h_inv;
    let mut p_on_eps = zp as f64 * SMOOTH_EPS;
    if nzp_l > 0 {
        let nzh = pre.nonzero[last] - pre.nonzero[a];
        let mut p_j = pre.sum[last] - pre.sum[a] - nzh as f64 * ep;
        if last_nz == 1 {
            p_j += p_last - ep;
        }
        if last_empty {
            p_on_eps += p_j;
        } else {
            let qv = total_l / nzp_l as f64 - eq;
            let lq = qv.ln();
            spq += p_j * lq;
            mag_q += p_j * lq.abs();
            qs += nzp_l as f64 * qv;
        }
    }
    spq += p_on_eps * ln_eps;
    mag_q += p_on_eps * ln_eps.abs();
    qs += zq as f64 * SMOOTH_EPS;

    // Σ p·ln p: zero bins ε·ln ε; bins [0, last) by Taylor in ep; the fold bin directly.
    // (h − e)·ln(h − e) = h·ln h − e·(ln h + 1) + e²/(2h) + r, 0 ≤ r ≤ e³/(6(h − e)²).
    let nzh = pre.nonzero[last];
    let mut spp = zp as f64 * SMOOTH_EPS * ln_eps + pre.h_ln_h[last] - ep * (pre.ln_h[last] + nzh as f64)
        + 0.5 * ep * ep * pre.inv_h[last];
    let shrink = 1.0 - ep / pre.min_h[last]; // min_h > eps_p (checked), or ∞ with no bins
    let rem_p = if ep == 0.0 || nzh == 0 { 0.0 } else { ep * ep * ep / 6.0 * pre.inv_h2[last] / (shrink * shrink) };
    let mut mag_p = zp as f64 * SMOOTH_EPS * ln_eps.abs() + pre.abs_h_ln_h[last] + ep * (pre.ln_h[last].abs() + nzh as f64);
    if last_nz == 1 {
        let v = p_last - ep;
        spp += v * v.ln();
        mag_p += (v * v.ln()).abs();
    }
    let ps = pre.sum[last] + p_last - nzp as f64 * ep + zp as f64 * SMOOTH_EPS;
    let kl = (spp - spq) / ps + (qs.ln() - ps.ln());
    // Rounding: both ways of computing sum ≤ 2·bins terms whose magnitudes add up to `mag`
    // (KL = Σ p̂·ln p̂ − Σ p̂·ln q̂ with p̂, q̂ normalised); 16·n·2⁻⁵³ per unit of it is generous.
    // A group's Σhist from prefix sums is off by a few ulps of the running total (≤ ps), which
    // moves H·ln v by that much times 1 + |ln v|.
    let eps = f64::EPSILON;
    let mag = (mag_p + mag_q) / ps + ps.ln().abs() + qs.ln().abs() + 1.0;
    let err = (rem_p + rem_q) / ps
        + 16.0 * hist.len() as f64 * eps * mag
        + 8.0 * levels as f64 * eps * (2.0 + fixed.max_abs_ln + ln_eps.abs());
    Estimate::Kl { kl, err }
}

/// (non-empty P bins, Σ hist) of group [a, e); P differs from hist only at the fold bin.
#[inline]
fn group_counts(pre: &Prefix, a: usize, e: usize, last: usize, last_nz: usize) -> (usize, f64) {
    let total = pre.sum[e] - pre.sum[a];
    if e > last {
        (pre.nonzero[last] - pre.nonzero[a] + last_nz, total)
    } else {
        (pre.nonzero[e] - pre.nonzero[a], total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relu_zero_spike_does_not_make_kl_clip_the_tail() {
        // Half the values exactly 0 (a ReLU output), half exponential(1). KL with the spike in
        // its bin 0 cut near the 97th percentile; without it the cut keeps ≥ 99 % of the values.
        use crate::observer::HistogramObserver;
        use crate::search::{search_range, Scheme};
        let mut r = crate::search::testdata::Rng::new(11);
        let n = 400_000;
        let x: Vec<f32> = (0..n).map(|i| if i % 2 == 0 { 0.0 } else { -(1.0 - r.next_f64()).ln() as f32 }).collect();
        let mut h = HistogramObserver::new(2048);
        h.update(&x).unwrap();
        let (_, hi) = search_range(&h, &Scheme::Entropy, &EncodingSpec::new(8, false)).unwrap();
        let kept = x.iter().filter(|&&v| v <= hi).count() as f64 / n as f64;
        assert!(kept >= 0.99, "threshold {hi} keeps {kept}");
        assert!(hi < *x.iter().max_by(|a, b| a.total_cmp(b)).unwrap(), "the far tail is still clipped");
    }

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
