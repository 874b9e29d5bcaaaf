//! A `tokenizers::Tokenizer` assembled from GGUF metadata, plus the exact bytes of every token
//! for incremental decoding.
//!
//! GGUF chat models carry their tokenizer in the metadata (`tokenizer.ggml.*`); there is no
//! `tokenizer.json`. For byte-level BPE models (`tokenizer.ggml.model = "gpt2"`) the tokenizer is:
//! the BPE vocabulary and merges, a pre-tokenizer chosen by `tokenizer.ggml.pre` (SmolLM's
//! `smollm` splits every digit, then applies the GPT-2 byte-level regex), the byte-level decoder,
//! and every control token registered as a special added token. For the default model this
//! matches llama.cpp's token ids, ChatML prompts included (see `models.md`).

use std::collections::HashMap;

use candle_core::quantized::gguf_file;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

use crate::{Error, Result};

/// `llama_token_type` values used in `tokenizer.ggml.token_type`.
const TOKEN_TYPE_NORMAL: i64 = 1;
const TOKEN_TYPE_CONTROL: i64 = 3;
const TOKEN_TYPE_USER_DEFINED: i64 = 4;
const TOKEN_TYPE_UNUSED: i64 = 5;
const TOKEN_TYPE_BYTE: i64 = 6;

const REGEX_LLAMA3: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const REGEX_QWEN2: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// What a GGUF says about its tokenizer, plus the tokenizers built from it.
pub(crate) struct GgufTokenizer {
    /// Recognises control tokens written as text (`<|im_start|>`): for trusted prompts.
    pub(crate) tokenizer: Tokenizer,
    /// Treats control-token text as plain text: for message contents, so a customer typing
    /// `<|im_start|>system` cannot inject a turn.
    pub(crate) plain: Tokenizer,
    /// The bytes each token stands for (empty for control and unused tokens).
    pub(crate) token_bytes: Vec<Vec<u8>>,
    /// Token text by id (as stored in the GGUF).
    pub(crate) tokens: Vec<String>,
    pub(crate) bos_id: Option<u32>,
    pub(crate) eos_id: Option<u32>,
    pub(crate) eot_id: Option<u32>,
    pub(crate) add_bos: bool,
    pub(crate) chat_template: Option<String>,
}

impl GgufTokenizer {
    /// Id of a token given its exact text.
    pub(crate) fn token_id(&self, text: &str) -> Option<u32> {
        self.tokenizer.token_to_id(text)
    }
}

fn metadata_u32(ct: &gguf_file::Content, key: &str) -> Option<u32> {
    let value = ct.metadata.get(key)?;
    value.to_u64().ok().map(|v| v as u32).or_else(|| value.to_i32().ok().map(|v| v as u32))
}

fn value_to_i64(value: &gguf_file::Value) -> Option<i64> {
    use gguf_file::Value;
    Some(match value {
        Value::U8(v) => i64::from(*v),
        Value::I8(v) => i64::from(*v),
        Value::U16(v) => i64::from(*v),
        Value::I16(v) => i64::from(*v),
        Value::U32(v) => i64::from(*v),
        Value::I32(v) => i64::from(*v),
        Value::U64(v) => *v as i64,
        Value::I64(v) => *v,
        _ => return None,
    })
}

fn string_array(ct: &gguf_file::Content, key: &str) -> std::result::Result<Vec<String>, String> {
    let value = ct.metadata.get(key).ok_or_else(|| format!("missing metadata key {key}"))?;
    let array = value.to_vec().map_err(|_| format!("{key} is not an array"))?;
    array.iter().map(|item| item.to_string().cloned().map_err(|_| format!("{key} holds a non-string"))).collect()
}

/// GPT-2's byte-to-unicode table inverted: the character a byte-level BPE token uses for each byte.
fn unicode_to_byte() -> HashMap<char, u8> {
    let mut printable: Vec<u32> = (u32::from('!')..=u32::from('~')).collect();
    printable.extend(u32::from('¡')..=u32::from('¬'));
    printable.extend(u32::from('®')..=u32::from('ÿ'));
    let mut table = HashMap::with_capacity(256);
    let mut n_extra = 0;
    for byte in 0..=255u32 {
        let ch = if printable.contains(&byte) {
            byte
        } else {
            n_extra += 1;
            255 + n_extra
        };
        table.insert(char::from_u32(ch).expect("valid char"), byte as u8);
    }
    table
}

/// `<0x0A>`-style byte tokens (SentencePiece byte fallback).
fn parse_byte_token(token: &str) -> Option<u8> {
    let hex = token.strip_prefix("<0x")?.strip_suffix('>')?;
    u8::from_str_radix(hex, 16).ok()
}

