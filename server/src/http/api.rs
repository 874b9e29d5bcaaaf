//! REST API v1: conversations and messages (`interfaces.md`), with the wire DTOs the OpenAPI
//! document is generated from.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::{ApiError, AppState, MAX_BODY_BYTES};
use crate::channels::Channels;
use crate::channels::choices::{Choice, choices_for};
use crate::channels::identity;
use engine::conversations::{Channel, Conversation, Event, EventKind};
use engine::dialogue::state::State;
use engine::dialogue::{CustomerText, Engine, Turn};

/// Registers the conversation routes (the stream lives in `stream`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/conversations", web::post().to(post_conversation))
        .route("/api/v1/conversations/{id}", web::get().to(get_conversation))
        .route("/api/v1/conversations/{id}/messages", web::post().to(post_message));
}

// ---------------------------------------------------------------------------- DTOs

/// `POST /api/v1/conversations`: every field is optional (an empty body is fine).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    /// `web` (default) or `api`.
    #[schema(example = "web")]
    pub channel: Option<String>,
    /// The signed-in customer of the host page (`data-customer-id`).
    pub customer_id: Option<String>,
    /// When the signed identity expires, unix seconds (`data-customer-expires`), at most 24
    /// hours ahead.
    pub customer_expires: Option<u64>,
    /// hex(HMAC-SHA256(key = `widget.secret`, message = `"<customer id>.<expires>"`)), computed
    /// by the operator's backend (`data-customer-hash`). A wrong or expired hash is ignored and
    /// logged, never trusted.
    pub customer_hash: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationCreated {
    pub id: String,
    /// Whether a signed customer identity was accepted.
    pub customer_verified: bool,
}

/// `POST /api/v1/conversations/{id}/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageIn {
    /// The customer's message (1 to 4,000 characters).
    pub text: String,
    /// A client-chosen id (1 to 100 of `A-Z a-z 0-9 - _ . :`) that makes resending safe: the
    /// same id in the same conversation is answered once, and a resend gets the same turn.
    pub client_message_id: Option<String>,
}

/// A reply to a customer message (the turn of `interfaces.md`, plus `choices` and `seq`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct TurnOut {
    pub reply: String,
    pub intent: Option<IntentDto>,
    /// What the reply asks the customer for: a slot name, `confirmation`, `device:<tool>`, or null.
    pub awaiting: Option<String>,
    /// The action a yes runs, when `awaiting` is `confirmation`.
    pub pending_action: Option<ActionCallDto>,
    pub sources: Vec<SourceDto>,
    /// Account actions run during this turn.
    pub actions: Vec<ActionDto>,
    pub handoff: bool,
    /// Options to offer as quick replies (yes/no, plans, payment methods, lines).
    pub choices: Vec<Choice>,
    /// Pages to open beside the chat (verifying with the mobile network while a code is awaited).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<LinkDto>,
    /// Position of the reply in the conversation's log (for streams and resends).
    pub seq: Option<u64>,
}

