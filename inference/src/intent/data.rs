//! Intent training and test data: YAML (`intents: [{name, examples: [...]}]`, the shape Rasa
//! users know, also with Rasa's `examples: |` block of `- ` lines), CSV (a header row, then
//! `text,label`; the column names do not matter) and CLINC150 JSON.
//!
//! Every reader reports bad input with the file name and, where it has one, the line: an empty
//! file, an intent without examples, a CSV row without a text or label, bytes that are not UTF-8.
//! The label `oos` (CLINC's) or `out_of_scope` marks out-of-scope examples.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::{IntentError, Result};

/// The label of out-of-scope examples and predictions.
pub const OUT_OF_SCOPE: &str = "out_of_scope";

/// Files larger than this are refused (bounds memory on hostile input).
pub const MAX_DATA_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// A file format of intent examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataFormat {
    Yaml,
    Csv,
    Clinc,
}

impl FromStr for DataFormat {
    type Err = String;

    fn from_str(name: &str) -> std::result::Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Ok(Self::Yaml),
            "csv" => Ok(Self::Csv),
            "clinc" | "clinc150" | "json" => Ok(Self::Clinc),
            other => Err(format!("unknown intent data format {other:?} (expected yaml, csv or clinc)")),
        }
    }
}

impl DataFormat {
    /// Guesses the format from the file extension (`.yaml`/`.yml`, `.csv`, `.json`).
    pub fn from_path(path: &Path) -> Option<Self> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "yaml" | "yml" => Some(Self::Yaml),
            "csv" | "tsv" => Some(Self::Csv),
            "json" => Some(Self::Clinc),
            _ => None,
        }
    }
}

/// Which part of a data set to read: CLINC files hold both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// CLINC: `train` + `oos_train`.
    Train,
    /// CLINC: `test` + `oos_test` when present, else `val` + `oos_val`.
    Test,
}

/// One labelled text.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Example {
    pub text: String,
    /// An intent name, or [`OUT_OF_SCOPE`].
    pub label: String,
}

/// Labelled examples read from one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntentDataset {
    pub examples: Vec<Example>,
}

impl IntentDataset {
    /// The in-scope intent names, sorted.
    pub fn intent_names(&self) -> Vec<String> {
        let mut names: Vec<String> =
            self.examples.iter().filter(|e| e.label != OUT_OF_SCOPE).map(|e| e.label.clone()).collect();
        names.sort();
        names.dedup();
        names
    }

    /// Number of out-of-scope examples.
    pub fn n_out_of_scope(&self) -> usize {
        self.examples.iter().filter(|e| e.label == OUT_OF_SCOPE).count()
    }

    pub fn len(&self) -> usize {
        self.examples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.examples.is_empty()
    }
}

fn bad(path: &Path, line: Option<usize>, message: impl Into<String>) -> IntentError {
    IntentError::BadData { path: PathBuf::from(path), line, message: message.into() }
}

fn canonical_label(label: &str) -> String {
    let label = label.trim();
    if label.eq_ignore_ascii_case("oos") || label.eq_ignore_ascii_case(OUT_OF_SCOPE) {
        OUT_OF_SCOPE.to_string()
    } else {
        label.to_string()
    }
}

/// Decodes UTF-8, reporting the line of the first invalid byte.
pub fn decode_utf8<'b>(bytes: &'b [u8], path: &Path) -> Result<&'b str> {
    std::str::from_utf8(bytes).map_err(|err| {
        let line = bytes[..err.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        bad(path, Some(line), "not valid UTF-8")
    })
}

/// Reads a data file in `format` (or the format its extension names).
pub fn load_dataset(path: &Path, format: Option<DataFormat>, split: Split) -> Result<IntentDataset> {
    let format = match format.or_else(|| DataFormat::from_path(path)) {
        Some(format) => format,
        None => return Err(bad(path, None, "unknown data format: pass --format yaml, csv or clinc")),
    };
    let metadata = std::fs::metadata(path).map_err(|source| IntentError::Io { path: path.to_path_buf(), source })?;
    if metadata.len() > MAX_DATA_FILE_BYTES {
        return Err(bad(path, None, format!("file is larger than {MAX_DATA_FILE_BYTES} bytes")));
    }
    let bytes = std::fs::read(path).map_err(|source| IntentError::Io { path: path.to_path_buf(), source })?;
    parse_dataset(&bytes, path, format, split)
}

