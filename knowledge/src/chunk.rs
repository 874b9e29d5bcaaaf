//! Chunking: splits a parsed document's sections into token-bounded chunks with overlap.
//!
//! Each section is chunked on its own, so a chunk never mixes two headings. Blocks (paragraphs,
//! list items, table rows) are packed greedily; a block longer than the budget is split into
//! sentences, and a sentence longer than the budget into words. Consecutive chunks of a section
//! share up to `overlap_tokens` tokens of whole trailing units. Token counts come from the
//! embedding model's tokenizer; the section path, which is embedded in front of the text, is
//! subtracted from the budget.

use crate::extract::ParsedDocument;

/// A chunk before it gets an id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChunkDraft {
    /// The heading path, e.g. "Billing > Late fees".
    pub section: String,
    /// The chunk's text (without the section path).
    pub text: String,
}

/// Chunking limits, in model tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkLimits {
    pub max_tokens: usize,
    pub overlap_tokens: usize,
}

/// Counts model tokens of a text without the special tokens the tokenizer adds to every input.
pub(crate) struct TokenCounter<'a> {
    count: &'a dyn Fn(&str) -> usize,
    overhead: usize,
}

impl<'a> TokenCounter<'a> {
    pub fn new(count: &'a dyn Fn(&str) -> usize) -> Self {
        let overhead = count("");
        TokenCounter { count, overhead }
    }

    /// Tokens of `text` alone (special tokens excluded).
    pub fn tokens(&self, text: &str) -> usize {
        (self.count)(text).saturating_sub(self.overhead)
    }

    /// Tokens the model adds to every input.
    pub fn overhead(&self) -> usize {
        self.overhead
    }
}

/// The text that is embedded for a chunk: its section path, then its text.
pub(crate) fn embedding_text(section: &str, text: &str) -> String {
    format!("{section}\n{text}")
}

/// Returns the number of body tokens a chunk of `section` may hold.
pub(crate) fn body_budget(counter: &TokenCounter<'_>, section: &str, limits: ChunkLimits) -> usize {
    let max_body = limits.max_tokens.saturating_sub(counter.overhead()).max(1);
    let header = counter.tokens(section) + 1;
    // A very long heading path must not starve the text; the model truncates the rest.
    max_body.saturating_sub(header).max(max_body / 2).max(1)
}

/// Chunks every section of a document.
pub(crate) fn chunk_document(
    document: &ParsedDocument,
    counter: &TokenCounter<'_>,
    limits: ChunkLimits,
) -> Vec<ChunkDraft> {
    let mut chunks = Vec::new();
    for section in &document.sections {
        let label = section.label();
        let budget = body_budget(counter, &label, limits);
        let overlap = limits.overlap_tokens.min(budget / 2);
        let units = units(&section.blocks, counter, budget);
        for text in pack(&units, budget, overlap) {
            chunks.push(ChunkDraft { section: label.clone(), text });
        }
    }
    chunks
}

/// A piece of text that is never split further, with its token count.
#[derive(Debug)]
struct Unit {
    text: String,
    tokens: usize,
}

fn units(blocks: &[String], counter: &TokenCounter<'_>, budget: usize) -> Vec<Unit> {
    let mut units = Vec::new();
    for block in blocks {
        let tokens = counter.tokens(block);
        if tokens <= budget {
            units.push(Unit { text: block.clone(), tokens });
            continue;
        }
        for sentence in split_sentences(block) {
            let tokens = counter.tokens(sentence);
            if tokens <= budget {
                units.push(Unit { text: sentence.to_string(), tokens });
            } else {
                split_words(sentence, counter, budget, &mut units);
            }
        }
    }
    units
}

