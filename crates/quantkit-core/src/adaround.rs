//! AdaRound (Nagel et al. 2020, "Up or Down? Adaptive Rounding for Post-Training Quantization"),
//! one layer at a time, as aimet-onnx 2.42 does it (`aimet_onnx/adaround/*.py`):
//!
//! - rounding variables V, one per weight, with the rectified sigmoid
//!   `h(V) = clip(σ(V)·(ζ − γ) + γ, 0, 1)`, ζ = 1.1, γ = −0.1;
//! - soft-quantized weight `W̃ = (clamp(⌊W/s⌋ + h(V) − o, qmin, qmax) + o)·s` on the quantizer's
//!   grid (`o` is AIMET's offset, x̂ = (q + o)·s; per tensor or per channel);
//! - V starts where h(V) is the fractional part of W/s (`V = −ln((ζ − γ)/(frac − γ) − 1)`), so the
//!   soft weight starts at the float weight and the hard one at round-to-nearest;
//! - loss = reconstruction + rounding: `‖f(layer(X, W̃)) − f(Y)‖²` summed over dimension 1 and
//!   averaged over the rest (AIMET's `norm(·, dim=1)².mean()`; f is the following activation when
//!   asked: Relu, Clip, Sigmoid or Tanh),
//!   plus, after the warm start, `λ·Σ(1 − |2h − 1|^β)` with β annealed by a cosine from
//!   β_start to β_end over the remaining iterations;
//! - Adam (PyTorch's defaults: lr 1e-3, β₁ 0.9, β₂ 0.999, ε 1e-8) on V, a random mini-batch of
//!   `batch_size` samples (32) per iteration;
//! - at the end h is hardened to `V ≥ 0` and the integer codes are returned.
//!
//! The layer's forward and backward are the shared kernels of [`crate::layers`]; the gradient of
//! W̃ is `s·dh/dV` where the clamp to the grid is inactive (PyTorch's `clamp` passes the gradient
//! at the bounds too) and 0 elsewhere.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::layers::{Conv, ConvAttrs, ConvGrads, ConvTranspose, ConvTransposeAttrs, Gemm, GemmAttrs, GemmGrads, LayerError, MatMul, MatMulGrads};

pub const ZETA: f32 = 1.1;
pub const GAMMA: f32 = -0.1;

#[derive(Debug)]
pub enum AdaroundError {
    Layer(LayerError),
    /// An argument of the wrong length or value; names it.
    Argument(String),
    /// The loss stopped being finite at this iteration.
    NonFinite { iteration: usize },
    Cancelled,
}

impl fmt::Display for AdaroundError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AdaroundError::Layer(e) => write!(f, "{e}"),
            AdaroundError::Argument(m) => write!(f, "{m}"),
            AdaroundError::NonFinite { iteration } => write!(f, "the AdaRound loss is not finite at iteration {iteration}"),
            AdaroundError::Cancelled => write!(f, "AdaRound was aborted"),
        }
    }
}

impl std::error::Error for AdaroundError {}

impl From<LayerError> for AdaroundError {
    fn from(e: LayerError) -> Self {
        AdaroundError::Layer(e)
    }
}

fn arg(msg: impl Into<String>) -> AdaroundError {
    AdaroundError::Argument(msg.into())
}

/// Which layer the weight belongs to. Samples are the leading dimension of X (Gemm: rows of A,
/// so `trans_a` is not supported).
#[derive(Clone, Debug)]
pub enum LayerKind {
    Conv(ConvAttrs),
    ConvTranspose(ConvTransposeAttrs),
    /// `c_shape`: the bias C's shape when there is one; it must not vary per row.
    Gemm { attrs: GemmAttrs, c_shape: Option<Vec<usize>> },
    MatMul,
}

#[derive(Clone, Debug)]
pub struct LayerSpec {
    pub kind: LayerKind,
    /// X's shape without the sample dimension.
    pub sample_shape: Vec<usize>,
    pub w_shape: Vec<usize>,
}

enum Built {
    Conv(Conv),
    ConvTranspose(ConvTranspose),
    Gemm(Gemm),
    MatMul(MatMul),
}

impl LayerSpec {
    fn x_shape(&self, batch: usize) -> Vec<usize> {
        let mut s = vec![batch];
        s.extend_from_slice(&self.sample_shape);
        s
    }

    fn sample_len(&self) -> usize {
        self.sample_shape.iter().product()
    }

    fn build(&self, batch: usize) -> Result<Built, AdaroundError> {
        let xs = self.x_shape(batch);
        Ok(match &self.kind {
            LayerKind::Conv(a) => Built::Conv(Conv::new(&xs, &self.w_shape, a)?),
            LayerKind::ConvTranspose(a) => Built::ConvTranspose(ConvTranspose::new(&xs, &self.w_shape, a)?),
            LayerKind::Gemm { attrs, c_shape } => {
                if attrs.trans_a {
                    return Err(arg("Gemm with transA = 1 is not supported by AdaRound (samples must be A's rows)"));
                }
                if let Some([r, _]) = c_shape.as_deref() {
                    if *r != 1 {
                        return Err(arg(format!("Gemm's C has shape {c_shape:?}; AdaRound needs a C that does not vary per row")));
                    }
                }
                Built::Gemm(Gemm::new(&xs, &self.w_shape, c_shape.as_deref(), *attrs)?)
            }
            LayerKind::MatMul => {
                if self.w_shape.len() != 2 {
                    return Err(arg(format!("MatMul weight must be 2-D, got shape {:?}", self.w_shape)));
                }
                Built::MatMul(MatMul::new(&xs, &self.w_shape)?)
            }
        })
    }
}

impl Built {
    fn y_len(&self) -> usize {
        match self {
            Built::Conv(l) => l.geometry().y_len(),
            Built::ConvTranspose(l) => l.geometry().y_len(),
            Built::Gemm(l) => l.output_shape().iter().product(),
            Built::MatMul(l) => l.output_shape().iter().product(),
        }
    }

