//! Weight-only block quantization for MatMulNBits / blocked DequantizeLinear (core: nbits.rs).
//! `nbitsQuantizeAsync` and `nbitsPackAsync` run on the libuv pool and borrow the weight without
//! copying: the callers (src/modes/nbitsWeights.ts, src/modes/quantizeWeights.ts) must not touch it
//! until the promise settles. `nbitsBlockGrids` is QuantSim's 'onnxruntime' block rule
//! (src/sim/blockwise.ts); `packNibbles` packs QuantSim's 4-bit QDQ weights (src/export/qdqModel.ts).
use napi::bindgen_prelude::*;
use napi_derive::napi;
use quantkit_core::nbits::{self as core, NbitsError, NbitsSpec};

use crate::errors::{guard, range_error, type_error};

fn core_error(err: NbitsError) -> napi::Error {
    match err {
        NbitsError::Length { .. } => type_error(err),
        _ => range_error(err),
    }
}

fn spec(k: u32, n: u32, bits: u32, block_size: u32, symmetric: bool) -> NbitsSpec {
    NbitsSpec { k: k as usize, n: n as usize, bits, block_size: block_size as usize, symmetric }
}

/// One quantized weight in the layout asked for ('matmulnbits' or 'qdq'); see core nbits.rs.
#[napi(object)]
pub struct NbitsWeights {
    /// MatMulNBits' B [N, nb, blob], or the DequantizeLinear input [K, N] (4-bit packed, or bytes).
    pub data: Uint8Array,
    /// [N, nb] for MatMulNBits, [nb, N] for DequantizeLinear.
    pub scales: Float32Array,
    /// Absent when symmetric.
    pub zero_points: Option<Uint8Array>,
    /// 10·log10(Σw² / Σ(w − ŵ)²), +inf when exact.
    pub sqnr_db: f64,
}

pub struct Packed {
    data: Vec<u8>,
    scales: Vec<f32>,
    zero_points: Option<Vec<u8>>,
    sqnr_db: f64,
}

fn run(w: &[f32], spec: NbitsSpec, transposed: bool, format: &str) -> napi::Result<Packed> {
    if format == "gather" {
        return Err(type_error(format!("format: expected 'matmulnbits' or 'qdq', got {format:?}")));
    }
    let q = if transposed { core::quantize_blockwise_transposed(w, spec) } else { core::quantize_blockwise(w, spec) }.map_err(core_error)?;
    pack(&q, format)
}

/// Lays the codes out as `format` asks: MatMulNBits' packed B, QDQ's int4/int8 tensor, or
/// GatherBlockQuantized's rows.
fn pack(q: &core::BlockQuantized, format: &str) -> napi::Result<Packed> {
    let sqnr_db = q.sqnr_db();
    Ok(match format {
        "matmulnbits" => {
            let p = core::pack_matmul_nbits(q);
            Packed { data: p.b, scales: p.scales, zero_points: p.zero_points, sqnr_db }
        }
        "qdq" => {
            let p = core::pack_qdq(q);
            Packed { data: p.data, scales: p.scales, zero_points: p.zero_points, sqnr_db }
        }
        "gather" => {
            let p = core::pack_gather_rows(q);
            Packed { data: p.data, scales: p.scales, zero_points: p.zero_points, sqnr_db }
        }
        other => return Err(type_error(format!("format: expected 'matmulnbits', 'qdq' or 'gather', got {other:?}"))),
    })
}

pub struct NbitsTask {
    w: Float32Array,
    spec: NbitsSpec,
    transposed: bool,
    format: String,
}

impl Task for NbitsTask {
    type Output = Packed;
    type JsValue = NbitsWeights;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("nbitsQuantize", || run(&self.w, self.spec, self.transposed, &self.format))
    }

    fn resolve(&mut self, _env: Env, p: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(NbitsWeights {
            data: Uint8Array::new(p.data),
            scales: Float32Array::new(p.scales),
            zero_points: p.zero_points.map(Uint8Array::new),
            sqnr_db: p.sqnr_db,
        })
    }
}

#[napi]
#[allow(clippy::too_many_arguments)]
/// `w` is [K, N], or [N, K] when `transposed`.
pub fn nbits_quantize_async(w: Float32Array, k: u32, n: u32, transposed: bool, bits: u32, block_size: u32, symmetric: bool, format: String, signal: Option<AbortSignal>) -> AsyncTask<NbitsTask> {
    AsyncTask::with_optional_signal(NbitsTask { w, spec: spec(k, n, bits, block_size, symmetric), transposed, format }, signal)
}

