//! The searches as first written (per-candidate O(bins) for `Mse`, per-cut O(cut) for `Entropy`),
//! kept verbatim to test the fast versions against: same chosen range on every distribution.

/// `Mse`, candidate by candidate over every occupied bin.
pub(crate) mod mse {
    use rayon::prelude::*;

    use crate::encoding::{compute_encoding, EncodingSpec};
    use crate::search::{qdq_sq_error, Bins};

    const SWEEP: usize = 200;
    const SWEEP_2D: usize = 100;

    pub(crate) fn clip_range(b: &Bins, spec: &EncodingSpec) -> (f32, f32) {
        let (min, max) = (b.min.min(0.0), b.max.max(0.0));
        let candidates: Vec<(f32, f32)> = if spec.symmetric && !spec.uses_unsigned_symmetric(b.min) {
            let a = max.max(-min);
            (1..=SWEEP).rev().map(|i| a * i as f32 / SWEEP as f32).map(|c| (-c, c)).collect()
        } else if min == 0.0 || max == 0.0 {
            (1..=SWEEP).rev().map(|i| i as f32 / SWEEP as f32).map(|f| (min * f, max * f)).collect()
        } else {
            let mut v = Vec::with_capacity(SWEEP_2D * SWEEP_2D);
            for i in (1..=SWEEP_2D).rev() {
                for j in (1..=SWEEP_2D).rev() {
                    v.push((min * i as f32 / SWEEP_2D as f32, max * j as f32 / SWEEP_2D as f32));
                }
            }
            v
        };
        let points = b.occupied();
        let costs: Vec<f64> = candidates
            .par_iter()
            .map(|&(lo, hi)| match compute_encoding(lo, hi, spec) {
                Ok(e) => points.iter().map(|&(m, c)| c * qdq_sq_error(m, &e)).sum(),
                Err(_) => f64::INFINITY,
            })
            .collect();
        let mut best = 0;
        for (i, &c) in costs.iter().enumerate() {
            if c < costs[best] {
                best = i;
            }
        }
        candidates[best]
    }
}

/// `Entropy`'s threshold search, cut by cut over the whole prefix.
pub(crate) mod entropy {
    const SMOOTH_EPS: f64 = 1e-4;

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
}

#[cfg(test)]
mod tests {
    use crate::encoding::EncodingSpec;
    use crate::observer::HistogramObserver;
    use crate::search::testdata::{gaussian, laplace, uniform};
    use crate::search::{self, Bins};

    fn hist(x: &[f32]) -> HistogramObserver {
        let mut h = HistogramObserver::new(2048);
        h.update(x).unwrap();
        h
    }

    /// The distributions both searches are compared on: (name, histogram).
    fn cases() -> Vec<(&'static str, HistogramObserver)> {
        let mut laplace_outliers = laplace(300_000, 11, 0.5);
        laplace_outliers.extend([40.0, -25.0, 60.0]);
        let relu: Vec<f32> = gaussian(300_000, 12).into_iter().map(|v| v.max(0.0)).collect();
        let negative: Vec<f32> = laplace(100_000, 13, 2.0).into_iter().map(|v| -v.abs()).collect();
        let mut two_point = vec![-1.0f32; 1000];
        two_point.extend(std::iter::repeat(3.0f32).take(1000));
        // shifted away from zero: all mass far from the grid origin
        let offset: Vec<f32> = gaussian(100_000, 14).into_iter().map(|v| 100.0 + v).collect();
        // a non-aligned merge leaves fractional counts (no exact prefix sums)
        let mut merged = hist(&gaussian(100_000, 15));
        let mut other = HistogramObserver::new(1000);
        other.update(&uniform(50_000, 16, -7.0, 2.5)).unwrap();
        merged.merge(&other).unwrap();
        vec![
            ("uniform", hist(&uniform(500_000, 1, -1.0, 3.0))),
            ("gaussian", hist(&gaussian(1_000_000, 2))),
            ("laplace+outliers", hist(&laplace_outliers)),
            ("relu", hist(&relu)),
            ("negative", hist(&negative)),
            ("all-equal", hist(&[0.7f32; 1000])),
            ("all-zero", hist(&[0.0f32; 1000])),
            ("two-point", hist(&two_point)),
            ("offset", hist(&offset)),
            ("merged", merged),
        ]
    }

    fn specs() -> Vec<EncodingSpec> {
        let mut v = Vec::new();
        for bw in [4, 8, 16] {
            v.push(EncodingSpec::symmetric(bw));
            v.push(EncodingSpec::asymmetric(bw));
            let mut strict = EncodingSpec::symmetric(bw);
            strict.strict_symmetric = true;
            v.push(strict);
            let mut unsigned = EncodingSpec::symmetric(bw);
            unsigned.unsigned_symmetric = true;
            v.push(unsigned);
        }
        v
    }

    fn bins(h: &HistogramObserver) -> Bins<'_> {
        let (lo, _) = h.range().unwrap();
        let (min, max) = h.observed_range().unwrap();
        Bins { lo, width: h.bin_width().unwrap(), counts: h.counts(), total: h.total(), min, max }
    }

    #[test]
    fn mse_chooses_what_the_per_bin_search_chooses() {
        for (name, h) in cases() {
            let b = bins(&h);
            for spec in specs() {
                let old = super::mse::clip_range(&b, &spec);
                let new = search::mse::clip_range(&b, &spec);
                assert_eq!(new, old, "{name} {spec:?}");
            }
        }
    }

    #[test]
    fn entropy_chooses_what_the_cut_by_cut_search_chooses() {
        for (name, h) in cases() {
            let b = bins(&h);
            for spec in specs() {
                let old = search::entropy::clip_range_with(&b, &spec, super::entropy::threshold);
                let new = search::entropy::clip_range(&b, &spec);
                assert_eq!(new, old, "{name} {spec:?}");
            }
        }
    }

    /// Synthetic |x| histograms straight into the threshold search: sparse, spiky, fractional.
    #[test]
    fn entropy_threshold_matches_on_raw_histograms() {
        let mut r = crate::search::testdata::Rng::new(3);
        for case in 0..40 {
            let mut h = vec![0.0f64; 2048];
            let occupied = [2048, 600, 130, 40][case % 4];
            for _ in 0..occupied * 3 {
                let i = ((r.next_f64() * r.next_f64()) * 2048.0) as usize;
                h[i] += if case % 3 == 0 { r.next_f64() * 5.0 } else { 1.0 + (r.next_f64() * 50.0).floor() };
            }
            for levels in [8, 128, 256, 1000] {
                let old = super::entropy::threshold(&h, 3.0, levels);
                let new = search::entropy::threshold(&h, 3.0, levels);
                assert_eq!(new, old, "case {case} levels {levels}");
            }
        }
    }
}
