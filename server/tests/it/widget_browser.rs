//! The chat widget in a real browser: Debian's Chromium driven by playwright-core
//! (`web/e2e/widget.spec.mjs`) against the running server. Needs `/usr/bin/chromium` (Debian's
//! `chromium` package) and Node.js with npm; the npm dependencies are installed with `npm ci` on
//! first use. Screenshots go to `target/test-output/widget/`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use server::conversations::EventKind;

use crate::channels::channels_app;
use crate::support::{chromium_path, ensure_node_modules, workspace_dir};

#[test]
fn the_widget_works_in_a_real_browser() {
    let chromium = chromium_path();
    let e2e_dir = workspace_dir().join("web/e2e");
    ensure_node_modules(&e2e_dir);
    let output_dir = workspace_dir().join("target/test-output/widget");
    std::fs::create_dir_all(&output_dir).unwrap();
    let app = channels_app();
    let url = app.app.url("/");

    let mut child = Command::new("node")
        .arg(e2e_dir.join("widget.spec.mjs"))
        .arg(&url)
        .arg(&output_dir)
        .env("CHROMIUM_PATH", &chromium)
        .current_dir(&e2e_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running node");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20 * 60) {
            let _ = child.kill();
            panic!("the browser test did not finish in 20 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "the browser test failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}");

    let result: Value = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(|json| serde_json::from_str(json).unwrap())
        .unwrap_or_else(|| panic!("no RESULT line:\n{stdout}"));
    // What the browser saw is what the log says happened.
    let conversation_id = result["conversation_id"].as_str().unwrap();
    let events = app.app.state.conversations.events(conversation_id).unwrap();
    let refuels: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::ActionDone { action, args, .. } if action == "refuel_data" => Some(args.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refuels.len(), 1, "exactly one refuel ran: {refuels:?}");
    assert_eq!(refuels[0]["gb_amount"], 1.0);

    for name in ["widget-demo.png", "widget-confirmation.png"] {
        let bytes = std::fs::read(output_dir.join(name)).unwrap_or_else(|_| panic!("{name} was not saved"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{name} is not a screenshot");
    }
}
