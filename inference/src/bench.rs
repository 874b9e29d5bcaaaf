//! Benchmark entry points behind `switchboard bench embed` and `switchboard bench generate`.

use std::ops::ControlFlow;
use std::time::Instant;

use crate::chat::{ChatModel, GenerationOptions, Sampling};
use crate::embed::SentenceEmbedder;
use crate::{Error, Result};

/// Sentences embedded in the warm-up pass before timing starts.
pub const EMBED_WARMUP_SENTENCES: usize = 256;

/// Result of [`embed_throughput`] (the `bench embed --json` shape).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedBench {
    /// Sentences embedded in the timed pass.
    pub n: usize,
    pub seconds: f64,
    pub sentences_per_s: f64,
    /// Peak resident memory of the process so far (`VmHWM`), in MB; 0 where unknown.
    pub peak_rss_mb: f64,
}

/// Embeds `sentences` in batches of `batch` and reports throughput. A warm-up pass over the first
/// [`EMBED_WARMUP_SENTENCES`] sentences runs first and is not timed.
pub fn embed_throughput(embedder: &SentenceEmbedder, sentences: &[&str], batch: usize) -> Result<EmbedBench> {
    if sentences.is_empty() {
        return Err(Error::InvalidInput("no sentences to embed".to_owned()));
    }
    if batch == 0 {
        return Err(Error::InvalidInput("batch size must be at least 1".to_owned()));
    }
    embedder.embed_with_batch_size(&sentences[..sentences.len().min(EMBED_WARMUP_SENTENCES)], batch)?;
    let started = Instant::now();
    let vectors = embedder.embed_with_batch_size(sentences, batch)?;
    let seconds = started.elapsed().as_secs_f64();
    debug_assert_eq!(vectors.len(), sentences.len());
    Ok(EmbedBench {
        n: sentences.len(),
        seconds,
        sentences_per_s: if seconds > 0.0 { sentences.len() as f64 / seconds } else { 0.0 },
        peak_rss_mb: peak_rss_mb().unwrap_or(0.0),
    })
}

/// Result of [`generate`] (the `bench generate --json` shape).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateBench {
    pub prompt_tokens: usize,
    pub prompt_tokens_per_s: f64,
    /// Milliseconds from the call to the first new token (tokenization and prompt pass included).
    pub ttft_ms: f64,
    pub new_tokens: usize,
    /// New tokens per second after the first (one forward pass each).
    pub decode_tokens_per_s: f64,
    /// Peak resident memory of the process so far (model loaded and run), MB; 0 where unknown.
    pub peak_rss_mb: f64,
}

/// Generates exactly `max_tokens` tokens greedily from `prompt` (a raw prompt such as ChatML,
/// used as is; end-of-turn tokens do not stop it) and reports speeds. A short untimed warm-up
/// generation runs first (it initialises thread pools and weight layouts).
pub fn generate(model: &ChatModel, prompt: &str, max_tokens: usize) -> Result<GenerateBench> {
    if max_tokens == 0 {
        return Err(Error::InvalidInput("max tokens must be at least 1".to_owned()));
    }
    // The prompt is processed whole each time (no prefix reuse): this measures the model, not the
    // cache.
    let warmup = GenerationOptions {
        max_new_tokens: 4,
        ignore_end_of_turn: true,
        reuse_prefix: false,
        ..GenerationOptions::default()
    };
    model.generate_from_prompt(prompt, &warmup, |_| ControlFlow::Continue(()))?;
    let options = GenerationOptions {
        max_new_tokens: max_tokens,
        sampling: Sampling::Greedy,
        ignore_end_of_turn: true,
        reuse_prefix: false,
        ..GenerationOptions::default()
    };
    let generation = model.generate_from_prompt(prompt, &options, |_| ControlFlow::Continue(()))?;
    Ok(GenerateBench {
        prompt_tokens: generation.prompt_tokens,
        prompt_tokens_per_s: generation.prompt_tokens_per_s(),
        ttft_ms: generation.ttft_seconds * 1000.0,
        new_tokens: generation.new_tokens,
        decode_tokens_per_s: generation.decode_tokens_per_s(),
        peak_rss_mb: peak_rss_mb().unwrap_or(0.0),
    })
}

/// Peak resident set size of this process in MB (`VmHWM` in `/proc/self/status`, Linux only).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm_kb(&status).map(|kb| kb as f64 / 1024.0)
}

fn parse_vm_hwm_kb(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_parsed_in_kilobytes() {
        assert_eq!(parse_vm_hwm_kb("Name:\tx\nVmHWM:\t  194560 kB\nVmRSS:\t1 kB\n"), Some(194_560));
        assert_eq!(parse_vm_hwm_kb("Name:\tx\n"), None);
        if cfg!(target_os = "linux") {
            assert!(peak_rss_mb().is_some_and(|mb| mb > 0.0));
        }
    }
}
