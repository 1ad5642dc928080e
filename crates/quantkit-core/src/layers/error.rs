//! Errors of the layer kernels. Every message names the argument or attribute at fault (`x`, `w`,
//! `bias`, `dy`, `strides`, `pads`, `group`, …) and what was expected.

use std::fmt;

/// How the N-API binding should surface a [`LayerError`] to JavaScript.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerErrorKind {
    /// An attribute value is out of range (stride 0, a group that does not divide, an empty
    /// output): `RangeError`.
    Range,
    /// A shape, rank or buffer length does not fit: `TypeError`.
    Type,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LayerError {
    /// `arg` has the wrong rank.
    Rank { arg: &'static str, expected: &'static str, got: usize },
    /// `arg`'s buffer length differs from what its shape (or the layer's geometry) says.
    Length { arg: &'static str, expected: usize, got: usize },
    /// Two shapes do not agree (channels against group, inner dimensions of a product, …).
    Shape { arg: &'static str, detail: String },
    /// An attribute is malformed or out of range.
    Attribute { attr: &'static str, detail: String },
}

impl LayerError {
    pub fn kind(&self) -> LayerErrorKind {
        match self {
            LayerError::Attribute { .. } => LayerErrorKind::Range,
            LayerError::Rank { .. } | LayerError::Length { .. } | LayerError::Shape { .. } => LayerErrorKind::Type,
        }
    }

    pub fn is_range_error(&self) -> bool {
        self.kind() == LayerErrorKind::Range
    }

    pub(crate) fn shape(arg: &'static str, detail: impl Into<String>) -> Self {
        LayerError::Shape { arg, detail: detail.into() }
    }

    pub(crate) fn attribute(attr: &'static str, detail: impl Into<String>) -> Self {
        LayerError::Attribute { attr, detail: detail.into() }
    }
}

/// `Err(Length)` unless `got == expected`.
pub(crate) fn check_len(arg: &'static str, expected: usize, got: usize) -> Result<(), LayerError> {
    if expected != got {
        return Err(LayerError::Length { arg, expected, got });
    }
    Ok(())
}

impl fmt::Display for LayerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerError::Rank { arg, expected, got } => write!(f, "{arg} has rank {got}, expected {expected}"),
            LayerError::Length { arg, expected, got } => {
                write!(f, "{arg} has {got} elements, expected {expected} (the product of its shape)")
            }
            LayerError::Shape { arg, detail } => write!(f, "{arg}: {detail}"),
            LayerError::Attribute { attr, detail } => write!(f, "attribute {attr}: {detail}"),
        }
    }
}

impl std::error::Error for LayerError {}
