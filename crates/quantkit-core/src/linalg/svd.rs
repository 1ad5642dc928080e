//! Singular value decomposition of a row-major f32 matrix, computed in f64 with faer.
//!
//! - [`thin_svd`]: faer's full thin SVD (bidiagonalisation + divide and conquer), all
//!   min(rows, cols) singular values and vectors.
//! - [`randomized_svd`]: Halko, Martinsson & Tropp, "Finding structure with randomness" (SIAM
//!   Review 2011), Algorithm 4.4 (randomized subspace iteration) followed by Algorithm 5.1: a
//!   Gaussian sketch Y = A·Ω with ℓ = rank + oversampling columns, `power_iterations` rounds of
//!   Y ← A·(Aᵀ·Q) with a QR re-orthonormalisation after every product, then the exact SVD of the
//!   small ℓ×cols matrix B = Qᵀ·A. Seeded and deterministic: Ω comes from xoshiro256++ seeded
//!   by splitmix64, independent of the thread count.
//! - [`truncated_svd`]: the top `rank` triplets by either method; `SvdMethod::Auto` picks the
//!   randomized one only where it was measured to be faster ([`prefers_randomized`]).
//!
//! Parallelism: every faer call gets `Par::rayon(0)`, i.e. as many threads as the current rayon
//! pool (RAYON_NUM_THREADS or the caller's `ThreadPool::install`).

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::matmul::matmul;
use faer::linalg::svd::{svd, svd_scratch, ComputeSvdVectors};
use faer::diag::Diag;
use faer::{Accum, Mat, MatRef, Par};

use super::LinalgError;

/// Default oversampling of the randomized SVD (HMT §4.2 recommend p = 5 or 10).
pub const DEFAULT_OVERSAMPLING: usize = 10;
/// Default power (subspace) iterations of the randomized SVD.
pub const DEFAULT_POWER_ITERATIONS: usize = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SvdMethod {
    /// Randomized where [`prefers_randomized`] says it is faster, full otherwise.
    Auto,
    Full,
    Randomized,
}

#[derive(Clone, Copy, Debug)]
pub struct SvdOptions {
    pub method: SvdMethod,
    pub oversampling: usize,
    pub power_iterations: usize,
    pub seed: u64,
}

impl Default for SvdOptions {
    fn default() -> Self {
        SvdOptions { method: SvdMethod::Auto, oversampling: DEFAULT_OVERSAMPLING, power_iterations: DEFAULT_POWER_ITERATIONS, seed: 0 }
    }
}

/// A = U·diag(s)·Vᵀ restricted to `rank` triplets. `u` is rows×rank and `vt` rank×cols, both
/// row-major. `s` holds every singular value computed, descending: all min(rows, cols) when
/// `exact`, the top rank + oversampling when randomized.
#[derive(Clone, Debug)]
pub struct Svd {
    pub rows: usize,
    pub cols: usize,
    pub rank: usize,
    pub u: Vec<f64>,
    pub s: Vec<f64>,
    pub vt: Vec<f64>,
    pub exact: bool,
}

pub(crate) fn par() -> Par {
    Par::rayon(0)
}

/// Checks `a` is rows×cols and finite, and copies it into an f64 faer matrix.
pub(crate) fn to_mat(arg: &'static str, a: &[f32], rows: usize, cols: usize) -> Result<Mat<f64>, LinalgError> {
    if rows == 0 || cols == 0 {
        return Err(LinalgError::ShapeMismatch { arg, expected: "at least one row and one column".into(), got: format!("{rows}×{cols}") });
    }
    if rows.checked_mul(cols) != Some(a.len()) {
        return Err(LinalgError::ShapeMismatch {
            arg,
            expected: format!("{rows}×{cols} = {} elements", rows.saturating_mul(cols)),
            got: format!("{} elements", a.len()),
        });
    }
    if let Some(index) = a.iter().position(|v| !v.is_finite()) {
        return Err(LinalgError::NonFinite { arg, index, value: a[index] as f64 });
    }
    Ok(Mat::from_fn(rows, cols, |i, j| a[i * cols + j] as f64))
}

