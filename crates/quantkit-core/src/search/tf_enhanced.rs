//! `tf_enhanced` (AIMET `post_training_tf_enhanced`): the SQNR search of aimet_torch v2
//! `encoding_analyzer.py` `SqnrEncodingAnalyzer` (read in qualcomm/aimet, 2025).
//!
//! - Observed range with zero included, and `max ≥ min + minimum_scale·num_steps`.
//! - Asymmetric: `max_delta = (max − min)/num_steps`; 17 deltas `max_delta·i/16`, i = 1..=17;
//!   offsets `round(−num_steps + k·step)` with `step = num_steps/(n − 2)`, n = min(num_steps + 2,
//!   21) (20 values for 8 bit, torch.arange semantics), plus the observed offset
//!   `round(min/max_delta)`. Each (delta, offset) is clamped to the grid-snapped observed range
//!   and recomputed (`_clamp_delta_offset_values`); no candidate is dropped.
//! - Symmetric: 101 deltas `max(max_delta·i/100, minimum_scale)`, `max_delta =
//!   2·max(|min|, |max|)/num_steps`, offset fixed at `(−num_steps) // 2` (−128 for 8 bit; −127
//!   strict, whose grid has num_steps = 2^b − 2).
//! - Unsigned symmetric with min ≥ 0 (not in aimet_torch's analyzer; libpymo
//!   `TfEnhancedEncodingAnalyzer::_pickTestCandidatesSymmetric`): `max_delta = max/num_steps`,
//!   offset 0, the same 101 deltas.
//! - Noise estimator (aimet_torch `_estimate_clip_and_quant_noise`): NOT delta²/12. Every bin is
//!   represented by its midpoint m, quantize-dequantized exactly:
//!   `q = round(m/δ − o)`, clipped if q ∉ [0, num_steps], `x̂ = (clamp(q) + o)·δ`, cost
//!   `Σ count·(x̂ − m)²`, with clipped bins' terms multiplied by γ = 3. The first candidate with
//!   the lowest cost wins (torch.min). The quantize-dequantize is in f32 as in torch; the sum is
//!   accumulated in f64.
//! - Result: `min = o·δ`, `max = min + num_steps·δ`.
//!
//! aimet-onnx runs libpymo's C++ version instead, which differs: a 512-bucket PDF, the range
//! taken from the left edges of the first/last non-empty buckets, 21 offsets `−num_steps +
//! num_steps/20·i` truncated, candidates that would widen both ends skipped, and saturation cost
//! measured to the middle of the bucket holding the clip point. Parity with aimet-onnx therefore
//! comes from exported numbers (DECISIONS.md), not from this file.

use rayon::prelude::*;

use super::Bins;
use crate::encoding::{minimum_scale, EncodingSpec};

/// Weight of clipping noise against quantization noise (AIMET's `gamma=3.0`).
pub const GAMMA: f32 = 3.0;
const ASYM_DELTAS: usize = 17;
const SYM_DELTAS: usize = 101;
const OFFSETS: u64 = 21;

pub(crate) fn clip_range(b: &Bins, spec: &EncodingSpec) -> (f32, f32) {
    let num_steps_u = spec.num_steps(b.min);
    let ns = num_steps_u as f32;
    let ms = minimum_scale(num_steps_u);
    let min_v = b.min.min(0.0);
    let mut max_v = b.max.max(0.0);
    max_v = max_v.max(min_v + ms * ns);

    let candidates: Vec<(f32, f32)> = if spec.symmetric {
        let (max_delta, offset) = if spec.uses_unsigned_symmetric(b.min) {
            (max_v / ns, 0.0)
        } else {
            (2.0 * max_v.max(-min_v) / ns, (-(num_steps_u as i64)).div_euclid(2) as f32)
        };
        (1..=SYM_DELTAS)
            .map(|i| ((max_delta * i as f32 / (SYM_DELTAS - 1) as f32).max(ms), offset))
            .collect()
    } else {
        asymmetric_candidates(min_v, max_v, num_steps_u, ms)
    };

    let points: Vec<(f32, f32)> = b.occupied().into_iter().map(|(m, c)| (m as f32, c as f32)).collect();
    let costs: Vec<f64> = candidates.par_iter().map(|&(d, o)| noise(&points, d, o, ns)).collect();
    let mut best = 0;
    for (i, &c) in costs.iter().enumerate() {
        if c < costs[best] {
            best = i;
        }
    }
    let (delta, offset) = candidates[best];
    let min = offset * delta;
    (min, min + ns * delta)
}