    fn out_shape(&self) -> Vec<usize> {
        match self {
            Built::Conv(l) => l.output_shape(),
            Built::ConvTranspose(l) => l.output_shape(),
            Built::Gemm(l) => l.output_shape(),
            Built::MatMul(l) => l.output_shape(),
        }
    }

    fn forward(&self, x: &[f32], w: &[f32], bias: Option<&[f32]>, y: &mut [f32]) -> Result<(), LayerError> {
        match self {
            Built::Conv(l) => l.forward(x, w, bias, y),
            Built::ConvTranspose(l) => l.forward(x, w, bias, y),
            Built::Gemm(l) => l.forward(x, w, bias, y),
            Built::MatMul(l) => l.forward(x, w, y),
        }
    }

    fn weight_grad(&self, x: &[f32], w: &[f32], dy: &[f32], dw: &mut [f32]) -> Result<(), LayerError> {
        match self {
            Built::Conv(l) => l.backward(x, w, dy, ConvGrads { dw: Some(dw), ..Default::default() }),
            Built::ConvTranspose(l) => l.backward(x, w, dy, ConvGrads { dw: Some(dw), ..Default::default() }),
            Built::Gemm(l) => l.backward(x, w, dy, GemmGrads { db: Some(dw), ..Default::default() }),
            Built::MatMul(l) => l.backward(x, w, dy, MatMulGrads { db: Some(dw), ..Default::default() }),
        }
    }
}

/// The weight's quantization grid: one scale and offset per tensor or per channel of `axis`.
#[derive(Clone, Debug)]
pub struct WeightGrid {
    pub scale: Vec<f32>,
    /// AIMET's offset: x̂ = (q + offset)·scale.
    pub offset: Vec<f32>,
    pub qmin: f32,
    pub qmax: f32,
    /// Channel axis of the weight when per channel.
    pub axis: Option<usize>,
}

/// A function applied to both outputs before the reconstruction loss (AIMET applies the
/// activation that follows the layer: Relu, Clip, Sigmoid, Tanh; see docs/adaround.md).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Activation {
    #[default]
    None,
    Relu,
    /// min(max(v, min), max); Relu6 is `Clip { min: 0, max: 6 }`.
    Clip { min: f32, max: f32 },
    Sigmoid,
    Tanh,
}

#[derive(Clone, Debug)]
pub struct AdaroundOptions {
    pub iterations: usize,
    pub reg_param: f32,
    pub beta_start: f32,
    pub beta_end: f32,
    pub warm_start: f32,
    pub batch_size: usize,
    pub learning_rate: f32,
    pub activation: Activation,
    pub seed: u64,
}

impl Default for AdaroundOptions {
    fn default() -> Self {
        AdaroundOptions {
            iterations: 10_000,
            reg_param: 0.01,
            beta_start: 20.0,
            beta_end: 2.0,
            warm_start: 0.2,
            batch_size: 32,
            learning_rate: 1e-3,
            activation: Activation::None,
            seed: 0,
        }
    }
}

/// Cancellation and progress shared with the caller (another thread reads and sets them).
#[derive(Default, Debug)]
pub struct Control {
    pub cancel: AtomicBool,
    /// Iterations done so far.
    pub iterations: AtomicU64,
}

/// One layer's data: `n` samples of X, the float weight, its bias, and the target Y (the float
/// model's output for these samples; computed from X and W when absent).
pub struct Problem<'a> {
    pub layer: LayerSpec,
    pub x: &'a [f32],
    pub n: usize,
    pub w: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub y: Option<&'a [f32]>,
}

#[derive(Clone, Debug)]
pub struct AdaroundResult {
    /// Integer codes on the grid [qmin, qmax], in the weight's layout.
    pub codes: Vec<i32>,
    /// The dequantized weight `(code + offset)·scale`.
    pub weights: Vec<f32>,
    /// Reconstruction loss over all samples with round-to-nearest weights, and with AdaRound's.
    pub loss_nearest: f64,
    pub loss_adaround: f64,
    /// Codes that differ from round-to-nearest's.
    pub flips: usize,
    pub iterations: usize,
    pub millis: f64,
    /// Where the loop's time went: the layer's forward (with the soft weights and the loss), its
    /// weight gradient, and the rest (rounding gradient, regulariser, Adam, sampling).
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub update_ms: f64,
}

/// Im2col columns of every sample are computed once when they take at most this many bytes
/// (else every iteration recomputes them).
pub const MAX_COLS_BYTES: usize = 1 << 30;

/// Element-wise passes over weights (and the loss over outputs) split over rayon's pool in
/// pieces of at least this many elements.
const PAR_WEIGHTS: usize = 8192;

/// The per-weight constants: scale, ⌊W/s⌋ − offset, the offset.
struct Lattice {
    s: Vec<f32>,
    base: Vec<f32>,
    off: Vec<f32>,
    qmin: f32,
    qmax: f32,
}