/// Splits after '.', '!' or '?' followed by whitespace.
fn split_sentences(text: &str) -> Vec<&str> {
    let mut sentences = Vec::new();
    let mut start = 0;
    let bytes = text.as_bytes();
    for idx in 0..bytes.len().saturating_sub(1) {
        if matches!(bytes[idx], b'.' | b'!' | b'?') && bytes[idx + 1].is_ascii_whitespace() {
            let sentence = text[start..=idx].trim();
            if !sentence.is_empty() {
                sentences.push(sentence);
            }
            start = idx + 1;
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() {
        sentences.push(last);
    }
    sentences
}

/// Splits an over-long sentence into word runs of at most `budget` tokens.
fn split_words(sentence: &str, counter: &TokenCounter<'_>, budget: usize, units: &mut Vec<Unit>) {
    let mut current = String::new();
    let mut current_tokens = 0;
    for word in sentence.split_whitespace() {
        let word_tokens = counter.tokens(word);
        if word_tokens > budget {
            if !current.is_empty() {
                units.push(Unit { text: std::mem::take(&mut current), tokens: current_tokens });
                current_tokens = 0;
            }
            split_long_word(word, counter, budget, units);
            continue;
        }
        if current_tokens + word_tokens > budget && !current.is_empty() {
            units.push(Unit { text: std::mem::take(&mut current), tokens: current_tokens });
            current_tokens = 0;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        current_tokens += word_tokens;
    }
    if !current.is_empty() {
        units.push(Unit { text: current, tokens: current_tokens });
    }
}

/// Splits a single word that alone exceeds the budget (e.g. a long URL or base64 blob).
fn split_long_word(word: &str, counter: &TokenCounter<'_>, budget: usize, units: &mut Vec<Unit>) {
    let chars: Vec<char> = word.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        let mut len = (chars.len() - start).min(budget * 4).max(1);
        loop {
            let piece: String = chars[start..start + len].iter().collect();
            let tokens = counter.tokens(&piece);
            if tokens <= budget || len == 1 {
                units.push(Unit { text: piece, tokens });
                break;
            }
            len = (len / 2).max(1);
        }
        start += len;
    }
}

/// Greedily packs units into chunks of at most `budget` tokens, repeating up to `overlap`
/// tokens of whole trailing units at the start of the next chunk.
fn pack(units: &[Unit], budget: usize, overlap: usize) -> Vec<String> {
    let mut chunks = Vec::new();
    let mut start = 0;
    while start < units.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < units.len() && (end == start || tokens + units[end].tokens <= budget) {
            tokens += units[end].tokens;
            end += 1;
        }
        chunks.push(units[start..end].iter().map(|u| u.text.as_str()).collect::<Vec<_>>().join(" "));
        if end >= units.len() {
            break;
        }
        // Walk back over trailing units that fit in the overlap, leaving room for the next unit.
        let mut next_start = end;
        let mut overlap_tokens = 0;
        while next_start > start + 1 {
            let candidate = &units[next_start - 1];
            if overlap_tokens + candidate.tokens > overlap
                || overlap_tokens + candidate.tokens + units[end].tokens > budget
            {
                break;
            }
            overlap_tokens += candidate.tokens;
            next_start -= 1;
        }
        start = next_start;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::extract::Section;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn document(blocks: Vec<String>) -> ParsedDocument {
        ParsedDocument {
            title: "T".to_string(),
            doc_type: None,
            sections: vec![Section { path: vec!["T".to_string()], blocks }],
        }
    }

    #[test]
    fn small_section_is_one_chunk() {
        let counter = TokenCounter::new(&words);
        let limits = ChunkLimits { max_tokens: 50, overlap_tokens: 5 };
        let chunks = chunk_document(&document(vec!["a b c".into(), "d e".into()]), &counter, limits);
        assert_eq!(chunks, vec![ChunkDraft { section: "T".into(), text: "a b c d e".into() }]);
    }

    #[test]
    fn long_sections_overlap() {
        let counter = TokenCounter::new(&words);
        let limits = ChunkLimits { max_tokens: 7, overlap_tokens: 2 };
        let blocks = vec!["one two.".into(), "three four.".into(), "five six.".into(), "seven eight.".into()];
        let chunks = chunk_document(&document(blocks), &counter, limits);
        let texts: Vec<&str> = chunks.iter().map(|c| c.text.as_str()).collect();
        // Budget: 7 - 0 overhead - (1 + 1) header tokens = 5 tokens.
        assert_eq!(texts, vec!["one two. three four.", "three four. five six.", "five six. seven eight."]);
    }

    #[test]
    fn special_tokens_are_not_counted_twice() {
        let with_specials = |text: &str| text.split_whitespace().count() + 2;
        let counter = TokenCounter::new(&with_specials);
        assert_eq!(counter.overhead(), 2);
        assert_eq!(counter.tokens("a b"), 2);
    }

    #[test]
    fn giant_word_is_split() {
        let chars = |text: &str| text.chars().count().div_ceil(4);
        let counter = TokenCounter::new(&chars);
        let limits = ChunkLimits { max_tokens: 20, overlap_tokens: 0 };
        let blob = "x".repeat(1000);
        let chunks = chunk_document(&document(vec![blob.clone()]), &counter, limits);
        assert!(chunks.len() > 10);
        assert_eq!(chunks.iter().map(|c| c.text.as_str()).collect::<String>(), blob);
        for chunk in &chunks {
            assert!(counter.tokens(&chunk.text) <= 20);
        }
    }

    fn sentence() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-z]{1,8}", 1..30).prop_map(|w| format!("{}.", w.join(" ")))
    }

    proptest! {
        #[test]
        fn chunks_cover_the_text_and_respect_the_budget(
            blocks in prop::collection::vec(prop::collection::vec(sentence(), 1..6).prop_map(|s| s.join(" ")), 1..12),
            max_tokens in 8usize..80,
            overlap_tokens in 0usize..20,
        ) {
            let counter = TokenCounter::new(&words);
            let limits = ChunkLimits { max_tokens, overlap_tokens };
            let doc = document(blocks.clone());
            let chunks = chunk_document(&doc, &counter, limits);
            let budget = body_budget(&counter, "T", limits);
            for chunk in &chunks {
                prop_assert!(words(&chunk.text) <= budget, "chunk of {} words over budget {}", words(&chunk.text), budget);
                prop_assert!(!chunk.text.is_empty());
            }
            // Every input word appears, in order, in the chunks (overlap only repeats words).
            let output: Vec<&str> = chunks.iter().flat_map(|c| c.text.split_whitespace()).collect();
            let mut cursor = 0;
            for word in blocks.iter().flat_map(|b| b.split_whitespace()) {
                let found = output[cursor..].iter().position(|w| *w == word);
                prop_assert!(found.is_some(), "word {} missing", word);
                cursor += found.unwrap_or(0) + 1;
            }
            // Without overlap, the chunks are exactly the text.
            if overlap_tokens == 0 {
                let input: Vec<&str> = blocks.iter().flat_map(|b| b.split_whitespace()).collect();
                prop_assert_eq!(output, input);
            }
        }
    }
}
