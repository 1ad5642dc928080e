//! GPTQ (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training Quantization for
//! Generative Pre-trained Transformers", arXiv:2210.17323, and its reference code `gptq.py`) for a
//! MatMul weight `W` [K, N] (y = x·W: rows of W are inputs, columns outputs), to the block grid of
//! [`crate::nbits`] so that the result packs into MatMulNBits / blocked DequantizeLinear unchanged.
//!
//! # What is computed
//! - [`Hessian`] accumulates Σ xᵀx over calibration rows x ∈ ℝᴷ in f64 (never keeping the rows);
//!   `H = 2·XᵀX / n`.
//! - Dead inputs (diag H = 0: an input that was zero in every row) get `H[i,i] = 1` and their row of
//!   W is set to 0, as the reference code does (`dead = diag(H) == 0; H[dead, dead] = 1; W[:, dead] = 0`).
//! - Dampening `λ = percdamp · mean(diag H)` (percdamp 0.01 by default) is added to the diagonal.
//! - `U` = upper Cholesky factor of H⁻¹ ([`crate::linalg::upper_cholesky_of_inverse`]).
//! - Rows k = 0 … K−1 of W are quantized in order, in lazy batches of 128 rows (or the group size,
//!   if larger): row k is rounded to its group's grid, the error `e = (w_k − ŵ_k) / U[k,k]` is
//!   propagated to the rows after it within the batch at once (`w_j −= U[k,j]·e`), and to the rows
//!   after the batch in one matrix product when the batch ends (the paper's "lazy batch updates").
//! - Groups (the MatMulNBits blocks of `block_size` rows): each group's scale and zero point are
//!   chosen when the solver *enters* the group, from the group's weights as they are at that point
//!   (already updated by the errors of all earlier rows), with the same rule as round-to-nearest
//!   ([`crate::nbits::block_grid`]). This is the paper's group-wise variant (its §4 "grouping"):
//!   grids that follow the updated weights, rather than `static_groups` (grids fixed from the
//!   original weights before the solve). No activation reordering (`act_order`): groups stay
//!   contiguous blocks of K, which is what MatMulNBits stores.
//! - Rounding of each row is [`crate::affine::quantize`] (x / scale, half to even, add the zero
//!   point, saturate), exactly as round-to-nearest: with H a multiple of the identity, U is diagonal,
//!   no error is propagated, and the codes, scales and zero points are those of
//!   [`crate::nbits::quantize_blockwise`] bit for bit (tested).
//!
//! Output columns are independent under GPTQ (each column's updates use only that column's errors
//! and the shared U), so the solve runs in parallel (rayon) over stripes of N columns.

use crate::affine::{self, AffineSpec, Granularity};
use crate::linalg::{self, LinalgError};
use crate::nbits::{self, BlockQuantized, NbitsError, NbitsSpec};
use rayon::prelude::*;
use std::fmt;

/// Rows per lazy batch (the reference code's `blocksize=128`).
pub const LAZY_BATCH: usize = 128;
/// The reference code's default `percdamp`.
pub const DEFAULT_DAMP_PERCENT: f64 = 0.01;

#[derive(Clone, Debug, PartialEq)]
pub enum GptqError {
    Nbits(NbitsError),
    Linalg(LinalgError),
    /// Input rows of the wrong width, or a Hessian of the wrong size.
    Shape(String),
    NonFiniteInput { index: usize, value: f32 },
    NoData,
    Damp(f64),
}

impl fmt::Display for GptqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GptqError::Nbits(e) => write!(f, "{e}"),
            GptqError::Linalg(e) => write!(f, "{e} (even after dampening; try a larger dampPercent)"),
            GptqError::Shape(m) => write!(f, "{m}"),
            GptqError::NonFiniteInput { index, value } => {
                write!(f, "the layer input holds a non-finite value ({value}) at flat index {index}")
            }
            GptqError::NoData => write!(f, "no calibration rows were accumulated into the Hessian"),
            GptqError::Damp(d) => write!(f, "dampPercent: expected a finite number > 0, got {d}"),
        }
    }
}

impl std::error::Error for GptqError {}

