//! Channel pruning's numerics (src/compression/channelPruning.ts), after AIMET's torch channel
//! pruner: which input channels of a Conv to keep, and the data its weights are reconstructed on.
//!
//! - Selection by weight magnitude, as AIMET (`aimet_common/channel_pruner.py`
//!   `select_channels_to_prune`): Σ w² over output channels and kernel positions, per input channel;
//!   the largest are kept.
//! - Selection by contribution to the output (greedy, ThiNet-style): with `Y_c` the part of the
//!   layer's output that input channel `c` produces on sampled patches, repeatedly drop the channel
//!   that least increases `‖Σ_{dropped} Y_c‖²`. Only the Gram matrix `G[c,c'] = ⟨Y_c, Y_c'⟩` is
//!   needed, computed as `Σ (XᵀX ⊙ WᵀW)` over each channel pair's block.
//! - Sampling, as AIMET's `InputMatchSearch.subsample_data`: a few random output positions per
//!   image (with replacement; away from the border only where the padding is larger than the
//!   kernel), the receptive field of each as one row of `channels·kh·kw` values (zeros where the
//!   window leaves the image), and the original layer's output at the same positions as targets.
//!   AIMET supports dilation 1 only; here the window follows the dilation.
//! - Gathering along one axis (kept channels of weights, biases, sampled rows).
use crate::layers::sgemm::{sgemm_serial, MatRef};

#[derive(Debug, Clone, PartialEq)]
pub struct PruningError(pub String);

impl std::fmt::Display for PruningError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PruningError {}

fn err<T>(msg: impl Into<String>) -> Result<T, PruningError> {
    Err(PruningError(msg.into()))
}

/// A 2-D Conv's window, as the pruner samples it (NCHW input of `channels` channels).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PatchWindow {
    pub channels: usize,
    /// Input [h, w].
    pub image: [usize; 2],
    /// Output [oh, ow].
    pub out: [usize; 2],
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// [top, left].
    pub pad_begin: [usize; 2],
}

impl PatchWindow {
    pub fn cols(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    fn check(&self) -> Result<(), PruningError> {
        let dims = [self.image, self.out, self.kernel, self.strides, self.dilations];
        if self.channels == 0 || dims.iter().any(|d| d[0] == 0 || d[1] == 0) {
            return err(format!("window {self:?}: every size, stride and dilation must be at least 1"));
        }
        Ok(())
    }
}

/// splitmix64: a small, fixed PRNG so that a seed gives the same positions everywhere.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in lo..hi (hi > lo).
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next() % (hi - lo) as u64) as usize
    }
}

/// Output positions to sample: `per_image` (oy, ox) pairs for each of `images` images, flattened
/// as [oy, ox, oy, ox, …]. Rows (columns) run over the whole output unless the padding exceeds the
/// kernel, where AIMET keeps `pad .. out − pad` (those border outputs see only padding).
pub fn sample_positions(images: usize, per_image: usize, win: &PatchWindow, seed: u64) -> Result<Vec<u32>, PruningError> {
    win.check()?;
    let range = |ax: usize| {
        let (k, p, o) = (win.kernel[ax], win.pad_begin[ax], win.out[ax]);
        if k >= p || o <= 2 * p { (0, o) } else { (p, o - p) }
    };
    let (ry, rx) = (range(0), range(1));
    let mut rng = SplitMix(seed);
    let mut out = Vec::with_capacity(images * per_image * 2);
    for _ in 0..images * per_image {
        out.push(rng.range(ry.0, ry.1) as u32);
        out.push(rng.range(rx.0, rx.1) as u32);
    }
    Ok(out)
}

fn check_positions(positions: &[u32], images: usize, win: &PatchWindow) -> Result<usize, PruningError> {
    if images == 0 || positions.len() % (2 * images) != 0 {
        return err(format!("positions has {} values, expected 2·samplesPerImage per image for {images} images", positions.len()));
    }
    if let Some(i) = positions.chunks_exact(2).position(|p| p[0] as usize >= win.out[0] || p[1] as usize >= win.out[1]) {
        return err(format!("position {i} ({}, {}) lies outside the {}×{} output", positions[2 * i], positions[2 * i + 1], win.out[0], win.out[1]));
    }
    Ok(positions.len() / (2 * images))
}

