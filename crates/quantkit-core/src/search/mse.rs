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
//!
//! Speed (same candidates, same choice as the per-bin search of `reference.rs`):
//! - Bins map to grid levels monotonically, so each candidate's cost is a sum over runs of bins
//!   sharing one level. Run ends are estimated from the grid and confirmed with the exact
//!   rounding of [`qdq_sq_error`] (one division per level instead of one per bin); inside a
//!   run each bin's term `c·(level − mid)²` is the very term the per-bin search adds.
//! - Pruning: the bins rounded to the two end levels (all clipped bins among them) cost at least
//!   what prefix sums of count, count·i and count·i² (bin index i, exact integers) give in O(1);
//!   a candidate whose bound exceeds the best cost so far is not evaluated.
//! - Only the summation order differs from the per-bin search, which moves a cost by at most
//!   2·bins·2⁻⁵³ relative (all terms are non-negative). Candidates within [`RERANK_TOL`] of the
//!   best are therefore re-costed exactly as the per-bin search does and the first minimum of
//!   those costs wins: the chosen range is the per-bin search's, ties included.
//! - Prefix sums are exact only for integral counts; after a non-aligned merge (fractional
//!   counts) pruning is off and the search is the run-wise sum alone (still no per-bin division).

use super::{qdq_sq_error, Bins};
use crate::encoding::{compute_encoding, Encoding, EncodingSpec};

const SWEEP: usize = 200;
const SWEEP_2D: usize = 100;
/// Relative margin for re-costing near-best candidates; summation order moves a cost by at
/// most 2·2048·2⁻⁵³ ≈ 5e-13.
const RERANK_TOL: f64 = 1e-9;

pub(crate) fn clip_range(b: &Bins, spec: &EncodingSpec) -> (f32, f32) {
    let candidates = candidates(b, spec);
    let bins = Sweep::of(b);
    let mut fast = vec![f64::INFINITY; candidates.len()];
    let mut best = f64::INFINITY;
    for (slot, &(lo, hi)) in fast.iter_mut().zip(&candidates) {
        let Ok(e) = compute_encoding(lo, hi, spec) else { continue };
        let g = Grid::of(&e);
        if bins.clip_lower_bound(&g) > best * (1.0 + RERANK_TOL) {
            continue;
        }
        let c = bins.cost(&g);
        *slot = c;
        if c < best {
            best = c;
        }
    }
    if best == f64::INFINITY {
        return candidates[0]; // every grid failed: the per-bin search keeps the first
    }
    let points = b.occupied();
    let limit = best * (1.0 + RERANK_TOL);
    let mut pick = (f64::INFINITY, 0);
    for (i, &f) in fast.iter().enumerate() {
        if f <= limit {
            let e = compute_encoding(candidates[i].0, candidates[i].1, spec).expect("costed above");
            let c: f64 = points.iter().map(|&(m, c)| c * qdq_sq_error(m, &e)).sum();
            if c < pick.0 {
                pick = (c, i);
            }
        }
    }
    candidates[pick.1]
}

/// The candidate ranges, widest first (see the module notes).
fn candidates(b: &Bins, spec: &EncodingSpec) -> Vec<(f32, f32)> {
    let (min, max) = (b.min.min(0.0), b.max.max(0.0));
    if spec.symmetric && !spec.uses_unsigned_symmetric(b.min) {
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
    }
}

/// An encoding's grid as [`qdq_sq_error`] rounds onto it; levels are `k·scale` for integers
/// k in [kmin, kmax].
struct Grid {
    s: f64,
    offset: f64,
    qmin: f64,
    qmax: f64,
    kmin: f64,
    kmax: f64,
}

impl Grid {
    fn of(e: &Encoding) -> Self {
        let (s, offset, qmin, qmax) = (e.scale as f64, e.offset as f64, e.qmin as f64, e.qmax as f64);
        Grid { s, offset, qmin, qmax, kmin: qmin + offset, kmax: qmax + offset }
    }

    /// The level index k of `x`, computed exactly as in [`qdq_sq_error`] (level = k·s).
    #[inline]
    fn level(&self, x: f64) -> f64 {
        (round_ties_even(x / self.s) - self.offset).clamp(self.qmin, self.qmax) + self.offset
    }
}

/// `f64::round_ties_even` without the libm call (x86-64 before SSE4.1 has no rounding
/// instruction): adding and removing 1.5·2⁵² rounds to an integer in the default
/// round-to-nearest-even mode; larger magnitudes are already integers. Equal to
/// `round_ties_even` except that it may return +0 for −0, which no cost can tell apart.
#[inline]
fn round_ties_even(x: f64) -> f64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5·2⁵²
    if x.abs() < 4_503_599_627_370_496.0 {
        (x + MAGIC) - MAGIC
    } else {
        x
    }
}

