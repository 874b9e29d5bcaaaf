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
    fn chat(
        &self,
        system: &str,
        user: &str,
        max_new_tokens: usize,
        on_token: &mut dyn FnMut(&str),
    ) -> anyhow::Result<String>;
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

/// Intent prediction: the intent's name (`out_of_scope` when none fits) and its confidence.
pub trait IntentPredictor: Send + Sync {
    fn predict(&self, text: &str, embedding: &[f32]) -> anyhow::Result<(String, f32)>;
}

/// A trained intent model with the sentence encoder it was trained on.
pub struct IntentsOnEncoder {
    pub model: inference::intent::IntentModel,
    pub encoder: std::sync::Arc<inference::SentenceEmbedder>,
}

impl IntentPredictor for IntentsOnEncoder {
    fn predict(&self, text: &str, embedding: &[f32]) -> anyhow::Result<(String, f32)> {
        let prediction = if self.model.has_own_encoder() {
            self.model.predict(self.encoder.as_ref(), text)?
        } else {
            self.model.predict_embedding(embedding)?
        };
        Ok((prediction.name, prediction.confidence))
    }
}
