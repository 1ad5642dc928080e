//! ONNX Gemm and MatMul, forward and backward, on the blocked [`sgemm`](super::sgemm).
//!
//! - Gemm: `Y = α·A'·B' + β·C`, A' = Aᵀ when `trans_a`, B' = Bᵀ when `trans_b` (a Linear layer
//!   is `trans_b` with W [N, K]); C broadcasts unidirectionally to [M, N] (scalar, [N], [1, N],
//!   [M, 1], [M, N]).
//! - MatMul: numpy semantics: leading (batch) dimensions broadcast, a 1-D A is a row vector and a
//!   1-D B a column vector whose unit dimension is dropped from Y. A weight with no batch
//!   dimensions (the AdaRound/SeqMSE case) makes the whole call one GEMM of [batch·M, K]·[K, N].
//!
//! Backward: `dA' = α·dY·B'ᵀ`, `dB' = α·A'ᵀ·dY`, `dC = β·Σ dY` over C's broadcast axes; MatMul
//! sums gradients of broadcast operands over the batch entries that used them.

use super::error::{check_len, LayerError};
use super::gemm_call;
use super::sgemm::MatRef;

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GemmAttrs {
    pub alpha: f32,
    pub beta: f32,
    pub trans_a: bool,
    pub trans_b: bool,
}

impl Default for GemmAttrs {
    fn default() -> Self {
        GemmAttrs { alpha: 1.0, beta: 1.0, trans_a: false, trans_b: false }
    }
}

#[derive(Clone, Debug)]
pub struct Gemm {
    m: usize,
    k: usize,
    n: usize,
    attrs: GemmAttrs,
    /// C's extent along Y's rows and columns (1 = broadcast), when there is a C.
    c: Option<(usize, usize)>,
}

/// Where `Gemm::backward` writes each gradient (`db` is the gradient of B, `dc` of C).
#[derive(Default)]
pub struct GemmGrads<'a> {
    pub da: Option<&'a mut [f32]>,
    pub db: Option<&'a mut [f32]>,
    pub dc: Option<&'a mut [f32]>,
}

fn rank2(arg: &'static str, s: &[usize]) -> Result<(usize, usize), LayerError> {
    match s {
        [r, c] => Ok((*r, *c)),
        _ => Err(LayerError::Rank { arg, expected: "2", got: s.len() }),
    }
}

impl Gemm {
    pub fn new(a_shape: &[usize], b_shape: &[usize], c_shape: Option<&[usize]>, attrs: GemmAttrs) -> Result<Self, LayerError> {
        let (a0, a1) = rank2("a", a_shape)?;
        let (b0, b1) = rank2("b", b_shape)?;
        let (m, k) = if attrs.trans_a { (a1, a0) } else { (a0, a1) };
        let (kb, n) = if attrs.trans_b { (b1, b0) } else { (b0, b1) };
        if k != kb {
            return Err(LayerError::shape("b", format!(
                "its inner dimension is {kb} (shape {b_shape:?}, transB = {}) but A's is {k} (shape {a_shape:?}, transA = {})",
                attrs.trans_b as u8, attrs.trans_a as u8
            )));
        }
        let c = match c_shape {
            None => None,
            Some(s) => {
                let (r, col) = match s {
                    [] => (1, 1),
                    [x] => (1, *x),
                    [x, y] => (*x, *y),
                    _ => return Err(LayerError::Rank { arg: "c", expected: "0, 1 or 2", got: s.len() }),
                };
                if (r != 1 && r != m) || (col != 1 && col != n) {
                    return Err(LayerError::shape("c", format!("shape {s:?} does not broadcast to the output [{m}, {n}]")));
                }
                Some((r, col))
            }
        };
        Ok(Gemm { m, k, n, attrs, c })
    }

    pub fn output_shape(&self) -> Vec<usize> {
        vec![self.m, self.n]
    }

    pub fn macs(&self) -> usize {
        self.m * self.n * self.k
    }

