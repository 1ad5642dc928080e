//! ONNX Conv (1-D and 2-D, grouped, depthwise, strides, asymmetric pads, dilations, auto_pad):
//! forward, and backward (dx, dW, db) for AdaRound, SeqMSE and bias correction.
//!
//! Lowering, per sample n and group g: `col = im2col(x[n, g])` ([C/g·kh·kw, OH·OW]), then
//! `y[n, g] = W[g] · col` with W[g] the [M/g, C/g·kh·kw] rows of the weight. A 1×1, stride-1,
//! unpadded conv skips im2col. Backward: `dW[g] = Σₙ dy[n, g] · colᵀ`, `dx[n, g] =
//! col2im(W[g]ᵀ · dy[n, g])`, `db = Σ dy` over batch and positions.

use super::error::{check_len, LayerError};
use super::geometry::{ConvAttrs, Geometry};
use super::im2col::{col2im_add, im2col};
use super::scratch::with_scratch;
use super::sgemm::MatRef;
use super::{gemm_call, run_tasks};
use rayon::prelude::*;

/// A Conv whose shapes and attributes are resolved once; `forward`/`backward` take the data
/// (so a training loop reuses one `Conv` across iterations).
#[derive(Clone, Debug)]
pub struct Conv {
    g: Geometry,
}

/// Where `backward` writes each gradient; `None` skips that gradient. Buffers are overwritten.
#[derive(Default)]
pub struct ConvGrads<'a> {
    pub dx: Option<&'a mut [f32]>,
    pub dw: Option<&'a mut [f32]>,
    pub db: Option<&'a mut [f32]>,
}

impl Conv {
    /// x [N, C, (H,) W], w [M, C/group, (kh,) kw].
    pub fn new(x_shape: &[usize], w_shape: &[usize], attrs: &ConvAttrs) -> Result<Self, LayerError> {
        Ok(Conv { g: Geometry::conv(x_shape, w_shape, attrs)? })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.g
    }

    pub fn output_shape(&self) -> Vec<usize> {
        self.g.y_shape()
    }

    /// Multiply-adds of one forward pass.
    pub fn macs(&self) -> usize {
        self.g.y_len() * self.g.conv_window().rows()
    }

