//! A histogram whose range grows with the data while its memory stays at `bins` counts.
//!
//! First update: the range is the data's [min, max], split into `bins` equal bins; a zero-width
//! range becomes [min − 0.5, max + 0.5] (AIMET `_HistogramObserver._create_bin_edges`, which
//! follows `torch.histc`). AIMET's default is 2048 bins ([`DEFAULT_BINS`]).
//!
//! Growth rule (quantkit's, not AIMET's). When new data fall outside the bins, AIMET re-bins the
//! old counts over the new range, splitting each old bin between the new bins it overlaps. Here
//! the bins stay on the old lattice instead: the new left edge is an old edge (`lo + t·w`, `t`
//! any integer, chosen as far right as the data and the occupied bins allow) and the new width is
//! a whole multiple `k·w`, with `k ≥ 1` the smallest that covers everything. Every old bin then
//! lies inside exactly one new bin and moves there whole, as in PyTorch's `HistogramObserver`
//! (which merges `upsample_rate` bins). Consequences:
//! - No error from growth: after any sequence of updates the counts equal those of all the data
//!   binned directly on the final lattice (up to values within rounding of an edge).
//! - Resolution: `k` is minimal, so the final width is below `2·(span + 2w)/bins` where `span`
//!   is the data's range and `w` the previous width: at worst about twice as coarse as a fresh
//!   histogram over the final range. The lattice tracks the data (empty bins are dropped when it
//!   shifts), so this does not compound over many updates.
//!
//! Merge: exact (counts added bin by bin) whenever the other histogram's bins lie inside ours,
//! e.g. both built with [`HistogramObserver::with_range`] on the same range, or one lattice a
//! coarsening of the other. Otherwise each of the other's bins is spread over the bins it
//! overlaps in proportion to the overlap (uniform within a bin). Bound: mass moves at most
//! max(own width, other width), and at any bin edge the cumulative count differs from exact
//! binning by at most the count of the one other-bin straddling that edge.
//!
//! The true observed min and max are kept beside the bins (schemes such as min_max need them).

use rayon::prelude::*;

use super::minmax::min_max_finite;
use super::{ObserverError, PARALLEL_CHUNK, PARALLEL_THRESHOLD};

/// AIMET's default number of bins (`num_bins=2048` in its histogram analyzers).
pub const DEFAULT_BINS: usize = 2048;

/// Relative tolerance, in bins, for treating a position as lying on a bin edge during merges.
const EDGE_SNAP: f64 = 1e-9;

#[derive(Debug, Clone, PartialEq)]
pub struct HistogramObserver {
    bins: usize,
    /// Left edge and bin width; `None` until the first data (or `with_range`).
    lattice: Option<(f64, f64)>,
    counts: Vec<f64>,
    total: f64,
    /// True min and max of the data seen.
    observed: Option<(f32, f32)>,
}

impl Default for HistogramObserver {
    fn default() -> Self {
        Self::new(DEFAULT_BINS)
    }
}

impl HistogramObserver {
    /// An empty histogram with `bins` bins. Panics if `bins` is 0 (see [`Self::try_new`]).
    pub fn new(bins: usize) -> Self {
        Self::try_new(bins).expect("HistogramObserver::new: bins must be at least 1")
    }

    pub fn try_new(bins: usize) -> Result<Self, ObserverError> {
        if bins == 0 {
            return Err(ObserverError::ZeroBins);
        }
        Ok(HistogramObserver { bins, lattice: None, counts: vec![0.0; bins], total: 0.0, observed: None })
    }

