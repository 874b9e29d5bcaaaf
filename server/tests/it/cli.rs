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

/// Runs the binary with `stdin` piped in.
fn switchboard_with_input(data_dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the switchboard binary runs");
    // The command may refuse its arguments and exit before reading: a closed pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn agents_add_reads_the_password_from_stdin_and_refuses_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let add = |args: &[&str], stdin: &[u8]| switchboard_with_input(data, &[&["agents", "add"], args].concat(), stdin);
    assert_bad_input(&add(&["alice"], b""), "8 to 256 characters");
    assert_bad_input(&add(&["alice"], b"short\n"), "8 to 256 characters");
    assert_bad_input(&add(&["alice"], "x".repeat(10_000).as_bytes()), "8 to 256 characters");
    assert_bad_input(&add(&["alice"], b"\xff\xfe not text\n"), "not UTF-8");
    assert_bad_input(&add(&["alice", "--role", "wizard"], b"long enough password\n"), "wizard");
    assert_bad_input(&add(&[""], b"long enough password\n"), "not valid");
    assert_bad_input(&add(&["robert'); DROP TABLE agents;--"], b"long enough password\n"), "not valid");
    let created = add(&["alice", "--role", "supervisor"], b"long enough password\r\n");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    assert!(String::from_utf8_lossy(&created.stdout).contains("alice"));
}

#[test]
fn file_commands_name_the_missing_or_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let missing = dir.path().join("missing");
    let missing = missing.to_str().unwrap();
    let broken = write(dir.path(), "broken.toml", b"[customers\nname = ");
    assert_bad_input(&switchboard(&data, &["ingest", missing]), missing);
    assert_bad_input(&switchboard(&data, &["accounts", "import", missing]), missing);
    assert_bad_input(&switchboard(&data, &["accounts", "import", &broken]), "broken.toml");
    assert_bad_input(&switchboard(&data, &["eval", "retrieval", "--qa", missing]), missing);
    assert_bad_input(&switchboard(&data, &["eval", "scenarios", missing]), missing);
    assert_bad_input(&switchboard(&data, &["--config", missing, "bench", "turns"]), "not found");
    assert_bad_input(&switchboard(&data, &["--config", &broken, "bench", "turns"]), "broken.toml");
}
