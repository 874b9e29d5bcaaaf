//! Who the customer is, through the HTTP API on the tau2 accounts: a claim reveals nothing, a
//! code texted to a number on file verifies, failed proofs lock across conversations, other
//! people's lines are declined, and a dead SMS gateway or network API fails closed. The SMS
//! gateway and the CAMARA APIs are local HTTP servers that follow their contracts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use crate::accounts_domain::TAU2_DB;
use crate::support::TestApp;
use accounts::TAU2_TODAY;
use server::config::{Secret, Settings};

/// A server on the tau2 accounts, with `adjust` applied to its settings. No knowledge is
/// indexed (these tests are about accounts), which keeps its start short.
fn tau2_app(adjust: impl FnOnce(&mut Settings)) -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let seed = dir.path().join("tau2.toml");
    std::fs::write(&seed, TAU2_DB).unwrap();
    let mut settings = Settings::for_data_dir(&dir.path().join("data"));
    settings.accounts.seed = seed.display().to_string();
    settings.accounts.today = Some(TAU2_TODAY);
    settings.models.chat_disabled = true;
    settings.knowledge.dirs = Vec::new();
    adjust(&mut settings);
    (TestApp::spawn_with(settings), dir)
}

/// One tau2 server with the default identity settings, shared by the tests that need no other
/// (each works on a customer of its own, since failed proofs count per customer).
fn shared_tau2() -> &'static TestApp {
    static APP: std::sync::OnceLock<(TestApp, tempfile::TempDir)> = std::sync::OnceLock::new();
    &APP.get_or_init(|| tau2_app(|_| {})).0
}

fn conversation(app: &TestApp) -> (String, Value) {
    let id = app.new_conversation();
    let (_, view) = app.get(&format!("/api/v1/conversations/{id}"));
    (id, view)
}

fn view(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/v1/conversations/{id}")).1
}

fn action_names(turn: &Value) -> Vec<String> {
    turn["actions"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap().to_string()).collect()
}

/// Words of C1001 (John Smith, Basic Plan, L1001/L1002...) that must not show before proof.
const JOHN_FACTS: &[&str] = &["John", "Smith", "Basic Plan", "Premium", "L1001", "L1002", "B1001", "C1001"];

#[test]
fn a_claim_reveals_nothing_and_a_texted_code_verifies() {
    let app = shared_tau2();
    let (id, before) = conversation(app);
    assert_eq!(before["assurance"], "anonymous");
    let turn = app.say(&id, "Hi, my number is 555-123-2002. How much do I owe?");
    assert_eq!(turn["awaiting"], "verification_code", "{turn}");
    let reply = turn["reply"].as_str().unwrap().to_string();
    for fact in JOHN_FACTS {
        assert!(!turn.to_string().contains(fact), "{fact} shown before proof: {turn}");
    }
    assert!(turn["actions"].as_array().unwrap().is_empty(), "the look-up does not show: {turn}");
    let claimed = view(app, &id);
    assert_eq!(claimed["assurance"], "claimed");
    assert!(claimed["customer"].is_null(), "no customer before proof: {claimed}");
    for fact in JOHN_FACTS {
        assert!(!claimed.to_string().contains(fact), "{fact} in the conversation view: {claimed}");
    }

    // A number that is no customer's gets the very same answer, and no text goes to it.
    let (other, _) = conversation(app);
    let nobody = app.say(&other, "Hi, my number is 555-999-0000. How much do I owe?");
    assert_eq!(nobody["reply"].as_str().unwrap(), reply, "a claim does not tell whether it matched");
    assert_eq!(nobody["awaiting"], "verification_code");
    assert!(!app.texts().iter().any(|text| text.to == "+15559990000"), "no text for a number that is not on file");
    let wrong = app.say(&other, "123456");
    assert_eq!(wrong["awaiting"], "verification_code", "{wrong}");

    // The code went to the number on file, as E.164, and proves the claim.
    let texts = app.texts();
    let last = texts.iter().rev().find(|text| text.to == "+15551232002").expect("a text to the number on file");
    assert!(last.text.contains("verification code"), "{}", last.text);
    let turn = app.prove(&id, "555-123-2002");
    assert!(action_names(&turn).contains(&"get_customer_by_phone".to_string()), "{turn}");
    let verified = view(app, &id);
    assert_eq!(verified["assurance"], "verified", "{turn}");
    assert_eq!(verified["customer"]["id"], "C1001");
    assert_eq!(verified["customer"]["name"], "John S.");
    // The code is in no event but the customer's own message.
    let code = app.latest_code("555-123-2002").unwrap();
    for event in app.state.conversations.events(&id).unwrap() {
        if !matches!(event.kind, engine::conversations::EventKind::MessageIn { .. }) {
            assert!(!serde_json::to_string(&event.kind).unwrap().contains(&code), "{:?}", event.kind);
        }
    }
}

