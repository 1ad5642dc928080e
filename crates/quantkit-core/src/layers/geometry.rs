//! Shape arithmetic of Conv and ConvTranspose: attributes (ONNX's names and defaults), auto_pad,
//! output sizes, and the im2col [`Window`] both lower to. 1-D layers ([N, C, L]) are 2-D layers
//! with H = 1.
//!
//! Padding rules are ONNX Runtime's (`conv_attributes.h`, `conv_transpose_attributes.h`):
//! - Conv, SAME_*: output `ceil(in / stride)`, total pad `max(0, (out − 1)·s + (k − 1)·d + 1 − in)`,
//!   the odd pixel at the end for SAME_UPPER and at the beginning for SAME_LOWER.
//! - ConvTranspose, SAME_*: total pad `max(0, (in − 1)·s + output_padding + (k − 1)·d + 1 − in·s)`,
//!   split the same way; output `(in − 1)·s + output_padding + (k − 1)·d + 1 − pads`.
//! - ConvTranspose with `output_shape`: pads are recomputed from it (the attribute `pads` is
//!   ignored), total `max(0, full − output_shape)`; the odd pixel goes to the end for SAME_UPPER
//!   and to the beginning otherwise (NOTSET included), as ONNX's spec and ORT 1.23 do.

use super::error::LayerError;
use super::im2col::Window;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AutoPad {
    #[default]
    NotSet,
    SameUpper,
    SameLower,
    Valid,
}

impl AutoPad {
    /// ONNX's spelling: "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID" ("" is NOTSET).
    pub fn parse(s: &str) -> Result<Self, LayerError> {
        Ok(match s {
            "" | "NOTSET" => AutoPad::NotSet,
            "SAME_UPPER" => AutoPad::SameUpper,
            "SAME_LOWER" => AutoPad::SameLower,
            "VALID" => AutoPad::Valid,
            other => {
                return Err(LayerError::attribute(
                    "auto_pad",
                    format!("expected NOTSET, SAME_UPPER, SAME_LOWER or VALID, got {other:?}"),
                ))
            }
        })
    }
}

/// Conv's attributes as in ONNX. Empty lists take ONNX's defaults (strides and dilations 1,
/// pads 0); `kernel_shape`, when given, must match the weight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvAttrs {
    pub strides: Vec<usize>,
    /// `[x1_begin, x2_begin, …, x1_end, x2_end, …]`.
    pub pads: Vec<usize>,
    pub dilations: Vec<usize>,
    pub group: usize,
    pub auto_pad: AutoPad,
    pub kernel_shape: Vec<usize>,
}

impl Default for ConvAttrs {
    fn default() -> Self {
        ConvAttrs { strides: vec![], pads: vec![], dilations: vec![], group: 1, auto_pad: AutoPad::NotSet, kernel_shape: vec![] }
    }
}

/// ConvTranspose's attributes: Conv's plus `output_padding` and `output_shape` (spatial sizes;
/// a full [N, M, …] shape is accepted too, as ORT does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConvTransposeAttrs {
    pub conv: ConvAttrs,
    pub output_padding: Vec<usize>,
    pub output_shape: Vec<usize>,
}

/// A resolved 2-D convolution (Conv, or the forward conv whose adjoint a ConvTranspose is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// 1 for [N, C, L] tensors, 2 for [N, C, H, W].
    pub spatial_rank: usize,
    pub batch: usize,
    pub group: usize,
    /// Conv: x's channels. ConvTranspose: x's channels too (w's first dimension).
    pub in_channels: usize,
    /// Conv: y's channels (w's first dimension). ConvTranspose: y's channels (w's second · group).
    pub out_channels: usize,
    pub in_hw: [usize; 2],
    pub out_hw: [usize; 2],
    pub kernel: [usize; 2],
    pub strides: [usize; 2],
    pub dilations: [usize; 2],
    /// [top, left, bottom, right].
    pub pads: [usize; 4],
}

struct Lifted {
    rank: usize,
    x: [usize; 4],
    w: [usize; 4],
    strides: [usize; 2],
    dilations: [usize; 2],
    pads: [usize; 4],
}