/// The histogram as the sweep reads it: midpoints, the occupied span, and prefix sums.
struct Sweep<'a> {
    counts: &'a [f64],
    lo: f64,
    width: f64,
    inv_width: f64,
    /// lo/w, and (|lo| + largest edge magnitude)/w: rounding scale in bin units.
    lo_bins: f64,
    mag_bins: f64,
    mid: Vec<f64>,
    /// First and last occupied bin.
    first: usize,
    last: usize,
    /// `next[i]`: first occupied bin ≥ i, or `bins` if none.
    next: Vec<usize>,
    /// Prefix sums over bins [0, i) of c, c·i, c·i², exact (None for fractional counts).
    moments: Option<Vec<[i128; 3]>>,
    /// Largest magnitude among the bin edges, for rounding bounds.
    edge_mag: f64,
}

impl<'a> Sweep<'a> {
    fn of(b: &Bins<'a>) -> Self {
        let n = b.counts.len();
        let mid: Vec<f64> = (0..n).map(|i| b.midpoint(i)).collect();
        let first = b.counts.iter().position(|&c| c > 0.0).expect("non-empty histogram");
        let last = b.counts.iter().rposition(|&c| c > 0.0).unwrap();
        let mut next = vec![n; n + 1];
        for i in (0..n).rev() {
            next[i] = if b.counts[i] > 0.0 { i } else { next[i + 1] };
        }
        let integral = b.counts.iter().all(|&c| c.fract() == 0.0 && c < 9.0e15);
        let moments = integral.then(|| {
            let mut acc = [0i128; 3];
            let mut m = Vec::with_capacity(n + 1);
            m.push(acc);
            for (i, &c) in b.counts.iter().enumerate() {
                let (c, i) = (c as i128, i as i128);
                acc = [acc[0] + c, acc[1] + c * i, acc[2] + c * i * i];
                m.push(acc);
            }
            m
        });
        let edge_mag = b.lo.abs().max((b.lo + b.width * n as f64).abs());
        let inv_width = 1.0 / b.width;
        Sweep {
            counts: b.counts,
            lo: b.lo,
            width: b.width,
            inv_width,
            lo_bins: b.lo * inv_width,
            mag_bins: (b.lo.abs() + edge_mag) * inv_width,
            mid,
            first,
            last,
            next,
            moments,
            edge_mag,
        }
    }

    /// Σ count·qdq error over all bins: the per-bin search's terms, added run by run.
    fn cost(&self, g: &Grid) -> f64 {
        let (k_lo, k_hi) = (g.level(self.mid[self.first]), g.level(self.mid[self.last]));
        if k_hi - k_lo > 2.0 * (self.last - self.first + 1) as f64 {
            return self.cost_sparse(g);
        }
        // Level by level: each run end depends on the previous one only through a clamp, so
        // the runs' arithmetic overlaps (no division → end → division chain); two partial sums.
        let (c, m) = (self.counts, &self.mid[..]);
        let mut acc = [0.0f64; 2];
        let (mut i, mut k) = (self.first, k_lo);
        while k <= k_hi {
            let end = if k < k_hi { self.run_end(g, k, i) } else { self.last + 1 };
            let level = k * g.s; // = (q + offset)·s in qdq_sq_error
            while i + 1 < end {
                let (d0, d1) = (level - m[i], level - m[i + 1]);
                acc[0] += c[i] * (d0 * d0);
                acc[1] += c[i + 1] * (d1 * d1);
                i += 2;
            }
            if i < end {
                let d = level - m[i];
                acc[i & 1] += c[i] * (d * d);
                i += 1;
            }
            k += 1.0;
        }
        acc[0] + acc[1]
    }

    /// [`Self::cost`] for grids with many more levels than bins: from occupied run to run.
    fn cost_sparse(&self, g: &Grid) -> f64 {
        let mut total = 0.0;
        let mut a = self.first;
        while a <= self.last {
            let k = g.level(self.mid[a]);
            let end = self.run_end(g, k, a + 1);
            let level = k * g.s; // = (q + offset)·s in qdq_sq_error
            total += self.run_cost(a, end, level);
            a = self.next[end];
        }
        total
    }

