//! Integration tests of `inference` against the real default models (fetched once per machine
//! into the default models directory).

mod chat;
mod embed;
mod fetch;

use std::sync::OnceLock;

use inference::{ChatModel, ModelFiles, SentenceEmbedder};

/// The default models, fetched (or found) once per test binary.
pub fn model_files() -> &'static ModelFiles {
    static FILES: OnceLock<ModelFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        // As the server does at startup: one thread for quantized matmuls (with two, threads
        // spin-wait on each other, badly so on a loaded machine).
        inference::init_threads(inference::ThreadSettings::recommended());
        inference::ensure_default_models(&inference::default_models_dir()).expect("default models fetched")
    })
}

/// The default sentence encoder, loaded once.
pub fn embedder() -> &'static SentenceEmbedder {
    static EMBEDDER: OnceLock<SentenceEmbedder> = OnceLock::new();
    EMBEDDER.get_or_init(|| SentenceEmbedder::load(&model_files().encoder_dir).expect("encoder loads"))
}

/// The default chat model with default options, loaded once.
pub fn chat_model() -> &'static ChatModel {
    static MODEL: OnceLock<ChatModel> = OnceLock::new();
    MODEL.get_or_init(|| ChatModel::load(&model_files().chat_gguf).expect("chat model loads"))
}
