//! `GET /api/v1/conversations/{id}/stream`: server-sent events of a conversation.
//!
//! Events: `ready` (once, with the sequence number the stream starts after), `token` (text
//! generated for the reply in progress; no id), `turn` (the full turn, id = its sequence number
//! in the log), `agent_message` (a human agent wrote; id = sequence number), and a keep-alive
//! comment every 15 seconds. A client that reconnects with `Last-Event-ID` (or `?after=N`)
//! first gets the turns and agent messages it missed, from the log.
//!
//! Tokens come from the channels' token hub, turns and agent messages from the conversation
//! store's change feed, so whatever channel wrote them (REST, widget, console) they reach every
//! listener. When both are ready, tokens go first: they were published before the reply was
//! logged.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};
use utoipa::{IntoParams, ToSchema};

use super::api::TurnOut;
use super::{ApiError, AppState};
use crate::channels::Channels;
use engine::conversations::{ConversationChange, Event, EventKind};

/// How often an idle stream sends a comment, so proxies and browsers keep it open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/conversations/{id}/stream", web::get().to(get_stream));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay the turns and agent messages logged after this sequence number first
    /// (the `Last-Event-ID` header does the same).
    pub after: Option<u64>,
}

/// `ready` event data.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyEvent {
    pub conversation_id: String,
    /// The stream carries what is logged after this sequence number (null: from the start).
    pub last_seq: Option<u64>,
}

/// `token` event data.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenEvent {
    pub text: String,
}

/// `agent_message` event data.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentMessageEvent {
    pub seq: u64,
    #[schema(value_type = String, format = DateTime)]
    pub at: chrono::DateTime<chrono::Utc>,
    pub agent: String,
    pub text: String,
}

/// Server-sent events of a conversation: `ready`, `token`, `turn` (a `TurnOut`), `agent_message`.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/stream",
    tag = "conversations",
    params(("id" = String, Path, description = "conversation id"), StreamQuery),
    responses(
        (status = 200, description = "an event stream (text/event-stream): `ready` (ReadyEvent), `token` (TokenEvent), `turn` (TurnOut), `agent_message` (AgentMessageEvent)", content_type = "text/event-stream", body = String),
        (status = 400, description = "bad query", body = super::error::ErrorBody),
        (status = 404, description = "unknown conversation", body = super::error::ErrorBody),
    )
)]
pub async fn get_stream(
    request: HttpRequest,
    state: web::Data<AppState>,
    channels: web::Data<Channels>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    state.limits.request(&request)?;
    let query = web::Query::<StreamQuery>::from_query(request.query_string())
        .map_err(|error| ApiError::bad_request("bad_query", error.to_string()))?
        .into_inner();
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    let after = query.after.or(last_event_id);
    if !state.conversations.exists(&conversation_id)? {
        return Err(ApiError::not_found(format!("conversation {conversation_id} not found")));
    }
    // Subscribe before reading the log, so nothing falls between the two.
    let changes = state.conversations.subscribe();
    let tokens = channels.tokens.subscribe(&conversation_id);
    let (sender, receiver) = mpsc::channel::<web::Bytes>(256);
    let pump = Pump { state: state.clone(), channels: channels.clone(), conversation_id, sender, last_seq: None };
    actix_web::rt::spawn(pump.run(after, changes, tokens));
    Ok(sse_response(receiver))
}

/// A `text/event-stream` response whose events are what `receiver` yields (frames made with
/// [`sse_event`]), unbuffered by proxies; the stream ends when the sender is dropped.
pub fn sse_response(receiver: mpsc::Receiver<web::Bytes>) -> HttpResponse {
    let body = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let body = futures_util::StreamExt::map(body, Ok::<_, actix_web::Error>);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store, no-transform"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// One event whose data is `data` as compact JSON.
pub fn sse_event(name: &str, id: Option<u64>, data: &impl Serialize) -> web::Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    web::Bytes::from(sse_frame(Some(name), id, &data))
}

struct Pump {
    state: web::Data<AppState>,
    channels: web::Data<Channels>,
    conversation_id: String,
    sender: mpsc::Sender<web::Bytes>,
    /// The last logged event sent (or skipped as older than the stream).
    last_seq: Option<u64>,
}

