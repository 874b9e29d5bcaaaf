//! The engine's settings, as plain structs: `server::config` nests them in its `Settings`
//! tree (`[dialogue]`, `[console]`, `[knowledge]`), and nothing here reads files or the
//! environment.

use accounts::Secret;
use accounts::config::scalar_as_string;
use serde::{Deserialize, Serialize};

/// `[dialogue]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DialogueSettings {
    /// Most new tokens the chat model may generate for one reply.
    pub max_new_tokens: usize,
    /// Passages retrieved for a knowledge answer.
    pub top_k: usize,
    /// Least cosine similarity of the best passage for a knowledge answer; below it the
    /// assistant says it does not know instead of quoting something unrelated.
    pub min_similarity: f32,
    /// The operator's name in replies.
    #[serde(deserialize_with = "scalar_as_string")]
    pub operator_name: String,
    /// Let the chat model rephrase knowledge answers (each generated sentence is checked against
    /// the passages, and the documents' own sentences are used where one fails). Off by default:
    /// on the blind dev questions the rephrased answers were right less often than the
    /// documents' own sentences (82 of 94 against 88 of 94) and one contradiction passed the
    /// check (see BENCHMARKS.md).
    pub rephrase_answers: bool,
}

impl Default for DialogueSettings {
    fn default() -> Self {
        Self {
            max_new_tokens: 96,
            top_k: 5,
            min_similarity: 0.3,
            operator_name: "Kestrel Mobile".into(),
            rephrase_answers: false,
        }
    }
}

/// `[console]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// Session lifetime in minutes.
    pub session_minutes: u64,
    /// Mark session cookies `Secure` (set when served behind TLS).
    pub secure_cookies: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self { session_minutes: 8 * 60, secure_cookies: false }
    }
}

/// `[knowledge]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Folders ingested (incrementally) at start; `demo` is the built-in telco pack.
    pub dirs: Vec<String>,
    /// `embedded` (default) or `qdrant`.
    #[serde(deserialize_with = "scalar_as_string")]
    pub backend: String,
    pub qdrant: QdrantSettings,
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        Self {
            dirs: vec![crate::retrieval::DEMO_PACK.into()],
            backend: "embedded".into(),
            qdrant: QdrantSettings::default(),
        }
    }
}

/// `[knowledge.qdrant]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QdrantSettings {
    #[serde(deserialize_with = "scalar_as_string")]
    pub url: String,
    pub api_key: Secret,
    #[serde(deserialize_with = "scalar_as_string")]
    pub collection: String,
    /// How often (seconds) an instance checks whether another one changed the collection, and
    /// reloads its copy when it did; 0 checks only at start.
    pub refresh_secs: u64,
}

impl Default for QdrantSettings {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:6334".into(),
            api_key: Secret::default(),
            collection: "switchboard".into(),
            refresh_secs: 10,
        }
    }
}
