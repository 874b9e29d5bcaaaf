//! [`ChatModel`]: a Llama-architecture GGUF chat model with its tokenizer and chat template.

mod stream;
pub(crate) mod template;
pub(crate) mod tokenizer;

use std::fs::File;
use std::io::BufReader;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::quantized::gguf_file;
use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor, Sampling as CandleSampling};

use crate::models::quantized_llama::{self, LoadOptions, ModelWeights, WeightFormat};
use crate::{Error, Result};
use stream::Utf8Stream;
pub use template::{ChatMessage, Role};
use template::{ChatTemplate, Segment};
use tokenizer::GgufTokenizer;

/// How the next token is picked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sampling {
    /// Always the most likely token: deterministic.
    Greedy,
    /// Sample from the smallest set of tokens whose probability reaches `top_p`, after dividing
    /// the logits by `temperature`. The same `seed` gives the same reply.
    TopP { temperature: f64, top_p: f64, seed: u64 },
}

/// Options of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationOptions {
    /// At most this many new tokens (the end-of-turn token included).
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Divides the logits of tokens seen in the last `repeat_last_n` tokens (1.0 = off).
    pub repeat_penalty: f32,
    pub repeat_last_n: usize,
    /// Keep generating past end-of-turn tokens (benchmarks that need an exact token count).
    pub ignore_end_of_turn: bool,
    /// For [`ChatModel::generate`] with a system message first: process the system message as
    /// a chunk of its own and keep its keys and values, so later prompts with the same system
    /// message start after it (less time to the first token). The reply does not depend on
    /// whether the system message was kept (see [`ChatModel::generate`]); against `false` (one
    /// chunk) it can differ only where rounding flips a near tie.
    pub reuse_prefix: bool,
}

impl Default for GenerationOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            sampling: Sampling::Greedy,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            ignore_end_of_turn: false,
            reuse_prefix: true,
        }
    }
}

/// Why generation stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// The model ended its turn (`<|im_end|>` or another end-of-turn token).
    EndOfTurn,
    /// `max_new_tokens` were generated.
    MaxTokens,
    /// The model's context window is full.
    ContextFull,
    /// The streaming callback returned `ControlFlow::Break`.
    Cancelled,
}

/// The result of one generation.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// The reply text (without the end-of-turn token).
    pub text: String,
    /// The ids of the new tokens, the end-of-turn token included.
    pub tokens: Vec<u32>,
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Of those, the leading tokens (a system message) whose keys and values came from the kept
    /// ones (not processed again).
    pub reused_prompt_tokens: usize,
    /// Tokens sampled, including a final end-of-turn token.
    pub new_tokens: usize,
    /// Time of the forward pass over the prompt.
    pub prompt_seconds: f64,
    /// Time from the first new token to the last one (each step is one forward pass and a sample).
    pub decode_seconds: f64,
    /// Time from the call to the first new token (tokenization, prompt pass, first sample).
    pub ttft_seconds: f64,
    pub stop_reason: StopReason,
}

impl Generation {
    /// Prompt tokens processed per second (reused ones not counted).
    pub fn prompt_tokens_per_s(&self) -> f64 {
        per_second(self.prompt_tokens - self.reused_prompt_tokens, self.prompt_seconds)
    }

    /// New tokens per second after the first: the first token comes from the prompt pass, each
    /// further token costs one decode step.
    pub fn decode_tokens_per_s(&self) -> f64 {
        per_second(self.new_tokens.saturating_sub(1), self.decode_seconds)
    }
}

fn per_second(count: usize, seconds: f64) -> f64 {
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

/// Options for [`ChatModel::load_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatModelOptions {
    /// The format matmul weights are converted to at load time (used for decode steps).
    pub weight_format: WeightFormat,
    /// Keep a dense f32 copy of the layer weights for prompt processing (about three times
    /// faster prompts, about 425 MB more memory for the default model).
    pub dense_prefill: bool,
}

impl Default for ChatModelOptions {
    /// The fastest setting measured (see `BENCHMARKS.md`).
    fn default() -> Self {
        let defaults = LoadOptions::default();
        Self { weight_format: defaults.weight_format, dense_prefill: defaults.dense_prefill }
    }
}

