//! Block-wise weight-only quantization of a MatMul weight `W` [K, N] (row-major, K the reduction
//! axis), and its two storage layouts: ONNX Runtime's `com.microsoft.MatMulNBits` and ONNX's
//! opset-21 blocked `DequantizeLinear` (axis 0).
//!
//! # Numbers
//! Blocks run along K: block `j` of column `n` holds rows `j·B .. min((j+1)·B, K)` (the last may be
//! partial), so the scale and zero-point grids are [nb, N] with `nb = ceil(K / B)` (the layout of
//! ONNX's blocked Q/DQ for axis 0, and of [`crate::affine`]'s `PerBlock { axis: 0 }`).
//! - Symmetric: codes on the signed grid `[−2^(b−1), 2^(b−1) − 1]`, zero point 0 (MatMulNBits
//!   stores `q + 2^(b−1)` and omits zero_points: ONNX Runtime's default zero point is `2^(b−1)`).
//!   `scale = max(−min / 2^(b−1), max / (2^(b−1) − 1))`: the smallest positive scale that holds the
//!   block without clipping, so a block whose extreme is negative uses the grid's −2^(b−1).
//!   (ONNX Runtime's own quantizer takes `scale = extreme / −2^(b−1)`, a negative scale when the
//!   extreme is positive; quantkit keeps scales positive, as ONNX's QuantizeLinear expects.)
//! - Asymmetric: codes on `[0, 2^b − 1]`, range widened to include 0 (`lo = min(min, 0)`,
//!   `hi = max(max, 0)`, as ONNX Runtime's quantizer does), `scale = (hi − lo) / (2^b − 1)`,
//!   `zero_point = round_half_even(−lo / scale)` saturated to the grid.
//! - A block of zeros (or of values too small for a normal f32 scale) gets scale 1: any positive
//!   scale codes it exactly, and dequantize needs a positive one.
//! - The codes themselves come from [`crate::affine::quantize`]: `x / scale`, round half to even,
//!   add the zero point, saturate — ONNX Runtime's QuantizeLinear arithmetic, bit for bit.
//!
//! # MatMulNBits layout (ONNX Runtime docs/ContribOperators.md, `com.microsoft.MatMulNBits`, and
//! `MatMulNBitsQuantizer` in onnxruntime/python/tools/quantization/matmul_nbits_quantizer.py)
//! - `B`: uint8 [N, nb, blob], `blob = B·bits/8`; column n's codes along K, block by block; for
//!   4 bits two codes per byte, the first in the low nibble. Rows K..nb·B of the last block are
//!   padding: ONNX Runtime's quantizer pads W with zeros, so they hold the code of 0 (the zero point).
//! - `scales`: [N · nb] (shape [N, nb]), the same float type as A.
//! - `zero_points` (optional): uint8, for 4 bits packed per column into ceil(nb/2) bytes (low
//!   nibble first, [N, ceil(nb·bits/8)]); for 8 bits one byte per block ([N, nb]). Absent means
//!   2^(b−1) (8 for 4 bits, 128 for 8 bits).

