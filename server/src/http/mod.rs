//! The HTTP layer: a shell over engine functions. Handlers convert the request, call one
//! engine function (off the async workers when it is CPU-bound), and convert the result.

pub mod api;
pub mod console;
pub mod error;
pub mod limits;
pub mod network;
pub mod openapi;
pub mod staff;
pub mod stream;
pub mod whatsapp;
pub mod widget;

use std::sync::{Arc, Mutex, OnceLock};

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::config::Settings;
use engine::conversations::ConversationStore;
use engine::dialogue::Engine;
pub use error::ApiError;

/// Largest request body the API reads (bigger ones are refused before parsing).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What every handler can reach.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: storage::Store,
    pub conversations: ConversationStore,
    pub readiness: Readiness,
    /// Rate limits of the public routes.
    pub limits: limits::Limits,
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
        .configure(api::configure)
        .configure(network::configure)
        .configure(stream::configure)
        .configure(openapi::configure)
        .configure(widget::configure)
        .configure(whatsapp::configure)
        .configure(staff::configure)
        .configure(console::configure)
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
    body.push_str(&format!(
        "# HELP switchboard_storage_round_trips_total Statements this instance sent to the database (0 with sled).\n\
         # TYPE switchboard_storage_round_trips_total counter\nswitchboard_storage_round_trips_total {}\n",
        state.db.round_trips()
    ));
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(body)
}

async fn get_readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.engine().is_some() {
        // Ready only while the database answers too (a shared PostgreSQL can go away).
        let db = state.db.clone();
        if web::block(move || db.ping()).await.unwrap_or(false) {
            return HttpResponse::Ok().json(json!({"status": "ready"}));
        }
        return HttpResponse::ServiceUnavailable()
            .insert_header((actix_web::http::header::RETRY_AFTER, error::DATABASE_RETRY_SECONDS.to_string()))
            .json(json!({"status": "unavailable", "stage": "database", "error": "the database does not answer"}));
    }
    let body = match state.readiness.failure() {
        Some(failure) => json!({"status": "failed", "stage": state.readiness.stage(), "error": failure}),
        None => json!({"status": "loading", "stage": state.readiness.stage()}),
    };
    HttpResponse::ServiceUnavailable().json(body)
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
