//! REST API v1 beyond the basics: the event stream, resends, choices, signed identities,
//! the OpenAPI document, the widget's routes and CORS.

use std::time::Duration;

use engine::conversations::EventKind;
use serde_json::{Value, json};
use server::config::Secret;

use crate::channels::{SseClient, WIDGET_SECRET, channels_app};
use crate::support::{TestApp, client, n_events};

const TIMEOUT: Duration = Duration::from_secs(120);

fn app() -> &'static TestApp {
    &channels_app().app
}

fn stream(app: &TestApp, id: &str, query: &str) -> SseClient {
    SseClient::open(&app.url(&format!("/api/v1/conversations/{id}/stream{query}")), &[]).expect("stream opens")
}

#[test]
fn the_stream_carries_tokens_then_the_turn() {
    let app = app();
    let id = app.new_conversation();
    let events = stream(app, &id, "");
    let ready = events.until("ready", TIMEOUT);
    assert_eq!(ready.last().unwrap().json()["conversation_id"], id.as_str());
    let turn = app.say(&id, "How do I get a new SIM card?");
    let seen = events.until("turn", TIMEOUT);
    let tokens: Vec<String> =
        seen.iter().filter(|e| e.event == "token").map(|e| e.json()["text"].as_str().unwrap().to_string()).collect();
    assert!(!tokens.is_empty(), "a generated answer streams its tokens first: {seen:#?}");
    let streamed_turn = seen.last().unwrap();
    assert_eq!(streamed_turn.json()["reply"], turn["reply"]);
    assert_eq!(streamed_turn.id.as_deref(), Some(turn["seq"].to_string().as_str()));
    assert!(!streamed_turn.json()["sources"].as_array().unwrap().is_empty(), "{}", streamed_turn.data);
    // Nothing but keep-alives follows.
    assert!(events.next(Duration::from_millis(300)).is_none());
}

#[test]
fn a_reconnecting_stream_gets_what_it_missed() {
    let app = app();
    let id = app.new_conversation();
    let first = app.say(&id, "hello");
    let second = app.say(&id, "What is the late fee?");
    let after = first["seq"].as_u64().unwrap();
    for resumed in [
        stream(app, &id, &format!("?after={after}")),
        SseClient::open(
            &app.url(&format!("/api/v1/conversations/{id}/stream")),
            &[("Last-Event-ID", &after.to_string())],
        )
        .unwrap(),
    ] {
        let seen = resumed.until("ready", TIMEOUT);
        let turns: Vec<&_> = seen.iter().filter(|e| e.event == "turn").collect();
        assert_eq!(turns.len(), 1, "{seen:#?}");
        assert_eq!(turns[0].json()["reply"], second["reply"]);
    }
}

#[test]
fn agent_messages_reach_the_stream() {
    let app = app();
    let id = app.new_conversation();
    let events = stream(app, &id, "");
    events.until("ready", TIMEOUT);
    app.state
        .conversations
        .append(&id, vec![EventKind::AgentMessage { agent: "sam".into(), text: "Hi, I'm Sam from the team.".into() }])
        .unwrap();
    let seen = events.until("agent_message", TIMEOUT);
    let message = seen.last().unwrap().json();
    assert_eq!(message["agent"], "sam");
    assert_eq!(message["text"], "Hi, I'm Sam from the team.");
    let (_, conversation) = app.get(&format!("/api/v1/conversations/{id}"));
    assert_eq!(conversation["messages"][0]["role"], "agent");
}

#[test]
fn streams_of_unknown_conversations_and_bad_queries_are_4xx() {
    let app = app();
    let (status, body) = match SseClient::open(&app.url("/api/v1/conversations/nope/stream"), &[]) {
        Err(failure) => failure,
        Ok(_) => panic!("an unknown conversation has no stream"),
    };
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("not_found"));
    let id = app.new_conversation();
    for query in ["?after=abc", "?after=-1", "?after=99999999999999999999999"] {
        let (status, body) = app.get(&format!("/api/v1/conversations/{id}/stream{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_query");
    }
    // A garbage Last-Event-ID is ignored (browsers send what they got).
    let events =
        SseClient::open(&app.url(&format!("/api/v1/conversations/{id}/stream")), &[("Last-Event-ID", "not-a-number")])
            .unwrap();
    events.until("ready", TIMEOUT);
}

