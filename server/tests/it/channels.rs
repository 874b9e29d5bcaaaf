//! Shared fixtures of the channel tests: one server with the WhatsApp channel and the widget
//! secret configured, a local stand-in for the Graph API's send-message endpoint, and a
//! small server-sent-events client.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};
use server::config::{Secret, Settings, WhatsAppSettings};

use crate::support::TestApp;

pub const APP_SECRET: &str = "test-app-secret";
pub const VERIFY_TOKEN: &str = "test-verify-token";
pub const ACCESS_TOKEN: &str = "test-access-token";
pub const PHONE_NUMBER_ID: &str = "106540352242922";
pub const WIDGET_SECRET: &str = "test-widget-secret";
pub const TEMPLATE: &str = "customer_care_followup";

/// Recipients whose first send fails with a 503 (to prove the retry).
pub const FAIL_ONCE: &[&str] = &["15550009901"];
/// Recipients the stand-in always refuses with a 400 (no retry).
pub const ALWAYS_400: &[&str] = &["15550009902"];

/// The server every channel test shares, and its Graph API stand-in.
pub struct ChannelsApp {
    pub app: TestApp,
    pub graph: GraphStandIn,
    _data_dir: tempfile::TempDir,
}

pub fn channels_app() -> &'static ChannelsApp {
    static APP: OnceLock<ChannelsApp> = OnceLock::new();
    APP.get_or_init(|| {
        let graph = GraphStandIn::start();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::for_data_dir(data_dir.path());
        settings.widget.secret = Secret::new(WIDGET_SECRET);
        // The streamed path: knowledge answers rephrased by the chat model, token by token.
        settings.dialogue.rephrase_answers = true;
        settings.whatsapp = WhatsAppSettings {
            verify_token: Secret::new(VERIFY_TOKEN),
            app_secret: Secret::new(APP_SECRET),
            access_token: Secret::new(ACCESS_TOKEN),
            phone_number_id: PHONE_NUMBER_ID.into(),
            api_base_url: format!("{}/v21.0", graph.base_url),
            template_name: TEMPLATE.into(),
            template_language: "en_US".into(),
            ..WhatsAppSettings::default()
        };
        let app = TestApp::spawn_with(settings);
        ChannelsApp { app, graph, _data_dir: data_dir }
    })
}

/// One request the stand-in received.
#[derive(Debug, Clone)]
pub struct Received {
    pub to: String,
    pub body: Value,
    /// What the stand-in answered.
    pub status: u16,
    /// Why the request's shape was refused, if it was.
    pub shape_error: Option<String>,
}

/// A local HTTP receiver standing in for `POST {api_base_url}/{phone_number_id}/messages`: it
/// checks the bearer token and the request shape (Meta's limits included), fails the first
/// send to [`FAIL_ONCE`] numbers with a 503, and records everything.
pub struct GraphStandIn {
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl GraphStandIn {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the stand-in");
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let failed_once = Arc::new(Mutex::new(HashSet::<String>::new()));
        let shared = (received.clone(), failed_once);
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                HttpServer::new(move || {
                    App::new()
                        .app_data(web::Data::new(shared.clone()))
                        .app_data(web::PayloadConfig::new(1 << 20))
                        .route("/v21.0/{phone_number_id}/messages", web::post().to(receive))
                })
                .workers(1)
                .listen(listener)
                .expect("listening")
                .run()
                .await
                .expect("stand-in server")
            })
        });
        Self { base_url, received }
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests to one number, in order.
    pub fn to(&self, number: &str) -> Vec<Received> {
        self.all().into_iter().filter(|r| r.to == number).collect()
    }

    /// Waits until `n` messages to `number` were accepted (200); returns their bodies.
    pub fn wait_for(&self, number: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let accepted: Vec<Value> =
                self.to(number).into_iter().filter(|r| r.status == 200).map(|r| r.body).collect();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                started.elapsed() < timeout,
                "{n} messages to {number} expected within {timeout:?}; got {:#?}",
                self.to(number)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

type StandInState = (Arc<Mutex<Vec<Received>>>, Arc<Mutex<HashSet<String>>>);

async fn receive(
    request: HttpRequest,
    path: web::Path<String>,
    state: web::Data<StandInState>,
    body: web::Bytes,
) -> HttpResponse {
    let (received, failed_once) = state.get_ref();
    let authorization = request.headers().get("authorization").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let to = body["to"].as_str().unwrap_or_default().to_string();
    let mut record = Received { to: to.clone(), body: body.clone(), status: 200, shape_error: None };
    let response = if authorization != format!("Bearer {ACCESS_TOKEN}") {
        record.status = 401;
        record.shape_error = Some(format!("bad authorization header {authorization:?}"));
        HttpResponse::Unauthorized().json(json!({"error": {"message": "Invalid OAuth access token", "code": 190}}))
    } else if path.as_str() != PHONE_NUMBER_ID {
        record.status = 404;
        record.shape_error = Some(format!("unknown phone number id {path}"));
        HttpResponse::NotFound().finish()
    } else if let Err(why) = check_shape(&body) {
        record.status = 400;
        record.shape_error = Some(why.clone());
        HttpResponse::BadRequest().json(json!({"error": {"message": why, "code": 100}}))
    } else if ALWAYS_400.contains(&to.as_str()) {
        record.status = 400;
        HttpResponse::BadRequest()
            .json(json!({"error": {"message": "Recipient phone number not in allowed list", "code": 131030}}))
    } else if FAIL_ONCE.contains(&to.as_str()) && failed_once.lock().unwrap().insert(to.clone()) {
        record.status = 503;
        HttpResponse::ServiceUnavailable()
            .json(json!({"error": {"message": "Service temporarily unavailable", "code": 2}}))
    } else {
        let n = received.lock().unwrap().len();
        HttpResponse::Ok().json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": to, "wa_id": to}],
            "messages": [{"id": format!("wamid.standin.{n}")}]
        }))
    };
    received.lock().unwrap().push(record);
    response
}

