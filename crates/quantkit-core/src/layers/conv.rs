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
            fill_bias(yc, bias.map(|b| &b[gi * mg..(gi + 1) * mg]), p);
            let acc = bias.is_some();
            if win.is_identity() {
                gemm_call(par, wg, MatRef::row_major(xg, kdim, p), yc, p, acc);
            } else {
                with_scratch(kdim * p, |col| {
                    im2col(&win, xg, col);
                    gemm_call(par, wg, MatRef::row_major(col, kdim, p), yc, p, acc);
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
