//! Cache-blocked single-precision GEMM, `C = A·B` or `C += A·B`, for the layer kernels.
//!
//! The structure is the BLIS/GotoBLAS one: B is packed in `KC × NC` blocks of `NR`-wide column
//! panels, A in `MC × KC` blocks of `MR`-high row panels, and a register-blocked `MR × NR`
//! micro-kernel runs over them. The micro-kernel is plain Rust over fixed-size arrays, written
//! once and compiled per instruction set with `#[target_feature]` (AVX-512, AVX2 + FMA, baseline
//! SSE2), then chosen at run time; LLVM turns its `MR × NR` accumulator array into registers.
//! The packing takes any row and column strides, so transposed operands (`Wᵀ·dY`, `dY·colᵀ`)
//! cost nothing extra.
//!
//! Numerics: f32 accumulation; with FMA each multiply-add rounds once, without it twice, so
//! results differ from a plain dot product by a few ulps times √K (the tests bound this).
//!
//! Products of at least `PAR_MIN_FLOPS` multiply-adds are split over rayon's pool by column (or
//! row) stripes of C; smaller ones run on the calling thread.
//!
//! Results do not depend on the thread count: the kernel is chosen from the whole product's shape
//! (never per stripe), stripes split C and never the summed dimension, and the blocked kernel
//! sums every element in the same order whatever the stripe (KC blocks from k = 0, each block's
//! sum added to C). Thin products (the `gemm` crate's, whose blocking depends on the shape it is
//! given) therefore run whole on the calling thread.

use super::scratch::with_scratch;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Below this many multiply-adds a product runs on the calling thread.
const PAR_MIN_FLOPS: usize = 1 << 20;