fn asymmetric_candidates(min_v: f32, max_v: f32, num_steps: u64, ms: f32) -> Vec<(f32, f32)> {
    let ns = num_steps as f32;
    let max_delta = (max_v - min_v) / ns;
    let observed_offset = (min_v / max_delta).round_ties_even();
    let observed_min = max_delta * observed_offset;
    let observed_max = observed_min + max_delta * ns;

    // torch.arange(-num_steps, step, step) in float32: length ceil((end − start)/step) in f64,
    // values start + k·step in f64 rounded to f32, then torch.round.
    let n_off = (num_steps + 2).min(OFFSETS);
    let step = num_steps as f64 / (n_off - 2) as f64;
    let len = ((step + num_steps as f64) / step).ceil() as usize;
    let mut offsets: Vec<f32> =
        (0..len).map(|k| ((-(num_steps as f64) + k as f64 * step) as f32).round_ties_even()).collect();
    offsets.push(observed_offset);

    let mut out = Vec::with_capacity(ASYM_DELTAS * offsets.len());
    for i in 1..=ASYM_DELTAS {
        let d = max_delta * i as f32 / (ASYM_DELTAS - 1) as f32;
        for &o in &offsets {
            let test_min = (d * o).max(observed_min);
            let test_max = (d * o + d * ns).min(observed_max);
            let nd = ((test_max - test_min) / ns).max(ms);
            out.push((nd, (test_min / nd).round_ties_even()));
        }
    }
    out
}

/// Quantization + γ·clipping noise of the grid (delta, offset) over bin midpoints.
fn noise(points: &[(f32, f32)], delta: f32, offset: f32, ns: f32) -> f64 {
    let mut total = 0.0f64;
    for &(m, c) in points {
        let q = (m / delta - offset).round_ties_even();
        let clipped = !(0.0..=ns).contains(&q);
        let x = (q.clamp(0.0, ns) + offset) * delta;
        let mut e = (x - m) * (x - m) * c;
        if clipped {
            e *= GAMMA;
        }
        total += e as f64;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observer::HistogramObserver;
    use crate::search::{search_encoding, Scheme};

    #[test]
    fn eight_bit_offset_candidates_match_torch_arange() {
        // n = 21: 20 evenly spaced offsets −255 … 0 (step 255/19) plus the observed one.
        let c = asymmetric_candidates(-1.0, 3.0, 255, f32::EPSILON);
        assert_eq!(c.len(), 17 * 21);
        // With the largest delta clamping to the observed range, the last candidate is the
        // observed grid itself: delta 4/255, offset round(−1/(4/255)) = round(−63.75) = −64.
        let (d, o) = c[c.len() - 1];
        assert!((d - 4.0 / 255.0).abs() < 1e-7);
        assert_eq!(o, -64.0);
        // the first offset candidate at the largest delta, −255: [−255·δ, 0] with δ = 17/16·4/255
        // is [−4.25, 0], clamped to [−1.0039, 0] → δ' = 1.0039/255, offset round(−255) = −255
        let (d, o) = c[16 * 21];
        assert_eq!(o, -255.0);
        assert!((d - (64.0 * 4.0 / 255.0) / 255.0).abs() < 1e-8);
        // 2-bit: n = min(5, 21) = 5 → offsets −3, −2, −1, 0 and the observed one.
        assert_eq!(asymmetric_candidates(-1.0, 1.0, 3, f32::EPSILON).len(), 17 * 5);
    }

    #[test]
    fn noise_is_exact_qdq_error_with_gamma_on_clipped_bins() {
        // delta 1, offset −2, 3 steps: grid {−2, −1, 0, 1}
        let pts = [(0.25f32, 4.0f32), (3.0, 1.0), (-2.0, 2.0)];
        // 0.25 → 0 (err 0.25² · 4 = 0.25); 3 → clipped to 1 (err 4 · γ = 12); −2 exact
        assert_eq!(noise(&pts, 1.0, -2.0, 3.0), 0.25 + 12.0);
    }

    #[test]
    fn symmetric_delta_is_one_of_the_candidates() {
        let mut h = HistogramObserver::new(2048);
        h.update(&crate::search::testdata::uniform(100_000, 3, -1.0, 1.0)).unwrap();
        let e = search_encoding(&h, &Scheme::TfEnhanced, &EncodingSpec::symmetric(8)).unwrap();
        // candidates are max_delta·i/100 with max_delta = 2·max|x|/255
        let (lo, hi) = h.observed_range().unwrap();
        let max_delta = 2.0 * hi.max(-lo) / 255.0;
        let i = (e.scale / max_delta * 100.0).round();
        assert!((e.scale - max_delta * i / 100.0).abs() <= 2e-6 * e.scale, "{} {}", e.scale, i);
        assert!(i >= 95.0, "uniform data keeps nearly the full range, i = {i}");
        assert_eq!(e.aimet_file_offset(), -128);
    }
}