impl Pump {
    async fn run(
        mut self,
        after: Option<u64>,
        mut changes: broadcast::Receiver<ConversationChange>,
        mut tokens: broadcast::Receiver<String>,
    ) {
        if self.start(after).await.is_err() {
            return;
        }
        let mut keep_alive = tokio::time::interval_at(tokio::time::Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
        loop {
            let sent = tokio::select! {
                biased;
                _ = self.sender.closed() => return,
                token = tokens.recv() => match token {
                    Ok(text) => self.send(Some("token"), None, &TokenEvent { text }).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => Ok(()),
                    Err(broadcast::error::RecvError::Closed) => {
                        tokens = self.resubscribe_tokens();
                        Ok(())
                    }
                },
                change = changes.recv() => match change {
                    Ok(change)
                        if change.id == self.conversation_id
                            || change.id == engine::conversations::ANY_CONVERSATION =>
                    {
                        match change.event {
                            Some(event) => self.forward(&event).await,
                            // A header change here, or any change made by another instance on the
                            // shared database: whatever was logged after the last event sent.
                            None => self.replay().await,
                        }
                    }
                    Ok(_) => Ok(()),
                    Err(broadcast::error::RecvError::Lagged(n_missed)) => {
                        tracing::debug!(n_missed, "event stream lagged; replaying from the log");
                        self.replay().await
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = keep_alive.tick() => self.send_raw(web::Bytes::from_static(b": keep-alive\n\n")).await,
            };
            if sent.is_err() {
                return;
            }
        }
    }

    fn resubscribe_tokens(&self) -> broadcast::Receiver<String> {
        self.channels.tokens.subscribe(&self.conversation_id)
    }

    /// Sends `retry`, the missed events (when resuming) and `ready`.
    async fn start(&mut self, after: Option<u64>) -> Result<(), Closed> {
        self.send_raw(web::Bytes::from_static(b"retry: 3000\n\n")).await?;
        match after {
            Some(after) => {
                self.last_seq = Some(after);
                self.replay().await?;
            }
            None => {
                let events = self.events();
                self.last_seq = events.last().map(|e| e.seq);
            }
        }
        let ready = ReadyEvent { conversation_id: self.conversation_id.clone(), last_seq: self.last_seq };
        self.send(Some("ready"), None, &ready).await
    }

    /// Sends the forwardable events logged after `last_seq`.
    async fn replay(&mut self) -> Result<(), Closed> {
        for event in self.events() {
            self.forward(&event).await?;
        }
        Ok(())
    }

    fn events(&self) -> Vec<Event> {
        self.state.conversations.events(&self.conversation_id).unwrap_or_default()
    }

    async fn forward(&mut self, event: &Event) -> Result<(), Closed> {
        if self.last_seq.is_some_and(|last| event.seq <= last) {
            return Ok(());
        }
        self.last_seq = Some(event.seq);
        match &event.kind {
            EventKind::Reply { text, turn } => {
                let customer_id = super::api::verified_customer_id(&self.events());
                let engine = self.state.readiness.engine().cloned();
                let mut turn = TurnOut::from_logged(turn, text)
                    .with_choices(engine.as_deref(), customer_id.as_deref())
                    .with_links(&self.state.settings, &self.conversation_id);
                turn.seq = Some(event.seq);
                self.send(Some("turn"), Some(event.seq), &turn).await
            }
            EventKind::AgentMessage { agent, text } => {
                let data = AgentMessageEvent { seq: event.seq, at: event.at, agent: agent.clone(), text: text.clone() };
                self.send(Some("agent_message"), Some(event.seq), &data).await
            }
            _ => Ok(()),
        }
    }

    async fn send(&self, name: Option<&str>, id: Option<u64>, data: &impl Serialize) -> Result<(), Closed> {
        self.send_raw(web::Bytes::from(sse_frame(name, id, &serde_json::to_string(data).expect("events serialise"))))
            .await
    }

    async fn send_raw(&self, bytes: web::Bytes) -> Result<(), Closed> {
        self.sender.send(bytes).await.map_err(|_| Closed)
    }
}

/// The listener went away.
struct Closed;

/// One server-sent event. `data` is one line (compact JSON); other newlines are split into
/// several `data:` lines as the format requires.
pub fn sse_frame(name: Option<&str>, id: Option<u64>, data: &str) -> String {
    let mut frame = String::with_capacity(data.len() + 32);
    if let Some(id) = id {
        frame.push_str(&format!("id: {id}\n"));
    }
    if let Some(name) = name {
        frame.push_str(&format!("event: {name}\n"));
    }
    for line in data.split('\n') {
        frame.push_str("data: ");
        frame.push_str(line.trim_end_matches('\r'));
        frame.push('\n');
    }
    frame.push('\n');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_follow_the_event_stream_format() {
        assert_eq!(sse_frame(Some("turn"), Some(7), "{\"a\":1}"), "id: 7\nevent: turn\ndata: {\"a\":1}\n\n");
        assert_eq!(sse_frame(None, None, "two\nlines"), "data: two\ndata: lines\n\n");
    }
}
