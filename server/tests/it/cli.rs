//! The `bench` commands run as a user runs them (the built binary, real models), and refuse bad
//! input with exit status 2 and a message naming the problem.

use std::path::Path;
use std::process::{Command, Output};

const CHATML_PROMPT: &str = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nHow much is the cheapest plan?<|im_end|>\n<|im_start|>assistant\n";

fn switchboard(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .expect("the switchboard binary runs")
}

#[track_caller]
fn assert_bad_input(output: &Output, mentions: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.to_lowercase().contains(&mentions.to_lowercase()), "expected {mentions:?} in: {stderr}");
    assert!(output.stdout.is_empty(), "nothing on stdout: {}", String::from_utf8_lossy(&output.stdout));
}

#[track_caller]
fn json_line(output: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stderr: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|error| panic!("{error}: {stdout}"))
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn bench_generate_reports_speeds_and_memory_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let prompt = write(dir.path(), "prompt.txt", CHATML_PROMPT.as_bytes());
    let output =
        switchboard(dir.path(), &["bench", "generate", "--prompt-file", &prompt, "--max-tokens", "3", "--json"]);
    let result = json_line(&output);
    assert_eq!(result["new_tokens"], 3, "{result}");
    assert!(result["prompt_tokens"].as_u64().is_some_and(|n| n > 10), "{result}");
    for key in ["prompt_tokens_per_s", "ttft_ms", "decode_tokens_per_s", "peak_rss_mb"] {
        assert!(result[key].as_f64().is_some_and(|value| value > 0.0), "{key}: {result}");
    }
}

#[test]
fn bench_generate_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let prompt = write(data, "prompt.txt", CHATML_PROMPT.as_bytes());
    let generate = |args: &[&str]| switchboard(data, &[&["bench", "generate"], args].concat());
    assert_bad_input(&generate(&["--prompt-file", &prompt, "--max-tokens", "0"]), "--max-tokens");
    assert_bad_input(&generate(&["--prompt-file", &format!("{prompt}.missing")]), "cannot read");
    assert_bad_input(&generate(&["--prompt-file", &write(data, "empty.txt", b" \n\t\n")]), "empty");
    assert_bad_input(&generate(&["--prompt-file", &write(data, "latin1.txt", b"caf\xe9 \xff\xfe")]), "cannot read");
    // More tokens than the model's context: refused before any work, with the sizes.
    let huge = "hello ".repeat(10_000);
    assert_bad_input(
        &generate(&["--prompt-file", &write(data, "huge.txt", huge.as_bytes()), "--max-tokens", "1"]),
        "context",
    );
    // Not a number: the argument parser's own message.
    let output = generate(&["--max-tokens", "many"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--max-tokens"));
}

#[test]
fn bench_embed_reports_throughput_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let sentences =
        write(data, "sentences.txt", "how do I pay my bill\n\nroaming in France\n  \nmy data is slow\n".as_bytes());
    let result =
        json_line(&switchboard(data, &["bench", "embed", "--sentences", &sentences, "--batch", "2", "--json"]));
    assert_eq!(result["n"], 3, "blank lines are skipped: {result}");
    assert!(result["sentences_per_s"].as_f64().is_some_and(|value| value > 0.0), "{result}");

    let embed = |args: &[&str]| switchboard(data, &[&["bench", "embed"], args].concat());
    assert_bad_input(&embed(&["--sentences", &sentences, "--batch", "0"]), "--batch");
    assert_bad_input(&embed(&["--sentences", &format!("{sentences}.missing")]), "cannot read");
    assert_bad_input(&embed(&["--sentences", &write(data, "blank.txt", b"\n \n")]), "no sentences");
    assert_bad_input(&embed(&["--sentences", &write(data, "binary.txt", b"\x00\xff\xfe\x80")]), "cannot read");
}

#[test]
fn bench_turns_refuses_zero_rounds() {
    let dir = tempfile::tempdir().unwrap();
    assert_bad_input(&switchboard(dir.path(), &["bench", "turns", "--rounds", "0"]), "--rounds");
}