/// Parses the bytes of a data file (`path` only names it in errors).
pub fn parse_dataset(bytes: &[u8], path: &Path, format: DataFormat, split: Split) -> Result<IntentDataset> {
    let text = decode_utf8(bytes, path)?;
    if text.trim().is_empty() {
        return Err(bad(path, Some(1), "the file is empty"));
    }
    let dataset = match format {
        DataFormat::Yaml => parse_yaml(text, path)?,
        DataFormat::Csv => parse_csv(text, path)?,
        DataFormat::Clinc => parse_clinc(text, path, split)?,
    };
    if dataset.is_empty() {
        return Err(bad(path, None, "no examples"));
    }
    if dataset.intent_names().is_empty() {
        return Err(bad(path, None, "no in-scope intent: every example is out of scope"));
    }
    Ok(dataset)
}

#[derive(serde::Deserialize)]
struct YamlFile {
    #[serde(default)]
    intents: Option<Vec<YamlIntent>>,
    /// Rasa's `nlu:` list of `{intent, examples}`.
    #[serde(default)]
    nlu: Option<Vec<YamlIntent>>,
}

#[derive(serde::Deserialize)]
struct YamlIntent {
    #[serde(alias = "intent")]
    name: String,
    #[serde(default)]
    examples: Option<YamlExamples>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum YamlExamples {
    List(Vec<String>),
    /// Rasa: a block of lines each starting with `- `.
    Block(String),
}

/// The 1-based line of the first `name: <name>` (or `intent: <name>`) entry.
fn line_of_intent(text: &str, name: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let line = line.trim_start().trim_start_matches('-').trim_start();
            let value = line.strip_prefix("name:").or_else(|| line.strip_prefix("intent:"));
            value.is_some_and(|v| v.trim().trim_matches(['"', '\'']) == name)
        })
        .map(|idx| idx + 1)
}

fn parse_yaml(text: &str, path: &Path) -> Result<IntentDataset> {
    let file: YamlFile = serde_yaml::from_str(text).map_err(|err| {
        let line = err.location().map(|location| location.line());
        bad(path, line, format!("invalid intent YAML: {err}"))
    })?;
    let Some(intents) = file.intents.or(file.nlu) else {
        return Err(bad(path, Some(1), "expected a top-level `intents:` list"));
    };
    let mut examples = Vec::new();
    for intent in intents {
        let line = line_of_intent(text, &intent.name);
        let label = canonical_label(&intent.name);
        if label.is_empty() {
            return Err(bad(path, line, "an intent has an empty name"));
        }
        let texts: Vec<String> = match intent.examples {
            None => Vec::new(),
            Some(YamlExamples::List(list)) => list,
            Some(YamlExamples::Block(block)) => block
                .lines()
                .map(|l| l.trim())
                .filter(|l| !l.is_empty())
                .map(|l| l.strip_prefix("- ").or_else(|| l.strip_prefix('-')).unwrap_or(l).to_string())
                .collect(),
        };
        let texts: Vec<String> = texts.into_iter().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()).collect();
        if texts.is_empty() {
            return Err(bad(path, line, format!("intent {:?} has no examples", intent.name)));
        }
        examples.extend(texts.into_iter().map(|text| Example { text, label: label.clone() }));
    }
    Ok(IntentDataset { examples })
}

