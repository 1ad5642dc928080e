//! Dense symmetric-positive-definite linear algebra in f64, row-major n×n, for the GPTQ solver
//! (gptq.rs): Cholesky factorisation, inverse of a lower-triangular matrix, and the upper
//! Cholesky factor of an inverse. No external crate; O(n³) with rayon over independent rows or
//! columns, fine up to n = 4096 (a few seconds on 2 cores).

use rayon::prelude::*;

use super::LinalgError;


fn check(a: &[f64], n: usize) -> Result<(), LinalgError> {
    if a.len() != n * n {
        return Err(LinalgError::Shape { n, len: a.len() });
    }
    Ok(())
}

/// Four-accumulator dot product (the compiler does not reassociate f64 sums by itself).
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut s = [0f64; 4];
    let chunks = len / 4;
    for c in 0..chunks {
        for l in 0..4 {
            s[l] += a[c * 4 + l] * b[c * 4 + l];
        }
    }
    let mut t = (s[0] + s[1]) + (s[2] + s[3]);
    for i in chunks * 4..len {
        t += a[i] * b[i];
    }
    t
}

/// Lower-triangular L with A = L·Lᵀ (the upper triangle of the result is zero). Reads only the
/// lower triangle of `a`. Left-looking by columns: column j's entries below the diagonal are
/// independent dot products of rows of L already computed, so they run in parallel.
pub fn cholesky_lower(a: &[f64], n: usize) -> Result<Vec<f64>, LinalgError> {
    check(a, n)?;
    let mut l = vec![0f64; n * n];
    for j in 0..n {
        let (done, rest) = l.split_at_mut((j + 1) * n);
        let row_j = &mut done[j * n..(j + 1) * n];
        let pivot = a[j * n + j] - dot(&row_j[..j], &row_j[..j]);
        if pivot.is_nan() || pivot <= 0.0 || !pivot.is_finite() {
            return Err(LinalgError::NotPositiveDefinite { index: j, pivot });
        }
        let d = pivot.sqrt();
        row_j[j] = d;
        let row_j = &*row_j;
        let work = (n - j - 1) * j;
        let each = |(r, row_i): (usize, &mut [f64])| {
            let i = j + 1 + r;
            row_i[j] = (a[i * n + j] - dot(&row_i[..j], &row_j[..j])) / d;
        };
        if work >= 1 << 14 {
            rest.par_chunks_mut(n).enumerate().for_each(each);
        } else {
            rest.chunks_mut(n).enumerate().for_each(each);
        }
    }
    Ok(l)
}

/// X = L⁻¹ for lower-triangular L with a non-zero diagonal (row-major; X is lower-triangular).
/// Column j of X solves L·x = e_j by forward substitution; columns are independent, so each is
/// computed (contiguously, as a row of Xᵀ) on its own.
pub fn invert_lower(l: &[f64], n: usize) -> Result<Vec<f64>, LinalgError> {
    check(l, n)?;
    let mut xt = vec![0f64; n * n]; // row j of xt = column j of X
    let each = |(j, col): (usize, &mut [f64])| {
        col[j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let s = dot(&l[i * n + j..i * n + i], &col[j..i]);
            col[i] = -s / l[i * n + i];
        }
    };
    if n >= 64 {
        xt.par_chunks_mut(n).enumerate().for_each(each);
    } else {
        xt.chunks_mut(n).enumerate().for_each(each);
    }
    Ok(transpose(&xt, n))
}

pub fn transpose(a: &[f64], n: usize) -> Vec<f64> {
    let mut t = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            t[j * n + i] = a[i * n + j];
        }
    }
    t
}

/// Reverses both the row and the column order (P·A·P with P the exchange matrix).
fn reverse_both(a: &[f64], n: usize) -> Vec<f64> {
    let mut r = vec![0f64; n * n];
    for i in 0..n {
        for j in 0..n {
            r[(n - 1 - i) * n + (n - 1 - j)] = a[i * n + j];
        }
    }
    r
}

/// Upper-triangular U with A⁻¹ = Uᵀ·U (positive diagonal), for SPD A: what GPTQ's reference code
/// computes as `cholesky(cholesky_inverse(cholesky(H)), upper=True)`. Computed here with one
/// Cholesky and one triangular inverse instead of two Cholesky factorisations and an inverse:
/// with P the exchange matrix, P·A·P = L'·L'ᵀ gives A = R·Rᵀ with R = P·L'·P upper-triangular, so
/// A⁻¹ = R⁻ᵀ·R⁻¹ and U = R⁻¹ = P·L'⁻¹·P (unique, as a Cholesky factor with positive diagonal is).
pub fn upper_cholesky_of_inverse(a: &[f64], n: usize) -> Result<Vec<f64>, LinalgError> {
    check(a, n)?;
    let lr = cholesky_lower(&reverse_both(a, n), n).map_err(|e| match e {
        LinalgError::NotPositiveDefinite { index, pivot } => LinalgError::NotPositiveDefinite { index: n - 1 - index, pivot },
        other => other,
    })?;
    Ok(reverse_both(&invert_lower(&lr, n)?, n))
}