impl From<NbitsError> for GptqError {
    fn from(e: NbitsError) -> Self {
        GptqError::Nbits(e)
    }
}
impl From<LinalgError> for GptqError {
    fn from(e: LinalgError) -> Self {
        GptqError::Linalg(e)
    }
}

/// Running Σ xᵀx (f64, K×K, upper triangle) over calibration rows, and their count.
#[derive(Clone, Debug)]
pub struct Hessian {
    k: usize,
    sum: Vec<f64>,
    rows: u64,
}

/// Rows per transposed chunk in [`Hessian::update`] (bounds its scratch to K·256 f64).
const UPDATE_ROWS: usize = 256;

impl Hessian {
    pub fn new(k: usize) -> Self {
        Hessian { k, sum: vec![0f64; k * k], rows: 0 }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds the rows of `x` ([rows, K] row-major, any leading shape flattened) to Σ xᵀx.
    pub fn update(&mut self, x: &[f32]) -> Result<(), GptqError> {
        let k = self.k;
        if k == 0 || x.len() % k != 0 {
            return Err(GptqError::Shape(format!("the layer input has {} elements, not a multiple of K = {k}", x.len())));
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(GptqError::NonFiniteInput { index, value: x[index] });
        }
        let mut xt = vec![0f64; k * UPDATE_ROWS];
        for chunk in x.chunks(UPDATE_ROWS * k) {
            let r = chunk.len() / k;
            for (t, row) in chunk.chunks_exact(k).enumerate() {
                for (i, v) in row.iter().enumerate() {
                    xt[i * r + t] = *v as f64;
                }
            }
            let xt = &xt[..k * r];
            let each = |(i, out): (usize, &mut [f64])| {
                let xi = &xt[i * r..(i + 1) * r];
                for j in i..k {
                    out[j] += linalg::dot(xi, &xt[j * r..(j + 1) * r]);
                }
            };
            if k * k * r >= 1 << 16 {
                self.sum.par_chunks_mut(k).enumerate().for_each(each);
            } else {
                self.sum.chunks_mut(k).enumerate().for_each(each);
            }
        }
        self.rows += (x.len() / k) as u64;
        Ok(())
    }

    /// Adds another accumulator's rows (two nodes reading one weight share one Hessian).
    pub fn merge(&mut self, other: &Hessian) -> Result<(), GptqError> {
        if other.k != self.k {
            return Err(GptqError::Shape(format!("cannot merge a Hessian of K = {} into one of K = {}", other.k, self.k)));
        }
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        self.rows += other.rows;
        Ok(())
    }

    /// H = 2·XᵀX / n, full symmetric K×K.
    pub fn matrix(&self) -> Result<Vec<f64>, GptqError> {
        if self.rows == 0 {
            return Err(GptqError::NoData);
        }
        let (k, f) = (self.k, 2.0 / self.rows as f64);
        let mut h = vec![0f64; k * k];
        for i in 0..k {
            for j in i..k {
                let v = self.sum[i * k + j] * f;
                h[i * k + j] = v;
                h[j * k + i] = v;
            }
        }
        Ok(h)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GptqOptions {
    /// λ = damp_percent · mean(diag H). Default 0.01.
    pub damp_percent: f64,
    /// Also compute ‖X(W − Ŵ)‖²/n for GPTQ's and round-to-nearest's Ŵ (costs ~2·K²·N more flops).
    pub measure_output_error: bool,
}

impl Default for GptqOptions {
    fn default() -> Self {
        GptqOptions { damp_percent: DEFAULT_DAMP_PERCENT, measure_output_error: true }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct GptqResult {
    /// Codes, scales, zero points in nbits.rs's layout; SQNR is of Ŵ against the original W.
    pub quantized: BlockQuantized,
    /// Inputs whose diag(H) was 0 (their rows of W were set to 0 before quantizing).
    pub dead_inputs: usize,
    /// The λ added to diag(H).
    pub damp: f64,
    /// ‖X(W − Ŵ)‖² / n = tr(ΔᵀHΔ)/2 with the undamped H: GPTQ's and round-to-nearest's.
    pub output_error: Option<f64>,
    pub output_error_rtn: Option<f64>,
}

/// GPTQ of W [K, N] (row-major) given H [K, K] (= 2·XᵀX/n, see [`Hessian::matrix`]).
pub fn gptq_quantize(w: &[f32], h: &[f64], spec: NbitsSpec, opts: GptqOptions) -> Result<GptqResult, GptqError> {
    spec.check()?;
    let (k, n) = (spec.k, spec.n);
    if w.len() != k * n {
        return Err(NbitsError::Length { expected: k * n, got: w.len() }.into());
    }
    if h.len() != k * k {
        return Err(GptqError::Shape(format!("the Hessian has {} elements, expected K² = {}", h.len(), k * k)));
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(NbitsError::NonFinite { index, value: w[index] }.into());
    }
    if opts.damp_percent.is_nan() || opts.damp_percent <= 0.0 || !opts.damp_percent.is_finite() {
        return Err(GptqError::Damp(opts.damp_percent));
    }

    let mut hd = h.to_vec();
    let dead: Vec<bool> = (0..k).map(|i| h[i * k + i] == 0.0).collect();
    for i in 0..k {
        if dead[i] {
            hd[i * k + i] = 1.0;
        }
    }
    let damp = opts.damp_percent * (0..k).map(|i| hd[i * k + i]).sum::<f64>() / k as f64;
    for i in 0..k {
        hd[i * k + i] += damp;
    }
    let u = linalg::upper_cholesky_of_inverse(&hd, k)?;
    drop(hd);
    // Uᵀ in f32 (the reference code's precision for the updates): row j holds U[·, j], so both the
    // in-batch update (U[i, j] for j > i) and the lazy product (U[i1..i2, j]) read memory contiguously per j.
    let mut ut = vec![0f32; k * k];
    for i in 0..k {
        for j in i..k {
            ut[j * k + i] = u[i * k + j] as f32;
        }
    }
    drop(u);

    let stripe = stripe_width(n);
    let stripes: Vec<usize> = (0..n).step_by(stripe).collect();
    let solved: Vec<Stripe> = stripes
        .par_iter()
        .map(|&c0| solve_stripe(w, &ut, &dead, spec, c0, stripe.min(n - c0)))
        .collect::<Result<_, _>>()?;

    let nb = spec.blocks();
    let mut codes = vec![0u8; k * n];
    let mut scales = vec![0f32; nb * n];
    let mut zero_points = vec![0u8; nb * n];
    for (s, &c0) in solved.iter().zip(&stripes) {
        let nc = s.width;
        for r in 0..k {
            codes[r * n + c0..r * n + c0 + nc].copy_from_slice(&s.codes[r * nc..(r + 1) * nc]);
        }
        for g in 0..nb {
            scales[g * n + c0..g * n + c0 + nc].copy_from_slice(&s.scales[g * nc..(g + 1) * nc]);
            zero_points[g * n + c0..g * n + c0 + nc].copy_from_slice(&s.zero_points[g * nc..(g + 1) * nc]);
        }
    }
    let (mut signal, mut noise) = (0f64, 0f64);
    let deq = dequantize(&codes, &scales, &zero_points, spec);
    for (x, r) in w.iter().zip(&deq) {
        let (x, e) = (*x as f64, *x as f64 - *r as f64);
        signal += x * x;
        noise += e * e;
    }
    let quantized = BlockQuantized { spec, codes, scales, zero_points, signal_power: signal, noise_power: noise };

    let (output_error, output_error_rtn) = if opts.measure_output_error {
        let rtn = nbits::quantize_blockwise(w, spec)?;
        let rtn_deq = dequantize(&rtn.codes, &rtn.scales, &rtn.zero_points, spec);
        (Some(output_error(h, w, &deq, k, n)), Some(output_error(h, w, &rtn_deq, k, n)))
    } else {
        (None, None)
    };
    Ok(GptqResult { quantized, dead_inputs: dead.iter().filter(|d| **d).count(), damp, output_error, output_error_rtn })
}

/// Columns per parallel task: enough stripes for rayon to balance, wide enough to vectorise.
fn stripe_width(n: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    n.div_ceil(4 * threads).clamp(16, 64).min(n.max(1))
}

/// ŵ = (code − zero point) · scale, in f32 as DequantizeLinear computes it.
pub fn dequantize(codes: &[u8], scales: &[f32], zero_points: &[u8], spec: NbitsSpec) -> Vec<f32> {
    let (n, bs) = (spec.n, spec.block_size);
    codes
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let p = (i / n / bs) * n + i % n;
            (c as i32 - zero_points[p] as i32) as f32 * scales[p]
        })
        .collect()
}

/// tr(ΔᵀHΔ)/2 with Δ = W − Ŵ: ‖X·Δ‖²/n when H = 2·XᵀX/n.
pub fn output_error(h: &[f64], w: &[f32], deq: &[f32], k: usize, n: usize) -> f64 {
    let d: Vec<f64> = w.iter().zip(deq).map(|(a, b)| *a as f64 - *b as f64).collect();
    let total: f64 = (0..k)
        .into_par_iter()
        .map(|i| {
            let mut v = vec![0f64; n];
            let hi = &h[i * k..(i + 1) * k];
            for (j, &hij) in hi.iter().enumerate() {
                if hij == 0.0 {
                    continue;
                }
                for (acc, x) in v.iter_mut().zip(&d[j * n..(j + 1) * n]) {
                    *acc += hij * x;
                }
            }
            v.iter().zip(&d[i * n..(i + 1) * n]).map(|(a, b)| a * b).sum::<f64>()
        })
        .sum();
    total / 2.0
}

struct Stripe {
    width: usize,
    /// [K, width].
    codes: Vec<u8>,
    /// [nb, width].
    scales: Vec<f32>,
    zero_points: Vec<u8>,
}

/// The GPTQ loop over all K rows for columns c0 .. c0 + nc.
fn solve_stripe(w: &[f32], ut: &[f32], dead: &[bool], spec: NbitsSpec, c0: usize, nc: usize) -> Result<Stripe, GptqError> {
    let (k, n, gs) = (spec.k, spec.n, spec.block_size);
    let nb = spec.blocks();
    let mid = 1i64 << (spec.bits - 1);
    let mut wl = vec![0f32; k * nc];
    for r in 0..k {
        if !dead[r] {
            wl[r * nc..(r + 1) * nc].copy_from_slice(&w[r * n + c0..r * n + c0 + nc]);
        }
    }
    let mut codes = vec![0u8; k * nc];
    let mut scales = vec![0f32; nb * nc];
    let mut zero_points = vec![0u8; nb * nc];
    let mut offsets = vec![0i32; nb * nc];
    let batch = LAZY_BATCH.max(gs);
    let mut err = vec![0f32; batch * nc];
    let mut signed = vec![0i8; nc];
    let (mut lo, mut hi) = (vec![0f32; nc], vec![0f32; nc]);
    let shape = [1, nc];

    for i1 in (0..k).step_by(batch) {
        let i2 = (i1 + batch).min(k);
        for i in i1..i2 {
            let g = i / gs;
            if i % gs == 0 {
                // Entering group g: its grid from its rows as they are now (see the module docs).
                lo.iter_mut().for_each(|v| *v = 0.0);
                hi.iter_mut().for_each(|v| *v = 0.0);
                for r in i..(i + gs).min(k) {
                    for c in 0..nc {
                        let v = wl[r * nc + c];
                        if v < lo[c] {
                            lo[c] = v;
                        }
                        if v > hi[c] {
                            hi[c] = v;
                        }
                    }
                }
                for c in 0..nc {
                    let (s, z) = nbits::block_grid(lo[c], hi[c], &spec);
                    scales[g * nc + c] = s;
                    zero_points[g * nc + c] = z;
                    offsets[g * nc + c] = if spec.symmetric { 0 } else { -(z as i32) };
                }
            }
            let (sc, zp) = (&scales[g * nc..(g + 1) * nc], &zero_points[g * nc..(g + 1) * nc]);
            let row = &wl[i * nc..(i + 1) * nc];
            let code_row = &mut codes[i * nc..(i + 1) * nc];
            let aspec_offsets = &offsets[g * nc..(g + 1) * nc];
            let granularity = Granularity::PerChannel { axis: 1 };
            if spec.symmetric {
                let aspec = AffineSpec { shape: &shape, granularity, scale: sc, offset: &[0], qmin: -mid, qmax: mid - 1 };
                affine::quantize(row, &aspec, &mut signed).map_err(NbitsError::from)?;
                for (c, v) in code_row.iter_mut().zip(&signed) {
                    *c = (*v as i64 + mid) as u8;
                }
            } else {
                let aspec = AffineSpec { shape: &shape, granularity, scale: sc, offset: aspec_offsets, qmin: 0, qmax: (1i64 << spec.bits) - 1 };
                affine::quantize(row, &aspec, code_row).map_err(NbitsError::from)?;
            }
            let d = ut[i * k + i];
            let e = &mut err[(i - i1) * nc..(i - i1 + 1) * nc];
            for c in 0..nc {
                let q = (code_row[c] as i32 - zp[c] as i32) as f32 * sc[c];
                e[c] = (row[c] - q) / d;
            }
            // In-batch update of the rows after i: w_j −= U[i, j]·e.
            let e = &err[(i - i1) * nc..(i - i1 + 1) * nc];
            for j in i + 1..i2 {
                let uij = ut[j * k + i];
                if uij != 0.0 {
                    for (wv, ev) in wl[j * nc..(j + 1) * nc].iter_mut().zip(e) {
                        *wv -= uij * ev;
                    }
                }
            }
        }
        // Lazy update of the rows after the batch: W[i2.., :] −= U[i1..i2, i2..]ᵀ · E.
        let count = i2 - i1;
        for j in i2..k {
            let uj = &ut[j * k + i1..j * k + i2];
            let wj = &mut wl[j * nc..(j + 1) * nc];
            for t in 0..count {
                let u = uj[t];
                if u != 0.0 {
                    for (wv, ev) in wj.iter_mut().zip(&err[t * nc..(t + 1) * nc]) {
                        *wv -= u * ev;
                    }
                }
            }
        }
    }
    Ok(Stripe { width: nc, codes, scales, zero_points })
}

/// W stored [N, K] (a Gemm's B with transB=1) to [K, N].
pub fn transpose_nk(w_nk: &[f32], k: usize, n: usize) -> Result<Vec<f32>, GptqError> {
    if w_nk.len() != k * n {
        return Err(NbitsError::Length { expected: k * n, got: w_nk.len() }.into());
    }
    let mut w = vec![0f32; k * n];
    for (c, row) in w_nk.chunks_exact(k.max(1)).enumerate().take(n) {
        for (kk, v) in row.iter().enumerate() {
            w[kk * n + c] = *v;
        }
    }
    Ok(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
        }
        /// Roughly normal (sum of four uniforms, variance 4/3).
        fn normal(&mut self) -> f64 {
            (self.next() + self.next() + self.next() + self.next()) * 0.866
        }
    }

    fn spec(k: usize, n: usize, bits: u32, block_size: usize, symmetric: bool) -> NbitsSpec {
        NbitsSpec { k, n, bits, block_size, symmetric }
    }

    /// X [rows, K] with strongly correlated features: x = z·M with M mixing a few latent factors.
    fn correlated_inputs(rows: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
        let latent = 8;
        let m: Vec<f64> = (0..latent * k).map(|_| rng.normal()).collect();
        let mut x = vec![0f32; rows * k];
        for r in 0..rows {
            let z: Vec<f64> = (0..latent).map(|_| rng.normal()).collect();
            for i in 0..k {
                let mut v = 0.1 * rng.normal();
                for l in 0..latent {
                    v += z[l] * m[l * k + i];
                }
                x[r * k + i] = v as f32;
            }
        }
        x
    }

    fn direct_error(x: &[f32], w: &[f32], deq: &[f32], rows: usize, k: usize, n: usize) -> f64 {
        let mut total = 0f64;
        for r in 0..rows {
            for c in 0..n {
                let mut e = 0f64;
                for i in 0..k {
                    e += x[r * k + i] as f64 * (w[i * n + c] as f64 - deq[i * n + c] as f64);
                }
                total += e * e;
            }
        }
        total / rows as f64
    }

    #[test]
    fn hessian_accumulates_xtx_in_chunks_and_batches() {
        let mut rng = Rng(3);
        let (rows, k) = (600, 7);
        let x: Vec<f32> = (0..rows * k).map(|_| rng.next() as f32).collect();
        let mut h = Hessian::new(k);
        h.update(&x[..100 * k]).unwrap();
        h.update(&x[100 * k..]).unwrap();
        assert_eq!(h.rows(), 600);
        let m = h.matrix().unwrap();
        for i in 0..k {
            for j in 0..k {
                let mut s = 0f64;
                for r in 0..rows {
                    s += x[r * k + i] as f64 * x[r * k + j] as f64;
                }
                let want = 2.0 * s / rows as f64;
                assert!((m[i * k + j] - want).abs() <= 1e-12 * (1.0 + want.abs()), "({i}, {j})");
            }
        }
        assert!(matches!(Hessian::new(3).update(&[1.0; 4]), Err(GptqError::Shape(_))));
        assert!(matches!(Hessian::new(2).update(&[1.0, f32::NAN]), Err(GptqError::NonFiniteInput { index: 1, .. })));
        assert_eq!(Hessian::new(2).matrix(), Err(GptqError::NoData));
    }

    #[test]
    fn identity_hessian_gives_round_to_nearest_exactly() {
        let mut rng = Rng(11);
        for &(k, n, bits, bs, sym) in &[(256, 40, 4, 32, true), (100, 17, 4, 32, false), (300, 9, 8, 128, true), (64, 70, 8, 16, false), (512, 5, 4, 256, true)] {
            let w: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32 * 0.05).collect();
            let mut h = vec![0f64; k * k];
            for i in 0..k {
                h[i * k + i] = 3.5; // any multiple of I
            }
            let sp = spec(k, n, bits, bs, sym);
            let g = gptq_quantize(&w, &h, sp, GptqOptions::default()).unwrap();
            let rtn = nbits::quantize_blockwise(&w, sp).unwrap();
            assert_eq!(g.quantized.codes, rtn.codes, "codes, {k}×{n} int{bits} b{bs}");
            assert_eq!(g.quantized.scales, rtn.scales);
            assert_eq!(g.quantized.zero_points, rtn.zero_points);
            assert_eq!(g.output_error, g.output_error_rtn);
            assert_eq!(g.dead_inputs, 0);
        }
    }

    #[test]
    fn correlated_inputs_give_lower_output_error_than_round_to_nearest() {
        let mut rng = Rng(5);
        let (rows, k, n) = (2048, 128, 48);
        let x = correlated_inputs(rows, k, &mut rng);
        let w: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32 * 0.1).collect();
        let mut acc = Hessian::new(k);
        acc.update(&x).unwrap();
        let h = acc.matrix().unwrap();
        for &sym in &[true, false] {
            let sp = spec(k, n, 4, 32, sym);
            let g = gptq_quantize(&w, &h, sp, GptqOptions::default()).unwrap();
            let rtn = nbits::quantize_blockwise(&w, sp).unwrap();
            let dg = dequantize(&g.quantized.codes, &g.quantized.scales, &g.quantized.zero_points, sp);
            let dr = dequantize(&rtn.codes, &rtn.scales, &rtn.zero_points, sp);
            let (eg, er) = (direct_error(&x, &w, &dg, rows, k, n), direct_error(&x, &w, &dr, rows, k, n));
            assert!(eg < 0.5 * er, "sym={sym}: GPTQ {eg} vs RTN {er}");
            // The reported errors are the same quantity, computed from H.
            assert!((g.output_error.unwrap() - eg).abs() <= 1e-6 * er);
            assert!((g.output_error_rtn.unwrap() - er).abs() <= 1e-6 * er);
            // Codes stay on the grid of the layout (unpackable by nbits.rs).
            let packed = nbits::pack_matmul_nbits(&g.quantized);
            let (codes, ..) = nbits::unpack_matmul_nbits(&packed.b, &packed.scales, packed.zero_points.as_deref(), sp).unwrap();
            assert_eq!(codes, g.quantized.codes);
        }
    }

