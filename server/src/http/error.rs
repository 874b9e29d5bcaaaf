//! The JSON error shape `{"error": {"code": s, "message": s}}` and the mapping of engine
//! errors to HTTP statuses (the only place that mapping lives).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::conversations::StoreError;
use crate::dialogue::{EngineError, InvalidText};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub fn not_ready() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the assistant is still loading its models")
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status).json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

impl From<InvalidText> for ApiError {
    fn from(error: InvalidText) -> Self {
        match error {
            InvalidText::Empty => ApiError::bad_request("empty_text", error.to_string()),
            InvalidText::TooLong { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "text_too_long", error.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(id) => ApiError::not_found(format!("conversation {id} not found")),
            StoreError::Sled(_) | StoreError::Corrupt(_) => {
                tracing::error!(%error, "conversation store failed");
                ApiError::internal()
            }
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Store(error) => error.into(),
            EngineError::Internal(error) => {
                tracing::error!(error = %format!("{error:#}"), "engine failed");
                ApiError::internal()
            }
        }
    }
}

/// Turns actix's own JSON and path errors into our error shape.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default().limit(limit).error_handler(|error, _request| {
        use actix_web::error::JsonPayloadError;
        let api_error = match &error {
            JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", error.to_string())
            }
            JsonPayloadError::ContentType => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_content_type",
                "send JSON with Content-Type: application/json",
            ),
            _ => ApiError::bad_request("bad_json", format!("malformed JSON body: {error}")),
        };
        api_error.into()
    })
}
