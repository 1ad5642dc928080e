//! affine.quantize / dequantize / quantizeDequantize, sync and on the libuv pool.
//! Inputs are borrowed from JS (no copy); the caller must not modify them until an async call
//! settles (documented in src/affine.ts). Outputs are Rust vectors handed to JS without a copy.
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::affine::{self as core, AffineSpec, Granularity, IntType};

use crate::errors::{guard, range_error, to_usize_vec, type_error};

/// The integer result of `quantize`: the smallest typed array that holds [qmin, qmax].
type IntArray = Either5<Int8Array, Uint8Array, Int16Array, Uint16Array, Int32Array>;

/// Scale/offset layout and grid, owned so that it can move into an async task.
pub struct Layout {
    shape: Vec<usize>,
    axis: Option<usize>,
    block_size: Option<usize>,
    qmin: i64,
    qmax: i64,
}

impl Layout {
    fn new(shape: &[u32], axis: Option<u32>, block_size: Option<u32>, qmin: i64, qmax: i64) -> Self {
        Layout { shape: to_usize_vec(shape), axis: axis.map(|a| a as usize), block_size: block_size.map(|b| b as usize), qmin, qmax }
    }

    fn spec<'a>(&'a self, scale: &'a [f32], offset: &'a [i32]) -> napi::Result<AffineSpec<'a>> {
        let granularity = match (self.axis, self.block_size) {
            (None, None) => Granularity::PerTensor,
            (Some(axis), None) => Granularity::PerChannel { axis },
            (Some(axis), Some(block_size)) => Granularity::PerBlock { axis, block_size },
            (None, Some(_)) => return Err(type_error("blockSize needs an axis (the dimension the blocks run along)")),
        };
        Ok(AffineSpec { shape: &self.shape, granularity, scale, offset, qmin: self.qmin, qmax: self.qmax })
    }
}

fn core_error(err: core::AffineError) -> napi::Error {
    if err.is_range_error() {
        range_error(err)
    } else {
        type_error(err)
    }
}

fn run_quantize(x: &[f32], scale: &[f32], offset: &[i32], layout: &Layout) -> napi::Result<QuantizedOutput> {
    let spec = layout.spec(scale, offset)?;
    core::validate(&spec, x.len()).map_err(core_error)?;
    fn go<T: core::QInt>(x: &[f32], spec: &AffineSpec) -> napi::Result<Vec<T>> {
        let mut out = vec![T::default(); x.len()];
        core::quantize(x, spec, &mut out).map_err(core_error)?;
        Ok(out)
    }
    Ok(match core::int_type_for(layout.qmin, layout.qmax).map_err(core_error)? {
        IntType::I8 => QuantizedOutput::I8(go(x, &spec)?),
        IntType::U8 => QuantizedOutput::U8(go(x, &spec)?),
        IntType::I16 => QuantizedOutput::I16(go(x, &spec)?),
        IntType::U16 => QuantizedOutput::U16(go(x, &spec)?),
        IntType::I32 => QuantizedOutput::I32(go(x, &spec)?),
    })
}

