//! Running min/max, per tensor or per channel (AIMET's `_MinMaxObserver`, used by `min_max`).

use rayon::prelude::*;

use super::{ObserverError, PARALLEL_CHUNK, PARALLEL_THRESHOLD};

const LANES: usize = 16;

#[inline]
fn is_non_finite(v: f32) -> bool {
    // Exponent all ones: ±inf or NaN. Integer test so that the loop below vectorises.
    (v.to_bits() & 0x7fff_ffff) >= 0x7f80_0000
}

fn first_non_finite(x: &[f32]) -> ObserverError {
    let index = x.iter().position(|&v| is_non_finite(v)).expect("a non-finite value was flagged");
    ObserverError::NonFinite { index, value: x[index] }
}

/// (min, max) of a slice in one vectorisable pass; `(+inf, −inf)` when empty.
/// Err(index) of the first non-finite element, relative to `x`.
fn min_max_serial(x: &[f32]) -> Result<(f32, f32), usize> {
    let mut lo = [f32::INFINITY; LANES];
    let mut hi = [f32::NEG_INFINITY; LANES];
    let mut bad = [0u32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..LANES {
            let v = c[i];
            lo[i] = if v < lo[i] { v } else { lo[i] };
            hi[i] = if v > hi[i] { v } else { hi[i] };
            bad[i] |= is_non_finite(v) as u32;
        }
    }
    let mut l = f32::INFINITY;
    let mut h = f32::NEG_INFINITY;
    let mut any_bad = false;
    for i in 0..LANES {
        l = l.min(lo[i]);
        h = h.max(hi[i]);
        any_bad |= bad[i] != 0;
    }
    for &v in rest {
        l = if v < l { v } else { l };
        h = if v > h { v } else { h };
        any_bad |= is_non_finite(v);
    }
    if any_bad {
        return Err(x.iter().position(|&v| is_non_finite(v)).unwrap());
    }
    Ok((l, h))
}

/// (min, max) of a slice, in parallel above [`PARALLEL_THRESHOLD`]. `(+inf, −inf)` when empty.
pub(crate) fn min_max_finite(x: &[f32]) -> Result<(f32, f32), ObserverError> {
    let r = if x.len() < PARALLEL_THRESHOLD {
        min_max_serial(x)
    } else {
        x.par_chunks(PARALLEL_CHUNK)
            .enumerate()
            .map(|(ci, c)| min_max_serial(c).map_err(|i| ci * PARALLEL_CHUNK + i))
            .reduce(
                || Ok((f32::INFINITY, f32::NEG_INFINITY)),
                |a, b| match (a, b) {
                    (Err(i), Err(j)) => Err(i.min(j)),
                    (Err(i), _) | (_, Err(i)) => Err(i),
                    (Ok(a), Ok(b)) => Ok((a.0.min(b.0), a.1.max(b.1))),
                },
            )
    };
    r.map_err(|index| ObserverError::NonFinite { index, value: x[index] })
}

fn check_shape(len: usize, shape: &[usize]) -> Result<(), ObserverError> {
    if shape.iter().product::<usize>() != len {
        return Err(ObserverError::ShapeMismatch { len, shape: shape.to_vec() });
    }
    Ok(())
}

/// Running min and max of everything seen, per tensor or per channel along one axis.
/// Memory: two floats per channel. The channel count is fixed by the first non-empty update.
#[derive(Debug, Clone, PartialEq)]
pub struct MinMaxObserver {
    /// `None`: per tensor.
    axis: Option<usize>,
    /// Empty before the first data; then one entry (per tensor) or one per channel.
    min: Vec<f32>,
    max: Vec<f32>,
    /// Elements seen.
    count: u64,
}

impl Default for MinMaxObserver {
    fn default() -> Self {
        Self::per_tensor()
    }
}

impl MinMaxObserver {
    pub fn per_tensor() -> Self {
        MinMaxObserver { axis: None, min: Vec::new(), max: Vec::new(), count: 0 }
    }

    /// One (min, max) per index along `axis` of the shapes passed to [`Self::update`].
    pub fn per_channel(axis: usize) -> Self {
        MinMaxObserver { axis: Some(axis), min: Vec::new(), max: Vec::new(), count: 0 }
    }

    pub fn axis(&self) -> Option<usize> {
        self.axis
    }

    pub fn is_per_channel(&self) -> bool {
        self.axis.is_some()
    }