impl Lattice {
    fn new(w: &[f32], w_shape: &[usize], g: &WeightGrid) -> Result<Self, AdaroundError> {
        let channels = match g.axis {
            None => 1,
            Some(a) => *w_shape.get(a).ok_or_else(|| arg(format!("axis {a} is out of range for a weight of shape {w_shape:?}")))?,
        };
        if g.scale.len() != channels || g.offset.len() != channels {
            return Err(arg(format!(
                "expected {channels} scales and offsets (weight {w_shape:?}, axis {:?}), got {} and {}",
                g.axis, g.scale.len(), g.offset.len()
            )));
        }
        if let Some(bad) = g.scale.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(arg(format!("scales must be positive and finite, got {bad}")));
        }
        if !(g.qmin < g.qmax) {
            return Err(arg(format!("grid [{}, {}] is empty", g.qmin, g.qmax)));
        }
        let inner: usize = g.axis.map(|a| w_shape[a + 1..].iter().product()).unwrap_or(1);
        let mut s = Vec::with_capacity(w.len());
        let mut base = Vec::with_capacity(w.len());
        let mut off = Vec::with_capacity(w.len());
        for (i, &wi) in w.iter().enumerate() {
            let c = if g.axis.is_some() { (i / inner) % channels } else { 0 };
            let (sc, o) = (g.scale[c], g.offset[c]);
            s.push(sc);
            base.push((wi / sc).floor() - o);
            off.push(o);
        }
        Ok(Lattice { s, base, off, qmin: g.qmin, qmax: g.qmax })
    }

    fn dequant(&self, i: usize, h: f32) -> (f32, bool) {
        let q = self.base[i] + h;
        let inside = q >= self.qmin && q <= self.qmax;
        ((q.clamp(self.qmin, self.qmax) + self.off[i]) * self.s[i], inside)
    }
}

#[inline]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// h(V) = clip(σ(V)(ζ − γ) + γ, 0, 1) and dh/dV (0 where clipped).
#[inline]
pub fn rectified_sigmoid(v: f32) -> (f32, f32) {
    let sg = sigmoid(v);
    let h = sg * (ZETA - GAMMA) + GAMMA;
    if h <= 0.0 {
        (0.0, 0.0)
    } else if h >= 1.0 {
        (1.0, 0.0)
    } else {
        (h, sg * (1.0 - sg) * (ZETA - GAMMA))
    }
}

/// V such that h(V) = frac (frac in [0, 1)), as aimet's `initialize_alpha`.
pub fn initial_v(frac: f32) -> f32 {
    -((ZETA - GAMMA) / (frac - GAMMA) - 1.0).ln()
}

/// β at `iter` (cosine from start to end after the warm start), as aimet's `_compute_beta`.
pub fn beta_at(iter: usize, opts: &AdaroundOptions) -> f32 {
    let total = opts.iterations as f64;
    let warm = opts.warm_start as f64 * total;
    let rel = (iter as f64 - warm) / (total - warm);
    (opts.beta_end as f64 + 0.5 * (opts.beta_start - opts.beta_end) as f64 * (1.0 + (rel * std::f64::consts::PI).cos())) as f32
}

fn regularised(iter: usize, opts: &AdaroundOptions) -> bool {
    (iter as f64) >= opts.warm_start as f64 * opts.iterations as f64
}

/// f applied to the output and its derivative mask.
#[inline]
fn act(a: Activation, v: f32) -> (f32, f32) {
    match a {
        Activation::None => (v, 1.0),
        Activation::Relu => {
            if v > 0.0 {
                (v, 1.0)
            } else {
                (0.0, 0.0)
            }
        }
        // The derivative is 1 strictly inside (PyTorch's hardtanh/clamp pass it at the bounds
        // too; the set of measure zero does not matter for the loss).
        Activation::Clip { min, max } => {
            if v < min {
                (min, 0.0)
            } else if v > max {
                (max, 0.0)
            } else {
                (v, 1.0)
            }
        }
        Activation::Sigmoid => {
            let s = sigmoid(v);
            (s, s * (1.0 - s))
        }
        Activation::Tanh => {
            let t = v.tanh();
            (t, 1.0 - t * t)
        }
    }
}

/// Σ (f(o) − t)² over one sample's outputs, and `o ← scale·(f(o) − t)·f'(o)` in place (the loss's
/// gradient w.r.t. the output). Branch-free per activation and with eight partial sums so that
/// it vectorises; partial sums go to f64 every 1,024 elements.
fn loss_grad_sample(a: Activation, o: &mut [f32], t: &[f32], scale: f32) -> f64 {
    let mut sum = 0f64;
    for (oc, tc) in o.chunks_mut(1024).zip(t.chunks(1024)) {
        let mut acc = [0f32; 8];
        let n8 = oc.len() - oc.len() % 8;
        let (o8, orest) = oc.split_at_mut(n8);
        let (t8, trest) = tc.split_at(n8);
        match a {
            Activation::None => {
                for (ob, tb) in o8.chunks_exact_mut(8).zip(t8.chunks_exact(8)) {
                    for l in 0..8 {
                        let d = ob[l] - tb[l];
                        acc[l] += d * d;
                        ob[l] = scale * d;
                    }
                }
            }
            Activation::Relu => {
                for (ob, tb) in o8.chunks_exact_mut(8).zip(t8.chunks_exact(8)) {
                    for l in 0..8 {
                        let pos = ob[l] > 0.0;
                        let d = ob[l].max(0.0) - tb[l];
                        acc[l] += d * d;
                        ob[l] = if pos { scale * d } else { 0.0 };
                    }
                }
            }
            _ => {
                for (ob, tb) in o8.chunks_exact_mut(8).zip(t8.chunks_exact(8)) {
                    for l in 0..8 {
                        let (fo, df) = act(a, ob[l]);
                        let d = fo - tb[l];
                        acc[l] += d * d;
                        ob[l] = scale * d * df;
                    }
                }
            }
        }
        for (o, &t) in orest.iter_mut().zip(trest) {
            let (fo, mask) = act(a, *o);
            let d = fo - t;
            acc[0] += d * d;
            *o = scale * d * mask;
        }
        sum += acc.iter().map(|&v| v as f64).sum::<f64>();
    }
    sum
}

/// AIMET's denominator: the output's elements divided by its dimension 1 (samples × positions).
fn recon_denominator(out_shape: &[usize]) -> f64 {
    let total: usize = out_shape.iter().product();
    let d1 = if out_shape.len() >= 2 { out_shape[1] } else { 1 };
    (total / d1.max(1)).max(1) as f64
}