    #[test]
    fn dead_inputs_are_zeroed_as_in_the_reference_code() {
        let mut rng = Rng(9);
        let (rows, k, n) = (256, 64, 8);
        let mut x = correlated_inputs(rows, k, &mut rng);
        for r in 0..rows {
            x[r * k + 5] = 0.0;
            x[r * k + 40] = 0.0;
        }
        let w: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
        let mut acc = Hessian::new(k);
        acc.update(&x).unwrap();
        let sp = spec(k, n, 4, 32, false);
        let g = gptq_quantize(&w, &acc.matrix().unwrap(), sp, GptqOptions::default()).unwrap();
        assert_eq!(g.dead_inputs, 2);
        let d = dequantize(&g.quantized.codes, &g.quantized.scales, &g.quantized.zero_points, sp);
        for c in 0..n {
            assert_eq!(d[5 * n + c], 0.0);
            assert_eq!(d[40 * n + c], 0.0);
        }
    }

    #[test]
    fn partial_last_group_and_transposed_weights() {
        let mut rng = Rng(21);
        let (rows, k, n) = (512, 100, 12);
        let x = correlated_inputs(rows, k, &mut rng);
        let w: Vec<f32> = (0..k * n).map(|_| rng.normal() as f32).collect();
        let mut acc = Hessian::new(k);
        acc.update(&x).unwrap();
        let h = acc.matrix().unwrap();
        let sp = spec(k, n, 4, 32, true);
        let g = gptq_quantize(&w, &h, sp, GptqOptions::default()).unwrap();
        assert!(g.output_error.unwrap() < g.output_error_rtn.unwrap());
        let mut wt = vec![0f32; k * n];
        for i in 0..k {
            for c in 0..n {
                wt[c * k + i] = w[i * n + c];
            }
        }
        let g2 = gptq_quantize(&transpose_nk(&wt, k, n).unwrap(), &h, sp, GptqOptions::default()).unwrap();
        assert_eq!(g, g2);
    }