use crate::affine::{self, AffineError, AffineSpec, Granularity};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NbitsSpec {
    /// Rows of W (the reduction axis).
    pub k: usize,
    /// Columns of W (output features).
    pub n: usize,
    /// 4 or 8.
    pub bits: u32,
    /// Power of two, 16 ..= 256 (MatMulNBits needs a power of two ≥ 16).
    pub block_size: usize,
    pub symmetric: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum NbitsError {
    Bits(u32),
    BlockSize(usize),
    Length { expected: usize, got: usize },
    NonFinite { index: usize, value: f32 },
    Affine(String),
}

impl fmt::Display for NbitsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NbitsError::Bits(b) => write!(f, "bits: expected 4 or 8, got {b}"),
            NbitsError::BlockSize(b) => write!(f, "block size: expected a power of two from 16 to 256, got {b}"),
            NbitsError::Length { expected, got } => write!(f, "expected {expected} elements, got {got}"),
            NbitsError::NonFinite { index, value } => {
                write!(f, "the weight holds a non-finite value ({value}) at flat index {index}; it cannot be quantized")
            }
            NbitsError::Affine(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for NbitsError {}

impl From<AffineError> for NbitsError {
    fn from(e: AffineError) -> Self {
        NbitsError::Affine(e.to_string())
    }
}

impl NbitsSpec {
    pub fn blocks(&self) -> usize {
        self.k.div_ceil(self.block_size)
    }
    /// Bytes per block in MatMulNBits' B.
    pub fn blob_size(&self) -> usize {
        self.block_size * self.bits as usize / 8
    }
    /// The zero point MatMulNBits assumes when zero_points is omitted: 2^(bits−1).
    pub fn default_zero_point(&self) -> u8 {
        1u8 << (self.bits - 1)
    }
    fn qmax(&self) -> i64 {
        (1i64 << self.bits) - 1
    }
    pub fn check(&self) -> Result<(), NbitsError> {
        if self.bits != 4 && self.bits != 8 {
            return Err(NbitsError::Bits(self.bits));
        }
        if !(16..=256).contains(&self.block_size) || !self.block_size.is_power_of_two() {
            return Err(NbitsError::BlockSize(self.block_size));
        }
        Ok(())
    }
}

/// W quantized: unsigned codes (what MatMulNBits stores) and the per-block parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockQuantized {
    pub spec: NbitsSpec,
    /// [K, N] row-major, in [0, 2^bits − 1]; the real value is `(code − zero_point) · scale`.
    pub codes: Vec<u8>,
    /// [nb, N] row-major.
    pub scales: Vec<f32>,
    /// [nb, N] row-major; 2^(bits−1) everywhere when symmetric.
    pub zero_points: Vec<u8>,
    /// Σ w² and Σ (w − ŵ)², in f64, for the weight's SQNR.
    pub signal_power: f64,
    pub noise_power: f64,
}

impl BlockQuantized {
    /// 10·log10(Σw² / Σ(w − ŵ)²); +inf when the weight is reproduced exactly.
    pub fn sqnr_db(&self) -> f64 {
        if self.noise_power == 0.0 {
            return f64::INFINITY;
        }
        10.0 * (self.signal_power / self.noise_power).log10()
    }
}

/// One block's scale and (unsigned) zero point from its extremes `lo ≤ 0 ≤ hi` (see the module
/// docs). Shared with the GPTQ solver (gptq.rs), which sets each group's grid the same way.
pub fn block_grid(lo: f32, hi: f32, spec: &NbitsSpec) -> (f32, u8) {
    let mid = 1i64 << (spec.bits - 1);
    let mut s = if spec.symmetric {
        (-lo / mid as f32).max(hi / (mid - 1) as f32)
    } else {
        (hi - lo) / spec.qmax() as f32
    };
    if !(s >= f32::MIN_POSITIVE) {
        s = 1.0;
    }
    if spec.symmetric {
        return (s, mid as u8);
    }
    // −lo/scale is in [0, qmax]; the clamp only guards rounding at the top.
    let z = (-lo / s).round_ties_even().clamp(0.0, spec.qmax() as f32);
    (s, z as u8)
}

/// The per-block grids of W [K, N] (`transposed`: W stored [N, K]): scales and unsigned zero points,
/// both [nb, N] row-major, from each block's range widened to include 0 (see the module docs).
/// This is the "onnxruntime" block rule QuantSim's parameter quantizers can use (src/sim/blockwise.ts).
pub fn block_grids(w: &[f32], spec: NbitsSpec, transposed: bool) -> Result<(Vec<f32>, Vec<u8>), NbitsError> {
    spec.check()?;
    let (k, n, bs) = (spec.k, spec.n, spec.block_size);
    if w.len() != k * n {
        return Err(NbitsError::Length { expected: k * n, got: w.len() });
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(NbitsError::NonFinite { index, value: w[index] });
    }
    let nb = spec.blocks();
    let mut lo = vec![0f32; nb * n];
    let mut hi = vec![0f32; nb * n];
    if transposed {
        for (c, row) in w.chunks_exact(k.max(1)).enumerate().take(n) {
            for (kk, &v) in row.iter().enumerate() {
                let p = (kk / bs) * n + c;
                lo[p] = lo[p].min(v);
                hi[p] = hi[p].max(v);
            }
        }
    } else {
        for (row, chunk) in w.chunks_exact(n.max(1)).enumerate().take(k) {
            let j = row / bs;
            let (l, h) = (&mut lo[j * n..(j + 1) * n], &mut hi[j * n..(j + 1) * n]);
            for c in 0..n {
                let v = chunk[c];
                if v < l[c] {
                    l[c] = v;
                }
                if v > h[c] {
                    h[c] = v;
                }
            }
        }
    }
    // lo ≤ 0 ≤ hi by construction (both start at 0): the range always includes zero.
    let mut scales = vec![0f32; nb * n];
    let mut zero_points = vec![0u8; nb * n];
    for i in 0..nb * n {
        let (s, z) = block_grid(lo[i], hi[i], &spec);
        scales[i] = s;
        zero_points[i] = z;
    }
    Ok((scales, zero_points))
}

/// Quantizes W [K, N] per block of `block_size` rows, per column (see the module docs).
pub fn quantize_blockwise(w: &[f32], spec: NbitsSpec) -> Result<BlockQuantized, NbitsError> {
    let (scales, zero_points) = block_grids(w, spec, false)?;
    quantize_with_grids(w, spec, false, scales, zero_points)
}

/// W [K, N] (`transposed`: stored [N, K]) coded on given grids (scales and unsigned zero points,
/// [nb, N]; symmetric grids have zero point 2^(bits−1)): what a writer does with the encodings a
/// QuantSim parameter quantizer holds. With the grids of [`block_grids`] this is
/// [`quantize_blockwise`].
pub fn quantize_with_grids(w: &[f32], spec: NbitsSpec, transposed: bool, scales: Vec<f32>, zero_points: Vec<u8>) -> Result<BlockQuantized, NbitsError> {
    spec.check()?;
    let (k, n, bs) = (spec.k, spec.n, spec.block_size);
    if w.len() != k * n {
        return Err(NbitsError::Length { expected: k * n, got: w.len() });
    }
    let nb = spec.blocks();
    if scales.len() != nb * n {
        return Err(NbitsError::Length { expected: nb * n, got: scales.len() });
    }
    if zero_points.len() != nb * n {
        return Err(NbitsError::Length { expected: nb * n, got: zero_points.len() });
    }
    let owned;
    let w = if transposed {
        owned = transpose(w, n, k);
        &owned[..]
    } else {
        w
    };
    let mid = 1i64 << (spec.bits - 1);
    let shape = [k, n];
    let granularity = Granularity::PerBlock { axis: 0, block_size: bs };
    let mut codes = vec![0u8; k * n];
    if spec.symmetric {
        if let Some(z) = zero_points.iter().find(|&&z| z as i64 != mid) {
            return Err(NbitsError::Affine(format!("a symmetric grid has zero point {mid}, got {z}")));
        }
        let mut q = vec![0i8; k * n];
        let aspec = AffineSpec { shape: &shape, granularity, scale: &scales, offset: &[0], qmin: -mid, qmax: mid - 1 };
        affine::quantize(w, &aspec, &mut q)?;
        for (c, v) in codes.iter_mut().zip(&q) {
            *c = (*v as i64 + mid) as u8;
        }
    } else {
        let offsets: Vec<i32> = zero_points.iter().map(|&z| -(z as i32)).collect();
        let aspec = AffineSpec { shape: &shape, granularity, scale: &scales, offset: &offsets, qmin: 0, qmax: spec.qmax() };
        affine::quantize(w, &aspec, &mut codes)?;
    }
    let (mut signal, mut noise) = (0f64, 0f64);
    for (row, (wr, cr)) in w.chunks_exact(n.max(1)).zip(codes.chunks_exact(n.max(1))).enumerate().take(k) {
        let j = row / bs;
        for c in 0..n {
            let p = j * n + c;
            // The same f32 arithmetic as DequantizeLinear: (q − zp) converted, times scale.
            let r = (cr[c] as i32 - zero_points[p] as i32) as f32 * scales[p];
            let (x, e) = (wr[c] as f64, wr[c] as f64 - r as f64);
            signal += x * x;
            noise += e * e;
        }
    }
    Ok(BlockQuantized { spec, codes, scales, zero_points, signal_power: signal, noise_power: noise })
}

/// x [rows, cols] row-major → [cols, rows].
pub fn transpose<T: Copy + Default>(x: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = vec![T::default(); rows * cols];
    for (r, row) in x.chunks_exact(cols.max(1)).enumerate().take(rows) {
        for (c, &v) in row.iter().enumerate() {
            out[c * rows + r] = v;
        }
    }
    out
}

/// [`quantize_blockwise`] of a weight stored transposed, [N, K] (a Gemm with transB=1).
pub fn quantize_blockwise_transposed(w_nk: &[f32], spec: NbitsSpec) -> Result<BlockQuantized, NbitsError> {
    let (scales, zero_points) = block_grids(w_nk, spec, true)?;
    quantize_with_grids(w_nk, spec, true, scales, zero_points)
}

/// MatMulNBits' three constant inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct MatMulNBitsWeights {
    /// [N, nb, blob] uint8.
    pub b: Vec<u8>,
    /// [N, nb] (written as a flat [N · nb] tensor, as ONNX Runtime's quantizer does).
    pub scales: Vec<f32>,
    /// None when symmetric (ONNX Runtime then assumes 2^(bits−1)); else [N, ceil(nb·bits/8)] packed.
    pub zero_points: Option<Vec<u8>>,
}