    fn a_view<'a>(&self, a: &'a [f32]) -> MatRef<'a> {
        if self.attrs.trans_a { MatRef::row_major(a, self.k, self.m).t() } else { MatRef::row_major(a, self.m, self.k) }
    }

    fn b_view<'a>(&self, b: &'a [f32]) -> MatRef<'a> {
        if self.attrs.trans_b { MatRef::row_major(b, self.n, self.k).t() } else { MatRef::row_major(b, self.k, self.n) }
    }

    pub fn forward(&self, a: &[f32], b: &[f32], c: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        let (m, k, n) = (self.m, self.k, self.n);
        check_len("a", m * k, a.len())?;
        check_len("b", k * n, b.len())?;
        check_len("y", m * n, y.len())?;
        let cdims = match (c, self.c) {
            (Some(c), Some((r, col))) => {
                check_len("c", r * col, c.len())?;
                Some((c, r, col))
            }
            (None, None) => None,
            _ => return Err(LayerError::shape("c", "given to forward but not to Gemm::new (or the other way round)")),
        };
        gemm_call(true, self.a_view(a), self.b_view(b), y, n, false);
        let GemmAttrs { alpha, beta, .. } = self.attrs;
        match cdims {
            Some((c, r, col)) if beta != 0.0 => {
                for i in 0..m {
                    let crow = &c[if r == 1 { 0 } else { i * col }..];
                    for (j, v) in y[i * n..(i + 1) * n].iter_mut().enumerate() {
                        *v = alpha * *v + beta * crow[if col == 1 { 0 } else { j }];
                    }
                }
            }
            _ if alpha != 1.0 => y.iter_mut().for_each(|v| *v *= alpha),
            _ => {}
        }
        Ok(())
    }

    pub fn backward(&self, a: &[f32], b: &[f32], dy: &[f32], grads: GemmGrads) -> Result<(), LayerError> {
        let (m, k, n) = (self.m, self.k, self.n);
        check_len("a", m * k, a.len())?;
        check_len("b", k * n, b.len())?;
        check_len("dy", m * n, dy.len())?;
        let GemmAttrs { alpha, beta, trans_a, trans_b } = self.attrs;
        let dyv = MatRef::row_major(dy, m, n);
        let scale = |v: &mut [f32]| {
            if alpha != 1.0 {
                v.iter_mut().for_each(|x| *x *= alpha)
            }
        };
        if let Some(da) = grads.da {
            check_len("da", m * k, da.len())?;
            let bv = self.b_view(b);
            if trans_a {
                gemm_call(true, bv, dyv.t(), da, m, false); // [K, M] = B'·dYᵀ
            } else {
                gemm_call(true, dyv, bv.t(), da, k, false); // [M, K] = dY·B'ᵀ
            }
            scale(da);
        }
        if let Some(db) = grads.db {
            check_len("db", k * n, db.len())?;
            let av = self.a_view(a);
            if trans_b {
                gemm_call(true, dyv.t(), av, db, k, false); // [N, K] = dYᵀ·A'
            } else {
                gemm_call(true, av.t(), dyv, db, n, false); // [K, N] = A'ᵀ·dY
            }
            scale(db);
        }
        if let Some(dc) = grads.dc {
            let Some((r, col)) = self.c else {
                return Err(LayerError::shape("dc", "requested but the Gemm has no C"));
            };
            check_len("dc", r * col, dc.len())?;
            let mut acc = vec![0f64; r * col];
            for i in 0..m {
                for j in 0..n {
                    acc[if r == 1 { 0 } else { i } * col + if col == 1 { 0 } else { j }] += dy[i * n + j] as f64;
                }
            }
            for (d, s) in dc.iter_mut().zip(acc) {
                *d = beta * s as f32;
            }
        }
        Ok(())
    }
}

/// A resolved MatMul: numpy broadcasting of the batch dimensions, precomputed.
#[derive(Clone, Debug)]
pub struct MatMul {
    m: usize,
    k: usize,
    n: usize,
    out_shape: Vec<usize>,
    /// Per output batch entry, the matrix index into A and into B.
    batch: Vec<(usize, usize)>,
    a_mats: usize,
    b_mats: usize,
}

/// Where `MatMul::backward` writes each gradient.
#[derive(Default)]
pub struct MatMulGrads<'a> {
    pub da: Option<&'a mut [f32]>,
    pub db: Option<&'a mut [f32]>,
}