/// The columns of the samples `idx` when they are cached (Conv).
/// Conv: the samples `idx` as one slice each, either their cached columns (true) or their x.
fn sample_cols<'s>(layer: &Built, cols: &'s Option<Vec<f32>>, cols_are_x: bool, x: &'s [f32], idx: &[usize]) -> Option<(Vec<&'s [f32]>, bool)> {
    let Built::Conv(conv) = layer else { return None };
    let (src, len, are_cols): (&[f32], usize, bool) = match (cols, cols_are_x) {
        (Some(c), _) => (c, conv.cols_len(), true),
        (None, true) => (x, conv.geometry().x_len() / conv.geometry().batch.max(1), false),
        (None, false) => return None,
    };
    Some((idx.iter().map(|&i| &src[i * len..(i + 1) * len]).collect(), are_cols))
}

/// The optimisation state of one layer: the data, the lattice and reusable buffers.
pub struct Adaround<'a> {
    p: Problem<'a>,
    lat: Lattice,
    opts: AdaroundOptions,
    y: std::borrow::Cow<'a, [f32]>,
    y_sample: usize,
    layer: Built,
    // per-iteration buffers
    xb: Vec<f32>,
    out: Vec<f32>,
    wt: Vec<f32>,
    dw: Vec<f32>,
    dh: Vec<f32>,
    inside: Vec<bool>,
    hv: Vec<f32>,
    /// f(Y) when f is not the identity.
    fy: Option<Vec<f32>>,
    /// Conv only: every sample's im2col columns when worth caching; else (`cols_are_x`) the
    /// kernels read each sample's x in place (im2col per task into cache-resident scratch).
    cols: Option<Vec<f32>>,
    cols_are_x: bool,
    timing: [f64; 3],
}

