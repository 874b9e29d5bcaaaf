//! `switchboard bench embed|generate`: model speed on this machine (shapes in `interfaces.md`).

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::BadInput;
use crate::app;
use crate::config::Settings;

pub fn embed(settings: &Settings, sentences: &Path, batch: usize, json_output: bool) -> anyhow::Result<()> {
    if batch == 0 {
        return Err(BadInput("--batch must be at least 1".into()).into());
    }
    let text = std::fs::read_to_string(sentences)
        .map_err(|error| BadInput(format!("cannot read {}: {error}", sentences.display())))?;
    let lines: Vec<&str> = text.lines().filter(|line| !line.trim().is_empty()).collect();
    if lines.is_empty() {
        return Err(BadInput(format!("{} has no sentences", sentences.display())).into());
    }
    let paths = app::resolve_models(settings)?;
    let embedder = app::load_embedder(&paths.encoder_dir)?;
    let result = inference::bench::embed_throughput(&embedder, &lines, batch)?;
    if json_output {
        println!(
            "{}",
            json!({"n": result.n, "seconds": result.seconds, "sentences_per_s": result.sentences_per_s, "peak_rss_mb": result.peak_rss_mb})
        );
    } else {
        println!(
            "{} sentences in {:.2} s: {:.1} sentences/s (batch {batch}), peak RSS {:.0} MB",
            result.n, result.seconds, result.sentences_per_s, result.peak_rss_mb
        );
    }
    Ok(())
}

/// A ChatML prompt of about 100 tokens, used when no prompt file is given.
const DEFAULT_PROMPT: &str = "<|im_start|>system\nYou are a helpful customer-care assistant for a mobile operator. \
Answer briefly and politely, using only the facts you are given.<|im_end|>\n<|im_start|>user\nI am travelling to \
France next week and I want to use mobile data there. My plan is the Premium Plan with 15 GB of data per month. \
What do I need to do before I leave, and will it cost me anything extra to use data abroad?<|im_end|>\n\
<|im_start|>assistant\n";

pub fn generate(
    settings: &Settings,
    prompt_file: Option<&Path>,
    max_tokens: usize,
    json_output: bool,
) -> anyhow::Result<()> {
    if max_tokens == 0 {
        return Err(BadInput("--max-tokens must be at least 1".into()).into());
    }
    let prompt = match prompt_file {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|error| BadInput(format!("cannot read {}: {error}", path.display())))?,
        None => DEFAULT_PROMPT.to_string(),
    };
    if prompt.trim().is_empty() {
        return Err(BadInput("the prompt is empty".into()).into());
    }
    let paths = app::resolve_models(settings)?;
    let gguf = paths.chat_gguf.context("the chat model is disabled in the configuration")?;
    let chat = app::load_chat(&gguf)?;
    let result = inference::bench::generate(&chat, &prompt, max_tokens)?;
    if json_output {
        println!(
            "{}",
            json!({
                "prompt_tokens": result.prompt_tokens,
                "prompt_tokens_per_s": result.prompt_tokens_per_s,
                "ttft_ms": result.ttft_ms,
                "new_tokens": result.new_tokens,
                "decode_tokens_per_s": result.decode_tokens_per_s,
            })
        );
    } else {
        println!(
            "prompt: {} tokens at {:.1} tokens/s; first token after {:.0} ms; {} new tokens at {:.1} tokens/s",
            result.prompt_tokens,
            result.prompt_tokens_per_s,
            result.ttft_ms,
            result.new_tokens,
            result.decode_tokens_per_s
        );
    }
    Ok(())
}
