//! Counters of the engine, rendered in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::answer::GuardrailStats;
use super::{StageTimes, Turn};

/// Upper bounds (ms) of the turn latency histogram.
const BUCKETS_MS: &[f64] = &[10.0, 30.0, 100.0, 300.0, 1_000.0, 3_000.0, 10_000.0, 30_000.0];

#[derive(Debug, Default)]
pub struct EngineMetrics {
    turns: AtomicU64,
    turns_failed: AtomicU64,
    handoffs: AtomicU64,
    actions_done: AtomicU64,
    actions_refused: AtomicU64,
    confirmations_asked: AtomicU64,
    turn_ms_buckets: [AtomicU64; 8],
    turn_ms_sum: AtomicU64,
    stage_ms_sum: [AtomicU64; 4],
}

impl EngineMetrics {
    pub fn record_turn(&self, turn: &Turn, times: &StageTimes) {
        self.turns.fetch_add(1, Ordering::Relaxed);
        if turn.handoff {
            self.handoffs.fetch_add(1, Ordering::Relaxed);
        }
        for action in &turn.actions {
            let counter = if action.status == "done" { &self.actions_done } else { &self.actions_refused };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        if turn.awaiting.as_deref() == Some("confirmation") {
            self.confirmations_asked.fetch_add(1, Ordering::Relaxed);
        }
        for (bucket, bound) in self.turn_ms_buckets.iter().zip(BUCKETS_MS) {
            if times.total_ms <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.turn_ms_sum.fetch_add(times.total_ms.round() as u64, Ordering::Relaxed);
        let stages = [times.understanding_ms, times.retrieval_ms, times.action_ms, times.generation_ms];
        for (sum, value) in self.stage_ms_sum.iter().zip(stages) {
            sum.fetch_add(value.round() as u64, Ordering::Relaxed);
        }
    }

    pub fn record_failure(&self) {
        self.turns_failed.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of these metrics and the guardrail's.
    pub fn render(&self, guardrail: &GuardrailStats) -> String {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
        };
        counter("switchboard_turns_total", "Customer messages answered.", load(&self.turns));
        counter(
            "switchboard_turns_failed_total",
            "Customer messages that failed with an internal error.",
            load(&self.turns_failed),
        );
        counter("switchboard_handoffs_total", "Conversations handed to a human agent.", load(&self.handoffs));
        counter("switchboard_actions_done_total", "Account actions that ran.", load(&self.actions_done));
        counter(
            "switchboard_actions_refused_total",
            "Account actions refused by policy or error.",
            load(&self.actions_refused),
        );
        counter(
            "switchboard_confirmations_asked_total",
            "Yes/no questions before a change.",
            load(&self.confirmations_asked),
        );
        counter(
            "switchboard_guardrail_sentences_passed_total",
            "Generated sentences whose facts were all in the evidence.",
            load(&guardrail.sentences_passed),
        );
        counter(
            "switchboard_guardrail_sentences_replaced_total",
            "Generated sentences replaced by the extractive answer.",
            load(&guardrail.sentences_replaced),
        );
        counter(
            "switchboard_knowledge_answers_generated_total",
            "Knowledge answers that kept generated text.",
            load(&guardrail.answers_generated),
        );
        counter(
            "switchboard_knowledge_answers_extractive_total",
            "Knowledge answers composed from passages only.",
            load(&guardrail.answers_extractive),
        );
        let _ = writeln!(
            out,
            "# HELP switchboard_turn_ms Time to answer a customer message.\n# TYPE switchboard_turn_ms histogram"
        );
        for (bucket, bound) in self.turn_ms_buckets.iter().zip(BUCKETS_MS) {
            let _ = writeln!(out, "switchboard_turn_ms_bucket{{le=\"{bound}\"}} {}", load(bucket));
        }
        let _ = writeln!(out, "switchboard_turn_ms_bucket{{le=\"+Inf\"}} {}", load(&self.turns));
        let _ = writeln!(out, "switchboard_turn_ms_sum {}", load(&self.turn_ms_sum));
        let _ = writeln!(out, "switchboard_turn_ms_count {}", load(&self.turns));
        let _ = writeln!(
            out,
            "# HELP switchboard_stage_ms_total Time spent per turn stage.\n# TYPE switchboard_stage_ms_total counter"
        );
        for (stage, sum) in ["understanding", "retrieval", "action", "generation"].iter().zip(&self.stage_ms_sum) {
            let _ = writeln!(out, "switchboard_stage_ms_total{{stage=\"{stage}\"}} {}", load(sum));
        }
        out
    }
}