/// Meta's send-message shape and limits.
fn check_shape(body: &Value) -> Result<(), String> {
    let fail = |why: &str| Err(format!("{why}: {body}"));
    if body["messaging_product"] != "whatsapp" {
        return fail("messaging_product must be whatsapp");
    }
    let to = body["to"].as_str().unwrap_or_default();
    if to.is_empty() || !to.bytes().all(|b| b.is_ascii_digit()) {
        return fail("to must be the number's digits");
    }
    let chars = |value: &Value| value.as_str().map(|s| s.chars().count()).unwrap_or(0);
    match body["type"].as_str() {
        Some("text") => {
            let n = chars(&body["text"]["body"]);
            if n == 0 || n > 4096 {
                return fail("text.body must be 1 to 4096 characters");
            }
        }
        Some("interactive") => {
            let interactive = &body["interactive"];
            let n_body = chars(&interactive["body"]["text"]);
            if n_body == 0 || n_body > 1024 {
                return fail("interactive.body.text must be 1 to 1024 characters");
            }
            match interactive["type"].as_str() {
                Some("button") => {
                    let buttons = interactive["action"]["buttons"].as_array().cloned().unwrap_or_default();
                    if buttons.is_empty() || buttons.len() > 3 {
                        return fail("1 to 3 buttons");
                    }
                    let mut ids = HashSet::new();
                    for button in &buttons {
                        if button["type"] != "reply" || chars(&button["reply"]["title"]) == 0 {
                            return fail("buttons are replies with a title");
                        }
                        if chars(&button["reply"]["title"]) > 20 || chars(&button["reply"]["id"]) > 256 {
                            return fail("button titles are at most 20 characters");
                        }
                        if !ids.insert(button["reply"]["id"].to_string()) {
                            return fail("button ids are unique");
                        }
                    }
                }
                Some("list") => {
                    if chars(&interactive["action"]["button"]) == 0 || chars(&interactive["action"]["button"]) > 20 {
                        return fail("the list button label is 1 to 20 characters");
                    }
                    let sections = interactive["action"]["sections"].as_array().cloned().unwrap_or_default();
                    let rows: Vec<Value> =
                        sections.iter().flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default()).collect();
                    if rows.is_empty() || rows.len() > 10 {
                        return fail("1 to 10 rows");
                    }
                    for row in &rows {
                        if chars(&row["title"]) == 0 || chars(&row["title"]) > 24 || chars(&row["id"]) > 200 {
                            return fail("row titles are 1 to 24 characters");
                        }
                        if chars(&row["description"]) > 72 {
                            return fail("row descriptions are at most 72 characters");
                        }
                    }
                }
                _ => return fail("interactive.type must be button or list"),
            }
        }
        Some("template") => {
            if chars(&body["template"]["name"]) == 0 || chars(&body["template"]["language"]["code"]) == 0 {
                return fail("a template has a name and a language code");
            }
        }
        _ => return fail("type must be text, interactive or template"),
    }
    Ok(())
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub id: Option<String>,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// Reads a conversation's event stream on a thread.
pub struct SseClient {
    events: mpsc::Receiver<SseEvent>,
}

impl SseClient {
    /// Opens the stream; `headers` are extra request headers (`Last-Event-ID`).
    pub fn open(url: &str, headers: &[(&str, &str)]) -> Result<Self, (u16, String)> {
        let client = reqwest::blocking::Client::builder().timeout(None).build().unwrap();
        let mut request = client.get(url).header("accept", "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().expect("GET stream");
        let status = response.status().as_u16();
        if status != 200 {
            return Err((status, response.text().unwrap_or_default()));
        }
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with("text/event-stream"), "{content_type}");
        let (sender, events) = mpsc::channel();
        std::thread::spawn(move || {
            let reader = BufReader::new(response);
            let mut fields: HashMap<String, String> = HashMap::new();
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if line.is_empty() {
                    if let Some(data) = fields.remove("data") {
                        let event = SseEvent {
                            event: fields.remove("event").unwrap_or_else(|| "message".into()),
                            id: fields.remove("id"),
                            data,
                        };
                        if sender.send(event).is_err() {
                            return;
                        }
                    }
                    fields.clear();
                } else if line.starts_with(':') {
                    // a comment (keep-alive)
                } else if let Some((name, value)) = line.split_once(':') {
                    let value = value.strip_prefix(' ').unwrap_or(value).to_string();
                    fields.entry(name.to_string()).and_modify(|v| v.push_str(&format!("\n{value}"))).or_insert(value);
                }
            }
        });
        Ok(Self { events })
    }

    pub fn next(&self, timeout: Duration) -> Option<SseEvent> {
        self.events.recv_timeout(timeout).ok()
    }

    /// Events until one named `name` (included); panics after `timeout`.
    pub fn until(&self, name: &str, timeout: Duration) -> Vec<SseEvent> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let left = timeout.checked_sub(started.elapsed()).unwrap_or_default();
            match self.next(left) {
                Some(event) => {
                    let done = event.event == name;
                    seen.push(event);
                    if done {
                        return seen;
                    }
                }
                None => panic!("no {name} event within {timeout:?}; got {seen:#?}"),
            }
        }
    }
}