/// A page the customer may open beside the chat.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct LinkDto {
    pub label: String,
    /// A path on this server.
    pub url: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IntentDto {
    pub name: String,
    pub confidence: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionCallDto {
    pub name: String,
    #[schema(value_type = Object)]
    pub args: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceDto {
    /// The document's file name.
    pub document: String,
    pub section: String,
    pub score: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActionDto {
    pub name: String,
    #[schema(value_type = Object)]
    pub args: Value,
    /// `done` or `refused`.
    pub status: String,
}

/// `GET /api/v1/conversations/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationOut {
    pub id: String,
    /// `web`, `whatsapp`, `api`, `terminal` or `console`.
    pub channel: String,
    /// `open`, `pending_human`, `snoozed` or `resolved`.
    pub status: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: DateTime<Utc>,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: DateTime<Utc>,
    /// The verified customer, masked; absent until the customer proved who they are.
    pub customer: Option<CustomerOut>,
    /// How sure the assistant is of who it talks to: `anonymous`, `claimed` or `verified`.
    pub assurance: String,
    pub state: StateOut,
    pub messages: Vec<MessageOut>,
    pub actions: Vec<ActionRecordOut>,
    /// Sequence number of the last event of the log (streams resume after it).
    pub last_seq: Option<u64>,
}

/// The conversation's customer, masked.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerOut {
    /// Only a verified customer is shown.
    pub id: String,
    /// First name and last initial (`Tomás H.`).
    pub name: Option<String>,
    /// All but the last four digits hidden.
    pub phone: Option<String>,
    pub verified: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StateOut {
    pub awaiting: Option<String>,
    pub pending_action: Option<ActionCallDto>,
    /// The innermost running flow.
    pub active_flow: Option<String>,
    pub handed_off: bool,
    /// Options for the question the conversation waits on.
    pub choices: Vec<Choice>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    pub seq: u64,
    /// `customer`, `assistant` or `agent`.
    pub role: String,
    pub text: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// The full turn, for assistant messages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn: Option<TurnOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionRecordOut {
    pub name: String,
    #[schema(value_type = Object)]
    pub args: Value,
    /// `done` or `refused`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub at: DateTime<Utc>,
}

impl From<Turn> for TurnOut {
    fn from(turn: Turn) -> Self {
        Self {
            reply: turn.reply,
            intent: turn.intent.map(|i| IntentDto { name: i.name, confidence: i.confidence }),
            awaiting: turn.awaiting,
            pending_action: turn.pending_action.map(|a| ActionCallDto { name: a.name, args: a.args }),
            sources: turn
                .sources
                .into_iter()
                .map(|s| SourceDto { document: s.document, section: s.section, score: s.score })
                .collect(),
            actions: turn
                .actions
                .into_iter()
                .map(|a| ActionDto { name: a.name, args: a.args, status: a.status })
                .collect(),
            handoff: turn.handoff,
            choices: Vec::new(),
            links: Vec::new(),
            seq: None,
        }
    }
}

impl TurnOut {
    /// A turn as logged in a `Reply` event.
    pub fn from_logged(turn: &Turn, text: &str) -> Self {
        let mut out = TurnOut::from(turn.clone());
        if out.reply.is_empty() {
            out.reply = text.to_string();
        }
        out
    }

    /// Offers verification through the mobile network while a code is awaited on the web, when
    /// the operator has CAMARA Number Verification.
    pub fn with_links(mut self, settings: &crate::config::Settings, conversation_id: &str) -> Self {
        let camara = &settings.camara;
        if self.awaiting.as_deref() == Some("verification_code")
            && camara.number_verification
            && camara.is_configured()
            && !camara.authorize_url.trim().is_empty()
        {
            self.links.push(LinkDto {
                label: "Verify with my mobile network instead".into(),
                url: format!("/api/v1/conversations/{conversation_id}/network-verification"),
            });
        }
        self
    }

    /// Adds the quick-reply options for what the turn awaits.
    pub fn with_choices(mut self, engine: Option<&Engine>, customer_id: Option<&str>) -> Self {
        let registry = engine.map(|engine| engine.registry());
        self.choices = choices_for(
            self.awaiting.as_deref(),
            customer_id,
            registry.map(|r| r.store()),
            registry.map(|r| r.today()).unwrap_or_else(|| Utc::now().date_naive()),
        );
        self
    }
}

// ---------------------------------------------------------------------------- handlers

/// Creates a conversation.
#[utoipa::path(
    post,
    path = "/api/v1/conversations",
    tag = "conversations",
    request_body(content = Option<NewConversation>, description = "optional; an empty body starts a web conversation"),
    responses(
        (status = 200, description = "the new conversation", body = ConversationCreated),
        (status = 400, description = "malformed JSON, unknown field or channel", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
        (status = 429, description = "too many requests or new conversations from this address (Retry-After)", body = ErrorBody),
        (status = 503, description = "a signed identity arrived before the assistant finished loading", body = ErrorBody),
    )
)]
pub async fn post_conversation(
    request: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    state.limits.request(&request)?;
    state.limits.new_conversation(&request)?;
    let bytes = read_body(&request, payload, MAX_BODY_BYTES).await?;
    let body: NewConversation = if bytes.iter().all(u8::is_ascii_whitespace) {
        NewConversation::default()
    } else {
        require_json(&request)?;
        serde_json::from_slice(&bytes)
            .map_err(|error| ApiError::bad_request("bad_json", format!("malformed JSON body: {error}")))?
    };
    let channel = match body.channel.as_deref() {
        None => Channel::Web,
        Some(raw) => Channel::parse(raw).filter(|c| matches!(c, Channel::Web | Channel::Api)).ok_or_else(|| {
            ApiError::bad_request("bad_channel", format!("unknown channel {raw:?}; use \"web\" or \"api\""))
        })?,
    };
    // A signed identity is checked before anything is stored; a wrong one is ignored, and
    // logged in the conversation (as a failed proof naming no customer) and at warn level.
    let mut refused_identity = None;
    let signed_customer = match (&body.customer_id, &body.customer_hash) {
        (Some(customer_id), Some(hash)) => {
            let customer_id = customer_id.trim().to_string();
            let secret = &state.settings.widget.secret;
            let now = identity::unix_now();
            match identity::verify_signed_identity(secret, &customer_id, body.customer_expires, hash, now) {
                Ok(()) => Some(customer_id),
                Err(error) => {
                    tracing::warn!(%error, "signed host-page identity refused");
                    refused_identity = Some(format!("signed host-page identity refused: {error}"));
                    None
                }
            }
        }
        (Some(_), None) | (None, Some(_)) => {
            tracing::warn!("host-page identity without both customer id and hash ignored");
            refused_identity = Some("signed host-page identity refused: no hash or no customer id".into());
            None
        }
        (None, None) => None,
    };
    let engine = match &signed_customer {
        Some(_) => Some(state.engine()?),
        None => None,
    };
    let conversations = state.conversations.clone();
    let (conversation, customer_verified) = web::block(move || -> Result<(Conversation, bool), ApiError> {
        let conversation = conversations.create(channel, None)?;
        if let Some(reason) = refused_identity {
            conversations.append(&conversation.id, vec![EventKind::ProofFailed { customer_id: None, reason }])?;
        }
        let mut verified = false;
        if let (Some(customer_id), Some(engine)) = (signed_customer, engine) {
            let known = accounts::CustomerId::parse(customer_id.clone())
                .ok()
                .and_then(|id| engine.registry().store().customer(&id).ok().flatten())
                .is_some();
            if known {
                engine.identify(&conversation.id, &customer_id, engine::identity::Proof::SignedHostPage)?;
                verified = true;
            } else {
                tracing::warn!(customer_id = %customer_id, "signed host-page identity names no known customer");
                let reason = "signed host-page identity refused: it names no known customer".to_string();
                conversations.append(&conversation.id, vec![EventKind::ProofFailed { customer_id: None, reason }])?;
            }
        }
        Ok((conversation, verified))
    })
    .await
    .map_err(|error| ApiError::internal("creating a conversation failed", &error))??;
    Ok(HttpResponse::Ok().json(ConversationCreated { id: conversation.id, customer_verified }))
}

/// Sends a customer message and returns the assistant's turn. Tokens of a generated answer
/// stream meanwhile to the conversation's event stream.
#[utoipa::path(
    post,
    path = "/api/v1/conversations/{id}/messages",
    tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    request_body = MessageIn,
    responses(
        (status = 200, description = "the turn", body = TurnOut),
        (status = 400, description = "empty text, malformed JSON or unknown field", body = ErrorBody),
        (status = 404, description = "unknown conversation", body = ErrorBody),
        (status = 409, description = "a message with this client_message_id is still being answered", body = ErrorBody),
        (status = 413, description = "text over 4,000 characters or body over 64 KiB", body = ErrorBody),
        (status = 415, description = "not JSON", body = ErrorBody),
        (status = 429, description = "too many requests from this address or messages to this conversation (Retry-After)", body = ErrorBody),
        (status = 503, description = "the assistant is still loading", body = ErrorBody),
    )
)]
pub async fn post_message(
    request: HttpRequest,
    state: web::Data<AppState>,
    channels: web::Data<Channels>,
    path: web::Path<String>,
    body: web::Json<MessageIn>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    state.limits.request(&request)?;
    state.limits.message(&conversation_id)?;
    let MessageIn { text, client_message_id } = body.into_inner();
    let text = CustomerText::parse(text)?;
    if let Some(id) = &client_message_id {
        let valid = (1..=100).contains(&id.len())
            && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'));
        if !valid {
            return Err(ApiError::bad_request(
                "bad_client_message_id",
                "client_message_id must be 1 to 100 characters of A-Z a-z 0-9 - _ . :",
            ));
        }
    }
    let not_found = |id: &str| ApiError::not_found(format!("conversation {id} not found"));
    // A resend record is only kept for a conversation that exists; without one, the check is
    // made with the turn (below), where the turn reads the header again from the read cache.
    if client_message_id.is_some() && !state.conversations.exists(&conversation_id)? {
        return Err(not_found(&conversation_id));
    }
    let engine = state.engine()?;
    let resends = ResendGuard::open(&state.db, &conversation_id, client_message_id.as_deref())?;
    if let Some(resends) = &resends {
        match resends.claim()? {
            Claim::New => {}
            Claim::Answered(turn) => return Ok(HttpResponse::Ok().json(turn)),
            Claim::InProgress => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "message_in_progress",
                    "this message is still being answered; its turn arrives on the stream",
                ));
            }
        }
    }
    let sink = channels.tokens.sink();
    let span = tracing::info_span!("turn", conversation_id = %conversation_id);
    let turn_state = state.clone();
    let turn_conversation_id = conversation_id.clone();
    // The turn and the reply built from it (the log, the customer's choices) on a blocking
    // thread, with one read cache: what the turn looked up is not read again.
    // The reply is built from the log as the turn left it (not read again) and the customer's
    // records the turn read (from the read cache). A failure is the turn's: a resend may try
    // again.
    let result = web::block(move || -> Result<TurnOut, ApiError> {
        let _entered = span.enter();
        let _reads = storage::read_scope();
        if !turn_state.conversations.exists(&turn_conversation_id)? {
            return Err(not_found(&turn_conversation_id));
        }
        let (turn, _times, events) = engine.respond_with_log(&turn_conversation_id, &text, &sink)?;
        let customer_id = verified_customer_id(&events);
        let mut out = TurnOut::from(turn)
            .with_choices(Some(&engine), customer_id.as_deref())
            .with_links(&turn_state.settings, &turn_conversation_id);
        out.seq = reply_seq_of_last_message(&events);
        Ok(out)
    })
    .await
    .map_err(|error| ApiError::internal("answering a message failed", &error))
    .and_then(|result| result);
    let out = match result {
        Ok(out) => out,
        Err(error) => {
            if let Some(resends) = &resends {
                resends.release();
            }
            return Err(error);
        }
    };
    if let Some(resends) = &resends {
        resends.answered(&out);
    }
    Ok(HttpResponse::Ok().json(out))
}

