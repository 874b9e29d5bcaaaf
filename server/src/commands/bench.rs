//! `switchboard bench embed|generate|turns`: model speed on this machine (shapes in `interfaces.md`).

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
    let result = inference::bench::generate(&chat, &prompt, max_tokens).map_err(|error| match error {
        inference::Error::PromptTooLong { .. } | inference::Error::InvalidInput(_) => {
            anyhow::Error::from(BadInput(error.to_string()))
        }
        other => other.into(),
    })?;
    if json_output {
        println!(
            "{}",
            json!({
                "prompt_tokens": result.prompt_tokens,
                "prompt_tokens_per_s": result.prompt_tokens_per_s,
                "ttft_ms": result.ttft_ms,
                "new_tokens": result.new_tokens,
                "decode_tokens_per_s": result.decode_tokens_per_s,
                "peak_rss_mb": result.peak_rss_mb,
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

/// Knowledge questions for the turn benchmark (answered from the demo pack).
const KNOWLEDGE_QUESTIONS: &[&str] = &[
    "How much is the cheapest plan?",
    "what is the late fee if I pay late?",
    "how do I turn on roaming before a trip",
    "Does refuelled data roll over to next month?",
    "how long does a SIM replacement take",
    "Can I move my eSIM to a new phone?",
    "what happens when my line is suspended",
    "what payment methods do you accept",
    "how do I dispute a charge on my bill",
    "is there a fee to end my contract early?",
];

/// A conversation of non-generative turns (a flow on the demo accounts), declined at the end.
/// [`VERIFY`] stands for the code texted to the number (read from the demo outbox).
const FLOW_TURNS: &[&str] = &["I want to add some data to my line", "555-010-2005", VERIFY, "1 GB", "no thanks"];
/// The turn that types the newest verification code texted to the flow's number.
const VERIFY: &str = "(the verification code)";
const FLOW_NUMBER: &str = "555-010-2005";

/// The newest six-digit code the demo outbox holds for `number`.
fn latest_code(settings: &Settings, number: &str) -> anyhow::Result<String> {
    let key = accounts::ids::phone_key(number);
    engine::identity::Outbox::in_data_dir(&settings.data_dir)
        .read()
        .into_iter()
        .rev()
        .filter(|text| accounts::ids::phone_key(&text.to) == key)
        .find_map(|text| text.text.split(|c: char| !c.is_ascii_digit()).find(|d| d.len() == 6).map(str::to_string))
        .ok_or_else(|| anyhow::anyhow!("no verification code was texted to {number} (is an SMS gateway configured?)"))
}

/// Times whole turns through the engine, in one process with both models loaded: flow turns
/// (no generation) and knowledge questions (generated only with `dialogue.rephrase_answers`),
/// with the stage breakdown.
pub fn turns(settings: &Settings, rounds: usize, json_output: bool) -> anyhow::Result<()> {
    use std::sync::Mutex;
    use std::time::Instant;

    if rounds == 0 {
        return Err(BadInput("--rounds must be at least 1".into()).into());
    }

    use engine::conversations::Channel;
    use engine::dialogue::{CustomerText, NoTokens, StageTimes, TokenSink};

    struct FirstToken {
        started: Instant,
        first_ms: Mutex<Option<f64>>,
    }
    impl TokenSink for FirstToken {
        fn token(&self, _: &str, _: &str) {
            let mut first = self.first_ms.lock().expect("first token lock");
            if first.is_none() {
                *first = Some(self.started.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }

    let state = super::serve::state_for(settings.clone())?;
    let engine = state.readiness.engine().expect("loaded").clone();
    let mut flow_times: Vec<StageTimes> = Vec::new();
    let mut knowledge_times: Vec<StageTimes> = Vec::new();
    let mut first_token_ms: Vec<f64> = Vec::new();
    // One warm-up round, not counted.
    for round in 0..=rounds {
        let conversation = state.conversations.create(Channel::Api, None)?;
        for text in FLOW_TURNS {
            let text = if *text == VERIFY { latest_code(settings, FLOW_NUMBER)? } else { text.to_string() };
            let (turn, times) = engine.respond(&conversation.id, &CustomerText::parse(&text)?, &NoTokens)?;
            // Timing a flow that went astray would time the wrong thing.
            if text == "1 GB" && turn.awaiting.as_deref() != Some("confirmation") {
                anyhow::bail!("the timed flow did not reach its confirmation: {:?}", turn.reply);
            }
            if round > 0 {
                flow_times.push(times);
            }
        }
        for question in KNOWLEDGE_QUESTIONS {
            let conversation = state.conversations.create(Channel::Api, None)?;
            let sink = FirstToken { started: Instant::now(), first_ms: Mutex::new(None) };
            let (_, times) = engine.respond(&conversation.id, &CustomerText::parse(*question)?, &sink)?;
            if round > 0 {
                knowledge_times.push(times);
                if let Some(first) = *sink.first_ms.lock().expect("first token lock") {
                    first_token_ms.push(first);
                }
            }
        }
    }
    let summary = |times: &[StageTimes]| {
        let mut totals: Vec<f64> = times.iter().map(|t| t.total_ms).collect();
        totals.sort_by(f64::total_cmp);
        let mean = |f: fn(&StageTimes) -> f64| times.iter().map(f).sum::<f64>() / times.len().max(1) as f64;
        json!({
            "n": times.len(),
            "p50_ms": percentile(&totals, 0.5),
            "p95_ms": percentile(&totals, 0.95),
            "mean_understanding_ms": mean(|t| t.understanding_ms),
            "mean_retrieval_ms": mean(|t| t.retrieval_ms),
            "mean_action_ms": mean(|t| t.action_ms),
            "mean_generation_ms": mean(|t| t.generation_ms),
        })
    };
    first_token_ms.sort_by(f64::total_cmp);
    // Intent prediction, batch of one as the engine sees a message: embedding it, then the intent
    // model (loaded from the data directory, where the engine has just trained or found it).
    let paths = crate::app::resolve_models(settings)?;
    let embedder = crate::app::load_embedder(&paths.encoder_dir)?;
    let intents = crate::app::load_intents(settings, embedder.clone())?;
    let mut intent_ms: Vec<f64> = Vec::new();
    for round in 0..=rounds {
        for text in FLOW_TURNS.iter().filter(|text| **text != VERIFY).chain(KNOWLEDGE_QUESTIONS) {
            let started = Instant::now();
            let embedding = embedder.embed(&[*text])?;
            intents.predict(text, &embedding[0])?;
            if round > 0 {
                intent_ms.push(started.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }
    intent_ms.sort_by(f64::total_cmp);
    let guardrail = engine.guardrail_stats();
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(std::sync::atomic::Ordering::Relaxed);
    let (passed, replaced) = (load(&guardrail.sentences_passed), load(&guardrail.sentences_replaced));
    let report = json!({
        // Over every knowledge answer above, the warm-up round included.
        "guardrail": {
            "sentences_passed": passed,
            "sentences_replaced": replaced,
            "sentence_pass_rate": passed as f64 / (passed + replaced).max(1) as f64,
            "answers_generated": load(&guardrail.answers_generated),
            "answers_extractive": load(&guardrail.answers_extractive),
            "answers_uncovered": load(&guardrail.answers_uncovered),
        },
        "flow_turns": summary(&flow_times),
        "knowledge_turns": summary(&knowledge_times),
        "first_token_ms_p50": percentile(&first_token_ms, 0.5),
        "first_token_ms_p95": percentile(&first_token_ms, 0.95),
        "intent_ms_p50": percentile(&intent_ms, 0.5),
        "intent_ms_p95": percentile(&intent_ms, 0.95),
    });
    if json_output {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}
