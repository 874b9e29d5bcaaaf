//! Model code, one file per family: a `Config`, loading, and `forward`.

pub mod bert;
pub mod quantized_llama;