/// Bytes per column of packed zero points: ceil(nb · bits / 8).
pub fn zero_point_row_bytes(spec: &NbitsSpec) -> usize {
    (spec.blocks() * spec.bits as usize).div_ceil(8)
}

pub fn pack_matmul_nbits(q: &BlockQuantized) -> MatMulNBitsWeights {
    let spec = q.spec;
    let (k, n, bs, nb, blob) = (spec.k, spec.n, spec.block_size, spec.blocks(), spec.blob_size());
    let col_bytes = nb * blob;
    let mut b = vec![0u8; n * col_bytes];
    for (c, col) in b.chunks_exact_mut(col_bytes.max(1)).enumerate().take(n) {
        for kk in 0..nb * bs {
            // Padding rows hold the code of 0.0, which is the block's zero point.
            let code = if kk < k { q.codes[kk * n + c] } else { q.zero_points[(kk / bs) * n + c] };
            if spec.bits == 8 {
                col[kk] = code;
            } else {
                col[kk / 2] |= (code & 0x0f) << ((kk & 1) * 4);
            }
        }
    }
    let mut scales = vec![0f32; n * nb];
    for j in 0..nb {
        for c in 0..n {
            scales[c * nb + j] = q.scales[j * n + c];
        }
    }
    let zero_points = (!spec.symmetric).then(|| {
        let row = zero_point_row_bytes(&spec);
        let mut zp = vec![0u8; n * row];
        for c in 0..n {
            for j in 0..nb {
                let z = q.zero_points[j * n + c];
                if spec.bits == 8 {
                    zp[c * row + j] = z;
                } else {
                    zp[c * row + j / 2] |= (z & 0x0f) << ((j & 1) * 4);
                }
            }
        }
        zp
    });
    MatMulNBitsWeights { b, scales, zero_points }
}

