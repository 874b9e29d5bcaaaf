//! Fetching and verifying models; damaged model files.

use std::fs;
use std::path::Path;

use inference::{ChatModel, Error, ModelFiles, SentenceEmbedder};

use crate::model_files;

/// A models directory holding copies of the default models, verified and stamped.
fn copied_models_dir() -> (tempfile::TempDir, ModelFiles) {
    let tmp = tempfile::tempdir().unwrap();
    let source = model_files();
    let files = ModelFiles::in_models_dir(tmp.path());
    fs::create_dir_all(&files.encoder_dir).unwrap();
    for name in ["config.json", "tokenizer.json", "model.safetensors"] {
        fs::copy(source.encoder_dir.join(name), files.encoder_dir.join(name)).unwrap();
    }
    fs::create_dir_all(files.chat_gguf.parent().unwrap()).unwrap();
    fs::copy(&source.chat_gguf, &files.chat_gguf).unwrap();
    // Present but unstamped: verified by hashing, no download.
    assert_eq!(inference::ensure_default_models(tmp.path()).unwrap(), files);
    (tmp, files)
}

fn truncate_file(path: &Path, keep: u64) {
    let file = fs::OpenOptions::new().write(true).open(path).unwrap();
    file.set_len(keep).unwrap();
}

#[test]
fn default_models_are_in_the_expected_layout() {
    let files = model_files();
    assert!(files.encoder_dir.join("model.safetensors").is_file());
    assert!(files.encoder_dir.join("tokenizer.json").is_file());
    assert!(files.encoder_dir.join("config.json").is_file());
    assert!(files.chat_gguf.is_file());
    assert!(files.chat_gguf.ends_with("smollm2-135m-instruct/SmolLM2-135M-Instruct.Q4_1.gguf"));
    // A second call is the fast path and returns the same paths.
    assert_eq!(&inference::ensure_default_models(&inference::default_models_dir()).unwrap(), files);
}

#[test]
fn truncated_files_give_errors_naming_them_and_drop_the_stamp() {
    let (tmp, files) = copied_models_dir();
    let gguf_stamp = files.chat_gguf.parent().unwrap().join(".verified");
    let encoder_stamp = files.encoder_dir.join(".verified");
    assert!(gguf_stamp.is_file() && encoder_stamp.is_file());

    truncate_file(&files.chat_gguf, 50_000_000);
    let err = ChatModel::load(&files.chat_gguf).unwrap_err();
    assert!(matches!(err, Error::CorruptModelFile { .. }), "{err}");
    assert!(err.to_string().contains("SmolLM2-135M-Instruct.Q4_1.gguf"), "{err}");
    assert!(!gguf_stamp.exists(), "the next start re-verifies and re-fetches");

    truncate_file(&files.encoder_dir.join("model.safetensors"), 1000);
    let err = SentenceEmbedder::load(&files.encoder_dir).unwrap_err();
    assert!(matches!(err, Error::CorruptModelFile { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");
    assert!(!encoder_stamp.exists());
    drop(tmp);
}

#[test]
fn garbage_files_give_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let gguf = tmp.path().join("model.gguf");
    fs::write(&gguf, b"not a gguf at all").unwrap();
    let err = ChatModel::load(&gguf).unwrap_err();
    assert!(err.to_string().contains("model.gguf"), "{err}");

    let missing = ChatModel::load(&tmp.path().join("missing.gguf")).unwrap_err();
    assert!(matches!(missing, Error::Io { .. }) && missing.to_string().contains("missing.gguf"), "{missing}");

    fs::write(tmp.path().join("config.json"), b"{\"hidden_size\": ").unwrap();
    let err = SentenceEmbedder::load(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("config.json"), "{err}");
}
