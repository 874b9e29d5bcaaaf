//! The WhatsApp webhook with real signed payloads in Meta's shape, against a local stand-in
//! for the Graph API's send-message endpoint.

use std::time::{Duration, Instant};

use engine::conversations::{Channel, EventKind};
use serde_json::{Value, json};
use server::config::Secret;

use crate::channels::{ACCESS_TOKEN, APP_SECRET, ChannelsApp, PHONE_NUMBER_ID, TEMPLATE, VERIFY_TOKEN, channels_app};
use crate::support::client;

const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// A notification with one change carrying `value`.
fn notification(value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"field": "messages", "value": value}]}]
    })
}

fn metadata() -> Value {
    json!({"display_phone_number": "15550783881", "phone_number_id": PHONE_NUMBER_ID})
}

fn text_value(from: &str, id: &str, body: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{"profile": {"name": "Test Customer"}, "wa_id": from}],
        "messages": [{"from": from, "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": body}}]
    })
}

pub(crate) fn text(from: &str, id: &str, body: &str) -> Value {
    notification(text_value(from, id, body))
}

fn button_reply(from: &str, id: &str, reply_id: &str, title: &str) -> Value {
    notification(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{"profile": {"name": "Test Customer"}, "wa_id": from}],
        "messages": [{
            "context": {"from": "15550783881", "id": "wamid.previous"},
            "from": from, "id": id, "timestamp": "1749416390", "type": "interactive",
            "interactive": {"type": "button_reply", "button_reply": {"id": reply_id, "title": title}}
        }]
    }))
}

fn list_reply(from: &str, id: &str, reply_id: &str, title: &str) -> Value {
    notification(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "messages": [{
            "from": from, "id": id, "timestamp": "1749416391", "type": "interactive",
            "interactive": {"type": "list_reply", "list_reply": {"id": reply_id, "title": title, "description": "x"}}
        }]
    }))
}

fn sticker(from: &str, id: &str) -> Value {
    notification(json!({
        "messaging_product": "whatsapp",
        "metadata": metadata(),
        "contacts": [{"profile": {"name": "Test Customer"}, "wa_id": from}],
        "messages": [{
            "from": from, "id": id, "timestamp": "1749416400", "type": "sticker",
            "sticker": {"mime_type": "image/webp", "sha256": "ZmFrZQ==", "id": "1234567890", "animated": false}
        }]
    }))
}

fn statuses(recipient: &str, message_id: &str, states: &[&str]) -> Value {
    let statuses: Vec<Value> = states
        .iter()
        .map(|status| {
            let mut value = json!({
                "id": message_id, "status": status, "timestamp": "1749416500", "recipient_id": recipient,
                "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "service"}},
                "pricing": {"billable": true, "pricing_model": "CBP", "category": "service"}
            });
            if *status == "failed" {
                value["errors"] = json!([{"code": 131047, "title": "Re-engagement message",
                    "message": "Re-engagement message", "error_data": {"details": "more than 24 hours"}}]);
            }
            value
        })
        .collect();
    notification(json!({"messaging_product": "whatsapp", "metadata": metadata(), "statuses": statuses}))
}

/// Posts raw bytes with a signature header (or none); returns status, body and time taken.
fn post_webhook(body: &[u8], signature: Option<&str>) -> (u16, Value, Duration) {
    post_webhook_to(&channels_app().app.url("/webhooks/whatsapp"), body, signature)
}

/// [`post_webhook`] to the webhook at `url`.
fn post_webhook_to(url: &str, body: &[u8], signature: Option<&str>) -> (u16, Value, Duration) {
    let mut request = client().post(url).header("content-type", "application/json").body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("X-Hub-Signature-256", signature);
    }
    let started = Instant::now();
    let response = request.send().expect("POST webhook");
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null), elapsed)
}

/// Posts a notification signed with the app secret, as Meta does.
fn post_signed(notification: &Value) -> (u16, Value, Duration) {
    post_signed_to(&channels_app().app.url("/webhooks/whatsapp"), notification)
}

/// [`post_signed`] to the webhook at `url`.
pub(crate) fn post_signed_to(url: &str, notification: &Value) -> (u16, Value, Duration) {
    let bytes = serde_json::to_vec(notification).unwrap();
    let signature = server::channels::whatsapp::sign(&Secret::new(APP_SECRET), &bytes);
    post_webhook_to(url, &bytes, Some(&signature))
}

