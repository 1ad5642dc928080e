//! Layer kernels (Conv, ConvTranspose, Gemm, MatMul), forward and backward, sync and on the
//! libuv pool. Inputs are borrowed from JS without a copy (the caller must not modify them until
//! an async call settles; documented in src/layers.ts); outputs are Rust vectors handed over.
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::layers::{
    self as core, AutoPad, Conv, ConvAttrs, ConvGrads, ConvTranspose, ConvTransposeAttrs, Gemm, GemmAttrs, GemmGrads, LayerError, MatMul,
    MatMulGrads,
};

use crate::errors::{guard, range_error, to_usize_vec, type_error};

/// Conv and ConvTranspose attributes, ONNX names in camelCase; absent = ONNX default.
#[napi(object)]
pub struct ConvAttributes {
    pub strides: Option<Vec<u32>>,
    pub pads: Option<Vec<u32>>,
    pub dilations: Option<Vec<u32>>,
    pub group: Option<u32>,
    /// "NOTSET" | "SAME_UPPER" | "SAME_LOWER" | "VALID".
    pub auto_pad: Option<String>,
    pub kernel_shape: Option<Vec<u32>>,
    /// ConvTranspose only.
    pub output_padding: Option<Vec<u32>>,
    /// ConvTranspose only.
    pub output_shape: Option<Vec<u32>>,
}

#[napi(object)]
pub struct GemmAttributes {
    pub alpha: Option<f64>,
    pub beta: Option<f64>,
    pub trans_a: Option<bool>,
    pub trans_b: Option<bool>,
}

/// Which gradients `*Backward` computes (each defaults to true). Input = x (Conv) or A (Gemm,
/// MatMul); weight = w or B; bias = bias or C.
#[napi(object)]
pub struct GradientRequest {
    pub input: Option<bool>,
    pub weight: Option<bool>,
    pub bias: Option<bool>,
}

#[napi(object)]
pub struct LayerOutput {
    pub data: Float32Array,
    pub shape: Vec<u32>,
}

#[napi(object)]
pub struct LayerGradients {
    pub d_input: Option<Float32Array>,
    pub d_weight: Option<Float32Array>,
    pub d_bias: Option<Float32Array>,
}

fn core_error(err: LayerError) -> napi::Error {
    if err.is_range_error() {
        range_error(err)
    } else {
        type_error(err)
    }
}

pub(crate) fn conv_attrs(a: &ConvAttributes) -> napi::Result<ConvAttrs> {
    let list = |v: &Option<Vec<u32>>| v.as_deref().map(to_usize_vec).unwrap_or_default();
    Ok(ConvAttrs {
        strides: list(&a.strides),
        pads: list(&a.pads),
        dilations: list(&a.dilations),
        group: a.group.unwrap_or(1) as usize,
        auto_pad: AutoPad::parse(a.auto_pad.as_deref().unwrap_or("NOTSET")).map_err(core_error)?,
        kernel_shape: list(&a.kernel_shape),
    })
}

pub(crate) fn transpose_attrs(a: &ConvAttributes) -> napi::Result<ConvTransposeAttrs> {
    let list = |v: &Option<Vec<u32>>| v.as_deref().map(to_usize_vec).unwrap_or_default();
    Ok(ConvTransposeAttrs { conv: conv_attrs(a)?, output_padding: list(&a.output_padding), output_shape: list(&a.output_shape) })
}

pub(crate) fn gemm_attrs(a: &GemmAttributes) -> GemmAttrs {
    GemmAttrs {
        alpha: a.alpha.unwrap_or(1.0) as f32,
        beta: a.beta.unwrap_or(1.0) as f32,
        trans_a: a.trans_a.unwrap_or(false),
        trans_b: a.trans_b.unwrap_or(false),
    }
}

/// One layer call, owned so that it can move into an async task.
pub enum LayerOp {
    Conv { x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, bias: Option<Float32Array>, attrs: ConvAttributes },
    ConvTranspose { x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, bias: Option<Float32Array>, attrs: ConvAttributes },
    Gemm { a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, c: Option<Float32Array>, c_shape: Option<Vec<u32>>, attrs: GemmAttributes },
    MatMul { a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32> },
}

