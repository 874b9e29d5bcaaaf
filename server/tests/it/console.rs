//! The agent console through its HTTP API: sessions, CSRF, lockout, expiry, unknown ids,
//! escaping, the contact-centre operations, supervisors' pages, the staff API with a console
//! session, live updates, and `switchboard agents add`.

use std::io::{BufRead, BufReader};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use accounts::{Actor, CustomerId};
use engine::console::{AgentName, Console, Password, Role};
use engine::conversations::{Channel, EventKind, Status};
use regex::Regex;
use serde_json::{Value, json};
use server::config::Settings;
use server::http::console::{CSRF_HEADER, LOGIN_CSRF_COOKIE, PROTECTED_ROUTES, SESSION_COOKIE};

use crate::support::TestApp;

const PASSWORD: &str = "correct horse battery";

/// One server for the console tests, with agents `alice`, `bob` (agents) and `sue`
/// (supervisor).
fn app() -> &'static TestApp {
    static APP: OnceLock<TestApp> = OnceLock::new();
    APP.get_or_init(|| {
        let app = TestApp::spawn();
        for (name, role) in [("alice", Role::Agent), ("bob", Role::Agent), ("sue", Role::Supervisor)] {
            add_agent(&app, name, role, PASSWORD);
        }
        app
    })
}

fn add_agent(app: &TestApp, name: &str, role: Role, password: &str) {
    let console = Console::open(&app.state.db, &app.state.settings.console).unwrap();
    console.agents().add(&AgentName::parse(name).unwrap(), role, &Password::parse(password).unwrap()).unwrap();
}

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap()
    })
}

/// A signed-in browser, as far as the server can tell: the session cookie and the CSRF token.
#[derive(Debug, Clone)]
struct Session {
    token: String,
    csrf: String,
}

impl Session {
    fn cookie(&self) -> String {
        format!("{SESSION_COOKIE}={}", self.token)
    }
}

fn set_cookie<'a>(response: &'a reqwest::blocking::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with(&format!("{name}=")))
}

fn cookie_value(header: &str) -> String {
    header.split(';').next().unwrap().split_once('=').unwrap().1.to_string()
}