#[track_caller]
fn accept(notification: &Value) -> Value {
    let (status, body, _) = post_signed(notification);
    assert_eq!(status, 200, "{body}");
    body
}

fn conversation_events(app: &ChannelsApp, number: &str) -> Vec<EventKind> {
    let Some(conversation) = app.app.state.conversations.find_external(Channel::Whatsapp, number).unwrap() else {
        return Vec::new();
    };
    app.app.state.conversations.events(&conversation.id).unwrap().into_iter().map(|e| e.kind).collect()
}

fn text_body(message: &Value) -> String {
    match message["type"].as_str() {
        Some("text") => message["text"]["body"].as_str().unwrap_or_default().to_string(),
        Some("interactive") => message["interactive"]["body"]["text"].as_str().unwrap_or_default().to_string(),
        _ => String::new(),
    }
}

/// Waits until the worker has nothing left to do for `number` (no new sends for a while).
fn settle(app: &ChannelsApp, number: &str) {
    let mut last = usize::MAX;
    loop {
        std::thread::sleep(Duration::from_millis(1500));
        let now = app.graph.to(number).len();
        if now == last {
            return;
        }
        last = now;
    }
}

#[test]
fn verification_handshake_echoes_the_challenge_only_for_the_right_token() {
    let app = &channels_app().app;
    let get = |query: &str| {
        let response = client().get(app.url(&format!("/webhooks/whatsapp{query}"))).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    let (status, body) = get(&format!("?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"));
    assert_eq!((status, body.as_str()), (200, "1158201444"));
    for query in [
        "?hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444".to_string(),
        format!("?hub.mode=unsubscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1"),
        format!("?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}"),
        format!("?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=%3Cscript%3E%20x"),
        "?hub.mode=subscribe&hub.challenge=1".to_string(),
        String::new(),
    ] {
        let (status, _) = get(&query);
        assert_eq!(status, 403, "{query}");
    }
}

#[test]
fn missing_or_wrong_signatures_are_401_and_nothing_is_processed() {
    let app = channels_app();
    let number = "15550007001";
    let bytes = serde_json::to_vec(&text(number, "wamid.unsigned.1", "pay bill B2002")).unwrap();
    let good = server::channels::whatsapp::sign(&Secret::new(APP_SECRET), &bytes);
    let other_secret = server::channels::whatsapp::sign(&Secret::new("not-the-secret"), &bytes);
    let mut tampered = bytes.clone();
    tampered.extend_from_slice(b" ");
    for (body, signature) in [
        (&bytes, None),
        (&bytes, Some("")),
        (&bytes, Some(other_secret.as_str())),
        (&bytes, Some(&good.replace("sha256=", "sha1=") as &str)),
        (&bytes, Some("sha256=nothex")),
        (&tampered, Some(good.as_str())),
    ] {
        let (status, response, _) = post_webhook(body, signature);
        assert_eq!(status, 401, "{signature:?}: {response}");
        assert_eq!(response["error"]["code"], "unauthorized");
    }
    std::thread::sleep(Duration::from_millis(500));
    assert!(app.app.state.conversations.find_external(Channel::Whatsapp, number).unwrap().is_none());
    assert!(app.graph.to(number).is_empty());
    // The same message, signed, is then processed as new (nothing was stored before).
    let (status, response, _) = post_webhook(&bytes, Some(&good));
    assert_eq!((status, response["n_new"].as_u64()), (200, Some(1)), "{response}");
    app.graph.wait_for(number, 1, REPLY_TIMEOUT);
}

#[test]
fn a_text_message_is_acknowledged_at_once_and_answered() {
    let app = channels_app();
    let number = "15550007002";
    let (status, body, elapsed) = post_signed(&text(number, "wamid.text.1", "How much does the Premium Plan cost?"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["n_new"], 1);
    // The model runs after the acknowledgement: the 200 never waits for it.
    assert!(elapsed < Duration::from_millis(500), "acknowledged after {elapsed:?}");
    let replies = app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    assert_eq!(replies[0]["type"], "text", "{}", replies[0]);
    assert_eq!(replies[0]["to"], number);
    assert!(text_body(&replies[0]).to_lowercase().contains("premium"), "{}", replies[0]);
    let conversation = app.app.state.conversations.find_external(Channel::Whatsapp, number).unwrap().unwrap();
    assert_eq!(conversation.channel, Channel::Whatsapp);
    // The worker logs the delivery once the Graph API has answered the send, just after the
    // stand-in recorded it.
    let delivered = |events: &[EventKind]| {
        events.iter().any(|e| matches!(e, EventKind::Delivery { status, message_id } if status == "accepted" && message_id.starts_with("wamid.standin")))
    };
    let started = Instant::now();
    let mut events = conversation_events(app, number);
    while !delivered(&events) && started.elapsed() < REPLY_TIMEOUT {
        std::thread::sleep(Duration::from_millis(50));
        events = conversation_events(app, number);
    }
    assert!(events.contains(&EventKind::MessageIn { text: "How much does the Premium Plan cost?".into() }));
    assert!(events.iter().any(|e| matches!(e, EventKind::Reply { .. })));
    assert!(delivered(&events), "{events:?}");
    // A second message from the same number continues the same conversation.
    accept(&text(number, "wamid.text.2", "thanks!"));
    app.graph.wait_for(number, 2, REPLY_TIMEOUT);
    let again = app.app.state.conversations.find_external(Channel::Whatsapp, number).unwrap().unwrap();
    assert_eq!(again.id, conversation.id);
    assert!(app.graph.to(number).iter().all(|r| r.shape_error.is_none()));
}

#[test]
fn a_confirmation_gets_reply_buttons_and_a_tap_runs_the_action() {
    let app = channels_app();
    // Mei Tanaka's line: the number identifies her, the change still needs her date of birth.
    let number = "5550102006";
    accept(&text(number, "wamid.roam.1", "I'm travelling next week, please turn on roaming on my line"));
    let mut n_seen = 1;
    let mut replies = app.graph.wait_for(number, n_seen, REPLY_TIMEOUT);
    for step in 0..4 {
        let last = replies.last().unwrap().clone();
        if last["type"] == "interactive" {
            break;
        }
        let asked = text_body(&last).to_lowercase();
        assert!(asked.contains("date of birth"), "step {step}: unexpected question {last}");
        accept(&text(number, &format!("wamid.roam.dob.{step}"), "30 January 1990"));
        n_seen += 1;
        replies = app.graph.wait_for(number, n_seen, REPLY_TIMEOUT);
    }
    let question = replies.last().unwrap();
    assert_eq!(question["interactive"]["type"], "button", "{question}");
    let buttons = question["interactive"]["action"]["buttons"].as_array().unwrap();
    let titles: Vec<&str> = buttons.iter().map(|b| b["reply"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["Yes", "No"]);
    assert!(text_body(question).to_lowercase().contains("roaming"), "{question}");
    let yes_id = buttons[0]["reply"]["id"].as_str().unwrap();
    accept(&button_reply(number, "wamid.roam.yes", yes_id, "Yes"));
    let replies = app.graph.wait_for(number, n_seen + 1, REPLY_TIMEOUT);
    let done = text_body(replies.last().unwrap());
    assert!(done.to_lowercase().contains("roaming"), "{done}");
    let events = conversation_events(app, number);
    assert!(
        events.iter().any(|e| matches!(e, EventKind::ActionDone { action, .. } if action == "enable_roaming")),
        "{events:?}"
    );
    assert!(events.contains(&EventKind::MessageIn { text: "Yes".into() }), "the tap reaches the engine as Yes");
}

#[test]
fn lines_come_as_buttons_plans_as_a_list_and_taps_are_understood() {
    let app = channels_app();
    // Amara Okafor has two lines: the assistant asks which one, then which plan.
    let number = "5550101001";
    accept(&text(number, "wamid.plans.1", "I want to change my plan"));
    let replies = app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    let lines = &replies[0];
    assert_eq!(lines["interactive"]["type"], "button", "two lines fit in reply buttons: {lines}");
    let buttons = lines["interactive"]["action"]["buttons"].as_array().unwrap();
    assert_eq!(buttons.len(), 2, "{lines}");
    let first_line = buttons[0]["reply"]["title"].as_str().unwrap().to_string();
    accept(&button_reply(number, "wamid.plans.2", buttons[0]["reply"]["id"].as_str().unwrap(), &first_line));
    let replies = app.graph.wait_for(number, 2, REPLY_TIMEOUT);
    let plans = &replies[1];
    assert_eq!(plans["interactive"]["type"], "list", "five plans need a list: {plans}");
    let rows = plans["interactive"]["action"]["sections"][0]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 5);
    let premium = rows.iter().find(|row| row["title"] == "Premium Plan").expect("Premium Plan row");
    assert!(premium["description"].as_str().unwrap().contains("$65.00"), "{premium}");
    accept(&list_reply(number, "wamid.plans.3", premium["id"].as_str().unwrap(), "Premium Plan"));
    let replies = app.graph.wait_for(number, 3, REPLY_TIMEOUT);
    assert!(!text_body(&replies[2]).is_empty());
    let events = conversation_events(app, number);
    assert!(events.contains(&EventKind::MessageIn { text: first_line.clone() }), "{events:?}");
    assert!(events.contains(&EventKind::MessageIn { text: "Premium Plan".into() }), "{events:?}");
    assert!(
        events.iter().any(|e| matches!(e, EventKind::SlotSet { slot, .. } if slot == "plan")),
        "the list reply filled the plan: {events:?}"
    );
    accept(&text(number, "wamid.plans.4", "cancel that"));
    app.graph.wait_for(number, 4, REPLY_TIMEOUT);
}

#[test]
fn a_sticker_gets_a_polite_text_only_reply() {
    let app = channels_app();
    let number = "15550007004";
    accept(&sticker(number, "wamid.sticker.1"));
    let replies = app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    assert_eq!(replies[0]["type"], "text");
    assert!(text_body(&replies[0]).contains("only read text"), "{}", replies[0]);
    let events = conversation_events(app, number);
    assert!(
        !events.iter().any(|e| matches!(e, EventKind::MessageIn { .. })),
        "a sticker is not a message for the engine"
    );
    // The server keeps serving: a text from the same number is answered normally.
    accept(&text(number, "wamid.sticker.2", "What is the late fee?"));
    let replies = app.graph.wait_for(number, 2, REPLY_TIMEOUT);
    assert!(!text_body(&replies[1]).contains("only read text"));
}

#[test]
fn statuses_are_recorded_in_the_conversation() {
    let app = channels_app();
    let number = "15550007005";
    accept(&text(number, "wamid.status.in", "hello"));
    app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    let body = accept(&statuses(number, "wamid.standin.out", &["sent", "delivered", "read", "failed"]));
    assert_eq!(body["n_new"], 4);
    // Redelivered statuses are recorded once.
    let body = accept(&statuses(number, "wamid.standin.out", &["delivered"]));
    assert_eq!((body["n_new"].as_u64(), body["n_duplicates"].as_u64()), (Some(0), Some(1)));
    let started = Instant::now();
    loop {
        let events = conversation_events(app, number);
        let recorded: Vec<String> = events
            .iter()
            .filter_map(|e| match e {
                EventKind::Delivery { message_id, status } if message_id == "wamid.standin.out" => Some(status.clone()),
                _ => None,
            })
            .collect();
        if recorded.len() >= 4 {
            assert_eq!(recorded, ["sent", "delivered", "read", "failed"]);
            assert!(
                events.iter().any(|e| matches!(e, EventKind::Note { text } if text.contains("131047"))),
                "{events:?}"
            );
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "{events:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A status for a number we never talked to is accepted and ignored.
    accept(&statuses("15550007999", "wamid.unknown", &["read"]));
}

#[test]
fn a_redelivered_message_gets_exactly_one_reply() {
    let app = channels_app();
    let number = "15550007006";
    let message = text(number, "wamid.redelivered.1", "What is the late fee?");
    let first = accept(&message);
    assert_eq!(first["n_new"], 1);
    // Meta retries: the same notification again, also while the first is being answered.
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let message = message.clone();
            std::thread::spawn(move || accept(&message))
        })
        .collect();
    for handle in handles {
        let body = handle.join().unwrap();
        assert_eq!((body["n_new"].as_u64(), body["n_duplicates"].as_u64()), (Some(0), Some(1)));
    }
    app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    settle(app, number);
    assert_eq!(app.graph.to(number).len(), 1, "{:#?}", app.graph.to(number));
    let n_in = conversation_events(app, number).iter().filter(|e| matches!(e, EventKind::MessageIn { .. })).count();
    assert_eq!(n_in, 1);
}

#[test]
fn a_batch_with_several_entries_changes_and_messages_is_handled_whole() {
    let app = channels_app();
    let numbers = ["15550007011", "15550007012", "15550007013", "15550007014"];
    let batch = json!({
        "object": "whatsapp_business_account",
        "entry": [
            {"id": "1", "changes": [
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp", "metadata": metadata(),
                    "messages": [
                        {"from": numbers[0], "id": "wamid.batch.1", "timestamp": "1", "type": "text", "text": {"body": "What is the late fee?"}},
                        {"from": numbers[1], "id": "wamid.batch.2", "timestamp": "2", "type": "text", "text": {"body": "How do I get a new SIM?"}}
                    ]}},
                {"field": "messages", "value": text_value(numbers[2], "wamid.batch.3", "hi")}
            ]},
            {"id": "2", "changes": [
                {"field": "messages", "value": {
                    "messaging_product": "whatsapp", "metadata": metadata(),
                    "messages": [{"from": numbers[3], "id": "wamid.batch.4", "timestamp": "4", "type": "image",
                                  "image": {"mime_type": "image/jpeg", "sha256": "x", "id": "99"}}],
                    "statuses": [{"id": "wamid.batch.out", "status": "sent", "timestamp": "5", "recipient_id": numbers[0]}]
                }}
            ]}
        ]
    });
    let body = accept(&batch);
    assert_eq!(body["n_new"], 5, "{body}");
    for number in numbers {
        let replies = app.graph.wait_for(number, 1, REPLY_TIMEOUT);
        assert!(!text_body(&replies[0]).is_empty());
    }
    assert!(text_body(&app.graph.wait_for(numbers[3], 1, REPLY_TIMEOUT)[0]).contains("only read text"));
}