impl<'a> Adaround<'a> {
    pub fn new(p: Problem<'a>, grid: &WeightGrid, opts: AdaroundOptions) -> Result<Self, AdaroundError> {
        if p.n == 0 {
            return Err(arg("no samples (n = 0)"));
        }
        if opts.batch_size == 0 {
            return Err(arg("batch_size must be at least 1"));
        }
        if !(0.0..1.0).contains(&opts.warm_start) {
            return Err(arg(format!("warm_start must be in [0, 1), got {}", opts.warm_start)));
        }
        let w_len: usize = p.layer.w_shape.iter().product();
        if p.w.len() != w_len {
            return Err(arg(format!("w: expected {w_len} values for shape {:?}, got {}", p.layer.w_shape, p.w.len())));
        }
        let sl = p.layer.sample_len();
        if p.x.len() != p.n * sl {
            return Err(arg(format!("x: expected {} values ({} samples of {:?}), got {}", p.n * sl, p.n, p.layer.sample_shape, p.x.len())));
        }
        let lat = Lattice::new(p.w, &p.layer.w_shape, grid)?;
        let one = p.layer.build(1)?;
        let y_sample = one.y_len();
        let y: std::borrow::Cow<'a, [f32]> = match p.y {
            Some(y) => {
                if y.len() != p.n * y_sample {
                    return Err(arg(format!("y: expected {} values ({} samples of {:?}), got {}", p.n * y_sample, p.n, &one.out_shape()[1..], y.len())));
                }
                std::borrow::Cow::Borrowed(y)
            }
            None => {
                let mut y = vec![0f32; p.n * y_sample];
                let chunk = opts.batch_size.min(p.n);
                let mut start = 0;
                while start < p.n {
                    let b = chunk.min(p.n - start);
                    let l = p.layer.build(b)?;
                    l.forward(&p.x[start * sl..(start + b) * sl], p.w, p.bias, &mut y[start * y_sample..(start + b) * y_sample])?;
                    start += b;
                }
                std::borrow::Cow::Owned(y)
            }
        };
        let b = opts.batch_size.min(p.n);
        let layer = p.layer.build(b)?;
        let (mut cols, mut cols_are_x) = (None, false);
        if let Built::Conv(conv) = &layer {
            // Columns cached once when they pay and fit; else the kernels read each sample's x.
            if conv.columns_worth_caching() && p.n.saturating_mul(conv.cols_len()).saturating_mul(4) <= MAX_COLS_BYTES {
                let cl = conv.cols_len();
                let mut all = vec![0f32; p.n * cl];
                for i in 0..p.n {
                    conv.sample_cols(&p.x[i * sl..(i + 1) * sl], &mut all[i * cl..(i + 1) * cl])?;
                }
                cols = Some(all);
            } else {
                cols_are_x = true;
            }
        }
        Ok(Adaround {
            cols,
            cols_are_x,
            timing: [0.0; 3],
            xb: vec![0.0; b * sl],
            out: vec![0.0; b * y_sample],
            wt: vec![0.0; w_len],
            dw: vec![0.0; w_len],
            dh: vec![0.0; w_len],
            inside: vec![false; w_len],
            hv: vec![0.0; w_len],
            fy: match opts.activation {
                Activation::None => None,
                a => Some(y.iter().map(|&t| act(a, t).0).collect()),
            },
            p,
            lat,
            opts,
            y,
            y_sample,
            layer,
        })
    }

    /// V at the start: h(V) = the fractional part of W/s.
    pub fn initial_v(&self) -> Vec<f32> {
        self.p.w.iter().zip(&self.lat.s).map(|(&w, &s)| initial_v(w / s - (w / s).floor())).collect()
    }

    /// The samples' x into the batch buffer, unless the layer reads cached columns.
    fn gather(&mut self, idx: &[usize]) {
        if self.cols.is_some() || self.cols_are_x {
            return;
        }
        let sl = self.p.layer.sample_len();
        for (j, &i) in idx.iter().enumerate() {
            self.xb[j * sl..(j + 1) * sl].copy_from_slice(&self.p.x[i * sl..(i + 1) * sl]);
        }
    }

    /// Loss at V on the samples `idx` (exactly `batch_size.min(n)` of them) at iteration `iter`,
    /// and its gradient w.r.t. V written into `grad`. Returns (total, reconstruction, rounding).
    pub fn loss_and_grad(&mut self, v: &[f32], idx: &[usize], iter: usize, grad: &mut [f32]) -> Result<(f64, f64, f64), AdaroundError> {
        let t0 = Instant::now();
        self.gather(idx);
        {
            let lat = &self.lat;
            self.wt
                .par_iter_mut()
                .zip(self.dh.par_iter_mut())
                .zip(self.hv.par_iter_mut())
                .zip(self.inside.par_iter_mut())
                .enumerate()
                .with_min_len(PAR_WEIGHTS)
                .for_each(|(i, (((w, dh), hv), inside))| {
                    let (h, d) = rectified_sigmoid(v[i]);
                    let (wv, ins) = lat.dequant(i, h);
                    (*w, *dh, *hv, *inside) = (wv, d, h, ins);
                });
        }
        let cols = sample_cols(&self.layer, &self.cols, self.cols_are_x, self.p.x, idx);
        match (&self.layer, &cols) {
            (Built::Conv(conv), Some((c, true))) => conv.forward_cols(c, &self.wt, self.p.bias, &mut self.out)?,
            (Built::Conv(conv), Some((c, false))) => conv.forward_samples(c, &self.wt, self.p.bias, &mut self.out)?,
            _ => self.layer.forward(&self.xb, &self.wt, self.p.bias, &mut self.out)?,
        }
        let denom = recon_denominator(&self.layer.out_shape());
        let a = self.opts.activation;
        let ys = self.y_sample;
        let fy: &[f32] = self.fy.as_deref().unwrap_or(&self.y);
        let scale = (2.0 / denom) as f32;
        // Per sample, against f(Y) of that sample (no copy of the targets); dL/dout in place of out.
        let recon: f64 = self
            .out
            .par_chunks_mut(ys)
            .zip(idx.par_iter())
            .with_min_len((PAR_WEIGHTS / ys.max(1)).max(1))
            .map(|(o, &i)| loss_grad_sample(a, o, &fy[i * ys..(i + 1) * ys], scale))
            .sum::<f64>()
            / denom;
        let t1 = Instant::now();
        match (&self.layer, &cols) {
            (Built::Conv(conv), Some((c, true))) => conv.weight_grad_cols(c, &self.out, &mut self.dw)?,
            (Built::Conv(conv), Some((c, false))) => conv.weight_grad_samples(c, &self.out, &mut self.dw)?,
            _ => self.layer.weight_grad(&self.xb, &self.wt, &self.out, &mut self.dw)?,
        }
        drop(cols);
        let t2 = Instant::now();
        self.timing[0] += (t1 - t0).as_secs_f64() * 1e3;
        self.timing[1] += (t2 - t1).as_secs_f64() * 1e3;
        let reg_on = regularised(iter, &self.opts);
        let beta = beta_at(iter, &self.opts);
        let lambda = self.opts.reg_param;
        let (dw, s, hv, dh, inside) = (&self.dw, &self.lat.s, &self.hv, &self.dh, &self.inside);
        let round: f64 = grad
            .par_iter_mut()
            .enumerate()
            .with_min_len(PAR_WEIGHTS)
            .map(|(i, g)| {
                let mut dl_dh = if inside[i] { dw[i] * s[i] } else { 0.0 };
                let mut r = 0f32;
                if reg_on {
                    // λ(1 − |u|^β), u = 2h − 1, and its derivative −2λβ|u|^(β−1)·sign(u).
                    let u = 2.0 * hv[i] - 1.0;
                    let au = u.abs();
                    if au > 0.0 {
                        let pb = (beta * au.ln()).exp();
                        r = lambda * (1.0 - pb);
                        dl_dh -= 2.0 * lambda * beta * (pb / au) * u.signum();
                    } else {
                        r = lambda;
                    }
                }
                *g = dl_dh * dh[i];
                r as f64
            })
            .sum();
        Ok((recon + round, recon, round))
    }

    /// Reconstruction loss over all samples with the weight `w`.
    pub fn full_loss(&self, w: &[f32]) -> Result<f64, AdaroundError> {
        let sl = self.p.layer.sample_len();
        let ys = self.y_sample;
        let chunk = self.opts.batch_size.min(self.p.n);
        let a = self.opts.activation;
        let mut out = vec![0f32; chunk * ys];
        let (mut sum, mut denom) = (0f64, 0f64);
        let mut start = 0;
        while start < self.p.n {
            let b = chunk.min(self.p.n - start);
            let l = if b == chunk { None } else { Some(self.p.layer.build(b)?) };
            let l = l.as_ref().unwrap_or(&self.layer);
            let o = &mut out[..b * ys];
            l.forward(&self.p.x[start * sl..(start + b) * sl], w, self.p.bias, o)?;
            for (v, &t) in o.iter().zip(&self.y[start * ys..(start + b) * ys]) {
                let d = (act(a, *v).0 - act(a, t).0) as f64;
                sum += d * d;
            }
            denom += recon_denominator(&l.out_shape());
            start += b;
        }
        Ok(sum / denom)
    }

    /// Codes of round-to-nearest (ties to even, as QuantizeLinear) and of hard rounding of V.
    fn codes(&self, v: Option<&[f32]>) -> Vec<i32> {
        (0..self.p.w.len())
            .map(|i| {
                let q = match v {
                    Some(v) => self.lat.base[i] + if v[i] >= 0.0 { 1.0 } else { 0.0 },
                    None => (self.p.w[i] / self.lat.s[i]).round_ties_even() - self.lat.off[i],
                };
                q.clamp(self.lat.qmin, self.lat.qmax) as i32
            })
            .collect()
    }

    fn dequant_codes(&self, codes: &[i32]) -> Vec<f32> {
        codes.iter().enumerate().map(|(i, &q)| (q as f32 + self.lat.off[i]) * self.lat.s[i]).collect()
    }

    /// Runs the optimisation and hardens the rounding.
    pub fn run(mut self, control: Option<&Control>) -> Result<AdaroundResult, AdaroundError> {
        let start = Instant::now();
        let n = self.p.n;
        self.timing = [0.0; 3];
        let b = self.opts.batch_size.min(n);
        let mut v = self.initial_v();
        let mut grad = vec![0f32; v.len()];
        let (mut m1, mut m2) = (vec![0f32; v.len()], vec![0f32; v.len()]);
        let (b1, b2, eps, lr) = (0.9f32, 0.999f32, 1e-8f32, self.opts.learning_rate);
        let mut rng = SplitMix(self.opts.seed ^ 0x9e37_79b9_7f4a_7c15);
        let mut perm: Vec<usize> = (0..n).collect();
        let mut idx = vec![0usize; b];
        for it in 0..self.opts.iterations {
            if let Some(c) = control {
                if c.cancel.load(Ordering::Relaxed) {
                    return Err(AdaroundError::Cancelled);
                }
            }
            // b distinct samples: a partial Fisher–Yates shuffle.
            for j in 0..b {
                let k = j + (rng.next() % (n - j) as u64) as usize;
                perm.swap(j, k);
                idx[j] = perm[j];
            }
            let (total, _, _) = self.loss_and_grad(&v, &idx, it, &mut grad)?;
            if !total.is_finite() {
                return Err(AdaroundError::NonFinite { iteration: it });
            }
            let t = (it + 1) as i32;
            let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
            v.par_iter_mut().zip(m1.par_iter_mut()).zip(m2.par_iter_mut()).zip(grad.par_iter()).with_min_len(PAR_WEIGHTS).for_each(|(((v, m1), m2), &g)| {
                *m1 = b1 * *m1 + (1.0 - b1) * g;
                *m2 = b2 * *m2 + (1.0 - b2) * g * g;
                *v -= lr * (*m1 / c1) / ((*m2 / c2).sqrt() + eps);
            });
            if let Some(c) = control {
                c.iterations.store((it + 1) as u64, Ordering::Relaxed);
            }
        }
        let loop_ms = start.elapsed().as_secs_f64() * 1e3;
        let nearest = self.codes(None);
        let codes = self.codes(Some(&v));
        let w_near = self.dequant_codes(&nearest);
        let weights = self.dequant_codes(&codes);
        let loss_nearest = self.full_loss(&w_near)?;
        let loss_adaround = self.full_loss(&weights)?;
        let flips = codes.iter().zip(&nearest).filter(|(a, b)| a != b).count();
        Ok(AdaroundResult {
            codes,
            weights,
            loss_nearest,
            loss_adaround,
            flips,
            iterations: self.opts.iterations,
            millis: start.elapsed().as_secs_f64() * 1e3,
            forward_ms: self.timing[0],
            backward_ms: self.timing[1],
            update_ms: loop_ms - self.timing[0] - self.timing[1],
        })
    }
}

