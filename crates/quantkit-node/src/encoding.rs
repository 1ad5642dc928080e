//! computeEncoding: an AIMET encoding from an observed range.
use napi_derive::napi;
use quantkit_core::encoding::{compute_encoding, Encoding, EncodingSpec};

use crate::errors::range_error;

/// An encoding as JS sees it (src/encoding.ts documents the fields).
#[napi(object)]
pub struct JsEncoding {
    pub bitwidth: u32,
    pub min: f64,
    pub max: f64,
    pub scale: f64,
    pub offset: i32,
    pub qmin: i64,
    pub qmax: i64,
    pub symmetric: bool,
    pub strict_symmetric: bool,
    pub unsigned_symmetric: bool,
}

impl From<&Encoding> for JsEncoding {
    fn from(e: &Encoding) -> Self {
        JsEncoding {
            bitwidth: e.bitwidth,
            min: e.min as f64,
            max: e.max as f64,
            scale: e.scale as f64,
            offset: e.offset,
            qmin: e.qmin,
            qmax: e.qmax,
            symmetric: e.symmetric,
            strict_symmetric: e.strict_symmetric,
            unsigned_symmetric: e.unsigned_symmetric,
        }
    }
}

pub fn spec(bitwidth: u32, symmetric: bool, strict_symmetric: bool, unsigned_symmetric: bool) -> EncodingSpec {
    EncodingSpec { bitwidth, symmetric, strict_symmetric, unsigned_symmetric }
}

#[napi(catch_unwind)]
pub fn compute_encoding_native(min: f64, max: f64, bitwidth: u32, symmetric: bool, strict_symmetric: bool, unsigned_symmetric: bool) -> napi::Result<JsEncoding> {
    let spec = spec(bitwidth, symmetric, strict_symmetric, unsigned_symmetric);
    let encoding = compute_encoding(min as f32, max as f32, &spec).map_err(range_error)?;
    Ok(JsEncoding::from(&encoding))
}