/// C = A·B for n×n row-major matrices (tests and small checks; not blocked for speed).
pub fn matmul(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut c = vec![0f64; n * n];
    for i in 0..n {
        for k in 0..n {
            let v = a[i * n + k];
            if v == 0.0 {
                continue;
            }
            for j in 0..n {
                c[i * n + j] += v * b[k * n + j];
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: &[f64], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() <= tol * (1.0 + y.abs()), "element {i}: {x} vs {y}");
        }
    }

    /// A random SPD matrix: M·Mᵀ + n·I.
    fn spd(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let m: Vec<f64> = (0..n * n)
            .map(|_| {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
            })
            .collect();
        let mut a = matmul(&m, &transpose(&m, n), n);
        for i in 0..n {
            a[i * n + i] += n as f64;
        }
        a
    }

    #[test]
    fn cholesky_of_closed_form_matrices() {
        // [[4, 2], [2, 3]] = L·Lᵀ with L = [[2, 0], [1, √2]].
        let l = cholesky_lower(&[4.0, 2.0, 2.0, 3.0], 2).unwrap();
        close(&l, &[2.0, 0.0, 1.0, 2f64.sqrt()], 1e-15);
        // L = [[1,0,0],[2,3,0],[4,5,6]] → A = L·Lᵀ = [[1,2,4],[2,13,23],[4,23,77]].
        let l = cholesky_lower(&[1.0, 2.0, 4.0, 2.0, 13.0, 23.0, 4.0, 23.0, 77.0], 3).unwrap();
        close(&l, &[1.0, 0.0, 0.0, 2.0, 3.0, 0.0, 4.0, 5.0, 6.0], 1e-14);
    }

    #[test]
    fn lower_inverse_of_a_closed_form_matrix() {
        // [[1,0,0],[2,1,0],[3,4,1]]⁻¹ = [[1,0,0],[−2,1,0],[5,−4,1]].
        let x = invert_lower(&[1.0, 0.0, 0.0, 2.0, 1.0, 0.0, 3.0, 4.0, 1.0], 3).unwrap();
        close(&x, &[1.0, 0.0, 0.0, -2.0, 1.0, 0.0, 5.0, -4.0, 1.0], 0.0);
        // diag(2, 4) with 1 below: [[1/2, 0], [−1/8, 1/4]].
        let x = invert_lower(&[2.0, 0.0, 1.0, 4.0], 2).unwrap();
        close(&x, &[0.5, 0.0, -0.125, 0.25], 0.0);
    }

    #[test]
    fn upper_cholesky_of_inverse_closed_form() {
        // A = [[4, 2], [2, 3]], A⁻¹ = [[3, −2], [−2, 4]] / 8 = Uᵀ·U with
        // U = [[a, b], [0, c]]: a² = 3/8, a·b = −1/4, b² + c² = 1/2 → a = √(3/8), b = −1/(4a), c = √(1/2 − b²) = 1/√3.
        let a = (3.0f64 / 8.0).sqrt();
        let b = -0.25 / a;
        let c = (0.5 - b * b).sqrt();
        assert!((c - 1.0 / 3f64.sqrt()).abs() < 1e-15);
        let u = upper_cholesky_of_inverse(&[4.0, 2.0, 2.0, 3.0], 2).unwrap();
        close(&u, &[a, b, 0.0, c], 1e-15);
        // Diagonal: U = diag(1/√d).
        let u = upper_cholesky_of_inverse(&[4.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.25], 3).unwrap();
        close(&u, &[0.5, 0.0, 0.0, 0.0, 1.0 / 3.0, 0.0, 0.0, 0.0, 2.0], 1e-15);
    }

    #[test]
    fn the_shortcut_equals_the_reference_route_on_random_matrices() {
        // Reference (GPTQ's code): L = chol(A); A⁻¹ = L⁻ᵀ·L⁻¹; U = chol(A⁻¹)ᵀ.
        for &n in &[1usize, 5, 33, 130] {
            let a = spd(n, n as u64);
            let l = cholesky_lower(&a, n).unwrap();
            close(&matmul(&l, &transpose(&l, n), n), &a, 1e-12);
            let li = invert_lower(&l, n).unwrap();
            close(&matmul(&l, &li, n), &identity(n), 1e-12);
            let inv = matmul(&transpose(&li, n), &li, n);
            close(&matmul(&a, &inv, n), &identity(n), 1e-12);
            let reference = transpose(&cholesky_lower(&inv, n).unwrap(), n);
            let u = upper_cholesky_of_inverse(&a, n).unwrap();
            close(&u, &reference, 1e-10);
            for i in 0..n {
                for j in 0..i {
                    assert_eq!(u[i * n + j], 0.0);
                }
            }
        }
    }

    fn identity(n: usize) -> Vec<f64> {
        let mut m = vec![0f64; n * n];
        for i in 0..n {
            m[i * n + i] = 1.0;
        }
        m
    }

    #[test]
    fn errors() {
        assert_eq!(cholesky_lower(&[1.0, 2.0, 3.0], 2), Err(LinalgError::Shape { n: 2, len: 3 }));
        assert!(matches!(cholesky_lower(&[1.0, 2.0, 2.0, 1.0], 2), Err(LinalgError::NotPositiveDefinite { index: 1, .. })));
        assert!(matches!(upper_cholesky_of_inverse(&[0.0, 0.0, 0.0, 1.0], 2), Err(LinalgError::NotPositiveDefinite { index: 0, .. })));
    }
}
