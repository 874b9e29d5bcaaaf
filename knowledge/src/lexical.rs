//! The lexical index: tantivy BM25 over chunk title, section path and text, with an English
//! stemming analyzer, stop words removed, and typo correction of unknown query terms against the
//! index's own vocabulary (Levenshtein automata over the term dictionary).

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use levenshtein_automata::{Distance, LevenshteinAutomatonBuilder};
use tantivy::collector::TopDocs;
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{
    AsciiFoldingFilter, Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::{Filter, Result};

const ANALYZER: &str = "switchboard_en";
const WRITER_MEMORY_BYTES: usize = 32_000_000;
const MAX_QUERY_TERMS: usize = 64;
const CORRECTED_TERM_BOOST: f32 = 0.8;
const SYNONYM_BOOST: f32 = 0.5;

/// English stop words: Lucene's list plus question and pronoun words that carry no topic.
const STOP_WORDS: &[&str] = &[
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will", "with",
    "i", "me", "my", "mine", "you", "your", "we", "our", "us", "do", "does", "did", "what", "how", "which", "who",
    "whom", "why", "when", "where", "can", "could", "would", "should", "am", "please", "hi", "hello", "thanks", "im",
    "i'm", "its", "get", "got", "have", "has", "had", "been", "being", "so", "just", "any", "some", "about", "also",
];

/// Words of chat that say nothing about the topic (stemmed, as the analyzer leaves them), and
/// the pieces the tokenizer leaves of contractions ("i've" gives "ve").
const CHAT_WORDS: &[&str] = &[
    "u", "ur", "guy", "hey", "pls", "plz", "thx", "lol", "rn", "bc", "cuz", "tho", "ya", "yeah", "kinda", "sorta",
    "like", "realli", "actual", "know", "want", "need", "tell", "help", "wonder", "question", "someth", "thing",
    "stuff", "anyon", "anyth", "ok", "okay", "gonna", "wanna", "gotta", "much", "mani", "what", "whats", "wat", "r",
    "ne",
];

/// A question's term with its rarity weight and its synonyms (all stemmed).
#[derive(Debug, Clone)]
struct WeighedTerm {
    term: String,
    idf: f32,
    synonyms: Vec<String>,
}

/// A question's countable terms (see [`LexicalIndex::coverage`]).
#[derive(Debug, Clone)]
pub(crate) struct WeighedTerms {
    terms: Vec<WeighedTerm>,
}

impl WeighedTerms {
    /// The IDF-weighted share of the terms found in `text_terms`; `None` without terms.
    pub(crate) fn coverage(&self, text_terms: &HashSet<String>) -> Option<f32> {
        let total: f32 = self.terms.iter().map(|term| term.idf).sum();
        if total <= 0.0 {
            return None;
        }
        let covered: f32 = self
            .terms
            .iter()
            .filter(|t| {
                text_terms.contains(&t.term)
                    || t.synonyms.iter().any(|other| text_terms.contains(other))
                    || (t.term.chars().count() >= 5 && text_terms.iter().any(|word| within_one_edit(word, &t.term)))
            })
            .map(|term| term.idf)
            .sum();
        Some(covered / total)
    }
}

/// Whether two words differ by at most one insertion, deletion or substitution.
fn within_one_edit(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    let prefix = short.iter().zip(long.iter()).take_while(|(x, y)| x == y).count();
    if prefix == short.len() {
        return true;
    }
    if short.len() == long.len() {
        short[prefix + 1..] == long[prefix + 1..]
    } else {
        short[prefix..] == long[prefix + 1..]
    }
}

/// Weights of the section-path and title fields relative to the chunk text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FieldBoosts {
    pub section: f32,
    pub title: f32,
}

/// One chunk as the lexical index sees it.
pub(crate) struct LexicalDoc<'a> {
    pub chunk_id: &'a str,
    pub file_key: &'a str,
    pub doc_type: &'a str,
    pub document: &'a str,
    pub title: &'a str,
    pub section: &'a str,
    pub text: &'a str,
}

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: Field,
    file_key: Field,
    doc_type: Field,
    document: Field,
    title: Field,
    section: Field,
    body: Field,
}