    /// Channels seen (1 for per tensor); 0 before the first data.
    pub fn num_channels(&self) -> usize {
        self.min.len()
    }

    /// Elements seen so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.min.is_empty()
    }

    /// Minima: one value per tensor, or one per channel; empty before the first data.
    pub fn min(&self) -> &[f32] {
        &self.min
    }

    /// Maxima, laid out as [`Self::min`].
    pub fn max(&self) -> &[f32] {
        &self.max
    }

    /// Minimum over everything (all channels); `None` before any data.
    pub fn tensor_min(&self) -> Option<f32> {
        self.min.iter().copied().reduce(f32::min)
    }

    /// Maximum over everything (all channels); `None` before any data.
    pub fn tensor_max(&self) -> Option<f32> {
        self.max.iter().copied().reduce(f32::max)
    }

    /// Observes `x`, a row-major tensor of `shape`. Nothing changes if `x` has a non-finite
    /// value. Empty tensors are accepted and change nothing.
    pub fn update(&mut self, x: &[f32], shape: &[usize]) -> Result<(), ObserverError> {
        check_shape(x.len(), shape)?;
        match self.axis {
            None => {
                if x.is_empty() {
                    return Ok(());
                }
                let (lo, hi) = min_max_finite(x)?;
                if self.min.is_empty() {
                    self.min.push(lo);
                    self.max.push(hi);
                } else {
                    self.min[0] = self.min[0].min(lo);
                    self.max[0] = self.max[0].max(hi);
                }
            }
            Some(axis) => {
                if axis >= shape.len() {
                    return Err(ObserverError::AxisOutOfRange { axis, rank: shape.len() });
                }
                let c = shape[axis];
                if !self.min.is_empty() && c != self.min.len() {
                    return Err(ObserverError::ChannelMismatch { axis, expected: self.min.len(), got: c });
                }
                if x.is_empty() {
                    return Ok(());
                }
                let inner: usize = shape[axis + 1..].iter().product();
                let (lo, hi) = per_channel_min_max(x, c, inner)?;
                if self.min.is_empty() {
                    self.min = lo;
                    self.max = hi;
                } else {
                    for ch in 0..c {
                        self.min[ch] = self.min[ch].min(lo[ch]);
                        self.max[ch] = self.max[ch].max(hi[ch]);
                    }
                }
            }
        }
        self.count += x.len() as u64;
        Ok(())
    }

    /// Combines the statistics of another observer of the same kind (e.g. from another worker).
    pub fn merge(&mut self, other: &Self) -> Result<(), ObserverError> {
        let channels_differ = !self.is_empty() && !other.is_empty() && self.min.len() != other.min.len();
        if self.axis != other.axis || channels_differ {
            return Err(ObserverError::MergeMismatch {
                what: format!(
                    "axis {:?} with {} channels vs axis {:?} with {} channels",
                    self.axis,
                    self.min.len(),
                    other.axis,
                    other.min.len()
                ),
            });
        }
        if other.is_empty() {
            return Ok(());
        }
        if self.is_empty() {
            *self = other.clone();
            return Ok(());
        }
        for ch in 0..self.min.len() {
            self.min[ch] = self.min[ch].min(other.min[ch]);
            self.max[ch] = self.max[ch].max(other.max[ch]);
        }
        self.count += other.count;
        Ok(())
    }
}

