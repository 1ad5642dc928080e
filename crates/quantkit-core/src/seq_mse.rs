//! Per-channel reductions for SeqMSE (src/techniques/seqMse.ts): the squared error of a layer's
//! output, summed per output channel, for each weight-range candidate. The layer output is
//! `[outer, channels, inner]` in memory (Conv: [N, M, H·W]; Gemm/MatMul: [rows, N, 1]).

/// Σ x² over `outer` and `inner`, per channel, accumulated in f64.
pub fn channel_sum_squares(data: &[f32], outer: usize, channels: usize, inner: usize) -> Result<Vec<f64>, String> {
    let n = outer.checked_mul(channels).and_then(|v| v.checked_mul(inner)).ok_or("shape overflows")?;
    if n != data.len() {
        return Err(format!("data has {} elements, expected outer·channels·inner = {outer}·{channels}·{inner} = {n}", data.len()));
    }
    let mut sums = vec![0f64; channels];
    if n == 0 {
        return Ok(sums);
    }
    for block in data.chunks_exact(channels * inner) {
        for (c, row) in block.chunks_exact(inner).enumerate() {
            // f32 partial sums over a row keep the loop vectorisable; rows are short enough
            // (a feature map) that the f64 accumulation across rows bounds the error.
            let mut acc = 0f64;
            for chunk in row.chunks(4096) {
                acc += chunk.iter().map(|&v| v * v).sum::<f32>() as f64;
            }
            sums[c] += acc;
        }
    }
    Ok(sums)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_channel() {
        // outer 2, channels 2, inner 3
        let d = [1.0, 2.0, 3.0, 0.5, 0.5, 0.0, -1.0, 0.0, 0.0, 2.0, 0.0, 0.0];
        let s = channel_sum_squares(&d, 2, 2, 3).unwrap();
        assert_eq!(s, vec![14.0 + 1.0, 0.5 + 4.0]);
    }

    #[test]
    fn rejects_bad_shape() {
        assert!(channel_sum_squares(&[1.0; 5], 1, 2, 3).is_err());
    }
}