/// The sequence number of the reply to the customer's last message, if it was answered (a
/// conversation held by a human agent logs no reply).
fn reply_seq_of_last_message(events: &[Event]) -> Option<u64> {
    for event in events.iter().rev() {
        match event.kind {
            EventKind::Reply { .. } => return Some(event.seq),
            EventKind::MessageIn { .. } => return None,
            _ => {}
        }
    }
    None
}

/// The conversation: messages, state, customer (masked) and actions.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}",
    tag = "conversations",
    params(("id" = String, Path, description = "conversation id")),
    responses(
        (status = 200, description = "the conversation", body = ConversationOut),
        (status = 404, description = "unknown conversation", body = ErrorBody),
    )
)]
pub async fn get_conversation(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.limits.request(&request)?;
    let id = path.into_inner();
    let conversation = state.conversations.get(&id)?;
    let events = state.conversations.events(&id)?;
    let engine = state.readiness.engine().cloned();
    Ok(HttpResponse::Ok().json(conversation_out(&conversation, &events, engine.as_deref())))
}

/// Builds the conversation view from its header and log.
/// The conversation's verified customer: the only one whose account may shape what is shown
/// (quick replies listing lines or bills, the masked customer).
pub fn verified_customer_id(events: &[Event]) -> Option<String> {
    State::replay(events).verified_customer().map(str::to_string)
}