/// Per-channel (min, max) of a row-major tensor viewed as [outer, c, inner].
fn per_channel_min_max(x: &[f32], c: usize, inner: usize) -> Result<(Vec<f32>, Vec<f32>), ObserverError> {
    let init = || (vec![f32::INFINITY; c], vec![f32::NEG_INFINITY; c]);
    if c == 0 || x.is_empty() {
        return Ok(init());
    }
    if inner == 1 {
        // Channels are the fastest axis: reduce whole rows elementwise (vectorises across channels).
        let fold_rows = |rows: &[f32], base: usize| -> Result<(Vec<f32>, Vec<f32>), ObserverError> {
            let (mut lo, mut hi) = init();
            let mut bad = 0u32;
            for r in rows.chunks_exact(c) {
                for ch in 0..c {
                    let v = r[ch];
                    lo[ch] = if v < lo[ch] { v } else { lo[ch] };
                    hi[ch] = if v > hi[ch] { v } else { hi[ch] };
                    bad |= is_non_finite(v) as u32;
                }
            }
            if bad != 0 {
                let e = first_non_finite(rows);
                if let ObserverError::NonFinite { index, value } = e {
                    return Err(ObserverError::NonFinite { index: base + index, value });
                }
            }
            Ok((lo, hi))
        };
        if x.len() < PARALLEL_THRESHOLD {
            return fold_rows(x, 0);
        }
        let rows_per_task = (PARALLEL_CHUNK / c).max(1);
        let parts: Vec<_> = x
            .par_chunks(rows_per_task * c)
            .enumerate()
            .map(|(i, rows)| fold_rows(rows, i * rows_per_task * c))
            .collect();
        return combine(parts, init());
    }
    // Each (outer, channel) slice is contiguous: reduce slices, then fold them per channel.
    let slice_result = |(s, sl): (usize, &[f32])| -> Result<(usize, f32, f32), ObserverError> {
        min_max_serial(sl)
            .map(|(lo, hi)| (s % c, lo, hi))
            .map_err(|i| ObserverError::NonFinite { index: s * inner + i, value: sl[i] })
    };
    let slices: Vec<Result<(usize, f32, f32), ObserverError>> = if x.len() < PARALLEL_THRESHOLD {
        x.chunks(inner).enumerate().map(slice_result).collect()
    } else {
        x.par_chunks(inner).enumerate().map(slice_result).collect()
    };
    let (mut lo, mut hi) = init();
    for r in slices {
        let (ch, l, h) = r?;
        lo[ch] = lo[ch].min(l);
        hi[ch] = hi[ch].max(h);
    }
    Ok((lo, hi))
}

type Partial = Result<(Vec<f32>, Vec<f32>), ObserverError>;