/// The receptive field of each sampled output position, one row of `channels·kh·kw` values per
/// sample (row-major, channel-major within a row as the weight [M, C, kh, kw] is), zeros outside
/// the image. `x` is [images, channels, h, w]; `channels_kept`, when given, keeps only those input
/// channels (in that order) and the row has `kept·kh·kw` values.
pub fn sample_patches(x: &[f32], images: usize, win: &PatchWindow, positions: &[u32], channels_kept: Option<&[usize]>) -> Result<Vec<f32>, PruningError> {
    win.check()?;
    let [ih, iw] = win.image;
    let plane = ih * iw;
    if x.len() != images * win.channels * plane {
        return err(format!("x has {} elements, expected images·C·H·W = {images}·{}·{ih}·{iw}", x.len(), win.channels));
    }
    let per_image = check_positions(positions, images, win)?;
    let all: Vec<usize>;
    let kept = match channels_kept {
        Some(k) => {
            if let Some(&bad) = k.iter().find(|&&c| c >= win.channels) {
                return err(format!("kept channel {bad} is out of range for {} channels", win.channels));
            }
            k
        }
        None => {
            all = (0..win.channels).collect();
            &all
        }
    };
    let [kh, kw] = win.kernel;
    let row_len = kept.len() * kh * kw;
    let mut out = vec![0f32; images * per_image * row_len];
    for (s, (p, row)) in positions.chunks_exact(2).zip(out.chunks_exact_mut(row_len.max(1))).enumerate() {
        let n = s / per_image;
        let y0 = (p[0] as usize * win.strides[0]) as isize - win.pad_begin[0] as isize;
        let x0 = (p[1] as usize * win.strides[1]) as isize - win.pad_begin[1] as isize;
        for (j, &c) in kept.iter().enumerate() {
            let src = &x[(n * win.channels + c) * plane..][..plane];
            for ky in 0..kh {
                let iy = y0 + (ky * win.dilations[0]) as isize;
                if iy < 0 || iy >= ih as isize {
                    continue;
                }
                for kx in 0..kw {
                    let ix = x0 + (kx * win.dilations[1]) as isize;
                    if ix >= 0 && ix < iw as isize {
                        row[(j * kh + ky) * kw + kx] = src[iy as usize * iw + ix as usize];
                    }
                }
            }
        }
    }
    Ok(out)
}

/// The layer output at the sampled positions: rows of `channels` values. `y` is [images, channels, oh, ow].
pub fn sample_outputs(y: &[f32], images: usize, channels: usize, win: &PatchWindow, positions: &[u32]) -> Result<Vec<f32>, PruningError> {
    let [oh, ow] = win.out;
    if y.len() != images * channels * oh * ow {
        return err(format!("y has {} elements, expected images·M·OH·OW = {images}·{channels}·{oh}·{ow}", y.len()));
    }
    let per_image = check_positions(positions, images, win)?;
    let mut out = Vec::with_capacity(images * per_image * channels);
    for (s, p) in positions.chunks_exact(2).enumerate() {
        let n = s / per_image;
        let at = p[0] as usize * ow + p[1] as usize;
        out.extend((0..channels).map(|m| y[(n * channels + m) * oh * ow + at]));
    }
    Ok(out)
}

/// Σ w² per input channel of a weight [m, c, inner] (AIMET's selection magnitude), in f64.
pub fn input_channel_magnitudes(w: &[f32], m: usize, c: usize, inner: usize) -> Result<Vec<f64>, PruningError> {
    if w.len() != m * c * inner {
        return err(format!("weight has {} elements, expected {m}·{c}·{inner}", w.len()));
    }
    let mut s = vec![0f64; c];
    for block in w.chunks_exact((c * inner).max(1)) {
        for (ch, k) in block.chunks_exact(inner.max(1)).enumerate() {
            s[ch] += k.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>();
        }
    }
    Ok(s)
}

