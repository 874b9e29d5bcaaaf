//! Outbound messages in the Cloud API send-message shape, and the client that posts them to
//! `{api_base_url}/{phone_number_id}/messages` with the bearer token, retrying on 5xx and
//! network failures (timeouts included) with exponential backoff, never on 4xx.

use std::time::Duration;

use serde_json::{Value, json};

use crate::channels::choices::Choice;
use crate::config::Secret;

/// WhatsApp's limits for interactive messages.
pub const MAX_BUTTONS: usize = 3;
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
pub const MAX_LIST_ROWS: usize = 10;
pub const MAX_ROW_TITLE_CHARS: usize = 24;
pub const MAX_ROW_DESCRIPTION_CHARS: usize = 72;
pub const MAX_INTERACTIVE_BODY_CHARS: usize = 1024;
pub const MAX_TEXT_BODY_CHARS: usize = 4096;
/// Prefix of the ids of the reply buttons and list rows we send: the rest is the value.
pub const CHOICE_ID_PREFIX: &str = "choice:";

/// What a reply becomes on WhatsApp.
#[derive(Debug, Clone, PartialEq)]
pub struct Outbound {
    /// The send-message bodies, in order.
    pub messages: Vec<Value>,
    /// Choices offered as numbered text (the customer answers with a number), if any.
    pub numbered: Option<Vec<String>>,
}

/// The messages for a reply with its choices: reply buttons when they fit (≤ 3, titles
/// ≤ 20 characters), else a list (≤ 10 rows, titles ≤ 24), else numbered text.
pub fn reply_messages(to: &str, reply: &str, choices: &[Choice]) -> Outbound {
    if choices.is_empty() {
        return Outbound { messages: text_messages(to, reply), numbered: None };
    }
    let fits_buttons = choices.len() <= MAX_BUTTONS
        && choices.iter().all(|c| c.label.chars().count() <= MAX_BUTTON_TITLE_CHARS && !c.label.is_empty());
    let fits_list = choices.len() <= MAX_LIST_ROWS
        && choices.iter().all(|c| c.label.chars().count() <= MAX_ROW_TITLE_CHARS && !c.label.is_empty());
    if !fits_buttons && !fits_list {
        let mut text = reply.trim().to_string();
        text.push_str("\n\nReply with a number:");
        for (idx, choice) in choices.iter().enumerate() {
            text.push_str(&format!("\n{}. {}", idx + 1, choice.label));
            if let Some(description) = &choice.description {
                text.push_str(&format!(" ({description})"));
            }
        }
        let numbered = choices.iter().map(|c| c.value.clone()).collect();
        return Outbound { messages: text_messages(to, &text), numbered: Some(numbered) };
    }
    // An interactive body is at most 1,024 characters: a longer reply goes first as text.
    let mut messages = Vec::new();
    let body = if reply.chars().count() > MAX_INTERACTIVE_BODY_CHARS || reply.trim().is_empty() {
        messages.extend(text_messages(to, reply));
        "Please choose:".to_string()
    } else {
        reply.to_string()
    };
    let interactive = if fits_buttons {
        let buttons: Vec<Value> = choices
            .iter()
            .map(|c| json!({"type": "reply", "reply": {"id": choice_id(&c.value), "title": c.label}}))
            .collect();
        json!({"type": "button", "body": {"text": body}, "action": {"buttons": buttons}})
    } else {
        let rows: Vec<Value> = choices
            .iter()
            .map(|c| {
                let mut row = json!({"id": choice_id(&c.value), "title": c.label});
                if let Some(description) = &c.description {
                    row["description"] = json!(truncate(description, MAX_ROW_DESCRIPTION_CHARS));
                }
                row
            })
            .collect();
        json!({
            "type": "list",
            "body": {"text": body},
            "action": {"button": "Choose", "sections": [{"title": "Options", "rows": rows}]}
        })
    };
    messages.push(json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "interactive",
        "interactive": interactive
    }));
    Outbound { messages, numbered: None }
}

/// Text messages (split at 4,096 characters, on a line or word boundary when possible).
pub fn text_messages(to: &str, text: &str) -> Vec<Value> {
    split_text(text, MAX_TEXT_BODY_CHARS)
        .into_iter()
        .map(|part| {
            json!({
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": false, "body": part}
            })
        })
        .collect()
}

/// The configured template, the only message allowed outside the 24-hour window.
pub fn template_message(to: &str, name: &str, language: &str) -> Value {
    json!({
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": to,
        "type": "template",
        "template": {"name": name, "language": {"code": language}}
    })
}

fn choice_id(value: &str) -> String {
    // Ids may be 256 characters (buttons) or 200 (rows); values are short, but cap anyway.
    format!("{CHOICE_ID_PREFIX}{}", truncate(value, 190))
}