#[test]
fn sends_are_retried_on_5xx_and_not_on_4xx() {
    let app = channels_app();
    let flaky = "15550009901";
    accept(&text(flaky, "wamid.retry.1", "What is the late fee?"));
    app.graph.wait_for(flaky, 1, REPLY_TIMEOUT);
    let attempts: Vec<u16> = app.graph.to(flaky).iter().map(|r| r.status).collect();
    assert_eq!(attempts, [503, 200], "one failure, then the retry succeeds");
    let first = &app.graph.to(flaky)[0].body;
    let second = &app.graph.to(flaky)[1].body;
    assert_eq!(first, second, "the retry sends the same message");

    let refused = "15550009902";
    accept(&text(refused, "wamid.retry.2", "What is the late fee?"));
    let started = Instant::now();
    while app.graph.to(refused).is_empty() {
        assert!(started.elapsed() < REPLY_TIMEOUT);
        std::thread::sleep(Duration::from_millis(50));
    }
    settle(app, refused);
    assert_eq!(app.graph.to(refused).len(), 1, "a 4xx is not retried");
    let events = conversation_events(app, refused);
    assert!(
        events.iter().any(|e| matches!(e, EventKind::Note { text } if text.contains("not delivered"))),
        "{events:?}"
    );
}

#[test]
fn agent_messages_are_delivered_and_only_the_template_outside_the_window() {
    let app = channels_app();
    let number = "15550007020";
    accept(&text(number, "wamid.window.1", "hello"));
    app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    let conversations = &app.app.state.conversations;
    let conversation = conversations.find_external(Channel::Whatsapp, number).unwrap().unwrap();
    // Inside the 24-hour window a human agent's message goes out as text.
    conversations
        .append(&conversation.id, vec![EventKind::AgentMessage { agent: "sam".into(), text: "Hi, Sam here.".into() }])
        .unwrap();
    let sent = app.graph.wait_for(number, 2, REPLY_TIMEOUT);
    assert_eq!(sent[1]["type"], "text");
    assert_eq!(sent[1]["text"]["body"], "Hi, Sam here.");
    // 25 hours later only the configured template may be sent.
    conversations
        .update(&conversation.id, |c| {
            c.last_customer_message_at = Some(chrono::Utc::now() - chrono::TimeDelta::hours(25))
        })
        .unwrap();
    conversations
        .append(
            &conversation.id,
            vec![EventKind::AgentMessage { agent: "sam".into(), text: "Are you still there?".into() }],
        )
        .unwrap();
    let sent = app.graph.wait_for(number, 3, REPLY_TIMEOUT);
    assert_eq!(sent[2]["type"], "template", "{}", sent[2]);
    assert_eq!(sent[2]["template"]["name"], TEMPLATE);
    assert!(!sent[2].to_string().contains("Are you still there?"));
}