/// Checks ranks and attribute lengths and lifts 1-D to 2-D (H = 1, stride 1, no padding on H).
fn lift(x_shape: &[usize], w_shape: &[usize], a: &ConvAttrs) -> Result<Lifted, LayerError> {
    let rank = x_shape.len();
    if rank != 3 && rank != 4 {
        return Err(LayerError::Rank { arg: "x", expected: "3 ([N, C, L]) or 4 ([N, C, H, W])", got: rank });
    }
    if w_shape.len() != rank {
        return Err(LayerError::Rank { arg: "w", expected: if rank == 3 { "3, as x" } else { "4, as x" }, got: w_shape.len() });
    }
    let sr = rank - 2;
    let list = |name: &'static str, v: &[usize], len: usize, default: usize, min: usize| -> Result<Vec<usize>, LayerError> {
        if v.is_empty() {
            return Ok(vec![default; len]);
        }
        if v.len() != len {
            return Err(LayerError::attribute(name, format!("has {} values, expected {len} for {sr}-D input", v.len())));
        }
        if let Some(bad) = v.iter().find(|&&s| s < min) {
            return Err(LayerError::attribute(name, format!("values must be at least {min}, got {bad}")));
        }
        Ok(v.to_vec())
    };
    let strides = list("strides", &a.strides, sr, 1, 1)?;
    let dilations = list("dilations", &a.dilations, sr, 1, 1)?;
    let pads = list("pads", &a.pads, 2 * sr, 0, 0)?;
    if !a.kernel_shape.is_empty() && a.kernel_shape[..] != w_shape[2..] {
        return Err(LayerError::attribute("kernel_shape", format!("{:?} does not match the weight's spatial shape {:?}", a.kernel_shape, &w_shape[2..])));
    }
    if a.group == 0 {
        return Err(LayerError::attribute("group", "must be at least 1, got 0"));
    }
    Ok(if sr == 1 {
        Lifted {
            rank: 1,
            x: [x_shape[0], x_shape[1], 1, x_shape[2]],
            w: [w_shape[0], w_shape[1], 1, w_shape[2]],
            strides: [1, strides[0]],
            dilations: [1, dilations[0]],
            pads: [0, pads[0], 0, pads[1]],
        }
    } else {
        Lifted {
            rank: 2,
            x: [x_shape[0], x_shape[1], x_shape[2], x_shape[3]],
            w: [w_shape[0], w_shape[1], w_shape[2], w_shape[3]],
            strides: [strides[0], strides[1]],
            dilations: [dilations[0], dilations[1]],
            pads: [pads[0], pads[1], pads[2], pads[3]],
        }
    })
}

fn split_pad(auto_pad: AutoPad, total: usize) -> (usize, usize) {
    match auto_pad {
        AutoPad::SameLower => (total - total / 2, total / 2),
        _ => (total / 2, total - total / 2),
    }
}

impl Geometry {
    /// Conv: x [N, C, (H,) W], w [M, C/group, (kh,) kw].
    pub fn conv(x_shape: &[usize], w_shape: &[usize], attrs: &ConvAttrs) -> Result<Self, LayerError> {
        let l = lift(x_shape, w_shape, attrs)?;
        let group = attrs.group;
        let (c, m) = (l.x[1], l.w[0]);
        if c % group != 0 || l.w[1] * group != c {
            return Err(LayerError::shape("w", format!("has {} input channels per group; x has {c} channels and group is {group}, so expected {}", l.w[1], c / group.max(1))));
        }
        if m % group != 0 {
            return Err(LayerError::attribute("group", format!("{group} does not divide the {m} output channels of w")));
        }
        let mut pads = l.pads;
        let mut out = [0usize; 2];
        for ax in 0..2 {
            let (inp, k, s, d) = (l.x[2 + ax], l.w[2 + ax], l.strides[ax], l.dilations[ax]);
            let dk = (k.max(1) - 1) * d + 1;
            match attrs.auto_pad {
                AutoPad::SameUpper | AutoPad::SameLower => {
                    let o = inp.div_ceil(s);
                    let total = ((o.max(1) - 1) * s + dk).saturating_sub(inp);
                    let (b, e) = split_pad(attrs.auto_pad, total);
                    pads[ax] = b;
                    pads[ax + 2] = e;
                }
                AutoPad::Valid => {
                    pads[ax] = 0;
                    pads[ax + 2] = 0;
                }
                AutoPad::NotSet => {}
            }
            let padded = inp + pads[ax] + pads[ax + 2];
            if k == 0 || padded < dk {
                return Err(LayerError::shape("x", format!(
                    "spatial size {inp} with pads {}+{} is smaller than the dilated kernel {dk}; the output would be empty",
                    pads[ax], pads[ax + 2]
                )));
            }
            out[ax] = (padded - dk) / s + 1;
        }
        Ok(Geometry {
            spatial_rank: l.rank,
            batch: l.x[0],
            group,
            in_channels: c,
            out_channels: m,
            in_hw: [l.x[2], l.x[3]],
            out_hw: out,
            kernel: [l.w[2], l.w[3]],
            strides: l.strides,
            dilations: l.dilations,
            pads,
        })
    }

