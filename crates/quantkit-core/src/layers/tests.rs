//! Layer kernels against the plain references (f64) over many shapes, and gradients against
//! central finite differences of ½‖y − t‖² computed in f64.

use super::reference::{self as r, assert_close};
use super::sgemm::{self, available_isas, sgemm_with, MatRef};
use super::*;
use crate::search::testdata::uniform;

const REL: f64 = 1e-5;

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn attrs(strides: &[usize], pads: &[usize], dilations: &[usize], group: usize, auto_pad: AutoPad) -> ConvAttrs {
    ConvAttrs { strides: strides.to_vec(), pads: pads.to_vec(), dilations: dilations.to_vec(), group, auto_pad, kernel_shape: vec![] }
}

fn two_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    with_threads(Some(2), f)
}

#[test]
fn sgemm_matches_reference_for_every_kernel_and_layout() {
    let shapes = [(1, 1, 1), (5, 3, 7), (6, 32, 32), (7, 33, 65), (13, 300, 17), (97, 257, 70), (3, 600, 2100), (130, 9, 40)];
    for isa in available_isas() {
        for &(m, k, n) in &shapes {
            let a = uniform(m * k, 1, -1.0, 1.0);
            let b = uniform(k * n, 2, -1.0, 1.0);
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                // A stored [m,k] or [k,m]; B stored [k,n] or [n,k].
                let av = if ta { MatRef::row_major(&a, k, m).t() } else { MatRef::row_major(&a, m, k) };
                let bv = if tb { MatRef::row_major(&b, n, k).t() } else { MatRef::row_major(&b, k, n) };
                let (ars, acs) = if ta { (1, m) } else { (k, 1) };
                let (brs, bcs) = if tb { (1, k) } else { (n, 1) };
                let want = r::matmul(&to64(&a), ars, acs, &to64(&b), brs, bcs, m, k, n);
                // ldc > n, and accumulate onto a known C.
                let ldc = n + 3;
                let mut c = vec![0.5f32; (m - 1) * ldc + n];
                sgemm_with(isa, av, bv, &mut c, ldc, true);
                let got: Vec<f32> = (0..m * n).map(|i| c[(i / n) * ldc + i % n] - 0.5).collect();
                assert_close(&got, &want, 1e-5, &format!("{isa:?} {m}×{k}×{n} ta={ta} tb={tb}"));
                let mut c2 = vec![f32::NAN; m * n];
                sgemm_with(isa, av, bv, &mut c2, n, false);
                assert_close(&c2, &want, 1e-5, &format!("{isa:?} {m}×{k}×{n} overwrite"));
                // What the layers call: thin products go to the gemm crate (same views, strides, ldc).
                let mut c3 = vec![0.5f32; (m - 1) * ldc + n];
                sgemm::sgemm_serial(av, bv, &mut c3, ldc, true);
                let got: Vec<f32> = (0..m * n).map(|i| c3[(i / n) * ldc + i % n] - 0.5).collect();
                assert_close(&got, &want, 1e-5, &format!("dispatch {m}×{k}×{n} ta={ta} tb={tb} accumulate"));
                let mut c4 = vec![f32::NAN; m * n];
                sgemm::sgemm_serial(av, bv, &mut c4, n, false);
                assert_close(&c4, &want, 1e-5, &format!("dispatch {m}×{k}×{n} ta={ta} tb={tb} overwrite"));
            }
        }
    }
    // The parallel split (columns, then rows) on a 2-thread pool.
    for &(m, k, n) in &[(64, 576, 3136), (700, 300, 20)] {
        let a = uniform(m * k, 3, -1.0, 1.0);
        let b = uniform(k * n, 4, -1.0, 1.0);
        let want = r::matmul(&to64(&a), k, 1, &to64(&b), n, 1, m, k, n);
        let mut c = vec![0f32; m * n];
        two_threads(|| sgemm::sgemm(MatRef::row_major(&a, m, k), MatRef::row_major(&b, k, n), &mut c, n, false));
        assert_close(&c, &want, 1e-5, &format!("parallel {m}×{k}×{n}"));
    }
}

struct ConvCase {
    x: Vec<usize>,
    w: Vec<usize>,
    attrs: ConvAttrs,
}