/// AdaRound of one layer (see the module comment).
pub fn adaround(p: Problem, grid: &WeightGrid, opts: AdaroundOptions, control: Option<&Control>) -> Result<AdaroundResult, AdaroundError> {
    Adaround::new(p, grid, opts)?.run(control)
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn randoms(n: usize, seed: u64, scale: f32) -> Vec<f32> {
        let mut r = SplitMix(seed);
        (0..n).map(|_| ((r.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale).collect()
    }

    fn conv_spec(c: usize, m: usize, k: usize, hw: usize) -> LayerSpec {
        LayerSpec { kind: LayerKind::Conv(ConvAttrs { pads: vec![1, 1, 1, 1], ..Default::default() }), sample_shape: vec![c, hw, hw], w_shape: vec![m, c, k, k] }
    }

    /// Per-channel symmetric grid from the weight's max |w| per output channel.
    fn grid(w: &[f32], m: usize, bits: u32) -> WeightGrid {
        let per = w.len() / m;
        let qmax = (1i32 << (bits - 1)) as f32 - 1.0;
        let scale = (0..m).map(|c| w[c * per..(c + 1) * per].iter().fold(0f32, |a, v| a.max(v.abs())) / qmax).collect();
        WeightGrid { scale, offset: vec![0.0; m], qmin: -qmax - 1.0, qmax, axis: Some(0) }
    }

    #[test]
    fn rectified_sigmoid_inverts_initial_v() {
        for f in [0.0f32, 0.1, 0.5, 0.73, 0.999] {
            let (h, _) = rectified_sigmoid(initial_v(f));
            assert!((h - f).abs() < 1e-5, "{f} → {h}");
        }
    }

    #[test]
    fn beta_is_annealed_from_start_to_end() {
        let o = AdaroundOptions { iterations: 100, ..Default::default() };
        assert!((beta_at(20, &o) - 20.0).abs() < 1e-4);
        assert!((beta_at(60, &o) - 11.0).abs() < 1e-4);
        assert!(beta_at(99, &o) < 2.1);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (c, m, k, hw, n) = (2, 3, 3, 5, 4);
        let x = randoms(n * c * hw * hw, 1, 1.0);
        let w = randoms(m * c * k * k, 2, 0.5);
        let bias = randoms(m, 3, 0.1);
        let y = {
            // A target unlike the float output, so the reconstruction gradient is not small.
            let mut y = randoms(n * m * hw * hw, 4, 1.0);
            y.iter_mut().for_each(|v| *v *= 0.5);
            y
        };
        let g = grid(&w, m, 4);
        let clip = Activation::Clip { min: -0.3, max: 0.5 };
        for (iter, act) in [(0, Activation::None), (50, Activation::None), (50, Activation::Relu), (50, clip), (50, Activation::Sigmoid), (0, Activation::Tanh)] {
            let opts = AdaroundOptions { iterations: 100, batch_size: n, activation: act, reg_param: 0.01, ..Default::default() };
            let p = Problem { layer: conv_spec(c, m, k, hw), x: &x, n, w: &w, bias: Some(&bias), y: Some(&y) };
            let mut a = Adaround::new(p, &g, opts).unwrap();
            // Move V off its start so that the regulariser's β-power has a slope and no h sits on a clip.
            let v: Vec<f32> = a.initial_v().iter().zip(randoms(w.len(), 5, 0.5)).map(|(v, r)| v.clamp(-2.0, 2.0) + r).collect();
            let idx: Vec<usize> = (0..n).collect();
            let mut grad = vec![0f32; w.len()];
            a.loss_and_grad(&v, &idx, iter, &mut grad).unwrap();
            let mut scratch = vec![0f32; w.len()];
            let eps = 1e-2f32;
            let mut checked = 0;
            for i in (0..w.len()).step_by(3) {
                let mut vp = v.clone();
                vp[i] += eps;
                let lp = a.loss_and_grad(&vp, &idx, iter, &mut scratch).unwrap().0;
                vp[i] -= 2.0 * eps;
                let lm = a.loss_and_grad(&vp, &idx, iter, &mut scratch).unwrap().0;
                // Skip weights whose grid clamp switches inside the step.
                let fd = ((lp - lm) / (2.0 * eps as f64)) as f32;
                let tol = 2e-2 * fd.abs().max(grad[i].abs()) + 1e-3;
                assert!((fd - grad[i]).abs() <= tol, "iter {iter} {act:?} weight {i}: finite differences {fd}, analytic {}", grad[i]);
                checked += 1;
            }
            assert!(checked > 10);
        }
    }

    /// One weight w̃ = (⌊w/s⌋ + h(V))·s of a [n, 1]·[1, 1] MatMul, no regulariser (warm start): the
    /// loss Σᵢ (f(xᵢw̃) − f(tᵢ))²/n and its V-gradient Σᵢ 2(f(xᵢw̃) − f(tᵢ))·f'(xᵢw̃)·xᵢ·s·h'(V)/n
    /// in closed form (f64), for every activation.
    #[test]
    fn activation_loss_and_gradient_match_the_closed_form() {
        let x = [0.7f32, -1.3, 2.1, 0.2, -0.4];
        let t = [0.4f32, -0.9, 1.5, 0.3, 0.1];
        let (w, s) = (0.83f32, 0.25f32);
        let g = WeightGrid { scale: vec![s], offset: vec![0.0], qmin: -8.0, qmax: 7.0, axis: None };
        let f64_act = |a: Activation, v: f64| -> (f64, f64) {
            match a {
                Activation::None => (v, 1.0),
                Activation::Relu => if v > 0.0 { (v, 1.0) } else { (0.0, 0.0) },
                Activation::Clip { min, max } => if v < min as f64 { (min as f64, 0.0) } else if v > max as f64 { (max as f64, 0.0) } else { (v, 1.0) },
                Activation::Sigmoid => { let e = 1.0 / (1.0 + (-v).exp()); (e, e * (1.0 - e)) }
                Activation::Tanh => { let th = v.tanh(); (th, 1.0 - th * th) }
            }
        };
        for a in [Activation::None, Activation::Relu, Activation::Clip { min: -0.5, max: 0.6 }, Activation::Sigmoid, Activation::Tanh] {
            let opts = AdaroundOptions { iterations: 10, warm_start: 0.5, batch_size: x.len(), activation: a, ..Default::default() };
            let p = Problem { layer: LayerSpec { kind: LayerKind::MatMul, sample_shape: vec![1], w_shape: vec![1, 1] }, x: &x, n: x.len(), w: &[w], bias: None, y: Some(&t) };
            let mut ad = Adaround::new(p, &g, opts).unwrap();
            let v = 0.37f32;
            let idx: Vec<usize> = (0..x.len()).collect();
            let mut grad = [0f32];
            let (total, recon, round) = ad.loss_and_grad(&[v], &idx, 0, &mut grad).unwrap();
            assert_eq!(round, 0.0);
            let sg = 1.0 / (1.0 + (-(v as f64)).exp());
            let h = sg * 1.2 - 0.1;
            let dh = sg * (1.0 - sg) * 1.2;
            let wt = ((w / s).floor() as f64 + h) * s as f64;
            let (mut l, mut dl) = (0f64, 0f64);
            for (&xi, &ti) in x.iter().zip(&t) {
                let (fo, df) = f64_act(a, xi as f64 * wt);
                let d = fo - f64_act(a, ti as f64).0;
                l += d * d;
                dl += 2.0 * d * df * xi as f64 * s as f64 * dh;
            }
            let n = x.len() as f64;
            assert!((recon - l / n).abs() <= 1e-5 * (l / n).abs().max(1e-3), "{a:?}: loss {recon} vs {}", l / n);
            assert!((total - recon).abs() < 1e-12);
            assert!((grad[0] as f64 - dl / n).abs() <= 1e-4 * (dl / n).abs().max(1e-3), "{a:?}: gradient {} vs {}", grad[0], dl / n);
            // The reported full loss too (the hard weight at h = 1: one code up).
            let hard = ((w / s).floor() + 1.0) * s;
            let full = ad.full_loss(&[hard]).unwrap();
            let lf: f64 = x.iter().zip(&t).map(|(&xi, &ti)| (f64_act(a, xi as f64 * hard as f64).0 - f64_act(a, ti as f64).0).powi(2)).sum::<f64>() / n;
            assert!((full - lf).abs() <= 1e-5 * lf.max(1e-3), "{a:?}: full loss {full} vs {lf}");
        }
    }

    #[test]
    fn regulariser_alone_converges_to_nearest() {
        let (c, m, k, hw, n) = (2, 4, 3, 4, 8);
        let x = vec![0f32; n * c * hw * hw]; // zero input: the reconstruction loss has no gradient
        let w = randoms(m * c * k * k, 7, 0.5);
        let g = grid(&w, m, 4);
        let opts = AdaroundOptions { iterations: 2000, warm_start: 0.0, reg_param: 0.01, ..Default::default() };
        let p = Problem { layer: conv_spec(c, m, k, hw), x: &x, n, w: &w, bias: None, y: None };
        let mut a = Adaround::new(p, &g, opts).unwrap();
        let r = {
            let v0 = a.initial_v();
            let idx: Vec<usize> = (0..n.min(32)).collect();
            let mut grad = vec![0f32; w.len()];
            a.loss_and_grad(&v0, &idx, 0, &mut grad).unwrap();
            a.run(None).unwrap()
        };
        assert_eq!(r.flips, 0, "with only the regulariser every weight rounds to nearest");
    }

    #[test]
    fn adaround_beats_nearest_on_a_conv() {
        let (c, m, k, hw, n) = (4, 8, 3, 6, 64);
        let x = randoms(n * c * hw * hw, 11, 1.0);
        let w = randoms(m * c * k * k, 12, 0.3);
        let g = grid(&w, m, 4);
        let opts = AdaroundOptions { iterations: 400, ..Default::default() };
        let p = Problem { layer: conv_spec(c, m, k, hw), x: &x, n, w: &w, bias: None, y: None };
        let r = adaround(p, &g, opts, None).unwrap();
        assert!(r.loss_adaround < r.loss_nearest, "adaround {} vs nearest {}", r.loss_adaround, r.loss_nearest);
        assert!(r.flips > 0);
        for (i, &q) in r.codes.iter().enumerate() {
            assert!((-8..=7).contains(&q));
            let near = ((w[i] / g.scale[i / (c * k * k)]).round_ties_even()).clamp(-8.0, 7.0) as i32;
            assert!((q - near).abs() <= 1, "code {q} vs nearest {near}");
        }
    }

    /// The codes and losses do not depend on rayon's thread count (CI has 2 cores, laptops more):
    /// the kernels split products over rows/columns of the output, never over the summed
    /// dimension, and the reported sums are serial. Shapes above the parallel thresholds (MNIST's
    /// conv2 and a wide Gemm, a strided ConvTranspose).
    #[test]
    fn result_does_not_depend_on_the_thread_count() {
        use crate::layers::with_threads;
        let cases: Vec<(LayerSpec, usize)> = vec![
            (conv_spec(16, 32, 3, 14), 0),
            (LayerSpec { kind: LayerKind::Gemm { attrs: GemmAttrs::default(), c_shape: None }, sample_shape: vec![784], w_shape: vec![784, 64] }, 1),
            (
                LayerSpec {
                    kind: LayerKind::ConvTranspose(ConvTransposeAttrs { conv: ConvAttrs { strides: vec![2, 2], pads: vec![1, 0, 0, 1], ..Default::default() }, output_padding: vec![1, 1], output_shape: vec![] }),
                    sample_shape: vec![16, 12, 12],
                    w_shape: vec![16, 24, 3, 3],
                },
                1,
            ),
        ];
        for (spec, axis) in cases {
            let n = 48;
            let sl: usize = spec.sample_shape.iter().product();
            let x = randoms(n * sl, 21, 1.0);
            let w = randoms(spec.w_shape.iter().product(), 22, 0.3);
            let ch = spec.w_shape[axis];
            let inner: usize = spec.w_shape[axis + 1..].iter().product();
            let scale: Vec<f32> = (0..ch).map(|c| (0..w.len()).filter(|i| (i / inner) % ch == c).fold(0f32, |a, i| a.max(w[i].abs())) / 7.0).collect();
            let g = WeightGrid { scale, offset: vec![0.0; ch], qmin: -8.0, qmax: 7.0, axis: Some(axis) };
            // A target from other weights, so that the loss moves the rounding from the start.
            let l = spec.build(n).unwrap();
            let mut y = vec![0f32; l.y_len()];
            l.forward(&x, &randoms(w.len(), 23, 0.3), None, &mut y).unwrap();
            let run = |threads: usize| {
                with_threads(Some(threads), || {
                    let p = Problem { layer: spec.clone(), x: &x, n, w: &w, bias: None, y: Some(&y) };
                    adaround(p, &g, AdaroundOptions { iterations: 40, warm_start: 0.0, ..Default::default() }, None).unwrap()
                })
            };
            let one = run(1);
            assert!(one.flips > 0, "{:?}: nothing to compare", spec.kind);
            for t in [2, 3] {
                let r = run(t);
                let differ = r.codes.iter().zip(&one.codes).filter(|(a, b)| a != b).count();
                assert_eq!(differ, 0, "{:?}: {differ} codes differ with {t} threads", spec.kind);
                assert_eq!(r.loss_adaround.to_bits(), one.loss_adaround.to_bits(), "{:?}: loss differs with {t} threads", spec.kind);
            }
        }
    }

    #[test]
    fn cancel_stops_the_loop() {
        let (c, m, k, hw, n) = (2, 2, 3, 4, 4);
        let x = randoms(n * c * hw * hw, 1, 1.0);
        let w = randoms(m * c * k * k, 2, 0.5);
        let g = grid(&w, m, 4);
        let ctl = Control::default();
        ctl.cancel.store(true, Ordering::Relaxed);
        let p = Problem { layer: conv_spec(c, m, k, hw), x: &x, n, w: &w, bias: None, y: None };
        assert!(matches!(adaround(p, &g, AdaroundOptions { iterations: 10, ..Default::default() }, Some(&ctl)), Err(AdaroundError::Cancelled)));
    }
}
