//! Analytical bias correction's reduction (src/techniques/analyticalBias.ts): per output channel,
//! (Ŵ − W)·E[x] — the shift quantizing the weight adds to the layer's expected output when its
//! input has per-channel means E[x] (Nagel et al. 2019, §4.2).

/// Σⱼ Σₜ (ŵ − w)[o, j, t] · e[first(o) + j] for every output channel o of a weight laid out
/// `[m, cg, k]` (a Conv's [M, C/group, kernel…], or a Gemm's [N, K] with `cg` = K, `k` = 1), where
/// first(o) = (o div (m / group))·cg is the first input channel of o's group; or, with
/// `transposed`, of a `[cg, m]` matrix (a Gemm without transB: element (o, j) at j·m + o; then
/// `k` and `group` must be 1). Accumulated in f64.
pub fn weight_delta_dot(w: &[f32], wq: &[f32], m: usize, cg: usize, k: usize, group: usize, transposed: bool, e: &[f64]) -> Result<Vec<f64>, String> {
    let n = m.checked_mul(cg).and_then(|v| v.checked_mul(k)).ok_or("the weight's element count overflows")?;
    if w.len() != n || wq.len() != n {
        return Err(format!("w and wq must hold m·cg·k = {m}·{cg}·{k} = {n} values, got {} and {}", w.len(), wq.len()));
    }
    if group == 0 || m % group != 0 {
        return Err(format!("group: {group} does not divide the {m} output channels"));
    }
    if transposed && (k != 1 || group != 1) {
        return Err("a transposed (Gemm [K, N]) weight has k = 1 and group = 1".into());
    }
    if e.len() != cg * group {
        return Err(format!("e: expected {} input-channel means (cg·group), got {}", cg * group, e.len()));
    }
    let per_group = m / group;
    Ok((0..m)
        .map(|o| {
            let first = (o / per_group) * cg;
            let mut s = 0f64;
            for j in 0..cg {
                let dw = if transposed {
                    let at = j * m + o;
                    wq[at] as f64 - w[at] as f64
                } else {
                    let base = (o * cg + j) * k;
                    (0..k).map(|t| wq[base + t] as f64 - w[base + t] as f64).sum::<f64>()
                };
                s += dw * e[first + j];
            }
            s
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conv_by_hand() {
        // m 2, cg 1, k 2, group 2 (depthwise): channel 0 Δ = (0.5 + 0) · e0, channel 1 Δ = (−1 + 0.25) · e1.
        let w = [0.0, 0.0, 0.0, 0.0];
        let wq = [0.5, 0.0, -1.0, 0.25];
        let s = weight_delta_dot(&w, &wq, 2, 1, 2, 2, false, &[2.0, 4.0]).unwrap();
        assert_eq!(s, vec![1.0, -3.0]);
    }

    #[test]
    fn gemm_both_layouts_agree() {
        // ΔW [N = 2, K = 3] = [[1, 0, 2], [0, −1, 0]]; e = [1, 2, 3] → [7, −2].
        let w = [0.0f32; 6];
        let rows = [1.0, 0.0, 2.0, 0.0, -1.0, 0.0];
        let cols = [1.0, 0.0, 0.0, -1.0, 2.0, 0.0]; // the same ΔW as [K, N]
        let e = [1.0, 2.0, 3.0];
        assert_eq!(weight_delta_dot(&w, &rows, 2, 3, 1, 1, false, &e).unwrap(), vec![7.0, -2.0]);
        assert_eq!(weight_delta_dot(&w, &cols, 2, 3, 1, 1, true, &e).unwrap(), vec![7.0, -2.0]);
    }

    #[test]
    fn rejects_bad_shapes() {
        assert!(weight_delta_dot(&[0.0; 4], &[0.0; 3], 2, 1, 2, 1, false, &[0.0]).is_err());
        assert!(weight_delta_dot(&[0.0; 4], &[0.0; 4], 2, 1, 2, 3, false, &[0.0; 3]).is_err());
        assert!(weight_delta_dot(&[0.0; 4], &[0.0; 4], 2, 2, 1, 1, false, &[0.0]).unwrap_err().starts_with("e:"));
    }
}
