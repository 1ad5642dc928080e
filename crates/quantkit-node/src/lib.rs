use napi_derive::napi;

#[napi]
pub fn core_version() -> String {
    quantkit_core::affine::version().to_string()
}