fn check_rank(rank: usize, rows: usize, cols: usize) -> Result<(), LinalgError> {
    let max = rows.min(cols);
    if rank == 0 || rank > max {
        return Err(LinalgError::RankOutOfRange { arg: "rank", rank, max });
    }
    Ok(())
}

/// (U m×k, σ, V n×k) in faer's column-major layout.
pub(crate) type Triplets = (Mat<f64>, Vec<f64>, Mat<f64>);

/// faer's thin SVD of an f64 matrix: (U m×k, s, V n×k), k = min(m, n). `vectors: false` computes
/// only the singular values (U and V are then empty).
pub(crate) fn faer_thin_svd(a: MatRef<'_, f64>, vectors: bool) -> Result<Triplets, LinalgError> {
    let (m, n) = a.shape();
    let k = m.min(n);
    let par = par();
    let compute = if vectors { ComputeSvdVectors::Thin } else { ComputeSvdVectors::No };
    let mut u = if vectors { Mat::<f64>::zeros(m, k) } else { Mat::zeros(0, 0) };
    let mut v = if vectors { Mat::<f64>::zeros(n, k) } else { Mat::zeros(0, 0) };
    let mut s = Diag::<f64>::zeros(k);
    let mut buf = MemBuffer::new(svd_scratch::<f64>(m, n, compute, compute, par, Default::default()));
    svd(
        a,
        s.as_mut(),
        if vectors { Some(u.as_mut()) } else { None },
        if vectors { Some(v.as_mut()) } else { None },
        par,
        MemStack::new(&mut buf),
        Default::default(),
    )
    .map_err(|_| LinalgError::NoConvergence { what: "svd" })?;
    let s: Vec<f64> = s.column_vector().iter().copied().collect();
    Ok((u, s, v))
}

fn pack(u: MatRef<'_, f64>, s: Vec<f64>, v: MatRef<'_, f64>, rank: usize, exact: bool) -> Svd {
    let (rows, cols) = (u.nrows(), v.nrows());
    let mut uo = vec![0f64; rows * rank];
    for i in 0..rows {
        for j in 0..rank {
            uo[i * rank + j] = u[(i, j)];
        }
    }
    let mut vt = vec![0f64; rank * cols];
    for j in 0..rank {
        let col = v.col(j);
        for (i, x) in col.iter().enumerate() {
            vt[j * cols + i] = *x;
        }
    }
    Svd { rows, cols, rank, u: uo, s, vt, exact }
}

/// The full thin SVD of the row-major rows×cols matrix `a` (rank = min(rows, cols)).
pub fn thin_svd(a: &[f32], rows: usize, cols: usize) -> Result<Svd, LinalgError> {
    let m = to_mat("a", a, rows, cols)?;
    let (u, s, v) = faer_thin_svd(m.as_ref(), true)?;
    Ok(pack(u.as_ref(), s, v.as_ref(), rows.min(cols), true))
}

/// All min(rows, cols) singular values of `a`, descending (no vectors computed).
pub fn singular_values(a: &[f32], rows: usize, cols: usize) -> Result<Vec<f64>, LinalgError> {
    let m = to_mat("a", a, rows, cols)?;
    Ok(faer_thin_svd(m.as_ref(), false)?.1)
}

/// Where `Auto` switches to the randomized SVD: when the sketch width ℓ = rank + oversampling is
/// at most a quarter of min(rows, cols) and min(rows, cols) ≥ 256. Measured in
/// `bench/svd.bench.mjs` (see docs/linalg.md): below that the full SVD is as fast or faster, and
/// it is exact.
pub fn prefers_randomized(rows: usize, cols: usize, rank: usize, oversampling: usize) -> bool {
    let k = rows.min(cols);
    k >= RANDOMIZED_MIN_DIM && (rank + oversampling) * RANDOMIZED_MAX_FRACTION_INV <= k
}

/// See [`prefers_randomized`].
pub const RANDOMIZED_MIN_DIM: usize = 256;
/// See [`prefers_randomized`]: ℓ ≤ min(rows, cols) / 4.
pub const RANDOMIZED_MAX_FRACTION_INV: usize = 4;

