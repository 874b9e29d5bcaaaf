//! The agent-assist console's HTTP shell (`/console`). The work is done by [`engine::console`];
//! handlers check the session and the CSRF token, call it, and render askama pages
//! ([`::web::console`]) or JSON.
//!
//! Pages (HTML; without a session they redirect to the sign-in page):
//! `GET /console` (queue), `GET /console/conversations/{id}`, `GET /console/dashboard` and
//! `GET /console/reports` (supervisors), `GET /console/canned`, `POST /console/canned` and
//! `POST /console/canned/{code}/delete` (supervisors), `POST /console/logout`.
//! Sign-in: `GET /console/login`, `POST /console/login` (its form carries a double-submitted
//! CSRF token: a cookie and a field). Assets: `GET /console/assets/console.{js,css}` (no data).
//!
//! Calls (JSON; 401 without a session): see [`PROTECTED_ROUTES`]. Every `POST` needs the
//! session's CSRF token in `X-CSRF-Token` (or a `csrf` form field); without it, or with a
//! wrong one, 403 and nothing happens. Live updates are server-sent events:
//! `GET /console/api/queue/stream` (`queue`, and `numbers` for supervisors) and
//! `GET /console/api/conversations/{id}/stream` (`item`, `header`, `panel`).
//!
//! Cookies are `HttpOnly`, `SameSite=Strict`, `Path=/`, expire with the session
//! (`console.session_minutes`), and are `Secure` when `console.secure_cookies` is set or the
//! request came over TLS. The staff API accepts the same session (with the CSRF header on
//! `POST`); the audit log then names the signed-in agent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{Method, StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;
use tokio::sync::{broadcast, mpsc};

use super::staff::SessionCheck;
use super::stream::{sse_event, sse_response};
use super::{ApiError, AppState};
use crate::console_view as view;
use ::web::console as pages;
use accounts::{AccountStore, IdempotencyKey};
use engine::console::{self, Agent, Console, Error, Session, Shortcode, queue, reports};
use engine::conversations::{ConversationChange, Event, EventKind};
use engine::dialogue::Engine;

/// The session cookie.
pub const SESSION_COOKIE: &str = "sb_console";
/// The sign-in form's double-submitted CSRF cookie.
pub const LOGIN_CSRF_COOKIE: &str = "sb_console_login";
/// The header carrying the session's CSRF token on state-changing calls.
pub const CSRF_HEADER: &str = "X-CSRF-Token";
/// How often an idle event stream sends a comment (and re-checks the session).
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Changes are gathered this long before a live update is sent.
const LIVE_TICK: Duration = Duration::from_millis(300);
/// Days in the reports.
const REPORT_DAYS: u32 = 30;
/// Most knowledge passages returned by a search.
const KNOWLEDGE_RESULTS: usize = 5;
/// Longest knowledge query.
const MAX_QUERY_CHARS: usize = 500;

/// Every console route that needs a session, as (method, path); `{id}` is a conversation id
/// and `{code}` a short code. The API tests walk this list.
pub const PROTECTED_ROUTES: &[(&str, &str)] = &[
    ("GET", "/console"),
    ("GET", "/console/conversations/{id}"),
    ("GET", "/console/dashboard"),
    ("GET", "/console/reports"),
    ("GET", "/console/canned"),
    ("POST", "/console/canned"),
    ("POST", "/console/canned/{code}/delete"),
    ("POST", "/console/logout"),
    ("GET", "/console/api/queue"),
    ("GET", "/console/api/queue/stream"),
    ("GET", "/console/api/numbers"),
    ("GET", "/console/api/reports"),
    ("GET", "/console/api/canned"),
    ("GET", "/console/api/knowledge"),
    ("GET", "/console/api/conversations/{id}"),
    ("GET", "/console/api/conversations/{id}/stream"),
    ("GET", "/console/api/conversations/{id}/panel"),
    ("GET", "/console/api/conversations/{id}/suggestions"),
    ("GET", "/console/api/conversations/{id}/summary"),
    ("POST", "/console/api/conversations/{id}/take-over"),
    ("POST", "/console/api/conversations/{id}/hand-back"),
    ("POST", "/console/api/conversations/{id}/messages"),
    ("POST", "/console/api/conversations/{id}/notes"),
    ("POST", "/console/api/conversations/{id}/verify"),
    ("POST", "/console/api/conversations/{id}/unlock"),
    ("POST", "/console/api/conversations/{id}/close"),
    ("POST", "/console/api/conversations/{id}/snooze"),
    ("POST", "/console/api/conversations/{id}/assign"),
    ("POST", "/console/api/conversations/{id}/actions/preview"),
    ("POST", "/console/api/conversations/{id}/actions"),
];

mod api;
mod live;
mod sign_in;
mod views;

