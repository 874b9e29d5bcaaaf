//! Chunking: splits a parsed document into token-bounded chunks with overlap.
//!
//! The document becomes a sequence of units: each section's heading, then its blocks
//! (paragraphs, list items, table rows); a block longer than the budget is split into sentences,
//! a sentence longer than the budget into words. Units are packed greedily into chunks, so small
//! neighbouring sections share a chunk (a short document is often one chunk) while a section is
//! kept whole when it fits in a chunk of its own. When a section has to be split, consecutive
//! chunks share up to `overlap_tokens` tokens of whole trailing units.
//!
//! A chunk's text keeps its headings as lines, so a question that matches a heading finds the
//! text under it. A chunk is embedded with its *context* in front: the heading path above its
//! first unit (the full path when it starts mid-section), so every chunk knows its document
//! and section. Its *section* label is the heading path its sections share. Token counts come
//! from the embedding model's tokenizer; the budget covers context and text.

use crate::extract::ParsedDocument;

/// A chunk before it gets an id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChunkDraft {
    /// The heading path shared by the chunk's sections, e.g. "Billing > Late fees".
    pub section: String,
    /// The heading path embedded in front of the text.
    pub context: String,
    /// The chunk's text: headings and blocks, one per line.
    pub text: String,
    /// The headings inside the chunk, in order.
    pub headings: Vec<String>,
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

/// The text that is embedded for a chunk: its context, then its text.
pub(crate) fn embedding_text(context: &str, text: &str) -> String {
    if context.is_empty() { text.to_string() } else { format!("{context}\n{text}") }
}

/// The chunk's outline: its context and the headings inside it, e.g.
/// "Payment extensions > How long is an extension? > Who can get an extension?".
pub(crate) fn outline_text(context: &str, headings: &[String]) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(headings.len() + 1);
    if !context.is_empty() {
        parts.push(context);
    }
    parts.extend(headings.iter().map(String::as_str));
    parts.join(" > ")
}

/// Most sentences of a chunk given vectors of their own for reranking.
pub(crate) const MAX_UNITS_PER_CHUNK: usize = 48;

/// The sentences and lines of a chunk that say something (three words or more), for the
/// reranker's sentence vectors.
pub(crate) fn chunk_units(text: &str) -> Vec<&str> {
    text.split(['\n', '.', '?', '!', ';'])
        .map(|unit| unit.trim().trim_start_matches(['-', '*', '+', '>', '#']).trim())
        .filter(|unit| unit.split_whitespace().count() >= 3)
        .take(MAX_UNITS_PER_CHUNK)
        .collect()
}

/// A piece of text that is never split further.
#[derive(Debug)]
struct Unit {
    text: String,
    tokens: usize,
    section: usize,
    is_heading: bool,
    /// Continues the previous unit's block (a split sentence or word run): joined with a space.
    continues_block: bool,
}