fn shape32(s: Vec<usize>) -> Vec<u32> {
    s.into_iter().map(|d| d as u32).collect()
}

fn opt(v: &Option<Float32Array>) -> Option<&[f32]> {
    v.as_ref().map(|a| &a[..])
}

fn forward(op: &LayerOp) -> napi::Result<(Vec<f32>, Vec<usize>)> {
    let e = core_error;
    match op {
        LayerOp::Conv { x, x_shape, w, w_shape, bias, attrs } => {
            let l = Conv::new(&to_usize_vec(x_shape), &to_usize_vec(w_shape), &conv_attrs(attrs)?).map_err(e)?;
            let mut y = vec![0f32; l.geometry().y_len()];
            l.forward(x, w, opt(bias), &mut y).map_err(e)?;
            Ok((y, l.output_shape()))
        }
        LayerOp::ConvTranspose { x, x_shape, w, w_shape, bias, attrs } => {
            let l = ConvTranspose::new(&to_usize_vec(x_shape), &to_usize_vec(w_shape), &transpose_attrs(attrs)?).map_err(e)?;
            let mut y = vec![0f32; l.geometry().y_len()];
            l.forward(x, w, opt(bias), &mut y).map_err(e)?;
            Ok((y, l.output_shape()))
        }
        LayerOp::Gemm { a, a_shape, b, b_shape, c, c_shape, attrs } => {
            let cs = c_shape.as_deref().map(to_usize_vec);
            if c.is_some() != cs.is_some() {
                return Err(type_error("c and cShape must be given together"));
            }
            let l = Gemm::new(&to_usize_vec(a_shape), &to_usize_vec(b_shape), cs.as_deref(), gemm_attrs(attrs)).map_err(e)?;
            let shape = l.output_shape();
            let mut y = vec![0f32; shape.iter().product()];
            l.forward(a, b, opt(c), &mut y).map_err(e)?;
            Ok((y, shape))
        }
        LayerOp::MatMul { a, a_shape, b, b_shape } => {
            let l = MatMul::new(&to_usize_vec(a_shape), &to_usize_vec(b_shape)).map_err(e)?;
            let shape = l.output_shape();
            let mut y = vec![0f32; shape.iter().product()];
            l.forward(a, b, &mut y).map_err(e)?;
            Ok((y, shape))
        }
    }
}

type Grads = (Option<Vec<f32>>, Option<Vec<f32>>, Option<Vec<f32>>);

fn backward(op: &LayerOp, dy: &[f32], want: &GradientRequest) -> napi::Result<Grads> {
    let e = core_error;
    let buf = |on: Option<bool>, len: usize| if on.unwrap_or(true) { Some(vec![0f32; len]) } else { None };
    match op {
        LayerOp::Conv { x, x_shape, w, w_shape, attrs, .. } => {
            let l = Conv::new(&to_usize_vec(x_shape), &to_usize_vec(w_shape), &conv_attrs(attrs)?).map_err(e)?;
            let g = l.geometry();
            let (mut dx, mut dw, mut db) = (buf(want.input, g.x_len()), buf(want.weight, g.w_len()), buf(want.bias, g.out_channels));
            l.backward(x, w, dy, ConvGrads { dx: dx.as_deref_mut(), dw: dw.as_deref_mut(), db: db.as_deref_mut() }).map_err(e)?;
            Ok((dx, dw, db))
        }
        LayerOp::ConvTranspose { x, x_shape, w, w_shape, attrs, .. } => {
            let l = ConvTranspose::new(&to_usize_vec(x_shape), &to_usize_vec(w_shape), &transpose_attrs(attrs)?).map_err(e)?;
            let g = l.geometry();
            let (mut dx, mut dw, mut db) = (buf(want.input, g.x_len()), buf(want.weight, g.w_len()), buf(want.bias, g.out_channels));
            l.backward(x, w, dy, ConvGrads { dx: dx.as_deref_mut(), dw: dw.as_deref_mut(), db: db.as_deref_mut() }).map_err(e)?;
            Ok((dx, dw, db))
        }
        LayerOp::Gemm { a, a_shape, b, b_shape, c_shape, attrs, .. } => {
            let cs = c_shape.as_deref().map(to_usize_vec);
            let l = Gemm::new(&to_usize_vec(a_shape), &to_usize_vec(b_shape), cs.as_deref(), gemm_attrs(attrs)).map_err(e)?;
            let clen = cs.map(|s| s.iter().product::<usize>());
            let (mut da, mut db) = (buf(want.input, a.len()), buf(want.weight, b.len()));
            let mut dc = clen.and_then(|n| buf(want.bias, n));
            l.backward(a, b, dy, GemmGrads { da: da.as_deref_mut(), db: db.as_deref_mut(), dc: dc.as_deref_mut() }).map_err(e)?;
            Ok((da, db, dc))
        }
        LayerOp::MatMul { a, a_shape, b, b_shape } => {
            let l = MatMul::new(&to_usize_vec(a_shape), &to_usize_vec(b_shape)).map_err(e)?;
            let (mut da, mut db) = (buf(want.input, a.len()), buf(want.weight, b.len()));
            l.backward(a, b, dy, MatMulGrads { da: da.as_deref_mut(), db: db.as_deref_mut() }).map_err(e)?;
            Ok((da, db, None))
        }
    }
}

