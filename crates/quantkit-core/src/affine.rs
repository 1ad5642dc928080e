//! Affine quantize / dequantize kernels (in progress).