pub(crate) struct LexicalIndex {
    index: Index,
    reader: IndexReader,
    writer: Mutex<Option<IndexWriter>>,
    fields: Fields,
    analyzer: TextAnalyzer,
    /// Stemmed word -> stemmed words of its synonym groups.
    synonyms: HashMap<String, Vec<String>>,
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    let text = |stored: bool| {
        let indexing =
            TextFieldIndexing::default().set_tokenizer(ANALYZER).set_index_option(IndexRecordOption::WithFreqs);
        let options = TextOptions::default().set_indexing_options(indexing);
        if stored { options.set_stored() } else { options }
    };
    let fields = Fields {
        chunk_id: builder.add_text_field("chunk_id", STRING | STORED | FAST),
        file_key: builder.add_text_field("file_key", STRING),
        doc_type: builder.add_text_field("doc_type", STRING),
        document: builder.add_text_field("document", STRING),
        title: builder.add_text_field("title", text(false)),
        section: builder.add_text_field("section", text(false)),
        body: builder.add_text_field("body", text(false)),
    };
    (builder.build(), fields)
}

fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(StopWordFilter::remove(STOP_WORDS.iter().map(|w| w.to_string())))
        .filter(Stemmer::new(Language::English))
        .build()
}

fn fuzzy_builder(distance: u8) -> &'static LevenshteinAutomatonBuilder {
    static ONE: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    static TWO: OnceLock<LevenshteinAutomatonBuilder> = OnceLock::new();
    match distance {
        1 => ONE.get_or_init(|| LevenshteinAutomatonBuilder::new(1, true)),
        _ => TWO.get_or_init(|| LevenshteinAutomatonBuilder::new(2, true)),
    }
}

/// Adapts a Levenshtein DFA to the term dictionary's automaton interface.
struct LevenshteinDfa(levenshtein_automata::DFA);

impl tantivy_fst::Automaton for LevenshteinDfa {
    type State = u32;

    fn start(&self) -> u32 {
        self.0.initial_state()
    }

    fn is_match(&self, state: &u32) -> bool {
        matches!(self.0.distance(*state), Distance::Exact(_))
    }

    fn can_match(&self, state: &u32) -> bool {
        *state != levenshtein_automata::SINK_STATE
    }

    fn accept(&self, state: &u32, byte: u8) -> u32 {
        self.0.transition(*state, byte)
    }
}

impl LexicalIndex {
    /// Opens the index in `dir`, creating it (or recreating it if its schema is foreign).
    pub fn open(dir: &Path, synonym_groups: &[Vec<String>]) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
        let (schema, fields) = schema();
        let directory = MmapDirectory::open(dir).map_err(|e| crate::Error::Lexical(e.into()))?;
        let index = match Index::open_or_create(directory, schema.clone()) {
            Ok(index) => index,
            Err(tantivy::TantivyError::SchemaError(message)) => {
                tracing::warn!(%message, "lexical index has another schema; rebuilding it");
                std::fs::remove_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
                std::fs::create_dir_all(dir).map_err(|e| crate::Error::io(dir, e))?;
                let directory = MmapDirectory::open(dir).map_err(|e| crate::Error::Lexical(e.into()))?;
                Index::create(directory, schema, tantivy::IndexSettings::default())?
            }
            Err(other) => return Err(other.into()),
        };
        index.tokenizers().register(ANALYZER, analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let mut lexical = LexicalIndex {
            index,
            reader,
            writer: Mutex::new(None),
            fields,
            analyzer: analyzer(),
            synonyms: HashMap::new(),
        };
        for group in synonym_groups {
            let stems: Vec<String> = group.iter().flat_map(|word| lexical.query_terms(word)).collect();
            for stem in &stems {
                let others = lexical.synonyms.entry(stem.clone()).or_default();
                others.extend(stems.iter().filter(|other| *other != stem).cloned());
                others.sort();
                others.dedup();
            }
        }
        Ok(lexical)
    }