fn conv_cases() -> Vec<ConvCase> {
    use AutoPad::*;
    let c = |x: &[usize], w: &[usize], attrs: ConvAttrs| ConvCase { x: x.to_vec(), w: w.to_vec(), attrs };
    vec![
        c(&[2, 3, 7, 9], &[4, 3, 3, 3], attrs(&[], &[1, 1, 1, 1], &[], 1, NotSet)),
        c(&[1, 4, 8, 7], &[6, 4, 3, 2], attrs(&[2, 2], &[0, 1, 2, 0], &[], 1, NotSet)),
        c(&[2, 3, 9, 10], &[5, 3, 3, 3], attrs(&[], &[2, 1, 2, 2], &[2, 2], 1, NotSet)),
        c(&[2, 4, 6, 6], &[6, 2, 3, 3], attrs(&[], &[1, 1, 1, 1], &[], 2, NotSet)),
        c(&[2, 8, 7, 7], &[8, 1, 3, 3], attrs(&[2, 2], &[1, 1, 1, 1], &[], 8, NotSet)),
        c(&[1, 4, 6, 5], &[8, 1, 3, 3], attrs(&[], &[1, 0, 1, 2], &[1, 2], 4, NotSet)),
        c(&[2, 16, 5, 5], &[8, 16, 1, 1], attrs(&[], &[], &[], 1, NotSet)),
        c(&[1, 8, 7, 7], &[4, 8, 1, 1], attrs(&[2, 2], &[], &[], 1, NotSet)),
        c(&[1, 3, 7, 7], &[4, 3, 4, 4], attrs(&[2, 2], &[], &[], 1, SameUpper)),
        c(&[1, 3, 7, 8], &[4, 3, 4, 3], attrs(&[2, 3], &[], &[1, 2], 1, SameLower)),
        c(&[1, 3, 8, 9], &[2, 3, 3, 2], attrs(&[1, 2], &[], &[], 1, Valid)),
        c(&[2, 3, 11], &[4, 3, 3], attrs(&[2], &[1, 2], &[2], 1, NotSet)),
        c(&[1, 4, 9], &[4, 1, 5], attrs(&[], &[], &[], 4, SameUpper)),
        c(&[1, 2, 3, 3], &[3, 2, 3, 3], attrs(&[], &[], &[], 1, NotSet)),
        c(&[4, 32, 20, 20], &[32, 32, 3, 3], attrs(&[], &[1, 1, 1, 1], &[], 1, NotSet)),
        c(&[1, 64, 24, 24], &[48, 64, 3, 3], attrs(&[], &[1, 1, 1, 1], &[], 1, NotSet)),
        c(&[1, 8, 50, 50], &[4, 8, 3, 3], attrs(&[], &[1, 1, 1, 1], &[], 1, NotSet)),
        c(&[2, 32, 15, 15], &[32, 1, 3, 3], attrs(&[1, 1], &[1, 1, 1, 1], &[], 32, NotSet)),
    ]
}

fn data(shape_len: usize, seed: u64) -> Vec<f32> {
    uniform(shape_len, seed, -1.0, 1.0)
}

#[test]
fn conv_forward_matches_reference() {
    for (i, case) in conv_cases().iter().enumerate() {
        let layer = Conv::new(&case.x, &case.w, &case.attrs).unwrap();
        let g = *layer.geometry();
        let x = data(g.x_len(), 10 + i as u64);
        let w = data(g.w_len(), 20 + i as u64);
        let b = data(g.out_channels, 30 + i as u64);
        let want = r::conv(&g, &to64(&x), &to64(&w), Some(&to64(&b)));
        for threads in [Some(1), Some(2)] {
            let mut y = vec![f32::NAN; g.y_len()];
            with_threads(threads, || layer.forward(&x, &w, Some(&b), &mut y)).unwrap();
            assert_close(&y, &want, REL, &format!("conv case {i} {:?} {:?} threads {threads:?}", case.x, case.w));
        }
        let mut y = vec![f32::NAN; g.y_len()];
        layer.forward(&x, &w, None, &mut y).unwrap();
        assert_close(&y, &r::conv(&g, &to64(&x), &to64(&w), None), REL, &format!("conv case {i} without bias"));
    }
}