pub enum QuantizedOutput {
    I8(Vec<i8>),
    U8(Vec<u8>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I32(Vec<i32>),
}

impl QuantizedOutput {
    fn into_js(self) -> IntArray {
        match self {
            QuantizedOutput::I8(v) => Either5::A(Int8Array::new(v)),
            QuantizedOutput::U8(v) => Either5::B(Uint8Array::new(v)),
            QuantizedOutput::I16(v) => Either5::C(Int16Array::new(v)),
            QuantizedOutput::U16(v) => Either5::D(Uint16Array::new(v)),
            QuantizedOutput::I32(v) => Either5::E(Int32Array::new(v)),
        }
    }
}

/// Reinterprets the bytes of an integer typed array (passed as a Uint8Array view by
/// src/affine.ts, which knows its class) as the named integer type. JS typed arrays are always
/// aligned to their element size, so this never copies.
fn dequantize_bytes(bytes: &[u8], int_type: &str, scale: &[f32], offset: &[i32], layout: &Layout) -> napi::Result<Vec<f32>> {
    fn go<T: core::QInt>(bytes: &[u8], scale: &[f32], offset: &[i32], layout: &Layout, (qmin, qmax): (i64, i64)) -> napi::Result<Vec<f32>> {
        // SAFETY: every bit pattern is a valid integer of these types.
        let (head, q, tail) = unsafe { bytes.align_to::<T>() };
        if !head.is_empty() || !tail.is_empty() {
            return Err(type_error("q: the integer array is not aligned to its element size"));
        }
        // The grid is the whole integer type: dequantize does not clamp.
        let mut spec = layout.spec(scale, offset)?;
        spec.qmin = qmin;
        spec.qmax = qmax;
        core::validate(&spec, q.len()).map_err(core_error)?;
        let mut out = vec![0f32; q.len()];
        core::dequantize(q, &spec, &mut out).map_err(core_error)?;
        Ok(out)
    }
    match int_type {
        "int8" => go::<i8>(bytes, scale, offset, layout, (i8::MIN.into(), i8::MAX.into())),
        "uint8" => go::<u8>(bytes, scale, offset, layout, (0, u8::MAX.into())),
        "int16" => go::<i16>(bytes, scale, offset, layout, (i16::MIN.into(), i16::MAX.into())),
        "uint16" => go::<u16>(bytes, scale, offset, layout, (0, u16::MAX.into())),
        "int32" => go::<i32>(bytes, scale, offset, layout, (i32::MIN.into(), i32::MAX.into())),
        other => Err(type_error(format!("q: expected an Int8Array, Uint8Array, Int16Array, Uint16Array or Int32Array, got {other}"))),
    }
}

fn run_qdq(x: &[f32], scale: &[f32], offset: &[i32], layout: &Layout) -> napi::Result<Vec<f32>> {
    let spec = layout.spec(scale, offset)?;
    core::validate(&spec, x.len()).map_err(core_error)?;
    let mut out = vec![0f32; x.len()];
    core::quantize_dequantize(x, &spec, &mut out).map_err(core_error)?;
    Ok(out)
}

/// Quantize-dequantize into a caller's array; `out` may be `x` itself (in place). Arrays that
/// overlap without coinciding are refused: the kernels read and write in chunks.
fn run_qdq_into(x: &Float32Array, out: &mut Float32Array, scale: &[f32], offset: &[i32], layout: &Layout) -> napi::Result<()> {
    let spec = layout.spec(scale, offset)?;
    core::validate(&spec, x.len()).map_err(core_error)?;
    let (xp, xl) = (x.as_ptr() as usize, x.len() * 4);
    // SAFETY: the JS caller lends `out` for the duration of this call (documented in src/affine.ts).
    let out_slice = unsafe { out.as_mut() };
    let (op, ol) = (out_slice.as_ptr() as usize, out_slice.len() * 4);
    if xp == op && xl == ol {
        return core::quantize_dequantize_in_place(out_slice, &spec).map_err(core_error);
    }
    if xp < op + ol && op < xp + xl {
        return Err(type_error("opts.out overlaps x without being x itself; pass x (in place) or a separate array"));
    }
    core::quantize_dequantize(x, &spec, out_slice).map_err(core_error)
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn affine_quantize(x: Float32Array, scale: Float32Array, offset: Int32Array, qmin: i64, qmax: i64, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>) -> napi::Result<IntArray> {
    let layout = Layout::new(&shape, axis, block_size, qmin, qmax);
    Ok(run_quantize(&x, &scale, &offset, &layout)?.into_js())
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn affine_dequantize(q: Uint8Array, int_type: String, scale: Float32Array, offset: Int32Array, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>) -> napi::Result<Float32Array> {
    let layout = Layout::new(&shape, axis, block_size, 0, 0);
    Ok(Float32Array::new(dequantize_bytes(&q, &int_type, &scale, &offset, &layout)?))
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn affine_quantize_dequantize(x: Float32Array, scale: Float32Array, offset: Int32Array, qmin: i64, qmax: i64, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>) -> napi::Result<Float32Array> {
    let layout = Layout::new(&shape, axis, block_size, qmin, qmax);
    Ok(Float32Array::new(run_qdq(&x, &scale, &offset, &layout)?))
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn affine_quantize_dequantize_into(x: Float32Array, mut out: Float32Array, scale: Float32Array, offset: Int32Array, qmin: i64, qmax: i64, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>) -> napi::Result<()> {
    let layout = Layout::new(&shape, axis, block_size, qmin, qmax);
    run_qdq_into(&x, &mut out, &scale, &offset, &layout)
}

pub enum AffineOp {
    Quantize { x: Float32Array },
    Dequantize { q: Uint8Array, int_type: String },
    QuantizeDequantize { x: Float32Array },
    QuantizeDequantizeInto { x: Float32Array, out: Float32Array },
}

pub enum AffineResult {
    Ints(QuantizedOutput),
    Floats(Vec<f32>),
    Written,
}

pub struct AffineTask {
    op: AffineOp,
    scale: Float32Array,
    offset: Int32Array,
    layout: Layout,
}

impl Task for AffineTask {
    type Output = AffineResult;
    type JsValue = Either3<IntArray, Float32Array, ()>;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let AffineTask { op, scale, offset, layout } = self;
        guard("affine", || match op {
            AffineOp::Quantize { x } => Ok(AffineResult::Ints(run_quantize(x, scale, offset, layout)?)),
            AffineOp::Dequantize { q, int_type } => Ok(AffineResult::Floats(dequantize_bytes(q, int_type, scale, offset, layout)?)),
            AffineOp::QuantizeDequantize { x } => Ok(AffineResult::Floats(run_qdq(x, scale, offset, layout)?)),
            AffineOp::QuantizeDequantizeInto { x, out } => run_qdq_into(x, out, scale, offset, layout).map(|_| AffineResult::Written),
        })
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(match output {
            AffineResult::Ints(ints) => Either3::A(ints.into_js()),
            AffineResult::Floats(floats) => Either3::B(Float32Array::new(floats)),
            AffineResult::Written => Either3::C(()),
        })
    }
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn affine_quantize_async(x: Float32Array, scale: Float32Array, offset: Int32Array, qmin: i64, qmax: i64, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<AffineTask> {
    let layout = Layout::new(&shape, axis, block_size, qmin, qmax);
    AsyncTask::with_optional_signal(AffineTask { op: AffineOp::Quantize { x }, scale, offset, layout }, signal)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn affine_dequantize_async(q: Uint8Array, int_type: String, scale: Float32Array, offset: Int32Array, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<AffineTask> {
    let layout = Layout::new(&shape, axis, block_size, 0, 0);
    AsyncTask::with_optional_signal(AffineTask { op: AffineOp::Dequantize { q, int_type }, scale, offset, layout }, signal)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn affine_quantize_dequantize_async(x: Float32Array, scale: Float32Array, offset: Int32Array, qmin: i64, qmax: i64, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<AffineTask> {
    let layout = Layout::new(&shape, axis, block_size, qmin, qmax);
    AsyncTask::with_optional_signal(AffineTask { op: AffineOp::QuantizeDequantize { x }, scale, offset, layout }, signal)
}

#[napi]
#[allow(clippy::too_many_arguments)]
pub fn affine_quantize_dequantize_into_async(x: Float32Array, out: Float32Array, scale: Float32Array, offset: Int32Array, qmin: i64, qmax: i64, shape: Vec<u32>, axis: Option<u32>, block_size: Option<u32>, signal: Option<AbortSignal>) -> AsyncTask<AffineTask> {
    let layout = Layout::new(&shape, axis, block_size, qmin, qmax);
    AsyncTask::with_optional_signal(AffineTask { op: AffineOp::QuantizeDequantizeInto { x, out }, scale, offset, layout }, signal)
}