    fn with_writer<T>(&self, f: impl FnOnce(&mut IndexWriter) -> Result<T>) -> Result<T> {
        let mut guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            *guard = Some(self.index.writer_with_num_threads(1, WRITER_MEMORY_BYTES)?);
        }
        match guard.as_mut() {
            Some(writer) => f(writer),
            None => unreachable!("writer was just created"),
        }
    }

    /// Queues a chunk for indexing (visible after [`LexicalIndex::commit`]).
    pub fn add(&self, doc: &LexicalDoc<'_>) -> Result<()> {
        let f = self.fields;
        let mut document = TantivyDocument::default();
        document.add_text(f.chunk_id, doc.chunk_id);
        document.add_text(f.file_key, doc.file_key);
        document.add_text(f.doc_type, doc.doc_type);
        document.add_text(f.document, doc.document);
        document.add_text(f.title, doc.title);
        document.add_text(f.section, doc.section);
        document.add_text(f.body, doc.text);
        self.with_writer(|writer| {
            writer.add_document(document)?;
            Ok(())
        })
    }

    /// Queues the removal of every chunk of a file (applies to chunks added before this call).
    pub fn delete_file(&self, file_key: &str) -> Result<()> {
        let term = Term::from_field_text(self.fields.file_key, file_key);
        self.with_writer(|writer| {
            writer.delete_term(term);
            Ok(())
        })
    }

    /// Removes everything (after the next commit).
    pub fn clear(&self) -> Result<()> {
        self.with_writer(|writer| {
            writer.delete_all_documents()?;
            Ok(())
        })
    }

    /// Commits queued changes, makes them visible to searches and releases the writer.
    pub fn commit(&self) -> Result<()> {
        let mut guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(mut writer) = guard.take() {
            writer.commit()?;
            writer.wait_merging_threads()?;
            self.reader.reload()?;
        }
        Ok(())
    }

    /// Drops queued changes.
    pub fn rollback(&self) {
        let mut guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        guard.take();
    }

    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Analyzes a query into distinct index terms (stemmed, stop words removed).
    pub fn query_terms(&self, query: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(query);
        let mut terms: Vec<String> = Vec::new();
        while stream.advance() {
            let text = &stream.token().text;
            if !terms.iter().any(|t| t == text) {
                terms.push(text.clone());
            }
            if terms.len() >= MAX_QUERY_TERMS {
                break;
            }
        }
        terms
    }

    /// How much of a question `text` speaks to: the share of the question's terms, each
    /// weighted by its rarity in the index (IDF), that appear in `text` as written, as a
    /// synonym, or misspelt (edit distance 1 for words of 5 letters or more). A word the index
    /// has never seen weighs the most: "student discount" against any passage of a pack that
    /// never mentions either scores 0. Chat words ("guys", "pls") and numbers do not count.
    /// `None` when the question has no countable term.
    pub fn coverage(&self, question: &str, text: &str) -> Result<Option<f32>> {
        Ok(self.weighed_terms(question)?.coverage(&self.text_terms(text)))
    }

    /// The analyzed terms of a text, for [`WeighedTerms::coverage`].
    pub fn text_terms(&self, text: &str) -> HashSet<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut terms = HashSet::new();
        while stream.advance() {
            terms.insert(stream.token().text.clone());
        }
        terms
    }

    /// The question's countable terms with their rarity weights, computed once per question.
    pub fn weighed_terms(&self, question: &str) -> Result<WeighedTerms> {
        let searcher = self.reader.searcher();
        let n_docs = searcher.num_docs().max(1) as f32;
        let mut terms = Vec::new();
        for term in self.query_terms(question) {
            if CHAT_WORDS.contains(&term.as_str()) || term.len() < 2 || term.chars().any(|c| c.is_ascii_digit()) {
                continue;
            }
            let mut df = 0;
            for field in [self.fields.body, self.fields.section, self.fields.title] {
                df += searcher.doc_freq(&Term::from_field_text(field, &term))?;
            }
            let term = if df == 0 && !self.synonyms.contains_key(&term) {
                match self.correct(&searcher, &term)? {
                    Some(corrected) => {
                        df = searcher.doc_freq(&Term::from_field_text(self.fields.body, &corrected))?;
                        corrected
                    }
                    None => term,
                }
            } else {
                term
            };
            let idf = (1.0 + n_docs / (df as f32 + 0.5)).ln();
            let synonyms = self.synonyms.get(&term).cloned().unwrap_or_default();
            terms.push(WeighedTerm { term, idf, synonyms });
        }
        Ok(WeighedTerms { terms })
    }

    /// Returns the top `n` chunk ids with their BM25 scores.
    pub fn search(
        &self,
        query: &str,
        n: usize,
        filter: Option<&Filter>,
        boosts: FieldBoosts,
    ) -> Result<Vec<(String, f32)>> {
        let searcher = self.reader.searcher();
        if n == 0 || searcher.num_docs() == 0 {
            return Ok(Vec::new());
        }
        let f = self.fields;
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let query_terms = self.query_terms(query);
        let mut weighted: Vec<(String, f32)> = Vec::new();
        let doc_freq = |text: &str| -> Result<u64> {
            let mut total = 0;
            for field in [f.body, f.section, f.title] {
                total += searcher.doc_freq(&Term::from_field_text(field, text))?;
            }
            Ok(total)
        };
        for term_text in &query_terms {
            // Unknown words are corrected to the closest indexed word, unless they have synonyms.
            let (term_text, weight) = if doc_freq(term_text)? > 0 || self.synonyms.contains_key(term_text) {
                (term_text.clone(), 1.0)
            } else {
                match self.correct(&searcher, term_text)? {
                    Some(corrected) => (corrected, CORRECTED_TERM_BOOST),
                    None => continue,
                }
            };
            for synonym in self.synonyms.get(&term_text).into_iter().flatten() {
                if !query_terms.contains(synonym) && !weighted.iter().any(|(t, _)| t == synonym) {
                    weighted.push((synonym.clone(), weight * SYNONYM_BOOST));
                }
            }
            match weighted.iter_mut().find(|(t, _)| *t == term_text) {
                Some(existing) => existing.1 = existing.1.max(weight),
                None => weighted.push((term_text, weight)),
            }
        }
        for (text, weight) in weighted {
            for (field, boost) in [(f.body, 1.0), (f.section, boosts.section), (f.title, boosts.title)] {
                let term_query = TermQuery::new(Term::from_field_text(field, &text), IndexRecordOption::WithFreqs);
                clauses.push((Occur::Should, Box::new(BoostQuery::new(Box::new(term_query), boost * weight))));
            }
        }
        if clauses.is_empty() {
            return Ok(Vec::new());
        }
        let text_query: Box<dyn Query> = Box::new(BooleanQuery::new(clauses));
        let query: Box<dyn Query> = match filter.and_then(|filter| self.filter_query(filter)) {
            Some(filter_query) => Box::new(BooleanQuery::new(vec![
                (Occur::Must, text_query),
                (Occur::Must, Box::new(ConstScoreQuery::new(filter_query, 0.0))),
            ])),
            None => text_query,
        };
        let top = searcher.search(&query, &TopDocs::with_limit(n))?;
        // Chunk ids come from the fast-field column: much cheaper than the document store.
        let mut columns: HashMap<u32, tantivy::columnar::StrColumn> = HashMap::new();
        let mut hits = Vec::with_capacity(top.len());
        let mut chunk_id = String::new();
        for (score, address) in top {
            let column = match columns.entry(address.segment_ord) {
                std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
                std::collections::hash_map::Entry::Vacant(entry) => {
                    let reader = searcher.segment_reader(address.segment_ord);
                    match reader.fast_fields().str("chunk_id")? {
                        Some(column) => entry.insert(column),
                        None => continue,
                    }
                }
            };
            let Some(ord) = column.term_ords(address.doc_id).next() else { continue };
            chunk_id.clear();
            if column.ord_to_str(ord, &mut chunk_id).map_err(|e| crate::Error::Lexical(e.into()))? {
                hits.push((chunk_id.clone(), score));
            }
        }
        Ok(hits)
    }

    fn filter_query(&self, filter: &Filter) -> Option<Box<dyn Query>> {
        let f = self.fields;
        let union = |field: Field, values: &[String]| -> Option<Box<dyn Query>> {
            if values.is_empty() {
                return None;
            }
            let queries: Vec<Box<dyn Query>> = values
                .iter()
                .map(|v| {
                    Box::new(TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic))
                        as Box<dyn Query>
                })
                .collect();
            Some(Box::new(BooleanQuery::union(queries)))
        };
        let parts: Vec<Box<dyn Query>> = [union(f.doc_type, &filter.doc_types), union(f.document, &filter.documents)]
            .into_iter()
            .flatten()
            .collect();
        match parts.len() {
            0 => None,
            _ => Some(Box::new(BooleanQuery::intersection(parts))),
        }
    }

    /// Finds the most frequent indexed term within edit distance 1 (2 for long terms).
    fn correct(&self, searcher: &tantivy::Searcher, term: &str) -> Result<Option<String>> {
        let n_chars = term.chars().count();
        if n_chars < 4 || term.chars().any(|c| c.is_ascii_digit()) {
            return Ok(None);
        }
        let distance = if n_chars >= 8 { 2 } else { 1 };
        let mut candidates: HashMap<Vec<u8>, u64> = HashMap::new();
        for field in [self.fields.body, self.fields.section] {
            for segment in searcher.segment_readers() {
                let inverted = segment.inverted_index(field)?;
                let dfa = LevenshteinDfa(fuzzy_builder(distance).build_dfa(term));
                let mut stream =
                    inverted.terms().search(dfa).into_stream().map_err(|e| crate::Error::Lexical(e.into()))?;
                while stream.advance() {
                    *candidates.entry(stream.key().to_vec()).or_default() += u64::from(stream.value().doc_freq);
                }
            }
        }
        let best = candidates
            .into_iter()
            .max_by(|(a_term, a_freq), (b_term, b_freq)| a_freq.cmp(b_freq).then_with(|| b_term.cmp(a_term)));
        Ok(best.and_then(|(bytes, _)| String::from_utf8(bytes).ok()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_with(docs: &[(&str, &str, &str)]) -> (tempfile::TempDir, LexicalIndex) {
        let dir = tempfile::tempdir().unwrap();
        let index = LexicalIndex::open(dir.path(), &[vec!["fee".to_string(), "penalty".to_string()]]).unwrap();
        for (idx, (doc_type, section, text)) in docs.iter().enumerate() {
            let chunk_id = format!("c{idx}");
            index
                .add(&LexicalDoc {
                    chunk_id: &chunk_id,
                    file_key: &format!("/f{idx}"),
                    doc_type,
                    document: &format!("f{idx}.md"),
                    title: "",
                    section,
                    text,
                })
                .unwrap();
        }
        index.commit().unwrap();
        (dir, index)
    }

    #[track_caller]
    fn check_top(index: &LexicalIndex, query: &str, filter: Option<&Filter>, expected: &[&str]) {
        let ids: Vec<String> = index
            .search(query, expected.len(), filter, FieldBoosts { section: 1.5, title: 1.0 })
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids, expected, "query: {query}");
    }

    #[test]
    fn stemming_typos_and_filters() {
        let (_dir, index) = index_with(&[
            ("billing", "Late fees", "A late payment fee of $10 is charged."),
            ("roaming", "Roaming zones", "Roaming charges apply in zone 2 when travelling abroad."),
            ("plans", "Plans", "The Basic Plan costs $40 per month."),
        ]);
        check_top(&index, "payments", None, &["c0"]);
        check_top(&index, "penalties", None, &["c0"]);
        check_top(&index, "how do I pay late?", None, &["c0"]);
        check_top(&index, "rooming abroad", None, &["c1"]);
        check_top(&index, "travelled", None, &["c1"]);
        check_top(&index, "charges", Some(&Filter::doc_type("roaming")), &["c1"]);
        check_top(&index, "charges", Some(&Filter::doc_type("plans")), &[]);
        check_top(&index, "the of and", None, &[]);
        check_top(&index, "", None, &[]);
    }

    #[test]
    fn delete_file_removes_its_chunks() {
        let (_dir, index) = index_with(&[("a", "s", "alpha words"), ("a", "s", "beta words")]);
        index.delete_file("/f0").unwrap();
        index.commit().unwrap();
        assert_eq!(index.num_docs(), 1);
        check_top(&index, "alpha", None, &[]);
    }

    #[test]
    fn coverage_weighs_rare_and_unknown_words() {
        let (_dir, index) = index_with(&[
            ("a", "Fees", "The late fee is $10 per overdue bill."),
            ("b", "Roaming", "Roaming in Zone 2 costs $0.25 per minute."),
            ("c", "Plans", "The Basic Plan includes 5 GB of data."),
        ]);
        let full =
            index.coverage("how much is the late fee?", "The late fee is $10 per overdue bill.").unwrap().unwrap();
        assert!(full > 0.99, "{full}");
        let typo = index
            .coverage("whats the late fee on an overdeu bill", "The late fee is $10 per overdue bill.")
            .unwrap()
            .unwrap();
        assert!(typo > 0.99, "{typo}");
        let none =
            index.coverage("is there a student discount", "The late fee is $10 per overdue bill.").unwrap().unwrap();
        assert!(none < 0.01, "{none}");
        assert_eq!(index.coverage("u guys ok?", "anything").unwrap(), None);
        assert!(
            within_one_edit("balance", "balence")
                && within_one_edit("data", "date")
                && !within_one_edit("fee", "free!!")
        );
    }

    #[test]
    fn hostile_queries_do_not_fail() {
        let (_dir, index) = index_with(&[("a", "s", "text")]);
        for query in ["AND OR NOT", "title:x \"unclosed", "((((", "*", &"word ".repeat(10_000), "🙂🙂", "\0"] {
            index.search(query, 5, None, FieldBoosts { section: 1.5, title: 1.0 }).unwrap();
        }
    }
}