/// A read-only matrix view with arbitrary (non-negative) strides: element (i, j) is at
/// `data[i·rs + j·cs]`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> MatRef<'a> {
    /// Panics when the view reaches past `data`.
    pub fn new(data: &'a [f32], rows: usize, cols: usize, rs: usize, cs: usize) -> Self {
        if rows > 0 && cols > 0 {
            let last = (rows - 1) * rs + (cols - 1) * cs;
            assert!(last < data.len(), "MatRef: a {rows}×{cols} view with strides ({rs}, {cs}) needs {} elements, the slice has {}", last + 1, data.len());
        }
        MatRef { data, rows, cols, rs, cs }
    }

    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Self::new(data, rows, cols, cols, 1)
    }

    /// The transpose, as a view (no copy).
    pub fn t(self) -> Self {
        MatRef { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn sub(self, r0: usize, rows: usize, c0: usize, cols: usize) -> Self {
        let off = r0 * self.rs + c0 * self.cs;
        if rows == 0 || cols == 0 {
            return MatRef { data: &[], rows, cols, rs: self.rs, cs: self.cs };
        }
        MatRef { data: &self.data[off..], rows, cols, rs: self.rs, cs: self.cs }
    }

    #[inline(always)]
    unsafe fn at(&self, i: usize, j: usize) -> f32 {
        *self.data.get_unchecked(i * self.rs + j * self.cs)
    }
}

/// `C[m×n] = A·B` (or `+=` when `accumulate`), C row-major with leading dimension `ldc ≥ n`.
/// Panics on inconsistent shapes (callers have checked them; this is a programming error).
pub fn sgemm(a: MatRef, b: MatRef, c: &mut [f32], ldc: usize, accumulate: bool) {
    let (m, n) = check(a, b, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    let k = a.cols;
    let threads = rayon::current_num_threads();
    if threads < 2 || m * n * k < PAR_MIN_FLOPS || is_thin(a, b) {
        unsafe { serial(a, b, c.as_mut_ptr(), ldc, accumulate) };
        return;
    }
    // The blocked kernel on every stripe, even a stripe `serial` would call thin.
    let isa = isa();
    let serial = |a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool| unsafe { serial_isa(isa, a, b, c, ldc, accumulate) };
    let cp = SendPtr(c.as_mut_ptr());
    let (_, nr) = isa.tile();
    // Column stripes when C is wide enough for one NR-multiple stripe per thread, else row stripes.
    if n >= nr * threads {
        let width = n.div_ceil(threads).div_ceil(nr) * nr;
        (0..n.div_ceil(width)).into_par_iter().for_each(|s| {
            let j0 = s * width;
            let w = width.min(n - j0);
            let cp = &cp;
            serial(a, b.sub(0, k, j0, w), unsafe { cp.0.add(j0) }, ldc, accumulate);
        });
    } else {
        let height = m.div_ceil(threads).div_ceil(8) * 8;
        (0..m.div_ceil(height)).into_par_iter().for_each(|s| {
            let i0 = s * height;
            let h = height.min(m - i0);
            let cp = &cp;
            serial(a.sub(i0, h, 0, k), b, unsafe { cp.0.add(i0 * ldc) }, ldc, accumulate);
        });
    }
}

/// The hand-written blocked kernel alone, never the `gemm` crate (examples/sgemm_kernels.rs
/// compares the two).
#[doc(hidden)]
pub fn sgemm_blocked_serial(a: MatRef, b: MatRef, c: &mut [f32], ldc: usize, accumulate: bool) {
    let (m, n) = check(a, b, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    unsafe { serial_isa(isa(), a, b, c.as_mut_ptr(), ldc, accumulate) };
}

/// [`sgemm`] on the calling thread only (for callers that parallelise over their own tasks).
pub fn sgemm_serial(a: MatRef, b: MatRef, c: &mut [f32], ldc: usize, accumulate: bool) {
    let (m, n) = check(a, b, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    unsafe { serial(a, b, c.as_mut_ptr(), ldc, accumulate) };
}

fn check(a: MatRef, b: MatRef, c: &[f32], ldc: usize) -> (usize, usize) {
    assert_eq!(a.cols, b.rows, "sgemm: A is {}×{}, B is {}×{}", a.rows, a.cols, b.rows, b.cols);
    let (m, n) = (a.rows, b.cols);
    assert!(ldc >= n, "sgemm: ldc {ldc} < n {n}");
    if m > 0 && n > 0 {
        assert!(c.len() >= (m - 1) * ldc + n, "sgemm: C has {} elements, needs {}", c.len(), (m - 1) * ldc + n);
    }
    (m, n)
}

struct SendPtr(*mut f32);
unsafe impl Sync for SendPtr {}
unsafe impl Send for SendPtr {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    #[cfg(target_arch = "x86_64")]
    Avx512,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    Generic,
}

impl Isa {
    fn tile(self) -> (usize, usize) {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => (Avx512::MR, Avx512::NR),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => (Avx2::MR, Avx2::NR),
            Isa::Generic => (Generic::MR, Generic::NR),
        }
    }
}

pub(crate) fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Generic
    })
}

/// The instruction sets this machine can run (tests exercise each micro-kernel).
#[cfg(test)]
pub(crate) fn available_isas() -> Vec<Isa> {
    let mut v = vec![Isa::Generic];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            v.push(Isa::Avx2);
        }
        if std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("fma") {
            v.push(Isa::Avx512);
        }
    }
    v
}

/// Serial product with a chosen micro-kernel (tests only; `isa` must be available).
#[cfg(test)]
pub(crate) fn sgemm_with(isa: Isa, a: MatRef, b: MatRef, c: &mut [f32], ldc: usize, accumulate: bool) {
    let (m, n) = check(a, b, c, ldc);
    if m == 0 || n == 0 {
        return;
    }
    unsafe { serial_isa(isa, a, b, c.as_mut_ptr(), ldc, accumulate) }
}

/// Whether a product goes to the `gemm` crate (see [`THIN_M`]).
fn is_thin(a: MatRef, b: MatRef) -> bool {
    let (mr, nr) = isa().tile();
    a.cols > 0 && (b.cols < nr || a.rows <= THIN_M.max(mr))
}

unsafe fn serial(a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool) {
    if is_thin(a, b) {
        return thin(a, b, c, ldc, accumulate);
    }
    serial_isa(isa(), a, b, c, ldc, accumulate)
}

/// Products whose C is narrower than one micro-tile or only a few tiles high (a small conv's
/// weight gradient, a conv with few output channels) go to the `gemm` crate (faer's kernel),
/// whose kernels handle such edges better: measured by `examples/sgemm_kernels.rs` on the cls and
/// MNIST conv shapes (e.g. 8×2304×27: 3× faster; 8×27×2304: 1.5×), while the blocked kernel
/// below stays faster on the taller and wider products.
const THIN_M: usize = 16;

