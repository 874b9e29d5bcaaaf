//! `switchboard eval answers FILE [--json]`: asks every question of an answer file
//! (`evals::answers`) in a fresh conversation of the real engine over the demo accounts, and
//! judges the replies: every expected fact stated, no wrong one.
//!
//! Knowledge answers are the documents' sentences or computed, as the server gives them by
//! default. Rephrased answers are measured with both a chat model configured explicitly
//! (`models.chat_gguf`; as in `eval scenarios`, none is loaded otherwise) and
//! `dialogue.rephrase_answers = true`.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use engine::conversations::Channel;
use engine::dialogue::{CustomerText, NoTokens};
use engine::identity::OffsetClock;
use evals::answers::{AnswerScores, judge};

use super::scenarios::EngineAssistant;
use crate::BadInput;
use crate::config::Settings;

/// What one run of an answer file found.
pub struct AnswerReport {
    pub scores: AnswerScores,
    /// One line per question answered wrongly: its id, kind, what was missing or wrong, the
    /// question and the reply.
    pub failures: Vec<String>,
    pub seconds: f64,
}

/// Asks every question of `file` in a fresh conversation and judges the replies.
pub fn report(settings: &Settings, file: &Path) -> anyhow::Result<AnswerReport> {
    let items = evals::answers::load(file).map_err(|error| BadInput(error.to_string()))?;
    let loading = Instant::now();
    let assistant = EngineAssistant::load(settings)?;
    eprintln!("loaded in {:.1} s; asking {} questions", loading.elapsed().as_secs_f64(), items.len());
    let data = accounts::AccountsData::from_toml_str(prompts::DEMO_ACCOUNTS)?;
    let today = chrono::Local::now().date_naive();
    let dir = tempfile::tempdir()?;
    let engine = assistant.engine_over(&data, today, dir.path(), Arc::new(OffsetClock::default()), None)?;
    let mut scores = AnswerScores::default();
    let mut failures = Vec::new();
    let started = Instant::now();
    for item in &items {
        let conversation = engine.conversations().create(Channel::Api, None)?;
        let text =
            CustomerText::parse(item.question.clone()).map_err(|error| BadInput(format!("{}: {error}", item.id)))?;
        let (turn, _) = engine.respond(&conversation.id, &text, &NoTokens)?;
        let judgement = judge(item, &turn.reply);
        scores.add(&item.kind, judgement.passed);
        if !judgement.passed {
            let mut why = Vec::new();
            if !judgement.missing.is_empty() {
                why.push(format!("missing {}", judgement.missing.join(", ")));
            }
            if !judgement.wrong.is_empty() {
                why.push(format!("wrong {}", judgement.wrong.join(", ")));
            }
            failures.push(format!(
                "FAIL {} [{}] {}\n     Q: {}\n     A: {}",
                item.id,
                item.kind,
                why.join("; "),
                item.question,
                turn.reply
            ));
        }
    }
    Ok(AnswerReport { scores, failures, seconds: started.elapsed().as_secs_f64() })
}

pub fn run(settings: &Settings, file: &Path, json: bool) -> anyhow::Result<()> {
    let AnswerReport { scores, failures, seconds } = report(settings, file)?;
    for line in &failures {
        if json { eprintln!("{line}") } else { println!("{line}") }
    }
    let summary = format!(
        "{} of {} answered right ({:.1}%) in {seconds:.1} s",
        scores.passed,
        scores.n,
        scores.accuracy() * 100.0,
    );
    if json {
        eprintln!("{summary}");
        println!("{}", scores.to_json());
    } else {
        for (kind, (n, passed)) in &scores.by_kind {
            println!("{kind:>16}: {passed} of {n}");
        }
        println!("{summary}");
    }
    Ok(())
}
