//! The HTTP shell of the WhatsApp webhook (`/webhooks/whatsapp`): the `GET` verification
//! handshake and the signed `POST` notifications, handed to [`crate::channels::whatsapp`].
//! The body is read raw (at most 64 KiB) and verified before it is parsed; the answer
//! comes back at once, the messages are answered by the channel's worker.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::api::read_body;
use super::error::ErrorBody;
use super::{ApiError, MAX_BODY_BYTES};
use crate::channels::Channels;
use crate::channels::whatsapp::WebhookError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/whatsapp", web::get().to(get_whatsapp_webhook))
        .route("/webhooks/whatsapp", web::post().to(post_whatsapp_webhook));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Handshake {
    /// Always `subscribe`.
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    /// Must equal `whatsapp.verify_token`.
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    /// Echoed back when the token matches.
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// Meta's verification handshake: echoes `hub.challenge` when `hub.verify_token` matches.
#[utoipa::path(
    get,
    path = "/webhooks/whatsapp",
    tag = "whatsapp",
    params(Handshake),
    responses(
        (status = 200, description = "the challenge, as plain text", content_type = "text/plain", body = String),
        (status = 403, description = "wrong mode or token", body = ErrorBody),
    )
)]
pub async fn get_whatsapp_webhook(
    request: HttpRequest,
    channels: web::Data<Channels>,
) -> Result<HttpResponse, ApiError> {
    let handshake = web::Query::<Handshake>::from_query(request.query_string()).map(web::Query::into_inner).ok();
    let handshake = handshake.unwrap_or(Handshake { mode: None, verify_token: None, challenge: None });
    match channels.whatsapp.verify_subscription(
        handshake.mode.as_deref(),
        handshake.verify_token.as_deref(),
        handshake.challenge.as_deref(),
    ) {
        Some(challenge) => Ok(HttpResponse::Ok().content_type("text/plain; charset=utf-8").body(challenge)),
        None => {
            tracing::warn!("whatsapp verification handshake refused");
            Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "verification failed"))
        }
    }
}

/// Signed notifications (messages and statuses). 200 as soon as they are stored; 401 and
/// nothing processed when `X-Hub-Signature-256` is missing or wrong.
#[utoipa::path(
    post,
    path = "/webhooks/whatsapp",
    tag = "whatsapp",
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=<hex HMAC-SHA256 of the raw body with the app secret>")),
    request_body(content = Object, description = "a WhatsApp Business Account notification, as Meta sends it"),
    responses(
        (status = 200, description = "accepted; answered asynchronously"),
        (status = 400, description = "signed but not valid JSON", body = ErrorBody),
        (status = 401, description = "missing or wrong signature", body = ErrorBody),
        (status = 413, description = "body over 64 KiB", body = ErrorBody),
    )
)]
pub async fn post_whatsapp_webhook(
    request: HttpRequest,
    channels: web::Data<Channels>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&request, payload, MAX_BODY_BYTES).await?;
    let signature =
        request.headers().get("x-hub-signature-256").and_then(|value| value.to_str().ok()).map(str::to_string);
    // Accepting writes the inbox to disk before the 200: off the async workers.
    let whatsapp = channels.whatsapp.clone();
    let accepted = web::block(move || whatsapp.accept(&body, signature.as_deref()))
        .await
        .map_err(|error| ApiError::internal("the whatsapp inbox failed", &error))?;
    match accepted {
        Ok(accepted) => Ok(HttpResponse::Ok().json(accepted)),
        Err(error) => Err(webhook_error(error)),
    }
}

fn webhook_error(error: WebhookError) -> ApiError {
    match error {
        WebhookError::NotConfigured => {
            tracing::error!("whatsapp notification refused: whatsapp.app_secret is not set");
            ApiError::unauthorized("the webhook is not configured")
        }
        WebhookError::MissingSignature | WebhookError::BadSignature => {
            tracing::warn!(%error, "whatsapp notification refused");
            ApiError::unauthorized(error.to_string())
        }
        WebhookError::Malformed(_) => ApiError::bad_request("bad_json", error.to_string()),
        WebhookError::Store(error) if error.is_unavailable() => ApiError::database_unavailable(&error),
        WebhookError::Store(error) => ApiError::internal("the whatsapp inbox failed", &error),
    }
}
