//! `GET /api/openapi.json`: the OpenAPI description of the API, generated from the handlers'
//! annotations and the wire DTOs (utoipa), so it cannot drift from the code.

use actix_web::{HttpResponse, web};
use utoipa::OpenApi;

use super::{api, error, network, stream, whatsapp, widget};
use crate::channels::choices::Choice;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/openapi.json", web::get().to(get_openapi));
}

/// Readiness and liveness, documented here (their handlers live in `http`).
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "the process is up")))]
#[allow(dead_code)]
fn healthz() {}

#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "models and indexes are loaded"),
        (status = 503, description = "still loading (with the stage) or failed (with the error)"),
    )
)]
#[allow(dead_code)]
fn readyz() {}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Switchboard API",
        description = "Customer-service assistant for telecom operators: conversations, streamed replies, the WhatsApp webhook and the web widget."
    ),
    paths(
        api::post_conversation,
        api::post_message,
        api::get_conversation,
        stream::get_stream,
        whatsapp::get_whatsapp_webhook,
        whatsapp::post_whatsapp_webhook,
        widget::get_widget_js,
        widget::get_demo_page,
        widget::get_demo_sms,
        network::get_network_verification,
        network::get_network_callback,
        healthz,
        readyz,
    ),
    components(schemas(
        error::ErrorBody,
        error::ErrorDetail,
        api::NewConversation,
        api::ConversationCreated,
        api::MessageIn,
        api::TurnOut,
        api::IntentDto,
        api::ActionCallDto,
        api::SourceDto,
        api::ActionDto,
        api::ConversationOut,
        api::CustomerOut,
        api::StateOut,
        api::MessageOut,
        api::ActionRecordOut,
        stream::ReadyEvent,
        stream::TokenEvent,
        stream::AgentMessageEvent,
        Choice,
    )),
    tags(
        (name = "conversations", description = "conversations, messages and their event stream"),
        (name = "whatsapp", description = "WhatsApp Business Cloud API webhook"),
        (name = "widget", description = "the embeddable web chat widget and the demo page"),
        (name = "operations", description = "health and readiness"),
    )
)]
pub struct ApiDoc;

/// The OpenAPI document as JSON.
pub fn document() -> String {
    ApiDoc::openapi().to_json().expect("the OpenAPI document serialises")
}

async fn get_openapi() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(document())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_document_lists_every_route() {
        let document: serde_json::Value = serde_json::from_str(&super::document()).unwrap();
        assert!(document["openapi"].as_str().unwrap().starts_with("3."));
        let paths = document["paths"].as_object().unwrap();
        for path in [
            "/api/v1/conversations",
            "/api/v1/conversations/{id}",
            "/api/v1/conversations/{id}/messages",
            "/api/v1/conversations/{id}/stream",
            "/webhooks/whatsapp",
            "/widget.js",
            "/",
        ] {
            assert!(paths.contains_key(path), "{path} missing");
        }
        assert!(document["components"]["schemas"]["TurnOut"]["properties"]["choices"].is_object());
    }
}