    /// A histogram whose bins start as [lo, hi] split evenly; they grow only if data exceed it.
    /// Two histograms made with the same arguments merge exactly.
    pub fn with_range(bins: usize, lo: f32, hi: f32) -> Result<Self, ObserverError> {
        let mut h = Self::try_new(bins)?;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(ObserverError::InvalidRange { lo, hi });
        }
        h.lattice = Some((lo as f64, (hi as f64 - lo as f64) / bins as f64));
        Ok(h)
    }

    pub fn bins(&self) -> usize {
        self.bins
    }

    pub fn is_empty(&self) -> bool {
        self.observed.is_none()
    }

    /// Counts per bin (fractional only after a non-aligned merge).
    pub fn counts(&self) -> &[f64] {
        &self.counts
    }

    /// Total count (number of values seen, merged ones included).
    pub fn total(&self) -> f64 {
        self.total
    }

    /// The bins' range [first edge, last edge]; `None` before any data.
    pub fn range(&self) -> Option<(f64, f64)> {
        self.lattice.map(|(lo, w)| (lo, lo + w * self.bins as f64))
    }

    /// True min and max of the data seen (inside [`Self::range`]); `None` before any data.
    pub fn observed_range(&self) -> Option<(f32, f32)> {
        self.observed
    }

    /// True minimum of the data seen; `+inf` before any data.
    pub fn observed_min(&self) -> f32 {
        self.observed.map_or(f32::INFINITY, |r| r.0)
    }

    /// True maximum of the data seen; `−inf` before any data.
    pub fn observed_max(&self) -> f32 {
        self.observed.map_or(f32::NEG_INFINITY, |r| r.1)
    }

    pub fn bin_width(&self) -> Option<f64> {
        self.lattice.map(|(_, w)| w)
    }

    /// `bins + 1` edges; empty before any data.
    pub fn bin_edges(&self) -> Vec<f64> {
        match self.lattice {
            None => Vec::new(),
            Some((lo, w)) => (0..=self.bins).map(|i| lo + w * i as f64).collect(),
        }
    }

    /// Midpoint of bin `i` (panics before any data).
    pub fn midpoint(&self, i: usize) -> f64 {
        let (lo, w) = self.lattice.expect("histogram has no bins yet");
        lo + w * (i as f64 + 0.5)
    }

    /// Heap and inline bytes held; depends only on `bins`.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.counts.capacity() * std::mem::size_of::<f64>()
    }

    /// Adds `x` to the histogram. Nothing changes if `x` has a non-finite value.
    pub fn update(&mut self, x: &[f32]) -> Result<(), ObserverError> {
        if x.is_empty() {
            return Ok(());
        }
        let (dmin, dmax) = min_max_finite(x)?;
        match self.lattice {
            None => {
                let (lo, hi) = if dmin == dmax {
                    (dmin as f64 - 0.5, dmax as f64 + 0.5)
                } else {
                    (dmin as f64, dmax as f64)
                };
                self.lattice = Some((lo, (hi - lo) / self.bins as f64));
            }
            Some(_) => self.cover(dmin as f64, dmax as f64),
        }
        let (lo, w) = self.lattice.unwrap();
        let add = bin_counts(x, lo, 1.0 / w, self.bins);
        for (c, a) in self.counts.iter_mut().zip(add) {
            *c += a as f64;
        }
        self.total += x.len() as f64;
        self.observe(dmin, dmax);
        Ok(())
    }

    fn observe(&mut self, lo: f32, hi: f32) {
        self.observed = Some(match self.observed {
            None => (lo, hi),
            Some((a, b)) => (a.min(lo), b.max(hi)),
        });
    }

    /// Grows the lattice (see the module notes) so that [dmin, dmax] and all current mass fit.
    fn cover(&mut self, dmin: f64, dmax: f64) {
        let (lo, w) = self.lattice.expect("cover needs a lattice");
        let n = self.bins as f64;
        if dmin >= lo && dmax <= lo + w * n {
            return;
        }
        // Occupied old bins [j0, j1]; an empty fixed-range histogram keeps its whole range.
        let first = self.counts.iter().position(|&c| c != 0.0);
        let last = self.counts.iter().rposition(|&c| c != 0.0);
        let (j0, j1) = match (first, last) {
            (Some(a), Some(b)) => (a as f64, b as f64),
            _ => (0.0, n - 1.0),
        };
        // New left edge lo + t·w: at or left of the data and of the first occupied bin.
        let mut t = ((dmin - lo) / w).floor().min(j0);
        while lo + t * w > dmin {
            t -= 1.0;
        }
        let new_lo = lo + t * w;
        let need_hi = dmax.max(lo + (j1 + 1.0) * w);
        let mut k = ((need_hi - new_lo) / (n * w)).ceil().max(1.0);
        while new_lo + k * w * n < need_hi {
            k += 1.0;
        }
        let mut moved = vec![0.0; self.bins];
        for (j, &c) in self.counts.iter().enumerate() {
            if c != 0.0 {
                // (j − t) ∈ [0, k·bins) by construction.
                let idx = ((j as f64 - t) / k).floor() as usize;
                moved[idx.min(self.bins - 1)] += c;
            }
        }
        self.counts = moved;
        self.lattice = Some((new_lo, k * w));
    }

    /// Adds another histogram's counts. Exact when the other's bins nest in ours after growth.
    /// Any two histograms can be merged (bin counts may differ); the `Result` is for symmetry
    /// with [`super::MinMaxObserver::merge`] and currently never holds an error.
    pub fn merge(&mut self, other: &Self) -> Result<(), ObserverError> {
        self.merge_counts(other);
        Ok(())
    }

    fn merge_counts(&mut self, other: &Self) {
        let Some((omin, omax)) = other.observed else { return };
        let (olo, ow) = other.lattice.expect("a histogram with data has bins");
        if self.lattice.is_none() {
            if other.bins == self.bins {
                *self = other.clone();
                return;
            }
            // Different bin counts: start from the other's observed range, then spread.
            let (lo, hi) = if omin == omax {
                (omin as f64 - 0.5, omax as f64 + 0.5)
            } else {
                (omin as f64, omax as f64)
            };
            self.lattice = Some((lo, (hi - lo) / self.bins as f64));
        }
        let (slo0, sw0) = self.lattice.unwrap();
        if (slo0, sw0) == (olo, ow) && self.bins == other.bins {
            for (c, o) in self.counts.iter_mut().zip(&other.counts) {
                *c += o;
            }
        } else {
            self.cover(omin as f64, omax as f64);
            let (lo, w) = self.lattice.unwrap();
            let last = self.bins - 1;
            for (j, &c) in other.counts.iter().enumerate() {
                if c == 0.0 {
                    continue;
                }
                // Position of the other's bin in our bin units, snapped to edges within rounding.
                let snap = |p: f64| {
                    let r = p.round();
                    if (p - r).abs() <= EDGE_SNAP * r.abs().max(1.0) { r } else { p }
                };
                let pa = snap((olo + ow * j as f64 - lo) / w).clamp(0.0, self.bins as f64);
                let pb = snap((olo + ow * (j + 1) as f64 - lo) / w).clamp(0.0, self.bins as f64);
                let ia = (pa.floor() as usize).min(last);
                let ib = ((pb.ceil() as usize).max(ia + 1)).min(self.bins);
                if ib - ia == 1 || pb <= pa {
                    self.counts[ia] += c;
                    continue;
                }
                let span = pb - pa;
                for i in ia..ib {
                    let overlap = (pb.min((i + 1) as f64) - pa.max(i as f64)).max(0.0);
                    self.counts[i] += c * overlap / span;
                }
            }
        }
        self.total += other.total;
        self.observe(omin, omax);
    }
}