/// Chunks a whole document.
pub(crate) fn chunk_document(
    document: &ParsedDocument,
    counter: &TokenCounter<'_>,
    limits: ChunkLimits,
) -> Vec<ChunkDraft> {
    let max_body = limits.max_tokens.saturating_sub(counter.overhead()).max(1);
    let labels: Vec<String> = document.sections.iter().map(|s| s.label()).collect();
    // The smallest budget a unit of each section can meet: with its full path as context.
    let budget_for = |context: &str| max_body.saturating_sub(counter.tokens(context) + 1).max(max_body / 2).max(1);

    let mut units: Vec<Unit> = Vec::new();
    for (section_idx, section) in document.sections.iter().enumerate() {
        let budget = budget_for(&labels[section_idx]);
        let heading = section.path.last().cloned().unwrap_or_default();
        let heading_tokens = counter.tokens(&heading);
        if heading_tokens <= budget / 2 {
            units.push(Unit {
                text: heading,
                tokens: heading_tokens,
                section: section_idx,
                is_heading: true,
                continues_block: false,
            });
        }
        for block in &section.blocks {
            push_block_units(block, section_idx, counter, budget, &mut units);
        }
    }
    let context_of = |unit: &Unit| -> String {
        let path = &document.sections[unit.section].path;
        if unit.is_heading { path[..path.len().saturating_sub(1)].join(" > ") } else { path.join(" > ") }
    };
    let section_tokens: Vec<usize> = {
        let mut totals = vec![0; document.sections.len()];
        for unit in &units {
            totals[unit.section] += unit.tokens;
        }
        totals
    };

    let mut chunks = Vec::new();
    let mut start = 0;
    while start < units.len() {
        let context = context_of(&units[start]);
        let budget = budget_for(&context);
        let overlap = limits.overlap_tokens.min(budget / 2);
        let mut end = start;
        let mut used = 0;
        while end < units.len() {
            let unit = &units[end];
            if end > start && used + unit.tokens > budget {
                break;
            }
            // Keep a section whole: start it in a new chunk if it fits there but not here.
            if end > start
                && unit.is_heading
                && used + section_tokens[unit.section] > budget
                && section_tokens[unit.section] <= budget_for(&context_of(unit))
            {
                break;
            }
            used += unit.tokens;
            end += 1;
        }
        // Never end a chunk on a heading whose text is in the next chunk.
        if end < units.len() && end > start + 1 && units[end - 1].is_heading {
            end -= 1;
        }
        chunks.push(draft(document, &units[start..end], context));
        if end >= units.len() {
            break;
        }
        if units[end].is_heading {
            start = end;
            continue;
        }
        // Mid-section split: repeat trailing units of the same section that fit the overlap.
        let next_budget = budget_for(&context_of(&units[end]));
        let mut next_start = end;
        let mut overlap_tokens = 0;
        while next_start > start + 1 {
            let candidate = &units[next_start - 1];
            if candidate.section != units[end].section
                || overlap_tokens + candidate.tokens > overlap
                || overlap_tokens + candidate.tokens + units[end].tokens > next_budget
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

fn draft(document: &ParsedDocument, units: &[Unit], context: String) -> ChunkDraft {
    let mut text = String::new();
    for (idx, unit) in units.iter().enumerate() {
        if idx > 0 {
            text.push(if unit.continues_block { ' ' } else { '\n' });
        }
        text.push_str(&unit.text);
    }
    // The section label: the heading path shared by every section in the chunk.
    let first = &document.sections[units[0].section].path;
    let mut shared = first.len();
    for unit in units {
        let path = &document.sections[unit.section].path;
        shared = shared.min(first.iter().zip(path).take_while(|(a, b)| a == b).count());
    }
    let section = first[..shared.max(1).min(first.len())].join(" > ");
    let headings = units.iter().filter(|u| u.is_heading).map(|u| u.text.clone()).collect();
    ChunkDraft { section, context, text, headings }
}

fn push_block_units(block: &str, section: usize, counter: &TokenCounter<'_>, budget: usize, units: &mut Vec<Unit>) {
    let tokens = counter.tokens(block);
    if tokens <= budget {
        units.push(Unit { text: block.to_string(), tokens, section, is_heading: false, continues_block: false });
        return;
    }
    let first_unit = units.len();
    for sentence in split_sentences(block) {
        let tokens = counter.tokens(sentence);
        if tokens <= budget {
            units.push(Unit { text: sentence.to_string(), tokens, section, is_heading: false, continues_block: true });
        } else {
            for (text, tokens) in split_words(sentence, counter, budget) {
                units.push(Unit { text, tokens, section, is_heading: false, continues_block: true });
            }
        }
    }
    if let Some(unit) = units.get_mut(first_unit) {
        unit.continues_block = false;
    }
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
fn split_words(sentence: &str, counter: &TokenCounter<'_>, budget: usize) -> Vec<(String, usize)> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut current_tokens = 0;
    for word in sentence.split_whitespace() {
        let word_tokens = counter.tokens(word);
        if word_tokens > budget {
            if !current.is_empty() {
                pieces.push((std::mem::take(&mut current), current_tokens));
                current_tokens = 0;
            }
            split_long_word(word, counter, budget, &mut pieces);
            continue;
        }
        if current_tokens + word_tokens > budget && !current.is_empty() {
            pieces.push((std::mem::take(&mut current), current_tokens));
            current_tokens = 0;
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
        current_tokens += word_tokens;
    }
    if !current.is_empty() {
        pieces.push((current, current_tokens));
    }
    pieces
}

/// Splits a single word that alone exceeds the budget (e.g. a long URL or base64 blob).
fn split_long_word(word: &str, counter: &TokenCounter<'_>, budget: usize, pieces: &mut Vec<(String, usize)>) {
    let chars: Vec<char> = word.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        let mut len = (chars.len() - start).min(budget * 4).max(1);
        loop {
            let piece: String = chars[start..start + len].iter().collect();
            let tokens = counter.tokens(&piece);
            if tokens <= budget || len == 1 {
                pieces.push((piece, tokens));
                break;
            }
            len = (len / 2).max(1);
        }
        start += len;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::extract::Section;

    fn words(text: &str) -> usize {
        text.split_whitespace().count()
    }

    fn section(path: &[&str], blocks: &[&str]) -> Section {
        Section {
            path: path.iter().map(|s| s.to_string()).collect(),
            blocks: blocks.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn document(sections: Vec<Section>) -> ParsedDocument {
        ParsedDocument { title: "T".to_string(), doc_type: None, sections }
    }

    fn texts(chunks: &[ChunkDraft]) -> Vec<&str> {
        chunks.iter().map(|c| c.text.as_str()).collect()
    }

    #[test]
    fn small_sections_share_a_chunk() {
        let counter = TokenCounter::new(&words);
        let limits = ChunkLimits { max_tokens: 50, overlap_tokens: 5 };
        let doc = document(vec![section(&["T"], &["intro text."]), section(&["T", "Fees"], &["a b c", "d e"])]);
        let chunks = chunk_document(&doc, &counter, limits);
        assert_eq!(
            chunks,
            vec![ChunkDraft {
                section: "T".into(),
                context: String::new(),
                text: "T\nintro text.\nFees\na b c\nd e".into(),
                headings: vec!["T".into(), "Fees".into()],
            }]
        );
    }

    #[test]
    fn sections_that_do_not_fit_start_a_new_chunk() {
        let counter = TokenCounter::new(&words);
        let limits = ChunkLimits { max_tokens: 12, overlap_tokens: 0 };
        let doc = document(vec![
            section(&["T", "One"], &["one two three four five."]),
            section(&["T", "Two"], &["six seven eight nine ten."]),
        ]);
        let chunks = chunk_document(&doc, &counter, limits);
        assert_eq!(texts(&chunks), ["One\none two three four five.", "Two\nsix seven eight nine ten."]);
        assert_eq!(chunks[1].section, "T > Two");
        assert_eq!(chunks[1].context, "T");
    }

    #[test]
    fn long_sections_overlap_and_carry_their_path() {
        let counter = TokenCounter::new(&words);
        // The first chunk (context "T") holds 7 tokens, the next (context "T > S") 5.
        let limits = ChunkLimits { max_tokens: 9, overlap_tokens: 2 };
        let doc = document(vec![section(&["T", "S"], &["one two.", "three four.", "five six.", "seven eight."])]);
        let chunks = chunk_document(&doc, &counter, limits);
        assert_eq!(texts(&chunks), ["S\none two.\nthree four.\nfive six.", "five six.\nseven eight."]);
        assert_eq!(chunks[1].context, "T > S");
        assert!(chunks.iter().all(|c| c.section == "T > S"));
    }

    #[test]
    fn chunk_units_are_its_sentences_and_lines() {
        let text = "Late fees\nA late fee of $10 applies. Pay now!\n- Ask us for an extension; it is free";
        assert_eq!(chunk_units(text), ["A late fee of $10 applies", "Ask us for an extension", "it is free"]);
        assert!(chunk_units(&"one two three. ".repeat(200)).len() == MAX_UNITS_PER_CHUNK);
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
        let chunks = chunk_document(&document(vec![section(&["T"], &[&blob])]), &counter, limits);
        assert!(chunks.len() > 10);
        let joined: String = chunks.iter().map(|c| c.text.trim_start_matches("T\n").replace([' ', '\n'], "")).collect();
        assert_eq!(joined, blob);
        for chunk in &chunks {
            assert!(counter.tokens(&chunk.text) <= 20);
        }
    }

    fn sentence() -> impl Strategy<Value = String> {
        prop::collection::vec("[a-z]{1,8}", 1..30).prop_map(|w| format!("{}.", w.join(" ")))
    }

    fn block() -> impl Strategy<Value = String> {
        prop::collection::vec(sentence(), 1..6).prop_map(|s| s.join(" "))
    }

    proptest! {
        #[test]
        fn chunks_cover_the_text_and_respect_the_budget(
            sections in prop::collection::vec(prop::collection::vec(block(), 1..5), 1..6),
            max_tokens in 8usize..120,
            overlap_tokens in 0usize..20,
        ) {
            let counter = TokenCounter::new(&words);
            let limits = ChunkLimits { max_tokens, overlap_tokens };
            let doc = document(
                sections
                    .iter()
                    .enumerate()
                    .map(|(idx, blocks)| Section { path: vec!["T".into(), format!("H{idx}")], blocks: blocks.clone() })
                    .collect(),
            );
            let chunks = chunk_document(&doc, &counter, limits);
            for chunk in &chunks {
                prop_assert!(words(&chunk.text) <= max_tokens, "chunk of {} words over {}", words(&chunk.text), max_tokens);
                prop_assert!(!chunk.text.trim().is_empty());
                prop_assert!(chunk.section.starts_with('T'));
            }
            // Every input word appears, in order, in the chunks (overlap only repeats words).
            let output: Vec<&str> = chunks.iter().flat_map(|c| c.text.split_whitespace()).collect();
            let mut cursor = 0;
            for word in sections.iter().flatten().flat_map(|b| b.split_whitespace()) {
                let found = output[cursor..].iter().position(|w| *w == word);
                prop_assert!(found.is_some(), "word {} missing", word);
                cursor += found.unwrap_or(0) + 1;
            }
        }
    }
}
