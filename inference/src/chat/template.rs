//! Chat templates: messages to prompt tokens.
//!
//! GGUF files carry a Jinja template (`tokenizer.chat_template`). Rather than run Jinja, the
//! template is recognised: ChatML (`<|im_start|>`, SmolLM2, Qwen) or Llama 3 headers
//! (`<|start_header_id|>`); anything else falls back to ChatML. A default system message that a
//! ChatML template inserts when the conversation has none (SmolLM2 does) is extracted and kept.
//!
//! Rendering produces [`Segment`]s: control tokens by id and text. Message contents are later
//! tokenized with control-token parsing off, so text typed by a customer can never become a
//! control token.

use std::sync::LazyLock;

use regex::Regex;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    /// The role's name in chat templates.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::System => "system",
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: Role,
    pub content: String,
}

impl ChatMessage {
    /// A message from `role`.
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }

    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::new(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::new(Role::User, content)
    }

    /// An assistant message.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new(Role::Assistant, content)
    }
}

/// A piece of a rendered prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A control token, by id.
    Control(u32),
    /// Text, tokenized without control-token parsing.
    Text(String),
}

/// The prompt formats understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ChatTemplate {
    /// `<|im_start|>role\ncontent<|im_end|>\n`, then `<|im_start|>assistant\n`.
    ChatMl { im_start: u32, im_end: u32, default_system: Option<String> },
    /// `<|begin_of_text|><|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`.
    Llama3 { bos: Option<u32>, start_header: u32, end_header: u32, eot: u32 },
}

static CHATML_DEFAULT_SYSTEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)<\|im_start\|>system(?:\n|\\n)(.*?)<\|im_end\|>").expect("valid regex"));

impl ChatTemplate {
    /// Picks the template for a model from its Jinja source and its control tokens.
    /// `None` when the vocabulary has neither ChatML nor Llama 3 control tokens.
    pub(crate) fn detect(
        jinja: Option<&str>,
        token_id: impl Fn(&str) -> Option<u32>,
        bos: Option<u32>,
        add_bos: bool,
    ) -> Option<Self> {
        let jinja = jinja.unwrap_or("");
        if jinja.contains("<|start_header_id|>")
            && let (Some(start_header), Some(end_header), Some(eot)) =
                (token_id("<|start_header_id|>"), token_id("<|end_header_id|>"), token_id("<|eot_id|>"))
        {
            return Some(Self::Llama3 { bos: bos.filter(|_| add_bos), start_header, end_header, eot });
        }
        let (im_start, im_end) = (token_id("<|im_start|>")?, token_id("<|im_end|>")?);
        // Only a default system message that the template adds on its own (a literal system turn).
        let default_system = CHATML_DEFAULT_SYSTEM
            .captures(jinja)
            .map(|captures| captures[1].to_owned())
            .filter(|text| !text.contains('{') && !text.contains('\''));
        Some(Self::ChatMl { im_start, im_end, default_system })
    }

    /// The token that ends a turn in this template.
    pub(crate) fn end_of_turn(&self) -> u32 {
        match self {
            Self::ChatMl { im_end, .. } => *im_end,
            Self::Llama3 { eot, .. } => *eot,
        }
    }

    /// Renders `messages` followed by the opening of an assistant turn.
    pub(crate) fn render(&self, messages: &[ChatMessage]) -> Vec<Segment> {
        let mut segments = Vec::with_capacity(messages.len() * 4 + 4);
        match self {
            Self::ChatMl { im_start, im_end, default_system } => {
                let mut turn = |role: &str, content: &str| {
                    segments.push(Segment::Control(*im_start));
                    segments.push(Segment::Text(format!("{role}\n{content}")));
                    segments.push(Segment::Control(*im_end));
                    segments.push(Segment::Text("\n".to_owned()));
                };
                let has_system = messages.first().is_some_and(|message| message.role == Role::System);
                if let (false, Some(system)) = (has_system, default_system) {
                    turn("system", system);
                }
                for message in messages {
                    turn(message.role.as_str(), &message.content);
                }
                segments.push(Segment::Control(*im_start));
                segments.push(Segment::Text("assistant\n".to_owned()));
            }
            Self::Llama3 { bos, start_header, end_header, eot } => {
                segments.extend(bos.map(Segment::Control));
                let header = |segments: &mut Vec<Segment>, role: &str| {
                    segments.push(Segment::Control(*start_header));
                    segments.push(Segment::Text(role.to_owned()));
                    segments.push(Segment::Control(*end_header));
                };
                for message in messages {
                    header(&mut segments, message.role.as_str());
                    segments.push(Segment::Text(format!("\n\n{}", message.content)));
                    segments.push(Segment::Control(*eot));
                }
                header(&mut segments, "assistant");
                segments.push(Segment::Text("\n\n".to_owned()));
            }
        }
        segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMOLLM2_TEMPLATE: &str = "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

    fn chatml_ids(token: &str) -> Option<u32> {
        match token {
            "<|im_start|>" => Some(1),
            "<|im_end|>" => Some(2),
            _ => None,
        }
    }

    #[track_caller]
    fn check_render(messages: &[ChatMessage], expected: &[Segment]) {
        let template = ChatTemplate::detect(Some(SMOLLM2_TEMPLATE), chatml_ids, Some(1), false).unwrap();
        assert_eq!(template.render(messages), expected);
    }

    fn text(s: &str) -> Segment {
        Segment::Text(s.to_owned())
    }

    #[test]
    fn chatml_with_system_message() {
        use Segment::Control;
        check_render(
            &[ChatMessage::system("Be brief."), ChatMessage::user("Hi")],
            &[
                Control(1),
                text("system\nBe brief."),
                Control(2),
                text("\n"),
                Control(1),
                text("user\nHi"),
                Control(2),
                text("\n"),
                Control(1),
                text("assistant\n"),
            ],
        );
    }

    #[test]
    fn chatml_inserts_the_templates_default_system_message() {
        let template = ChatTemplate::detect(Some(SMOLLM2_TEMPLATE), chatml_ids, Some(1), false).unwrap();
        let segments = template.render(&[ChatMessage::user("Hi")]);
        assert_eq!(segments[1], text("system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"));
        assert_eq!(segments.len(), 10);
    }

    #[test]
    fn chatml_without_template_has_no_default_system() {
        let template = ChatTemplate::detect(None, chatml_ids, None, false).unwrap();
        assert_eq!(template.render(&[]), vec![Segment::Control(1), text("assistant\n")]);
        assert_eq!(template.end_of_turn(), 2);
    }

    #[test]
    fn llama3_headers() {
        let ids = |token: &str| match token {
            "<|start_header_id|>" => Some(10),
            "<|end_header_id|>" => Some(11),
            "<|eot_id|>" => Some(12),
            _ => None,
        };
        let template = ChatTemplate::detect(Some("<|start_header_id|>"), ids, Some(9), true).unwrap();
        use Segment::Control;
        assert_eq!(
            template.render(&[ChatMessage::user("Hi")]),
            vec![
                Control(9),
                Control(10),
                text("user"),
                Control(11),
                text("\n\nHi"),
                Control(12),
                Control(10),
                text("assistant"),
                Control(11),
                text("\n\n")
            ]
        );
        assert_eq!(template.end_of_turn(), 12);
    }

    #[test]
    fn no_known_control_tokens_means_no_template() {
        assert_eq!(ChatTemplate::detect(Some(SMOLLM2_TEMPLATE), |_| None, None, false), None);
    }
}