/// The inverse of [`pack_matmul_nbits`]: codes [K, N], scales [nb, N], zero points [nb, N]
/// (2^(bits−1) when `zero_points` is None). Padding rows are dropped.
pub fn unpack_matmul_nbits(
    b: &[u8],
    scales: &[f32],
    zero_points: Option<&[u8]>,
    spec: NbitsSpec,
) -> Result<(Vec<u8>, Vec<f32>, Vec<u8>), NbitsError> {
    spec.check()?;
    let (k, n, nb, blob) = (spec.k, spec.n, spec.blocks(), spec.blob_size());
    if b.len() != n * nb * blob {
        return Err(NbitsError::Length { expected: n * nb * blob, got: b.len() });
    }
    if scales.len() != n * nb {
        return Err(NbitsError::Length { expected: n * nb, got: scales.len() });
    }
    let row = zero_point_row_bytes(&spec);
    if let Some(zp) = zero_points {
        if zp.len() != n * row {
            return Err(NbitsError::Length { expected: n * row, got: zp.len() });
        }
    }
    let mut codes = vec![0u8; k * n];
    let mut s = vec![0f32; nb * n];
    let mut z = vec![spec.default_zero_point(); nb * n];
    for c in 0..n {
        let col = &b[c * nb * blob..(c + 1) * nb * blob];
        for kk in 0..k {
            codes[kk * n + c] = if spec.bits == 8 { col[kk] } else { (col[kk / 2] >> ((kk & 1) * 4)) & 0x0f };
        }
        for j in 0..nb {
            s[j * n + c] = scales[c * nb + j];
            if let Some(zp) = zero_points {
                z[j * n + c] = if spec.bits == 8 { zp[c * row + j] } else { (zp[c * row + j / 2] >> ((j & 1) * 4)) & 0x0f };
            }
        }
    }
    Ok((codes, s, z))
}