/// The `keep` channels with the largest scores, in ascending index order. Ties go to the lower
/// index (AIMET's argpartition leaves ties unspecified).
pub fn top_channels(scores: &[f64], keep: usize) -> Result<Vec<usize>, PruningError> {
    if keep == 0 || keep > scores.len() {
        return err(format!("keep must be in 1..={}, got {keep}", scores.len()));
    }
    if let Some(i) = scores.iter().position(|v| v.is_nan()) {
        return err(format!("score of channel {i} is NaN"));
    }
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap().then(a.cmp(&b)));
    idx.truncate(keep);
    idx.sort_unstable();
    Ok(idx)
}

/// Copies the entries at `keep` along `axis` of a row-major tensor of `dims`.
pub fn gather_axis(data: &[f32], dims: &[usize], axis: usize, keep: &[usize]) -> Result<Vec<f32>, PruningError> {
    if axis >= dims.len() {
        return err(format!("axis {axis} is out of range for rank {}", dims.len()));
    }
    let total: usize = dims.iter().product();
    if data.len() != total {
        return err(format!("data has {} elements, expected {total} for dims {dims:?}", data.len()));
    }
    if let Some(&bad) = keep.iter().find(|&&k| k >= dims[axis]) {
        return err(format!("index {bad} is out of range for axis {axis} of size {}", dims[axis]));
    }
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        let base = o * dims[axis] * inner;
        for &k in keep {
            out.extend_from_slice(&data[base + k * inner..base + (k + 1) * inner]);
        }
    }
    Ok(out)
}

/// The least-squares design matrix from sampled patches [rows, c, inner]: the kept channels'
/// columns, plus a column of ones when the layer has a bias (AIMET fits the intercept then).
pub fn design_matrix(patches: &[f32], rows: usize, c: usize, inner: usize, keep: &[usize], intercept: bool) -> Result<Vec<f32>, PruningError> {
    let kept = gather_axis(patches, &[rows, c, inner], 1, keep)?;
    if !intercept {
        return Ok(kept);
    }
    let w = keep.len() * inner;
    let mut out = Vec::with_capacity(rows * (w + 1));
    for r in kept.chunks_exact(w.max(1)).take(rows) {
        out.extend_from_slice(r);
        out.push(1.0);
    }
    if w == 0 {
        out = vec![1.0; rows];
    }
    Ok(out)
}

/// A least-squares solution `x` [cols, m] (row-major, cols = kept·inner, plus 1 with an
/// intercept) as a Conv weight [m, kept·inner] and, with an intercept, the bias (its last row).
pub fn split_solution(x: &[f32], cols: usize, m: usize, intercept: bool) -> Result<(Vec<f32>, Vec<f32>), PruningError> {
    if x.len() != cols * m || (intercept && cols == 0) {
        return err(format!("solution has {} elements, expected cols·m = {cols}·{m}", x.len()));
    }
    let wcols = if intercept { cols - 1 } else { cols };
    let mut w = vec![0f32; m * wcols];
    for (j, row) in x.chunks_exact(m.max(1)).take(wcols).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            w[o * wcols + j] = v;
        }
    }
    let bias = if intercept { x[wcols * m..].to_vec() } else { Vec::new() };
    Ok((w, bias))
}

/// Largest `channels·kernel` for the contribution Gram (two f32 matrices of that size squared).
pub const MAX_CONTRIBUTION_COLS: usize = 4096;

