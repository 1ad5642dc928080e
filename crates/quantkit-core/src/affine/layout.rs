//! Validation of an [`AffineSpec`] into a [`Plan`], and the walk that maps a flat element range
//! to rows that share a scale (scalar rows) or use a row of scales (vector rows).
//!
//! The data is viewed as (outer, C, inner) around the axis. Chunks for threads are cut at fixed
//! flat offsets, not at row boundaries, so a chunk may start or end inside a row; the walk
//! handles that, and load balance does not depend on the shape.

use super::kernels::{Io, FAST_LIMIT};
use super::{AffineError, AffineSpec, Granularity};
use rayon::prelude::*;

/// Below this many elements everything runs on the calling thread.
pub(super) const PAR_MIN: usize = 1 << 16;
/// Elements per rayon task above the threshold.
const CHUNK: usize = 1 << 16;

#[derive(Clone, Copy, Debug)]
pub(super) enum Layout {
    /// One scale for everything.
    Tensor,
    /// Per-channel with inner ≥ 2: runs of `inner` elements, run r uses parameter r % c.
    Runs { c: usize, inner: usize },
    /// Per-channel with inner == 1 (axis last): each row of c elements uses scale[0..c].
    Rows { c: usize },
    /// Per-block with inner == 1: rows of c elements, blocks of b (last partial) share one scale.
    Blocks { c: usize, b: usize, nb: usize },
    /// Per-block with inner ≥ 2: row (o, cc) of `inner` elements uses the scale row
    /// (o·nb + cc/b)·inner .. +inner.
    BlockRows {
        c: usize,
        b: usize,
        nb: usize,
        inner: usize,
    },
}

#[derive(Clone, Copy, Debug)]
enum Seg {
    /// One parameter index for the whole segment.
    Scalar(usize),
    /// Parameters start at this index, one per element.
    Vector(usize),
}

/// Walks the segments from a flat index on. The divisions that locate the first segment are
/// done once; later segments follow by counting (per-block rows of 32 elements would otherwise
/// pay several integer divisions per block).
struct Cursor {
    layout: Layout,
    /// Exclusive end (flat index) and parameters of the current segment.
    end: usize,
    seg: Seg,
    /// Layout-specific counters: Runs: (-, channel, -); Rows: unused; Blocks: (outer, block, -);
    /// BlockRows: (outer, channel, channel within its block).
    o: usize,
    k: usize,
    m: usize,
}

impl Cursor {
    fn new(layout: Layout, i: usize) -> Self {
        let (end, seg, o, k, m) = match layout {
            Layout::Tensor => (usize::MAX, Seg::Scalar(0), 0, 0, 0),
            Layout::Runs { c, inner } => {
                let r = i / inner;
                ((r + 1) * inner, Seg::Scalar(r % c), 0, r % c, 0)
            }
            Layout::Rows { c } => {
                let o = i / c;
                ((o + 1) * c, Seg::Vector(i - o * c), o, 0, 0)
            }
            Layout::Blocks { c, b, nb } => {
                let o = i / c;
                let k = (i - o * c) / b;
                (
                    o * c + ((k + 1) * b).min(c),
                    Seg::Scalar(o * nb + k),
                    o,
                    k,
                    0,
                )
            }
            Layout::BlockRows { c, b, nb, inner } => {
                let row = i / inner;
                let j = i - row * inner;
                let o = row / c;
                let cc = row - o * c;
                (
                    (row + 1) * inner,
                    Seg::Vector((o * nb + cc / b) * inner + j),
                    o,
                    cc,
                    cc % b,
                )
            }
        };
        Cursor {
            layout,
            end,
            seg,
            o,
            k,
            m,
        }
    }

    #[inline]
    fn advance(&mut self) {
        match self.layout {
            Layout::Tensor => unreachable!("a per-tensor segment ends past every chunk"),
            Layout::Runs { c, inner } => {
                self.k += 1;
                if self.k == c {
                    self.k = 0;
                }
                self.end += inner;
                self.seg = Seg::Scalar(self.k);
            }
            Layout::Rows { c } => {
                self.end += c;
                self.seg = Seg::Vector(0);
            }
            Layout::Blocks { c, b, nb } => {
                self.k += 1;
                if self.k == nb {
                    self.k = 0;
                    self.o += 1;
                }
                self.end = self.o * c + ((self.k + 1) * b).min(c);
                self.seg = Seg::Scalar(self.o * nb + self.k);
            }
            Layout::BlockRows { c, b, nb, inner } => {
                self.k += 1;
                self.m += 1;
                if self.k == c {
                    (self.k, self.m) = (0, 0);
                    self.o += 1;
                } else if self.m == b {
                    self.m = 0;
                }
                self.end += inner;
                // (k − m) / b is the block index; k − m is a multiple of b.
                self.seg = Seg::Vector((self.o * nb + (self.k - self.m) / b) * inner);
            }
        }
    }
}

/// A validated spec, ready to run.
pub(super) struct Plan<'a> {
    pub layout: Layout,
    pub scale: &'a [f32],
    pub offset: &'a [i32],
    pub qmin: i32,
    pub qmax: i32,
    /// Some clamp bound lies beyond ±2²²: use the f64 element path.
    pub wide: bool,
}