#[test]
fn conv_auto_pad_follows_onnx_runtime() {
    // in 7, k 4, s 2: out 4, total pad (4−1)·2 + 4 − 7 = 3 → SAME_UPPER 1 + 2, SAME_LOWER 2 + 1.
    let up = Conv::new(&[1, 1, 7, 7], &[1, 1, 4, 4], &attrs(&[2, 2], &[], &[], 1, AutoPad::SameUpper)).unwrap();
    assert_eq!(up.geometry().pads, [1, 1, 2, 2]);
    assert_eq!(up.output_shape(), vec![1, 1, 4, 4]);
    let low = Conv::new(&[1, 1, 7, 7], &[1, 1, 4, 4], &attrs(&[2, 2], &[9, 9, 9, 9], &[], 1, AutoPad::SameLower)).unwrap();
    assert_eq!(low.geometry().pads, [2, 2, 1, 1]);
    let valid = Conv::new(&[1, 1, 7, 8], &[1, 1, 3, 3], &attrs(&[2, 2], &[5, 5, 5, 5], &[], 1, AutoPad::Valid)).unwrap();
    assert_eq!(valid.output_shape(), vec![1, 1, 3, 3]);
    // 1-D lifts to H = 1.
    let one = Conv::new(&[2, 3, 10], &[4, 3, 3], &attrs(&[3], &[1, 0], &[], 1, AutoPad::NotSet)).unwrap();
    assert_eq!(one.output_shape(), vec![2, 4, 3]);
}

struct TCase {
    x: Vec<usize>,
    w: Vec<usize>,
    attrs: ConvTransposeAttrs,
}

fn transpose_cases() -> Vec<TCase> {
    use AutoPad::*;
    let c = |x: &[usize], w: &[usize], a: ConvAttrs, op: &[usize], os: &[usize]| TCase {
        x: x.to_vec(),
        w: w.to_vec(),
        attrs: ConvTransposeAttrs { conv: a, output_padding: op.to_vec(), output_shape: os.to_vec() },
    };
    vec![
        c(&[1, 2, 3, 3], &[2, 3, 3, 3], attrs(&[2, 2], &[], &[], 1, NotSet), &[], &[]),
        c(&[2, 4, 4, 5], &[4, 2, 3, 3], attrs(&[2, 3], &[1, 0, 1, 2], &[], 2, NotSet), &[1, 2], &[]),
        c(&[1, 3, 5, 4], &[3, 2, 3, 3], attrs(&[], &[1, 1, 0, 2], &[2, 2], 1, NotSet), &[], &[]),
        c(&[1, 2, 4, 4], &[2, 3, 3, 3], attrs(&[2, 2], &[], &[], 1, NotSet), &[], &[9, 10]),
        c(&[1, 2, 4, 4], &[2, 3, 3, 3], attrs(&[2, 2], &[], &[], 1, NotSet), &[], &[8, 7]),
        c(&[1, 2, 5, 5], &[2, 2, 3, 3], attrs(&[2, 2], &[], &[], 1, SameUpper), &[], &[]),
        c(&[1, 2, 5, 5], &[2, 2, 3, 3], attrs(&[2, 2], &[], &[], 1, SameLower), &[], &[]),
        c(&[1, 2, 5, 5], &[2, 2, 3, 3], attrs(&[2, 2], &[], &[], 1, Valid), &[], &[]),
        c(&[1, 4, 5, 5], &[4, 1, 3, 3], attrs(&[2, 2], &[1, 1, 1, 1], &[], 4, NotSet), &[1, 1], &[]),
        c(&[2, 8, 5, 5], &[8, 4, 1, 1], attrs(&[], &[], &[], 1, NotSet), &[], &[]),
        c(&[2, 3, 7], &[3, 2, 4], attrs(&[3], &[1, 2], &[], 1, NotSet), &[1], &[]),
        c(&[2, 32, 16, 16], &[32, 16, 3, 3], attrs(&[2, 2], &[1, 1, 1, 1], &[], 1, NotSet), &[1, 1], &[]),
    ]
}

#[test]
fn conv_transpose_forward_matches_reference() {
    for (i, case) in transpose_cases().iter().enumerate() {
        let layer = ConvTranspose::new(&case.x, &case.w, &case.attrs).unwrap();
        let g = *layer.geometry();
        let x = data(g.x_len(), 40 + i as u64);
        let w = data(g.w_len(), 50 + i as u64);
        let b = data(g.out_channels, 60 + i as u64);
        let want = r::conv_transpose(&g, &to64(&x), &to64(&w), Some(&to64(&b)));
        for threads in [Some(1), Some(2)] {
            let mut y = vec![f32::NAN; g.y_len()];
            with_threads(threads, || layer.forward(&x, &w, Some(&b), &mut y)).unwrap();
            assert_close(&y, &want, REL, &format!("conv_transpose case {i} {:?} {:?} threads {threads:?}", case.x, case.w));
        }
    }
}

