//! Axis permutation of a dense row-major tensor (numpy's `transpose(perm)` then a copy), for the
//! weight rearrangements of graph rewrites (spatial SVD's kh×1 / 1×kw factors), which TypeScript
//! must not loop over element by element.

/// `data` laid out as `dims` (row-major), returned laid out as `dims[perm[0]] × dims[perm[1]] × …`:
/// output element (i₀, …, iₙ₋₁) is input element j with j[perm[k]] = iₖ.
pub fn permute<T: Copy>(data: &[T], dims: &[usize], perm: &[usize]) -> Result<Vec<T>, String> {
    let n = dims.len();
    if perm.len() != n {
        return Err(format!("perm: expected {n} axes (one per dimension), got {}", perm.len()));
    }
    let mut seen = vec![false; n];
    for &p in perm {
        if p >= n || seen[p] {
            return Err(format!("perm: expected a permutation of 0..{n}, got {perm:?}"));
        }
        seen[p] = true;
    }
    let len = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or("dims: the element count overflows")?;
    if len != data.len() {
        return Err(format!("data has {} elements, dims {dims:?} describe {len}", data.len()));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    // Input strides, then the output's dims and the input stride of each output axis.
    let mut stride = vec![1usize; n];
    for k in (0..n.saturating_sub(1)).rev() {
        stride[k] = stride[k + 1] * dims[k + 1];
    }
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let in_stride: Vec<usize> = perm.iter().map(|&p| stride[p]).collect();
    let mut out = Vec::with_capacity(len);
    if n == 0 {
        out.push(data[0]);
        return Ok(out);
    }
    // An odometer over the output's outer axes; the innermost axis is a strided run.
    let (inner, inner_stride) = (out_dims[n - 1], in_stride[n - 1]);
    let mut index = vec![0usize; n - 1];
    let mut base = 0usize;
    loop {
        out.extend((0..inner).map(|i| data[base + i * inner_stride]));
        let mut k = n - 1;
        loop {
            if k == 0 {
                return Ok(out);
            }
            k -= 1;
            index[k] += 1;
            base += in_stride[k];
            if index[k] < out_dims[k] {
                break;
            }
            base -= in_stride[k] * out_dims[k];
            index[k] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_a_matrix() {
        // [[1, 2, 3], [4, 5, 6]] → [[1, 4], [2, 5], [3, 6]]
        assert_eq!(permute(&[1, 2, 3, 4, 5, 6], &[2, 3], &[1, 0]).unwrap(), vec![1, 4, 2, 5, 3, 6]);
    }

    #[test]
    fn matches_index_arithmetic_in_four_dimensions() {
        // W[o, c, i, j] → M[c, i, o, j] (spatial SVD's matrix), checked element by element.
        let dims = [3, 2, 4, 5];
        let data: Vec<u32> = (0..120).collect();
        let m = permute(&data, &dims, &[1, 2, 0, 3]).unwrap();
        for o in 0..3 {
            for c in 0..2 {
                for i in 0..4 {
                    for j in 0..5 {
                        let src = ((o * 2 + c) * 4 + i) * 5 + j;
                        let dst = ((c * 4 + i) * 3 + o) * 5 + j;
                        assert_eq!(m[dst], data[src]);
                    }
                }
            }
        }
    }

    #[test]
    fn identity_and_degenerate_shapes() {
        let data: Vec<u8> = (0..24).collect();
        assert_eq!(permute(&data, &[2, 3, 4], &[0, 1, 2]).unwrap(), data);
        assert_eq!(permute(&[7], &[], &[]).unwrap(), vec![7]);
        assert!(permute::<u8>(&[], &[0, 3], &[1, 0]).unwrap().is_empty());
        assert_eq!(permute(&[1, 2, 3], &[1, 3, 1], &[2, 1, 0]).unwrap(), vec![1, 2, 3]);
    }

    #[test]
    fn rejects_bad_arguments() {
        assert!(permute(&[1, 2, 3, 4], &[2, 2], &[0, 0]).unwrap_err().contains("perm"));
        assert!(permute(&[1, 2, 3, 4], &[2, 2], &[0]).unwrap_err().contains("perm"));
        assert!(permute(&[1, 2, 3], &[2, 2], &[1, 0]).unwrap_err().contains("3 elements"));
    }
}
