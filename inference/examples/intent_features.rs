//! Dumps the sentence embeddings of an intent data set, for offline experiments with intent
//! classifiers (the numbers in BENCHMARKS.md's Understanding section come from the library itself).
//!
//! ```text
//! cargo run --release -p inference --example intent_features -- FILE SPLIT OUT_PREFIX [--format csv|clinc|yaml] [--pools]
//! ```
//!
//! Writes `OUT_PREFIX.jsonl` (one `{"text", "label"}` per line) and `OUT_PREFIX.mean.f32` (row-major
//! little-endian f32, 384 per text); with `--pools` also `OUT_PREFIX.cls.f32` and `OUT_PREFIX.max.f32`
//! (the last layer's first token and masked max over tokens, not normalised).

use std::io::Write;
use std::path::{Path, PathBuf};

use inference::intent::{DataFormat, Split, load_dataset};
use inference::models::bert::BatchInputs;

fn write_f32(path: &Path, rows: &[Vec<f32>]) -> std::io::Result<()> {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
    for row in rows {
        for value in row {
            file.write_all(&value.to_le_bytes())?;
        }
    }
    file.flush()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    inference::init_threads(inference::ThreadSettings::recommended());
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, split, prefix, ..] = args.as_slice() else {
        return Err("usage: intent_features FILE train|test OUT_PREFIX [--format F] [--pools]".into());
    };
    let format = args.iter().position(|a| a == "--format").and_then(|i| args.get(i + 1));
    let format = format.map(|f| f.parse::<DataFormat>()).transpose()?;
    let split = if split == "test" { Split::Test } else { Split::Train };
    let dataset = load_dataset(Path::new(file), format, split)?;
    let files = inference::ensure_default_models(&inference::default_models_dir())?;
    let embedder = inference::SentenceEmbedder::load(&files.encoder_dir)?;
    let texts: Vec<&str> = dataset.examples.iter().map(|e| e.text.as_str()).collect();
    let started = std::time::Instant::now();
    let mean = embedder.embed(&texts)?;
    eprintln!("embedded {} texts in {:.1} s", texts.len(), started.elapsed().as_secs_f64());
    let prefix = PathBuf::from(prefix);
    let mut jsonl = std::io::BufWriter::new(std::fs::File::create(prefix.with_extension("jsonl"))?);
    for example in &dataset.examples {
        serde_json::to_writer(&mut jsonl, &serde_json::json!({"text": example.text, "label": example.label}))?;
        jsonl.write_all(b"\n")?;
    }
    jsonl.flush()?;
    write_f32(&prefix.with_extension("mean.f32"), &mean)?;
    if args.iter().any(|a| a == "--pools") {
        let pad_id = embedder.tokenizer().token_to_id("[PAD]").unwrap_or(0);
        let (mut cls, mut max) = (Vec::new(), Vec::new());
        for chunk in texts.chunks(32) {
            let encodings = embedder.tokenizer().encode_batch(chunk.to_vec(), true).map_err(|e| e.to_string())?;
            let ids: Vec<Vec<u32>> =
                encodings.iter().map(|e| e.get_ids()[..e.get_ids().len().min(256)].to_vec()).collect();
            let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
            let inputs = BatchInputs::pad(&refs, pad_id, &candle_core::Device::Cpu)?;
            let hidden = embedder.model().forward(&inputs.input_ids, &inputs.type_ids, &inputs.mask)?;
            let hidden: Vec<Vec<Vec<f32>>> = hidden.to_vec3()?;
            for (states, sequence) in hidden.iter().zip(&ids) {
                cls.push(states[0].clone());
                let mut best = vec![f32::NEG_INFINITY; states[0].len()];
                for state in &states[..sequence.len()] {
                    for (b, v) in best.iter_mut().zip(state) {
                        *b = b.max(*v);
                    }
                }
                max.push(best);
            }
        }
        write_f32(&prefix.with_extension("cls.f32"), &cls)?;
        write_f32(&prefix.with_extension("max.f32"), &max)?;
    }
    Ok(())
}
