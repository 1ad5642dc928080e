//! `percentile` (AIMET `post_training_percentile`, aimet_torch v2 `PercentileEncodingAnalyzer`):
//! cut the range at the p-th and (100 − p)-th percentiles of the cumulative histogram.
//!
//! Difference from AIMET: AIMET takes the left edge of the bin in which the cumulative count
//! reaches the target (`searchsorted`), which is up to one bin width low; quantkit interpolates
//! linearly within that bin (values assumed uniform inside a bin). The result is clamped to the
//! observed [min, max]; p = 100 is exactly the observed range, as in AIMET.

use super::{Bins, SearchError};

pub(crate) fn check(p: f64) -> Result<(), SearchError> {
    if (50.0..=100.0).contains(&p) {
        Ok(())
    } else {
        Err(SearchError::InvalidPercentile(p))
    }
}

pub(crate) fn clip_range(b: &Bins, p: f64) -> (f32, f32) {
    if p >= 100.0 {
        return (b.min, b.max);
    }
    let total = b.total;
    let hi = quantile(b, total * p / 100.0);
    let lo = quantile(b, total * (1.0 - p / 100.0));
    let clamp = |v: f64| (v as f32).clamp(b.min, b.max);
    (clamp(lo), clamp(hi))
}

/// The value below which `target` of the mass lies, interpolating inside the crossing bin.
fn quantile(b: &Bins, target: f64) -> f64 {
    let mut before = 0.0;
    for (i, &c) in b.counts.iter().enumerate() {
        if c > 0.0 && before + c >= target {
            let frac = ((target - before) / c).clamp(0.0, 1.0);
            return b.lo + b.width * (i as f64 + frac);
        }
        before += c;
    }
    b.max as f64
}

#[cfg(test)]
mod tests {
    use crate::encoding::EncodingSpec;
    use crate::observer::HistogramObserver;
    use crate::search::testdata::uniform;
    use crate::search::{search_range, Scheme};

    #[test]
    fn uniform_percentiles() {
        let x = uniform(1_000_000, 99, 0.0, 1.0);
        let mut h = HistogramObserver::new(2048);
        h.update(&x).unwrap();
        let w = h.bin_width().unwrap() as f32;
        let spec = EncodingSpec::asymmetric(8);
        let mut sorted = x.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let order_stat = |q: f64| sorted[(q * (sorted.len() - 1) as f64).round() as usize];
        for p in [99.0, 90.0, 50.0] {
            let (lo, hi) = search_range(&h, &Scheme::Percentile(p), &spec).unwrap();
            // against the sample's own order statistics: within one bin
            assert!((hi - order_stat(p / 100.0)).abs() <= w, "p{p} = {hi}");
            assert!((lo - order_stat(1.0 - p / 100.0)).abs() <= w, "p{} = {lo}", 100.0 - p);
            // against the distribution: bin width + 4σ of the sample quantile
            let q = p / 100.0;
            let tol = w + 4.0 * (q * (1.0 - q) / 1e6).sqrt() as f32;
            assert!((hi - q as f32).abs() <= tol && (lo - (1.0 - q) as f32).abs() <= tol);
        }
        let (lo, hi) = search_range(&h, &Scheme::Percentile(100.0), &spec).unwrap();
        assert_eq!((lo, hi), h.observed_range().unwrap());
    }

    #[test]
    fn interpolates_inside_a_bin() {
        // 4 bins of width 1 on [0, 4], counts 1, 1, 1, 1 (values 0.5, 1.5, 2.5, 4)
        let mut h = HistogramObserver::new(4);
        h.update(&[0.0, 1.5, 2.5, 4.0]).unwrap();
        // p = 87.5 → target 3.5 of 4: half-way through the last bin → 3.5
        let (lo, hi) = search_range(&h, &Scheme::Percentile(87.5), &EncodingSpec::asymmetric(8)).unwrap();
        assert_eq!(hi, 3.5);
        // (100 − 87.5)% → target 0.5: half-way through the first bin → 0.5
        assert_eq!(lo, 0.5);
    }
}