#[test]
fn resending_with_the_same_client_message_id_is_answered_once() {
    let app = app();
    let id = app.new_conversation();
    let path = format!("/api/v1/conversations/{id}/messages");
    let body = json!({"text": "What is the late fee?", "client_message_id": "msg-1"});
    let (status, first) = app.post_json(&path, &body);
    assert_eq!(status, 200, "{first}");
    let n_after_first = n_events(app, &id);
    let (status, again) = app.post_json(&path, &body);
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, first);
    assert_eq!(n_events(app, &id), n_after_first, "the resend ran nothing");
    // Another id is another message; a bad id is refused.
    let (status, _) = app.post_json(&path, &json!({"text": "thanks", "client_message_id": "msg-2"}));
    assert_eq!(status, 200);
    for bad in ["", "has space", &"x".repeat(101), "<script>"] {
        let (status, body) = app.post_json(&path, &json!({"text": "hi", "client_message_id": bad}));
        assert_eq!(status, 400, "{bad:?}: {body}");
    }
}

#[test]
fn turns_offer_choices_for_confirmations_and_plans() {
    let app = app();
    let id = app.new_conversation();
    let turn = app.say(&id, "I'd like to change my plan");
    assert_eq!(turn["awaiting"], "phone_number", "{turn}");
    let turn = app.say(&id, "555-010-2005");
    assert_eq!(turn["awaiting"], "verification_code", "{turn}");
    assert!(turn["choices"].as_array().unwrap().is_empty(), "no account data in choices before proof: {turn}");
    let turn = app.prove(&id, "555-010-2005");
    assert_eq!(turn["awaiting"], "plan", "{turn}");
    let labels: Vec<&str> = turn["choices"].as_array().unwrap().iter().map(|c| c["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"Premium Plan"), "{turn}");
    let turn = app.say(&id, "Premium Plan");
    assert_eq!(turn["awaiting"], "confirmation", "{turn}");
    let values: Vec<&str> = turn["choices"].as_array().unwrap().iter().map(|c| c["value"].as_str().unwrap()).collect();
    assert_eq!(values, ["Yes", "No"]);
    // The conversation view shows the same, with the customer masked.
    let (status, conversation) = app.get(&format!("/api/v1/conversations/{id}"));
    assert_eq!(status, 200);
    assert_eq!(conversation["state"]["awaiting"], "confirmation");
    assert_eq!(conversation["state"]["pending_action"]["name"], "change_plan");
    assert_eq!(conversation["state"]["choices"].as_array().unwrap().len(), 2);
    let customer = &conversation["customer"];
    assert_eq!(customer["id"], "C2004");
    assert_eq!(customer["name"], "Tomás H.");
    assert!(customer["phone"].as_str().unwrap().starts_with("•••"), "{customer}");
    assert!(!conversation.to_string().contains("Herrera"), "the full name is not shown");
    let last = conversation["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["turn"]["choices"].as_array().unwrap().len(), 2);
    assert_eq!(conversation["last_seq"], last["seq"]);
    let _ = app.say(&id, "no");
}

/// A signed identity of `customer_id` valid for `minutes` (negative: already expired).
fn signed(customer_id: &str, minutes: i64) -> Value {
    let expires = server::channels::identity::unix_now().saturating_add_signed(minutes * 60);
    let hash = server::channels::identity::sign_identity(&Secret::new(WIDGET_SECRET), customer_id, expires);
    json!({"customer_id": customer_id, "customer_expires": expires, "customer_hash": hash})
}

fn customer_events(app: &TestApp, id: &str) -> Vec<EventKind> {
    app.state
        .conversations
        .events(id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| matches!(k, EventKind::CustomerIdentified { .. }))
        .collect()
}

#[test]
fn a_signed_host_page_identity_verifies_and_a_wrong_hash_is_ignored() {
    let app = app();
    let create = |body: Value| app.post_json("/api/v1/conversations", &body);
    let (status, body) = create(signed("C2004", 30));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["customer_verified"], true);
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        customer_events(app, id),
        vec![EventKind::CustomerIdentified {
            customer_id: "C2004".into(),
            verified: true,
            method: "signed host page".into()
        }]
    );
    // Verified: account questions need no further identification.
    let turn = app.say(id, "How much data have I used?");
    assert_ne!(turn["awaiting"], "phone_number", "{turn}");

    let with = |mut body: Value, field: &str, value: Value| {
        body[field] = value;
        body
    };
    let good = signed("C2004", 30);
    for body in [
        with(good.clone(), "customer_id", json!("C2005")),
        with(signed("C2004", 30), "customer_hash", signed("C2005", 30)["customer_hash"].clone()),
        with(good.clone(), "customer_hash", json!("0".repeat(64))),
        with(good.clone(), "customer_hash", json!("not hex")),
        with(good.clone(), "customer_hash", json!("")),
        with(good.clone(), "customer_expires", json!(good["customer_expires"].as_u64().unwrap() + 3600)),
        with(good.clone(), "customer_expires", Value::Null),
        signed("C2004", -1),
        signed("C2004", 48 * 60),
        signed("C9999", 30),
        signed("'; drop table", 30),
    ] {
        let (status, response) = create(body.clone());
        assert_eq!(status, 200, "a wrong identity is ignored, not an error: {response}");
        assert_eq!(response["customer_verified"], false, "{body}");
        let id = response["id"].as_str().unwrap();
        assert!(customer_events(app, id).is_empty());
        let logged = app.state.conversations.events(id).unwrap().into_iter().any(|event| {
            matches!(event.kind, EventKind::ProofFailed { ref reason, .. } if reason.contains("signed host-page identity"))
        });
        assert!(logged, "the refusal is an event in the conversation's log: {body}");
    }
    let (status, body) = create(json!({"customer_id": "C2004", "customer_expires": "tomorrow", "customer_hash": "x"}));
    assert_eq!(status, 400, "an expiry that is not unix seconds is bad input: {body}");
    let (status, body) = create(json!({"customer_id": "C2004"}));
    assert_eq!((status, body["customer_verified"].as_bool()), (200, Some(false)));
}

#[test]
fn conversation_creation_refuses_bad_bodies() {
    let app = app();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("application/json", b"{\"channel\": ".to_vec(), 400),
        ("application/json", b"{\"channel\": \"web\", \"admin\": true}".to_vec(), 400),
        ("application/json", b"{\"channel\": 5}".to_vec(), 400),
        ("application/json", b"{\"channel\": \"whatsapp\"}".to_vec(), 400),
        ("text/plain", b"{\"channel\": \"web\"}".to_vec(), 415),
        ("application/json", format!("{{\"channel\": \"{}\"}}", "w".repeat(70_000)).into_bytes(), 413),
    ];
    for (content_type, body, expected) in cases {
        let (status, response) = app.post_raw("/api/v1/conversations", content_type, body.clone());
        assert_eq!(status, expected, "{}: {response}", String::from_utf8_lossy(&body[..body.len().min(60)]));
        assert!(response["error"]["code"].is_string(), "{response}");
    }
    let (status, _) = app.post_raw("/api/v1/conversations", "application/json", "  ");
    assert_eq!(status, 200);
}