#[test]
fn conv_transpose_output_sizes() {
    let t = |x: &[usize], w: &[usize], a: ConvAttrs, op: &[usize], os: &[usize]| {
        let l = ConvTranspose::new(x, w, &ConvTransposeAttrs { conv: a, output_padding: op.to_vec(), output_shape: os.to_vec() }).unwrap();
        (l.output_shape(), l.geometry().pads)
    };
    // (3 − 1)·2 + 3 = 7
    assert_eq!(t(&[1, 1, 3, 3], &[1, 1, 3, 3], attrs(&[2, 2], &[], &[], 1, AutoPad::NotSet), &[], &[]).0, vec![1, 1, 7, 7]);
    // SAME: out = in·stride = 10, total pad 11 − 10 = 1; SAME_UPPER puts it at the end.
    assert_eq!(t(&[1, 1, 5, 5], &[1, 1, 3, 3], attrs(&[2, 2], &[], &[], 1, AutoPad::SameUpper), &[], &[]), (vec![1, 1, 10, 10], [0, 0, 1, 1]));
    assert_eq!(t(&[1, 1, 5, 5], &[1, 1, 3, 3], attrs(&[2, 2], &[], &[], 1, AutoPad::SameLower), &[], &[]), (vec![1, 1, 10, 10], [1, 1, 0, 0]));
    // output_shape 8×7 from a full 9×9: totals 1 and 2; NOTSET puts the odd pixel first (ORT 1.23).
    assert_eq!(t(&[1, 2, 4, 4], &[2, 3, 3, 3], attrs(&[2, 2], &[], &[], 1, AutoPad::NotSet), &[], &[8, 7]), (vec![1, 3, 8, 7], [1, 1, 0, 1]));
    assert_eq!(t(&[1, 2, 4, 4], &[2, 3, 3, 3], attrs(&[2, 2], &[], &[], 1, AutoPad::SameUpper), &[], &[8, 7]).1, [0, 1, 1, 1]);
}

/// ½‖f(p) − t‖² by central differences in f64 for every element of `p`.
fn finite_diff(p: &[f64], t: &[f64], f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let h = 1e-3;
    let loss = |q: &[f64]| f(q).iter().zip(t).map(|(y, t)| 0.5 * (y - t) * (y - t)).sum::<f64>();
    let mut q = p.to_vec();
    (0..p.len())
        .map(|i| {
            q[i] = p[i] + h;
            let lp = loss(&q);
            q[i] = p[i] - h;
            let lm = loss(&q);
            q[i] = p[i];
            (lp - lm) / (2.0 * h)
        })
        .collect()
}

#[test]
fn conv_gradients_match_finite_differences() {
    for (i, case) in conv_cases().iter().enumerate() {
        let layer = Conv::new(&case.x, &case.w, &case.attrs).unwrap();
        let g = *layer.geometry();
        if g.x_len() + g.w_len() > 700 {
            continue;
        }
        let (x, w, b) = (data(g.x_len(), 70 + i as u64), data(g.w_len(), 80 + i as u64), data(g.out_channels, 90 + i as u64));
        let (x64, w64, b64) = (to64(&x), to64(&w), to64(&b));
        let t = to64(&data(g.y_len(), 100 + i as u64));
        let y = r::conv(&g, &x64, &w64, Some(&b64));
        let dy: Vec<f32> = y.iter().zip(&t).map(|(y, t)| (y - t) as f32).collect();
        let (mut dx, mut dw, mut db) = (vec![f32::NAN; g.x_len()], vec![f32::NAN; g.w_len()], vec![f32::NAN; g.out_channels]);
        layer.backward(&x, &w, &dy, ConvGrads { dx: Some(&mut dx), dw: Some(&mut dw), db: Some(&mut db) }).unwrap();
        let what = format!("conv case {i} {:?} {:?}", case.x, case.w);
        assert_close(&dw, &finite_diff(&w64, &t, |w| r::conv(&g, &x64, w, Some(&b64))), 1e-5, &format!("{what} dW"));
        assert_close(&dx, &finite_diff(&x64, &t, |x| r::conv(&g, x, &w64, Some(&b64))), 1e-5, &format!("{what} dx"));
        assert_close(&db, &finite_diff(&b64, &t, |b| r::conv(&g, &x64, &w64, Some(b))), 1e-5, &format!("{what} db"));
    }
}