use api::{
    get_canned, get_conversation, get_knowledge, get_numbers, get_panel, get_queue, get_reports, get_suggestions,
    get_summary, post_action, post_action_preview, post_assign, post_close, post_hand_back, post_message, post_note,
    post_snooze, post_take_over, post_unlock, post_verify,
};
use live::{get_conversation_stream, get_queue_stream};
use sign_in::{get_console_css, get_console_js, get_login, post_login, post_logout};
use views::{
    get_canned_page, get_conversation_page, get_dashboard_page, get_queue_page, get_reports_page, post_canned,
    post_canned_delete,
};

pub fn configure(cfg: &mut web::ServiceConfig) {
    let check: SessionCheck = Arc::new(staff_session_check);
    cfg.app_data(web::Data::new(check))
        .route("/console", web::get().to(get_queue_page))
        .route("/console/", web::get().to(get_queue_page))
        .route("/console/login", web::get().to(get_login))
        .route("/console/login", web::post().to(post_login))
        .route("/console/logout", web::post().to(post_logout))
        .route("/console/assets/console.js", web::get().to(get_console_js))
        .route("/console/assets/console.css", web::get().to(get_console_css))
        .route("/console/conversations/{id}", web::get().to(get_conversation_page))
        .route("/console/dashboard", web::get().to(get_dashboard_page))
        .route("/console/reports", web::get().to(get_reports_page))
        .route("/console/canned", web::get().to(get_canned_page))
        .route("/console/canned", web::post().to(post_canned))
        .route("/console/canned/{code}/delete", web::post().to(post_canned_delete))
        .route("/console/api/queue", web::get().to(get_queue))
        .route("/console/api/queue/stream", web::get().to(get_queue_stream))
        .route("/console/api/numbers", web::get().to(get_numbers))
        .route("/console/api/reports", web::get().to(get_reports))
        .route("/console/api/canned", web::get().to(get_canned))
        .route("/console/api/knowledge", web::get().to(get_knowledge))
        .route("/console/api/conversations/{id}", web::get().to(get_conversation))
        .route("/console/api/conversations/{id}/stream", web::get().to(get_conversation_stream))
        .route("/console/api/conversations/{id}/panel", web::get().to(get_panel))
        .route("/console/api/conversations/{id}/suggestions", web::get().to(get_suggestions))
        .route("/console/api/conversations/{id}/summary", web::get().to(get_summary))
        .route("/console/api/conversations/{id}/take-over", web::post().to(post_take_over))
        .route("/console/api/conversations/{id}/hand-back", web::post().to(post_hand_back))
        .route("/console/api/conversations/{id}/messages", web::post().to(post_message))
        .route("/console/api/conversations/{id}/notes", web::post().to(post_note))
        .route("/console/api/conversations/{id}/verify", web::post().to(post_verify))
        .route("/console/api/conversations/{id}/unlock", web::post().to(post_unlock))
        .route("/console/api/conversations/{id}/close", web::post().to(post_close))
        .route("/console/api/conversations/{id}/snooze", web::post().to(post_snooze))
        .route("/console/api/conversations/{id}/assign", web::post().to(post_assign))
        .route("/console/api/conversations/{id}/actions/preview", web::post().to(post_action_preview))
        .route("/console/api/conversations/{id}/actions", web::post().to(post_action));
}

// ---------------------------------------------------------------------------- errors
/// A refusal or failure of the console: the one error map's [`ApiError`], rendered as a page
/// or as its JSON body. This type only chooses between the two.
#[derive(Debug)]
pub struct ConsoleError {
    error: ApiError,
    /// Render as an HTML page titled for this operator (else JSON); a page without a session
    /// redirects to sign-in.
    page_for_operator: Option<String>,
}

impl ConsoleError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(status, code, message).into()
    }

    fn internal(what: &str, detail: &dyn std::fmt::Display) -> Self {
        ApiError::internal(what, detail).into()
    }

    fn bad_json(error: impl std::fmt::Display) -> Self {
        ApiError::bad_json(error).into()
    }

    fn into_page(mut self, state: &AppState) -> Self {
        self.page_for_operator = Some(state.settings.dialogue.operator_name.clone());
        self
    }
}

impl From<ApiError> for ConsoleError {
    fn from(error: ApiError) -> Self {
        Self { error, page_for_operator: None }
    }
}

impl From<Error> for ConsoleError {
    fn from(error: Error) -> Self {
        ApiError::from(error).into()
    }
}

impl From<engine::conversations::StoreError> for ConsoleError {
    fn from(error: engine::conversations::StoreError) -> Self {
        ApiError::from(Error::from(error)).into()
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl actix_web::ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        self.error.status
    }