/// The sign-in form's CSRF token and cookie.
fn login_form(app: &TestApp) -> (String, String) {
    let response = client().get(app.url("/console/login")).send().unwrap();
    assert_eq!(response.status(), 200);
    let cookie = cookie_value(set_cookie(&response, LOGIN_CSRF_COOKIE).expect("a login CSRF cookie"));
    let html = response.text().unwrap();
    let token = Regex::new(r#"name="csrf" value="([0-9a-f]+)""#).unwrap().captures(&html).unwrap()[1].to_string();
    assert_eq!(token, cookie, "double-submit: the form and the cookie carry the same token");
    (token, cookie)
}

fn post_login(app: &TestApp, name: &str, password: &str, extra: &[(&str, &str)]) -> reqwest::blocking::Response {
    let (token, cookie) = login_form(app);
    let mut request = client()
        .post(app.url("/console/login"))
        .header("cookie", format!("{LOGIN_CSRF_COOKIE}={cookie}"))
        .form(&[("csrf", token.as_str()), ("name", name), ("password", password)]);
    for (key, value) in extra {
        request = request.header(*key, *value);
    }
    request.send().unwrap()
}

fn sign_in(app: &TestApp, name: &str) -> Session {
    let response = post_login(app, name, PASSWORD, &[]);
    assert_eq!(response.status(), 303, "{:?}", response.text());
    assert_eq!(response.headers()["location"], "/console");
    let token = cookie_value(set_cookie(&response, SESSION_COOKIE).expect("a session cookie"));
    let html = get(app, "/console", Some(&Session { token: token.clone(), csrf: String::new() })).text().unwrap();
    let csrf =
        Regex::new(r#"name="csrf-token" content="([0-9a-f]+)""#).unwrap().captures(&html).unwrap()[1].to_string();
    Session { token, csrf }
}

fn get(app: &TestApp, path: &str, session: Option<&Session>) -> reqwest::blocking::Response {
    let mut request = client().get(app.url(path));
    if let Some(session) = session {
        request = request.header("cookie", session.cookie());
    }
    request.send().unwrap()
}

fn get_json(app: &TestApp, path: &str, session: &Session) -> (u16, Value) {
    let response = get(app, path, Some(session));
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// A JSON call; `csrf` is sent as the header when given.
fn call(app: &TestApp, path: &str, session: Option<&Session>, csrf: Option<&str>, body: &Value) -> (u16, Value) {
    let mut request = client().post(app.url(path)).json(body);
    if let Some(session) = session {
        request = request.header("cookie", session.cookie());
    }
    if let Some(csrf) = csrf {
        request = request.header(CSRF_HEADER, csrf);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn act(app: &TestApp, session: &Session, path: &str, body: &Value) -> (u16, Value) {
    call(app, path, Some(session), Some(&session.csrf), body)
}

/// A conversation the assistant transferred: Tomás (C2004, line L2005) asked for a human.
fn transferred_conversation(app: &TestApp) -> String {
    let id = app.new_conversation();
    app.say(&id, "My data ran out, my number is 555-010-2005");
    app.prove(&id, "555-010-2005");
    let turn = app.say(&id, "I want to talk to a human agent");
    assert_eq!(turn["handoff"], true, "{turn}");
    id
}

fn n_events(app: &TestApp, id: &str) -> usize {
    app.state.conversations.events(id).unwrap().len()
}

/// A body each POST route accepts (so only the session or the token can make it fail).
fn body_for(path: &str) -> Value {
    if path.ends_with("/messages") || path.ends_with("/notes") {
        json!({"text": "hello"})
    } else if path.ends_with("/snooze") {
        json!({"minutes": 30})
    } else if path.ends_with("/assign") {
        json!({"agent": "alice"})
    } else if path.ends_with("/verify") || path.ends_with("/unlock") {
        json!({"reason": "called the customer back on the number on file"})
    } else if path.ends_with("/actions/preview") {
        json!({"name": "enable_roaming", "args": {"customer_id": "C2004", "line_id": "L2005"}})
    } else if path.ends_with("/actions") {
        json!({"name": "enable_roaming", "args": {"customer_id": "C2004", "line_id": "L2005"}, "idempotency_key": "csrf-test"})
    } else {
        json!({})
    }
}

fn concrete(path: &str, id: &str) -> String {
    path.replace("{id}", id).replace("{code}", "bye")
}

fn is_page(path: &str) -> bool {
    !path.starts_with("/console/api/")
}

#[test]
fn every_console_route_refuses_requests_without_a_session() {
    let app = app();
    let id = transferred_conversation(app);
    let before = n_events(app, &id);
    let forged = Session { token: "ab".repeat(32), csrf: "cd".repeat(32) };
    let garbage = Session { token: "<script>".into(), csrf: String::new() };
    for &(method, route) in PROTECTED_ROUTES {
        let path = concrete(route, &id);
        for session in [None, Some(&forged), Some(&garbage)] {
            let response = match method {
                "GET" => get(app, &path, session),
                _ => {
                    let mut request = client().post(app.url(&path)).json(&body_for(route));
                    if let Some(session) = session {
                        request = request.header("cookie", session.cookie()).header(CSRF_HEADER, &session.csrf);
                    }
                    request.send().unwrap()
                }
            };
            let status = response.status().as_u16();
            if is_page(route) {
                assert_eq!(status, 303, "{method} {path} with {session:?}");
                assert_eq!(response.headers()["location"], "/console/login", "{method} {path}");
            } else {
                assert_eq!(status, 401, "{method} {path} with {session:?}");
                let body: Value = response.json().unwrap();
                assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
            }
        }
    }
    assert_eq!(n_events(app, &id), before, "nothing was logged");
    let header = app.state.conversations.get(&id).unwrap();
    assert_eq!((header.status, header.taken_over_by), (Status::PendingHuman, None));
    // The sign-in page and the assets need no session (they hold no data).
    assert_eq!(get(app, "/console/login", None).status(), 200);
    assert_eq!(get(app, "/console/assets/console.js", None).status(), 200);
    assert_eq!(get(app, "/console/assets/console.css", None).status(), 200);
}

#[test]
fn every_state_changing_call_needs_the_csrf_token() {
    let app = app();
    let id = transferred_conversation(app);
    let before = n_events(app, &id);
    let alice = sign_in(app, "alice");
    let bob = sign_in(app, "bob");
    assert_ne!(alice.csrf, bob.csrf, "every session has its own token");
    let forged = "0".repeat(64);
    for &(method, route) in PROTECTED_ROUTES.iter().filter(|(method, _)| *method == "POST") {
        let path = concrete(route, &id);
        let as_json = !is_page(route);
        for token in [None, Some(""), Some(forged.as_str()), Some(bob.csrf.as_str()), Some(&alice.csrf[..32])] {
            let mut request = client().post(app.url(&path)).header("cookie", alice.cookie());
            if as_json {
                request = request.json(&body_for(route));
                if let Some(token) = token {
                    request = request.header(CSRF_HEADER, token);
                }
            } else {
                let mut form = vec![("shortcode", "/csrf"), ("text", "forged")];
                if let Some(token) = token {
                    form.push(("csrf", token));
                }
                request = request.form(&form);
            }
            let response = request.send().unwrap();
            assert_eq!(response.status(), 403, "{method} {path} with token {token:?}");
            if as_json {
                assert_eq!(response.json::<Value>().unwrap()["error"]["code"], "bad_csrf_token");
            }
        }
    }
    assert_eq!(n_events(app, &id), before, "nothing was logged");
    let console = Console::open(&app.state.db, &app.state.settings.console).unwrap();
    assert!(console.signed_in(&alice.token).unwrap().is_some(), "a forged sign-out did not end the session");
    assert!(console.canned().get(&engine::console::Shortcode::parse("/csrf").unwrap()).unwrap().is_none());
    // With the right token the same call works.
    let (status, body) = act(app, &alice, &format!("/console/api/conversations/{id}/notes"), &json!({"text": "ok"}));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn wrong_passwords_lock_the_name_out() {
    let app = app();
    add_agent(app, "locky", Role::Agent, PASSWORD);
    for attempt in 1..engine::console::sessions::FAILURES_BEFORE_LOCKOUT {
        let response = post_login(app, "locky", "wrong password", &[]);
        assert_eq!(response.status(), 401, "attempt {attempt}");
        assert!(set_cookie(&response, SESSION_COOKIE).is_none());
        assert!(response.text().unwrap().contains("Wrong name or password"));
    }
    let response = post_login(app, "locky", "wrong password", &[]);
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=engine::console::sessions::FIRST_LOCKOUT_SECONDS as u64).contains(&retry_after));
    // Locked: the right password is refused too, and no session is made.
    let response = post_login(app, "locky", PASSWORD, &[]);
    assert_eq!(response.status(), 429);
    assert!(set_cookie(&response, SESSION_COOKIE).is_none());
    // Other names are not affected; names that do not exist get the same answer as wrong passwords.
    sign_in(app, "bob");
    assert_eq!(post_login(app, "nobody-here", PASSWORD, &[]).status(), 401);
    // Hostile input is a failed sign-in, never a crash.
    for (name, password) in [("", ""), ("<script>alert(1)</script>", "x"), ("alice", &"p".repeat(50_000))] {
        let response = post_login(app, name, password, &[]);
        assert_eq!(response.status(), 401, "{name:?}");
        assert!(!response.text().unwrap().contains("<script>alert(1)"), "the typed name is escaped");
    }
}

#[test]
fn the_sign_in_form_needs_its_own_csrf_token() {
    let app = app();
    let (token, _cookie) = login_form(app);
    let without_cookie = client()
        .post(app.url("/console/login"))
        .form(&[("csrf", token.as_str()), ("name", "alice"), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(without_cookie.status(), 403);
    assert!(set_cookie(&without_cookie, SESSION_COOKIE).is_none());
    let (_token, cookie) = login_form(app);
    let forged = client()
        .post(app.url("/console/login"))
        .header("cookie", format!("{LOGIN_CSRF_COOKIE}={cookie}"))
        .form(&[("csrf", "f".repeat(32).as_str()), ("name", "alice"), ("password", PASSWORD)])
        .send()
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(set_cookie(&forged, SESSION_COOKIE).is_none());
}

#[test]
fn session_cookies_are_http_only_strict_expiring_and_secure_behind_tls() {
    let app = app();
    let response = post_login(app, "alice", PASSWORD, &[]);
    let cookie = set_cookie(&response, SESSION_COOKIE).unwrap().to_string();
    let minutes = app.state.settings.console.session_minutes;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", &format!("Max-Age={}", minutes * 60)] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP without console.secure_cookies: {cookie}");
    let response = post_login(app, "alice", PASSWORD, &[("x-forwarded-proto", "https")]);
    let cookie = set_cookie(&response, SESSION_COOKIE).unwrap();
    assert!(cookie.contains("Secure"), "behind TLS: {cookie}");
}

#[test]
fn expired_and_ended_sessions_are_refused() {
    let app = app();
    let session = sign_in(app, "alice");
    assert_eq!(get(app, "/console", Some(&session)).status(), 200);
    let console = Console::open(&app.state.db, &app.state.settings.console).unwrap();
    console.sessions().set_expiry(&session.token, chrono::Utc::now() - chrono::Duration::seconds(1)).unwrap();
    let response = get(app, "/console", Some(&session));
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/login");
    assert_eq!(get(app, "/console/api/queue", Some(&session)).status(), 401);
    // Signing out ends the session for good.
    let session = sign_in(app, "alice");
    let response = client()
        .post(app.url("/console/logout"))
        .header("cookie", session.cookie())
        .form(&[("csrf", session.csrf.as_str())])
        .send()
        .unwrap();
    assert_eq!(response.status(), 303);
    assert!(set_cookie(&response, SESSION_COOKIE).unwrap().contains("Max-Age=0"));
    assert_eq!(get(app, "/console/api/queue", Some(&session)).status(), 401);
}

#[test]
fn unknown_conversations_are_not_found() {
    let app = app();
    let alice = sign_in(app, "alice");
    for id in ["0123456789abcdef0123456789abcdef", "nope", "%3Cscript%3Ealert(1)%3C%2Fscript%3E"] {
        let response = get(app, &format!("/console/conversations/{id}"), Some(&alice));
        assert_eq!(response.status(), 404, "{id}");
        let html = response.text().unwrap();
        assert!(html.contains("not found") && !html.contains("<script>alert(1)"), "{html}");
        for &(method, route) in PROTECTED_ROUTES.iter().filter(|(_, route)| route.contains("{id}") && !is_page(route)) {
            let path = concrete(route, id);
            let (status, body) = match method {
                "GET" => get_json(app, &path, &alice),
                _ => act(app, &alice, &path, &body_for(route)),
            };
            assert!(matches!(status, 404 | 422), "{method} {path}: {status} {body}");
            if status == 404 {
                assert_eq!(body["error"]["code"], "unknown_conversation", "{method} {path}: {body}");
            }
        }
    }
}

#[test]
fn what_customers_write_is_shown_as_text() {
    let app = app();
    let id = transferred_conversation(app);
    let hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>\"'&";
    app.say(&id, hostile);
    let alice = sign_in(app, "alice");
    let html = get(app, &format!("/console/conversations/{id}"), Some(&alice)).text().unwrap();
    assert!(!html.contains("<script>alert(2)") && !html.contains("<img src=x"), "raw customer markup in the page");
    assert!(html.contains("&lt;script&gt;alert(2)") || html.contains("&#60;script&#62;alert(2)"), "escaped text");
    let queue = get(app, "/console", Some(&alice)).text().unwrap();
    assert!(!queue.contains("<script>alert(2)"));
    // JSON carries the text as it was written (the script renders it with textContent).
    let (_, body) = get_json(app, &format!("/console/api/conversations/{id}"), &alice);
    assert!(body["items"].as_array().unwrap().iter().any(|item| item["text"] == hostile), "{body}");
    let response = get(app, &format!("/console/conversations/{id}"), Some(&alice));
    let csp = response.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
}

#[test]
fn an_agent_works_a_transferred_conversation() {
    let app = app();
    let id = transferred_conversation(app);
    let alice = sign_in(app, "alice");
    let bob = sign_in(app, "bob");

    // The queue: waiting first, customer masked, summary and intent shown.
    let (status, queue) = get_json(app, "/console/api/queue", &alice);
    assert_eq!(status, 200);
    let row = queue["waiting"].as_array().unwrap().iter().find(|row| row["id"] == id.as_str()).unwrap().clone();
    assert_eq!(row["customer"], "Tomás H. · C2004");
    assert_eq!(row["intent"], "refuel_data");
    assert!(!row["summary"].as_str().unwrap().is_empty());

    // The page: transcript, masked panel with the line's usage and the bills.
    let html = get(app, &format!("/console/conversations/{id}"), Some(&alice)).text().unwrap();
    assert!(html.contains("555-010-2005") && html.contains("Basic Plan") && html.contains("over the limit"), "{html}");
    assert!(
        !html.contains("Herrera") && !html.contains("1985-05-23") && !html.contains("555-010-1004"),
        "profile masked"
    );

    // Suggestions and knowledge search.
    let (status, body) = get_json(app, &format!("/console/api/conversations/{id}/suggestions"), &alice);
    assert_eq!(status, 200, "{body}");
    assert!(body["suggestions"][0]["text"].as_str().unwrap().contains("Tomás"), "{body}");
    let (status, body) = get_json(app, "/console/api/knowledge?q=roaming%20rates%20in%20Canada", &alice);
    assert_eq!(status, 200, "{body}");
    assert!(!body["results"].as_array().unwrap().is_empty());
    for bad in ["", "q=", &format!("q={}", "x".repeat(600))] {
        let (status, _) = get_json(app, &format!("/console/api/knowledge?{bad}"), &alice);
        assert!(matches!(status, 400 | 413), "{bad}: {status}");
    }
    let (status, body) = get_json(app, &format!("/console/api/conversations/{id}/summary"), &alice);
    assert_eq!((status, body["source"].as_str()), (200, Some("model")), "{body}");

    // Take over: the assistant stays silent; bob cannot write in alice's conversation.
    let (status, body) = act(app, &alice, &format!("/console/api/conversations/{id}/take-over"), &json!({}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["header"]["holder"], "alice");
    assert_eq!(body["header"]["held_by_me"], true);
    let turn = app.say(&id, "hello? anyone there?");
    assert_eq!(turn["reply"], "", "the assistant is silent while an agent holds the conversation: {turn}");
    let (status, _) = act(app, &bob, &format!("/console/api/conversations/{id}/messages"), &json!({"text": "hi"}));
    assert_eq!(status, 409);

    // Bad texts.
    for (text, expected) in [(json!(""), 400), (json!("   "), 400), (json!("x".repeat(4001)), 413)] {
        let (status, _) =
            act(app, &alice, &format!("/console/api/conversations/{id}/messages"), &json!({"text": text}));
        assert_eq!(status, expected, "{text}");
    }
    for body in [json!({"txt": "hi"}), json!({"text": 5}), json!([1])] {
        let (status, _) = act(app, &alice, &format!("/console/api/conversations/{id}/messages"), &body);
        assert_eq!(status, 400, "{body}");
    }

    // Send as the agent (a canned short code expands); the customer's channel has it; a note stays private.
    let (status, body) =
        act(app, &alice, &format!("/console/api/conversations/{id}/messages"), &json!({"text": "/refuel"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["item"]["kind"], "agent");
    assert!(body["item"]["text"].as_str().unwrap().starts_with("I can add up to 2 GB"));
    let (status, _) =
        act(app, &alice, &format!("/console/api/conversations/{id}/notes"), &json!({"text": "VIP, be nice"}));
    assert_eq!(status, 200);
    let (_, seen) = app.get(&format!("/api/v1/conversations/{id}"));
    let messages = seen["messages"].as_array().unwrap();
    assert!(messages.iter().any(|m| m["role"] == "agent" && m["text"].as_str().unwrap().starts_with("I can add")));
    assert!(!seen.to_string().contains("VIP, be nice"), "private notes never reach the customer");

    // Account actions: a preview states the exact change; the run is audited under alice, once.
    let refuel = json!({"name": "refuel_data", "args": {"customer_id": "C2004", "line_id": "L2005", "gb_amount": 1.0}});
    let (status, preview) = act(app, &alice, &format!("/console/api/conversations/{id}/actions/preview"), &refuel);
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["description"],
        "Add 1 GB of data to line 555-010-2005 (L2005), charged $5.00 on the next bill (1 GB at $5.00 per GB, Basic Plan)."
    );
    assert!(preview["refusal"].is_null());
    let mut run = refuel.clone();
    run["idempotency_key"] = preview["idempotency_key"].clone();
    let (status, done) = act(app, &alice, &format!("/console/api/conversations/{id}/actions"), &run);
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["replayed"], false);
    let (status, again) = act(app, &alice, &format!("/console/api/conversations/{id}/actions"), &run);
    assert_eq!((status, &again["replayed"]), (200, &json!(true)), "a double click runs once");
    let store = app.state.readiness.engine().unwrap().registry().store().clone();
    let refuels: Vec<_> = store
        .audit_for_customer(&CustomerId::parse("C2004").unwrap())
        .unwrap()
        .into_iter()
        .filter(|entry| entry.action == "refuel_data" && entry.actor == Actor::agent("alice"))
        .collect();
    assert_eq!(refuels.len(), 1, "{refuels:?}");
    let html = get(app, &format!("/console/api/conversations/{id}/panel"), Some(&alice)).text().unwrap();
    assert!(html.contains("refuel_data") && html.contains("agent alice"), "the panel's audit log shows it");

    // Refusals: over the policy's limit, another customer's line, a read, no key.
    let too_much = json!({"name": "refuel_data", "args": {"customer_id": "C2004", "line_id": "L2005", "gb_amount": 5.0}, "idempotency_key": "k-too-much"});
    let (status, body) = act(app, &alice, &format!("/console/api/conversations/{id}/actions"), &too_much);
    assert_eq!(status, 422, "{body}");
    let other = json!({"name": "enable_roaming", "args": {"customer_id": "C2001", "line_id": "L2001"}, "idempotency_key": "k-other"});
    let (status, body) = act(app, &alice, &format!("/console/api/conversations/{id}/actions"), &other);
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_action")), "{body}");
    let read = json!({"name": "get_customer_by_id", "args": {"customer_id": "C2004"}, "idempotency_key": "k-read"});
    let (status, _) = act(app, &alice, &format!("/console/api/conversations/{id}/actions"), &read);
    assert_eq!(status, 422);
    let (status, _) = act(app, &alice, &format!("/console/api/conversations/{id}/actions"), &refuel);
    assert_eq!(status, 400, "the idempotency key from the preview is required");
    let (status, _) = act(
        app,
        &alice,
        &format!("/console/api/conversations/{id}/actions/preview"),
        &json!({"name": "launch_rockets", "args": {}}),
    );
    assert_eq!(status, 404);

    // Snooze, assign, hand back.
    let (status, _) = act(app, &alice, &format!("/console/api/conversations/{id}/snooze"), &json!({"minutes": 0}));
    assert_eq!(status, 400);
    let (status, body) = act(app, &alice, &format!("/console/api/conversations/{id}/snooze"), &json!({"minutes": 60}));
    assert_eq!((status, body["header"]["status"].as_str()), (200, Some("snoozed")), "{body}");
    let (_, queue) = get_json(app, "/console/api/queue", &alice);
    assert!(queue["snoozed"].as_array().unwrap().iter().any(|row| row["id"] == id.as_str()));
    let (status, _) = act(app, &alice, &format!("/console/api/conversations/{id}/assign"), &json!({"agent": "ghost"}));
    assert_eq!(status, 404);
    let (status, body) = act(app, &alice, &format!("/console/api/conversations/{id}/assign"), &json!({"agent": "bob"}));
    assert_eq!((status, body["header"]["holder"].as_str()), (200, Some("bob")), "{body}");
    let (status, body) = act(app, &bob, &format!("/console/api/conversations/{id}/hand-back"), &json!({}));
    assert_eq!((status, body["header"]["holder"].as_str()), (200, Some("")), "{body}");
    let turn = app.say(&id, "what are the roaming rates in Canada?");
    assert!(!turn["reply"].as_str().unwrap().is_empty(), "the assistant answers again: {turn}");

    // Close: resolved, the customer is asked for a rating, the answer is stored.
    let (status, body) = act(app, &bob, &format!("/console/api/conversations/{id}/close"), &json!({}));
    assert_eq!((status, body["header"]["status"].as_str()), (200, Some("resolved")), "{body}");
    let (status, _) = act(app, &bob, &format!("/console/api/conversations/{id}/close"), &json!({}));
    assert_eq!(status, 409, "already resolved");
    let events = app.state.conversations.events(&id).unwrap();
    let asked = events.iter().rev().find_map(|event| match &event.kind {
        EventKind::Reply { turn, .. } => Some(turn.awaiting.clone()),
        _ => None,
    });
    assert_eq!(asked, Some(Some("csat".to_string())));
    app.say(&id, "5");
    assert_eq!(app.state.conversations.get(&id).unwrap().csat, Some(5));
}

#[test]
fn supervisors_see_numbers_reports_and_manage_canned_responses() {
    let app = app();
    let id = transferred_conversation(app);
    let alice = sign_in(app, "alice");
    let sue = sign_in(app, "sue");
    for path in ["/console/dashboard", "/console/reports"] {
        assert_eq!(get(app, path, Some(&alice)).status(), 403, "{path}");
        let response = get(app, path, Some(&sue));
        assert_eq!(response.status(), 200, "{path}");
    }
    for path in ["/console/api/numbers", "/console/api/reports"] {
        assert_eq!(get(app, path, Some(&alice)).status(), 403, "{path}");
    }
    let (status, numbers) = get_json(app, "/console/api/numbers", &sue);
    assert_eq!(status, 200);
    assert!(numbers["conversations"].as_u64().unwrap() >= 1 && numbers["transferred"].as_u64().unwrap() >= 1);
    let (status, report) = get_json(app, "/console/api/reports", &sue);
    assert_eq!(status, 200);
    assert_eq!(report["days"].as_array().unwrap().len(), 30);
    assert!(report["top_intents"].as_array().unwrap().iter().any(|row| row["intent"] == "refuel_data"), "{report}");

    // Supervisors see everyone's conversations; agents only unheld ones and their own.
    let bob = sign_in(app, "bob");
    let (status, _) = act(app, &bob, &format!("/console/api/conversations/{id}/take-over"), &json!({}));
    assert_eq!(status, 200);
    let listed = |session: &Session| {
        let (_, queue) = get_json(app, "/console/api/queue", session);
        ["waiting", "active"]
            .iter()
            .any(|section| queue[section].as_array().unwrap().iter().any(|row| row["id"] == id.as_str()))
    };
    assert!(listed(&sue) && listed(&bob) && !listed(&alice));

    // Canned responses: agents read them; supervisors add and delete them (forms with the token).
    let form = |session: &Session, path: &str, fields: &[(&str, &str)]| {
        let mut fields = fields.to_vec();
        fields.push(("csrf", session.csrf.as_str()));
        client().post(app.url(path)).header("cookie", session.cookie()).form(&fields).send().unwrap()
    };
    let response = form(&alice, "/console/canned", &[("shortcode", "/eta"), ("text", "About ten minutes.")]);
    assert_eq!(response.status(), 403);
    let response = form(&sue, "/console/canned", &[("shortcode", "/eta"), ("text", "About <b>ten</b> minutes.")]);
    assert_eq!(response.status(), 200);
    let html = response.text().unwrap();
    assert!(html.contains("About &lt;b&gt;ten") || html.contains("About &#60;b&#62;ten"), "{html}");
    let (_, canned) = get_json(app, "/console/api/canned", &alice);
    assert!(canned.as_array().unwrap().iter().any(|row| row["shortcode"] == "/eta"));
    for (code, text) in [("/two words", "x"), ("/ok", ""), ("", "x")] {
        let response = form(&sue, "/console/canned", &[("shortcode", code), ("text", text)]);
        assert_eq!(response.status(), 400, "{code:?} {text:?}");
    }
    assert_eq!(form(&sue, "/console/canned/eta/delete", &[]).status(), 200);
    assert_eq!(form(&sue, "/console/canned/eta/delete", &[]).status(), 404);
}

#[test]
fn the_staff_api_accepts_a_console_session() {
    let app = app();
    let alice = sign_in(app, "alice");
    let response = get(app, "/api/v1/staff/customers/C2004", Some(&alice));
    assert_eq!(response.status(), 200);
    assert_eq!(get(app, "/api/v1/staff/customers/C2004", None).status(), 401);
    let body = json!({"customer_id": "C2005", "line_id": "L2006", "idempotency_key": "staff-session-roaming"});
    let post = |csrf: Option<&str>| {
        let mut request = client()
            .post(app.url("/api/v1/staff/actions/enable_roaming"))
            .header("cookie", alice.cookie())
            .header("X-Switchboard-Agent", "mallory")
            .json(&body);
        if let Some(csrf) = csrf {
            request = request.header(CSRF_HEADER, csrf);
        }
        request.send().unwrap().status().as_u16()
    };
    assert_eq!(post(None), 401, "a change needs the CSRF header");
    assert_eq!(post(Some("forged")), 401);
    assert_eq!(post(Some(&alice.csrf)), 200);
    let store = app.state.readiness.engine().unwrap().registry().store().clone();
    let entry = store
        .audit_for_customer(&CustomerId::parse("C2005").unwrap())
        .unwrap()
        .into_iter()
        .find(|entry| entry.action == "enable_roaming")
        .unwrap();
    assert_eq!(entry.actor, Actor::agent("alice"), "the session names the agent, not the header");
}

#[test]
fn the_queue_updates_live() {
    let app = app();
    let alice = sign_in(app, "alice");
    let response = client()
        .get(app.url("/console/api/queue/stream"))
        .header("cookie", alice.cookie())
        .timeout(Duration::from_secs(300))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut event = String::new();
        for line in BufReader::new(response).lines() {
            let Ok(line) = line else { return };
            if let Some(name) = line.strip_prefix("event: ") {
                event = name.to_string();
            } else if let Some(data) = line.strip_prefix("data: ")
                && sender.send(format!("{event} {data}")).is_err()
            {
                return;
            }
        }
    });
    let first = receiver.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(first.starts_with("queue "), "{first}");
    let id = transferred_conversation(app);
    let started = Instant::now();
    loop {
        let event = receiver.recv_timeout(Duration::from_secs(60)).expect("a queue update");
        if let Some(data) = event.strip_prefix("queue ") {
            let queue: Value = serde_json::from_str(data).unwrap();
            if queue["waiting"].as_array().unwrap().iter().any(|row| row["id"] == id.as_str()) {
                break;
            }
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the transferred conversation never showed up");
    }
}

#[test]
fn agent_messages_reach_whatsapp() {
    let channels = crate::channels::channels_app();
    let app = &channels.app;
    add_agent(app, "wendy", Role::Agent, PASSWORD);
    let number = "15550007788";
    let conversations = &app.state.conversations;
    let conversation = conversations.create(Channel::Whatsapp, Some(number.into())).unwrap();
    conversations.append(&conversation.id, vec![EventKind::MessageIn { text: "hello".into() }]).unwrap();
    let wendy = sign_in(app, "wendy");
    let (status, body) = act(
        app,
        &wendy,
        &format!("/console/api/conversations/{}/messages", conversation.id),
        &json!({"text": "Hi, Wendy from Kestrel here."}),
    );
    assert_eq!(status, 200, "{body}");
    let sent = channels.graph.wait_for(number, 1, Duration::from_secs(60));
    assert_eq!(sent[0]["text"]["body"], "Hi, Wendy from Kestrel here.", "{}", sent[0]);
    // Resolved by the agent: the rating question reaches WhatsApp too, and the answer is kept.
    let (status, body) = act(app, &wendy, &format!("/console/api/conversations/{}/close", conversation.id), &json!({}));
    assert_eq!(status, 200, "{body}");
    let sent = channels.graph.wait_for(number, 2, Duration::from_secs(60));
    let question = sent[1]["text"]["body"].as_str().unwrap_or_default();
    assert!(question.contains('5'), "the rating question: {}", sent[1]);
}

#[test]
fn agents_add_reads_the_password_from_standard_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let data_dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: &str| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["agents", "add"])
            .args(args)
            .arg("--data-dir")
            .arg(data_dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        (output.status.code(), String::from_utf8_lossy(&output.stderr).to_string())
    };
    assert_eq!(run(&["sam", "--role", "supervisor"], "a good password\n").0, Some(0));
    for (args, stdin) in [
        (vec!["sam", "--role", "admin"], "a good password\n"),
        (vec!["bad name", "--role", "agent"], "a good password\n"),
        (vec!["", "--role", "agent"], "a good password\n"),
        (vec!["sam"], "short\n"),
        (vec!["sam"], ""),
    ] {
        let (code, stderr) = run(&args, stdin);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: ") && stderr.lines().count() == 1, "{stderr}");
    }
    let settings = Settings::for_data_dir(data_dir.path());
    let db = server::app::open_db(&settings).unwrap();
    let console = Console::open(&db, &settings.console).unwrap();
    let sam = console.agents().verify("sam", "a good password").unwrap().unwrap();
    assert_eq!(sam.role, Role::Supervisor);
}

#[test]
fn an_agent_verifies_out_of_band_and_unlocks_with_a_reason_audited() {
    let app = app();
    let alice = sign_in(app, "alice");
    // Lucas (C2002, line 555-010-2003) types wrong codes, in new conversations, until locked.
    let number = "555-010-2003";
    let (id, locked) = 'locking: loop {
        let id = app.new_conversation();
        app.say(&id, &format!("my number is {number}, how much do I owe?"));
        for _ in 0..3 {
            let code = app.latest_code(number).unwrap();
            let turn = app.say(&id, if code == "000000" { "111111" } else { "000000" });
            if turn["reply"].as_str().unwrap().contains("paused") {
                break 'locking (id, turn);
            }
        }
    };
    let customer_id = app.state.conversations.get(&id).unwrap().customer_id.expect("claimed");
    assert_eq!(locked["pending_action"]["name"], "transfer_to_human_agents");
    let panel = get(app, &format!("/console/api/conversations/{id}/panel"), Some(&alice)).text().unwrap();
    assert!(panel.contains("verification locked") && panel.contains("data-identity=\"unlock\""), "{panel}");

    // A reason is required; then the lockout goes, audited under the agent.
    let unlock = format!("/console/api/conversations/{id}/unlock");
    for reason in ["", "   ", &"x".repeat(501)] {
        let (status, body) = act(app, &alice, &unlock, &json!({"reason": reason}));
        assert!(matches!(status, 413 | 422), "{reason:?}: {status} {body}");
    }
    let (status, body) = act(app, &alice, &unlock, &json!({"reason": "called her back on the number on file"}));
    assert_eq!(status, 200, "{body}");
    let engine = app.state.readiness.engine().unwrap().clone();
    assert!(!engine.identity().is_locked(&customer_id).unwrap());
    let audit = engine
        .registry()
        .store()
        .audit_for_customer(&accounts::CustomerId::parse(customer_id.clone()).unwrap())
        .unwrap();
    let entry = audit.iter().find(|entry| entry.action == "unlock_verification").expect("the unlock is audited");
    assert_eq!(entry.actor, Actor::agent("alice"));
    assert_eq!(entry.args["reason"], "called her back on the number on file");

    // Out of band: the agent verifies the claimed customer.
    let other = app.new_conversation();
    app.say(&other, &format!("my number is {number}, how much do I owe?"));
    let (status, body) = act(
        app,
        &alice,
        &format!("/console/api/conversations/{other}/verify"),
        &json!({"reason": "answered her security questions on the phone"}),
    );
    assert_eq!(status, 200, "{body}");
    let (_, view) = app.get(&format!("/api/v1/conversations/{other}"));
    assert_eq!(view["assurance"], "verified", "{view}");
    let audit =
        engine.registry().store().audit_for_customer(&accounts::CustomerId::parse(customer_id).unwrap()).unwrap();
    assert!(audit.iter().any(|entry| entry.action == "verify_customer" && entry.actor == Actor::agent("alice")));
    // Without a claim there is nobody to verify.
    let nobody = app.new_conversation();
    app.say(&nobody, "hello");
    let (status, body) =
        act(app, &alice, &format!("/console/api/conversations/{nobody}/verify"), &json!({"reason": "x"}));
    assert_eq!(status, 422, "{body}");
}