    /// ConvTranspose: x [N, C, (H,) W], w [C, M/group, (kh,) kw] → y [N, M, …].
    pub fn conv_transpose(x_shape: &[usize], w_shape: &[usize], attrs: &ConvTransposeAttrs) -> Result<Self, LayerError> {
        let a = &attrs.conv;
        let l = lift(x_shape, w_shape, a)?;
        let sr = l.rank;
        let group = a.group;
        let c = l.x[1];
        if l.w[0] != c {
            return Err(LayerError::shape("w", format!("has {} input channels (its first dimension); x has {c}", l.w[0])));
        }
        if c % group != 0 {
            return Err(LayerError::attribute("group", format!("{group} does not divide the {c} channels of x")));
        }
        let m = l.w[1] * group;
        let op: Vec<usize> = if attrs.output_padding.is_empty() { vec![0; sr] } else { attrs.output_padding.clone() };
        if op.len() != sr {
            return Err(LayerError::attribute("output_padding", format!("has {} values, expected {sr}", op.len())));
        }
        let os: Option<Vec<usize>> = match attrs.output_shape.len() {
            0 => None,
            n if n == sr => Some(attrs.output_shape.clone()),
            n if n == sr + 2 => Some(attrs.output_shape[2..].to_vec()),
            n => return Err(LayerError::attribute("output_shape", format!("has {n} values, expected {sr} (spatial sizes)"))),
        };
        let op2 = if sr == 1 { [0, op[0]] } else { [op[0], op[1]] };
        let os2 = os.map(|v| if sr == 1 { [1, v[0]] } else { [v[0], v[1]] });
        let mut pads = l.pads;
        let mut out = [0usize; 2];
        for ax in 0..2 {
            let (inp, k, s, d) = (l.x[2 + ax], l.w[2 + ax], l.strides[ax], l.dilations[ax]);
            if k == 0 {
                return Err(LayerError::shape("w", "has a zero-sized kernel"));
            }
            let full = (inp.max(1) - 1) * s + op2[ax] + (k - 1) * d + 1;
            if let Some(os2) = os2 {
                let total = full.saturating_sub(os2[ax]);
                // Measured against ORT 1.23: only SAME_UPPER puts the odd pixel at the end here.
                let (b, e) = if a.auto_pad == AutoPad::SameUpper { (total / 2, total - total / 2) } else { (total - total / 2, total / 2) };
                pads[ax] = b;
                pads[ax + 2] = e;
                out[ax] = os2[ax];
            } else {
                match a.auto_pad {
                    AutoPad::SameUpper | AutoPad::SameLower => {
                        let (b, e) = split_pad(a.auto_pad, full.saturating_sub(inp * s));
                        pads[ax] = b;
                        pads[ax + 2] = e;
                    }
                    AutoPad::Valid => {
                        pads[ax] = 0;
                        pads[ax + 2] = 0;
                    }
                    AutoPad::NotSet => {}
                }
                let p = pads[ax] + pads[ax + 2];
                if full <= p {
                    return Err(LayerError::shape("x", format!("the output would be empty: (in − 1)·stride + output_padding + dilated kernel = {full} is not larger than pads {p}")));
                }
                out[ax] = full - p;
            }
            if out[ax] == 0 {
                return Err(LayerError::attribute("output_shape", "must be positive"));
            }
        }
        Ok(Geometry {
            spatial_rank: sr,
            batch: l.x[0],
            group,
            in_channels: c,
            out_channels: m,
            in_hw: [l.x[2], l.x[3]],
            out_hw: out,
            kernel: [l.w[2], l.w[3]],
            strides: l.strides,
            dilations: l.dilations,
            pads,
        })
    }

    fn shape(&self, channels: usize, hw: [usize; 2]) -> Vec<usize> {
        if self.spatial_rank == 1 {
            vec![self.batch, channels, hw[1]]
        } else {
            vec![self.batch, channels, hw[0], hw[1]]
        }
    }

    pub fn x_shape(&self) -> Vec<usize> {
        self.shape(self.in_channels, self.in_hw)
    }

    pub fn y_shape(&self) -> Vec<usize> {
        self.shape(self.out_channels, self.out_hw)
    }

    pub fn x_len(&self) -> usize {
        self.batch * self.in_channels * self.in_hw[0] * self.in_hw[1]
    }

    pub fn y_len(&self) -> usize {
        self.batch * self.out_channels * self.out_hw[0] * self.out_hw[1]
    }

    /// Conv's weight: [M, C/g, kh, kw]; ConvTranspose's: [C, M/g, kh, kw]. Same count.
    pub fn w_len(&self) -> usize {
        self.out_channels * (self.in_channels / self.group) * self.kernel[0] * self.kernel[1]
    }

    /// The im2col window of a Conv (image = x, columns = y positions), per group.
    pub(crate) fn conv_window(&self) -> Window {
        Window {
            channels: self.in_channels / self.group,
            image: self.in_hw,
            cols: self.out_hw,
            kernel: self.kernel,
            strides: self.strides,
            dilations: self.dilations,
            pad_begin: [self.pads[0], self.pads[1]],
        }
    }

    /// The window of a ConvTranspose: it is the adjoint of the conv from y (image) to x (columns).
    pub(crate) fn transpose_window(&self) -> Window {
        Window {
            channels: self.out_channels / self.group,
            image: self.out_hw,
            cols: self.in_hw,
            kernel: self.kernel,
            strides: self.strides,
            dilations: self.dilations,
            pad_begin: [self.pads[0], self.pads[1]],
        }
    }
}