/// The top `rank` singular triplets of `a` (1 ≤ rank ≤ min(rows, cols)).
pub fn truncated_svd(a: &[f32], rows: usize, cols: usize, rank: usize, opts: &SvdOptions) -> Result<Svd, LinalgError> {
    let m = to_mat("a", a, rows, cols)?;
    check_rank(rank, rows, cols)?;
    let randomized = match opts.method {
        SvdMethod::Full => false,
        SvdMethod::Randomized => true,
        SvdMethod::Auto => prefers_randomized(rows, cols, rank, opts.oversampling),
    };
    if randomized {
        randomized_of(m.as_ref(), rank, opts)
    } else {
        let (u, s, v) = faer_thin_svd(m.as_ref(), true)?;
        Ok(pack(u.as_ref(), s, v.as_ref(), rank, true))
    }
}

/// The randomized SVD of `a` at `rank` (see the module comment), whatever the sizes.
pub fn randomized_svd(a: &[f32], rows: usize, cols: usize, rank: usize, opts: &SvdOptions) -> Result<Svd, LinalgError> {
    let m = to_mat("a", a, rows, cols)?;
    check_rank(rank, rows, cols)?;
    randomized_of(m.as_ref(), rank, opts)
}

/// Transpose of a row-major rows×cols matrix.
fn transpose_rm(x: &[f64], rows: usize, cols: usize) -> Vec<f64> {
    let mut t = vec![0f64; rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            t[j * rows + i] = x[i * cols + j];
        }
    }
    t
}

fn orthonormal_basis(y: MatRef<'_, f64>) -> Mat<f64> {
    y.qr().compute_thin_Q()
}

fn product(lhs: MatRef<'_, f64>, rhs: MatRef<'_, f64>) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(lhs.nrows(), rhs.ncols());
    matmul(out.as_mut(), Accum::Replace, lhs, rhs, 1.0, par());
    out
}

fn randomized_of(a: MatRef<'_, f64>, rank: usize, opts: &SvdOptions) -> Result<Svd, LinalgError> {
    let (m, n) = a.shape();
    if m < n {
        // Sketch the short side: for a wide matrix work on Aᵀ = V·Σ·Uᵀ (column-major copy) and
        // swap the factors back. Ω is then min(m, n)×ℓ, and every QR is of a tall matrix
        // (with Ω drawn into a Vec first, this took PP-OCRv4 rec's 120×6625 head weight from
        // 45 to 23 ms at rank 16 on 1 thread; the full SVD gains nothing from it: 29 ms both).
        let at = a.transpose().to_owned();
        let t = randomized_of(at.as_ref(), rank, opts)?;
        return Ok(Svd { rows: m, cols: n, rank, u: transpose_rm(&t.vt, rank, m), s: t.s, vt: transpose_rm(&t.u, n, rank), exact: false });
    }
    let l = (rank + opts.oversampling).min(m.min(n));
    let mut rng = Gaussian::new(opts.seed);
    // Ω is drawn in one sequential stream (column by column), so the sketch does not depend on
    // the thread count.
    let draws: Vec<f64> = (0..n * l).map(|_| rng.next()).collect();
    let omega = Mat::<f64>::from_fn(n, l, |i, j| draws[j * n + i]);
    let mut q = orthonormal_basis(product(a, omega.as_ref()).as_ref());
    for _ in 0..opts.power_iterations {
        let z = orthonormal_basis(product(a.transpose(), q.as_ref()).as_ref());
        q = orthonormal_basis(product(a, z.as_ref()).as_ref());
    }
    let b = product(q.as_ref().transpose(), a); // ℓ×n
    let (ub, s, v) = faer_thin_svd(b.as_ref(), true)?;
    let u = product(q.as_ref(), ub.as_ref()); // m×ℓ
    Ok(pack(u.as_ref(), s, v.as_ref(), rank, false))
}

/// Standard normal deviates: xoshiro256++ (Blackman & Vigna) seeded through splitmix64, and the
/// Box–Muller transform.
pub(crate) struct Gaussian {
    s: [u64; 4],
    spare: Option<f64>,
}

impl Gaussian {
    pub(crate) fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut split = || {
            x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        Gaussian { s: [split(), split(), split(), split()], spare: None }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn next(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        self.spare = Some(r * t.sin());
        r * t.cos()
    }
}