pub fn conversation_out(conversation: &Conversation, events: &[Event], engine: Option<&Engine>) -> ConversationOut {
    let verified = verified_customer_id(events);
    let customer_id = verified.as_deref();
    let mut messages = Vec::new();
    let mut actions = Vec::new();
    for event in events {
        match &event.kind {
            EventKind::MessageIn { text } => messages.push(MessageOut {
                seq: event.seq,
                role: "customer".into(),
                text: text.clone(),
                at: event.at,
                agent: None,
                turn: None,
            }),
            EventKind::Reply { text, turn } => {
                let mut turn = TurnOut::from_logged(turn, text);
                turn.seq = Some(event.seq);
                messages.push(MessageOut {
                    seq: event.seq,
                    role: "assistant".into(),
                    text: text.clone(),
                    at: event.at,
                    agent: None,
                    turn: Some(turn),
                })
            }
            EventKind::AgentMessage { agent, text } => messages.push(MessageOut {
                seq: event.seq,
                role: "agent".into(),
                text: text.clone(),
                at: event.at,
                agent: Some(agent.clone()),
                turn: None,
            }),
            EventKind::ActionDone { action, args, .. } => actions.push(ActionRecordOut {
                name: action.clone(),
                args: args.clone(),
                status: "done".into(),
                reason: None,
                at: event.at,
            }),
            EventKind::ActionRefused { action, args, reason, .. } => actions.push(ActionRecordOut {
                name: action.clone(),
                args: args.clone(),
                status: "refused".into(),
                reason: Some(reason.clone()),
                at: event.at,
            }),
            _ => {}
        }
    }
    // Choices belong to the last assistant turn only while nothing came after it.
    if let Some(last) = messages.last_mut()
        && let Some(turn) = last.turn.take()
    {
        last.turn = Some(turn.with_choices(engine, customer_id));
    }
    let state = State::replay(events);
    let pending_action = state.pending.as_ref().map(|p| ActionCallDto { name: p.action.clone(), args: p.args.clone() });
    let state_choices =
        TurnOut { awaiting: state.awaiting.clone(), ..TurnOut::default() }.with_choices(engine, customer_id).choices;
    let customer = state.verified_customer().map(|customer_id| masked_customer(customer_id, engine));
    ConversationOut {
        id: conversation.id.clone(),
        channel: conversation.channel.as_str().into(),
        status: conversation.status.as_str().into(),
        created_at: conversation.created_at,
        updated_at: conversation.updated_at,
        customer,
        assurance: state.assurance().as_str().to_string(),
        state: StateOut {
            awaiting: state.awaiting.clone(),
            pending_action,
            active_flow: state.stack.last().map(|frame| frame.flow.clone()),
            handed_off: state.handed_off,
            choices: state_choices,
        },
        messages,
        actions,
        last_seq: events.last().map(|e| e.seq),
    }
}