/// The weight as opset-21 `DequantizeLinear(x, scale, zero_point, axis=0, block_size)` inputs.
#[derive(Clone, Debug, PartialEq)]
pub struct QdqWeights {
    /// [K, N]: INT4 (symmetric) or UINT4 (asymmetric) packed two per byte, first element in the
    /// low nibble (onnx.proto's raw_data layout), or INT8 / UINT8 bytes.
    pub data: Vec<u8>,
    /// [nb, N].
    pub scales: Vec<f32>,
    /// None when symmetric (zero point 0 of the signed type); else [nb, N], UINT4 packed or UINT8.
    pub zero_points: Option<Vec<u8>>,
}

/// Two 4-bit values per byte, the first in the low nibble (onnx.proto's INT4/UINT4 raw_data layout);
/// only the low 4 bits of each value are kept (a signed int4 code's two's complement).
pub fn pack_nibbles(values: impl ExactSizeIterator<Item = u8>) -> Vec<u8> {
    let mut out = vec![0u8; values.len().div_ceil(2)];
    for (i, v) in values.enumerate() {
        out[i / 2] |= (v & 0x0f) << ((i & 1) * 4);
    }
    out
}

pub fn pack_qdq(q: &BlockQuantized) -> QdqWeights {
    let spec = q.spec;
    let mid = spec.default_zero_point();
    // Symmetric: the signed code is code − 2^(b−1); its two's-complement low bits are code ^ mid.
    let stored = q.codes.iter().map(|&c| if spec.symmetric { c ^ mid } else { c });
    let data = if spec.bits == 4 { pack_nibbles(stored) } else { stored.collect() };
    let zero_points = (!spec.symmetric).then(|| {
        if spec.bits == 4 {
            pack_nibbles(q.zero_points.iter().copied())
        } else {
            q.zero_points.clone()
        }
    });
    QdqWeights { data, scales: q.scales.clone(), zero_points }
}

/// W [K, N] with its codes back to floats, `(code − zero_point) · scale` in f32 (DequantizeLinear's
/// arithmetic), in the stored layout: [K, N], or [N, K] when `transposed`.
pub fn dequantize(q: &BlockQuantized, transposed: bool) -> Vec<f32> {
    let (k, n, bs) = (q.spec.k, q.spec.n, q.spec.block_size);
    let mut out = vec![0f32; k * n];
    for kk in 0..k {
        let j = kk / bs;
        for c in 0..n {
            let p = j * n + c;
            let v = (q.codes[kk * n + c] as i32 - q.zero_points[p] as i32) as f32 * q.scales[p];
            out[if transposed { c * k + kk } else { kk * n + c }] = v;
        }
    }
    out
}

