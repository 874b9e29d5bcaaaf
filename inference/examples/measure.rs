//! Measures the inference crate's models with the library's benchmark entry points.
//!
//! ```text
//! cargo run --release -p inference --example measure -- embed [--sentences N] [--batch B]
//! cargo run --release -p inference --example measure -- generate [--format q8_0|q4_0|f32|as-stored]
//!     [--no-dense-prefill] [--max-tokens N] [--prompt-file FILE] [--repeats N] [--show]
//! cargo run --release -p inference --example measure -- chat "question"
//! ```
//!
//! Thread counts come from `CANDLE_NUM_THREADS` / `RAYON_NUM_THREADS` (see `inference::threads`);
//! without them the library's recommended settings apply. `generate` uses `bench_prompt.txt` unless
//! `--prompt-file` names another raw ChatML prompt. `embed` reads the CLINC150 `val`
//! sentences from the repository's `data/clinc150/clinc150_dev.json` unless `--file` names a file with
//! one sentence per line. Prints one JSON object per measurement.

use std::ops::ControlFlow;
use std::path::PathBuf;

use inference::{ChatMessage, ChatModel, ChatModelOptions, GenerationOptions, SentenceEmbedder, WeightFormat};

const CLINC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/clinc150/clinc150_dev.json");

/// A ChatML prompt of 109 tokens (about the 100-token prompt of `models.md`).
const DEFAULT_PROMPT: &str = include_str!("bench_prompt.txt");

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let settings = inference::init_threads(inference::ThreadSettings::recommended());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let models_dir = arg(&args, "--models-dir").map(PathBuf::from).unwrap_or_else(inference::default_models_dir);
    let files = inference::ensure_default_models(&models_dir)?;
    eprintln!("threads: {settings:?}");
    match args.first().map(String::as_str) {
        Some("embed") => {
            let n: usize = arg(&args, "--sentences").map_or(Ok(2000), |v| v.parse())?;
            let batch: usize = arg(&args, "--batch").map_or(Ok(32), |v| v.parse())?;
            let sentences: Vec<String> = match arg(&args, "--file") {
                Some(file) => std::fs::read_to_string(file)?.lines().map(str::to_owned).collect(),
                None => {
                    let data: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(CLINC_PATH)?)?;
                    data["val"]
                        .as_array()
                        .ok_or("no val split")?
                        .iter()
                        .filter_map(|item| item[0].as_str().map(str::to_owned))
                        .collect()
                }
            };
            let sentences: Vec<&str> = sentences.iter().take(n).map(String::as_str).collect();
            let embedder = SentenceEmbedder::load(&files.encoder_dir)?;
            let result = inference::bench::embed_throughput(&embedder, &sentences, batch)?;
            println!(
                "{{\"n\": {}, \"seconds\": {:.3}, \"sentences_per_s\": {:.1}, \"peak_rss_mb\": {:.1}, \"batch\": {batch}, \"candle_threads\": {}, \"rayon_threads\": {}}}",
                result.n,
                result.seconds,
                result.sentences_per_s,
                result.peak_rss_mb,
                settings.candle_threads,
                settings.rayon_threads
            );
        }
        Some("generate") => {
            let format =
                arg(&args, "--format").map_or(Some(WeightFormat::default()), |name| WeightFormat::from_name(&name));
            let format = format.ok_or("unknown --format")?;
            let max_tokens: usize = arg(&args, "--max-tokens").map_or(Ok(128), |v| v.parse())?;
            let prompt = match arg(&args, "--prompt-file") {
                Some(file) => std::fs::read_to_string(file)?,
                None => DEFAULT_PROMPT.to_owned(),
            };
            let load_started = std::time::Instant::now();
            let dense_prefill = !args.iter().any(|a| a == "--no-dense-prefill");
            let model =
                ChatModel::load_with(&files.chat_gguf, &ChatModelOptions { weight_format: format, dense_prefill })?;
            let load_seconds = load_started.elapsed().as_secs_f64();
            let repeats: usize = arg(&args, "--repeats").map_or(Ok(1), |v| v.parse())?;
            for _ in 0..repeats {
                let result = inference::bench::generate(&model, &prompt, max_tokens)?;
                println!(
                    "{{\"format\": \"{}\", \"dense_prefill\": {dense_prefill}, \"candle_threads\": {}, \"load_seconds\": {load_seconds:.2}, \"prompt_tokens\": {}, \"prompt_tokens_per_s\": {:.1}, \"ttft_ms\": {:.0}, \"new_tokens\": {}, \"decode_tokens_per_s\": {:.1}, \"peak_rss_mb\": {:.0}}}",
                    format.name(),
                    settings.candle_threads,
                    result.prompt_tokens,
                    result.prompt_tokens_per_s,
                    result.ttft_ms,
                    result.new_tokens,
                    result.decode_tokens_per_s,
                    inference::bench::peak_rss_mb().unwrap_or(0.0)
                );
            }
            if args.iter().any(|a| a == "--show") {
                let options = GenerationOptions { max_new_tokens: max_tokens, ..GenerationOptions::default() };
                let generation = model.generate_from_prompt(&prompt, &options, |_| ControlFlow::Continue(()))?;
                eprintln!("{:?}: {}", generation.stop_reason, generation.text);
            }
        }
        Some("chat") => {
            let question = args.get(1).ok_or("chat needs a question")?;
            let format =
                arg(&args, "--format").map_or(Some(WeightFormat::default()), |name| WeightFormat::from_name(&name));
            let options =
                ChatModelOptions { weight_format: format.ok_or("unknown --format")?, ..ChatModelOptions::default() };
            let model = ChatModel::load_with(&files.chat_gguf, &options)?;
            let generation =
                model.generate(&[ChatMessage::user(question.as_str())], &GenerationOptions::default(), |piece| {
                    eprint!("{piece}");
                    ControlFlow::Continue(())
                })?;
            eprintln!(
                "\n[{:?}, {} new tokens, {:.1} tok/s]",
                generation.stop_reason,
                generation.new_tokens,
                generation.decode_tokens_per_s()
            );
        }
        _ => return Err("usage: measure embed|generate|chat ...".into()),
    }
    Ok(())
}