fn combine(parts: Vec<Partial>, init: (Vec<f32>, Vec<f32>)) -> Partial {
    let (mut lo, mut hi) = init;
    // Parts are in data order, so the first error is the lowest index.
    for p in parts {
        let (l, h) = p?;
        for ch in 0..lo.len() {
            lo[ch] = lo[ch].min(l[ch]);
            hi[ch] = hi[ch].max(h[ch]);
        }
    }
    Ok((lo, hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn per_tensor_running_range() {
        let mut o = MinMaxObserver::per_tensor();
        assert!(o.min().is_empty() && o.tensor_min().is_none());
        o.update(&[], &[0]).unwrap();
        assert!(o.is_empty());
        o.update(&[1.0, -2.0, 3.0], &[3]).unwrap();
        o.update(&[0.5, 4.0], &[2]).unwrap();
        assert_eq!((o.min(), o.max()), (&[-2.0f32][..], &[4.0f32][..]));
        assert_eq!((o.tensor_min(), o.tensor_max()), (Some(-2.0), Some(4.0)));
        assert_eq!(o.count(), 5);
        o.update(&[], &[0]).unwrap();
        assert_eq!(o.count(), 5);
    }

    #[test]
    fn non_finite_is_an_error_with_index() {
        let mut o = MinMaxObserver::per_tensor();
        let mut x = vec![0.0f32; 100];
        x[37] = f32::NAN;
        x[80] = f32::INFINITY;
        assert!(matches!(o.update(&x, &[100]), Err(ObserverError::NonFinite { index: 37, .. })));
        assert!(o.is_empty());
        x[37] = 0.0;
        let e = o.update(&x, &[10, 10]).unwrap_err();
        assert!(matches!(e, ObserverError::NonFinite { index: 80, value } if value == f32::INFINITY));
        assert!(e.to_string().contains("element 80"));
        // large input, parallel path: the first bad index wins
        let mut big = lcg(1 << 20, 3);
        big[700_001] = f32::NEG_INFINITY;
        big[900_000] = f32::NAN;
        assert!(matches!(o.update(&big, &[1 << 20]), Err(ObserverError::NonFinite { index: 700_001, .. })));
    }

    #[test]
    fn shape_errors() {
        let mut o = MinMaxObserver::per_tensor();
        assert!(matches!(o.update(&[1.0, 2.0], &[3]), Err(ObserverError::ShapeMismatch { .. })));
        let mut pc = MinMaxObserver::per_channel(2);
        assert!(matches!(pc.update(&[0.0; 6], &[2, 3]), Err(ObserverError::AxisOutOfRange { axis: 2, rank: 2 })));
        let mut pc = MinMaxObserver::per_channel(1);
        pc.update(&[0.0; 6], &[2, 3]).unwrap();
        assert!(matches!(
            pc.update(&[0.0; 8], &[2, 4]),
            Err(ObserverError::ChannelMismatch { expected: 3, got: 4, .. })
        ));
    }

    #[test]
    fn per_channel_axes() {
        // shape [2, 3, 2]: x[o][c][i] = 100·o + 10·c + i
        let mut x = Vec::new();
        for o in 0..2 {
            for c in 0..3 {
                for i in 0..2 {
                    x.push((100 * o + 10 * c + i) as f32);
                }
            }
        }
        let shape = [2, 3, 2];
        let mut a0 = MinMaxObserver::per_channel(0);
        a0.update(&x, &shape).unwrap();
        assert_eq!(a0.min(), &[0.0, 100.0]);
        assert_eq!(a0.max(), &[21.0, 121.0]);
        let mut a1 = MinMaxObserver::per_channel(1);
        a1.update(&x, &shape).unwrap();
        assert_eq!(a1.min(), &[0.0, 10.0, 20.0]);
        assert_eq!(a1.max(), &[101.0, 111.0, 121.0]);
        let mut a2 = MinMaxObserver::per_channel(2);
        a2.update(&x, &shape).unwrap();
        assert_eq!(a2.min(), &[0.0, 1.0]);
        assert_eq!(a2.max(), &[120.0, 121.0]);
        assert_eq!(a2.tensor_min(), Some(0.0));
        assert_eq!(a2.tensor_max(), Some(121.0));
    }

    #[test]
    fn parallel_paths_match_a_plain_loop() {
        for &(outer, c, inner) in &[(1usize, 1usize, 1usize << 19), (1 << 16, 8, 1), (4, 16, 1 << 13), (64, 3, 1000)] {
            let x = lcg(outer * c * inner, 7 + c as u64);
            let shape = [outer, c, inner];
            let mut o = MinMaxObserver::per_channel(1);
            o.update(&x, &shape).unwrap();
            let mut lo = vec![f32::INFINITY; c];
            let mut hi = vec![f32::NEG_INFINITY; c];
            for (i, &v) in x.iter().enumerate() {
                let ch = (i / inner) % c;
                lo[ch] = lo[ch].min(v);
                hi[ch] = hi[ch].max(v);
            }
            assert_eq!(o.min(), &lo[..]);
            assert_eq!(o.max(), &hi[..]);
            let mut t = MinMaxObserver::per_tensor();
            t.update(&x, &shape).unwrap();
            assert_eq!(t.tensor_min(), lo.iter().copied().reduce(f32::min));
            assert_eq!(t.tensor_max(), hi.iter().copied().reduce(f32::max));
        }
        // per-channel non-finite index in the row-wise parallel path
        let mut x = lcg(1 << 18, 1);
        x[200_003] = f32::NAN;
        let mut o = MinMaxObserver::per_channel(1);
        assert!(matches!(o.update(&x, &[1 << 16, 4]), Err(ObserverError::NonFinite { index: 200_003, .. })));
        let mut o = MinMaxObserver::per_channel(0);
        assert!(matches!(o.update(&x, &[4, 1 << 16]), Err(ObserverError::NonFinite { index: 200_003, .. })));
    }

    #[test]
    fn merge_combines_and_checks_kind() {
        let mut a = MinMaxObserver::per_channel(0);
        let mut b = MinMaxObserver::per_channel(0);
        let mut empty = MinMaxObserver::per_channel(0);
        empty.merge(&a).unwrap();
        assert!(empty.is_empty());
        a.update(&[1.0, 2.0, -1.0, 0.0], &[2, 2]).unwrap();
        b.update(&[-5.0, 0.0, 3.0, 9.0], &[2, 2]).unwrap();
        empty.merge(&b).unwrap();
        assert_eq!(empty, b);
        a.merge(&b).unwrap();
        assert_eq!(a.min(), &[-5.0, -1.0]);
        assert_eq!(a.max(), &[2.0, 9.0]);
        assert_eq!(a.count(), 8);
        assert!(a.merge(&MinMaxObserver::per_tensor()).is_err());
        let mut three = MinMaxObserver::per_channel(0);
        three.update(&[0.0; 3], &[3]).unwrap();
        assert!(matches!(a.merge(&three), Err(ObserverError::MergeMismatch { .. })));
    }
}
