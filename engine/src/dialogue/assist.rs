//! What the engine offers a human agent: suggested replies, the hand-over summary, knowledge
//! search. Nothing here writes to the conversation; the console decides what to send.

use super::answer::Passage;
use super::guardrail::{Evidence, split_sentences};
use super::state::State;
use super::{Engine, EngineError};
use crate::conversations::EventKind;

/// A reply an agent may edit and send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Suggestion {
    pub text: String,
    /// Where it comes from: `greeting`, `next_step` (what the assistant was asking) or `knowledge`.
    pub origin: &'static str,
    pub sources: Vec<super::SourceOut>,
}

/// The prompt that asks the chat model to summarise a conversation for an agent.
const SUMMARY_SYSTEM: &str = "You summarise customer-service conversations for a human agent who takes over. \
Write two short sentences: what the customer wants and what has been done so far. Use only facts from the notes.";

impl Engine {
    /// Searches the knowledge base (for the console's search box).
    pub fn search_knowledge(&self, query: &str, k: usize) -> Result<Vec<Passage>, EngineError> {
        let embedding =
            self.encoder.embed(&[query])?.pop().ok_or_else(|| anyhow::anyhow!("the encoder returned no embedding"))?;
        Ok(self.knowledge.retrieve(query, &embedding, k)?)
    }

    /// Suggested replies for `agent_name`: a greeting while the agent has not written yet, the
    /// assistant's pending question, and an answer to the customer's last message from the
    /// knowledge base.
    pub fn suggest_replies(&self, conversation_id: &str, agent_name: &str) -> Result<Vec<Suggestion>, EngineError> {
        let conversation = self.conversations.get(conversation_id)?;
        let events = self.conversations.events(conversation_id)?;
        let state = State::replay(&events);
        let mut suggestions = Vec::new();
        let agent_wrote = events.iter().any(|event| matches!(event.kind, EventKind::AgentMessage { .. }));
        if !agent_wrote {
            let first_name = conversation
                .customer_id
                .as_deref()
                .and_then(|id| accounts::CustomerId::parse(id.to_string()).ok())
                .and_then(|id| self.registry.store().customer(&id).ok().flatten())
                .and_then(|customer| customer.full_name.split_whitespace().next().map(str::to_string));
            let hello = match first_name {
                Some(name) => format!("Hi {name}, "),
                None => "Hi, ".into(),
            };
            let operator = &self.settings.operator_name;
            suggestions.push(Suggestion {
                text: format!(
                    "{hello}I'm {agent_name} from {operator}. I've read your conversation with our assistant, so there's no need to repeat anything. Let me help you with this now."
                ),
                origin: "greeting",
                sources: Vec::new(),
            });
        }
        if state.awaiting.is_some()
            && let Some(last) = &state.last_reply
        {
            let question = split_sentences(last).into_iter().rev().find(|s| s.ends_with('?'));
            if let Some(question) = question {
                suggestions.push(Suggestion { text: question, origin: "next_step", sources: Vec::new() });
            }
        }
        let last_message = events.iter().rev().find_map(|event| match &event.kind {
            EventKind::MessageIn { text } => Some(text.clone()),
            _ => None,
        });
        if let Some(message) = last_message {
            let embedding = self
                .encoder
                .embed(&[&message])?
                .pop()
                .ok_or_else(|| anyhow::anyhow!("the encoder returned no embedding"))?;
            let passages = self.knowledge.retrieve(&message, &embedding, self.settings.top_k)?;
            let relevant =
                passages.first().is_some_and(|p| p.vector_similarity.unwrap_or(1.0) >= self.settings.min_similarity);
            if relevant {
                let (text, used) = self.answerer.extractive(self.encoder.as_ref(), &embedding, &passages)?;
                if !text.is_empty() {
                    let sources = used
                        .iter()
                        .filter_map(|&idx| passages.get(idx))
                        .map(|p| super::SourceOut {
                            document: p.document.clone(),
                            section: p.section.clone(),
                            score: p.score,
                        })
                        .collect();
                    suggestions.push(Suggestion { text, origin: "knowledge", sources });
                }
            }
        }
        Ok(suggestions)
    }

