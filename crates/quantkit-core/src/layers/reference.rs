//! Plain reference layers for the tests: loops straight from ONNX's definitions, f64
//! accumulation, no im2col and no GEMM. ConvTranspose is written as the scatter ONNX describes,
//! independently of the adjoint-of-conv lowering the kernel uses.

use super::geometry::Geometry;

fn at4(s: [usize; 4], i: [usize; 4]) -> usize {
    ((i[0] * s[1] + i[1]) * s[2] + i[2]) * s[3] + i[3]
}

pub fn conv(g: &Geometry, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let (n, c, m, gr) = (g.batch, g.in_channels, g.out_channels, g.group);
    let (cg, mg) = (c / gr, m / gr);
    let [h, wd] = g.in_hw;
    let [oh, ow] = g.out_hw;
    let [kh, kw] = g.kernel;
    let xs = [n, c, h, wd];
    let ws = [m, cg, kh, kw];
    let ys = [n, m, oh, ow];
    let mut y = vec![0f64; n * m * oh * ow];
    for ni in 0..n {
        for mi in 0..m {
            let gi = mi / mg;
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut s = b.map_or(0.0, |b| b[mi] as f64);
                    for ci in 0..cg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let iy = (oy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                                let ix = (ox * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= wd as isize {
                                    continue;
                                }
                                let xv = x[at4(xs, [ni, gi * cg + ci, iy as usize, ix as usize])] as f64;
                                s += xv * w[at4(ws, [mi, ci, ky, kx])] as f64;
                            }
                        }
                    }
                    y[at4(ys, [ni, mi, oy, ox])] = s;
                }
            }
        }
    }
    y
}

pub fn conv_transpose(g: &Geometry, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let (n, c, m, gr) = (g.batch, g.in_channels, g.out_channels, g.group);
    let (cg, mg) = (c / gr, m / gr);
    let [h, wd] = g.in_hw;
    let [oh, ow] = g.out_hw;
    let [kh, kw] = g.kernel;
    let xs = [n, c, h, wd];
    let ws = [c, mg, kh, kw];
    let ys = [n, m, oh, ow];
    let mut y = vec![0f64; n * m * oh * ow];
    for ni in 0..n {
        for mi in 0..m {
            let bv = b.map_or(0.0, |b| b[mi] as f64);
            for o in 0..oh * ow {
                y[(ni * m + mi) * oh * ow + o] = bv;
            }
        }
        for ci in 0..c {
            let gi = ci / cg;
            for iy in 0..h {
                for ix in 0..wd {
                    let xv = x[at4(xs, [ni, ci, iy, ix])] as f64;
                    for mo in 0..mg {
                        for ky in 0..kh {
                            for kx in 0..kw {
                                let oy = (iy * g.strides[0] + ky * g.dilations[0]) as isize - g.pads[0] as isize;
                                let ox = (ix * g.strides[1] + kx * g.dilations[1]) as isize - g.pads[1] as isize;
                                if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                    continue;
                                }
                                y[at4(ys, [ni, gi * mg + mo, oy as usize, ox as usize])] +=
                                    xv * w[at4(ws, [ci, mo, ky, kx])] as f64;
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// C[m×n] = A·B with explicit strides, f64.
pub fn matmul(a: &[f64], ars: usize, acs: usize, b: &[f64], brs: usize, bcs: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut c = vec![0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for p in 0..k {
                s += a[i * ars + p * acs] as f64 * b[p * brs + j * bcs] as f64;
            }
            c[i * n + j] = s;
        }
    }
    c
}

/// max |got − want| ≤ rel · max |want| (+ a tiny absolute floor for all-zero outputs).
pub fn assert_close(got: &[f32], want: &[f64], rel: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let scale = want.iter().fold(0f64, |m, v| m.max(v.abs()));
    let tol = rel * scale + 1e-30;
    let mut worst = (0usize, 0f64);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let d = (g as f64 - w).abs();
        if !(d <= worst.1) {
            worst = (i, d);
        }
    }
    assert!(
        worst.1 <= tol,
        "{what}: element {} is {} vs reference {} (|diff| {:.3e} > {:.1e} · max|ref| {:.3e})",
        worst.0, got[worst.0], want[worst.0], worst.1, rel, scale
    );
}
