//! Encodings from a range, the AIMET way (in progress).