/// A chat model: Llama-architecture GGUF weights, the tokenizer from the GGUF metadata and the
/// model's chat template.
///
/// `Send + Sync` and immutable: every generation uses its own KV cache, so one instance can be
/// shared by all threads (calls run concurrently, though candle's CPU kernels share one pool).
pub struct ChatModel {
    weights: ModelWeights,
    tokenizer: GgufTokenizer,
    template: ChatTemplate,
    stop_tokens: Vec<u32>,
    device: Device,
    path: PathBuf,
    options: ChatModelOptions,
    prefixes: std::sync::Mutex<PrefixCache>,
}

/// The KV caches of recent system messages, reused by prompts that start with the same one.
///
/// A prompt with a system message is processed in two parts, always: the system message on its
/// own, then the rest. The keys and values of the first part therefore do not depend on what
/// follows, and a kept copy is bit for bit what processing it again would give: a reply is the
/// same whether or not the cache had the system message, whatever ran before.
#[derive(Debug, Default)]
struct PrefixCache {
    /// `(tokens, cache of exactly those tokens)`, least recently used first.
    entries: Vec<(Vec<u32>, quantized_llama::KvCache)>,
}

impl PrefixCache {
    /// System messages kept, at most.
    const ENTRIES: usize = 8;
    /// Bytes kept, at most (SmolLM2-135M's cache takes 46 KB per token: 2 MB for a 45-token
    /// system message).
    const MAX_BYTES: usize = 64 << 20;

    /// A copy of the cache kept for exactly `tokens`, if any.
    fn lookup(&mut self, tokens: &[u32]) -> Option<quantized_llama::KvCache> {
        let idx = self.entries.iter().position(|(kept, _)| kept.as_slice() == tokens)?;
        let entry = self.entries.remove(idx);
        let cache = entry.1.clone();
        self.entries.push(entry);
        Some(cache)
    }

    /// Keeps the cache of `tokens`, dropping the least recently used beyond
    /// [`PrefixCache::ENTRIES`] or [`PrefixCache::MAX_BYTES`].
    fn insert(&mut self, tokens: Vec<u32>, cache: quantized_llama::KvCache) {
        if tokens.len() != cache.len() || cache.size_bytes() > Self::MAX_BYTES {
            return;
        }
        self.entries.retain(|(kept, _)| *kept != tokens);
        self.entries.push((tokens, cache));
        while self.entries.len() > Self::ENTRIES
            || self.entries.iter().map(|(_, cache)| cache.size_bytes()).sum::<usize>() > Self::MAX_BYTES
        {
            self.entries.remove(0);
        }
    }
}

impl std::fmt::Debug for ChatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatModel")
            .field("path", &self.path)
            .field("options", &self.options)
            .field("config", self.weights.config())
            .finish_non_exhaustive()
    }
}

impl ChatModel {
    /// Loads a Llama-architecture GGUF with the default options (Q4_1 weights on the int4 kernel).
    pub fn load(gguf: &Path) -> Result<Self> {
        Self::load_with(gguf, &ChatModelOptions::default())
    }

    /// Loads a Llama-architecture GGUF. A truncated or corrupt file gives
    /// [`Error::CorruptModelFile`] naming it, and is marked for re-verification
    /// ([`crate::fetch::invalidate`]).
    pub fn load_with(gguf: &Path, options: &ChatModelOptions) -> Result<Self> {
        let result = Self::load_unchecked(gguf, options);
        if let Err(Error::CorruptModelFile { .. }) = &result {
            crate::fetch::invalidate(gguf);
        }
        result
    }