    #[test]
    fn bad_arguments() {
        let sp = spec(16, 2, 4, 16, true);
        let h = vec![0f64; 256];
        assert!(matches!(gptq_quantize(&[0.0; 31], &h, sp, GptqOptions::default()), Err(GptqError::Nbits(NbitsError::Length { .. }))));
        assert!(matches!(gptq_quantize(&[0.0; 32], &h[..10], sp, GptqOptions::default()), Err(GptqError::Shape(_))));
        let o = GptqOptions { damp_percent: 0.0, ..Default::default() };
        assert_eq!(gptq_quantize(&[0.0; 32], &h, sp, o), Err(GptqError::Damp(0.0)));
        // All inputs dead: H becomes I, W becomes 0, codes are the zero point.
        let g = gptq_quantize(&[1.0; 32], &h, sp, GptqOptions::default()).unwrap();
        assert_eq!(g.dead_inputs, 16);
        assert!(g.quantized.codes.iter().all(|&c| c == 8));
    }
}

/// Timing at LLM-like sizes: `cargo test --release -p quantkit-core gptq_timing -- --ignored --nocapture`.
#[cfg(test)]
mod timing {
    use super::*;
    use std::time::Instant;

    #[test]
    #[ignore]
    fn gptq_timing() {
        for &(k, n) in &[(1024usize, 1024usize), (4096, 1024)] {
            let x: Vec<f32> = (0..2048 * k).map(|i| (((i as u64).wrapping_mul(2654435761) % 1000) as f32 / 500.0) - 1.0).collect();
            let t = Instant::now();
            let mut acc = Hessian::new(k);
            acc.update(&x).unwrap();
            let h = acc.matrix().unwrap();
            let t_h = t.elapsed().as_secs_f64();
            let t = Instant::now();
            let u = linalg::upper_cholesky_of_inverse(&{
                let mut hd = h.clone();
                for i in 0..k {
                    hd[i * k + i] += 0.01;
                }
                hd
            }, k)
            .unwrap();
            let t_u = t.elapsed().as_secs_f64();
            drop(u);
            let w: Vec<f32> = (0..k * n).map(|i| (((i as u64).wrapping_mul(40503) % 997) as f32 / 498.0) - 1.0).collect();
            let t = Instant::now();
            gptq_quantize(&w, &h, NbitsSpec { k, n, bits: 4, block_size: 32, symmetric: true }, GptqOptions { measure_output_error: false, ..Default::default() }).unwrap();
            let t_s = t.elapsed().as_secs_f64();
            println!("K {k} N {n}: Hessian of 2048 rows {t_h:.2} s; H⁻¹ factor {t_u:.2} s; whole solve {t_s:.2} s ({} rayon threads)", rayon::current_num_threads());
        }
    }
}