#[test]
fn no_action_runs_on_a_line_outside_the_verified_account() {
    let app = shared_tau2();
    let id = app.new_conversation();
    let read = |path: &str| app.state.readiness.engine().unwrap().registry().store().read_path(path).unwrap();
    let before = read("lines.L1004.data_refueling_gb");
    // John Smith (C1001) asks for data on 555-123-2004, a line of another customer.
    let turn = app.say(&id, "My number is 555-123-2001. Can you put 2 GB of data on my daughter's line 555-123-2004?");
    assert_eq!(turn["awaiting"], "verification_code", "{turn}");
    assert!(app.latest_code("555-123-2001").is_some(), "the code goes to his own number");
    assert!(app.latest_code("555-123-2004").is_none(), "not to hers");
    let turn = app.prove(&id, "555-123-2001");
    assert!(turn["reply"].as_str().unwrap().contains("own account"), "declined: {turn}");
    assert_ne!(turn["awaiting"], "confirmation", "{turn}");
    for leak in ["Sarah", "Johnson", "Unlimited", "L1004", "C1002"] {
        assert!(!turn.to_string().contains(leak), "{leak} told about the other line: {turn}");
    }
    assert_eq!(read("lines.L1004.data_refueling_gb"), before);
}

#[test]
fn the_sixth_failed_proof_in_a_new_conversation_is_refused() {
    let app = shared_tau2();
    let claim = |id: &str| app.say(id, "Hi, my number is 555-123-2005, I want to pay my bill");
    let wrong = |id: &str| {
        let code = app.latest_code("555-123-2005").unwrap();
        let guess = if code == "000000" { "111111" } else { "000000" };
        app.say(id, guess)
    };
    let first = app.new_conversation();
    assert_eq!(claim(&first)["awaiting"], "verification_code");
    for _ in 0..3 {
        wrong(&first);
    }
    let second = app.new_conversation();
    assert_eq!(claim(&second)["awaiting"], "verification_code");
    wrong(&second);
    let locked = wrong(&second);
    assert!(locked["reply"].as_str().unwrap().contains("paused"), "the fifth failure locks: {locked}");
    assert_eq!(locked["pending_action"]["name"], "transfer_to_human_agents", "a person is offered: {locked}");

    let to_her = || app.texts().iter().filter(|text| text.to == "+15551232005").count();
    let n_texts = to_her();
    let third = app.new_conversation();
    let refused = claim(&third);
    assert!(refused["reply"].as_str().unwrap().contains("paused"), "{refused}");
    assert_ne!(refused["awaiting"], "verification_code", "{refused}");
    assert_eq!(to_her(), n_texts, "no new code while locked");
    assert_eq!(view(app, &third)["assurance"], "claimed");
    // The right code of an earlier conversation does not help either.
    let code = app.latest_code("555-123-2005").unwrap();
    let turn = app.say(&third, &code);
    assert_ne!(view(app, &third)["assurance"], "verified", "{turn}");
    let events = app.state.conversations.events(&second).unwrap();
    let failures =
        events.iter().filter(|e| matches!(e.kind, engine::conversations::EventKind::ProofFailed { .. })).count();
    assert!(failures >= 2, "failed proofs are events in the log");
}

#[test]
fn bad_codes_get_clear_answers_and_nothing_else() {
    let app = shared_tau2();
    let id = app.new_conversation();
    app.say(&id, "my customer id is C1003, how much do I owe?");
    assert!(app.latest_code("555-123-1003").is_some(), "a customer id's code goes to the contact number");
    for (typed, expected) in [("12 34 5a", "doesn't look like a code"), ("abcdef", "doesn't look like a code")] {
        let turn = app.say(&id, typed);
        assert!(turn["reply"].as_str().unwrap().contains(expected), "{typed}: {turn}");
        assert_eq!(turn["awaiting"], "verification_code");
    }
    let code = app.latest_code("555-123-1003").unwrap();
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let turn = app.say(&id, &spaced);
    assert_eq!(view(app, &id)["assurance"], "verified", "a code with a space is read: {turn}");
    assert!(turn["reply"].as_str().unwrap().contains("verified"), "{turn}");

    // The same code again in a new conversation proves nothing.
    let other = app.new_conversation();
    app.say(&other, "my customer id is C1003, how much do I owe?");
    let turn = app.say(&other, &code);
    assert_ne!(view(app, &other)["assurance"], "verified", "a replayed code: {turn}");
}