    fn load_unchecked(gguf: &Path, options: &ChatModelOptions) -> Result<Self> {
        let threads = crate::threads::current_threads();
        if threads.candle_threads != 1 {
            tracing::warn!(
                candle_threads = threads.candle_threads,
                "quantized matmuls will use several threads, which measured several times slower for small \
                 models; call inference::init_threads at startup or set CANDLE_NUM_THREADS=1"
            );
        }
        let device = Device::Cpu;
        let file = File::open(gguf).map_err(|err| Error::io(gguf, err))?;
        let mut reader = BufReader::new(file);
        let content = gguf_file::Content::read(&mut reader).map_err(|err| Error::corrupt(gguf, err))?;
        let unsupported = |reason: String| Error::UnsupportedModel { path: gguf.to_owned(), reason };
        quantized_llama::Config::from_gguf(&content).map_err(|err| unsupported(err.to_string()))?;
        let tokenizer = tokenizer::from_gguf(&content).map_err(unsupported)?;
        let template = ChatTemplate::detect(
            tokenizer.chat_template.as_deref(),
            |token| tokenizer.token_id(token),
            tokenizer.bos_id,
            tokenizer.add_bos,
        )
        .ok_or_else(|| unsupported("no ChatML or Llama 3 control tokens in the vocabulary".to_owned()))?;
        let load_options = LoadOptions { weight_format: options.weight_format, dense_prefill: options.dense_prefill };
        let weights = ModelWeights::from_gguf(&content, &mut reader, &device, load_options)
            .map_err(|err| Error::corrupt(gguf, err))?;
        if weights.config().vocab_size < tokenizer.tokens.len() {
            return Err(unsupported(format!(
                "vocabulary of {} tokens but an output layer of {}",
                tokenizer.tokens.len(),
                weights.config().vocab_size
            )));
        }
        let mut stop_tokens: Vec<u32> = [
            Some(template.end_of_turn()),
            tokenizer.eos_id,
            tokenizer.eot_id,
            tokenizer.token_id("<|endoftext|>"),
            tokenizer.token_id("<|end_of_text|>"),
        ]
        .into_iter()
        .flatten()
        .collect();
        stop_tokens.sort_unstable();
        stop_tokens.dedup();
        tracing::info!(
            path = %gguf.display(),
            weight_format = options.weight_format.name(),
            dense_prefill = options.dense_prefill,
            n_layer = weights.config().n_layer,
            "chat model loaded"
        );
        Ok(Self {
            weights,
            tokenizer,
            template,
            stop_tokens,
            device,
            path: gguf.to_owned(),
            options: options.clone(),
            prefixes: std::sync::Mutex::default(),
        })
    }

    /// The tokenizer built from the GGUF metadata. It recognises control tokens written as text
    /// (`<|im_start|>`), so use it for trusted text only.
    pub fn tokenizer(&self) -> &tokenizers::Tokenizer {
        &self.tokenizer.tokenizer
    }

    /// The hyperparameters read from the GGUF.
    pub fn config(&self) -> &quantized_llama::Config {
        self.weights.config()
    }

    /// The options the model was loaded with.
    pub fn options(&self) -> &ChatModelOptions {
        &self.options
    }

    /// Tokens that end generation (end of turn, end of text).
    pub fn stop_tokens(&self) -> &[u32] {
        &self.stop_tokens
    }

    /// Positions available for prompt plus reply.
    pub fn context_length(&self) -> usize {
        self.weights.config().max_positions()
    }