/// The conversation's customer as the conversation's own API shows it: masked, and only once
/// verified (a claim reveals nothing, not even whether it matched an account).
fn masked_customer(customer_id: &str, engine: Option<&Engine>) -> CustomerOut {
    let record = engine.and_then(|engine| {
        let id = accounts::CustomerId::parse(customer_id.to_string()).ok()?;
        engine.registry().store().customer(&id).ok().flatten()
    });
    CustomerOut {
        id: customer_id.to_string(),
        name: record.as_ref().map(|c| accounts::mask::mask_name(&c.full_name)),
        phone: record.as_ref().map(|c| c.phone_number.masked()),
        verified: true,
    }
}

// ---------------------------------------------------------------------------- bodies

/// Reads a request body of at most `limit` bytes; larger ones are refused before they are read
/// (by their `Content-Length`) or as soon as they pass the limit.
pub async fn read_body(request: &HttpRequest, mut payload: web::Payload, limit: usize) -> Result<web::Bytes, ApiError> {
    let too_large =
        || ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is over {limit} bytes"));
    let declared = request
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|error| ApiError::bad_request("bad_body", format!("reading the body failed: {error}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn require_json(request: &HttpRequest) -> Result<(), ApiError> {
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            "send JSON with Content-Type: application/json",
        ))
    }
}

