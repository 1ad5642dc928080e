//! Encoding search over histograms (in progress).