    /// Tokenizes trusted text, control tokens written as text included, without adding BOS.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let encoding = self.tokenizer.tokenizer.encode_fast(text, false).map_err(Error::tokenizer)?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Turns token ids back into text. Control tokens are kept as their text (`<|im_end|>`).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.tokenizer.tokenizer.decode(ids, false).map_err(Error::tokenizer)
    }

    /// The prompt `messages` render to under the model's chat template, as text (for logs and
    /// tests; generation uses [`ChatModel::prompt_tokens`], which keeps message contents from
    /// turning into control tokens).
    pub fn render_prompt(&self, messages: &[ChatMessage]) -> String {
        self.template
            .render(messages)
            .into_iter()
            .map(|segment| match segment {
                Segment::Control(id) => self.tokenizer.tokens.get(id as usize).cloned().unwrap_or_default(),
                Segment::Text(text) => text,
            })
            .collect()
    }

    /// The prompt tokens for `messages`: the chat template's control tokens, and message
    /// contents tokenized as plain text.
    pub fn prompt_tokens(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for segment in self.template.render(messages) {
            match segment {
                Segment::Control(id) => ids.push(id),
                Segment::Text(text) => {
                    let encoding = self.tokenizer.plain.encode_fast(text.as_str(), false).map_err(Error::tokenizer)?;
                    ids.extend_from_slice(encoding.get_ids());
                }
            }
        }
        Ok(ids)
    }

    /// Generates the assistant's reply to `messages`, calling `on_text` with each piece of text
    /// as soon as it is complete UTF-8 (the pieces concatenate to [`Generation::text`]).
    pub fn generate(
        &self,
        messages: &[ChatMessage],
        options: &GenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let started = Instant::now();
        let prompt = self.prompt_tokens(messages)?;
        let system_tokens = match messages {
            [first, _, ..] if options.reuse_prefix && first.role == Role::System => {
                let alone = self.prompt_tokens(&messages[..1])?;
                alone.iter().zip(&prompt).take_while(|(a, b)| a == b).count()
            }
            _ => 0,
        };
        self.generate_after_prefix(&prompt, system_tokens, options, started, on_text)
    }

    /// Generates from a raw prompt used as is (e.g. a ChatML prompt read from a file by
    /// `switchboard bench generate`). Control tokens written as text are recognised; BOS is added
    /// when the model asks for it and the prompt lacks it.
    pub fn generate_from_prompt(
        &self,
        prompt: &str,
        options: &GenerationOptions,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let started = Instant::now();
        let mut ids = self.encode(prompt)?;
        if let (true, Some(bos)) = (self.tokenizer.add_bos, self.tokenizer.bos_id)
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        self.generate_from_tokens(&ids, options, started, on_text)
    }

    /// Generates from prompt token ids.
    pub fn generate_from_tokens(
        &self,
        prompt: &[u32],
        options: &GenerationOptions,
        started: Instant,
        on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        self.generate_after_prefix(prompt, 0, options, started, on_text)
    }

    /// Generates from prompt token ids whose first `prefix_len` tokens (a system message; 0 for
    /// none) run as a chunk of their own, their cache kept and reused (see [`PrefixCache`]).
    fn generate_after_prefix(
        &self,
        prompt: &[u32],
        prefix_len: usize,
        options: &GenerationOptions,
        started: Instant,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let context_length = self.context_length();
        if prompt.is_empty() {
            return Err(Error::InvalidInput("the prompt is empty".to_owned()));
        }
        if prompt.len() >= context_length {
            return Err(Error::PromptTooLong { prompt_tokens: prompt.len(), context_length });
        }
        let vocab_size = self.weights.config().vocab_size;
        if let Some(bad) = prompt.iter().find(|id| **id as usize >= vocab_size) {
            return Err(Error::InvalidInput(format!("token id {bad} is outside the vocabulary of {vocab_size}")));
        }
        let mut sampler = match options.sampling {
            Sampling::Greedy => LogitsProcessor::from_sampling(0, CandleSampling::ArgMax),
            Sampling::TopP { temperature, top_p, seed } => {
                if !(temperature > 0.0 && temperature.is_finite() && top_p > 0.0 && top_p <= 1.0) {
                    return Err(Error::InvalidInput(format!(
                        "sampling needs temperature > 0 and 0 < top_p <= 1, got {temperature} and {top_p}"
                    )));
                }
                LogitsProcessor::from_sampling(seed, CandleSampling::TopP { p: top_p, temperature })
            }
        };

        // The prefix: kept from an earlier prompt, or processed now (and kept).
        let prefix_len = if prefix_len < prompt.len() { prefix_len } else { 0 };
        let prefix_started = Instant::now();
        let mut reused_prompt_tokens = 0;
        let mut cache = self.weights.new_cache();
        if prefix_len > 0 {
            let prefix = &prompt[..prefix_len];
            match self.prefixes.lock().ok().and_then(|mut kept| kept.lookup(prefix)) {
                Some(kept) => {
                    cache = kept;
                    reused_prompt_tokens = prefix_len;
                }
                None => {
                    self.forward_chunked(prefix, &mut cache)?;
                    if let Ok(mut kept) = self.prefixes.lock() {
                        kept.insert(prefix.to_vec(), cache.clone());
                    }
                }
            }
        }
        let prefix_seconds = prefix_started.elapsed().as_secs_f64();
        let mut all_tokens: Vec<u32> = prompt.to_vec();
        let mut stream = Utf8Stream::default();
        let mut text = String::new();
        let mut new_tokens = 0;
        let mut prompt_seconds = 0.0;
        let mut ttft_seconds = 0.0;
        let mut decode_started = None;
        let mut next_input: Vec<u32> = prompt[prefix_len..].to_vec();
        let stop_reason = loop {
            if new_tokens >= options.max_new_tokens {
                break StopReason::MaxTokens;
            }
            if cache.len() + next_input.len() > context_length {
                break StopReason::ContextFull;
            }
            let pass_started = Instant::now();
            let logits = self.forward_chunked(&next_input, &mut cache)?;
            let logits = if options.repeat_penalty != 1.0 {
                let start = all_tokens.len().saturating_sub(options.repeat_last_n);
                candle_transformers::utils::apply_repeat_penalty(&logits, options.repeat_penalty, &all_tokens[start..])?
            } else {
                logits
            };
            let token = sampler.sample(&logits)?;
            new_tokens += 1;
            if decode_started.is_none() {
                prompt_seconds = prefix_seconds + pass_started.elapsed().as_secs_f64();
                ttft_seconds = started.elapsed().as_secs_f64();
                decode_started = Some(Instant::now());
            }
            all_tokens.push(token);
            next_input = vec![token];
            if !options.ignore_end_of_turn && self.stop_tokens.contains(&token) {
                break StopReason::EndOfTurn;
            }
            let bytes = self.tokenizer.token_bytes.get(token as usize).map_or(&[][..], Vec::as_slice);
            let piece = stream.push(bytes);
            if !piece.is_empty() {
                text.push_str(&piece);
                if on_text(&piece).is_break() {
                    break StopReason::Cancelled;
                }
            }
        };
        // An incomplete character left at the end (the model stopped mid-emoji) is flushed as
        // U+FFFD, unless the caller already asked to stop: the text is what the caller received.
        let rest = stream.finish();
        if !rest.is_empty() && stop_reason != StopReason::Cancelled {
            text.push_str(&rest);
            let _ = on_text(&rest);
        }
        let decode_seconds = decode_started.map_or(0.0, |instant| instant.elapsed().as_secs_f64());
        Ok(Generation {
            text,
            tokens: all_tokens.split_off(prompt.len()),
            prompt_tokens: prompt.len(),
            reused_prompt_tokens,
            new_tokens,
            prompt_seconds,
            decode_seconds,
            ttft_seconds,
            stop_reason,
        })
    }
}