fn threads(t: Option<u32>) -> Option<usize> {
    t.map(|t| t as usize)
}

fn output((data, shape): (Vec<f32>, Vec<usize>)) -> LayerOutput {
    LayerOutput { data: Float32Array::new(data), shape: shape32(shape) }
}

fn gradients((di, dw, db): Grads) -> LayerGradients {
    LayerGradients { d_input: di.map(Float32Array::new), d_weight: dw.map(Float32Array::new), d_bias: db.map(Float32Array::new) }
}

pub enum LayerJob {
    Forward,
    Backward { dy: Float32Array, want: GradientRequest },
}

pub enum LayerResult {
    Forward((Vec<f32>, Vec<usize>)),
    Backward(Grads),
}

fn run(op: &LayerOp, job: &LayerJob, t: Option<u32>) -> napi::Result<LayerResult> {
    core::with_threads(threads(t), || match job {
        LayerJob::Forward => forward(op).map(LayerResult::Forward),
        LayerJob::Backward { dy, want } => backward(op, dy, want).map(LayerResult::Backward),
    })
}

pub struct LayerTask {
    op: LayerOp,
    job: LayerJob,
    threads: Option<u32>,
}

impl Task for LayerTask {
    type Output = LayerResult;
    type JsValue = Either<LayerOutput, LayerGradients>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let LayerTask { op, job, threads } = self;
        guard("layers", || run(op, job, *threads))
    }

    fn resolve(&mut self, _env: Env, result: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(match result {
            LayerResult::Forward(o) => Either::A(output(o)),
            LayerResult::Backward(g) => Either::B(gradients(g)),
        })
    }
}

fn sync_forward(op: LayerOp, t: Option<u32>) -> napi::Result<LayerOutput> {
    match run(&op, &LayerJob::Forward, t)? {
        LayerResult::Forward(o) => Ok(output(o)),
        LayerResult::Backward(_) => unreachable!(),
    }
}

fn sync_backward(op: LayerOp, dy: Float32Array, want: GradientRequest, t: Option<u32>) -> napi::Result<LayerGradients> {
    match run(&op, &LayerJob::Backward { dy, want }, t)? {
        LayerResult::Backward(g) => Ok(gradients(g)),
        LayerResult::Forward(_) => unreachable!(),
    }
}