#[test]
fn the_openapi_document_is_valid_json_listing_the_routes() {
    let app = app();
    let response = client().get(app.url("/api/openapi.json")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let document: Value = serde_json::from_str(&response.text().unwrap()).expect("valid JSON");
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = document["paths"].as_object().unwrap();
    for (path, method) in [
        ("/api/v1/conversations", "post"),
        ("/api/v1/conversations/{id}", "get"),
        ("/api/v1/conversations/{id}/messages", "post"),
        ("/api/v1/conversations/{id}/stream", "get"),
        ("/webhooks/whatsapp", "get"),
        ("/webhooks/whatsapp", "post"),
        ("/widget.js", "get"),
        ("/", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing");
    }
    // Every schema a route refers to is defined.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "{name} is referenced but not defined");
    }
    for field in ["reply", "intent", "awaiting", "pending_action", "sources", "actions", "handoff", "choices"] {
        assert!(schemas["TurnOut"]["properties"].get(field).is_some(), "TurnOut.{field}");
    }
}

#[test]
fn the_widget_script_and_the_demo_page_are_served_with_the_right_headers() {
    let app = app();
    let response = client().get(app.url("/widget.js")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/javascript; charset=utf-8");
    assert!(headers["cache-control"].to_str().unwrap().contains("max-age="));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_string();
    let script = response.text().unwrap();
    assert!(script.contains("attachShadow"));
    assert!(!script.contains("__SWITCHBOARD_WIDGET_CSS__"), "the stylesheet is inlined");
    assert!(!script.contains("innerHTML"), "text is never parsed as HTML");
    let revalidated = client().get(app.url("/widget.js")).header("if-none-match", &etag).send().unwrap();
    assert_eq!(revalidated.status().as_u16(), 304);

    let response = client().get(app.url("/")).send().unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    assert!(response.headers().contains_key("content-security-policy"));
    let html = response.text().unwrap();
    assert!(html.contains("Kestrel Mobile"));
    assert!(html.contains("<script src=\"/widget.js\" data-title=\"Kestrel Mobile help\""), "{html}");
    assert!(html.contains("Premium Plan") && html.contains("$65.00"));
}

#[test]
fn cors_lets_host_pages_call_the_api() {
    let app = app();
    let response = client()
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/conversations"))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let allowed = response.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
    assert!(matches!(allowed.as_deref(), Some("*") | Some("https://shop.example.com")), "{allowed:?}");
}