impl ChatModel {
    /// Runs `tokens` through the model in chunks of at most [`PREFILL_CHUNK_TOKENS`] (bounding the
    /// memory of the attention scores for long prompts) and returns the last position's logits.
    fn forward_chunked(&self, tokens: &[u32], cache: &mut quantized_llama::KvCache) -> Result<Tensor> {
        let mut logits = None;
        for chunk in tokens.chunks(PREFILL_CHUNK_TOKENS) {
            let input = Tensor::new(chunk, &self.device)?.unsqueeze(0)?;
            logits = Some(self.weights.forward(&input, cache)?.squeeze(0)?);
        }
        logits.ok_or_else(|| Error::InvalidInput("no tokens to process".to_owned()))
    }
}

/// Prompts are processed in chunks of this many tokens.
pub const PREFILL_CHUNK_TOKENS: usize = 512;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_model_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ChatModel>();
    }

    #[test]
    fn speeds_handle_zero_durations() {
        let generation = Generation {
            text: String::new(),
            tokens: vec![1],
            prompt_tokens: 10,
            reused_prompt_tokens: 0,
            new_tokens: 1,
            prompt_seconds: 0.0,
            decode_seconds: 0.0,
            ttft_seconds: 0.0,
            stop_reason: StopReason::MaxTokens,
        };
        assert_eq!(generation.prompt_tokens_per_s(), 0.0);
        assert_eq!(generation.decode_tokens_per_s(), 0.0);
    }
}
