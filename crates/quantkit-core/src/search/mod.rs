//! Encoding search over a histogram: each scheme picks a clip range (min, max), which then goes
//! through [`compute_encoding`] like any observed range.
//!
//! | scheme | source | file |
//! |---|---|---|
//! | `MinMax` | AIMET `min_max` / `post_training_tf` | `min_max.rs` |
//! | `TfEnhanced` | AIMET `tf_enhanced` (aimet_torch v2 `SqnrEncodingAnalyzer`) | `tf_enhanced.rs` |
//! | `Percentile(p)` | AIMET `percentile` (interpolated within a bin) | `percentile.rs` |
//! | `Mse` | ORT / PyTorch practice: least expected squared error | `mse.rs` |
//! | `Entropy` | TensorRT KL-divergence calibration | `entropy.rs` |

pub mod entropy;
pub mod min_max;
pub mod mse;
pub mod percentile;
pub mod tf_enhanced;

#[cfg(test)]
mod reference;
#[cfg(test)]
pub(crate) mod testdata;

use std::fmt;

use crate::encoding::{compute_encoding, Encoding, EncodingError, EncodingSpec};
use crate::observer::HistogramObserver;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scheme {
    MinMax,
    TfEnhanced,
    /// p in [50, 100]; 100 is the observed range.
    Percentile(f64),
    Mse,
    Entropy,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchError {
    /// The histogram has seen no data.
    Empty,
    InvalidPercentile(f64),
    Encoding(EncodingError),
}

impl fmt::Display for SearchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SearchError::Empty => write!(f, "no calibration data was observed; cannot compute an encoding"),
            SearchError::InvalidPercentile(p) => {
                write!(f, "percentile must be between 50 and 100, got {p}")
            }
            SearchError::Encoding(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for SearchError {}

impl From<EncodingError> for SearchError {
    fn from(e: EncodingError) -> Self {
        SearchError::Encoding(e)
    }
}

/// The clip range a scheme picks, before the encoding rules apply.
pub fn search_range(hist: &HistogramObserver, scheme: &Scheme, spec: &EncodingSpec) -> Result<(f32, f32), SearchError> {
    spec.validate()?;
    if let Scheme::Percentile(p) = scheme {
        percentile::check(*p)?;
    }
    if hist.is_empty() {
        return Err(SearchError::Empty);
    }
    let bins = Bins::of(hist);
    Ok(match scheme {
        Scheme::MinMax => min_max::clip_range(&bins),
        Scheme::TfEnhanced => tf_enhanced::clip_range(&bins, spec),
        Scheme::Percentile(p) => percentile::clip_range(&bins, *p),
        Scheme::Mse => mse::clip_range(&bins, spec),
        Scheme::Entropy => entropy::clip_range(&bins, spec),
    })
}

/// Searches a clip range with `scheme` and turns it into an encoding.
pub fn search_encoding(hist: &HistogramObserver, scheme: &Scheme, spec: &EncodingSpec) -> Result<Encoding, SearchError> {
    let (lo, hi) = search_range(hist, scheme, spec)?;
    Ok(compute_encoding(lo, hi, spec)?)
}

/// A non-empty histogram, as the schemes read it.
pub(crate) struct Bins<'a> {
    pub lo: f64,
    pub width: f64,
    pub counts: &'a [f64],
    pub total: f64,
    /// True observed min and max.
    pub min: f32,
    pub max: f32,
}

impl<'a> Bins<'a> {
    fn of(h: &'a HistogramObserver) -> Self {
        let (lo, _) = h.range().expect("non-empty histogram");
        let (min, max) = h.observed_range().expect("non-empty histogram");
        Bins { lo, width: h.bin_width().unwrap(), counts: h.counts(), total: h.total(), min, max }
    }

    pub fn midpoint(&self, i: usize) -> f64 {
        self.lo + self.width * (i as f64 + 0.5)
    }

    /// (midpoint, count) of the bins that hold data.
    pub fn occupied(&self) -> Vec<(f64, f64)> {
        (0..self.counts.len()).filter(|&i| self.counts[i] > 0.0).map(|i| (self.midpoint(i), self.counts[i])).collect()
    }
}

/// Squared error of quantize-dequantize of `x` (ORT's way: divide, round half even, saturate).
#[inline]
pub(crate) fn qdq_sq_error(x: f64, e: &Encoding) -> f64 {
    let s = e.scale as f64;
    let q = ((x / s).round_ties_even() - e.offset as f64).clamp(e.qmin as f64, e.qmax as f64);
    let d = (q + e.offset as f64) * s - x;
    d * d
}

#[cfg(test)]
mod tests {
    use super::testdata::*;
    use super::*;

    fn hist(x: &[f32]) -> HistogramObserver {
        let mut h = HistogramObserver::new(2048);
        h.update(x).unwrap();
        h
    }

    #[test]
    fn errors() {
        let h = HistogramObserver::new(16);
        assert_eq!(search_encoding(&h, &Scheme::MinMax, &EncodingSpec::symmetric(8)), Err(SearchError::Empty));
        let h = hist(&[0.0, 1.0]);
        assert_eq!(
            search_encoding(&h, &Scheme::Percentile(40.0), &EncodingSpec::symmetric(8)),
            Err(SearchError::InvalidPercentile(40.0))
        );
        assert!(matches!(
            search_encoding(&h, &Scheme::Mse, &EncodingSpec::symmetric(1)),
            Err(SearchError::Encoding(EncodingError::BitwidthOutOfRange { bitwidth: 1 }))
        ));
    }

    /// Every searching scheme clips a Gaussian with one 100σ outlier well below the outlier…
    /// (With γ = 3 the SQNR optimum for 4e6 values is near 13σ symmetric, 33σ asymmetric:
    /// N·(span/255)²/12 against 3·(100 − max)².)
    #[test]
    fn heavy_tail_is_clipped() {
        let mut x = gaussian(4_000_000, 42);
        x.push(100.0);
        let h = hist(&x);
        for scheme in [Scheme::TfEnhanced, Scheme::Mse, Scheme::Entropy, Scheme::Percentile(99.99)] {
            for spec in [EncodingSpec::symmetric(8), EncodingSpec::asymmetric(8)] {
                let (lo, hi) = search_range(&h, &scheme, &spec).unwrap();
                assert!(hi < 40.0 && hi > 2.5, "{scheme:?} {spec:?}: max {hi}");
                assert!(lo > -40.0 && lo < -2.5, "{scheme:?} {spec:?}: min {lo}");
                if spec.symmetric && scheme != Scheme::TfEnhanced {
                    assert!(hi < 20.0, "{scheme:?} {spec:?}: max {hi}");
                }
                let e = search_encoding(&h, &scheme, &spec).unwrap();
                assert!(e.max < 40.0);
            }
        }
    }

    /// …and keeps (nearly) the whole range of a uniform distribution.
    #[test]
    fn uniform_keeps_full_range() {
        let x = uniform(1_000_000, 7, -1.0, 3.0);
        let h = hist(&x);
        for scheme in [Scheme::TfEnhanced, Scheme::Mse, Scheme::Entropy, Scheme::MinMax, Scheme::Percentile(100.0)] {
            for spec in [EncodingSpec::symmetric(8), EncodingSpec::asymmetric(8)] {
                let (lo, hi) = search_range(&h, &scheme, &spec).unwrap();
                assert!(hi > 0.93 * 3.0, "{scheme:?} {spec:?}: max {hi}");
                if !spec.symmetric {
                    assert!(lo < -0.9, "{scheme:?} {spec:?}: min {lo}");
                }
            }
        }
    }

    #[test]
    fn min_max_is_the_observed_range() {
        let mut h = HistogramObserver::new(64);
        h.update(&[-0.3, 0.7]).unwrap();
        h.update(&[2.1]).unwrap(); // grows the bins beyond the data
        assert_eq!(search_range(&h, &Scheme::MinMax, &EncodingSpec::asymmetric(8)).unwrap(), (-0.3, 2.1));
        let e = search_encoding(&h, &Scheme::MinMax, &EncodingSpec::asymmetric(8)).unwrap();
        assert_eq!(e, compute_encoding(-0.3, 2.1, &EncodingSpec::asymmetric(8)).unwrap());
    }
}

#[cfg(test)]
mod bench {
    use super::testdata::gaussian;
    use super::*;

    fn ms(mut f: impl FnMut()) -> f64 {
        f();
        let runs = 10;
        let t = std::time::Instant::now();
        for _ in 0..runs {
            f();
        }
        t.elapsed().as_secs_f64() * 1e3 / runs as f64
    }

    /// ms per search on a 2048-bin histogram of 1M Gaussian values; `Mse` and `Entropy` also
    /// as first written (`reference.rs`). Single-threaded figures: `RAYON_NUM_THREADS=1`.
    /// `cargo test --release -p quantkit-core search::bench -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn ms_per_search() {
        let mut h = HistogramObserver::new(2048);
        h.update(&gaussian(1_000_000, 1)).unwrap();
        let b = Bins::of(&h);
        for spec in [EncodingSpec::symmetric(8), EncodingSpec::asymmetric(8)] {
            let kind = if spec.symmetric { "symmetric" } else { "asymmetric" };
            for scheme in [Scheme::MinMax, Scheme::TfEnhanced, Scheme::Percentile(99.9), Scheme::Mse, Scheme::Entropy] {
                let t = ms(|| {
                    std::hint::black_box(search_range(&h, &scheme, &spec).unwrap());
                });
                println!("{kind:>10} {scheme:?}: {t:.3} ms");
            }
            let t = ms(|| {
                std::hint::black_box(reference::mse::clip_range(&b, &spec));
            });
            println!("{kind:>10} Mse (reference): {t:.3} ms");
            let t = ms(|| {
                std::hint::black_box(entropy::clip_range_with(&b, &spec, reference::entropy::threshold));
            });
            println!("{kind:>10} Entropy (reference): {t:.3} ms");
        }
    }
}