    /// `y = conv(x, w) + bias`; `y` has the output shape's length.
    pub fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        let g = &self.g;
        check_len("x", g.x_len(), x.len())?;
        check_len("w", g.w_len(), w.len())?;
        if let Some(b) = bias {
            check_len("bias", g.out_channels, b.len())?;
        }
        check_len("y", g.y_len(), y.len())?;
        let win = g.conv_window();
        let (kdim, p, xs) = (win.rows(), win.positions(), win.image_len());
        let mg = g.out_channels / g.group;
        run_tasks(y, mg * p, self.macs(), |t, yc, par| {
            let gi = t % g.group;
            let xg = &x[t * xs..(t + 1) * xs];
            let wg = MatRef::row_major(&w[gi * mg * kdim..(gi + 1) * mg * kdim], mg, kdim);
            let bg = bias.map(|b| &b[gi * mg..(gi + 1) * mg]);
            let acc = bias.is_some();
            let run = |col: &[f32], yc: &mut [f32]| {
                if mg <= SMALL_M {
                    small_forward(&w[gi * mg * kdim..(gi + 1) * mg * kdim], mg, kdim, col, p, bg, yc);
                } else {
                    fill_bias(yc, bg, p);
                    gemm_call(par, wg, MatRef::row_major(col, kdim, p), yc, p, acc);
                }
            };
            if win.is_identity() {
                run(xg, yc);
            } else {
                with_scratch(kdim * p, |col| {
                    im2col(&win, xg, col);
                    run(col, yc);
                });
            }
        });
        Ok(())
    }

    /// Gradients of a loss L given `dy = ∂L/∂y`, at input `x` and weight `w`.
    pub fn backward(&self, x: &[f32], w: &[f32], dy: &[f32], grads: ConvGrads) -> Result<(), LayerError> {
        let g = &self.g;
        check_len("x", g.x_len(), x.len())?;
        check_len("w", g.w_len(), w.len())?;
        check_len("dy", g.y_len(), dy.len())?;
        let win = g.conv_window();
        let (kdim, p, xs) = (win.rows(), win.positions(), win.image_len());
        let mg = g.out_channels / g.group;
        let ys = mg * p;
        if let Some(db) = grads.db {
            check_len("db", g.out_channels, db.len())?;
            bias_grad(dy, g.batch, g.out_channels, p, db);
        }
        if let Some(dw) = grads.dw {
            check_len("dw", g.w_len(), dw.len())?;
            // dW[g] = Σₙ dy[n, g]·col(x[n, g])ᵀ; groups in parallel when there are enough of them.
            run_tasks(dw, mg * kdim, self.macs(), |gi, dwg, par| {
                for n in 0..g.batch {
                    let t = n * g.group + gi;
                    let dyg = MatRef::row_major(&dy[t * ys..(t + 1) * ys], mg, p);
                    let xg = &x[t * xs..(t + 1) * xs];
                    if win.is_identity() {
                        gemm_call(par, dyg, MatRef::row_major(xg, kdim, p).t(), dwg, kdim, n > 0);
                    } else {
                        with_scratch(kdim * p, |col| {
                            im2col(&win, xg, col);
                            gemm_call(par, dyg, MatRef::row_major(col, kdim, p).t(), dwg, kdim, n > 0);
                        });
                    }
                }
                if g.batch == 0 {
                    dwg.fill(0.0);
                }
            });
        }
        if let Some(dx) = grads.dx {
            check_len("dx", g.x_len(), dx.len())?;
            run_tasks(dx, xs, self.macs(), |t, dxc, par| {
                let gi = t % g.group;
                let wgt = MatRef::row_major(&w[gi * mg * kdim..(gi + 1) * mg * kdim], mg, kdim).t();
                let dyg = MatRef::row_major(&dy[t * ys..(t + 1) * ys], mg, p);
                if win.is_identity() {
                    gemm_call(par, wgt, dyg, dxc, p, false);
                } else {
                    with_scratch(kdim * p, |col| {
                        gemm_call(par, wgt, dyg, col, p, false);
                        dxc.fill(0.0);
                        col2im_add(&win, col, dxc);
                    });
                }
            });
        }
        Ok(())
    }
}

/// Im2col columns computed once per sample, for loops that run the same inputs many times
/// (AdaRound): `sample_cols` fills `[group][C/g·kh·kw][OH·OW]` for one sample; `forward_cols` and
/// `weight_grad_cols` then take one such slice per sample of the batch (`cols.len()` = batch).
/// A 1×1, stride-1, unpadded conv needs no columns: the sample's x is its own column matrix
/// (`needs_cols()` is false) and may be passed as is.
impl Conv {
    pub fn needs_cols(&self) -> bool {
        !self.g.conv_window().is_identity()
    }

    /// Length of one sample's columns (= the sample's x length when `!needs_cols()`).
    pub fn cols_len(&self) -> usize {
        let win = self.g.conv_window();
        if win.is_identity() {
            win.image_len() * self.g.group
        } else {
            self.g.group * win.rows() * win.positions()
        }
    }

    /// The columns of one sample `x` ([C, (H,) W]) into `cols` (`cols_len()` values).
    pub fn sample_cols(&self, x: &[f32], cols: &mut [f32]) -> Result<(), LayerError> {
        let win = self.g.conv_window();
        let xs = win.image_len();
        check_len("x (one sample)", xs * self.g.group, x.len())?;
        check_len("cols", self.cols_len(), cols.len())?;
        if win.is_identity() {
            cols.copy_from_slice(x);
            return Ok(());
        }
        let cl = win.rows() * win.positions();
        for gi in 0..self.g.group {
            im2col(&win, &x[gi * xs..(gi + 1) * xs], &mut cols[gi * cl..(gi + 1) * cl]);
        }
        Ok(())
    }

