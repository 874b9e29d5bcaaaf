//! The one error map: every library error a handler can meet becomes an HTTP status and the
//! one JSON error body `{"error": {"code": s, "message": s, "details"?: {...}}}` here, with
//! exhaustive matches (a new variant forces a decision). Internal details go to the log, never
//! to the client. The console only chooses between a page and this JSON (`http::console`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use engine::console;
use engine::conversations::StoreError;
use engine::dialogue::{EngineError, InvalidText};

/// The JSON error shape of every 4xx and 5xx, on every route.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`not_found`, `empty_text`, `bad_json`, ...).
    pub code: String,
    pub message: String,
    /// Structured facts of a refusal (the policy's reason), when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
}

/// An error answer: a status, a code and a message for the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Option<Box<Value>>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), details: None, retry_after: None }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn bad_json(error: impl std::fmt::Display) -> Self {
        Self::bad_request("bad_json", format!("malformed body: {error}"))
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
    /// The database cannot be reached right now: 503 with `Retry-After`, so clients (and Meta)
    /// try again; nothing was acknowledged.
    pub fn database_unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, "the database is unavailable");
        ApiError {
            retry_after: Some(DATABASE_RETRY_SECONDS),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the service is briefly unavailable; try again shortly",
            )
        }
    }

    /// A failure on our side: `what` and the cause go to the log, the client learns nothing more.
    pub fn internal(what: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "{what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message.clone(),
                details: self.details.as_deref().cloned(),
            },
        }
    }

    /// The response builder with this error's status and headers, for a body of the caller's.
    pub fn response_builder(&self) -> actix_web::HttpResponseBuilder {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        response
    }
}

/// How long clients are asked to wait while the database is unreachable.
pub const DATABASE_RETRY_SECONDS: u64 = 5;

/// True when `error`, or anything it wraps, is the database being unreachable.
pub fn is_database_unavailable(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(error) = current {
        if error.downcast_ref::<storage::Error>().is_some_and(storage::Error::is_unavailable) {
            return true;
        }
        current = error.source();
    }
    false
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
        self.response_builder().json(self.body())
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
            StoreError::Storage(storage) if storage.is_unavailable() => ApiError::database_unavailable(&storage),
            StoreError::Storage(_) | StoreError::Corrupt(_) => ApiError::internal("conversation store failed", &error),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::Store(error) => error.into(),
            EngineError::Internal(error) if error.chain().any(is_database_unavailable) => {
                ApiError::database_unavailable(&format!("{error:#}"))
            }
            EngineError::Internal(error) => ApiError::internal("engine failed", &format!("{error:#}")),
        }
    }
}

impl From<accounts::Error> for ApiError {
    fn from(error: accounts::Error) -> Self {
        Self::from_accounts(&error)
    }
}

impl ApiError {
    fn from_accounts(error: &accounts::Error) -> Self {
        use accounts::Error as E;
        let with = |status, code| ApiError::new(status, code, error.to_string());
        match error {
            E::UnknownAction(_) => with(StatusCode::NOT_FOUND, "unknown_action"),
            E::InvalidArguments { .. } => with(StatusCode::BAD_REQUEST, "invalid_arguments"),
            E::Refused(refusal) => {
                let status =
                    if refusal.is_not_found() { StatusCode::NOT_FOUND } else { StatusCode::UNPROCESSABLE_ENTITY };
                ApiError {
                    details: Some(Box::new(refusal.details())),
                    ..ApiError::new(status, refusal.code(), refusal.customer_message())
                }
            }
            E::IdempotencyConflict { .. } => with(StatusCode::CONFLICT, "idempotency_conflict"),
            E::IdempotencyKeyRequired { .. } => with(StatusCode::BAD_REQUEST, "idempotency_key_required"),
            E::ConfirmationRequired { .. }
            | E::ConfirmationInvalid { .. }
            | E::ConfirmationExpired
            | E::ConfirmationUsed => with(StatusCode::FORBIDDEN, "confirmation"),
            E::HookFailed { .. } | E::HookBadResponse { .. } => {
                tracing::warn!(%error, "operator hook failed");
                with(StatusCode::BAD_GATEWAY, "operator_unavailable")
            }
            E::HookCircuitOpen { .. } => with(StatusCode::SERVICE_UNAVAILABLE, "operator_unavailable"),
            E::Storage(storage) if storage.is_unavailable() => ApiError::database_unavailable(storage),
            E::InvalidAccounts(_)
            | E::InvalidHook { .. }
            | E::Locked(_)
            | E::SchemaTooNew { .. }
            | E::Storage(_)
            | E::Corrupt(_) => ApiError::internal("account system failed", error),
        }
    }
}

