//! `Mse` (not an AIMET scheme; ONNX Runtime / PyTorch practice): the clip range with the least
//! expected squared error, quantization and clipping together, each bin represented by its
//! midpoint and quantize-dequantized on the exact grid `compute_encoding` would produce.
//!
//! Candidates:
//! - signed symmetric: ±c, c = a·i/200 for i = 1..=200, a = max(|min|, |max|);
//! - one-sided data (min ≥ 0 or max ≤ 0, any grid that then starts at zero): [0, max·i/200] or
//!   [min·i/200, 0];
//! - asymmetric two-sided: [min·i/100, max·j/100] for i, j = 1..=100 (10 000 pairs).
//! Ties go to the wider range (the sweep runs from wide to narrow and keeps the first minimum).

use rayon::prelude::*;

use super::{qdq_sq_error, Bins};
use crate::encoding::{compute_encoding, EncodingSpec};

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

#[cfg(test)]
mod tests {
    use crate::encoding::EncodingSpec;
    use crate::observer::HistogramObserver;
    use crate::search::{search_range, Scheme};

    #[test]
    fn two_point_distribution_keeps_both_points() {
        // Mass at −1 and 3 only: any clip below either point costs more than the grid's rounding.
        let mut x = vec![-1.0f32; 1000];
        x.extend(std::iter::repeat(3.0f32).take(1000));
        let mut h = HistogramObserver::new(2048);
        h.update(&x).unwrap();
        let (lo, hi) = search_range(&h, &Scheme::Mse, &EncodingSpec::asymmetric(8)).unwrap();
        assert!(lo <= -0.99 && hi >= 2.99, "{lo} {hi}");
    }

    #[test]
    fn one_sided_relu_like_data() {
        let mut x = crate::search::testdata::uniform(200_000, 5, 0.0, 1.0);
        x.push(50.0);
        let mut h = HistogramObserver::new(2048);
        h.update(&x).unwrap();
        let mut spec = EncodingSpec::symmetric(8);
        spec.unsigned_symmetric = true;
        let (lo, hi) = search_range(&h, &Scheme::Mse, &spec).unwrap();
        assert_eq!(lo, 0.0);
        // closed form: minimise N·(c/255)²/12 + (50 − c)² with N = 2e5 →
        // c = 100/(2 + N/(6·255²)) = 39.85
        let c = 100.0 / (2.0 + 2e5 / (6.0 * 65025.0));
        assert!((hi - c).abs() < 1.5, "{hi} vs {c}");
    }
}
