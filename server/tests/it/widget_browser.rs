//! The chat widget in a real browser: Debian's Chromium driven by playwright-core
//! (`web/e2e/widget.spec.mjs`) against the running server. Needs `/usr/bin/chromium` (Debian's
//! `chromium` package) and Node.js with npm; the npm dependencies are installed with `npm ci` on
//! first use. Screenshots go to `target/test-output/widget/`.

use engine::conversations::EventKind;

use crate::channels::channels_app;
use crate::support::run_browser_spec;

#[test]
fn the_widget_works_in_a_real_browser() {
    let app = channels_app();
    let url = app.app.url("/");
    let (result, output_dir) = run_browser_spec("widget.spec.mjs", &url, "widget", &[], &[]);
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
