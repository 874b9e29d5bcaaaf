//! What the dialogue needs from the models, as two small traits.
//!
//! The engine talks to these traits, not to `inference` types directly, so that the prompts
//! and the guardrail can be tested with a scripted chat model that invents facts on purpose.

/// Sentence embeddings (L2-normalised).
pub trait SentenceEncoder: Send + Sync {
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>>;
}

/// A chat model: one reply to a system prompt and a user message, streamed token by token.
pub trait ChatBackend: Send + Sync {
    fn chat(&self, system: &str, user: &str, max_new_tokens: usize, on_token: &mut dyn FnMut(&str))
    -> anyhow::Result<String>;
}

impl SentenceEncoder for inference::SentenceEmbedder {
    fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        Ok(inference::SentenceEmbedder::embed(self, texts)?)
    }
}

impl ChatBackend for inference::ChatModel {
    fn chat(
        &self,
        system: &str,
        user: &str,
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(&str),
    ) -> anyhow::Result<String> {
        let messages = [inference::ChatMessage::system(system), inference::ChatMessage::user(user)];
        let options = inference::GenerationOptions { max_new_tokens, ..inference::GenerationOptions::default() };
        let generation = self.generate(&messages, &options, |token: &str| {
            on_token(token);
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(generation.text)
    }
}