/// `G[c,c'] = ⟨X_c W_cᵀ, X_c' W_c'ᵀ⟩` for patches `x` [rows, c·inner] and weight `w` [m, c·inner]:
/// how much of the output's energy channels c and c' produce together.
pub fn contribution_gram(x: &[f32], rows: usize, w: &[f32], m: usize, c: usize, inner: usize) -> Result<Vec<f64>, PruningError> {
    let k = c * inner;
    if k == 0 || k > MAX_CONTRIBUTION_COLS {
        return err(format!("channels·kernel = {k} is outside 1..={MAX_CONTRIBUTION_COLS}; the contribution selection would need two {k}×{k} matrices"));
    }
    if x.len() != rows * k || w.len() != m * k {
        return err(format!("patches have {} elements and the weight {}, expected {rows}·{k} and {m}·{k}", x.len(), w.len()));
    }
    // H = XᵀX and Q = WᵀW, both k×k.
    let mut h = vec![0f32; k * k];
    let xm = MatRef::row_major(x, rows, k);
    sgemm_serial(xm.t(), xm, &mut h, k, false);
    let mut q = vec![0f32; k * k];
    let wm = MatRef::row_major(w, m, k);
    sgemm_serial(wm.t(), wm, &mut q, k, false);
    let mut g = vec![0f64; c * c];
    for a in 0..c {
        for b in 0..c {
            let mut s = 0f64;
            for i in 0..inner {
                let r = (a * inner + i) * k + b * inner;
                s += h[r..r + inner].iter().zip(&q[r..r + inner]).map(|(&p, &v)| p as f64 * v as f64).sum::<f64>();
            }
            g[a * c + b] = s;
        }
    }
    Ok(g)
}