#[test]
fn a_verification_lapses_after_a_silence() {
    let (app, _dir) = tau2_app(|settings| settings.identity.verified_minutes = 0);
    let id = app.new_conversation();
    app.say(&id, "my number is 555-123-2002, how much data have I used?");
    app.prove(&id, "555-123-2002");
    assert_eq!(view(&app, &id)["assurance"], "verified");
    std::thread::sleep(Duration::from_millis(1100));
    let turn = app.say(&id, "and how much do I owe?");
    assert_eq!(turn["awaiting"], "verification_code", "proof is asked again after the silence: {turn}");
    let events = app.state.conversations.events(&id).unwrap();
    assert!(events.iter().any(|e| matches!(e.kind, engine::conversations::EventKind::VerificationLapsed { .. })));
}

/// One request a fake operator endpoint received.
#[derive(Clone, Debug)]
struct Call {
    path: String,
    headers: std::collections::BTreeMap<String, String>,
    body: Value,
    raw: Vec<u8>,
}

impl Call {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What a fake operator endpoint received.
type Received = Arc<Mutex<Vec<Call>>>;

/// A local HTTP server answering every POST with `answer(path, body)`; returns its base URL.
fn fake_server(answer: impl Fn(&Call) -> (u16, Value) + Send + Sync + 'static) -> (String, Received) {
    let received: Received = Arc::new(Mutex::new(Vec::new()));
    let shared = (received.clone(), Arc::new(answer));
    let (port_sender, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let server = HttpServer::new(move || {
                let shared = shared.clone();
                App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                    let (received, answer) = shared.clone();
                    async move {
                        let value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                            let form: Vec<(String, String)> = url_form(&body);
                            json!(form.into_iter().collect::<std::collections::BTreeMap<_, _>>())
                        });
                        let headers = request
                            .headers()
                            .iter()
                            .map(|(name, value)| (name.as_str().to_string(), value.to_str().unwrap_or("").to_string()))
                            .collect();
                        let call = Call { path: request.path().to_string(), headers, body: value, raw: body.to_vec() };
                        let (status, reply) = answer(&call);
                        received.lock().unwrap().push(call);
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(reply)
                    }
                }))
            })
            .workers(1)
            .bind("127.0.0.1:0")
            .unwrap();
            port_sender.send(server.addrs()[0].port()).unwrap();
            server.run().await.unwrap();
        });
    });
    (format!("http://127.0.0.1:{}", port.recv().unwrap()), received)
}

fn url_form(body: &[u8]) -> Vec<(String, String)> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_string(), v.replace("%3A", ":").replace('+', " ")))
        .collect()
}

#[test]
fn the_sms_gateway_gets_a_signed_delivery_and_a_dead_one_fails_closed() {
    let (url, received) = fake_server(|_| (200, json!({"result": {"message_id": "m1"}})));
    let (app, _dir) = tau2_app(|settings| {
        settings.sms.url = format!("{url}/sms");
        settings.sms.secret = Secret::new("sms-secret");
    });
    let id = app.new_conversation();
    app.say(&id, "my number is 555-123-2002, what do I owe?");
    let call = received.lock().unwrap().last().cloned().expect("a delivery");
    let body = call.body.clone();
    assert_eq!(body["action"], "send_sms");
    assert_eq!(body["args"]["to"], "+15551232002");
    let signature = call.header("x-switchboard-signature").unwrap();
    assert!(
        accounts::hooks::verify_signature(
            "sms-secret",
            signature,
            &call.raw,
            SystemTime::now(),
            Duration::from_secs(300)
        ),
        "signed over the body"
    );
    assert!(call.header("idempotency-key").is_some());
    assert!(app.texts().is_empty(), "with a gateway, nothing goes to the outbox");
    let (status, _) = app.get("/demo/sms");
    assert_eq!(status, 404, "no outbox page with a gateway");
    let text = body["args"]["text"].as_str().unwrap();
    let code: String = text.split(|c: char| !c.is_ascii_digit()).find(|d| d.len() == 6).unwrap().to_string();
    app.say(&id, &code);
    assert_eq!(view(&app, &id)["assurance"], "verified");

    // A gateway that does not answer: no verification, a person offered.
    let (dead, _dir2) = tau2_app(|settings| {
        settings.sms.url = "http://127.0.0.1:9/sms".into();
        settings.sms.secret = Secret::new("sms-secret");
        settings.sms.timeout_ms = 300;
    });
    let id = dead.new_conversation();
    let turn = dead.say(&id, "my number is 555-123-2002, what do I owe?");
    assert_ne!(turn["awaiting"], "verification_code", "{turn}");
    assert_eq!(turn["pending_action"]["name"], "transfer_to_human_agents", "{turn}");
    assert_ne!(view(&dead, &id)["assurance"], "verified");
}