#[test]
fn conv_gradients_on_large_layers_match_the_reference_adjoint() {
    // Too large for finite differences: dW = Σ dy·colᵀ checked as ⟨dW, v⟩ = ⟨dy, conv(x, v)⟩.
    for (i, case) in conv_cases().iter().enumerate().filter(|(_, c)| c.x.iter().product::<usize>() > 5000) {
        let layer = Conv::new(&case.x, &case.w, &case.attrs).unwrap();
        let g = *layer.geometry();
        let (x, w) = (data(g.x_len(), 110 + i as u64), data(g.w_len(), 120 + i as u64));
        let dy = data(g.y_len(), 130 + i as u64);
        let (vw, vx) = (data(g.w_len(), 140 + i as u64), data(g.x_len(), 150 + i as u64));
        let (mut dx, mut dw) = (vec![0f32; g.x_len()], vec![0f32; g.w_len()]);
        two_threads(|| layer.backward(&x, &w, &dy, ConvGrads { dx: Some(&mut dx), dw: Some(&mut dw), db: None })).unwrap();
        let dot = |a: &[f32], b: &[f64]| a.iter().zip(b).map(|(a, b)| *a as f64 * b).sum::<f64>();
        let lhs_w = dot(&dw, &to64(&vw));
        let rhs_w = dot(&dy, &r::conv(&g, &to64(&x), &to64(&vw), None));
        assert!((lhs_w - rhs_w).abs() <= 1e-4 * rhs_w.abs().max(1.0), "case {i} dW: {lhs_w} vs {rhs_w}");
        let lhs_x = dot(&dx, &to64(&vx));
        let rhs_x = dot(&dy, &r::conv(&g, &to64(&vx), &to64(&w), None));
        assert!((lhs_x - rhs_x).abs() <= 1e-4 * rhs_x.abs().max(1.0), "case {i} dx: {lhs_x} vs {rhs_x}");
    }
}

#[test]
fn conv_transpose_gradients_match_finite_differences() {
    for (i, case) in transpose_cases().iter().enumerate() {
        let layer = ConvTranspose::new(&case.x, &case.w, &case.attrs).unwrap();
        let g = *layer.geometry();
        if g.x_len() + g.w_len() > 700 {
            continue;
        }
        let (x, w, b) = (data(g.x_len(), 170 + i as u64), data(g.w_len(), 180 + i as u64), data(g.out_channels, 190 + i as u64));
        let (x64, w64, b64) = (to64(&x), to64(&w), to64(&b));
        let t = to64(&data(g.y_len(), 200 + i as u64));
        let y = r::conv_transpose(&g, &x64, &w64, Some(&b64));
        let dy: Vec<f32> = y.iter().zip(&t).map(|(y, t)| (y - t) as f32).collect();
        let (mut dx, mut dw, mut db) = (vec![f32::NAN; g.x_len()], vec![f32::NAN; g.w_len()], vec![f32::NAN; g.out_channels]);
        layer.backward(&x, &w, &dy, ConvTransposeGrads { dx: Some(&mut dx), dw: Some(&mut dw), db: Some(&mut db) }).unwrap();
        let what = format!("conv_transpose case {i} {:?} {:?}", case.x, case.w);
        assert_close(&dw, &finite_diff(&w64, &t, |w| r::conv_transpose(&g, &x64, w, Some(&b64))), 1e-5, &format!("{what} dW"));
        assert_close(&dx, &finite_diff(&x64, &t, |x| r::conv_transpose(&g, x, &w64, Some(&b64))), 1e-5, &format!("{what} dx"));
        assert_close(&db, &finite_diff(&b64, &t, |b| r::conv_transpose(&g, &x64, &w64, Some(b))), 1e-5, &format!("{what} db"));
    }
}

fn gemm_ref(a: &[f64], b: &[f64], c: Option<(&[f64], usize, usize)>, m: usize, k: usize, n: usize, at: GemmAttrs) -> Vec<f64> {
    let (ars, acs) = if at.trans_a { (1, m) } else { (k, 1) };
    let (brs, bcs) = if at.trans_b { (1, k) } else { (n, 1) };
    let mut y = r::matmul(a, ars, acs, b, brs, bcs, m, k, n);
    for (i, v) in y.iter_mut().enumerate() {
        *v *= at.alpha as f64;
        if let Some((c, cr, cc)) = c {
            let (row, col) = (i / n, i % n);
            *v += at.beta as f64 * c[if cr == 1 { 0 } else { row } * cc + if cc == 1 { 0 } else { col }];
        }
    }
    y
}