#[test]
fn bad_bodies_are_refused_and_the_server_keeps_serving() {
    let app = channels_app();
    // Over 64 KiB: refused before the signature is even checked.
    let huge = vec![b'x'; 70 * 1024];
    let signature = server::channels::whatsapp::sign(&Secret::new(APP_SECRET), &huge);
    let (status, body, _) = post_webhook(&huge, Some(&signature));
    assert_eq!(status, 413, "{body}");
    // Signed but not JSON, or not the shape: 400 / ignored, never a 500.
    for raw in [&b"{\"object\": "[..], b"[1,2,3]", b"\xff\xfe"] {
        let signature = server::channels::whatsapp::sign(&Secret::new(APP_SECRET), raw);
        let (status, body, _) = post_webhook(raw, Some(&signature));
        assert_eq!(status, 400, "{body}");
    }
    let other_object = json!({"object": "page", "entry": [{"id": "1", "changes": []}]});
    assert_eq!(accept(&other_object)["n_new"], 0);
    let odd = notification(
        json!({"messages": [{"from": "not a number", "id": "x", "type": "text", "text": {"body": "hi"}}]}),
    );
    assert_eq!(accept(&odd)["n_new"], 0);
    // Empty text and 5,000 characters: no crash; the long one gets a polite reply.
    let number = "15550007030";
    accept(&text(number, "wamid.bad.1", ""));
    accept(&text(number, "wamid.bad.2", &"blah ".repeat(1000)));
    let replies = app.graph.wait_for(number, 1, REPLY_TIMEOUT);
    assert!(text_body(&replies[0]).contains("too long"), "{}", replies[0]);
    assert_eq!(app.app.get("/healthz").0, 200);
}