unsafe fn thin(a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    gemm::gemm(
        m,
        n,
        k,
        c,
        1,
        ldc as isize,
        accumulate,
        a.data.as_ptr(),
        a.cs as isize,
        a.rs as isize,
        b.data.as_ptr(),
        b.cs as isize,
        b.rs as isize,
        if accumulate { 1.0f32 } else { 0.0 },
        1.0f32,
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

unsafe fn serial_isa(isa: Isa, a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => blocked::<Avx512>(a, b, c, ldc, accumulate),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => blocked::<Avx2>(a, b, c, ldc, accumulate),
        Isa::Generic => blocked::<Generic>(a, b, c, ldc, accumulate),
    }
}

trait Kernel {
    const MR: usize;
    const NR: usize;
    const MC: usize;
    const KC: usize;
    const NC: usize;
    /// `C[MR×NR] (+)= Apanel·Bpanel` over `kc` steps; A packed MR per step, B NR per step.
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool);
}

/// The largest MR·NR of any kernel (the edge-tile buffer).
// AVX-512 is 6×32 (12 zmm accumulators): measured on a Xeon with LLVM 20, 8-row tiles made
// LLVM spill the accumulator array (5 GFLOP/s instead of ~110).
const MAX_TILE: usize = 6 * 32;

