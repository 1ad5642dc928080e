//! Element operations and row kernels. Everything here is `#[inline(always)]` so that each
//! (operation × row shape) pair is monomorphised into one loop that LLVM vectorises.
//!
//! Two element paths:
//! - fast: the clamp bounds `[qmin + offset, qmax + offset]` lie within ±2²²; clamp in f32, round
//!   half to even by adding and subtracting 1.5·2²³, convert without checks. Pure SSE2/AVX.
//! - wide: bounds beyond ±2²² (the int32 bias grid, or huge offsets); clamp and round in f64,
//!   where the same trick with 1.5·2⁵² is exact for every value of an i32 grid.

use super::QInt;
use std::ops::Range;

/// Bounds up to this magnitude take the fast f32 path.
pub(super) const FAST_LIMIT: i64 = 1 << 22;

/// 1.5·2²³: for |v| ≤ 2²², v + C lies in [2²³, 2²⁴] where the f32 spacing is exactly 1, so the
/// addition rounds v to an integer with the FPU's round-half-to-even (C is even, so the parity
/// of the result is the parity of the rounded v); subtracting C is then exact.
const ROUND_F32: f32 = 12_582_912.0;
/// 1.5·2⁵², the same trick in f64, exact for |v| ≤ 2⁵¹.
const ROUND_F64: f64 = 6_755_399_441_055_744.0;

/// Clamp with NaN going to `lo`. Written as compare-and-select in this operand order so it
/// compiles to `maxps`/`minps` (which return the second operand on NaN), as ORT's MLAS kernel does.
#[inline(always)]
fn clamp_f32(v: f32, lo: f32, hi: f32) -> f32 {
    let v = if v > lo { v } else { lo };
    if v < hi {
        v
    } else {
        hi
    }
}

#[inline(always)]
fn clamp_f64(v: f64, lo: f64, hi: f64) -> f64 {
    let v = if v > lo { v } else { lo };
    if v < hi {
        v
    } else {
        hi
    }
}

/// round_half_even(clamp(x / s, qmin + off, qmax + off)) as an f32 holding an integer.
/// Never returns −0.0: (v + C) − C is +0.0 when it is zero.
#[inline(always)]
fn clamped_round_fast(x: f32, s: f32, off: i32, qmin: i32, qmax: i32) -> f32 {
    // Bounds fit i32 (validated) and are ≤ 2²² in magnitude on this path, so exact in f32.
    let lo = qmin.wrapping_add(off) as f32;
    let hi = qmax.wrapping_add(off) as f32;
    (clamp_f32(x / s, lo, hi) + ROUND_F32) - ROUND_F32
}

/// The same on the wide path, as an f64 holding an integer in [qmin + off, qmax + off].
/// The quotient is still an f32 division, as ORT computes it; only clamp and round use f64.
#[inline(always)]
fn clamped_round_wide(x: f32, s: f32, off: i32, qmin: i32, qmax: i32) -> f64 {
    let lo = (qmin as i64 + off as i64) as f64;
    let hi = (qmax as i64 + off as i64) as f64;
    (clamp_f64((x / s) as f64, lo, hi) + ROUND_F64) - ROUND_F64
}

#[inline(always)]
pub(super) fn quantize_fast<T: QInt>(x: f32, s: f32, off: i32, qmin: i32, qmax: i32) -> T {
    let r = clamped_round_fast(x, s, off, qmin, qmax);
    // SAFETY: r is an integer in [qmin + off, qmax + off] ⊆ [−2²², 2²²] — the clamp sent NaN to the
    // lower bound and ±inf to the bounds — so it is finite and representable in i32.
    let r: i32 = unsafe { r.to_int_unchecked() };
    // q = r − offset lies in [qmin, qmax], which T holds (validated); the subtraction cannot wrap.
    T::from_i32(r.wrapping_sub(off))
}