fn truncate(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max_chars - 1).collect();
    out.push('…');
    out
}

fn split_text(text: &str, max_chars: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest: Vec<char> = text.trim().chars().collect();
    while rest.len() > max_chars {
        let window = &rest[..max_chars];
        let cut = window
            .iter()
            .rposition(|&c| c == '\n')
            .or_else(|| window.iter().rposition(|&c| c == ' '))
            .filter(|&idx| idx > max_chars / 2)
            .unwrap_or(max_chars);
        parts.push(rest[..cut].iter().collect::<String>().trim().to_string());
        rest = rest[cut..].to_vec();
    }
    let last: String = rest.iter().collect::<String>().trim().to_string();
    if !last.is_empty() || parts.is_empty() {
        parts.push(last);
    }
    parts
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("whatsapp sending is not configured (whatsapp.access_token and whatsapp.phone_number_id)")]
    NotConfigured,
    #[error("the cloud api refused the message with status {status}: {body}")]
    Refused { status: u16, body: String },
    #[error("the cloud api was unavailable after {n_attempts} attempts: {last}")]
    Unavailable { n_attempts: u32, last: String },
}

/// Posts send-message requests to the Cloud API.
pub struct GraphClient {
    http: reqwest::Client,
    url: Option<String>,
    access_token: Secret,
    max_attempts: u32,
    first_backoff: Duration,
}

/// How long one send may take before it counts as a timeout (and is retried).
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

impl GraphClient {
    pub fn new(api_base_url: &str, phone_number_id: &str, access_token: Secret) -> Self {
        let configured =
            !api_base_url.trim().is_empty() && !phone_number_id.trim().is_empty() && !access_token.is_empty();
        let url =
            configured.then(|| format!("{}/{}/messages", api_base_url.trim_end_matches('/'), phone_number_id.trim()));
        let http = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("building the http client");
        Self { http, url, access_token, max_attempts: 4, first_backoff: Duration::from_millis(200) }
    }

    pub fn is_configured(&self) -> bool {
        self.url.is_some()
    }

    /// Sends one message; returns the id Meta gave it (`wamid....`), if any.
    pub async fn send(&self, message: &Value) -> Result<Option<String>, SendError> {
        let Some(url) = &self.url else { return Err(SendError::NotConfigured) };
        let mut last = String::new();
        for attempt in 1..=self.max_attempts {
            if attempt > 1 {
                let backoff = self.first_backoff * 2u32.pow(attempt - 2);
                let jitter = Duration::from_millis(rand::random::<u64>() % 50);
                tokio::time::sleep(backoff + jitter).await;
            }
            let result = self.http.post(url).bearer_auth(self.access_token.expose()).json(message).send().await;
            match result {
                Ok(response) if response.status().is_success() => {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    return Ok(body["messages"][0]["id"].as_str().map(str::to_string));
                }
                Ok(response) if response.status().is_server_error() => {
                    last = format!("status {}", response.status().as_u16());
                    tracing::warn!(attempt, status = response.status().as_u16(), "whatsapp send failed; retrying");
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let body: String = response.text().await.unwrap_or_default().chars().take(500).collect();
                    return Err(SendError::Refused { status, body });
                }
                Err(error) => {
                    last = if error.is_timeout() { "timed out".to_string() } else { error.to_string() };
                    tracing::warn!(attempt, error = %last, "whatsapp send failed; retrying");
                }
            }
        }
        Err(SendError::Unavailable { n_attempts: self.max_attempts, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(label: &str) -> Choice {
        Choice { label: label.into(), value: label.into(), description: Some("15 GB, $65.00/month".into()) }
    }

    #[test]
    fn yes_and_no_are_reply_buttons() {
        let out = reply_messages("5550101004", "Shall I go ahead?", &[choice("Yes"), choice("No")]);
        assert_eq!(out.messages.len(), 1);
        let message = &out.messages[0];
        assert_eq!(message["messaging_product"], "whatsapp");
        assert_eq!(message["type"], "interactive");
        assert_eq!(message["interactive"]["type"], "button");
        assert_eq!(message["interactive"]["body"]["text"], "Shall I go ahead?");
        let buttons = message["interactive"]["action"]["buttons"].as_array().unwrap();
        assert_eq!(buttons.len(), 2);
        assert_eq!(buttons[0]["reply"]["id"], "choice:Yes");
        assert_eq!(buttons[0]["reply"]["title"], "Yes");
        assert!(out.numbered.is_none());
    }

    #[test]
    fn more_than_three_or_long_titles_become_a_list() {
        let plans: Vec<Choice> =
            ["Basic Plan", "Premium Plan", "Unlimited Plus", "Family Share", "IoT Basic"].map(choice).to_vec();
        let out = reply_messages("1", "Which plan?", &plans);
        let interactive = &out.messages[0]["interactive"];
        assert_eq!(interactive["type"], "list");
        let rows = interactive["action"]["sections"][0]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[1]["title"], "Premium Plan");
        assert_eq!(rows[1]["description"], "15 GB, $65.00/month");
        assert!(interactive["action"]["button"].as_str().unwrap().chars().count() <= MAX_BUTTON_TITLE_CHARS);

        let long = [choice("Credit Card •••• 1235"), choice("No")];
        assert_eq!(reply_messages("1", "Which card?", &long).messages[0]["interactive"]["type"], "list");
    }

    #[test]
    fn beyond_a_list_choices_are_numbered_text() {
        let many: Vec<Choice> = (1..=12).map(|i| choice(&format!("Option {i}"))).collect();
        let out = reply_messages("1", "Which one?", &many);
        assert_eq!(out.messages.len(), 1);
        assert_eq!(out.messages[0]["type"], "text");
        let body = out.messages[0]["text"]["body"].as_str().unwrap();
        assert!(body.contains("\n12. Option 12"), "{body}");
        assert_eq!(out.numbered.unwrap().len(), 12);
        let too_long = [choice("A title far longer than twenty-four characters"), choice("B")];
        assert!(reply_messages("1", "?", &too_long).numbered.is_some());
    }

    #[test]
    fn long_replies_go_first_as_text() {
        let reply = "word ".repeat(400);
        let out = reply_messages("1", &reply, &[choice("Yes"), choice("No")]);
        assert_eq!(out.messages.len(), 2);
        assert_eq!(out.messages[0]["type"], "text");
        assert_eq!(out.messages[1]["interactive"]["body"]["text"], "Please choose:");
        let huge = "x".repeat(9_000);
        let parts = text_messages("1", &huge);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p["text"]["body"].as_str().unwrap().chars().count() <= MAX_TEXT_BODY_CHARS));
    }