/// An embedding table [V, D] as `com.microsoft.GatherBlockQuantized` inputs (gather_axis 0,
/// quantize_axis 1), from the block quantization of W = tableᵀ [K = D, N = V]:
/// - `data`: uint8 [V, ceil(D·bits/8)], unsigned codes row by row; 4 bits two per byte, low nibble first;
/// - `scales`: [V, nb];
/// - `zero_points`: None when symmetric (the op's default is 2^(bits−1)); else uint8 [V, nb] (8
///   bits) or [V, ceil(nb/2)] packed per row (4 bits).
#[derive(Clone, Debug, PartialEq)]
pub struct GatherWeights {
    pub data: Vec<u8>,
    pub scales: Vec<f32>,
    pub zero_points: Option<Vec<u8>>,
}

/// Values [rows, cols] (row-major, taken from `at(r, c)`) packed per row: one byte each (8 bits),
/// or two per byte, low nibble first, ceil(cols/2) bytes a row (4 bits).
fn pack_rows(rows: usize, cols: usize, bits: u32, at: impl Fn(usize, usize) -> u8) -> Vec<u8> {
    let per = if bits == 8 { cols } else { cols.div_ceil(2) };
    let mut out = vec![0u8; rows * per];
    for r in 0..rows {
        let row = &mut out[r * per..(r + 1) * per];
        for c in 0..cols {
            let v = at(r, c);
            if bits == 8 {
                row[c] = v;
            } else {
                row[c / 2] |= (v & 0x0f) << ((c & 1) * 4);
            }
        }
    }
    out
}

