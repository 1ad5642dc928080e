//! Checks of the SVD, least squares and rank arithmetic against references written here, which
//! share no code with faer: a one-sided Jacobi SVD (Hestenes), Gram–Schmidt for random orthogonal
//! matrices, plain triple-loop products, and closed forms worked by hand.

use super::least_squares::least_squares;
use super::low_rank::{low_rank_factors, matrix_cost_ratio, matrix_rank_for_ratio, rank_for_cost_ratio, round_down_to_multiple, round_up_to_multiple, Split};
use super::svd::{randomized_svd, singular_values, thin_svd, truncated_svd, SvdMethod, SvdOptions};
use super::{cholesky_lower, LinalgError};

struct Lcg(u64);
impl Lcg {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
}

fn random_f32(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut g = Lcg(seed);
    (0..rows * cols).map(|_| g.uniform() as f32).collect()
}

fn to_f64(a: &[f32]) -> Vec<f64> {
    a.iter().map(|&x| x as f64).collect()
}

/// Row-major (m×k)·(k×n).
fn mm(a: &[f64], b: &[f64], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for p in 0..k {
            let v = a[i * k + p];
            for j in 0..n {
                c[i * n + j] += v * b[p * n + j];
            }
        }
    }
    c
}

fn tr(a: &[f64], m: usize, n: usize) -> Vec<f64> {
    let mut t = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            t[j * m + i] = a[i * n + j];
        }
    }
    t
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0f64, |m, x| m.max(x.abs()))
}

fn max_abs_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs()))
}

fn frob2(a: &[f64]) -> f64 {
    a.iter().map(|x| x * x).sum()
}

/// One-sided Jacobi SVD (Hestenes 1958; Demmel & Veselić 1992) of a row-major m×n matrix:
/// rotates pairs of columns until all are orthogonal. Returns (U m×k, σ descending, V n×k) with
/// k = min(m, n); wide matrices go through the transpose.
fn jacobi_svd(a: &[f64], m: usize, n: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    if m < n {
        let (u, s, v) = jacobi_svd(&tr(a, m, n), n, m);
        return (v, s, u);
    }
    // Work on columns: w[j] is column j of A, v[j] column j of V.
    let mut w: Vec<Vec<f64>> = (0..n).map(|j| (0..m).map(|i| a[i * n + j]).collect()).collect();
    let mut v: Vec<Vec<f64>> = (0..n).map(|j| (0..n).map(|i| if i == j { 1.0 } else { 0.0 }).collect()).collect();
    for _sweep in 0..100 {
        let mut off = 0f64;
        for p in 0..n {
            for q in p + 1..n {
                let alpha: f64 = w[p].iter().map(|x| x * x).sum();
                let beta: f64 = w[q].iter().map(|x| x * x).sum();
                let gamma: f64 = w[p].iter().zip(&w[q]).map(|(x, y)| x * y).sum();
                if gamma == 0.0 || gamma.abs() <= 1e-15 * (alpha * beta).sqrt() {
                    continue;
                }
                off = off.max(gamma.abs() / (alpha * beta).sqrt());
                let zeta = (beta - alpha) / (2.0 * gamma);
                let t = zeta.signum() / (zeta.abs() + (1.0 + zeta * zeta).sqrt());
                let t = if zeta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (1.0 + t * t).sqrt();
                let s = c * t;
                for i in 0..m {
                    let (x, y) = (w[p][i], w[q][i]);
                    w[p][i] = c * x - s * y;
                    w[q][i] = s * x + c * y;
                }
                for i in 0..n {
                    let (x, y) = (v[p][i], v[q][i]);
                    v[p][i] = c * x - s * y;
                    v[q][i] = s * x + c * y;
                }
            }
        }
        if off < 1e-15 {
            break;
        }
    }
    let mut order: Vec<(f64, usize)> = w.iter().enumerate().map(|(j, c)| (c.iter().map(|x| x * x).sum::<f64>().sqrt(), j)).collect();
    order.sort_by(|a, b| b.0.partial_cmp(&a.0).unwrap());
    let k = n;
    let mut u = vec![0f64; m * k];
    let mut vv = vec![0f64; n * k];
    let mut s = vec![0f64; k];
    for (col, &(sigma, j)) in order.iter().enumerate() {
        s[col] = sigma;
        for i in 0..m {
            u[i * k + col] = if sigma > 0.0 { w[j][i] / sigma } else { 0.0 };
        }
        for i in 0..n {
            vv[i * k + col] = v[j][i];
        }
    }
    (u, s, vv)
}