#[inline(always)]
pub(super) fn quantize_wide<T: QInt>(x: f32, s: f32, off: i32, qmin: i32, qmax: i32) -> T {
    let r = clamped_round_wide(x, s, off, qmin, qmax);
    // SAFETY: r is an integer in [qmin + off, qmax + off], both within i32 (validated); NaN was
    // clamped to the lower bound. Representable in i64.
    let r: i64 = unsafe { r.to_int_unchecked() };
    T::from_i64(r - off as i64)
}

#[inline(always)]
pub(super) fn qdq_fast(x: f32, s: f32, off: i32, qmin: i32, qmax: i32) -> f32 {
    // Equals dequantize(quantize(x)): the rounded value is the integer q + offset, exact in f32.
    clamped_round_fast(x, s, off, qmin, qmax) * s
}

#[inline(always)]
pub(super) fn qdq_wide(x: f32, s: f32, off: i32, qmin: i32, qmax: i32) -> f32 {
    // (integer as f64) as f32 rounds once to nearest even, as `(q + offset) as i64 as f32` does
    // in dequantize_wide, so the results agree bit for bit even above 2²⁴.
    (clamped_round_wide(x, s, off, qmin, qmax) as f32) * s
}

/// Dequantize for types of at most 16 bits with small offsets: q + offset fits i32 with room.
#[inline(always)]
pub(super) fn dequantize_narrow<T: QInt>(q: T, s: f32, off: i32) -> f32 {
    (q.to_i32().wrapping_add(off) as f32) * s
}

/// Dequantize in i64, for int32 data or wide offsets: (q − zero_point) cannot overflow.
#[inline(always)]
pub(super) fn dequantize_wide<T: QInt>(q: T, s: f32, off: i32) -> f32 {
    ((q.to_i64() + off as i64) as f32) * s
}

/// Elements per step of the row loops: one 64-byte cache line of f32.
const LINE: usize = 16;
/// Software prefetch distance in elements (4 KiB). On the 2-core x86-64 VM this was measured on,
/// the hardware prefetcher alone left streaming loops latency-bound: in-place qdq of 64M floats
/// took 41 ms without and 25 ms with this prefetch (copy_from_slice: 24 ms).
const PREFETCH: usize = 1024;