/// Counts per bin: index = ((x − lo)·inv_width) truncated, clamped to the last bin.
fn bin_counts(x: &[f32], lo: f64, inv_w: f64, bins: usize) -> Vec<u64> {
    // Two passes per block of 256 values: bin indices first (a loop the compiler vectorises:
    // clamp in f64, then an unchecked conversion), then the increments, spread over two
    // sub-histograms so that runs of equal indices do not serialise on one counter (two: with
    // 2048 bins they fill 16 KiB and stay in L1).
    let serial = |x: &[f32], out: &mut [u64]| {
        let last = (bins - 1) as f64;
        let mut sub = vec![0u32; 2 * bins];
        let mut idx = [0u32; 256];
        let mut pending = 0usize; // increments since the sub-histograms were last flushed
        for block in x.chunks(256) {
            for (i, &v) in idx.iter_mut().zip(block) {
                let f = (v as f64 - lo) * inv_w;
                // Clamped first (NaN cannot occur: update() rejects non-finite data), so the
                // conversion is in range; values a rounding below `lo` land in bin 0.
                let f = if f > 0.0 { f } else { 0.0 };
                let f = if f < last { f } else { last };
                // SAFETY: 0 ≤ f ≤ bins − 1 < 2^31. (i32, not u32: x86 converts f64 to i32 in
                // SIMD registers, but has no f64 → u32 conversion.)
                *i = unsafe { f.to_int_unchecked::<i32>() } as u32;
            }
            let n = block.len();
            let mut k = 0;
            while k + 2 <= n {
                sub[idx[k] as usize] += 1;
                sub[bins + idx[k + 1] as usize] += 1;
                k += 2;
            }
            for &i in &idx[k..n] {
                sub[i as usize] += 1;
            }
            pending += n;
            // u32 sub-counts: flush well before any could overflow.
            if pending >= 1 << 30 {
                flush(&mut sub, out, bins);
                pending = 0;
            }
        }
        flush(&mut sub, out, bins);
    };
    fn flush(sub: &mut [u32], out: &mut [u64], bins: usize) {
        for (b, o) in out.iter_mut().enumerate() {
            *o += sub[b] as u64 + sub[bins + b] as u64;
        }
        sub.iter_mut().for_each(|c| *c = 0);
    }
    if x.len() < PARALLEL_THRESHOLD {
        let mut out = vec![0u64; bins];
        serial(x, &mut out);
        return out;
    }
    x.par_chunks(PARALLEL_CHUNK)
        .fold(
            || vec![0u64; bins],
            |mut acc, c| {
                serial(c, &mut acc);
                acc
            },
        )
        .reduce(
            || vec![0u64; bins],
            |mut a, b| {
                for (x, y) in a.iter_mut().zip(b) {
                    *x += y;
                }
                a
            },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uniform(n: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    #[test]
    fn first_update_sets_range() {
        let mut h = HistogramObserver::new(4);
        h.update(&[0.0, 1.0, 2.0, 3.0, 4.0, 0.5]).unwrap();
        assert_eq!(h.range(), Some((0.0, 4.0)));
        assert_eq!(h.bin_edges(), vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        // 4.0 lands in the last bin (clamped), like torch.histc
        assert_eq!(h.counts(), &[2.0, 1.0, 1.0, 2.0]);
        assert_eq!(h.total(), 6.0);
        assert_eq!(h.observed_range(), Some((0.0, 4.0)));
    }

    #[test]
    fn zero_width_range_is_guarded() {
        let mut h = HistogramObserver::new(10);
        h.update(&[2.0; 5]).unwrap();
        assert_eq!(h.range(), Some((1.5, 2.5)));
        assert_eq!(h.counts()[5], 5.0);
        assert_eq!(h.observed_range(), Some((2.0, 2.0)));
    }

    #[test]
    fn non_finite_rejected_without_change() {
        let mut h = HistogramObserver::new(8);
        h.update(&[0.0, 1.0]).unwrap();
        let before = h.clone();
        assert!(matches!(h.update(&[0.5, f32::NAN]), Err(ObserverError::NonFinite { index: 1, .. })));
        assert_eq!(h, before);
        assert!(HistogramObserver::try_new(0).is_err());
        assert!(HistogramObserver::with_range(8, 1.0, 1.0).is_err());
    }

    #[test]
    fn growth_keeps_edges_aligned_and_mass_exact() {
        // [0, 8) with 8 bins of width 1, then data up to 20: width 3 (k = 3), lo stays 0.
        let mut h = HistogramObserver::new(8);
        h.update(&[0.0, 0.5, 1.5, 2.5, 3.5, 7.9, 8.0]).unwrap();
        h.update(&[20.0]).unwrap();
        assert_eq!(h.range(), Some((0.0, 24.0)));
        // old bins 0,1,2 → new bin 0; 3 → 1; 7 (7.9 and the clamped 8.0) → 2; 20 → 6
        assert_eq!(h.counts(), &[4.0, 1.0, 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]);
        // growing to the left shifts by whole old bins
        h.update(&[-4.0]).unwrap();
        let (lo, hi) = h.range().unwrap();
        let w = h.bin_width().unwrap();
        assert_eq!(w % 3.0, 0.0);
        assert!(lo <= -4.0 && hi >= 20.0 && (lo / 3.0).fract() == 0.0);
        assert_eq!(h.total(), 9.0);
        assert_eq!(h.counts().iter().sum::<f64>(), 9.0);
    }

    #[test]
    fn growth_equals_direct_binning_on_final_lattice() {
        let a = uniform(50_000, 1, -1.0, 1.0);
        let b = uniform(50_000, 2, -3.0, 5.0);
        let mut h = HistogramObserver::new(256);
        h.update(&a).unwrap();
        h.update(&b).unwrap();
        let (lo, hi) = h.range().unwrap();
        let mut direct = HistogramObserver::with_range(256, lo as f32, hi as f32).unwrap();
        // with_range goes through f32; only use it if the lattice is representable exactly
        if direct.range() == Some((lo, hi)) {
            direct.update(&a).unwrap();
            direct.update(&b).unwrap();
            assert_eq!(direct.counts(), h.counts());
        }
        // Independently: re-bin all data on the final lattice by hand.
        let w = h.bin_width().unwrap();
        let mut expect = vec![0.0; 256];
        for &v in a.iter().chain(&b) {
            let i = (((v as f64 - lo) * (1.0 / w)) as usize).min(255);
            expect[i] += 1.0;
        }
        // values within rounding of an edge may differ; allow a handful
        let diff: f64 = expect.iter().zip(h.counts()).map(|(x, y)| (x - y).abs()).sum();
        assert!(diff <= 4.0, "diff {diff}");
        // resolution bound: width < 2·(span + 2·w_old)/bins
        let w_old = 2.0 / 256.0;
        assert!(w < 2.0 * (8.0 + 2.0 * w_old) / 256.0);
    }

    #[test]
    fn fixed_range_merge_is_exact() {
        let a = uniform(100_000, 11, -2.0, 3.0);
        let b = uniform(70_000, 12, -2.0, 3.0);
        let mut ha = HistogramObserver::with_range(512, -2.0, 3.0).unwrap();
        let mut hb = HistogramObserver::with_range(512, -2.0, 3.0).unwrap();
        let mut all = HistogramObserver::with_range(512, -2.0, 3.0).unwrap();
        ha.update(&a).unwrap();
        hb.update(&b).unwrap();
        all.update(&a).unwrap();
        all.update(&b).unwrap();
        ha.merge(&hb).unwrap();
        assert_eq!(ha.counts(), all.counts());
        assert_eq!(ha.total(), 170_000.0);
        assert_eq!(ha.observed_range(), all.observed_range());
        // merging into an empty histogram copies
        let mut e = HistogramObserver::new(512);
        e.merge(&all).unwrap();
        assert_eq!(e, all);
    }

    #[test]
    fn coarsened_lattice_merges_exactly() {
        // other: width 1 on [0, 8); self grows to width 2 on [0, 16): bins nest, no splitting.
        let mut s = HistogramObserver::with_range(8, 0.0, 16.0).unwrap();
        s.update(&[1.0, 15.0]).unwrap();
        let mut o = HistogramObserver::with_range(8, 0.0, 8.0).unwrap();
        o.update(&[0.5, 1.5, 2.5, 7.5]).unwrap();
        s.merge(&o).unwrap();
        assert_eq!(s.counts(), &[3.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    }

    #[test]
    fn unaligned_merge_is_proportional_and_bounded() {
        // other has one bin [0.5, 1.5) holding 10; ours are width 1 on [0, 4): 5 and 5.
        let mut s = HistogramObserver::with_range(4, 0.0, 4.0).unwrap();
        s.update(&[3.5]).unwrap();
        let mut o = HistogramObserver::with_range(1, 0.5, 1.5).unwrap();
        o.update(&[1.0; 10]).unwrap();
        s.merge(&o).unwrap();
        assert_eq!(s.counts(), &[5.0, 5.0, 0.0, 1.0]);
        assert_eq!(s.total(), 11.0);
        // general case: totals conserved, CDF error ≤ the largest other-bin count
        let a = uniform(40_000, 5, -1.0, 1.0);
        let b = uniform(40_000, 6, -0.7, 1.3);
        let mut ha = HistogramObserver::new(100);
        let mut hb = HistogramObserver::new(37);
        ha.update(&a).unwrap();
        hb.update(&b).unwrap();
        let max_other_bin = hb.counts().iter().cloned().fold(0.0, f64::max);
        ha.merge(&hb).unwrap();
        assert!((ha.counts().iter().sum::<f64>() - 80_000.0).abs() < 1e-6);
        let (lo, w) = (ha.range().unwrap().0, ha.bin_width().unwrap());
        let mut exact = vec![0.0; 100];
        for &v in a.iter().chain(&b) {
            exact[(((v as f64 - lo) / w) as usize).min(99)] += 1.0;
        }
        let (mut ce, mut cm) = (0.0, 0.0);
        for i in 0..100 {
            ce += exact[i];
            cm += ha.counts()[i];
            assert!((ce - cm).abs() <= max_other_bin + 2.0, "edge {i}: {ce} vs {cm}");
        }
    }

    #[test]
    fn memory_is_flat_over_many_growing_updates() {
        let mut h = HistogramObserver::new(DEFAULT_BINS);
        h.update(&[0.0, 1.0]).unwrap();
        let bytes = h.memory_bytes();
        let mut total = 2.0;
        for i in 1..=1000 {
            let r = 1.0 + i as f32 * 0.37;
            let x = [-r * 0.5, r, 0.25 * r, -0.1];
            h.update(&x).unwrap();
            total += 4.0;
            assert_eq!(h.counts().len(), DEFAULT_BINS);
            assert_eq!(h.memory_bytes(), bytes);
        }
        assert_eq!(h.total(), total);
        assert_eq!(h.counts().iter().sum::<f64>(), total);
        let (lo, hi) = h.range().unwrap();
        let (omin, omax) = h.observed_range().unwrap();
        assert!(lo <= omin as f64 && hi >= omax as f64);
        // the lattice tracks the data: bins are at most ~2× a fresh histogram's width
        let span = (omax - omin) as f64;
        assert!(hi - lo < 2.0 * span + 8.0 * span / DEFAULT_BINS as f64 + 1e-9, "{lo} {hi} {span}");
    }

    #[test]
    fn parallel_binning_matches_serial() {
        let x = uniform(1 << 20, 9, -5.0, 5.0);
        let mut big = HistogramObserver::with_range(2048, -5.0, 5.0).unwrap();
        big.update(&x).unwrap();
        let mut small = HistogramObserver::with_range(2048, -5.0, 5.0).unwrap();
        for c in x.chunks(1000) {
            small.update(c).unwrap();
        }
        assert_eq!(big.counts(), small.counts());
        assert_eq!(big.total(), (1 << 20) as f64);
    }
}
