//! AdaRound of one layer (core: adaround.rs) on the libuv pool. `AdaroundControl` is shared with
//! the running task: JS reads `iterations` for progress and calls `cancel()` (src/techniques/
//! adaround.ts does so on its AbortSignal), which stops the loop at the next iteration boundary.
//! The typed arrays are borrowed without a copy; the caller must not modify them meanwhile.
use std::sync::atomic::Ordering;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::adaround::{self as core, Activation, AdaroundError, AdaroundOptions, Control, LayerKind, LayerSpec, Problem, WeightGrid};

use crate::errors::{guard, range_error, to_usize_vec, type_error};
use crate::layers::{conv_attrs, gemm_attrs, transpose_attrs, ConvAttributes, GemmAttributes};

#[napi]
pub struct AdaroundControl {
    inner: Arc<Control>,
}

#[napi]
impl AdaroundControl {
    #[napi(constructor)]
    pub fn new() -> Self {
        AdaroundControl { inner: Arc::new(Control::default()) }
    }

    /// Iterations done by the task using this control.
    #[napi(getter)]
    pub fn iterations(&self) -> f64 {
        self.inner.iterations.load(Ordering::Relaxed) as f64
    }

    #[napi]
    pub fn cancel(&self) {
        self.inner.cancel.store(true, Ordering::Relaxed);
    }
}

/// One layer's problem: X [n, …] (layer inputs), the float weight, bias, target Y (optional:
/// computed from X and W), the weight's grid, and AIMET's options.
#[napi(object)]
pub struct AdaroundLayerArgs {
    /// 'Conv' | 'ConvTranspose' | 'Gemm' | 'MatMul'.
    pub op_type: String,
    pub conv: Option<ConvAttributes>,
    pub gemm: Option<GemmAttributes>,
    pub x: Float32Array,
    pub x_shape: Vec<u32>,
    pub w: Float32Array,
    pub w_shape: Vec<u32>,
    pub bias: Option<Float32Array>,
    pub bias_shape: Option<Vec<u32>>,
    pub y: Option<Float32Array>,
    pub scale: Float32Array,
    pub offset: Float32Array,
    pub qmin: i32,
    pub qmax: i32,
    pub axis: Option<u32>,
    pub iterations: u32,
    pub reg_param: f64,
    pub beta_start: f64,
    pub beta_end: f64,
    pub warm_start: f64,
    pub batch_size: u32,
    /// 'none' (default) | 'relu' | 'clip' | 'sigmoid' | 'tanh': applied to both outputs before
    /// the loss; 'clip' uses `clipMin` / `clipMax` (default 0 and 6: Relu6).
    pub activation: Option<String>,
    pub clip_min: Option<f64>,
    pub clip_max: Option<f64>,
    pub seed: Option<u32>,
}

#[napi(object)]
pub struct AdaroundLayerResult {
    pub codes: Int32Array,
    pub weights: Float32Array,
    pub loss_nearest: f64,
    pub loss_adaround: f64,
    pub flips: u32,
    pub iterations: u32,
    pub millis: f64,
    /// The loop's time split: the layer's forward and loss, its weight gradient, the rest.
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub update_ms: f64,
}

fn core_error(e: AdaroundError) -> napi::Error {
    match e {
        AdaroundError::Layer(l) if !l.is_range_error() => type_error(l),
        AdaroundError::Argument(m) => type_error(m),
        other => range_error(other),
    }
}

fn run(a: &AdaroundLayerArgs, control: &Control) -> napi::Result<core::AdaroundResult> {
    let kind = match a.op_type.as_str() {
        "Conv" => LayerKind::Conv(conv_attrs(a.conv.as_ref().ok_or_else(|| type_error("Conv needs conv attributes"))?)?),
        "ConvTranspose" => LayerKind::ConvTranspose(transpose_attrs(a.conv.as_ref().ok_or_else(|| type_error("ConvTranspose needs conv attributes"))?)?),
        "Gemm" => LayerKind::Gemm {
            attrs: a.gemm.as_ref().map(gemm_attrs).unwrap_or_default(),
            c_shape: a.bias.as_ref().map(|_| a.bias_shape.as_deref().map(to_usize_vec).unwrap_or_else(|| vec![a.bias.as_ref().unwrap().len()])),
        },
        "MatMul" => LayerKind::MatMul,
        other => return Err(type_error(format!("opType: expected Conv, ConvTranspose, Gemm or MatMul, got {other:?}"))),
    };
    if a.x_shape.is_empty() {
        return Err(type_error("xShape: expected [n, …]"));
    }
    let xs = to_usize_vec(&a.x_shape);
    let activation = match a.activation.as_deref() {
        None | Some("none") => Activation::None,
        Some("relu") => Activation::Relu,
        Some("sigmoid") => Activation::Sigmoid,
        Some("tanh") => Activation::Tanh,
        Some("clip") => {
            let (min, max) = (a.clip_min.unwrap_or(0.0) as f32, a.clip_max.unwrap_or(6.0) as f32);
            if !(min <= max) {
                return Err(range_error(format!("clipMin {min} must not exceed clipMax {max}")));
            }
            Activation::Clip { min, max }
        }
        Some(o) => return Err(type_error(format!("activation: expected 'none', 'relu', 'clip', 'sigmoid' or 'tanh', got {o:?}"))),
    };
    let p = Problem {
        layer: LayerSpec { kind, sample_shape: xs[1..].to_vec(), w_shape: to_usize_vec(&a.w_shape) },
        x: &a.x,
        n: xs[0],
        w: &a.w,
        bias: a.bias.as_ref().map(|b| &b[..]),
        y: a.y.as_ref().map(|y| &y[..]),
    };
    let grid = WeightGrid { scale: a.scale.to_vec(), offset: a.offset.to_vec(), qmin: a.qmin as f32, qmax: a.qmax as f32, axis: a.axis.map(|x| x as usize) };
    let opts = AdaroundOptions {
        iterations: a.iterations as usize,
        reg_param: a.reg_param as f32,
        beta_start: a.beta_start as f32,
        beta_end: a.beta_end as f32,
        warm_start: a.warm_start as f32,
        batch_size: a.batch_size as usize,
        activation,
        seed: a.seed.unwrap_or(0) as u64,
        ..Default::default()
    };
    core::adaround(p, &grid, opts, Some(control)).map_err(core_error)
}

pub struct AdaroundTask {
    args: AdaroundLayerArgs,
    control: Arc<Control>,
}

impl Task for AdaroundTask {
    type Output = core::AdaroundResult;
    type JsValue = AdaroundLayerResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("adaroundLayer", || run(&self.args, &self.control))
    }

    fn resolve(&mut self, _env: Env, r: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(AdaroundLayerResult {
            codes: Int32Array::new(r.codes),
            weights: Float32Array::new(r.weights),
            loss_nearest: r.loss_nearest,
            loss_adaround: r.loss_adaround,
            flips: r.flips as u32,
            iterations: r.iterations as u32,
            millis: r.millis,
            forward_ms: r.forward_ms,
            backward_ms: r.backward_ms,
            update_ms: r.update_ms,
        })
    }
}

/// AdaRound of one layer on the libuv pool; `control` reports progress and cancels.
#[napi]
pub fn adaround_layer_async(args: AdaroundLayerArgs, control: &AdaroundControl, signal: Option<AbortSignal>) -> AsyncTask<AdaroundTask> {
    AsyncTask::with_optional_signal(AdaroundTask { args, control: control.inner.clone() }, signal)
}