impl<'a> Plan<'a> {
    pub fn new(spec: &AffineSpec<'a>, len: usize) -> Result<Self, AffineError> {
        let (qmin, qmax) = check_grid(spec.qmin, spec.qmax)?;

        let shape = spec.shape;
        let product = shape.iter().try_fold(1usize, |p, &d| p.checked_mul(d));
        if product != Some(len) {
            return Err(AffineError::ShapeMismatch {
                shape: shape.to_vec(),
                len,
            });
        }

        let (layout, n_scale) = match spec.granularity {
            Granularity::PerTensor => (Layout::Tensor, 1),
            Granularity::PerChannel { axis } => {
                let (_, c, inner) = split(shape, axis)?;
                // One channel is one scale for everything.
                let layout = if c == 1 {
                    Layout::Tensor
                } else if inner == 1 {
                    Layout::Rows { c }
                } else {
                    Layout::Runs { c, inner }
                };
                (layout, c)
            }
            Granularity::PerBlock { axis, block_size } => {
                let (outer, c, inner) = split(shape, axis)?;
                if block_size == 0 {
                    return Err(AffineError::BlockSizeZero);
                }
                let nb = c.div_ceil(block_size);
                let layout = if inner == 1 {
                    Layout::Blocks {
                        c,
                        b: block_size,
                        nb,
                    }
                } else {
                    Layout::BlockRows {
                        c,
                        b: block_size,
                        nb,
                        inner,
                    }
                };
                // outer·nb·inner ≤ outer·c·inner = len, so no overflow.
                (layout, outer * nb * inner)
            }
        };
        if spec.scale.len() != n_scale {
            return Err(AffineError::ScaleLength {
                expected: n_scale,
                got: spec.scale.len(),
            });
        }
        if spec.offset.len() != 1 && spec.offset.len() != n_scale {
            return Err(AffineError::OffsetLength {
                expected: n_scale,
                got: spec.offset.len(),
            });
        }
        if let Some(index) = spec.scale.iter().position(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(AffineError::InvalidScale {
                index,
                value: spec.scale[index],
            });
        }
        let mut wide = false;
        for (index, &off) in spec.offset.iter().enumerate() {
            let lo = qmin as i64 + off as i64;
            let hi = qmax as i64 + off as i64;
            if lo < i32::MIN as i64 || hi > i32::MAX as i64 {
                return Err(AffineError::OffsetOverflow {
                    index,
                    offset: off,
                    qmin: spec.qmin,
                    qmax: spec.qmax,
                });
            }
            wide |= lo < -FAST_LIMIT || hi > FAST_LIMIT;
        }
        // A zero-element tensor may legitimately have an empty scale and offset.
        let layout = if len == 0 { Layout::Tensor } else { layout };
        Ok(Plan {
            layout,
            scale: spec.scale,
            offset: spec.offset,
            qmin,
            qmax,
            wide,
        })
    }

    /// Run `f(input, scale, offset)` over one chunk starting at flat index `start`.
    #[inline(always)]
    fn run_chunk<IO: Io, F: Fn(IO::I, f32, i32) -> IO::O>(&self, io: &mut IO, start: usize, f: &F) {
        let n = io.len();
        let bcast = self.offset.len() == 1;
        let mut i = 0;
        let mut cur = Cursor::new(self.layout, start);
        while i < n {
            let e = (cur.end - start).min(n);
            match cur.seg {
                Seg::Scalar(p) => {
                    let off = if bcast {
                        self.offset[0]
                    } else {
                        self.offset[p]
                    };
                    io.map_scalar(i..e, self.scale[p], off, f);
                }
                Seg::Vector(k) => {
                    let s = &self.scale[k..k + (e - i)];
                    if bcast {
                        io.map_vec(i..e, s, self.offset[0], f);
                    } else {
                        io.map_vec2(i..e, s, &self.offset[k..k + (e - i)], f);
                    }
                }
            }
            i = e;
            if i < n {
                cur.advance();
            }
        }
    }

    /// out[i] = f(src[i], scale, offset), threaded above [`PAR_MIN`] elements.
    pub fn run<I, O, F>(&self, src: &[I], dst: &mut [O], f: F)
    where
        I: Copy + Sync,
        O: Send,
        F: Fn(I, f32, i32) -> O + Sync,
    {
        use super::kernels::Pair;
        if dst.len() <= PAR_MIN {
            self.run_chunk(&mut Pair { src, dst }, 0, &f);
        } else {
            dst.par_chunks_mut(CHUNK)
                .zip(src.par_chunks(CHUNK))
                .enumerate()
                .for_each(|(k, (dst, src))| self.run_chunk(&mut Pair { src, dst }, k * CHUNK, &f));
        }
    }

    /// buf[i] = f(buf[i], scale, offset), threaded above [`PAR_MIN`] elements.
    pub fn run_in_place<F>(&self, buf: &mut [f32], f: F)
    where
        F: Fn(f32, f32, i32) -> f32 + Sync,
    {
        use super::kernels::InPlace;
        if buf.len() <= PAR_MIN {
            self.run_chunk(&mut InPlace { buf }, 0, &f);
        } else {
            buf.par_chunks_mut(CHUNK)
                .enumerate()
                .for_each(|(k, buf)| self.run_chunk(&mut InPlace { buf }, k * CHUNK, &f));
        }
    }
}

/// qmin ≤ qmax, both within i32.
pub(super) fn check_grid(qmin: i64, qmax: i64) -> Result<(i32, i32), AffineError> {
    if qmin > qmax {
        return Err(AffineError::InvalidGrid { qmin, qmax });
    }
    match (i32::try_from(qmin), i32::try_from(qmax)) {
        (Ok(lo), Ok(hi)) => Ok((lo, hi)),
        _ => Err(AffineError::GridTooWide { qmin, qmax }),
    }
}

/// (outer, C, inner) around `axis`. The product is known not to overflow (it equals len).
fn split(shape: &[usize], axis: usize) -> Result<(usize, usize, usize), AffineError> {
    if axis >= shape.len() {
        return Err(AffineError::AxisOutOfRange {
            axis,
            rank: shape.len(),
        });
    }
    let outer = shape[..axis].iter().product();
    let inner = shape[axis + 1..].iter().product();
    Ok((outer, shape[axis], inner))
}