#[inline(always)]
fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, whatever the address (possibly past the
    // end of the slice, hence wrapping_add at the call sites).
    unsafe {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        _mm_prefetch::<_MM_HINT_T0>(p as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Call `f` on consecutive sub-ranges of 0..n of at most [`LINE`] elements.
#[inline(always)]
fn for_lines(n: usize, mut f: impl FnMut(Range<usize>)) {
    let mut i = 0;
    while i + LINE <= n {
        f(i..i + LINE);
        i += LINE;
    }
    if i < n {
        f(i..n);
    }
}

/// A source/destination pair over one chunk of the data, with one loop per row shape:
/// a scalar scale, a vector of scales with one offset, a vector of scales and offsets.
/// `r` is the element range inside the chunk; vector parameters have `r.len()` entries.
pub(super) trait Io {
    type I: Copy;
    type O;
    fn len(&self) -> usize;
    fn map_scalar<F: Fn(Self::I, f32, i32) -> Self::O>(
        &mut self,
        r: Range<usize>,
        s: f32,
        off: i32,
        f: &F,
    );
    fn map_vec<F: Fn(Self::I, f32, i32) -> Self::O>(
        &mut self,
        r: Range<usize>,
        s: &[f32],
        off: i32,
        f: &F,
    );
    fn map_vec2<F: Fn(Self::I, f32, i32) -> Self::O>(
        &mut self,
        r: Range<usize>,
        s: &[f32],
        off: &[i32],
        f: &F,
    );
}

pub(super) struct Pair<'a, I, O> {
    pub src: &'a [I],
    pub dst: &'a mut [O],
}

impl<I: Copy, O> Io for Pair<'_, I, O> {
    type I = I;
    type O = O;
    fn len(&self) -> usize {
        self.dst.len()
    }
    #[inline(always)]
    fn map_scalar<F: Fn(I, f32, i32) -> O>(&mut self, r: Range<usize>, s: f32, off: i32, f: &F) {
        let (src, dst) = (&self.src[r.clone()], &mut self.dst[r]);
        for_lines(dst.len(), |l| {
            prefetch(src.as_ptr().wrapping_add(l.start + PREFETCH));
            prefetch(dst.as_ptr().wrapping_add(l.start + PREFETCH));
            for (d, &x) in dst[l.clone()].iter_mut().zip(&src[l]) {
                *d = f(x, s, off);
            }
        });
    }
    #[inline(always)]
    fn map_vec<F: Fn(I, f32, i32) -> O>(&mut self, r: Range<usize>, s: &[f32], off: i32, f: &F) {
        let (src, dst) = (&self.src[r.clone()], &mut self.dst[r]);
        for_lines(dst.len(), |l| {
            prefetch(src.as_ptr().wrapping_add(l.start + PREFETCH));
            prefetch(dst.as_ptr().wrapping_add(l.start + PREFETCH));
            for ((d, &x), &s) in dst[l.clone()].iter_mut().zip(&src[l.clone()]).zip(&s[l]) {
                *d = f(x, s, off);
            }
        });
    }
    #[inline(always)]
    fn map_vec2<F: Fn(I, f32, i32) -> O>(
        &mut self,
        r: Range<usize>,
        s: &[f32],
        off: &[i32],
        f: &F,
    ) {
        let (src, dst) = (&self.src[r.clone()], &mut self.dst[r]);
        for_lines(dst.len(), |l| {
            prefetch(src.as_ptr().wrapping_add(l.start + PREFETCH));
            prefetch(dst.as_ptr().wrapping_add(l.start + PREFETCH));
            let it = dst[l.clone()]
                .iter_mut()
                .zip(&src[l.clone()])
                .zip(&s[l.clone()])
                .zip(&off[l]);
            for (((d, &x), &s), &o) in it {
                *d = f(x, s, o);
            }
        });
    }
}

pub(super) struct InPlace<'a> {
    pub buf: &'a mut [f32],
}

impl Io for InPlace<'_> {
    type I = f32;
    type O = f32;
    fn len(&self) -> usize {
        self.buf.len()
    }
    #[inline(always)]
    fn map_scalar<F: Fn(f32, f32, i32) -> f32>(
        &mut self,
        r: Range<usize>,
        s: f32,
        off: i32,
        f: &F,
    ) {
        let buf = &mut self.buf[r];
        for_lines(buf.len(), |l| {
            prefetch(buf.as_ptr().wrapping_add(l.start + PREFETCH));
            for v in &mut buf[l] {
                *v = f(*v, s, off);
            }
        });
    }
    #[inline(always)]
    fn map_vec<F: Fn(f32, f32, i32) -> f32>(
        &mut self,
        r: Range<usize>,
        s: &[f32],
        off: i32,
        f: &F,
    ) {
        let buf = &mut self.buf[r];
        for_lines(buf.len(), |l| {
            prefetch(buf.as_ptr().wrapping_add(l.start + PREFETCH));
            for (v, &s) in buf[l.clone()].iter_mut().zip(&s[l]) {
                *v = f(*v, s, off);
            }
        });
    }
    #[inline(always)]
    fn map_vec2<F: Fn(f32, f32, i32) -> f32>(
        &mut self,
        r: Range<usize>,
        s: &[f32],
        off: &[i32],
        f: &F,
    ) {
        let buf = &mut self.buf[r];
        for_lines(buf.len(), |l| {
            prefetch(buf.as_ptr().wrapping_add(l.start + PREFETCH));
            for ((v, &s), &o) in buf[l.clone()].iter_mut().zip(&s[l.clone()]).zip(&off[l]) {
                *v = f(*v, s, o);
            }
        });
    }
}