#[test]
fn gemm_forward_and_gradients() {
    let (m, k, n) = (5, 7, 4);
    for (ta, tb, cshape, alpha, beta) in [
        (false, false, None, 1.0, 1.0),
        (false, true, Some(vec![n]), 1.0, 1.0),
        (true, false, Some(vec![m, 1]), 0.5, 2.0),
        (true, true, Some(vec![m, n]), -1.5, 0.25),
        (false, true, Some(vec![]), 1.0, 1.0),
    ] {
        let at = GemmAttrs { alpha, beta, trans_a: ta, trans_b: tb };
        let a_shape = if ta { vec![k, m] } else { vec![m, k] };
        let b_shape = if tb { vec![n, k] } else { vec![k, n] };
        let layer = Gemm::new(&a_shape, &b_shape, cshape.as_deref(), at).unwrap();
        assert_eq!(layer.output_shape(), vec![m, n]);
        let (a, b) = (data(m * k, 1), data(k * n, 2));
        let cdims = cshape.as_ref().map(|s| match s.len() { 0 => (1, 1), 1 => (1, s[0]), _ => (s[0], s[1]) });
        let c = cdims.map(|(r, c)| data(r * c, 3));
        let (a64, b64, c64) = (to64(&a), to64(&b), c.as_ref().map(|c| to64(c)));
        let cref = |c: &Option<Vec<f64>>| c.as_ref().map(|v| v.clone());
        let fwd = |a: &[f64], b: &[f64], c: Option<&[f64]>| gemm_ref(a, b, c.zip(cdims).map(|(c, (r, cc))| (c, r, cc)), m, k, n, at);
        let mut y = vec![f32::NAN; m * n];
        layer.forward(&a, &b, c.as_deref(), &mut y).unwrap();
        let want = fwd(&a64, &b64, c64.as_deref());
        assert_close(&y, &want, REL, &format!("gemm ta={ta} tb={tb} c={cshape:?}"));
        let t = to64(&data(m * n, 4));
        let dy: Vec<f32> = want.iter().zip(&t).map(|(y, t)| (y - t) as f32).collect();
        let mut da = vec![f32::NAN; m * k];
        let mut db = vec![f32::NAN; k * n];
        let mut dc = c.as_ref().map(|c| vec![f32::NAN; c.len()]);
        layer.backward(&a, &b, &dy, GemmGrads { da: Some(&mut da), db: Some(&mut db), dc: dc.as_deref_mut() }).unwrap();
        let what = format!("gemm ta={ta} tb={tb}");
        let c1 = cref(&c64);
        assert_close(&da, &finite_diff(&a64, &t, |a| fwd(a, &b64, c1.as_deref())), 1e-5, &format!("{what} dA"));
        assert_close(&db, &finite_diff(&b64, &t, |b| fwd(&a64, b, c1.as_deref())), 1e-5, &format!("{what} dB"));
        if let (Some(dc), Some(c64)) = (dc, &c64) {
            assert_close(&dc, &finite_diff(c64, &t, |c| fwd(&a64, &b64, Some(c))), 1e-5, &format!("{what} dC"));
        }
    }
}

/// MatMul by materialising numpy broadcasting, independently of `MatMul::new`'s index tables.
fn matmul_ref(a: &[f64], a_shape: &[usize], b: &[f64], b_shape: &[usize]) -> Vec<f64> {
    let a2: Vec<usize> = if a_shape.len() == 1 { vec![1, a_shape[0]] } else { a_shape.to_vec() };
    let b2: Vec<usize> = if b_shape.len() == 1 { vec![b_shape[0], 1] } else { b_shape.to_vec() };
    let (m, k, n) = (a2[a2.len() - 2], a2[a2.len() - 1], b2[b2.len() - 1]);
    let rank = (a2.len() - 2).max(b2.len() - 2);
    let padded = |s: &[usize]| -> Vec<usize> { let mut v = vec![1; rank + 2 - s.len()]; v.extend_from_slice(&s[..s.len() - 2]); v };
    let (ab, bb) = (padded(&a2), padded(&b2));
    let ob: Vec<usize> = ab.iter().zip(&bb).map(|(x, y)| *x.max(y)).collect();
    let count: usize = ob.iter().product();
    let mut out = Vec::new();
    for flat in 0..count {
        let mut rem = flat;
        let mut idx = vec![0; rank];
        for d in (0..rank).rev() {
            idx[d] = rem % ob[d];
            rem /= ob[d];
        }
        let off = |bs: &[usize]| idx.iter().zip(bs).fold(0, |o, (i, s)| o * s + if *s == 1 { 0 } else { *i });
        let (ia, ib) = (off(&ab), off(&bb));
        out.extend(r::matmul(&a[ia * m * k..], k, 1, &b[ib * k * n..], n, 1, m, k, n));
    }
    out
}