/// A random n×n orthogonal matrix: modified Gram–Schmidt (twice) on a random matrix.
fn random_orthogonal(n: usize, seed: u64) -> Vec<f64> {
    let mut g = Lcg(seed);
    let mut cols: Vec<Vec<f64>> = Vec::with_capacity(n);
    while cols.len() < n {
        let mut c: Vec<f64> = (0..n).map(|_| g.uniform()).collect();
        for _ in 0..2 {
            for q in &cols {
                let d: f64 = q.iter().zip(&c).map(|(x, y)| x * y).sum();
                for (ci, qi) in c.iter_mut().zip(q) {
                    *ci -= d * qi;
                }
            }
        }
        let norm = c.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 1e-8 {
            cols.push(c.into_iter().map(|x| x / norm).collect());
        }
    }
    let mut q = vec![0f64; n * n];
    for (j, c) in cols.iter().enumerate() {
        for i in 0..n {
            q[i * n + j] = c[i];
        }
    }
    q
}

/// Q1[:, :k]·diag(σ)·Q2[:, :k]ᵀ as f32, with σ given, and the exact σ of the f32 matrix
/// (from the Jacobi reference, since rounding to f32 moves them by ~1e-7·σ₁).
fn known_spectrum(m: usize, n: usize, sigma: &[f64], seed: u64) -> (Vec<f32>, Vec<f64>) {
    let k = sigma.len();
    let q1 = random_orthogonal(m, seed);
    let q2 = random_orthogonal(n, seed + 1);
    let mut us = vec![0f64; m * k];
    for i in 0..m {
        for j in 0..k {
            us[i * k + j] = q1[i * m + j] * sigma[j];
        }
    }
    let mut q2t = vec![0f64; k * n];
    for j in 0..k {
        for i in 0..n {
            q2t[j * n + i] = q2[i * n + j];
        }
    }
    let a: Vec<f32> = mm(&us, &q2t, m, k, n).iter().map(|&x| x as f32).collect();
    let s = jacobi_svd(&to_f64(&a), m, n).1;
    (a, s)
}

fn assert_orthonormal_columns(q: &[f64], rows: usize, cols: usize, tol: f64, what: &str) {
    let g = mm(&tr(q, rows, cols), q, cols, rows, cols);
    for i in 0..cols {
        for j in 0..cols {
            let want = if i == j { 1.0 } else { 0.0 };
            assert!((g[i * cols + j] - want).abs() <= tol, "{what}: (QᵀQ)[{i},{j}] = {}", g[i * cols + j]);
        }
    }
}

const SHAPES: [(usize, usize); 7] = [(30, 12), (12, 30), (16, 16), (1, 7), (7, 1), (64, 40), (3, 50)];

#[test]
fn thin_svd_reconstructs_random_matrices_with_orthonormal_factors() {
    for (seed, &(m, n)) in SHAPES.iter().enumerate() {
        let a = random_f32(m, n, seed as u64 + 1);
        let svd = thin_svd(&a, m, n).unwrap();
        let k = m.min(n);
        assert_eq!((svd.rank, svd.u.len(), svd.vt.len(), svd.s.len()), (k, m * k, k * n, k));
        assert!(svd.exact);
        let mut us = svd.u.clone();
        for i in 0..m {
            for j in 0..k {
                us[i * k + j] *= svd.s[j];
            }
        }
        let back = mm(&us, &svd.vt, m, k, n);
        let a64 = to_f64(&a);
        assert!(max_abs_diff(&back, &a64) <= 1e-13 * (1.0 + max_abs(&a64)) * (m.max(n) as f64), "{m}×{n}: U·S·Vᵀ ≠ A");
        assert_orthonormal_columns(&svd.u, m, k, 1e-13, "U");
        assert_orthonormal_columns(&tr(&svd.vt, k, n), n, k, 1e-13, "V");
        assert!(svd.s.windows(2).all(|w| w[0] >= w[1]) && svd.s[k - 1] >= 0.0, "σ not descending");
    }
}