fn pre_tokenizer(pre: &str) -> Result<PreTokenizerWrapper> {
    let split = |regex: &str| -> Result<PreTokenizerWrapper> {
        let split = Split::new(SplitPattern::Regex(regex.to_owned()), SplitDelimiterBehavior::Isolated, false)
            .map_err(Error::tokenizer)?;
        Ok(split.into())
    };
    Ok(match pre {
        // SmolLM / StarCoder style: every digit on its own, then GPT-2 byte level.
        "smollm" | "starcoder" | "refact" => {
            Sequence::new(vec![Digits::new(true).into(), ByteLevel::new(false, true, true).into()]).into()
        }
        "llama3" | "llama-bpe" | "smaug-bpe" => {
            Sequence::new(vec![split(REGEX_LLAMA3)?, ByteLevel::new(false, true, false).into()]).into()
        }
        "qwen2" => Sequence::new(vec![split(REGEX_QWEN2)?, ByteLevel::new(false, true, false).into()]).into(),
        other => {
            if other != "gpt2" && other != "default" {
                tracing::warn!(pre = other, "unknown tokenizer.ggml.pre, using the GPT-2 pre-tokenizer");
            }
            ByteLevel::new(false, true, true).into()
        }
    })
}

/// Builds the tokenizer of a GGUF model. Errors are plain strings; the caller adds the path.
pub(crate) fn from_gguf(ct: &gguf_file::Content) -> std::result::Result<GgufTokenizer, String> {
    let model = ct
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|value| value.to_string().ok())
        .ok_or("missing metadata key tokenizer.ggml.model")?;
    if model != "gpt2" {
        return Err(format!(
            "tokenizer model {model:?} is not supported (only byte-level BPE, tokenizer.ggml.model = \"gpt2\")"
        ));
    }
    let tokens = string_array(ct, "tokenizer.ggml.tokens")?;
    if tokens.is_empty() {
        return Err("tokenizer.ggml.tokens is empty".to_owned());
    }
    let token_types: Vec<i64> = match ct.metadata.get("tokenizer.ggml.token_type") {
        Some(value) => value
            .to_vec()
            .map_err(|_| "tokenizer.ggml.token_type is not an array")?
            .iter()
            .map(|item| value_to_i64(item).unwrap_or(TOKEN_TYPE_NORMAL))
            .collect(),
        None => vec![TOKEN_TYPE_NORMAL; tokens.len()],
    };
    let merges = string_array(ct, "tokenizer.ggml.merges")?
        .into_iter()
        .map(|merge| merge.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect::<Option<Vec<_>>>()
        .ok_or("tokenizer.ggml.merges has an entry without a space")?;

    let vocab: Vocab = tokens.iter().enumerate().map(|(id, token)| (token.clone(), id as u32)).collect();
    let bpe = BPE::builder().vocab_and_merges(vocab, merges).build().map_err(|err| err.to_string())?;
    let mut tokenizer = Tokenizer::new(bpe);
    let pre =
        ct.metadata.get("tokenizer.ggml.pre").and_then(|value| value.to_string().ok()).map_or("gpt2", String::as_str);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer(pre).map_err(|err| err.to_string())?));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let specials: Vec<AddedToken> = tokens
        .iter()
        .zip(&token_types)
        .filter(|(_, kind)| matches!(**kind, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        .map(|(token, kind)| AddedToken::from(token.clone(), *kind == TOKEN_TYPE_CONTROL))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|err| err.to_string())?;
    let mut plain = tokenizer.clone();
    plain.set_encode_special_tokens(true);

    let to_byte = unicode_to_byte();
    let token_bytes = tokens
        .iter()
        .zip(&token_types)
        .map(|(token, kind)| match *kind {
            TOKEN_TYPE_CONTROL | TOKEN_TYPE_UNUSED => Vec::new(),
            TOKEN_TYPE_USER_DEFINED => token.as_bytes().to_vec(),
            TOKEN_TYPE_BYTE => parse_byte_token(token).map(|byte| vec![byte]).unwrap_or_default(),
            _ => {
                let mut bytes = Vec::with_capacity(token.len());
                for ch in token.chars() {
                    match to_byte.get(&ch) {
                        Some(byte) => bytes.push(*byte),
                        None => bytes.extend_from_slice(ch.encode_utf8(&mut [0; 4]).as_bytes()),
                    }
                }
                bytes
            }
        })
        .collect();

    let valid = |id: Option<u32>| id.filter(|id| (*id as usize) < tokens.len());
    Ok(GgufTokenizer {
        tokenizer,
        plain,
        token_bytes,
        bos_id: valid(metadata_u32(ct, "tokenizer.ggml.bos_token_id")),
        eos_id: valid(metadata_u32(ct, "tokenizer.ggml.eos_token_id")),
        eot_id: valid(metadata_u32(ct, "tokenizer.ggml.eot_token_id")),
        add_bos: ct
            .metadata
            .get("tokenizer.ggml.add_bos_token")
            .and_then(|value| value.to_bool().ok())
            .unwrap_or(false),
        chat_template: ct.metadata.get("tokenizer.chat_template").and_then(|value| value.to_string().ok()).cloned(),
        tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_table_covers_all_bytes_once() {
        let table = unicode_to_byte();
        assert_eq!(table.len(), 256);
        let mut bytes: Vec<u8> = table.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        assert_eq!(table[&'Ġ'], b' ');
        assert_eq!(table[&'Ċ'], b'\n');
        assert_eq!(table[&'a'], b'a');
    }

    #[test]
    fn byte_tokens_parse() {
        assert_eq!(parse_byte_token("<0x0A>"), Some(b'\n'));
        assert_eq!(parse_byte_token("<0xFF>"), Some(255));
        assert_eq!(parse_byte_token("<0xZZ>"), None);
        assert_eq!(parse_byte_token("hello"), None);
    }
}