#[test]
fn matmul_forward_and_gradients_with_broadcasting() {
    for (a_shape, b_shape) in [
        (vec![2, 3, 4, 5], vec![5, 6]),
        (vec![2, 1, 4, 5], vec![3, 5, 6]),
        (vec![5], vec![2, 5, 3]),
        (vec![2, 3, 5], vec![5]),
        (vec![4, 5], vec![5, 3]),
        (vec![3, 4, 5], vec![3, 5, 2]),
        (vec![1, 4, 5], vec![3, 5, 2]),
        (vec![5], vec![5]),
    ] {
        let layer = MatMul::new(&a_shape, &b_shape).unwrap();
        let (al, bl) = (a_shape.iter().product::<usize>(), b_shape.iter().product::<usize>());
        let (a, b) = (data(al, 5), data(bl, 6));
        let (a64, b64) = (to64(&a), to64(&b));
        let want = matmul_ref(&a64, &a_shape, &b64, &b_shape);
        let yl: usize = layer.output_shape().iter().product();
        assert_eq!(yl, want.len(), "{a_shape:?}·{b_shape:?} output shape {:?}", layer.output_shape());
        let mut y = vec![f32::NAN; yl];
        layer.forward(&a, &b, &mut y).unwrap();
        assert_close(&y, &want, REL, &format!("matmul {a_shape:?}·{b_shape:?}"));
        let t = to64(&data(yl, 7));
        let dy: Vec<f32> = want.iter().zip(&t).map(|(y, t)| (y - t) as f32).collect();
        let (mut da, mut db) = (vec![f32::NAN; al], vec![f32::NAN; bl]);
        layer.backward(&a, &b, &dy, MatMulGrads { da: Some(&mut da), db: Some(&mut db) }).unwrap();
        assert_close(&da, &finite_diff(&a64, &t, |a| matmul_ref(a, &a_shape, &b64, &b_shape)), 1e-5, &format!("matmul {a_shape:?}·{b_shape:?} dA"));
        assert_close(&db, &finite_diff(&b64, &t, |b| matmul_ref(&a64, &a_shape, b, &b_shape)), 1e-5, &format!("matmul {a_shape:?}·{b_shape:?} dB"));
    }
    assert_eq!(MatMul::new(&[5], &[2, 5, 3]).unwrap().output_shape(), vec![2, 3]);
    assert_eq!(MatMul::new(&[2, 3, 5], &[5]).unwrap().output_shape(), vec![2, 3]);
}

#[test]
fn errors_name_the_argument() {
    let e = Conv::new(&[1, 4, 5, 5], &[2, 3, 3, 3], &ConvAttrs::default()).unwrap_err();
    assert!(e.to_string().starts_with("w:"), "{e}");
    assert_eq!(e.kind(), LayerErrorKind::Type);
    let e = Conv::new(&[1, 4, 5, 5], &[3, 2, 3, 3], &attrs(&[], &[], &[], 2, AutoPad::NotSet)).unwrap_err();
    assert!(e.to_string().contains("group"), "{e}");
    let e = Conv::new(&[1, 4, 5, 5], &[2, 4, 3, 3], &attrs(&[0, 1], &[], &[], 1, AutoPad::NotSet)).unwrap_err();
    assert!(e.to_string().starts_with("attribute strides"), "{e}");
    assert!(e.is_range_error());
    let e = Conv::new(&[1, 4, 5, 5], &[2, 4, 3, 3], &attrs(&[], &[1, 1], &[], 1, AutoPad::NotSet)).unwrap_err();
    assert!(e.to_string().starts_with("attribute pads"), "{e}");
    let e = Conv::new(&[1, 4, 2, 2], &[2, 4, 3, 3], &ConvAttrs::default()).unwrap_err();
    assert!(e.to_string().contains("empty"), "{e}");
    let e = Conv::new(&[1, 4, 5], &[2, 4, 3, 3], &ConvAttrs::default()).unwrap_err();
    assert!(e.to_string().starts_with("w has rank 4"), "{e}");
    let layer = Conv::new(&[1, 4, 5, 5], &[2, 4, 3, 3], &ConvAttrs::default()).unwrap();
    let e = layer.forward(&[0.0; 99], &[0.0; 72], None, &mut [0.0; 18]).unwrap_err();
    assert!(e.to_string().starts_with("x has 99 elements, expected 100"), "{e}");
    let e = layer.forward(&[0.0; 100], &[0.0; 72], Some(&[0.0; 3]), &mut [0.0; 18]).unwrap_err();
    assert!(e.to_string().starts_with("bias has 3 elements, expected 2"), "{e}");
    assert!(AutoPad::parse("SAME").unwrap_err().to_string().contains("auto_pad"));
    let e = Gemm::new(&[3, 4], &[5, 6], None, GemmAttrs::default()).unwrap_err();
    assert!(e.to_string().starts_with("b:"), "{e}");
    let e = MatMul::new(&[2, 3, 4], &[3, 4, 5]).unwrap_err();
    assert!(e.to_string().contains("broadcast"), "{e}");
}