/// A CAMARA server: OAuth2 client credentials, SIM Swap `check` (2.1.0) for the swapped numbers.
fn camara(swapped: &'static [&'static str]) -> (String, Received) {
    fake_server(move |call| match call.path.as_str() {
        "/oauth/token" => (200, json!({"access_token": "t-123", "token_type": "Bearer", "expires_in": 3600})),
        "/sim-swap/v2/check" => {
            let number = call.body["phoneNumber"].as_str().unwrap_or("");
            let valid = number.starts_with('+') && number[1..].chars().all(|c| c.is_ascii_digit());
            let max_age = call.body["maxAge"].as_u64().unwrap_or(0);
            if !valid || !(1..=2400).contains(&max_age) {
                return (400, json!({"status": 400, "code": "INVALID_ARGUMENT", "message": "bad request"}));
            }
            (200, json!({"swapped": swapped.contains(&number)}))
        }
        _ => (404, json!({"status": 404, "code": "NOT_FOUND", "message": "no such API"})),
    })
}

#[test]
fn a_recent_sim_swap_blocks_codes_and_hands_over_and_a_dead_network_fails_closed() {
    let (url, received) = camara(&["+15551232002"]);
    let (app, _dir) = tau2_app(|settings| {
        settings.camara.base_url = url.clone();
        settings.camara.token_url = format!("{url}/oauth/token");
        settings.camara.client_id = "switchboard".into();
        settings.camara.client_secret = Secret::new("camara-secret");
        settings.camara.sim_swap_max_age_hours = 72;
    });
    let swapped = app.new_conversation();
    let turn = app.say(&swapped, "my number is 555-123-2002, I want to pay my bill");
    assert_eq!(turn["handoff"], true, "{turn}");
    assert!(turn["reply"].as_str().unwrap().contains("SIM"), "{turn}");
    assert!(app.texts().is_empty(), "no code to a swapped SIM");
    let calls = received.lock().unwrap().clone();
    let check = calls.iter().find(|call| call.path == "/sim-swap/v2/check").expect("a SIM swap check");
    assert_eq!(check.body, json!({"phoneNumber": "+15551232002", "maxAge": 72}));
    assert_eq!(check.header("authorization"), Some("Bearer t-123"));
    assert!(check.header("x-correlator").is_some());
    let token = calls.iter().find(|call| call.path == "/oauth/token").expect("a token request");
    assert_eq!(token.body["grant_type"], "client_credentials");

    // A line whose SIM was not swapped gets its code.
    let fine = app.new_conversation();
    let turn = app.say(&fine, "my number is 555-123-2001, I want to pay my bill");
    assert_eq!(turn["awaiting"], "verification_code", "{turn}");

    // A network API that does not answer: no code, no verification, a person offered.
    let (dead, _dir2) = tau2_app(|settings| {
        settings.camara.base_url = "http://127.0.0.1:9".into();
        settings.camara.token_url = "http://127.0.0.1:9/oauth/token".into();
        settings.camara.timeout_ms = 300;
    });
    let id = dead.new_conversation();
    let turn = dead.say(&id, "my number is 555-123-2001, I want to pay my bill");
    assert_ne!(turn["awaiting"], "verification_code", "{turn}");
    assert_eq!(turn["pending_action"]["name"], "transfer_to_human_agents", "{turn}");
    assert!(dead.texts().is_empty());
}

#[test]
fn conversation_creation_is_capped_per_address() {
    let (app, _dir) = tau2_app(|settings| {
        settings.limits.conversations_per_ip_per_hour = 40;
        settings.limits.requests_per_ip_per_minute = 0;
    });
    let started = std::time::Instant::now();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..300 {
        let response = crate::support::client().post(app.url("/api/v1/conversations")).json(&json!({})).send().unwrap();
        statuses.push(response.status().as_u16());
        if response.status().as_u16() == 429 {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
            let body: Value = response.json().unwrap();
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
        }
    }
    assert!(started.elapsed() < Duration::from_secs(10), "300 creations in {:?}", started.elapsed());
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 40, "exactly the cap is created");
    assert!(statuses[40..].iter().all(|s| *s == 429), "every creation after the cap is refused");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!((1..=3600).contains(&seconds));
}

