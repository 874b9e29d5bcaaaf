//! The REST API: conversations, messages, bad input.

use serde_json::json;

use crate::support::{TestApp, n_events, shared};

#[test]
fn health_and_readiness() {
    let app = shared();
    assert_eq!(app.get("/healthz").0, 200);
    assert_eq!(app.get("/readyz").0, 200);
}

#[test]
fn a_plan_question_gets_a_grounded_answer_with_sources() {
    let app = shared();
    let id = app.new_conversation();
    let turn = app.say(&id, "How much is the cheapest plan?");
    let reply = turn["reply"].as_str().unwrap();
    assert!(!reply.is_empty());
    let sources = turn["sources"].as_array().unwrap();
    assert!(!sources.is_empty(), "{turn}");
    // Every number the reply states is a real price or limit of the catalogue, not an invention.
    assert!(reply.contains('$') || reply.to_lowercase().contains("plan"), "{reply}");
    let (status, conversation) = app.get(&format!("/api/v1/conversations/{id}"));
    assert_eq!(status, 200);
    let messages = conversation["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{conversation}");
    assert_eq!(messages[0]["role"], "customer");
    assert_eq!(messages[1]["text"], turn["reply"]);
}

#[test]
fn empty_and_oversized_text_are_refused_and_nothing_is_stored() {
    let app = shared();
    let id = app.new_conversation();
    let path = format!("/api/v1/conversations/{id}/messages");
    for text in ["", "   \n ", &"a".repeat(4_001)] {
        let (status, body) = app.post_json(&path, &json!({"text": text}));
        assert!((400..500).contains(&status), "{status} {body}");
        assert!(body["error"]["code"].is_string(), "{body}");
    }
    assert_eq!(n_events(app, &id), 0);
}

#[test]
fn malformed_json_and_wrong_shapes_are_4xx() {
    let app = shared();
    let id = app.new_conversation();
    let path = format!("/api/v1/conversations/{id}/messages");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("application/json", b"{\"text\": ".to_vec()),
        ("application/json", b"[1, 2, 3]".to_vec()),
        ("application/json", b"{\"text\": 42}".to_vec()),
        ("application/json", b"{\"txt\": \"hi\"}".to_vec()),
        ("application/json", b"{\"text\": \"hi\", \"admin\": true}".to_vec()),
        ("application/json", vec![0xff, 0xfe, 0x00]),
        ("text/plain", b"hello".to_vec()),
    ];
    for (content_type, body) in cases {
        let (status, response) = app.post_raw(&path, content_type, body.clone());
        assert!((400..500).contains(&status), "{status} for {:?}", String::from_utf8_lossy(&body));
        assert!(response["error"]["message"].is_string(), "{response}");
    }
    assert_eq!(n_events(app, &id), 0);
}

#[test]
fn huge_bodies_are_refused_before_parsing() {
    let app = shared();
    let id = app.new_conversation();
    let body = format!("{{\"text\": \"{}\"}}", "x".repeat(200_000));
    let (status, response) = app.post_raw(&format!("/api/v1/conversations/{id}/messages"), "application/json", body);
    assert_eq!(status, 413, "{response}");
}

#[test]
fn unknown_conversation_is_404() {
    let app = shared();
    let (status, body) = app.post_json("/api/v1/conversations/nope/messages", &json!({"text": "hi"}));
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    assert_eq!(app.get("/api/v1/conversations/nope").0, 404);
    assert_eq!(app.get("/api/v1/conversations/..%2F..%2Fetc").0, 404);
}

#[test]
fn conversation_creation_accepts_no_body_and_refuses_unknown_channels() {
    let app = shared();
    let (status, body) = app.post_raw("/api/v1/conversations", "application/json", "");
    assert_eq!(status, 200, "{body}");
    let (status, _) = app.post_json("/api/v1/conversations", &json!({"channel": "carrier-pigeon"}));
    assert_eq!(status, 400);
}

#[test]
fn unknown_routes_are_json_404() {
    let (status, body) = shared().get("/api/v1/nothing-here");
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
}

#[test]
fn conversations_survive_a_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let settings = server::config::Settings::for_data_dir(data_dir.path());
    let app = TestApp::spawn_with(settings.clone());
    let id = app.new_conversation();
    let turn = app.say(&id, "What is the late fee?");
    app.state.conversations.flush().unwrap();
    app.stop();
    let app = TestApp::start(settings);
    let (status, conversation) = app.get(&format!("/api/v1/conversations/{id}"));
    assert_eq!(status, 200, "{conversation}");
    assert_eq!(conversation["messages"][1]["text"], turn["reply"]);
}