    /// A short summary of the conversation for the agent who takes over: the local model
    /// condenses the log's facts; a sentence stating anything not in the log, or copied from the
    /// assistant's replies, is dropped, and the summary read off the log is used when nothing
    /// survives.
    pub fn summarise(&self, conversation_id: &str) -> Result<String, EngineError> {
        let events = self.conversations.events(conversation_id)?;
        let state = State::replay(&events);
        let notes = super::summary::summarise(&events, state.customer.as_ref().map(|c| c.customer_id.as_str()));
        let Some(chat) = &self.chat else { return Ok(notes) };
        let transcript: String = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::MessageIn { text } => Some(format!("Customer: {text}")),
                EventKind::Reply { text, .. } => Some(format!("Assistant: {text}")),
                EventKind::AgentMessage { text, .. } => Some(format!("Agent: {text}")),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let recent: String = transcript.chars().rev().take(1200).collect::<String>().chars().rev().collect();
        let user = format!("Notes: {notes}\n\nConversation (end):\n{recent}\n\nSummary:");
        let generated = chat.chat(SUMMARY_SYSTEM, &user, 80, &mut |_| {})?;
        let evidence = Evidence::new(&[&notes, &transcript], &self.plan_names);
        // A sentence copied from the assistant's own replies repeats the transcript, it does not
        // summarise it (the small model does that often).
        let assistant_said: String = events
            .iter()
            .filter_map(|event| match &event.kind {
                EventKind::Reply { text, .. } => Some(text.to_lowercase()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let kept: Vec<String> = split_sentences(&generated)
            .into_iter()
            .filter(|sentence| sentence.ends_with(['.', '!']) && evidence.supports(sentence))
            .filter(|sentence| !assistant_said.contains(&sentence.trim().to_lowercase()))
            .collect();
        Ok(if kept.is_empty() { notes } else { format!("{} ({notes})", kept.join(" ")) })
    }

    /// The customer's satisfaction answer, when the conversation asked for one.
    pub(super) fn parse_csat(text: &str) -> Option<u8> {
        let digits: Vec<u8> =
            text.chars().filter(char::is_ascii_digit).filter_map(|c| c.to_digit(10)).map(|d| d as u8).collect();
        match digits.as_slice() {
            [score] if (1..=5).contains(score) => Some(*score),
            _ => {
                let lower = text.to_lowercase();
                let words = [("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5)];
                words
                    .iter()
                    .find(|(word, _)| {
                        lower.split_whitespace().any(|w| w.trim_matches(|c: char| !c.is_alphanumeric()) == *word)
                    })
                    .map(|(_, n)| *n)
            }
        }
    }

    /// Asks the customer for a 1-5 rating (after a human resolved the conversation). The
    /// question is logged as a reply awaiting `csat`, so every channel shows it.
    pub fn ask_for_rating(&self, conversation_id: &str) -> Result<super::Turn, EngineError> {
        let text = self
            .replies
            .render("csat_question", &|name| match name {
                "operator_name" => Some(self.settings.operator_name.clone()),
                _ => None,
            })
            .map_err(|error| anyhow::anyhow!(error))?;
        let turn = super::Turn { reply: text.clone(), awaiting: Some("csat".into()), ..super::Turn::default() };
        self.conversations.append(conversation_id, vec![EventKind::Reply { text, turn: turn.clone() }])?;
        Ok(turn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_parse() {
        assert_eq!(Engine::parse_csat("5"), Some(5));
        assert_eq!(Engine::parse_csat("I'd give it a 4"), Some(4));
        assert_eq!(Engine::parse_csat("three"), Some(3));
        assert_eq!(Engine::parse_csat("10"), None);
        assert_eq!(Engine::parse_csat("great service"), None);
    }
}
