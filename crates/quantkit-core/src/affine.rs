//! placeholder, replaced in the next commit
pub fn version() -> &'static str { "0" }
