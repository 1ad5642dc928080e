//! Deterministic test distributions (xorshift64*, Box–Muller).

pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1), 53 bits.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub(crate) fn uniform(n: usize, seed: u64, lo: f64, hi: f64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n).map(|_| (lo + (hi - lo) * r.next_f64()) as f32).collect()
}

pub(crate) fn gaussian(n: usize, seed: u64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let u1 = 1.0 - r.next_f64();
        let u2 = r.next_f64();
        let m = (-2.0 * u1.ln()).sqrt();
        let a = 2.0 * std::f64::consts::PI * u2;
        out.push((m * a.cos()) as f32);
        if out.len() < n {
            out.push((m * a.sin()) as f32);
        }
    }
    out
}

/// Laplace(0, b): −b·sign(u)·ln(1 − 2|u|), u uniform in (−½, ½).
pub(crate) fn laplace(n: usize, seed: u64, b: f64) -> Vec<f32> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|_| {
            let u = r.next_f64() - 0.5;
            (-b * u.signum() * (1.0 - 2.0 * u.abs()).max(f64::MIN_POSITIVE).ln()) as f32
        })
        .collect()
}