fn task(op: LayerOp, job: LayerJob, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    AsyncTask::with_optional_signal(LayerTask { op, job, threads }, signal)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, bias: Option<Float32Array>, attrs: ConvAttributes, threads: Option<u32>) -> napi::Result<LayerOutput> {
    sync_forward(LayerOp::Conv { x, x_shape, w, w_shape, bias, attrs }, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_async(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, bias: Option<Float32Array>, attrs: ConvAttributes, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::Conv { x, x_shape, w, w_shape, bias, attrs }, LayerJob::Forward, threads, signal)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_backward(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, dy: Float32Array, attrs: ConvAttributes, want: GradientRequest, threads: Option<u32>) -> napi::Result<LayerGradients> {
    sync_backward(LayerOp::Conv { x, x_shape, w, w_shape, bias: None, attrs }, dy, want, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_backward_async(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, dy: Float32Array, attrs: ConvAttributes, want: GradientRequest, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::Conv { x, x_shape, w, w_shape, bias: None, attrs }, LayerJob::Backward { dy, want }, threads, signal)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_transpose(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, bias: Option<Float32Array>, attrs: ConvAttributes, threads: Option<u32>) -> napi::Result<LayerOutput> {
    sync_forward(LayerOp::ConvTranspose { x, x_shape, w, w_shape, bias, attrs }, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_transpose_async(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, bias: Option<Float32Array>, attrs: ConvAttributes, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::ConvTranspose { x, x_shape, w, w_shape, bias, attrs }, LayerJob::Forward, threads, signal)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_transpose_backward(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, dy: Float32Array, attrs: ConvAttributes, want: GradientRequest, threads: Option<u32>) -> napi::Result<LayerGradients> {
    sync_backward(LayerOp::ConvTranspose { x, x_shape, w, w_shape, bias: None, attrs }, dy, want, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_conv_transpose_backward_async(x: Float32Array, x_shape: Vec<u32>, w: Float32Array, w_shape: Vec<u32>, dy: Float32Array, attrs: ConvAttributes, want: GradientRequest, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::ConvTranspose { x, x_shape, w, w_shape, bias: None, attrs }, LayerJob::Backward { dy, want }, threads, signal)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn layer_gemm(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, c: Option<Float32Array>, c_shape: Option<Vec<u32>>, attrs: GemmAttributes, threads: Option<u32>) -> napi::Result<LayerOutput> {
    sync_forward(LayerOp::Gemm { a, a_shape, b, b_shape, c, c_shape, attrs }, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_gemm_async(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, c: Option<Float32Array>, c_shape: Option<Vec<u32>>, attrs: GemmAttributes, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::Gemm { a, a_shape, b, b_shape, c, c_shape, attrs }, LayerJob::Forward, threads, signal)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn layer_gemm_backward(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, c_shape: Option<Vec<u32>>, dy: Float32Array, attrs: GemmAttributes, want: GradientRequest, threads: Option<u32>) -> napi::Result<LayerGradients> {
    sync_backward(LayerOp::Gemm { a, a_shape, b, b_shape, c: None, c_shape, attrs }, dy, want, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_gemm_backward_async(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, c_shape: Option<Vec<u32>>, dy: Float32Array, attrs: GemmAttributes, want: GradientRequest, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::Gemm { a, a_shape, b, b_shape, c: None, c_shape, attrs }, LayerJob::Backward { dy, want }, threads, signal)
}

#[napi(catch_unwind)]
pub fn layer_matmul(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, threads: Option<u32>) -> napi::Result<LayerOutput> {
    sync_forward(LayerOp::MatMul { a, a_shape, b, b_shape }, threads)
}

#[napi]
pub fn layer_matmul_async(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::MatMul { a, a_shape, b, b_shape }, LayerJob::Forward, threads, signal)
}

#[napi(catch_unwind)]
pub fn layer_matmul_backward(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, dy: Float32Array, want: GradientRequest, threads: Option<u32>) -> napi::Result<LayerGradients> {
    sync_backward(LayerOp::MatMul { a, a_shape, b, b_shape }, dy, want, threads)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn layer_matmul_backward_async(a: Float32Array, a_shape: Vec<u32>, b: Float32Array, b_shape: Vec<u32>, dy: Float32Array, want: GradientRequest, threads: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<LayerTask> {
    task(LayerOp::MatMul { a, a_shape, b, b_shape }, LayerJob::Backward { dy, want }, threads, signal)
}