pub fn pack_gather_rows(q: &BlockQuantized) -> GatherWeights {
    let spec = q.spec;
    let (d, v, nb) = (spec.k, spec.n, spec.blocks());
    let data = pack_rows(v, d, spec.bits, |r, c| q.codes[c * v + r]);
    let scales = transpose(&q.scales, nb, v);
    let zero_points = (!spec.symmetric).then(|| pack_rows(v, nb, spec.bits, |r, j| q.zero_points[j * v + r]));
    GatherWeights { data, scales, zero_points }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn weight(k: usize, n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..k * n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn spec(k: usize, n: usize, bits: u32, block_size: usize, symmetric: bool) -> NbitsSpec {
        NbitsSpec { k, n, bits, block_size, symmetric }
    }

    fn dequant(q: &BlockQuantized) -> Vec<f32> {
        let (k, n, bs) = (q.spec.k, q.spec.n, q.spec.block_size);
        (0..k * n)
            .map(|i| {
                let p = (i / n / bs) * n + i % n;
                (q.codes[i] as i32 - q.zero_points[p] as i32) as f32 * q.scales[p]
            })
            .collect()
    }

    #[test]
    fn pack_unpack_round_trips() {
        for &(k, n) in &[(64, 8), (28, 5), (100, 3), (16, 1)] {
            for &bits in &[4, 8] {
                for &sym in &[true, false] {
                    for &bs in &[16, 32, 128] {
                        let sp = spec(k, n, bits, bs, sym);
                        let q = quantize_blockwise(&weight(k, n, (k * n) as u32 + bits), sp).unwrap();
                        let p = pack_matmul_nbits(&q);
                        assert_eq!(p.b.len(), n * sp.blocks() * sp.blob_size());
                        assert_eq!(p.zero_points.is_none(), sym);
                        let (codes, scales, zps) = unpack_matmul_nbits(&p.b, &p.scales, p.zero_points.as_deref(), sp).unwrap();
                        assert_eq!(codes, q.codes);
                        assert_eq!(scales, q.scales);
                        assert_eq!(zps, q.zero_points);
                    }
                }
            }
        }
    }

    #[test]
    fn padding_holds_the_zero_point_and_layout_is_column_major_blocks() {
        // K = 20, block 16: column c's second block holds rows 16..19 then 12 padding codes.
        let sp = spec(20, 2, 4, 16, true);
        let w: Vec<f32> = (0..40).map(|i| if i % 2 == 0 { (i / 2) as f32 / 19.0 } else { -1.0 }).collect();
        let q = quantize_blockwise(&w, sp).unwrap();
        let p = pack_matmul_nbits(&q);
        assert_eq!(p.b.len(), 2 * 2 * 8);
        // Column 1 is all −1: scale 1/8, code −8 + 8 = 0 everywhere, padding 8 (0x88 bytes).
        let col1 = &p.b[16..32];
        assert!(col1[..8].iter().all(|&b| b == 0x00));
        assert_eq!(&col1[8..10], &[0x00, 0x00]);
        assert!(col1[10..].iter().all(|&b| b == 0x88));
        assert_eq!(p.scales[2], 0.125);
        // Column 0, first byte: rows 0 and 1 (0 and 1/19) → codes 8 and 8 + round(1/19 / (15/19 / 7)).
        assert_eq!(p.b[0] & 0x0f, 8);
    }

    #[test]
    fn symmetric_scale_holds_the_block_without_clipping() {
        let sp = spec(16, 1, 4, 16, true);
        let mut w = vec![0.1f32; 16];
        w[3] = -0.8;
        let q = quantize_blockwise(&w, sp).unwrap();
        assert_eq!(q.scales[0], 0.1); // −0.8 / 8
        assert_eq!(q.codes[3], 0); // −8 + 8
        w[3] = 0.7;
        let q = quantize_blockwise(&w, sp).unwrap();
        assert_eq!(q.scales[0], 0.7 / 7.0);
        assert_eq!(q.codes[3], 15);
    }

    #[test]
    fn asymmetric_includes_zero_and_zero_blocks_are_exact() {
        let sp = spec(32, 2, 8, 16, false);
        let mut w = vec![0f32; 64];
        for r in 0..32 {
            w[r * 2] = 0.5 + r as f32 / 64.0; // all positive: lo widened to 0, zero point 0
        }
        let q = quantize_blockwise(&w, sp).unwrap();
        assert_eq!(q.zero_points[0], 0);
        assert_eq!(q.scales[1], 1.0); // column 1 is all zero
        let d = dequant(&q);
        for r in 0..32 {
            assert_eq!(d[r * 2 + 1], 0.0);
            assert!((d[r * 2] - w[r * 2]).abs() <= q.scales[(r / 16) * 2] / 2.0 + 1e-7);
        }
    }

    #[test]
    fn error_is_within_half_a_step_and_sqnr_matches() {
        for &(bits, sym) in &[(4, true), (4, false), (8, true), (8, false)] {
            let sp = spec(96, 7, bits, 32, sym);
            let w = weight(96, 7, 7 + bits);
            let q = quantize_blockwise(&w, sp).unwrap();
            let d = dequant(&q);
            let mut noise = 0f64;
            for i in 0..w.len() {
                let s = q.scales[(i / 7 / 32) * 7 + i % 7];
                assert!((w[i] - d[i]).abs() <= s * 0.5 + 1e-6, "element {i}");
                noise += ((w[i] - d[i]) as f64).powi(2);
            }
            assert!((noise - q.noise_power).abs() <= 1e-9 * noise.max(1e-30));
            assert!(q.sqnr_db() > if bits == 4 { 15.0 } else { 40.0 });
        }
    }

    #[test]
    fn qdq_layout_matches_the_codes() {
        let sp = spec(20, 3, 4, 16, true);
        let q = quantize_blockwise(&weight(20, 3, 3), sp).unwrap();
        let p = pack_qdq(&q);
        assert_eq!(p.data.len(), 30);
        for i in 0..60 {
            let nib = (p.data[i / 2] >> ((i & 1) * 4)) & 0x0f;
            let signed = if nib > 7 { nib as i32 - 16 } else { nib as i32 };
            assert_eq!(signed, q.codes[i] as i32 - 8);
        }
        let sp = spec(20, 3, 8, 16, false);
        let q = quantize_blockwise(&weight(20, 3, 3), sp).unwrap();
        let p = pack_qdq(&q);
        assert_eq!(p.data, q.codes);
        assert_eq!(p.zero_points.unwrap(), q.zero_points);
    }

    #[test]
    fn transposed_input_gives_the_same_quantization() {
        let sp = spec(40, 6, 4, 16, false);
        let w = weight(40, 6, 11);
        let mut wt = vec![0f32; 240];
        for kk in 0..40 {
            for c in 0..6 {
                wt[c * 40 + kk] = w[kk * 6 + c];
            }
        }
        assert_eq!(quantize_blockwise_transposed(&wt, sp).unwrap(), quantize_blockwise(&w, sp).unwrap());
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert_eq!(quantize_blockwise(&[0.0; 4], spec(2, 2, 3, 16, true)), Err(NbitsError::Bits(3)));
        assert_eq!(quantize_blockwise(&[0.0; 4], spec(2, 2, 4, 24, true)), Err(NbitsError::BlockSize(24)));
        assert_eq!(quantize_blockwise(&[0.0; 4], spec(2, 2, 4, 512, true)), Err(NbitsError::BlockSize(512)));
        assert_eq!(quantize_blockwise(&[0.0; 3], spec(2, 2, 4, 16, true)), Err(NbitsError::Length { expected: 4, got: 3 }));
        assert!(matches!(quantize_blockwise(&[0.0, f32::NAN, 0.0, 0.0], spec(2, 2, 4, 16, true)), Err(NbitsError::NonFinite { index: 1, .. })));
    }

    #[test]
    fn grids_then_codes_equal_quantize_blockwise_and_transposed_grids_agree() {
        for &(bits, sym) in &[(4, true), (4, false), (8, true), (8, false)] {
            let sp = spec(40, 6, bits, 16, sym);
            let w = weight(40, 6, 5 + bits);
            let wt = transpose(&w, 40, 6);
            let (s, z) = block_grids(&w, sp, false).unwrap();
            assert_eq!(block_grids(&wt, sp, true).unwrap(), (s.clone(), z.clone()));
            let direct = quantize_blockwise(&w, sp).unwrap();
            assert_eq!(quantize_with_grids(&wt, sp, true, s.clone(), z.clone()).unwrap(), direct);
            // Dequantized weights coded again on the same grids give the same codes (GPTQ's hand-back).
            let back = dequantize(&direct, true);
            assert_eq!(quantize_with_grids(&back, sp, true, s, z).unwrap().codes, direct.codes);
        }
        let sp = spec(16, 1, 4, 16, true);
        assert!(quantize_with_grids(&[0.0; 16], sp, false, vec![1.0], vec![7]).is_err());
    }

    #[test]
    fn gather_rows_hand_built() {
        // Table [V = 2, D = 4] → W = tableᵀ [K = 4, N = 2]; block 16 (one partial block per row).
        // Asymmetric 4 bits. Row 0: [0, 1.5, 3, 0.75] → lo 0, hi 3, scale 0.2, zp 0,
        // codes round(x / 0.2) = [0, 8 (7.5 → 8), 15, 4 (3.75 → 4)].
        // Row 1: [−1.5, 0, 1.5, 0] → scale 0.2, zp round(7.5) = 8, codes [0, 8, 15 (7.5+8 → 16 sat 15), 8].
        let table = [0.0f32, 1.5, 3.0, 0.75, -1.5, 0.0, 1.5, 0.0];
        let sp = spec(4, 2, 4, 16, false);
        let q = quantize_blockwise_transposed(&table, sp).unwrap();
        assert_eq!(q.codes, vec![0, 0, 8, 8, 15, 15, 4, 8]); // [K, N]
        let g = pack_gather_rows(&q);
        assert_eq!(g.data, vec![0x80, 0x4f, 0x80, 0x8f]);
        assert_eq!(g.scales, vec![0.2, 0.2]);
        assert_eq!(g.zero_points, Some(vec![0x00, 0x08]));
        // Symmetric 8 bits: codes stored unsigned (q + 128), no zero points; scales per row.
        let sp = spec(4, 2, 8, 16, true);
        let g = pack_gather_rows(&quantize_blockwise_transposed(&table, sp).unwrap());
        // Row 0: scale max(0, 3/127); row 1: max(1.5/128, 1.5/127) = 1.5/127.
        assert_eq!(g.scales, vec![3.0 / 127.0, 1.5 / 127.0]);
        assert_eq!(g.data, vec![128, 128 + 64, 255, 128 + 32, 1, 128, 255, 128]);
        assert_eq!(g.zero_points, None);
    }
}
