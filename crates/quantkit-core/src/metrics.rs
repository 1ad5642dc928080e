//! Error statistics between a reference tensor and an approximation (SQNR, MSE, max/mean
//! absolute error). Accumulates in f64 so that large tensors keep their precision.
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ErrorStats {
    /// 10·log10(Σx² / Σ(x − y)²); +inf when the two are identical.
    pub sqnr_db: f64,
    pub mse: f64,
    pub max_abs_error: f64,
    pub mean_abs_error: f64,
    /// Elements where either side is NaN or infinite; they are left out of the sums.
    pub non_finite: usize,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LengthMismatch {
    pub reference: usize,
    pub other: usize,
}

impl std::fmt::Display for LengthMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the two tensors differ in length: reference has {} elements, the other {}", self.reference, self.other)
    }
}

impl std::error::Error for LengthMismatch {}

#[derive(Default, Clone, Copy)]
struct Sums {
    signal: f64,
    noise: f64,
    abs: f64,
    max_abs: f64,
    non_finite: usize,
}

impl Sums {
    fn add(mut self, x: f32, y: f32) -> Self {
        if !x.is_finite() || !y.is_finite() {
            self.non_finite += 1;
            return self;
        }
        let (x, d) = (x as f64, x as f64 - y as f64);
        self.signal += x * x;
        self.noise += d * d;
        self.abs += d.abs();
        self.max_abs = self.max_abs.max(d.abs());
        self
    }

    fn combine(self, o: Sums) -> Sums {
        Sums {
            signal: self.signal + o.signal,
            noise: self.noise + o.noise,
            abs: self.abs + o.abs,
            max_abs: self.max_abs.max(o.max_abs),
            non_finite: self.non_finite + o.non_finite,
        }
    }
}

const PARALLEL_THRESHOLD: usize = 1 << 16;
const CHUNK: usize = 1 << 14;

pub fn error_stats(reference: &[f32], other: &[f32]) -> Result<ErrorStats, LengthMismatch> {
    if reference.len() != other.len() {
        return Err(LengthMismatch { reference: reference.len(), other: other.len() });
    }
    let sums = if reference.len() >= PARALLEL_THRESHOLD {
        reference
            .par_chunks(CHUNK)
            .zip(other.par_chunks(CHUNK))
            .map(|(a, b)| a.iter().zip(b).fold(Sums::default(), |s, (&x, &y)| s.add(x, y)))
            .reduce(Sums::default, Sums::combine)
    } else {
        reference.iter().zip(other).fold(Sums::default(), |s, (&x, &y)| s.add(x, y))
    };
    let n = (reference.len() - sums.non_finite) as f64;
    let sqnr_db = if sums.noise == 0.0 { f64::INFINITY } else { 10.0 * (sums.signal / sums.noise).log10() };
    Ok(ErrorStats {
        sqnr_db,
        mse: if n > 0.0 { sums.noise / n } else { 0.0 },
        max_abs_error: sums.max_abs,
        mean_abs_error: if n > 0.0 { sums.abs / n } else { 0.0 },
        non_finite: sums.non_finite,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // signal 1 + 4 + 9 = 14, noise 0.25 + 0 + 1 = 1.25 → 10·log10(11.2)
        let s = error_stats(&[1.0, 2.0, 3.0], &[1.5, 2.0, 2.0]).unwrap();
        assert!((s.sqnr_db - 10.0 * (14.0f64 / 1.25).log10()).abs() < 1e-12);
        assert!((s.mse - 1.25 / 3.0).abs() < 1e-12);
        assert_eq!(s.max_abs_error, 1.0);
        assert!((s.mean_abs_error - 0.5).abs() < 1e-12);
    }

    #[test]
    fn identical_is_infinite_and_non_finite_is_counted() {
        let s = error_stats(&[1.0, f32::NAN, 2.0], &[1.0, 0.0, 2.0]).unwrap();
        assert_eq!(s.sqnr_db, f64::INFINITY);
        assert_eq!(s.non_finite, 1);
    }

    #[test]
    fn parallel_equals_closed_form() {
        // x = 1 everywhere, y = 0.9: SQNR = 10·log10(1 / 0.01) = 20 dB (f32 0.9 is not exact: 1e-6 slack).
        let n = 1 << 20;
        let s = error_stats(&vec![1.0; n], &vec![0.9; n]).unwrap();
        assert!((s.sqnr_db - 20.0).abs() < 1e-5, "{}", s.sqnr_db);
    }

    #[test]
    fn length_mismatch_names_both_lengths() {
        let e = error_stats(&[1.0], &[1.0, 2.0]).unwrap_err();
        assert!(e.to_string().contains("1 elements") && e.to_string().contains("other 2"));
    }
}