    /// Σ c·(level − mid)² over bins [a, end), four partial sums so that it vectorises.
    #[inline]
    fn run_cost(&self, a: usize, end: usize, level: f64) -> f64 {
        let (c, m) = (&self.counts[a..end], &self.mid[a..end]);
        let mut acc = [0.0f64; 4];
        let mut cc = c.chunks_exact(4);
        let mut mc = m.chunks_exact(4);
        for (c4, m4) in (&mut cc).zip(&mut mc) {
            for l in 0..4 {
                let d = level - m4[l];
                acc[l] += c4[l] * (d * d);
            }
        }
        for (&c, &m) in cc.remainder().iter().zip(mc.remainder()) {
            let d = level - m;
            acc[0] += c * (d * d);
        }
        (acc[0] + acc[1]) + (acc[2] + acc[3])
    }

    /// First bin ≥ `from` (and ≤ last + 1) whose level exceeds `k`. Levels grow with the bin
    /// index, so an estimate from the grid, confirmed by exact `level` calls near a rounding
    /// tie, finds it.
    #[inline]
    fn run_end(&self, g: &Grid, k: f64, from: usize) -> usize {
        let stop = self.last + 1;
        if k >= g.kmax {
            return stop;
        }
        // mid_i/s < k + ½  ⇔  i < x = ((k + ½)·s − lo)/w − ½. Unless x is within rounding error
        // of an integer, its ceiling is the answer; otherwise exact `level` calls decide.
        // (Signed conversions: x86-64 has no single instruction for f64 ↔ u64.)
        let level_bins = (k + 0.5) * g.s * self.inv_width;
        let x = (level_bins - self.lo_bins - 0.5).clamp(from as i64 as f64, stop as i64 as f64);
        let x = if x.is_nan() { from as i64 as f64 } else { x };
        let floor = x as i64 as f64; // 0 ≤ x: truncation is floor
        let ceil = if floor < x { floor + 1.0 } else { floor };
        let mut i = ceil as i64 as usize;
        let slack = 16.0 * f64::EPSILON * (level_bins.abs() + self.mag_bins + x + 1.0);
        if (ceil - x).min(x - (ceil - 1.0)) > slack {
            return i;
        }
        while i > from && g.level(self.mid[i - 1]) > k {
            i -= 1;
        }
        while i < stop && g.level(self.mid[i]) <= k {
            i += 1;
        }
        i
    }

    /// A lower bound, never above the per-bin search's computed cost, on the cost of the bins
    /// rounded to the two end levels; 0 without exact moments.
    fn clip_lower_bound(&self, g: &Grid) -> f64 {
        let Some(mom) = &self.moments else { return 0.0 };
        let low_end = self.run_end(g, g.kmin, self.first);
        let high_start = self.run_end(g, g.kmax - 1.0, low_end);
        let (mut sq, mut count, mut mag) = (0.0, 0.0, self.edge_mag);
        for (a, end, k) in [(self.first, low_end, g.kmin), (high_start, self.last + 1, g.kmax)] {
            if a < end {
                let level = k * g.s;
                let (s, c) = self.index_sq(mom, a, end, (level - self.lo) / self.width - 0.5);
                sq += s;
                count += c;
                mag = mag.max(level.abs());
            }
        }
        // The bound is in exact bin-index arithmetic; the per-bin terms use rounded midpoints
        // and levels, each within delta of it (a few ulps of the largest magnitude). In the
        // count-weighted 2-norm: ‖per-bin‖ ≥ ‖exact‖ − delta·√count; the per-bin sum of n
        // non-negative terms is at least (1 − n·2⁻⁵³) of their exact sum.
        let delta = 64.0 * f64::EPSILON * mag;
        let norm = (self.width * self.width * sq * (1.0 - 1e-12)).sqrt() - delta * count.sqrt();
        if norm <= 0.0 {
            0.0
        } else {
            norm * norm * (1.0 - 1e-12)
        }
    }

    /// Σ c·(t − i)² over bins [a, end) (t in bin-index units) and Σ c. Centred on the bin
    /// nearest t inside the run, where the expansion e²·Σc − 2e·Σc·j + Σc·j² (j = i − p, exact
    /// integers) loses at most a factor 9 to cancellation.
    fn index_sq(&self, mom: &[[i128; 3]], a: usize, end: usize, t: f64) -> (f64, f64) {
        let [c0, c1, c2] = [0, 1, 2].map(|r| mom[end][r] - mom[a][r]);
        // any integer pivot is exact; the nearest keeps the cancellation small
        let p = if t.is_nan() { a } else { ((t.max(0.0) + 0.5) as usize).clamp(a, end - 1) } as i128;
        let t1 = c1 - p * c0;
        let t2 = c2 - 2 * p * c1 + p * p * c0;
        let e = t - p as f64;
        let (c0, t1, t2) = (c0 as f64, t1 as f64, t2 as f64);
        ((e * e * c0 - 2.0 * e * t1 + t2).max(0.0), c0)
    }
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