fn parse_csv(text: &str, path: &Path) -> Result<IntentDataset> {
    let delimiter = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("tsv")) { b'\t' } else { b',' };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(true).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let headers = reader.headers().map_err(|err| bad(path, Some(1), format!("invalid CSV header: {err}")))?.clone();
    if headers.len() < 2 {
        return Err(bad(path, Some(1), "the header has fewer than two columns: expected text,label"));
    }
    let mut examples = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|err| {
            let line = err.position().map(|p| p.line() as usize);
            bad(path, line, format!("invalid CSV: {err}"))
        })?;
        let line = record.position().map(|p| p.line() as usize);
        if record.iter().all(|field| field.trim().is_empty()) {
            continue;
        }
        if record.len() < 2 {
            return Err(bad(path, line, "expected two columns, text and label"));
        }
        let text = record[0].trim();
        let label = canonical_label(&record[1]);
        if text.is_empty() {
            return Err(bad(path, line, "the text column is empty"));
        }
        if label.is_empty() {
            return Err(bad(path, line, "the label column is empty"));
        }
        examples.push(Example { text: text.to_string(), label });
    }
    Ok(IntentDataset { examples })
}

fn parse_clinc(text: &str, path: &Path, split: Split) -> Result<IntentDataset> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|err| bad(path, Some(err.line()), format!("invalid CLINC JSON: {err}")))?;
    let Some(object) = value.as_object() else {
        return Err(bad(path, Some(1), "expected a JSON object with `train`, `val`, `test` lists"));
    };
    let keys: &[&str] = match split {
        Split::Train => &["train", "oos_train"],
        Split::Test if object.contains_key("test") => &["test", "oos_test"],
        Split::Test => &["val", "oos_val"],
    };
    if !object.contains_key(keys[0]) {
        return Err(bad(path, None, format!("no `{}` list", keys[0])));
    }
    let mut examples = Vec::new();
    for key in keys {
        let Some(items) = object.get(*key) else { continue };
        let Some(items) = items.as_array() else {
            return Err(bad(path, None, format!("`{key}` is not a list")));
        };
        for (idx, item) in items.iter().enumerate() {
            let pair = item.as_array().filter(|pair| pair.len() >= 2);
            let (Some(text), Some(label)) = (pair.and_then(|p| p[0].as_str()), pair.and_then(|p| p[1].as_str())) else {
                return Err(bad(path, None, format!("item {idx} of `{key}` is not a [text, intent] pair")));
            };
            if text.trim().is_empty() {
                return Err(bad(path, None, format!("item {idx} of `{key}` has an empty text")));
            }
            examples.push(Example { text: text.trim().to_string(), label: canonical_label(label) });
        }
    }
    Ok(IntentDataset { examples })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, format: DataFormat) -> Result<IntentDataset> {
        parse_dataset(text.as_bytes(), Path::new("data.file"), format, Split::Train)
    }

    #[track_caller]
    fn check_error(bytes: &[u8], format: DataFormat, expected: &str) {
        let err = parse_dataset(bytes, Path::new("data.file"), format, Split::Train).unwrap_err();
        assert_eq!(err.to_string(), expected);
    }

    #[test]
    fn yaml_lists_and_rasa_blocks() {
        let dataset = parse(
            "intents:\n  - name: greet\n    examples: [hi, hello]\n  - name: oos\n    examples:\n      - what is the weather\nnlu: []\n",
            DataFormat::Yaml,
        )
        .unwrap();
        assert_eq!(dataset.intent_names(), vec!["greet"]);
        assert_eq!(dataset.n_out_of_scope(), 1);
        let rasa =
            parse("nlu:\n- intent: greet\n  examples: |\n    - hey\n    - hello there\n", DataFormat::Yaml).unwrap();
        assert_eq!(rasa.examples.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), vec!["hey", "hello there"]);
    }

    #[test]
    fn yaml_errors_name_file_and_line() {
        check_error(
            b"intents:\n  - name: greet\n    examples: [hi]\n  - name: bye\n    examples: []\n",
            DataFormat::Yaml,
            "data.file:4: intent \"bye\" has no examples",
        );
        check_error(b"intents:\n  - name: greet\n", DataFormat::Yaml, "data.file:2: intent \"greet\" has no examples");
        check_error(b"", DataFormat::Yaml, "data.file:1: the file is empty");
        check_error(b"  \n\n", DataFormat::Csv, "data.file:1: the file is empty");
        check_error(b"foo: bar\n", DataFormat::Yaml, "data.file:1: expected a top-level `intents:` list");
        check_error(
            b"intents:\n  - name: greet\n    examples: [hi]\n\xff\xfe\n",
            DataFormat::Yaml,
            "data.file:4: not valid UTF-8",
        );
        let err = parse("intents: [\n", DataFormat::Yaml).unwrap_err().to_string();
        assert!(err.starts_with("data.file:2: invalid intent YAML"), "{err}");
        check_error(
            b"intents:\n  - name: oos\n    examples: [weather]\n",
            DataFormat::Yaml,
            "data.file: no in-scope intent: every example is out of scope",
        );
    }

    #[test]
    fn csv_positional_columns() {
        let dataset =
            parse("utterance,intent\nhi there,greet\n\"pay, now\",pay_bill\n\nbye,goodbye\n", DataFormat::Csv).unwrap();
        assert_eq!(dataset.len(), 3);
        assert_eq!(dataset.examples[1], Example { text: "pay, now".to_string(), label: "pay_bill".to_string() });
    }

    #[test]
    fn csv_errors_name_file_and_line() {
        check_error(
            b"text\nhello\n",
            DataFormat::Csv,
            "data.file:1: the header has fewer than two columns: expected text,label",
        );
        check_error(
            b"text,label\nhi,greet\nhello\n",
            DataFormat::Csv,
            "data.file:3: expected two columns, text and label",
        );
        check_error(b"text,label\nhi,greet\n,greet\n", DataFormat::Csv, "data.file:3: the text column is empty");
        check_error(b"text,label\nhi,\n", DataFormat::Csv, "data.file:2: the label column is empty");
        check_error(b"text,label\n", DataFormat::Csv, "data.file: no examples");
        check_error(b"text,label\nhi,greet\nh\xc3(,greet\n", DataFormat::Csv, "data.file:3: not valid UTF-8");
    }

    #[test]
    fn clinc_splits() {
        let json = r#"{"train": [["hi", "greet"]], "oos_train": [["weather?", "oos"]], "val": [["hello", "greet"]], "oos_val": [["x", "oos"]]}"#;
        let train = parse_dataset(json.as_bytes(), Path::new("c.json"), DataFormat::Clinc, Split::Train).unwrap();
        assert_eq!(train.len(), 2);
        assert_eq!(train.n_out_of_scope(), 1);
        let test = parse_dataset(json.as_bytes(), Path::new("c.json"), DataFormat::Clinc, Split::Test).unwrap();
        assert_eq!(test.examples[0].text, "hello");
        let with_test = r#"{"train": [["hi", "greet"]], "val": [["a", "greet"]], "test": [["b", "greet"]]}"#;
        let test = parse_dataset(with_test.as_bytes(), Path::new("c.json"), DataFormat::Clinc, Split::Test).unwrap();
        assert_eq!(test.examples[0].text, "b");
        check_error(
            br#"{"train": [["hi"]]}"#,
            DataFormat::Clinc,
            "data.file: item 0 of `train` is not a [text, intent] pair",
        );
        check_error(br#"{"val": []}"#, DataFormat::Clinc, "data.file: no `train` list");
        check_error(
            b"[1, 2]",
            DataFormat::Clinc,
            "data.file:1: expected a JSON object with `train`, `val`, `test` lists",
        );
    }

    #[test]
    fn formats() {
        assert_eq!("clinc".parse::<DataFormat>(), Ok(DataFormat::Clinc));
        assert!("xml".parse::<DataFormat>().is_err());
        assert_eq!(DataFormat::from_path(Path::new("a/b.YML")), Some(DataFormat::Yaml));
        assert_eq!(DataFormat::from_path(Path::new("a/b")), None);
    }
}