#[test]
fn singular_values_match_the_jacobi_reference() {
    for (seed, &(m, n)) in SHAPES.iter().enumerate() {
        let a = random_f32(m, n, 100 + seed as u64);
        let (_, want, _) = jacobi_svd(&to_f64(&a), m, n);
        let from_svd = thin_svd(&a, m, n).unwrap().s;
        let only = singular_values(&a, m, n).unwrap();
        for (got, name) in [(&from_svd, "thin_svd"), (&only, "singular_values")] {
            assert_eq!(got.len(), want.len());
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!((g - w).abs() <= 1e-12 * want[0], "{name} {m}×{n} σ[{i}]: {g} vs reference {w}");
            }
        }
    }
}

#[test]
fn truncation_error_is_the_discarded_singular_values() {
    // Eckart–Young–Mirsky: ‖A − A_r‖_F² = Σ_{i>r} σᵢ², ‖A − A_r‖₂ = σ_{r+1}; σ from the Jacobi
    // reference, the spectral norm of the error from the Jacobi SVD of the error matrix itself.
    let (m, n) = (24, 17);
    let a = random_f32(m, n, 7);
    let a64 = to_f64(&a);
    let (_, sigma, _) = jacobi_svd(&a64, m, n);
    for r in [1, 2, 5, 10, 16] {
        let f = low_rank_factors(&a, m, n, r, Split::Right, &SvdOptions { method: SvdMethod::Full, ..Default::default() }).unwrap();
        // Rebuild A_r in f64 from the f64 SVD, not from the f32 factors.
        let svd = truncated_svd(&a, m, n, r, &SvdOptions { method: SvdMethod::Full, ..Default::default() }).unwrap();
        let mut us = svd.u.clone();
        for i in 0..m {
            for j in 0..r {
                us[i * r + j] *= svd.s[j];
            }
        }
        let ar = mm(&us, &svd.vt, m, r, n);
        let err: Vec<f64> = a64.iter().zip(&ar).map(|(x, y)| x - y).collect();
        let discarded: f64 = sigma[r..].iter().map(|s| s * s).sum();
        assert!((frob2(&err) - discarded).abs() <= 1e-11 * frob2(&a64), "r={r}: ‖A−A_r‖²_F {} vs Σσ² {discarded}", frob2(&err));
        let spectral = jacobi_svd(&err, m, n).1[0];
        assert!((spectral - sigma[r]).abs() <= 1e-11 * sigma[0], "r={r}: ‖A−A_r‖₂ {spectral} vs σ_(r+1) {}", sigma[r]);
        // The f32 factors carry the same truncation, to f32 rounding.
        let lr = mm(&to_f64(&f.left), &to_f64(&f.right), m, r, n);
        let err32: Vec<f64> = a64.iter().zip(&lr).map(|(x, y)| x - y).collect();
        assert!((frob2(&err32).sqrt() - discarded.sqrt()).abs() <= 1e-5 * frob2(&a64).sqrt(), "r={r}: f32 factors");
    }
}