impl From<console::Error> for ApiError {
    fn from(error: console::Error) -> Self {
        use console::Error as E;
        let with = |status, code| ApiError::new(status, code, error.to_string());
        match &error {
            E::InvalidAgentName(_) | E::InvalidRole(_) | E::InvalidPassword => {
                with(StatusCode::BAD_REQUEST, "invalid_input")
            }
            E::WrongCredentials => with(StatusCode::UNAUTHORIZED, "wrong_credentials"),
            E::LockedOut { retry_after_seconds } => ApiError {
                retry_after: Some(*retry_after_seconds),
                ..with(StatusCode::TOO_MANY_REQUESTS, "locked_out")
            },
            E::NotSignedIn => with(StatusCode::UNAUTHORIZED, "unauthorized"),
            E::BadCsrfToken => with(StatusCode::FORBIDDEN, "bad_csrf_token"),
            E::SupervisorsOnly(_) => with(StatusCode::FORBIDDEN, "supervisors_only"),
            E::UnknownAgent(_) => with(StatusCode::NOT_FOUND, "unknown_agent"),
            E::UnknownConversation(_) => with(StatusCode::NOT_FOUND, "unknown_conversation"),
            E::Conflict(_) => with(StatusCode::CONFLICT, "conflict"),
            E::EmptyText => with(StatusCode::BAD_REQUEST, "empty_text"),
            E::TextTooLong { .. } => with(StatusCode::PAYLOAD_TOO_LARGE, "text_too_long"),
            E::InvalidShortcode(_) => with(StatusCode::BAD_REQUEST, "invalid_shortcode"),
            E::UnknownShortcode(_) => with(StatusCode::NOT_FOUND, "unknown_shortcode"),
            E::InvalidSnooze => with(StatusCode::BAD_REQUEST, "invalid_snooze"),
            E::InvalidAction(_) => with(StatusCode::UNPROCESSABLE_ENTITY, "invalid_action"),
            E::NotReady => ApiError::not_ready(),
            E::Storage(storage) if storage.is_unavailable() => ApiError::database_unavailable(storage),
            E::Storage(_) | E::Corrupt(_) | E::Hashing(_) | E::Internal(_) => {
                ApiError::internal("console failed", &error)
            }
            E::Accounts(accounts_error) => ApiError::from_accounts(accounts_error),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(error: impl Into<ApiError>, status: u16, code: &str) {
        let error = error.into();
        assert_eq!((error.status.as_u16(), error.code), (status, code), "{error}");
    }

    #[test]
    fn library_errors_map_to_statuses() {
        check(InvalidText::Empty, 400, "empty_text");
        check(InvalidText::TooLong { n_chars: 5000 }, 413, "text_too_long");
        check(StoreError::NotFound("c1".into()), 404, "not_found");
        check(accounts::Error::UnknownAction("fly".into()), 404, "unknown_action");
        check(accounts::Error::IdempotencyConflict { key: "k".into() }, 409, "idempotency_conflict");
        check(accounts::Error::ConfirmationExpired, 403, "confirmation");
        check(accounts::Error::HookCircuitOpen { action: "make_payment".into() }, 503, "operator_unavailable");
        check(accounts::Error::Corrupt("x".into()), 500, "internal");
        check(console::Error::WrongCredentials, 401, "wrong_credentials");
        check(console::Error::NotReady, 503, "not_ready");
        check(console::Error::Accounts(accounts::Error::ConfirmationUsed), 403, "confirmation");
        let locked: ApiError = console::Error::LockedOut { retry_after_seconds: 30 }.into();
        assert_eq!((locked.status.as_u16(), locked.retry_after), (429, Some(30)));
    }

    #[test]
    fn internal_errors_tell_the_client_nothing() {
        let error: ApiError = accounts::Error::Corrupt("customer C1001 record at /srv/db".into()).into();
        let body = serde_json::to_string(&error.body()).unwrap();
        assert!(!body.contains("C1001") && !body.contains("/srv"), "{body}");
    }
}