#[test]
fn conv_from_cached_columns_matches_the_reference() {
    // forward_cols against the plain reference conv; weight_grad_cols against the adjoint
    // identity ⟨dW, v⟩ = ⟨dy, conv(x, v)⟩ (no bias), for every case (depthwise and 1×1 included).
    for (i, case) in conv_cases().iter().enumerate() {
        let layer = Conv::new(&case.x, &case.w, &case.attrs).unwrap();
        let g = *layer.geometry();
        let (x, w, b) = (data(g.x_len(), 210 + i as u64), data(g.w_len(), 220 + i as u64), data(g.out_channels, 230 + i as u64));
        let sl = g.x_len() / g.batch;
        let cl = layer.cols_len();
        let mut cols = vec![f32::NAN; g.batch * cl];
        for n in 0..g.batch {
            layer.sample_cols(&x[n * sl..(n + 1) * sl], &mut cols[n * cl..(n + 1) * cl]).unwrap();
        }
        if !layer.needs_cols() {
            assert_eq!(cl, sl, "case {i}: a column-free conv has x as its columns");
        }
        let views: Vec<&[f32]> = cols.chunks(cl).collect();
        for threads in [Some(1), Some(2)] {
            let mut y = vec![f32::NAN; g.y_len()];
            with_threads(threads, || layer.forward_cols(&views, &w, Some(&b), &mut y)).unwrap();
            assert_close(&y, &r::conv(&g, &to64(&x), &to64(&w), Some(&to64(&b))), REL, &format!("forward_cols case {i} threads {threads:?}"));
            let dy = data(g.y_len(), 240 + i as u64);
            let vw = data(g.w_len(), 250 + i as u64);
            let mut dw = vec![f32::NAN; g.w_len()];
            with_threads(threads, || layer.weight_grad_cols(&views, &dy, &mut dw)).unwrap();
            let lhs: f64 = dw.iter().zip(&vw).map(|(a, b)| *a as f64 * *b as f64).sum();
            let rhs: f64 = dy.iter().zip(r::conv(&g, &to64(&x), &to64(&vw), None)).map(|(a, b)| *a as f64 * b).sum();
            assert!((lhs - rhs).abs() <= 1e-4 * rhs.abs().max(1.0), "weight_grad_cols case {i}: {lhs} vs {rhs}");
            // The same from the samples' x, one slice each (im2col inside the kernels).
            let samples: Vec<&[f32]> = x.chunks(sl).collect();
            let mut y2 = vec![f32::NAN; g.y_len()];
            with_threads(threads, || layer.forward_samples(&samples, &w, Some(&b), &mut y2)).unwrap();
            assert_close(&y2, &r::conv(&g, &to64(&x), &to64(&w), Some(&to64(&b))), REL, &format!("forward_samples case {i} threads {threads:?}"));
            let mut dw2 = vec![f32::NAN; g.w_len()];
            with_threads(threads, || layer.weight_grad_samples(&samples, &dy, &mut dw2)).unwrap();
            let lhs2: f64 = dw2.iter().zip(&vw).map(|(a, b)| *a as f64 * *b as f64).sum();
            assert!((lhs2 - rhs).abs() <= 1e-4 * rhs.abs().max(1.0), "weight_grad_samples case {i}: {lhs2} vs {rhs}");
        }
        assert!(layer.forward_cols(&views[..views.len() - 1], &w, None, &mut vec![0.0; g.y_len()]).is_err() || g.batch == 0);
    }
}