#[test]
fn requests_and_messages_are_rate_limited() {
    let (app, _dir) = tau2_app(|settings| {
        settings.limits.requests_per_ip_per_minute = 0;
        settings.limits.messages_per_conversation_per_minute = 3;
    });
    let id = app.new_conversation();
    for _ in 0..3 {
        app.say(&id, "hello");
    }
    let (status, body) = app.post_json(&format!("/api/v1/conversations/{id}/messages"), &json!({"text": "hello"}));
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")), "{body}");
    // Another conversation is not held back.
    let other = app.new_conversation();
    app.say(&other, "hello");
}

/// A CAMARA server for Number Verification (and a SIM Swap that reports no swap): the phone holding `phone-<digits>` tokens is that
/// number; the authorization code `code-<digits>` becomes such a token.
fn camara_number_verification() -> (String, Received) {
    fake_server(|call| match call.path.as_str() {
        "/oauth/token" if call.body["grant_type"] == "client_credentials" => {
            (200, json!({"access_token": "operator-token", "token_type": "Bearer", "expires_in": 300}))
        }
        "/oauth/token" => match call.body["code"].as_str() {
            Some(code) if code.starts_with("code-") && call.body["grant_type"] == "authorization_code" => {
                let token = code.replacen("code-", "phone-", 1);
                (200, json!({"access_token": token, "token_type": "Bearer", "expires_in": 300}))
            }
            _ => (400, json!({"error": "invalid_grant"})),
        },
        "/sim-swap/v2/check" => (200, json!({"swapped": false})),
        "/number-verification/v2/verify" => {
            // The phone is the number its token carries.
            let token = call.header("authorization").unwrap_or("").trim_start_matches("Bearer ");
            let number = call.body["phoneNumber"].as_str().unwrap_or("+");
            (200, json!({"devicePhoneNumberVerified": token == format!("phone-{}", &number[1..])}))
        }
        _ => (404, json!({"status": 404, "code": "NOT_FOUND", "message": "no such API"})),
    })
}

#[test]
fn the_mobile_network_verifies_the_phone_that_holds_the_number() {
    let (url, received) = camara_number_verification();
    let (app, _dir) = tau2_app(|settings| {
        settings.camara.base_url = url.clone();
        settings.camara.token_url = format!("{url}/oauth/token");
        settings.camara.authorize_url = format!("{url}/authorize");
        settings.camara.client_id = "switchboard".into();
        settings.camara.number_verification = true;
    });
    let id = app.new_conversation();
    let turn = app.say(&id, "my number is 555-123-2002, how much do I owe?");
    assert_eq!(turn["awaiting"], "verification_code");
    let link = turn["links"][0]["url"].as_str().expect("a link to verify with the network").to_string();
    let no_redirects =
        reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let response = no_redirects.get(app.url(&link)).send().unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let location = reqwest::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert!(location.as_str().starts_with(&format!("{url}/authorize")), "{location}");
    let query: std::collections::BTreeMap<String, String> = location.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["prompt"], "none");
    assert!(query["scope"].contains("number-verification:verify"));
    let callback = reqwest::Url::parse(&query["redirect_uri"]).unwrap();
    let state = query["state"].clone();

    // The operator sends the phone back with a code; a forged state is refused first.
    let back = |code: &str, state: &str| {
        let mut target = callback.clone();
        target.query_pairs_mut().append_pair("code", code).append_pair("state", state);
        let response = no_redirects.get(target).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    let (status, page) = back("code-15551232002", &state.replace('.', "x"));
    assert_eq!(status, 400, "{page}");
    assert_ne!(view(&app, &id)["assurance"], "verified");
    // A phone with another number: not verified, and said so.
    let (status, page) = back("code-15559990000", &state);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("could not confirm"), "{page}");
    assert_ne!(view(&app, &id)["assurance"], "verified");
    // The phone that holds 555-123-2002: verified.
    let (status, page) = back("code-15551232002", &state);
    assert_eq!(status, 200, "{page}");
    assert_eq!(view(&app, &id)["assurance"], "verified", "{page}");
    let verify = received
        .lock()
        .unwrap()
        .iter()
        .rev()
        .find(|call| call.path == "/number-verification/v2/verify")
        .cloned()
        .unwrap();
    assert_eq!(verify.body, json!({"phoneNumber": "+15551232002"}));
    assert_eq!(verify.header("authorization"), Some("Bearer phone-15551232002"));
    // The operator refusing (off mobile data: login_required) is a clear page, nothing more.
    let mut refused = callback.clone();
    refused.query_pairs_mut().append_pair("error", "login_required").append_pair("state", &state);
    let response = no_redirects.get(refused).send().unwrap();
    assert_eq!(response.status().as_u16(), 400);
}