    fn error_response(&self) -> HttpResponse {
        let Some(operator_name) = &self.page_for_operator else {
            let mut response = self.error.response_builder();
            return response.insert_header((header::CACHE_CONTROL, "no-store")).json(self.error.body());
        };
        let status = self.error.status;
        if status == StatusCode::UNAUTHORIZED {
            return redirect("/console/login");
        }
        let title = match status {
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::FORBIDDEN => "Not allowed",
            StatusCode::SERVICE_UNAVAILABLE => "Still starting",
            _ => "Something went wrong",
        };
        let page = pages::ErrorPage {
            nav: None,
            operator_name: operator_name.clone(),
            status: status.as_u16(),
            title: title.into(),
            message: self.error.message.clone(),
        };
        match page.render_html() {
            Ok(html) => with_page_headers(self.error.response_builder()).body(html),
            Err(error) => {
                tracing::error!(%error, "rendering the error page failed");
                HttpResponse::InternalServerError().finish()
            }
        }
    }
}

type Reply = Result<HttpResponse, ConsoleError>;

/// Runs blocking console work (the database, argon2, models) off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> console::Result<T> + Send + 'static,
) -> Result<T, ConsoleError> {
    let span = tracing::Span::current();
    web::block(move || {
        let _entered = span.enter();
        work()
    })
    .await
    .map_err(|error| ConsoleError::internal("a console task failed", &error))?
    .map_err(ConsoleError::from)
}

// ---------------------------------------------------------------------------- sessions
/// The signed-in agent of a request.
struct SignedIn {
    agent: Agent,
    session: Session,
    console: Console,
}

impl SignedIn {
    fn nav(&self, state: &AppState, active: &str) -> pages::Nav {
        pages::Nav {
            operator_name: state.settings.dialogue.operator_name.clone(),
            agent: self.agent.name.to_string(),
            role: self.agent.role.to_string(),
            is_supervisor: self.agent.role.is_supervisor(),
            csrf_token: self.session.csrf_token.clone(),
            active: active.to_string(),
        }
    }

    fn require_supervisor(&self, what: &'static str) -> Result<(), ConsoleError> {
        if self.agent.role.is_supervisor() { Ok(()) } else { Err(Error::SupervisorsOnly(what).into()) }
    }
}

fn open_console(state: &AppState) -> console::Result<Console> {
    Console::open(&state.db, &state.settings.console)
}

fn session_token(request: &HttpRequest) -> Option<String> {
    request.cookie(SESSION_COOKIE).map(|cookie| cookie.value().to_string())
}

/// The request's session, or `NotSignedIn`.
fn signed_in(request: &HttpRequest, state: &AppState) -> Result<SignedIn, ConsoleError> {
    let token = session_token(request).ok_or(Error::NotSignedIn)?;
    let console = open_console(state)?;
    let (agent, session) = console.signed_in(&token)?.ok_or(Error::NotSignedIn)?;
    Ok(SignedIn { agent, session, console })
}

/// The session and a matching CSRF token (header, or the form's `csrf` field).
fn signed_in_with_csrf(
    request: &HttpRequest,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<SignedIn, ConsoleError> {
    let signed_in = signed_in(request, state)?;
    let header_token = request.headers().get(CSRF_HEADER).and_then(|value| value.to_str().ok());
    let provided = header_token.or(form_token).unwrap_or("");
    if !signed_in.session.csrf_matches(provided) {
        tracing::warn!(agent = %signed_in.agent.name, path = request.path(), "console request without a valid CSRF token");
        return Err(Error::BadCsrfToken.into());
    }
    Ok(signed_in)
}

/// Lets the staff API accept a console session: reads need the session, changes also the CSRF
/// header. Returns the agent's name (the audit log's actor).
fn staff_session_check(request: &HttpRequest) -> Option<String> {
    let state = request.app_data::<web::Data<AppState>>()?;
    let token = session_token(request)?;
    let (agent, session) = open_console(state).ok()?.signed_in(&token).ok()??;
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        let provided = request.headers().get(CSRF_HEADER)?.to_str().ok()?;
        if !session.csrf_matches(provided) {
            return None;
        }
    }
    Some(agent.name.to_string())
}

fn secure_cookies(request: &HttpRequest, state: &AppState) -> bool {
    state.settings.console.secure_cookies || request.connection_info().scheme() == "https"
}

fn cookie(name: &'static str, value: String, max_age_seconds: i64, secure: bool) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(actix_web::cookie::time::Duration::seconds(max_age_seconds))
        .finish()
}

fn redirect(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn with_page_headers(mut response: actix_web::HttpResponseBuilder) -> actix_web::HttpResponseBuilder {
    response
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY));
    response
}

fn page(html: Result<String, ::web::Error>) -> Reply {
    let html = html.map_err(|error| ConsoleError::internal("rendering a console page failed", &error))?;
    Ok(with_page_headers(HttpResponse::Ok()).body(html))
}

fn json_ok(body: &impl Serialize) -> Reply {
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(body))
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ConsoleError> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { body };
    serde_json::from_slice(body).map_err(ConsoleError::bad_json)
}

fn parse_form<T: DeserializeOwned>(body: &[u8]) -> Result<T, ConsoleError> {
    let text = std::str::from_utf8(body).map_err(ConsoleError::bad_json)?;
    web::Query::<T>::from_query(text).map(web::Query::into_inner).map_err(ConsoleError::bad_json)
}