/// MatMulNBits' inputs back to codes [K, N] (uint8, 0..2^bits−1), scales [nb, N] and zero points
/// [nb, N] (2^(bits−1) when `zeroPoints` is absent).
#[napi(object)]
pub struct NbitsUnpacked {
    pub codes: Uint8Array,
    pub scales: Float32Array,
    pub zero_points: Uint8Array,
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn nbits_unpack_matmul(b: Uint8Array, scales: Float32Array, zero_points: Option<Uint8Array>, k: u32, n: u32, bits: u32, block_size: u32) -> napi::Result<NbitsUnpacked> {
    let sp = spec(k, n, bits, block_size, zero_points.is_none());
    let (codes, s, z) = core::unpack_matmul_nbits(&b, &scales, zero_points.as_deref(), sp).map_err(core_error)?;
    Ok(NbitsUnpacked { codes: Uint8Array::new(codes), scales: Float32Array::new(s), zero_points: Uint8Array::new(z) })
}

/// One block grid per [nb, N] entry: what QuantSim's "onnxruntime" block rule computes (core
/// `block_grids`). `w` is [K, N], or [N, K] when `transposed`.
#[napi(object)]
pub struct NbitsGrids {
    /// [nb, N].
    pub scales: Float32Array,
    /// [nb, N], unsigned; 2^(bits−1) everywhere when symmetric.
    pub zero_points: Uint8Array,
}

#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn nbits_block_grids(w: Float32Array, k: u32, n: u32, transposed: bool, bits: u32, block_size: u32, symmetric: bool) -> napi::Result<NbitsGrids> {
    let (s, z) = core::block_grids(&w, spec(k, n, bits, block_size, symmetric), transposed).map_err(core_error)?;
    Ok(NbitsGrids { scales: Float32Array::new(s), zero_points: Uint8Array::new(z) })
}

fn run_with_grids(w: &[f32], spec: NbitsSpec, transposed: bool, scales: Vec<f32>, zero_points: Vec<u8>, format: &str) -> napi::Result<Packed> {
    let q = core::quantize_with_grids(w, spec, transposed, scales, zero_points).map_err(core_error)?;
    pack(&q, format)
}

pub struct NbitsPackTask {
    w: Float32Array,
    spec: NbitsSpec,
    transposed: bool,
    scales: Float32Array,
    zero_points: Uint8Array,
    format: String,
}

impl Task for NbitsPackTask {
    type Output = Packed;
    type JsValue = NbitsWeights;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        guard("nbitsPack", || run_with_grids(&self.w, self.spec, self.transposed, self.scales.to_vec(), self.zero_points.to_vec(), &self.format))
    }

    fn resolve(&mut self, _env: Env, p: Self::Output) -> napi::Result<Self::JsValue> {
        Ok(NbitsWeights {
            data: Uint8Array::new(p.data),
            scales: Float32Array::new(p.scales),
            zero_points: p.zero_points.map(Uint8Array::new),
            sqnr_db: p.sqnr_db,
        })
    }
}

/// Codes `w` ([K, N], or [N, K] when `transposed`) on given grids (scales and unsigned zero points
/// [nb, N], e.g. a QuantSim quantizer's encodings) and packs them: 'matmulnbits', 'qdq', or
/// 'gather' (GatherBlockQuantized rows of the table W = tableᵀ). Borrows `w` until it settles.
#[napi]
#[allow(clippy::too_many_arguments)]
pub fn nbits_pack_async(
    w: Float32Array,
    k: u32,
    n: u32,
    transposed: bool,
    bits: u32,
    block_size: u32,
    symmetric: bool,
    scales: Float32Array,
    zero_points: Uint8Array,
    format: String,
    signal: Option<AbortSignal>,
) -> AsyncTask<NbitsPackTask> {
    AsyncTask::with_optional_signal(NbitsPackTask { w, spec: spec(k, n, bits, block_size, symmetric), transposed, scales, zero_points, format }, signal)
}

/// MatMulNBits' inputs back to the dequantized weight, (code − zero point)·scale in f32, in the
/// stored layout ([K, N], or [N, K] when `transposed`).
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn nbits_dequantize_matmul(b: Uint8Array, scales: Float32Array, zero_points: Option<Uint8Array>, k: u32, n: u32, bits: u32, block_size: u32, transposed: bool) -> napi::Result<Float32Array> {
    let sp = spec(k, n, bits, block_size, zero_points.is_none());
    let (codes, s, z) = core::unpack_matmul_nbits(&b, &scales, zero_points.as_deref(), sp).map_err(core_error)?;
    let q = core::BlockQuantized { spec: sp, codes, scales: s, zero_points: z, signal_power: 0.0, noise_power: 0.0 };
    Ok(Float32Array::new(core::dequantize(&q, transposed)))
}

/// A byte matrix [rows, cols] transposed to [cols, rows] (int8/uint8 codes of a Gemm's transB weight).
#[napi(catch_unwind)]
pub fn transpose_bytes(x: Uint8Array, rows: u32, cols: u32) -> napi::Result<Uint8Array> {
    let (r, c) = (rows as usize, cols as usize);
    if x.len() != r * c {
        return Err(type_error(format!("x: has {} bytes, expected rows·cols = {r}·{c}", x.len())));
    }
    Ok(Uint8Array::new(core::transpose(&x, r, c)))
}

/// Int4/uint4 codes (one per byte, e.g. an Int8Array's bytes) packed two per byte, low nibble
/// first (ONNX's 4-bit layout): QuantSim's QDQ export of 4-bit weights.
#[napi(catch_unwind)]
pub fn pack_nibbles(values: Uint8Array) -> Uint8Array {
    Uint8Array::new(core::pack_nibbles(values.iter().copied()))
}