// ---------------------------------------------------------------------------- resends

/// Makes `client_message_id` resends safe: the first request claims the id, later ones get
/// the stored turn (or 409 while the first is still being answered).
struct ResendGuard {
    tree: storage::Tree,
    key: Vec<u8>,
}

enum Claim {
    New,
    InProgress,
    Answered(Value),
}

const IN_PROGRESS: &[u8] = b"in-progress";

impl ResendGuard {
    fn open(
        db: &storage::Store,
        conversation_id: &str,
        client_message_id: Option<&str>,
    ) -> Result<Option<Self>, ApiError> {
        let Some(client_message_id) = client_message_id else { return Ok(None) };
        let tree = db.tree("api_client_messages").map_err(store_error)?;
        let key = format!("{conversation_id}\0{client_message_id}").into_bytes();
        Ok(Some(Self { tree, key }))
    }

    fn claim(&self) -> Result<Claim, ApiError> {
        match self.tree.compare_and_swap(&self.key, None, Some(IN_PROGRESS)).map_err(store_error)? {
            Ok(()) => Ok(Claim::New),
            Err(current) => match current {
                Some(bytes) if bytes.as_slice() == IN_PROGRESS => Ok(Claim::InProgress),
                Some(bytes) => Ok(serde_json::from_slice(&bytes).map(Claim::Answered).unwrap_or(Claim::InProgress)),
                None => Ok(Claim::InProgress),
            },
        }
    }

    fn answered(&self, turn: &TurnOut) {
        let bytes = serde_json::to_vec(turn).expect("turns serialise");
        if let Err(error) = self.tree.insert(&self.key, bytes) {
            tracing::error!(%error, "storing the turn of a client message id failed");
        }
    }

    fn release(&self) {
        let _ = self.tree.remove(&self.key);
    }
}

fn store_error(error: storage::Error) -> ApiError {
    ApiError::internal("the database failed", &error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reply_seq_is_the_answer_to_the_last_message_only() {
        let event = |seq: u64, kind: EventKind| Event { seq, at: Utc::now(), kind };
        let message = |seq| event(seq, EventKind::MessageIn { text: "hi".into() });
        let reply = |seq| event(seq, EventKind::Reply { text: "hello".into(), turn: Turn::default() });
        let note = |seq| event(seq, EventKind::Note { text: "x".into() });
        assert_eq!(reply_seq_of_last_message(&[message(0), reply(1), note(2)]), Some(1));
        assert_eq!(reply_seq_of_last_message(&[message(0), reply(1), message(2)]), None);
        assert_eq!(reply_seq_of_last_message(&[]), None);
    }

    #[test]
    fn logged_turns_read_back() {
        let logged = Turn {
            reply: "Shall I go ahead?".into(),
            awaiting: Some("confirmation".into()),
            pending_action: Some(engine::dialogue::ActionCall {
                name: "refuel_data".into(),
                args: serde_json::json!({"gb_amount": 1.0}),
            }),
            ..Turn::default()
        };
        let turn = TurnOut::from_logged(&logged, "ignored");
        assert_eq!(turn.reply, "Shall I go ahead?");
        assert_eq!(turn.awaiting.as_deref(), Some("confirmation"));
        assert_eq!(turn.pending_action.unwrap().name, "refuel_data");
        let empty = TurnOut::from_logged(&Turn::default(), "the text");
        assert_eq!(empty.reply, "the text");
    }
}
