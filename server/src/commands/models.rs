//! `switchboard models fetch`: fetches and verifies the pinned default models.

use crate::config::Settings;

pub fn fetch(settings: &Settings) -> anyhow::Result<()> {
    let files = inference::fetch::ensure_default_models(&settings.models_dir)?;
    println!("encoder: {}", files.encoder_dir.display());
    println!("chat model: {}", files.chat_gguf.display());
    Ok(())
}