    /// Whether caching columns pays: not for thin groups (depthwise), whose columns are 9× the
    /// input and cost more to stream from memory every iteration than im2col does from cache.
    pub fn columns_worth_caching(&self) -> bool {
        self.needs_cols() && self.g.out_channels / self.g.group > SMALL_M
    }

    fn check_sources(&self, src: &[&[f32]], are_cols: bool) -> Result<(), LayerError> {
        check_len("samples", self.g.batch, src.len())?;
        let len = if are_cols { self.cols_len() } else { self.g.x_len() / self.g.batch.max(1) };
        for c in src {
            check_len(if are_cols { "cols" } else { "x (one sample)" }, len, c.len())?;
        }
        Ok(())
    }

    /// `forward` from precomputed columns (one slice per sample, see `sample_cols`).
    pub fn forward_cols(&self, cols: &[&[f32]], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        self.forward_from(cols, true, w, bias, y)
    }

    /// `forward` with the samples given one slice each (no copy into a batch).
    pub fn forward_samples(&self, xs: &[&[f32]], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        self.forward_from(xs, false, w, bias, y)
    }

    fn forward_from(&self, src: &[&[f32]], are_cols: bool, w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        let g = &self.g;
        self.check_sources(src, are_cols)?;
        check_len("w", g.w_len(), w.len())?;
        if let Some(b) = bias {
            check_len("bias", g.out_channels, b.len())?;
        }
        check_len("y", g.y_len(), y.len())?;
        let win = g.conv_window();
        let (kdim, p, xs) = (win.rows(), win.positions(), win.image_len());
        let mg = g.out_channels / g.group;
        let direct = are_cols || win.is_identity();
        run_tasks(y, mg * p, self.macs(), |t, yc, par| {
            let (n, gi) = (t / g.group, t % g.group);
            let wg = &w[gi * mg * kdim..(gi + 1) * mg * kdim];
            let bg = bias.map(|b| &b[gi * mg..(gi + 1) * mg]);
            let run = |col: &[f32], yc: &mut [f32]| {
                if mg <= SMALL_M {
                    small_forward(wg, mg, kdim, col, p, bg, yc);
                } else {
                    fill_bias(yc, bg, p);
                    gemm_call(par, MatRef::row_major(wg, mg, kdim), MatRef::row_major(col, kdim, p), yc, p, bg.is_some());
                }
            };
            if direct {
                run(&src[n][gi * kdim * p..(gi + 1) * kdim * p], yc);
            } else {
                with_scratch(kdim * p, |col| {
                    im2col(&win, &src[n][gi * xs..(gi + 1) * xs], col);
                    run(col, yc);
                });
            }
        });
        Ok(())
    }

    /// `∂L/∂W` (what `backward` writes into `dw`) from precomputed columns.
    pub fn weight_grad_cols(&self, cols: &[&[f32]], dy: &[f32], dw: &mut [f32]) -> Result<(), LayerError> {
        self.weight_grad_from(cols, true, dy, dw)
    }

    /// `∂L/∂W` with the samples given one slice each.
    pub fn weight_grad_samples(&self, xs: &[&[f32]], dy: &[f32], dw: &mut [f32]) -> Result<(), LayerError> {
        self.weight_grad_from(xs, false, dy, dw)
    }

    fn weight_grad_from(&self, src: &[&[f32]], are_cols: bool, dy: &[f32], dw: &mut [f32]) -> Result<(), LayerError> {
        let g = &self.g;
        self.check_sources(src, are_cols)?;
        check_len("dy", g.y_len(), dy.len())?;
        check_len("dw", g.w_len(), dw.len())?;
        let win = g.conv_window();
        let (kdim, p, xs) = (win.rows(), win.positions(), win.image_len());
        let mg = g.out_channels / g.group;
        let ys = mg * p;
        let direct = are_cols || win.is_identity();
        run_tasks(dw, mg * kdim, self.macs(), |gi, dwg, par| {
            dwg.fill(0.0);
            for (n, c) in src.iter().enumerate() {
                let t = n * g.group + gi;
                let dyg = &dy[t * ys..(t + 1) * ys];
                let run = |col: &[f32], dwg: &mut [f32]| {
                    if mg <= SMALL_M {
                        small_weight_grad(dyg, mg, col, kdim, p, dwg);
                    } else {
                        gemm_call(par, MatRef::row_major(dyg, mg, p), MatRef::row_major(col, kdim, p).t(), dwg, kdim, true);
                    }
                };
                if direct {
                    run(&c[gi * kdim * p..(gi + 1) * kdim * p], dwg);
                } else {
                    with_scratch(kdim * p, |col| {
                        im2col(&win, &c[gi * xs..(gi + 1) * xs], col);
                        run(col, dwg);
                    });
                }
            }
        });
        Ok(())
    }
}