    #[test]
    fn templates_name_their_language() {
        let message = template_message("1", "customer_care_followup", "en_US");
        assert_eq!(message["type"], "template");
        assert_eq!(message["template"]["language"]["code"], "en_US");
    }

    /// A peer that drops the first connection, answers 500 to the second, then 200 (or
    /// always 400): what `send` sees on the wire.
    fn flaky_peer(always_400: bool) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v21.0", listener.local_addr().unwrap());
        let n_connections = std::sync::Arc::new(AtomicUsize::new(0));
        let counter = n_connections.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n == 0 && !always_400 {
                    drop(stream); // a dropped connection
                    continue;
                }
                let mut buffer = [0u8; 8192];
                let _ = stream.read(&mut buffer);
                let (status, body) = match (always_400, n) {
                    (true, _) => ("400 Bad Request", r#"{"error":{"code":100}}"#),
                    (false, 1) => ("500 Internal Server Error", "{}"),
                    _ => ("200 OK", r#"{"messages":[{"id":"wamid.ok"}]}"#),
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        (url, n_connections)
    }

    #[tokio::test]
    async fn network_failures_and_5xx_are_retried_4xx_is_not() {
        use std::sync::atomic::Ordering;
        let message = text_messages("1", "hello").remove(0);
        let (url, n_connections) = flaky_peer(false);
        let mut client = GraphClient::new(&url, "123", Secret::new("token"));
        client.first_backoff = Duration::from_millis(10);
        assert_eq!(client.send(&message).await.unwrap().as_deref(), Some("wamid.ok"));
        assert_eq!(n_connections.load(Ordering::SeqCst), 3, "dropped, 500, then 200");

        let (url, n_connections) = flaky_peer(true);
        let mut client = GraphClient::new(&url, "123", Secret::new("token"));
        client.first_backoff = Duration::from_millis(10);
        let error = client.send(&message).await.unwrap_err();
        assert!(matches!(error, SendError::Refused { status: 400, .. }), "{error}");
        assert_eq!(n_connections.load(Ordering::SeqCst), 1);

        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let mut client = GraphClient::new(&url, "123", Secret::new("token"));
        client.first_backoff = Duration::from_millis(1);
        let error = client.send(&message).await.unwrap_err();
        assert!(matches!(error, SendError::Unavailable { n_attempts: 4, .. }), "{error}");
    }

    #[test]
    fn an_unconfigured_client_does_not_send() {
        assert!(!GraphClient::new("https://example.invalid", "", Secret::new("t")).is_configured());
        assert!(!GraphClient::new("https://example.invalid", "123", Secret::default()).is_configured());
        assert!(GraphClient::new("https://example.invalid/v21.0/", "123", Secret::new("t")).is_configured());
    }
}
