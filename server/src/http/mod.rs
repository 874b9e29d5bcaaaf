//! The HTTP layer: a shell over engine functions. Handlers convert the request, call one
//! engine function (off the async workers when it is CPU-bound), and convert the result.

pub mod error;
pub mod staff;

use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::Settings;
use crate::conversations::{Channel, ConversationStore, EventKind};
use crate::dialogue::{CustomerText, Engine, NoTokens};
pub use error::ApiError;

/// Largest request body the API reads (bigger ones are refused before parsing).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: sled::Db,
    pub conversations: ConversationStore,
    pub readiness: Readiness,
}

/// The engine once models and indexes are loaded; until then, the loading stage.
#[derive(Default)]
pub struct Readiness {
    engine: OnceLock<Arc<Engine>>,
    stage: Mutex<String>,
    failure: Mutex<Option<String>>,
}

impl Readiness {
    pub fn set_stage(&self, stage: &str) {
        tracing::info!(stage, "loading");
        *self.stage.lock().expect("stage lock") = stage.to_string();
    }
    pub fn set_engine(&self, engine: Arc<Engine>) {
        let _ = self.engine.set(engine);
        self.set_stage("ready");
    }
    pub fn set_failure(&self, failure: String) {
        *self.failure.lock().expect("failure lock") = Some(failure);
    }
    pub fn engine(&self) -> Option<&Arc<Engine>> {
        self.engine.get()
    }
    pub fn stage(&self) -> String {
        self.stage.lock().expect("stage lock").clone()
    }
    pub fn failure(&self) -> Option<String> {
        self.failure.lock().expect("failure lock").clone()
    }
}

impl AppState {
    pub fn engine(&self) -> Result<Arc<Engine>, ApiError> {
        self.readiness.engine().cloned().ok_or_else(ApiError::not_ready)
    }
}

/// Every route of the server; used by `serve` and by the tests.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(error::json_config(MAX_BODY_BYTES))
        .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
        .app_data(
            web::PathConfig::default()
                .error_handler(|error, _| ApiError::bad_request("bad_path", error.to_string()).into()),
        )
        .route("/healthz", web::get().to(get_healthz))
        .route("/readyz", web::get().to(get_readyz))
        .route("/metrics", web::get().to(get_metrics))
        .route("/api/v1/conversations", web::post().to(post_conversation))
        .route("/api/v1/conversations/{id}", web::get().to(get_conversation))
        .route("/api/v1/conversations/{id}/messages", web::post().to(post_message))
        .configure(staff::configure)
        .default_service(web::to(not_found));
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::not_found("no such route"))
}

async fn get_healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

async fn get_metrics(state: web::Data<AppState>) -> HttpResponse {
    let ready = u8::from(state.readiness.engine().is_some());
    let mut body = format!(
        "# HELP switchboard_ready Whether the assistant can answer.\n# TYPE switchboard_ready gauge\nswitchboard_ready {ready}\n"
    );
    if let Some(engine) = state.readiness.engine() {
        body.push_str(&engine.render_metrics());
    }
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.engine().is_some() {
        return HttpResponse::Ok().json(json!({"status": "ready"}));
    }
    let body = match state.readiness.failure() {
        Some(failure) => json!({"status": "failed", "stage": state.readiness.stage(), "error": failure}),
        None => json!({"status": "loading", "stage": state.readiness.stage()}),
    };
    HttpResponse::ServiceUnavailable().json(body)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewConversation {
    channel: Option<String>,
}

async fn post_conversation(
    state: web::Data<AppState>,
    body: Option<web::Json<NewConversation>>,
) -> Result<HttpResponse, ApiError> {
    let request = body.map(web::Json::into_inner).unwrap_or_default();
    let channel = match request.channel.as_deref() {
        None => Channel::Web,
        Some(raw) => Channel::parse(raw).filter(|c| matches!(c, Channel::Web | Channel::Api)).ok_or_else(|| {
            ApiError::bad_request("bad_channel", format!("unknown channel {raw:?}; use \"web\" or \"api\""))
        })?,
    };
    let conversations = state.conversations.clone();
    let conversation =
        web::block(move || conversations.create(channel, None)).await.map_err(|_| ApiError::internal())??;
    Ok(HttpResponse::Ok().json(json!({"id": conversation.id})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageIn {
    text: String,
}

async fn post_message(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Json<MessageIn>,
) -> Result<HttpResponse, ApiError> {
    let conversation_id = path.into_inner();
    let text = CustomerText::parse(body.into_inner().text)?;
    if !state.conversations.exists(&conversation_id)? {
        return Err(ApiError::not_found(format!("conversation {conversation_id} not found")));
    }
    let engine = state.engine()?;
    let span = tracing::info_span!("turn", conversation_id = %conversation_id);
    let (turn, _times) = web::block(move || {
        let _entered = span.enter();
        engine.respond(&conversation_id, &text, &NoTokens)
    })
    .await
    .map_err(|_| ApiError::internal())??;
    Ok(HttpResponse::Ok().json(turn))
}

async fn get_conversation(state: web::Data<AppState>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner();
    let conversation = state.conversations.get(&id)?;
    let events = state.conversations.events(&id)?;
    let mut messages = Vec::new();
    let mut actions = Vec::new();
    for event in &events {
        match &event.kind {
            EventKind::MessageIn { text } => messages.push(json!({"role": "customer", "text": text, "at": event.at})),
            EventKind::Reply { text, turn } => {
                messages.push(json!({"role": "assistant", "text": text, "at": event.at, "turn": turn}))
            }
            EventKind::AgentMessage { agent, text } => {
                messages.push(json!({"role": "agent", "agent": agent, "text": text, "at": event.at}))
            }
            EventKind::ActionDone { action, args, .. } => {
                actions.push(json!({"name": action, "args": args, "status": "done", "at": event.at}))
            }
            EventKind::ActionRefused { action, args, reason, .. } => actions
                .push(json!({"name": action, "args": args, "status": "refused", "reason": reason, "at": event.at})),
            _ => {}
        }
    }
    let body: Value = json!({
        "id": conversation.id,
        "channel": conversation.channel.as_str(),
        "status": conversation.status.as_str(),
        "created_at": conversation.created_at,
        "updated_at": conversation.updated_at,
        "customer": conversation.customer_id.as_ref().map(|id| json!({"id": id})),
        "messages": messages,
        "actions": actions,
    });
    Ok(HttpResponse::Ok().json(body))
}

/// CORS for the widget's host pages (`server.cors_origins`; `*` allows any origin).
pub fn cors(settings: &Settings) -> actix_cors::Cors {
    let origins = &settings.server.cors_origins;
    let cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allowed_headers([actix_web::http::header::CONTENT_TYPE, actix_web::http::header::ACCEPT])
        .max_age(3600);
    if origins.iter().any(|origin| origin == "*") {
        cors.allow_any_origin()
    } else {
        origins.iter().fold(cors, |cors, origin| cors.allowed_origin(origin))
    }
}