impl MatMul {
    pub fn new(a_shape: &[usize], b_shape: &[usize]) -> Result<Self, LayerError> {
        if a_shape.is_empty() {
            return Err(LayerError::Rank { arg: "a", expected: "at least 1", got: 0 });
        }
        if b_shape.is_empty() {
            return Err(LayerError::Rank { arg: "b", expected: "at least 1", got: 0 });
        }
        let a_vec = a_shape.len() == 1;
        let b_vec = b_shape.len() == 1;
        let a2: Vec<usize> = if a_vec { vec![1, a_shape[0]] } else { a_shape.to_vec() };
        let b2: Vec<usize> = if b_vec { vec![b_shape[0], 1] } else { b_shape.to_vec() };
        let (m, k) = (a2[a2.len() - 2], a2[a2.len() - 1]);
        let (kb, n) = (b2[b2.len() - 2], b2[b2.len() - 1]);
        if k != kb {
            return Err(LayerError::shape("b", format!("its dimension −2 is {kb} (shape {b_shape:?}) but A's last is {k} (shape {a_shape:?})")));
        }
        let ab = &a2[..a2.len() - 2];
        let bb = &b2[..b2.len() - 2];
        let rank = ab.len().max(bb.len());
        let pad = |s: &[usize]| -> Vec<usize> { std::iter::repeat(1).take(rank - s.len()).chain(s.iter().copied()).collect() };
        let (ap, bp) = (pad(ab), pad(bb));
        let mut ob = Vec::with_capacity(rank);
        for i in 0..rank {
            let (x, y) = (ap[i], bp[i]);
            if x != y && x != 1 && y != 1 {
                return Err(LayerError::shape("b", format!("batch dimensions of {b_shape:?} do not broadcast with A's {a_shape:?}")));
            }
            ob.push(if x == 1 { y } else { x });
        }
        let count: usize = ob.iter().product();
        let mut batch = Vec::with_capacity(count);
        let mut idx = vec![0usize; rank];
        for _ in 0..count {
            let (mut ia, mut ib) = (0, 0);
            for d in 0..rank {
                ia = ia * ap[d] + if ap[d] == 1 { 0 } else { idx[d] };
                ib = ib * bp[d] + if bp[d] == 1 { 0 } else { idx[d] };
            }
            batch.push((ia, ib));
            for d in (0..rank).rev() {
                idx[d] += 1;
                if idx[d] < ob[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        let mut out_shape = ob;
        if !a_vec {
            out_shape.push(m);
        }
        if !b_vec {
            out_shape.push(n);
        }
        Ok(MatMul { m, k, n, out_shape, batch, a_mats: ap.iter().product(), b_mats: bp.iter().product() })
    }

    pub fn output_shape(&self) -> Vec<usize> {
        self.out_shape.clone()
    }

    pub fn macs(&self) -> usize {
        self.batch.len() * self.m * self.n * self.k
    }

    /// B shared by every batch entry and A not broadcast: one [batch·M, K]·[K, N] product.
    fn flat(&self) -> bool {
        self.b_mats == 1 && self.a_mats == self.batch.len()
    }

    fn check(&self, a: &[f32], b: &[f32], y_name: &'static str, y: usize) -> Result<(), LayerError> {
        check_len("a", self.a_mats * self.m * self.k, a.len())?;
        check_len("b", self.b_mats * self.k * self.n, b.len())?;
        check_len(y_name, self.batch.len() * self.m * self.n, y)
    }

    pub fn forward(&self, a: &[f32], b: &[f32], y: &mut [f32]) -> Result<(), LayerError> {
        self.check(a, b, "y", y.len())?;
        let (m, k, n) = (self.m, self.k, self.n);
        if self.flat() {
            let rows = self.batch.len() * m;
            gemm_call(true, MatRef::row_major(a, rows, k), MatRef::row_major(b, k, n), y, n, false);
            return Ok(());
        }
        for (t, &(ia, ib)) in self.batch.iter().enumerate() {
            let am = MatRef::row_major(&a[ia * m * k..(ia + 1) * m * k], m, k);
            let bm = MatRef::row_major(&b[ib * k * n..(ib + 1) * k * n], k, n);
            gemm_call(true, am, bm, &mut y[t * m * n..(t + 1) * m * n], n, false);
        }
        Ok(())
    }

    pub fn backward(&self, a: &[f32], b: &[f32], dy: &[f32], grads: MatMulGrads) -> Result<(), LayerError> {
        self.check(a, b, "dy", dy.len())?;
        let (m, k, n) = (self.m, self.k, self.n);
        if let Some(da) = grads.da {
            check_len("da", a.len(), da.len())?;
            if self.flat() {
                let rows = self.batch.len() * m;
                gemm_call(true, MatRef::row_major(dy, rows, n), MatRef::row_major(b, k, n).t(), da, k, false);
            } else {
                let mut seen = vec![false; self.a_mats];
                for (t, &(ia, ib)) in self.batch.iter().enumerate() {
                    let dym = MatRef::row_major(&dy[t * m * n..(t + 1) * m * n], m, n);
                    let bt = MatRef::row_major(&b[ib * k * n..(ib + 1) * k * n], k, n).t();
                    gemm_call(true, dym, bt, &mut da[ia * m * k..(ia + 1) * m * k], k, seen[ia]);
                    seen[ia] = true;
                }
                zero_unseen(da, &seen, m * k);
            }
        }
        if let Some(db) = grads.db {
            check_len("db", b.len(), db.len())?;
            if self.flat() {
                let rows = self.batch.len() * m;
                gemm_call(true, MatRef::row_major(a, rows, k).t(), MatRef::row_major(dy, rows, n), db, n, false);
            } else {
                let mut seen = vec![false; self.b_mats];
                for (t, &(ia, ib)) in self.batch.iter().enumerate() {
                    let at = MatRef::row_major(&a[ia * m * k..(ia + 1) * m * k], m, k).t();
                    let dym = MatRef::row_major(&dy[t * m * n..(t + 1) * m * n], m, n);
                    gemm_call(true, at, dym, &mut db[ib * k * n..(ib + 1) * k * n], n, seen[ib]);
                    seen[ib] = true;
                }
                zero_unseen(db, &seen, k * n);
            }
        }
        Ok(())
    }
}

/// Matrices no batch entry touched (only possible with an empty batch) get a zero gradient.
fn zero_unseen(d: &mut [f32], seen: &[bool], size: usize) {
    for (i, &s) in seen.iter().enumerate() {
        if !s {
            d[i * size..(i + 1) * size].fill(0.0);
        }
    }
}