/// Groups with at most this many output channels (depthwise: 1) skip the packed GEMM, whose
/// packing costs more than the product for such thin matrices.
const SMALL_M: usize = 2;

/// `y[r, :] = b[r] + Σₖ w[r, k]·col[k, :]` for the `m` rows of a thin product, in blocks of 64
/// positions so that the running sums stay in registers across the k terms.
fn small_forward(w: &[f32], m: usize, kdim: usize, col: &[f32], p: usize, bias: Option<&[f32]>, y: &mut [f32]) {
    const B: usize = 64;
    for r in 0..m {
        let wr = &w[r * kdim..(r + 1) * kdim];
        let b0 = bias.map_or(0.0, |b| b[r]);
        let yr = &mut y[r * p..(r + 1) * p];
        for j0 in (0..p).step_by(B) {
            let len = B.min(p - j0);
            let mut acc = [b0; B];
            for (k, &wk) in wr.iter().enumerate() {
                let ck = &col[k * p + j0..k * p + j0 + len];
                for (a, &c) in acc[..len].iter_mut().zip(ck) {
                    *a += wk * c;
                }
            }
            yr[j0..j0 + len].copy_from_slice(&acc[..len]);
        }
    }
}

/// `dw[r, k] += Σᵢ dy[r, i]·col[k, i]` for the `m` rows of a thin product.
fn small_weight_grad(dy: &[f32], m: usize, col: &[f32], kdim: usize, p: usize, dw: &mut [f32]) {
    for r in 0..m {
        let dr = &dy[r * p..(r + 1) * p];
        for k in 0..kdim {
            let ck = &col[k * p..(k + 1) * p];
            // Eight partial sums: vectorises, and bounds the rounding error's growth with p.
            let mut acc = [0f32; 8];
            let (dc, dt) = dr.split_at(p - p % 8);
            let (cc, ct) = ck.split_at(p - p % 8);
            for (a, b) in dc.chunks_exact(8).zip(cc.chunks_exact(8)) {
                for l in 0..8 {
                    acc[l] += a[l] * b[l];
                }
            }
            let mut s: f32 = acc.iter().sum();
            for (a, b) in dt.iter().zip(ct) {
                s += a * b;
            }
            dw[r * kdim + k] += s;
        }
    }
}

/// Each of the `rows` rows of `y` (length `p` each) set to its bias, or left for the GEMM to
/// overwrite when there is none.
pub(crate) fn fill_bias(y: &mut [f32], bias: Option<&[f32]>, p: usize) {
    if let Some(b) = bias {
        for (row, &v) in y.chunks_exact_mut(p).zip(b) {
            row.fill(v);
        }
    }
}

/// `db[c] = Σ_{n, i} dy[n, c, i]` for dy [batch, channels, p], summed in f64.
pub(crate) fn bias_grad(dy: &[f32], batch: usize, channels: usize, p: usize, db: &mut [f32]) {
    let sum = |c: usize| -> f32 {
        let mut s = 0f64;
        for n in 0..batch {
            let row = &dy[(n * channels + c) * p..(n * channels + c + 1) * p];
            s += row.iter().map(|&v| v as f64).sum::<f64>();
        }
        s as f32
    };
    if dy.len() >= 1 << 16 {
        db.par_iter_mut().enumerate().for_each(|(c, d)| *d = sum(c));
    } else {
        db.iter_mut().enumerate().for_each(|(c, d)| *d = sum(c));
    }
}