#[test]
fn full_rank_factors_reproduce_the_matrix_for_every_split() {
    for &(m, n) in &[(20, 13), (13, 20), (9, 9)] {
        let a = random_f32(m, n, 55);
        let a64 = to_f64(&a);
        let (_, sigma, _) = jacobi_svd(&a64, m, n);
        let k = m.min(n);
        for split in [Split::Balanced, Split::Left, Split::Right] {
            let f = low_rank_factors(&a, m, n, k, split, &SvdOptions::default()).unwrap();
            assert!(f.exact);
            let (l, r) = (to_f64(&f.left), to_f64(&f.right));
            let back = mm(&l, &r, m, k, n);
            assert!(max_abs_diff(&back, &a64) <= 2e-6 * max_abs(&a64), "{m}×{n} {split:?}: left·right ≠ A");
            // How σ is shared: LᵀL and R·Rᵀ are diagonal with these entries (U, V orthonormal).
            let (want_l, want_r): (Vec<f64>, Vec<f64>) = sigma
                .iter()
                .map(|&s| match split {
                    Split::Balanced => (s, s),
                    Split::Left => (s * s, 1.0),
                    Split::Right => (1.0, s * s),
                })
                .unzip();
            let ltl = mm(&tr(&l, m, k), &l, k, m, k);
            let rrt = mm(&r, &tr(&r, k, n), k, n, k);
            for i in 0..k {
                for j in 0..k {
                    let (wl, wr) = if i == j { (want_l[i], want_r[i]) } else { (0.0, 0.0) };
                    assert!((ltl[i * k + j] - wl).abs() <= 1e-5 * (1.0 + want_l[0]), "{split:?} LᵀL[{i},{j}]");
                    assert!((rrt[i * k + j] - wr).abs() <= 1e-5 * (1.0 + want_r[0]), "{split:?} RRᵀ[{i},{j}]");
                }
            }
        }
    }
}

#[test]
fn randomized_svd_recovers_a_known_spectrum() {
    // Geometric decay σᵢ = 0.8ⁱ: with ℓ = r + 10 and 2 power iterations, HMT's bound makes the
    // relative error of the top r values ≲ (σ_(ℓ+1)/σ_r)^(2q+1) = 0.8^50 ≈ 1e-5; we allow 1e-4.
    let (m, n, r) = (300, 200, 12);
    let sigma: Vec<f64> = (0..n).map(|i| 0.8f64.powi(i as i32)).collect();
    let (a, exact) = known_spectrum(m, n, &sigma, 11);
    for seed in [0, 1, 12345] {
        let svd = randomized_svd(&a, m, n, r, &SvdOptions { method: SvdMethod::Randomized, seed, ..Default::default() }).unwrap();
        assert!(!svd.exact);
        assert_eq!(svd.s.len(), r + 10);
        for i in 0..r {
            assert!((svd.s[i] - exact[i]).abs() <= 1e-4 * exact[i], "seed {seed} σ[{i}] {} vs {}", svd.s[i], exact[i]);
        }
        assert_orthonormal_columns(&svd.u, m, r, 1e-12, "randomized U");
        assert_orthonormal_columns(&tr(&svd.vt, r, n), n, r, 1e-12, "randomized V");
    }
    // A wide matrix goes through its transpose; same accuracy, factors of the right shapes.
    let (a, exact) = known_spectrum(n, m, &sigma, 13);
    let svd = randomized_svd(&a, n, m, r, &SvdOptions::default()).unwrap();
    assert_eq!((svd.rows, svd.cols, svd.u.len(), svd.vt.len()), (n, m, n * r, r * m));
    for i in 0..r {
        assert!((svd.s[i] - exact[i]).abs() <= 1e-4 * exact[i], "wide σ[{i}] {} vs {}", svd.s[i], exact[i]);
    }
    assert_orthonormal_columns(&svd.u, n, r, 1e-12, "wide randomized U");
    assert_orthonormal_columns(&tr(&svd.vt, r, m), m, r, 1e-12, "wide randomized V");
    // U·diag(σ)·Vᵀ is the best rank-r approximation to within the tolerance of σ: its residual
    // is within 1e-3 of √Σ_{i>r} σᵢ².
    let mut us = svd.u.clone();
    for i in 0..n {
        for j in 0..r {
            us[i * r + j] *= svd.s[j];
        }
    }
    let back = mm(&us, &svd.vt, n, r, m);
    let resid: f64 = to_f64(&a).iter().zip(&back).map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt();
    let optimal: f64 = exact[r..].iter().map(|s| s * s).sum::<f64>().sqrt();
    assert!((resid - optimal).abs() <= 1e-3 * optimal, "wide residual {resid} vs optimal {optimal}");
    // A slowly decaying spectrum (σᵢ = 1/(1+i)) is the hard case: the top r are still within 2 %.
    let sigma: Vec<f64> = (0..n).map(|i| 1.0 / (1.0 + i as f64)).collect();
    let (a, exact) = known_spectrum(m, n, &sigma, 21);
    let svd = randomized_svd(&a, m, n, r, &SvdOptions::default()).unwrap();
    for i in 0..r {
        assert!((svd.s[i] - exact[i]).abs() <= 2e-2 * exact[i], "slow decay σ[{i}] {} vs {}", svd.s[i], exact[i]);
    }
    // An exactly rank-8 matrix is recovered to rounding by a sketch wider than its rank.
    let sigma: Vec<f64> = (0..8).map(|i| 10.0 - i as f64).collect();
    let (a, exact) = known_spectrum(120, 90, &sigma, 31);
    let svd = randomized_svd(&a, 120, 90, 8, &SvdOptions::default()).unwrap();
    for i in 0..8 {
        assert!((svd.s[i] - exact[i]).abs() <= 1e-9 * exact[0], "rank-8 σ[{i}]");
    }
}

