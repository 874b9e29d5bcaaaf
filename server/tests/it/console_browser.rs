//! The agent console in a real browser: Debian's Chromium driven by playwright-core
//! (`web/e2e/console.spec.mjs`) against a running server. Needs `/usr/bin/chromium` (Debian's
//! `chromium` package) and Node.js with npm; the npm dependencies of `web/e2e` are installed
//! with `npm ci` on first use. Screenshots go to `target/test-output/console/`.

use accounts::{Actor, CustomerId};
use engine::console::{AgentName, Console, Password, Role};
use engine::conversations::EventKind;
use serde_json::Value;

use crate::support::{TestApp, run_browser_spec, workspace_dir};

const AGENT: &str = "alice";
const PASSWORD: &str = "a browser password";

#[test]
fn an_agent_works_a_transferred_conversation_in_a_real_browser() {
    let output_dir = workspace_dir().join("target/test-output/console");
    for stale in ["console-queue.png", "console-conversation.png", "console-confirmation.png", "console-failure.png"] {
        let _ = std::fs::remove_file(output_dir.join(stale));
    }
    // A server of its own, so the queue holds only what this test does.
    let app = TestApp::spawn();
    let console = Console::open(&app.state.db, &app.state.settings.console).unwrap();
    console.agents().add(&AgentName::parse(AGENT).unwrap(), Role::Agent, &Password::parse(PASSWORD).unwrap()).unwrap();
    let base_url = app.url("");

    let (result, _) =
        run_browser_spec("console.spec.mjs", &base_url, "console", &[AGENT], &[("CONSOLE_PASSWORD", PASSWORD)]);

    // What the browser saw is what the log and the audit log say happened.
    let conversation_id = result["conversation_id"].as_str().unwrap();
    let events = app.state.conversations.events(conversation_id).unwrap();
    let agent_messages: Vec<&str> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::AgentMessage { agent, text } if agent == AGENT => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(agent_messages, vec![result["sent"].as_str().unwrap()]);
    let refuels: Vec<&Value> = events
        .iter()
        .filter_map(|event| match &event.kind {
            EventKind::ActionDone { action, args, .. } if action == "refuel_data" => Some(args),
            _ => None,
        })
        .collect();
    assert_eq!(refuels.len(), 1, "exactly one refuel ran: {refuels:?}");
    assert_eq!(refuels[0]["gb_amount"], 1.0);
    let store = app.state.readiness.engine().unwrap().registry().store().clone();
    let audited = store
        .audit_for_customer(&CustomerId::parse("C2004").unwrap())
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == "refuel_data" && entry.actor == Actor::agent(AGENT))
        .count();
    assert_eq!(audited, 1);
    let header = app.state.conversations.get(conversation_id).unwrap();
    assert_eq!(header.taken_over_by, None, "handed back to the assistant");

    for name in ["console-queue.png", "console-conversation.png", "console-confirmation.png"] {
        let bytes = std::fs::read(output_dir.join(name)).unwrap_or_else(|_| panic!("{name} was not saved"));
        assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{name} is not a screenshot");
    }
}