unsafe fn blocked<K: Kernel>(a: MatRef, b: MatRef, c: *mut f32, ldc: usize, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if k == 0 {
        if !accumulate {
            for i in 0..m {
                std::ptr::write_bytes(c.add(i * ldc), 0, n);
            }
        }
        return;
    }
    let kc_max = K::KC.min(k);
    let nc_max = K::NC.min(n.div_ceil(K::NR) * K::NR);
    let mc_max = K::MC.min(m.div_ceil(K::MR) * K::MR);
    with_scratch(kc_max * nc_max, |bpack| {
        with_scratch(kc_max * mc_max, |apack| {
            let mut edge = [0f32; MAX_TILE];
            for jc in (0..n).step_by(K::NC) {
                let nc = K::NC.min(n - jc);
                for pc in (0..k).step_by(K::KC) {
                    let kc = K::KC.min(k - pc);
                    let acc = accumulate || pc > 0;
                    pack_b::<K>(b, pc, kc, jc, nc, bpack);
                    for ic in (0..m).step_by(K::MC) {
                        let mc = K::MC.min(m - ic);
                        pack_a::<K>(a, ic, mc, pc, kc, apack);
                        for jr in (0..nc).step_by(K::NR) {
                            let nr = K::NR.min(nc - jr);
                            let bp = bpack.as_ptr().add(jr * kc);
                            for ir in (0..mc).step_by(K::MR) {
                                let mr = K::MR.min(mc - ir);
                                let ap = apack.as_ptr().add(ir * kc);
                                let cp = c.add((ic + ir) * ldc + jc + jr);
                                if mr == K::MR && nr == K::NR {
                                    K::tile(kc, ap, bp, cp, ldc, acc);
                                } else {
                                    K::tile(kc, ap, bp, edge.as_mut_ptr(), K::NR, false);
                                    for i in 0..mr {
                                        let row = cp.add(i * ldc);
                                        for j in 0..nr {
                                            let v = edge[i * K::NR + j];
                                            *row.add(j) = if acc { *row.add(j) + v } else { v };
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        })
    })
}

/// Packs rows `ic..ic+mc`, columns `pc..pc+kc` of A into MR-high panels (zero-padded), each
/// stored step by step: `dst[panel·kc·MR + p·MR + i]`.
unsafe fn pack_a<K: Kernel>(a: MatRef, ic: usize, mc: usize, pc: usize, kc: usize, dst: &mut [f32]) {
    let mut d = dst.as_mut_ptr();
    for ir in (0..mc).step_by(K::MR) {
        let mr = K::MR.min(mc - ir);
        if mr == K::MR && a.rs == 1 {
            // Columns of A contiguous (a transposed row-major matrix): copy MR at a time.
            for p in 0..kc {
                let src = a.data.as_ptr().add((ic + ir) + (pc + p) * a.cs);
                std::ptr::copy_nonoverlapping(src, d, K::MR);
                d = d.add(K::MR);
            }
            continue;
        }
        for p in 0..kc {
            for i in 0..K::MR {
                *d.add(i) = if i < mr { a.at(ic + ir + i, pc + p) } else { 0.0 };
            }
            d = d.add(K::MR);
        }
    }
}

/// Packs rows `pc..pc+kc`, columns `jc..jc+nc` of B into NR-wide panels (zero-padded):
/// `dst[panel·kc·NR + p·NR + j]`.
unsafe fn pack_b<K: Kernel>(b: MatRef, pc: usize, kc: usize, jc: usize, nc: usize, dst: &mut [f32]) {
    let mut d = dst.as_mut_ptr();
    for jr in (0..nc).step_by(K::NR) {
        let nr = K::NR.min(nc - jr);
        if nr == K::NR && b.cs == 1 {
            for p in 0..kc {
                let src = b.data.as_ptr().add((pc + p) * b.rs + jc + jr);
                std::ptr::copy_nonoverlapping(src, d, K::NR);
                d = d.add(K::NR);
            }
            continue;
        }
        for p in 0..kc {
            for j in 0..K::NR {
                *d.add(j) = if j < nr { b.at(pc + p, jc + jr + j) } else { 0.0 };
            }
            d = d.add(K::NR);
        }
    }
}

/// The micro-kernel, written once. `FMA` selects fused multiply-add (one rounding), which only
/// pays where the target has the instruction (otherwise `mul_add` is a libm call).
#[inline(always)]
unsafe fn tile_body<const MR: usize, const NR: usize, const FMA: bool>(
    kc: usize,
    mut a: *const f32,
    mut b: *const f32,
    c: *mut f32,
    ldc: usize,
    accumulate: bool,
) {
    let mut acc = [[0f32; NR]; MR];
    for _ in 0..kc {
        let bv: [f32; NR] = std::ptr::read_unaligned(b as *const [f32; NR]);
        let av: [f32; MR] = std::ptr::read_unaligned(a as *const [f32; MR]);
        for i in 0..MR {
            for j in 0..NR {
                acc[i][j] = if FMA { av[i].mul_add(bv[j], acc[i][j]) } else { acc[i][j] + av[i] * bv[j] };
            }
        }
        a = a.add(MR);
        b = b.add(NR);
    }
    for (i, row_acc) in acc.iter().enumerate() {
        let row = c.add(i * ldc);
        for (j, &v) in row_acc.iter().enumerate() {
            let p = row.add(j);
            *p = if accumulate { *p + v } else { v };
        }
    }
}

#[cfg(target_arch = "x86_64")]
struct Avx512;
#[cfg(target_arch = "x86_64")]
impl Kernel for Avx512 {
    const MR: usize = 6;
    const NR: usize = 32;
    const MC: usize = 96;
    const KC: usize = 256;
    const NC: usize = 2048;
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        tile_avx512(kc, a, b, c, ldc, accumulate)
    }
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn tile_avx512(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
    tile_body::<6, 32, true>(kc, a, b, c, ldc, accumulate)
}

#[cfg(target_arch = "x86_64")]
struct Avx2;
#[cfg(target_arch = "x86_64")]
impl Kernel for Avx2 {
    const MR: usize = 6;
    const NR: usize = 16;
    const MC: usize = 120;
    const KC: usize = 256;
    const NC: usize = 2048;
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        tile_avx2(kc, a, b, c, ldc, accumulate)
    }
}
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_avx2(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
    tile_body::<6, 16, true>(kc, a, b, c, ldc, accumulate)
}

struct Generic;
impl Kernel for Generic {
    const MR: usize = 4;
    const NR: usize = 8;
    const MC: usize = 128;
    const KC: usize = 256;
    const NC: usize = 2048;
    unsafe fn tile(kc: usize, a: *const f32, b: *const f32, c: *mut f32, ldc: usize, accumulate: bool) {
        tile_body::<4, 8, false>(kc, a, b, c, ldc, accumulate)
    }
}