#[test]
fn randomized_svd_is_deterministic_for_a_seed() {
    let a = random_f32(80, 60, 3);
    let opts = SvdOptions { method: SvdMethod::Randomized, seed: 9, ..Default::default() };
    let x = randomized_svd(&a, 80, 60, 5, &opts).unwrap();
    let y = randomized_svd(&a, 80, 60, 5, &opts).unwrap();
    assert_eq!((x.u, x.s, x.vt), (y.u, y.s, y.vt));
}

#[test]
fn auto_picks_full_for_small_or_wide_sketches() {
    let a = random_f32(40, 30, 4);
    assert!(truncated_svd(&a, 40, 30, 3, &SvdOptions::default()).unwrap().exact);
    assert!(super::svd::prefers_randomized(2048, 512, 16, 10));
    assert!(!super::svd::prefers_randomized(2048, 512, 200, 10));
    assert!(!super::svd::prefers_randomized(200, 200, 2, 10));
}

#[test]
fn svd_arguments_are_checked_and_named() {
    let a = random_f32(4, 3, 1);
    match thin_svd(&a, 4, 4) {
        Err(e @ LinalgError::ShapeMismatch { arg: "a", .. }) => assert!(e.to_string().starts_with("a: expected 4×4 = 16 elements, got 12")),
        other => panic!("{other:?}"),
    }
    let mut bad = a.clone();
    bad[5] = f32::NAN;
    assert!(matches!(singular_values(&bad, 4, 3), Err(LinalgError::NonFinite { arg: "a", index: 5, .. })));
    bad[5] = f32::INFINITY;
    assert!(matches!(thin_svd(&bad, 4, 3), Err(LinalgError::NonFinite { arg: "a", index: 5, .. })));
    for rank in [0, 4] {
        match truncated_svd(&a, 4, 3, rank, &SvdOptions::default()) {
            Err(e @ LinalgError::RankOutOfRange { arg: "rank", max: 3, .. }) => assert!(e.to_string().contains("1..=3")),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(thin_svd(&[], 0, 3), Err(LinalgError::ShapeMismatch { arg: "a", .. })));
}

#[test]
fn least_squares_matches_hand_computed_cases() {
    // A = [[1,0],[0,1],[1,1]], b = [1,2,4]: AᵀA = [[2,1],[1,2]], Aᵀb = [5,6],
    // x = ⅓·[[2,−1],[−1,2]]·[5,6] = [4/3, 7/3]; with ridge 1: (AᵀA+I)⁻¹ = ⅛·[[3,−1],[−1,3]],
    // x = [9/8, 13/8].
    let a = [1f32, 0., 0., 1., 1., 1.];
    let b = [1f32, 2., 4.];
    let x = least_squares(&a, 3, 2, &b, 1, 0.0).unwrap();
    assert!((x[0] - 4. / 3.).abs() < 1e-6 && (x[1] - 7. / 3.).abs() < 1e-6, "{x:?}");
    let x = least_squares(&a, 3, 2, &b, 1, 1.0).unwrap();
    assert!((x[0] - 9. / 8.).abs() < 1e-6 && (x[1] - 13. / 8.).abs() < 1e-6, "{x:?}");
    // Two right-hand sides at once; the second, b = A·[1,−1], fits exactly.
    let b2 = [1f32, 1., 2., -1., 4., 0.];
    let x = least_squares(&a, 3, 2, &b2, 2, 0.0).unwrap();
    let want = [4. / 3., 1., 7. / 3., -1.];
    for (g, w) in x.iter().zip(want) {
        assert!((*g as f64 - w).abs() < 1e-6, "{x:?}");
    }
    // One column: x = a·b / (a·a + ridge).
    let col = [1f32, 2., 3.];
    let rhs = [2f32, 1., 1.];
    let x = least_squares(&col, 3, 1, &rhs, 1, 0.5).unwrap();
    assert!((x[0] as f64 - 7.0 / 14.5).abs() < 1e-7);
}

#[test]
fn least_squares_solves_the_normal_equations_on_random_problems() {
    // Reference: the hand-written Cholesky (cholesky.rs, no faer) and two triangular solves;
    // and, independently of any solver, the optimality condition Aᵀ(A·X − B) + ridge·X = 0.
    for (seed, &(m, n, k, ridge)) in [(200usize, 30usize, 3usize, 0.0f64), (50, 20, 1, 1e-3), (64, 64, 4, 0.1), (10, 25, 2, 0.5)].iter().enumerate() {
        let a = random_f32(m, n, 70 + seed as u64);
        let b = random_f32(m, k, 90 + seed as u64);
        let x = least_squares(&a, m, n, &b, k, ridge).unwrap();
        let (a64, b64) = (to_f64(&a), to_f64(&b));
        let mut g = mm(&tr(&a64, m, n), &a64, n, m, n);
        for i in 0..n {
            g[i * n + i] += ridge;
        }
        let rhs = mm(&tr(&a64, m, n), &b64, n, m, k);
        let l = cholesky_lower(&g, n).unwrap();
        let mut want = vec![0f64; n * k];
        for c in 0..k {
            let mut y = vec![0f64; n];
            for i in 0..n {
                let s: f64 = (0..i).map(|j| l[i * n + j] * y[j]).sum();
                y[i] = (rhs[i * k + c] - s) / l[i * n + i];
            }
            for i in (0..n).rev() {
                let s: f64 = (i + 1..n).map(|j| l[j * n + i] * want[j * k + c]).sum();
                want[i * k + c] = (y[i] - s) / l[i * n + i];
            }
        }
        let x64 = to_f64(&x);
        assert!(max_abs_diff(&x64, &want) <= 1e-5 * (1.0 + max_abs(&want)), "{m}×{n} k={k} ridge={ridge}");
        let resid: Vec<f64> = mm(&a64, &want, m, n, k).iter().zip(&b64).map(|(p, q)| p - q).collect();
        let grad = mm(&tr(&a64, m, n), &resid, n, m, k);
        for i in 0..n * k {
            assert!((grad[i] + ridge * want[i]).abs() <= 1e-9 * (1.0 + max_abs(&rhs)), "gradient {i}");
        }
    }
}

#[test]
fn least_squares_rank_deficiency_needs_a_ridge() {
    // Columns 0 and 2 equal: singular without ridge. With ridge λ the minimum-norm symmetry
    // makes x₀ = x₂ and the problem collapses to one column c = a₀ counted twice.
    let (m, n) = (6, 3);
    let base = random_f32(m, 2, 5);
    let a: Vec<f32> = (0..m).flat_map(|i| [base[i * 2], base[i * 2 + 1], base[i * 2]]).collect();
    let b = random_f32(m, 1, 6);
    match least_squares(&a, m, n, &b, 1, 0.0) {
        Err(e @ LinalgError::RankDeficient { arg: "a", .. }) => assert!(e.to_string().contains("ridge > 0"), "{e}"),
        other => panic!("{other:?}"),
    }
    let ridge = 0.25;
    let x = least_squares(&a, m, n, &b, 1, ridge).unwrap();
    assert!((x[0] - x[2]).abs() < 1e-6);
    let x64 = to_f64(&x);
    let a64 = to_f64(&a);
    let resid: Vec<f64> = (0..m).map(|i| (0..n).map(|j| a64[i * n + j] * x64[j]).sum::<f64>() - b[i] as f64).collect();
    for j in 0..n {
        let g: f64 = (0..m).map(|i| a64[i * n + j] * resid[i]).sum::<f64>() + ridge * x64[j];
        assert!(g.abs() < 1e-5, "gradient {j}: {g}");
    }
    // Fewer samples than unknowns.
    let wide = random_f32(2, 5, 8);
    match least_squares(&wide, 2, 5, &[1., 2.], 1, 0.0) {
        Err(e @ LinalgError::RankDeficient { .. }) => assert!(e.to_string().contains("2 rows (samples) cannot determine 5 columns"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert!(least_squares(&wide, 2, 5, &[1., 2.], 1, 1e-2).is_ok());
    // A zero column.
    let z = [1f32, 0., 2., 0., 3., 0.];
    assert!(matches!(least_squares(&z, 3, 2, &[1., 1., 1.], 1, 0.0), Err(LinalgError::RankDeficient { .. })));
}

#[test]
fn least_squares_arguments_are_checked_and_named() {
    let a = [1f32, 2., 3., 4.];
    assert!(matches!(least_squares(&a, 2, 2, &[1., 2., 3.], 1, 0.0), Err(LinalgError::ShapeMismatch { arg: "b", .. })));
    assert!(matches!(least_squares(&a, 3, 2, &[1., 2., 3.], 1, 0.0), Err(LinalgError::ShapeMismatch { arg: "a", .. })));
    assert!(matches!(least_squares(&a, 2, 2, &[1., f32::NAN], 1, 0.0), Err(LinalgError::NonFinite { arg: "b", index: 1, .. })));
    for ridge in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(least_squares(&a, 2, 2, &[1., 2.], 1, ridge), Err(LinalgError::InvalidValue { arg: "ridge", .. })));
    }
    assert!(matches!(least_squares(&a, 2, 2, &[], 0, 0.0), Err(LinalgError::ShapeMismatch { arg: "k", .. })));
}

#[test]
fn rank_arithmetic() {
    // 512×512 at half the cost: r·1024 ≤ 0.5·262144 → r = 128.
    assert_eq!(matrix_rank_for_ratio(512, 512, 0.5).unwrap(), 128);
    assert!((matrix_cost_ratio(512, 512, 128) - 0.5).abs() < 1e-15);
    // Out 64, in 32·3·3 = 288: r·352 ≤ 0.3·18432 = 5529.6 → r = 15.
    assert_eq!(matrix_rank_for_ratio(64, 288, 0.3).unwrap(), 15);
    // A ratio beyond what factoring can save is capped at full rank; a tiny one keeps rank 1.
    assert_eq!(matrix_rank_for_ratio(10, 1000, 5.0).unwrap(), 10);
    assert_eq!(matrix_rank_for_ratio(100, 100, 1e-6).unwrap(), 1);
    assert_eq!(rank_for_cost_ratio(1000.0, 10.0, 0.5, 64).unwrap(), 50);
    assert!(matches!(rank_for_cost_ratio(1000.0, 10.0, 0.0, 64), Err(LinalgError::InvalidValue { arg: "ratio", .. })));
    assert!(matches!(rank_for_cost_ratio(1000.0, -1.0, 0.5, 64), Err(LinalgError::InvalidValue { arg: "costPerRank", .. })));
    // AIMET's round_up_to_multiplicity: ceil to the multiple, capped at the maximum.
    assert_eq!(round_up_to_multiple(13, 8, 64).unwrap(), 16);
    assert_eq!(round_up_to_multiple(16, 8, 64).unwrap(), 16);
    assert_eq!(round_up_to_multiple(61, 8, 62).unwrap(), 62);
    assert_eq!(round_up_to_multiple(1, 8, 5).unwrap(), 5);
    assert_eq!(round_down_to_multiple(13, 8, 64).unwrap(), 8);
    assert_eq!(round_down_to_multiple(3, 8, 64).unwrap(), 8);
    assert_eq!(round_down_to_multiple(3, 8, 6).unwrap(), 6);
    assert!(matches!(round_up_to_multiple(3, 0, 6), Err(LinalgError::InvalidValue { arg: "rankMultiple", .. })));
}
