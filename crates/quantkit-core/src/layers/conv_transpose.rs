//! ONNX ConvTranspose (1-D and 2-D, groups, strides, pads, output_padding, output_shape,
//! dilations, auto_pad): forward and backward (dx, dW, db).
//!
//! ConvTranspose is the adjoint of a Conv from y to x with the same kernel, strides, pads and
//! dilations, so it lowers to the same im2col window with the roles swapped, per sample n and
//! group g (W[g] is the [C/g, M/g·kh·kw] block of the weight [C, M/g, kh, kw]):
//! - forward: `y[n, g] = bias + col2im(W[g]ᵀ · x[n, g])`
//! - backward: `dcol = im2col(dy[n, g])`, `dx[n, g] = W[g] · dcol`, `dW[g] = Σₙ x[n, g] · dcolᵀ`.
//!
//! Output rows beyond the last window (from output_padding or a larger output_shape) receive the
//! bias only.

use super::conv::{bias_grad, fill_bias};
use super::error::{check_len, LayerError};
use super::geometry::{ConvTransposeAttrs, Geometry};
use super::im2col::{col2im_add, im2col};
use super::scratch::with_scratch;
use super::sgemm::MatRef;
use super::{gemm_call, run_tasks};

#[derive(Clone, Debug)]
pub struct ConvTranspose {
    g: Geometry,
}

pub use super::conv::ConvGrads as ConvTransposeGrads;

impl ConvTranspose {
    /// x [N, C, (H,) W], w [C, M/group, (kh,) kw].
    pub fn new(x_shape: &[usize], w_shape: &[usize], attrs: &ConvTransposeAttrs) -> Result<Self, LayerError> {
        Ok(ConvTranspose { g: Geometry::conv_transpose(x_shape, w_shape, attrs)? })
    }

    pub fn geometry(&self) -> &Geometry {
        &self.g
    }

    pub fn output_shape(&self) -> Vec<usize> {
        self.g.y_shape()
    }

    pub fn macs(&self) -> usize {
        self.g.x_len() * self.g.transpose_window().rows()
    }

    pub fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        let g = &self.g;
        check_len("x", g.x_len(), x.len())?;
        check_len("w", g.w_len(), w.len())?;
        if let Some(b) = bias {
            check_len("bias", g.out_channels, b.len())?;
        }
        check_len("y", g.y_len(), y.len())?;
        let win = g.transpose_window();
        let (kdim, p, ys) = (win.rows(), win.positions(), win.image_len());
        let cg = g.in_channels / g.group;
        let mg = g.out_channels / g.group;
        let oplane = g.out_hw[0] * g.out_hw[1];
        run_tasks(y, ys, self.macs(), |t, yc, par| {
            let gi = t % g.group;
            let xg = MatRef::row_major(&x[t * cg * p..(t + 1) * cg * p], cg, p);
            let wgt = MatRef::row_major(&w[gi * cg * kdim..(gi + 1) * cg * kdim], cg, kdim).t();
            let b = bias.map(|b| &b[gi * mg..(gi + 1) * mg]);
            if win.is_identity() {
                fill_bias(yc, b, oplane);
                gemm_call(par, wgt, xg, yc, p, b.is_some());
            } else {
                with_scratch(kdim * p, |col| {
                    gemm_call(par, wgt, xg, col, p, false);
                    if b.is_some() {
                        fill_bias(yc, b, oplane);
                    } else {
                        yc.fill(0.0);
                    }
                    col2im_add(&win, col, yc);
                });
            }
        });
        Ok(())
    }

    pub fn backward(&self, x: &[f32], w: &[f32], dy: &[f32], grads: ConvTransposeGrads) -> Result<(), LayerError> {
        let g = &self.g;
        check_len("x", g.x_len(), x.len())?;
        check_len("w", g.w_len(), w.len())?;
        check_len("dy", g.y_len(), dy.len())?;
        let win = g.transpose_window();
        let (kdim, p, ys) = (win.rows(), win.positions(), win.image_len());
        let cg = g.in_channels / g.group;
        let xs = cg * p;
        if let Some(db) = grads.db {
            check_len("db", g.out_channels, db.len())?;
            bias_grad(dy, g.batch, g.out_channels, g.out_hw[0] * g.out_hw[1], db);
        }
        // Runs `f(dcol)` with dcol = im2col(dy[n, g]) (dy itself when the window is the identity).
        let with_dcol = |t: usize, f: &mut dyn FnMut(MatRef)| {
            let dyg = &dy[t * ys..(t + 1) * ys];
            if win.is_identity() {
                f(MatRef::row_major(dyg, kdim, p));
            } else {
                with_scratch(kdim * p, |col| {
                    im2col(&win, dyg, col);
                    f(MatRef::row_major(col, kdim, p));
                });
            }
        };
        if let Some(dw) = grads.dw {
            check_len("dw", g.w_len(), dw.len())?;
            run_tasks(dw, cg * kdim, self.macs(), |gi, dwg, par| {
                if g.batch == 0 {
                    dwg.fill(0.0);
                }
                for n in 0..g.batch {
                    let t = n * g.group + gi;
                    let xg = MatRef::row_major(&x[t * xs..(t + 1) * xs], cg, p);
                    with_dcol(t, &mut |dcol| gemm_call(par, xg, dcol.t(), dwg, kdim, n > 0));
                }
            });
        }
        if let Some(dx) = grads.dx {
            check_len("dx", g.x_len(), dx.len())?;
            run_tasks(dx, xs, self.macs(), |t, dxc, par| {
                let gi = t % g.group;
                let wg = MatRef::row_major(&w[gi * cg * kdim..(gi + 1) * cg * kdim], cg, kdim);
                with_dcol(t, &mut |dcol| gemm_call(par, wg, dcol, dxc, p, false));
            });
        }
        Ok(())
    }
}
