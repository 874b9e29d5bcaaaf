//! Verification through the mobile network (CAMARA Number Verification 2.1.0): the customer's
//! phone, on mobile data, opens the operator's authorization endpoint silently (`prompt=none`);
//! the operator redirects back with a code; the server exchanges it for the phone's three-legged
//! token and asks `/number-verification/v2/verify` whether the phone is the number on file.
//!
//! `GET /api/v1/conversations/{id}/network-verification` starts it (a redirect);
//! `GET /api/v1/identity/network/callback` ends it (a short page; the chat shows the outcome).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use super::{ApiError, AppState};
use engine::dialogue::NoTokens;

/// Where the operator's authorization server sends the phone back.
const CALLBACK_PATH: &str = "/api/v1/identity/network/callback";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/conversations/{id}/network-verification", web::get().to(get_network_verification))
        .route(CALLBACK_PATH, web::get().to(get_network_callback));
}

fn callback_url(request: &HttpRequest, state: &AppState) -> String {
    let public = state.settings.server.public_url.trim().trim_end_matches('/');
    if public.is_empty() {
        let info = request.connection_info();
        format!("{}://{}{CALLBACK_PATH}", info.scheme(), info.host())
    } else {
        format!("{public}{CALLBACK_PATH}")
    }
}

fn offered(state: &AppState) -> Result<(), ApiError> {
    let camara = &state.settings.camara;
    if camara.number_verification && camara.is_configured() && !camara.authorize_url.trim().is_empty() {
        Ok(())
    } else {
        Err(ApiError::not_found("this operator does not offer verification through the mobile network"))
    }
}

/// Sends the phone to the operator's authorization endpoint for Number Verification.
#[utoipa::path(
    get,
    path = "/api/v1/conversations/{id}/network-verification",
    tag = "conversations",
    params(("id" = String, Path, description = "the conversation")),
    responses(
        (status = 303, description = "to the operator's authorization endpoint"),
        (status = 404, description = "unknown conversation, or not offered", body = super::error::ErrorBody),
        (status = 429, description = "too many requests from this address", body = super::error::ErrorBody),
    )
)]
pub async fn get_network_verification(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    state.limits.request(&request)?;
    offered(&state)?;
    let conversation_id = path.into_inner();
    if !state.conversations.exists(&conversation_id)? {
        return Err(ApiError::not_found(format!("conversation {conversation_id} not found")));
    }
    let engine = state.engine()?;
    let camara = &state.settings.camara;
    let mut location = reqwest::Url::parse(camara.authorize_url.trim())
        .map_err(|error| ApiError::internal("camara.authorize_url is not a URL", &error))?;
    location
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &camara.client_id)
        .append_pair("redirect_uri", &callback_url(&request, &state))
        .append_pair("scope", "openid number-verification:verify")
        .append_pair("prompt", "none")
        .append_pair("state", &engine.identity().network_state(&conversation_id));
    Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_string())).finish())
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    state: Option<String>,
    /// Set by the authorization server instead of `code` (e.g. `login_required` off mobile data).
    #[serde(default)]
    error: Option<String>,
}

fn page(status: StatusCode, message: &str) -> HttpResponse {
    let escaped = message.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Verification</title></head>\
         <body><main><p>{escaped}</p><p>You can close this page and return to the chat.</p></main></body></html>"
    );
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "default-src 'none'; frame-ancestors 'none'"))
        .body(html)
}

/// Ends a network verification: the code becomes the phone's token, the network says whether
/// the phone is the number on file, and the chat goes on with the outcome.
#[utoipa::path(
    get,
    path = "/api/v1/identity/network/callback",
    tag = "conversations",
    params(
        ("code" = Option<String>, Query, description = "the authorization code"),
        ("state" = Option<String>, Query, description = "what the redirect carried"),
        ("error" = Option<String>, Query, description = "the authorization server's error, instead of a code"),
    ),
    responses(
        (status = 200, description = "a page saying the outcome (HTML)", content_type = "text/html", body = String),
        (status = 400, description = "a missing, forged or expired state, or an error from the operator", content_type = "text/html", body = String),
    )
)]
pub async fn get_network_callback(
    request: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, ApiError> {
    state.limits.request(&request)?;
    offered(&state)?;
    let query = query.into_inner();
    let engine = state.engine()?;
    let Some(conversation_id) = query.state.as_deref().and_then(|s| engine.identity().check_network_state(s)) else {
        return Ok(page(StatusCode::BAD_REQUEST, "This verification link is not valid or has expired."));
    };
    let Some(code) = query.code.filter(|_| query.error.is_none()) else {
        tracing::info!(error = ?query.error, "the operator did not authorize the network verification");
        return Ok(page(
            StatusCode::BAD_REQUEST,
            "Your mobile network could not confirm this phone. Please use the code we texted to you.",
        ));
    };
    let redirect = callback_url(&request, &state);
    let outcome = web::block(move || {
        let network = engine.identity().network.clone();
        let token = match network {
            Some(network) => network.exchange_code(&code, &redirect),
            None => Err(engine::identity::NetworkError::Unreachable("no network APIs configured".into())),
        };
        match token {
            Ok(token) => engine.verify_by_network(&conversation_id, &token, &NoTokens).map(Some),
            Err(error) => {
                tracing::warn!(%error, "exchanging the network verification code failed");
                Ok(None)
            }
        }
    })
    .await
    .map_err(|error| ApiError::internal("network verification failed", &error))?
    .map_err(ApiError::from)?;
    Ok(match outcome {
        Some(turn) => page(StatusCode::OK, &turn.reply),
        None => page(
            StatusCode::BAD_REQUEST,
            "Your mobile network could not confirm this phone. Please use the code we texted to you.",
        ),
    })
}