/// The built binary serving `config`, with the test's models directory.
struct ServerProcess {
    child: std::process::Child,
}

impl ServerProcess {
    fn start(config: &std::path::Path, data_dir: &std::path::Path, base_url: &str) -> Self {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data_dir)
            .arg("serve")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the switchboard binary runs");
        let server = Self { child };
        let started = Instant::now();
        while !client().get(format!("{base_url}/readyz")).send().is_ok_and(|r| r.status().is_success()) {
            assert!(started.elapsed() < Duration::from_secs(600), "the server did not get ready");
            std::thread::sleep(Duration::from_millis(200));
        }
        server
    }

    /// `kill -9`: no shutdown, no flush.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

#[test]
fn acknowledged_notifications_are_answered_after_a_kill_9() {
    let graph = crate::channels::GraphStandIn::start();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base_url = format!("http://127.0.0.1:{port}");
    let config = dir.path().join("switchboard.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\naddr = \"127.0.0.1:{port}\"\n[models]\nchat_disabled = true\n[knowledge]\ndirs = []\n\
             [limits]\nrequests_per_ip_per_minute = 0\n\
             [whatsapp]\nverify_token = \"{VERIFY_TOKEN}\"\napp_secret = \"{APP_SECRET}\"\naccess_token = \"{ACCESS_TOKEN}\"\n\
             phone_number_id = \"{PHONE_NUMBER_ID}\"\napi_base_url = \"{}/v21.0\"\n",
            graph.base_url
        ),
    )
    .unwrap();
    let data_dir = dir.path().join("data");
    let server = ServerProcess::start(&config, &data_dir, &base_url);
    let numbers: Vec<String> = (0..10).map(|i| format!("155500077{i:02}")).collect();
    for (i, number) in numbers.iter().enumerate() {
        let notification = text(number, &format!("wamid.crash{i}"), "hello");
        let (status, ..) = post_signed_to(&format!("{base_url}/webhooks/whatsapp"), &notification);
        assert_eq!(status, 200, "acknowledged");
    }
    // Killed at once after the last 200, whatever its worker was doing.
    server.kill();
    let server = ServerProcess::start(&config, &data_dir, &base_url);
    for number in &numbers {
        graph.wait_for(number, 1, REPLY_TIMEOUT);
    }
    server.kill();
}