/// Greedy selection on a contribution Gram (c×c): drops, one at a time, the channel whose removal
/// adds least to `‖Σ_{dropped} Y‖² = Σ_{i,j ∈ dropped} G[i,j]`, until `keep` remain. Returns the
/// kept channels in ascending order. Ties go to the lower index.
pub fn greedy_keep(gram: &[f64], c: usize, keep: usize) -> Result<Vec<usize>, PruningError> {
    if gram.len() != c * c {
        return err(format!("gram has {} elements, expected {c}²", gram.len()));
    }
    if keep == 0 || keep > c {
        return err(format!("keep must be in 1..={c}, got {keep}"));
    }
    let mut dropped = vec![false; c];
    // cross[j] = Σ_{i dropped} G[i, j]
    let mut cross = vec![0f64; c];
    for _ in 0..c - keep {
        let mut best: Option<(usize, f64)> = None;
        for j in (0..c).filter(|&j| !dropped[j]) {
            let added = 2.0 * cross[j] + gram[j * c + j];
            if best.map_or(true, |(_, v)| added < v) {
                best = Some((j, added));
            }
        }
        let (j, _) = best.expect("a channel remains to drop");
        dropped[j] = true;
        for (i, x) in cross.iter_mut().enumerate() {
            *x += gram[j * c + i];
        }
    }
    Ok((0..c).filter(|&j| !dropped[j]).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(channels: usize, image: [usize; 2], out: [usize; 2], kernel: [usize; 2], strides: [usize; 2], pad: [usize; 2]) -> PatchWindow {
        PatchWindow { channels, image, out, kernel, strides, dilations: [1, 1], pad_begin: pad }
    }

    #[test]
    fn patches_follow_stride_padding_and_kept_channels() {
        // x: 1 image, 2 channels of 3×3 holding 0..8 and 10..18; 3×3 kernel, pad 1, stride 2 → 2×2 output.
        let x: Vec<f32> = (0..9).map(|v| v as f32).chain((0..9).map(|v| 10.0 + v as f32)).collect();
        let w = win(2, [3, 3], [2, 2], [3, 3], [2, 2], [1, 1]);
        // Output (0,0) sees rows −1..1, cols −1..1; output (1,1) sees rows 1..3, cols 1..3.
        let rows = sample_patches(&x, 1, &w, &[0, 0, 1, 1], None).unwrap();
        assert_eq!(rows.len(), 2 * 18);
        #[rustfmt::skip]
        let first = [0., 0., 0., 0., 0., 1., 0., 3., 4., 0., 0., 0., 0., 10., 11., 0., 13., 14.];
        #[rustfmt::skip]
        let second = [4., 5., 0., 7., 8., 0., 0., 0., 0., 14., 15., 0., 17., 18., 0., 0., 0., 0.];
        assert_eq!(&rows[..18], &first);
        assert_eq!(&rows[18..], &second);
        let only1 = sample_patches(&x, 1, &w, &[1, 1], Some(&[1])).unwrap();
        assert_eq!(only1, second[9..].to_vec());
    }

    #[test]
    fn patches_follow_dilation() {
        // 1 channel 5×5 of 0..24, 2×2 kernel dilated by 2, no pad → 3×3 output; (1, 2) sees (1,2),(1,4),(3,2),(3,4).
        let x: Vec<f32> = (0..25).map(|v| v as f32).collect();
        let w = PatchWindow { channels: 1, image: [5, 5], out: [3, 3], kernel: [2, 2], strides: [1, 1], dilations: [2, 2], pad_begin: [0, 0] };
        assert_eq!(sample_patches(&x, 1, &w, &[1, 2], None).unwrap(), vec![7., 9., 17., 19.]);
    }

    #[test]
    fn patch_times_weight_is_the_conv_output() {
        // A 1×1 conv on 2 images: y[n, m, p] = Σ_c w[m, c] x[n, c, p]; rows·wᵀ must equal sample_outputs of y.
        let x: Vec<f32> = (0..2 * 3 * 4).map(|v| (v as f32 * 0.37).sin()).collect();
        let wt = [0.5f32, -1.0, 2.0, 1.5, 0.25, -0.75];
        let mut y = vec![0f32; 2 * 2 * 4];
        for n in 0..2 {
            for m in 0..2 {
                for p in 0..4 {
                    y[(n * 2 + m) * 4 + p] = (0..3).map(|c| wt[m * 3 + c] * x[(n * 3 + c) * 4 + p]).sum();
                }
            }
        }
        let w = win(3, [2, 2], [2, 2], [1, 1], [1, 1], [0, 0]);
        let pos = sample_positions(2, 3, &w, 7).unwrap();
        let rows = sample_patches(&x, 2, &w, &pos, None).unwrap();
        let target = sample_outputs(&y, 2, 2, &w, &pos).unwrap();
        for s in 0..6 {
            for m in 0..2 {
                let v: f32 = (0..3).map(|c| rows[s * 3 + c] * wt[m * 3 + c]).sum();
                assert!((v - target[s * 2 + m]).abs() < 1e-6);
            }
        }
    }

    #[test]
    fn positions_are_seeded_in_range_and_avoid_pure_padding() {
        let w = win(1, [8, 8], [10, 10], [1, 1], [1, 1], [2, 2]);
        let a = sample_positions(4, 50, &w, 1).unwrap();
        assert_eq!(a, sample_positions(4, 50, &w, 1).unwrap());
        assert_ne!(a, sample_positions(4, 50, &w, 2).unwrap());
        // pad 2 > kernel 1: AIMET keeps 2..8.
        assert!(a.iter().all(|&v| (2..8).contains(&v)));
        let w3 = win(1, [8, 8], [8, 8], [3, 3], [1, 1], [1, 1]);
        let b = sample_positions(10, 100, &w3, 3).unwrap();
        assert!(b.iter().all(|&v| v < 8) && b.contains(&0) && b.contains(&7));
        assert!(sample_patches(&[0.0; 64], 1, &w3, &[8, 0], None).is_err());
    }

    #[test]
    fn design_matrix_keeps_channels_and_appends_ones() {
        // rows 2, c 3, inner 2
        let p: Vec<f32> = (0..12).map(|v| v as f32).collect();
        assert_eq!(design_matrix(&p, 2, 3, 2, &[0, 2], true).unwrap(), vec![0., 1., 4., 5., 1., 6., 7., 10., 11., 1.]);
        assert_eq!(design_matrix(&p, 2, 3, 2, &[1], false).unwrap(), vec![2., 3., 8., 9.]);
    }

    #[test]
    fn solution_splits_into_weight_and_bias() {
        // x [3, 2]: rows are weight columns 0 and 1, then the bias.
        let x = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(split_solution(&x, 3, 2, true).unwrap(), (vec![1., 3., 2., 4.], vec![5., 6.]));
        assert_eq!(split_solution(&x, 3, 2, false).unwrap(), (vec![1., 3., 5., 2., 4., 6.], vec![]));
    }

    #[test]
    fn magnitudes_and_top_channels() {
        // w [2, 3, 1]: channel sums of squares 1+16, 4+0, 9+1.
        let w = [1.0f32, 2.0, 3.0, 4.0, 0.0, 1.0];
        assert_eq!(input_channel_magnitudes(&w, 2, 3, 1).unwrap(), vec![17.0, 4.0, 10.0]);
        assert_eq!(top_channels(&[17.0, 4.0, 10.0], 2).unwrap(), vec![0, 2]);
        assert_eq!(top_channels(&[1.0, 1.0, 1.0], 1).unwrap(), vec![0]);
        assert!(top_channels(&[1.0], 0).is_err());
    }

    #[test]
    fn gather_along_each_axis() {
        let d: Vec<f32> = (0..24).map(|v| v as f32).collect();
        assert_eq!(gather_axis(&d, &[2, 3, 4], 1, &[2, 0]).unwrap(), vec![8., 9., 10., 11., 0., 1., 2., 3., 20., 21., 22., 23., 12., 13., 14., 15.]);
        assert_eq!(gather_axis(&d, &[2, 3, 4], 0, &[1]).unwrap(), d[12..].to_vec());
        assert_eq!(gather_axis(&d, &[2, 3, 4], 2, &[3]).unwrap(), vec![3., 7., 11., 15., 19., 23.]);
        assert!(gather_axis(&d, &[2, 3, 4], 1, &[3]).is_err());
    }

    #[test]
    fn gram_matches_explicit_contributions_and_greedy_drops_the_cancelling_pair() {
        // 3 channels, inner 2, m 2, 4 rows: compare with Y_c computed by hand.
        let (rows, c, inner, m) = (4usize, 3usize, 2usize, 2usize);
        let x: Vec<f32> = (0..rows * c * inner).map(|v| ((v * 7 % 11) as f32) - 5.0).collect();
        let w: Vec<f32> = (0..m * c * inner).map(|v| ((v * 5 % 7) as f32) * 0.5 - 1.0).collect();
        let y = |ch: usize| -> Vec<f64> {
            let mut out = vec![0f64; rows * m];
            for r in 0..rows {
                for o in 0..m {
                    out[r * m + o] = (0..inner).map(|i| x[r * c * inner + ch * inner + i] as f64 * w[o * c * inner + ch * inner + i] as f64).sum();
                }
            }
            out
        };
        let g = contribution_gram(&x, rows, &w, m, c, inner).unwrap();
        for a in 0..c {
            for b in 0..c {
                let expect: f64 = y(a).iter().zip(y(b)).map(|(p, q)| p * q).sum();
                assert!((g[a * c + b] - expect).abs() < 1e-6 * expect.abs().max(1.0), "G[{a},{b}] = {} vs {expect}", g[a * c + b]);
            }
        }
        // Gram of channels 0 and 1 cancelling (Y_1 = −Y_0, each of energy 4) and a small channel 2
        // (energy 1): the greedy drops 2 first (adds 1), then one of 0/1 (adds 4, tie → lower index).
        let gram = [4.0, -4.0, 0.0, -4.0, 4.0, 0.0, 0.0, 0.0, 1.0];
        assert_eq!(greedy_keep(&gram, 3, 2).unwrap(), vec![0, 1]);
        assert_eq!(greedy_keep(&gram, 3, 1).unwrap(), vec![1]);
        assert_eq!(greedy_keep(&gram, 3, 3).unwrap(), vec![0, 1, 2]);
    }
}
