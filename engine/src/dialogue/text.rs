//! Customer text, parsed once at the edge.

/// The most characters a customer message may have.
pub const MAX_TEXT_CHARS: usize = 4_000;

/// A customer message: trimmed, not empty, at most [`MAX_TEXT_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerText(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidText {
    #[error("message text is empty")]
    Empty,
    #[error("message text has {n_chars} characters; the limit is {MAX_TEXT_CHARS}")]
    TooLong { n_chars: usize },
}

impl CustomerText {
    pub fn parse(raw: impl Into<String>) -> Result<Self, InvalidText> {
        let raw = raw.into();
        // Control characters other than line breaks and tabs carry no meaning for us.
        let cleaned: String = raw.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect();
        let trimmed = cleaned.trim();
        let n_chars = trimmed.chars().count();
        if n_chars == 0 {
            return Err(InvalidText::Empty);
        }
        if n_chars > MAX_TEXT_CHARS {
            return Err(InvalidText::TooLong { n_chars });
        }
        Ok(Self(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for CustomerText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_trims() {
        assert_eq!(CustomerText::parse("  hi there \n").unwrap().as_str(), "hi there");
    }

    #[test]
    fn refuses_empty_and_blank() {
        assert_eq!(CustomerText::parse(""), Err(InvalidText::Empty));
        assert_eq!(CustomerText::parse(" \n\t "), Err(InvalidText::Empty));
        assert_eq!(CustomerText::parse("\u{0}\u{7}"), Err(InvalidText::Empty));
    }

    #[test]
    fn limit_counts_characters_not_bytes() {
        assert!(CustomerText::parse("é".repeat(MAX_TEXT_CHARS)).is_ok());
        assert_eq!(CustomerText::parse("a".repeat(MAX_TEXT_CHARS + 1)), Err(InvalidText::TooLong { n_chars: 4001 }));
    }
}
