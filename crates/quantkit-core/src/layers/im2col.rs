//! im2col and its adjoint col2im: a convolution window unrolled into a matrix so that the
//! convolution becomes one GEMM. `col` is [channels·kh·kw, oh·ow] row-major, row
//! `(c·kh + ky)·kw + kx`, column `oy·ow + ox`, holding `image[c, oy·sh + ky·dh − pt, ox·sw + kx·dw − pl]`
//! or 0 outside the image. col2im adds each column entry back onto its image pixel (the
//! transpose of im2col), which is both Conv's input gradient and ConvTranspose's forward.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub channels: usize,
    /// The image's [h, w].
    pub image: [usize; 2],
    /// The column grid's [oh, ow] (the conv output).
    pub cols: [usize; 2],
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// [top, left]; the bottom/right pads only matter through `cols`.
    pub pad_begin: [usize; 2],
}

impl Window {
    pub fn rows(&self) -> usize {
        self.channels * self.kernel[0] * self.kernel[1]
    }

    pub fn positions(&self) -> usize {
        self.cols[0] * self.cols[1]
    }

    pub fn image_len(&self) -> usize {
        self.channels * self.image[0] * self.image[1]
    }

    /// 1×1, stride 1, no padding: col is the image itself, no copy needed.
    pub fn is_identity(&self) -> bool {
        self.kernel == [1, 1] && self.strides == [1, 1] && self.pad_begin == [0, 0] && self.image == self.cols
    }

    /// Output positions `o` in `0..len` with `o·s + off` inside `0..extent`, as a half-open range.
    #[inline]
    fn valid(len: usize, extent: usize, s: usize, off: isize) -> (usize, usize) {
        let s = s as isize;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let room = extent as isize - off;
        let hi = if room <= 0 { 0 } else { (room + s - 1) / s };
        let hi = (hi as usize).min(len);
        ((lo as usize).min(hi), hi)
    }

    /// Calls `f(row, c, ky, kx)` for each col row with the valid ranges along both axes.
    #[inline]
    fn for_each_row(&self, mut f: impl FnMut(usize, usize, isize, isize, (usize, usize), (usize, usize))) {
        let [kh, kw] = self.kernel;
        let mut row = 0;
        for c in 0..self.channels {
            for ky in 0..kh {
                let offy = (ky * self.dilations[0]) as isize - self.pad_begin[0] as isize;
                let ry = Self::valid(self.cols[0], self.image[0], self.strides[0], offy);
                for kx in 0..kw {
                    let offx = (kx * self.dilations[1]) as isize - self.pad_begin[1] as isize;
                    let rx = Self::valid(self.cols[1], self.image[1], self.strides[1], offx);
                    f(row, c, offy, offx, ry, rx);
                    row += 1;
                }
            }
        }
    }
}

/// `col = im2col(image)`; every element of `col` is written.
pub(crate) fn im2col(win: &Window, image: &[f32], col: &mut [f32]) {
    let [ih, iw] = win.image;
    let [oh, ow] = win.cols;
    let [sh, sw] = win.strides;
    let p = oh * ow;
    debug_assert_eq!(image.len(), win.image_len());
    debug_assert_eq!(col.len(), win.rows() * p);
    win.for_each_row(|row, c, offy, offx, (y0, y1), (x0, x1)| {
        let dst = &mut col[row * p..(row + 1) * p];
        let plane = &image[c * ih * iw..(c + 1) * ih * iw];
        dst[..y0 * ow].fill(0.0);
        dst[y1 * ow..].fill(0.0);
        for oy in y0..y1 {
            let iy = (oy * sh) as isize + offy;
            let src = &plane[iy as usize * iw..(iy as usize + 1) * iw];
            let d = &mut dst[oy * ow..(oy + 1) * ow];
            d[..x0].fill(0.0);
            d[x1..].fill(0.0);
            if x0 < x1 {
                let ix0 = ((x0 * sw) as isize + offx) as usize;
                if sw == 1 {
                    d[x0..x1].copy_from_slice(&src[ix0..ix0 + (x1 - x0)]);
                } else {
                    for (k, v) in d[x0..x1].iter_mut().enumerate() {
                        *v = src[ix0 + k * sw];
                    }
                }
            }
        }
    });
}

/// `image += col2im(col)` (the adjoint of [`im2col`]).
pub(crate) fn col2im_add(win: &Window, col: &[f32], image: &mut [f32]) {
    let [ih, iw] = win.image;
    let [oh, ow] = win.cols;
    let [sh, sw] = win.strides;
    let p = oh * ow;
    debug_assert_eq!(image.len(), win.image_len());
    debug_assert_eq!(col.len(), win.rows() * p);
    win.for_each_row(|row, c, offy, offx, (y0, y1), (x0, x1)| {
        let src = &col[row * p..(row + 1) * p];
        let plane = &mut image[c * ih * iw..(c + 1) * ih * iw];
        if x0 >= x1 {
            return;
        }
        for oy in y0..y1 {
            let iy = (oy * sh) as isize + offy;
            let dst = &mut plane[iy as usize * iw..(iy as usize + 1) * iw];
            let s = &src[oy * ow + x0..oy * ow + x1];
            let ix0 = ((x0 * sw) as isize + offx) as usize;
            if sw == 1 {
                for (d, v) in dst[ix0..ix0 + s.len()].iter_mut().zip(s) {
                    *d += v;
                }
            } else {
                for (k, v) in s.iter().enumerate() {
                    dst[ix0 + k * sw] += v;
                }
            }
        }
    });
}
