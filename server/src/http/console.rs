//! The agent-assist console's HTTP shell (`/console`). The work is done by [`crate::console`];
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

use super::AppState;
use super::staff::SessionCheck;
use crate::accounts::{self, AccountStore, ActionRequest, Actor, IdempotencyKey};
use crate::console::desk::{CachedSummary, checked_request};
use crate::console::{self, Agent, Console, Error, Session, Shortcode, queue, reports, view};
use crate::conversations::{ConversationChange, Event, EventKind};
use crate::dialogue::Engine;
use ::web::console as pages;

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
    ("POST", "/console/api/conversations/{id}/close"),
    ("POST", "/console/api/conversations/{id}/snooze"),
    ("POST", "/console/api/conversations/{id}/assign"),
    ("POST", "/console/api/conversations/{id}/actions/preview"),
    ("POST", "/console/api/conversations/{id}/actions"),
];

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
        .route("/console/api/conversations/{id}/close", web::post().to(post_close))
        .route("/console/api/conversations/{id}/snooze", web::post().to(post_snooze))
        .route("/console/api/conversations/{id}/assign", web::post().to(post_assign))
        .route("/console/api/conversations/{id}/actions/preview", web::post().to(post_action_preview))
        .route("/console/api/conversations/{id}/actions", web::post().to(post_action));
}

// ---------------------------------------------------------------------------- errors

/// A refusal or failure, rendered as a page or as `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ConsoleError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// Render as an HTML page (else JSON); a page without a session redirects to sign-in.
    page: bool,
    operator_name: String,
}

impl ConsoleError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None, page: false, operator_name: String::new() }
    }

    fn internal(what: &str, detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "{what}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
    }

    fn bad_json(error: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_json", format!("malformed body: {error}"))
    }

    fn into_page(mut self, state: &AppState) -> Self {
        self.page = true;
        self.operator_name = state.settings.dialogue.operator_name.clone();
        self
    }
}

impl std::fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl actix_web::ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        if self.page && self.status == StatusCode::UNAUTHORIZED {
            return redirect("/console/login");
        }
        let mut response = HttpResponse::build(self.status);
        response.insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.page {
            let title = match self.status {
                StatusCode::NOT_FOUND => "Not found",
                StatusCode::FORBIDDEN => "Not allowed",
                StatusCode::SERVICE_UNAVAILABLE => "Still starting",
                _ => "Something went wrong",
            };
            let page = pages::ErrorPage {
                nav: None,
                operator_name: self.operator_name.clone(),
                status: self.status.as_u16(),
                title: title.into(),
                message: self.message.clone(),
            };
            return match page.render_html() {
                Ok(html) => with_page_headers(response).body(html),
                Err(error) => {
                    tracing::error!(%error, "rendering the error page failed");
                    HttpResponse::InternalServerError().finish()
                }
            };
        }
        response.json(json!({"error": {"code": self.code, "message": self.message}}))
    }
}

/// The one place console errors become HTTP statuses.
impl From<Error> for ConsoleError {
    fn from(error: Error) -> Self {
        let with = |status, code| ConsoleError::new(status, code, error.to_string());
        match &error {
            Error::InvalidAgentName(_) | Error::InvalidRole(_) | Error::InvalidPassword => {
                with(StatusCode::BAD_REQUEST, "invalid_input")
            }
            Error::WrongCredentials => with(StatusCode::UNAUTHORIZED, "wrong_credentials"),
            Error::LockedOut { retry_after_seconds } => {
                let mut refused = with(StatusCode::TOO_MANY_REQUESTS, "locked_out");
                refused.retry_after = Some(*retry_after_seconds);
                refused
            }
            Error::NotSignedIn => with(StatusCode::UNAUTHORIZED, "unauthorized"),
            Error::BadCsrfToken => with(StatusCode::FORBIDDEN, "bad_csrf_token"),
            Error::SupervisorsOnly(_) => with(StatusCode::FORBIDDEN, "supervisors_only"),
            Error::UnknownAgent(_) => with(StatusCode::NOT_FOUND, "unknown_agent"),
            Error::UnknownConversation(_) => with(StatusCode::NOT_FOUND, "unknown_conversation"),
            Error::Conflict(_) => with(StatusCode::CONFLICT, "conflict"),
            Error::EmptyText => with(StatusCode::BAD_REQUEST, "empty_text"),
            Error::TextTooLong { .. } => with(StatusCode::PAYLOAD_TOO_LARGE, "text_too_long"),
            Error::InvalidShortcode(_) => with(StatusCode::BAD_REQUEST, "invalid_shortcode"),
            Error::UnknownShortcode(_) => with(StatusCode::NOT_FOUND, "unknown_shortcode"),
            Error::InvalidSnooze => with(StatusCode::BAD_REQUEST, "invalid_snooze"),
            Error::InvalidAction(_) => with(StatusCode::UNPROCESSABLE_ENTITY, "invalid_action"),
            Error::NotReady => with(StatusCode::SERVICE_UNAVAILABLE, "not_ready"),
            Error::Accounts(accounts_error) => accounts_error_for(accounts_error),
            Error::Storage(_) | Error::Corrupt(_) | Error::Hashing(_) | Error::Internal(_) => {
                ConsoleError::internal("console failed", &error)
            }
        }
    }
}

fn accounts_error_for(error: &accounts::Error) -> ConsoleError {
    use accounts::Error as E;
    let with = |status, code| ConsoleError::new(status, code, error.to_string());
    match error {
        E::UnknownAction(_) => with(StatusCode::NOT_FOUND, "unknown_action"),
        E::InvalidArguments { .. } => with(StatusCode::BAD_REQUEST, "invalid_arguments"),
        E::Refused(refusal) => {
            let status = if refusal.is_not_found() { StatusCode::NOT_FOUND } else { StatusCode::UNPROCESSABLE_ENTITY };
            ConsoleError::new(status, refusal.code(), refusal.customer_message())
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
        E::InvalidAccounts(_)
        | E::InvalidHook { .. }
        | E::Locked(_)
        | E::SchemaTooNew { .. }
        | E::Storage(_)
        | E::Corrupt(_) => ConsoleError::internal("account action failed", error),
    }
}

impl From<crate::conversations::StoreError> for ConsoleError {
    fn from(error: crate::conversations::StoreError) -> Self {
        Error::from(error).into()
    }
}

type Reply = Result<HttpResponse, ConsoleError>;

/// Runs blocking console work (sled, argon2, models) off the async workers.
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

// ---------------------------------------------------------------------------- sign-in

fn login_page(
    state: &AppState,
    csrf_token: String,
    name: String,
    error: Option<String>,
    notice: Option<String>,
) -> Result<String, ConsoleError> {
    pages::LoginPage { operator_name: state.settings.dialogue.operator_name.clone(), csrf_token, name, error, notice }
        .render_html()
        .map_err(|error| ConsoleError::internal("rendering the sign-in page failed", &error))
}

/// A sign-in page with a fresh double-submit token.
fn login_response(
    request: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    name: String,
    error: Option<String>,
    notice: Option<String>,
) -> Reply {
    let csrf_token = hex::encode(rand::random::<[u8; 16]>());
    let html = login_page(state, csrf_token.clone(), name, error, notice)?;
    let mut response = with_page_headers(HttpResponse::build(status));
    response.cookie(cookie(LOGIN_CSRF_COOKIE, csrf_token, 3600, secure_cookies(request, state)));
    Ok(response.body(html))
}

async fn get_login(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    if signed_in(&request, &state).is_ok() {
        return Ok(redirect("/console"));
    }
    let notice = request.query_string().contains("signed_out").then(|| "You are signed out.".to_string());
    login_response(&request, &state, StatusCode::OK, String::new(), None, notice)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

async fn post_login(request: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Reply {
    let form: LoginForm = match parse_form(&body) {
        Ok(form) => form,
        Err(_) => {
            return login_response(
                &request,
                &state,
                StatusCode::BAD_REQUEST,
                String::new(),
                Some("The form was malformed; please try again.".into()),
                None,
            );
        }
    };
    let name: String = form.name.chars().take(64).collect();
    let cookie_token = request.cookie(LOGIN_CSRF_COOKIE).map(|cookie| cookie.value().to_string()).unwrap_or_default();
    let csrf_ok = !cookie_token.is_empty() && bool::from(cookie_token.as_bytes().ct_eq(form.csrf.as_bytes()));
    if !csrf_ok {
        let message = "The sign-in form expired or did not come from this site; please sign in again.";
        return login_response(&request, &state, StatusCode::FORBIDDEN, name, Some(message.into()), None);
    }
    let console = open_console(&state)?;
    let password = form.password;
    let raw_name = form.name;
    let result = web::block(move || console.sign_in(&raw_name, &password))
        .await
        .map_err(|error| ConsoleError::internal("signing in failed", &error))?;
    match result {
        Ok(sign_in) => {
            tracing::info!(agent = %sign_in.session.agent, "console sign-in");
            let secure = secure_cookies(&request, &state);
            let lifetime = (sign_in.session.expires_at - sign_in.session.created_at).num_seconds();
            let mut expired_login = cookie(LOGIN_CSRF_COOKIE, String::new(), 0, secure);
            expired_login.make_removal();
            Ok(HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/console"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .cookie(cookie(SESSION_COOKIE, sign_in.token.as_str().to_string(), lifetime, secure))
                .cookie(expired_login)
                .finish())
        }
        Err(Error::LockedOut { retry_after_seconds }) => {
            let message = format!("Too many wrong passwords. Try again in {retry_after_seconds} seconds.");
            let mut response =
                login_response(&request, &state, StatusCode::TOO_MANY_REQUESTS, name, Some(message), None)?;
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from(retry_after_seconds));
            Ok(response)
        }
        Err(Error::WrongCredentials) => login_response(
            &request,
            &state,
            StatusCode::UNAUTHORIZED,
            name,
            Some("Wrong name or password.".into()),
            None,
        ),
        Err(error) => Err(error.into()),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn post_logout(request: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Reply {
    let form: CsrfForm = parse_form(&body).unwrap_or(CsrfForm { csrf: String::new() });
    let signed_in = signed_in_with_csrf(&request, &state, Some(&form.csrf)).map_err(|e| e.into_page(&state))?;
    if let Some(token) = session_token(&request) {
        signed_in.console.sessions().end(&token)?;
    }
    let mut removal = cookie(SESSION_COOKIE, String::new(), 0, secure_cookies(&request, &state));
    removal.make_removal();
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/console/login?signed_out"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .cookie(removal)
        .finish())
}

async fn get_console_js() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(pages::CONSOLE_JS)
}

async fn get_console_css() -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/css; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(pages::CONSOLE_CSS)
}

// ---------------------------------------------------------------------------- views

fn engine(state: &AppState) -> Option<Arc<Engine>> {
    state.readiness.engine().cloned()
}

fn account_store(engine: Option<&Arc<Engine>>) -> Option<AccountStore> {
    engine.map(|engine| engine.registry().store().clone())
}

fn build_queue(state: &AppState, signed_in: &SignedIn) -> console::Result<pages::QueueView> {
    let store = account_store(engine(state).as_ref());
    let desk = signed_in.console.desk(&state.conversations);
    queue::build(&state.conversations, &desk, &signed_in.agent, store.as_ref(), Utc::now())
}

async fn get_queue_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    let worker_state = state.clone();
    let (signed_in, queue) = blocking(move || {
        let queue = build_queue(&worker_state, &signed_in)?;
        Ok((signed_in, queue))
    })
    .await
    .map_err(|e| e.into_page(&state))?;
    page(pages::QueuePage { nav: signed_in.nav(&state, "queue"), queue }.render_html())
}

/// Everything the conversation page shows.
struct ConversationView {
    header: pages::ConversationHeader,
    items: Vec<pages::TranscriptItem>,
    last_seq: Option<u64>,
    panel: Option<pages::CustomerPanel>,
    panel_note: String,
    summary: String,
}

fn conversation_view(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    with_panel: bool,
) -> console::Result<ConversationView> {
    let conversation = state.conversations.get(id)?;
    let events = state.conversations.events(id)?;
    let engine = engine(state);
    let store = account_store(engine.as_ref());
    let desk = signed_in.console.desk(&state.conversations);
    let snoozed_until = desk.snoozed_until(id)?;
    let header =
        view::conversation_header(&conversation, &events, &signed_in.agent, store.as_ref(), snoozed_until, Utc::now());
    let items: Vec<pages::TranscriptItem> = events.iter().filter_map(view::transcript_item).collect();
    let (panel, panel_note) = if with_panel { panel(state, &conversation, &events)? } else { (None, String::new()) };
    let summary = match desk.cached_summary(id)? {
        Some(cached) => cached.text,
        None => conversation
            .summary
            .clone()
            .unwrap_or_else(|| crate::dialogue::summary::summarise(&events, conversation.customer_id.as_deref())),
    };
    Ok(ConversationView { header, items, last_seq: events.last().map(|event| event.seq), panel, panel_note, summary })
}

fn panel(
    state: &AppState,
    conversation: &crate::conversations::Conversation,
    events: &[Event],
) -> console::Result<(Option<pages::CustomerPanel>, String)> {
    let Some(customer_id) = &conversation.customer_id else {
        return Ok((None, "The customer is not identified yet. Ask for their phone number or customer id.".into()));
    };
    let Some(engine) = engine(state) else {
        return Ok((None, "The account system is still loading.".into()));
    };
    let panel = view::customer_panel(engine.registry().store(), customer_id, view::verification(events))?;
    match panel {
        Some(panel) => Ok((Some(panel), String::new())),
        None => Ok((None, format!("No customer {customer_id} in the account system."))),
    }
}

async fn get_conversation_page(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    let id = path.into_inner();
    let worker_state = state.clone();
    let (signed_in, view, agents) = blocking(move || {
        let view = conversation_view(&worker_state, &signed_in, &id, true)?;
        let agents = signed_in.console.agents().list()?;
        Ok((signed_in, view, agents))
    })
    .await
    .map_err(|e| e.into_page(&state))?;
    let agents = agents
        .into_iter()
        .map(|agent| pages::AgentOption {
            label: if agent.name == signed_in.agent.name {
                format!("{} (me)", agent.name)
            } else {
                agent.name.to_string()
            },
            name: agent.name.to_string(),
        })
        .collect();
    page(
        pages::ConversationPage {
            nav: signed_in.nav(&state, "queue"),
            header: view.header,
            transcript: view.items,
            last_seq: view.last_seq.map(|seq| seq.to_string()).unwrap_or_default(),
            panel: view.panel,
            panel_note: view.panel_note,
            summary: view.summary,
            agents,
        }
        .render_html(),
    )
}

async fn get_dashboard_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("see the dashboard").map_err(|e| e.into_page(&state))?;
    let worker_state = state.clone();
    let (signed_in, numbers, agents, queue) = blocking(move || {
        let numbers = queue::live_numbers(&worker_state.conversations, Utc::now())?;
        let agents = queue::agent_loads(&worker_state.conversations, &signed_in.console.agents().list()?)?;
        let queue = build_queue(&worker_state, &signed_in)?;
        Ok((signed_in, numbers, agents, queue))
    })
    .await
    .map_err(|e| e.into_page(&state))?;
    page(pages::DashboardPage { nav: signed_in.nav(&state, "dashboard"), numbers, agents, queue }.render_html())
}

fn report_rows(report: &reports::Report) -> (Vec<pages::DayRow>, Vec<pages::IntentRow>, pages::LiveNumbers) {
    let days = report
        .days
        .iter()
        .rev()
        .map(|(date, stats)| {
            let numbers = queue::numbers(stats, reports::Now::default());
            pages::DayRow {
                date: date.to_string(),
                conversations: stats.conversations,
                contained: stats.contained,
                containment: numbers.containment,
                containment_fraction: stats.containment().unwrap_or(0.0),
                transferred: stats.transferred,
                first_response: numbers.first_response,
                csat: numbers.csat,
            }
        })
        .collect();
    let most = report.top_intents.first().map_or(1, |(_, count)| (*count).max(1));
    let intents = report
        .top_intents
        .iter()
        .map(|(intent, count)| pages::IntentRow {
            intent: intent.clone(),
            count: *count,
            fraction: *count as f64 / most as f64,
        })
        .collect();
    (days, intents, queue::numbers(&report.totals, reports::Now::default()))
}

async fn get_reports_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("see the reports").map_err(|e| e.into_page(&state))?;
    let conversations = state.conversations.clone();
    let today = Utc::now().date_naive();
    let report =
        blocking(move || reports::report(&conversations, today, REPORT_DAYS)).await.map_err(|e| e.into_page(&state))?;
    let (days, intents, totals) = report_rows(&report);
    let first_day = report.days.first().map(|(date, _)| date.to_string()).unwrap_or_default();
    page(
        pages::ReportsPage {
            nav: signed_in.nav(&state, "reports"),
            days,
            intents,
            totals,
            first_day,
            last_day: today.to_string(),
        }
        .render_html(),
    )
}

fn canned_rows(console: &Console) -> console::Result<Vec<pages::CannedRow>> {
    Ok(console
        .canned()
        .list()?
        .into_iter()
        .map(|canned| pages::CannedRow {
            shortcode: canned.shortcode.display(),
            code: canned.shortcode.as_str().to_string(),
            text: canned.text,
            updated_by: canned.updated_by,
            updated_at: canned.updated_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect())
}

fn canned_page(
    state: &AppState,
    signed_in: &SignedIn,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Reply {
    let items = canned_rows(&signed_in.console)?;
    let html = pages::CannedPage { nav: signed_in.nav(state, "canned"), items, notice, error }
        .render_html()
        .map_err(|error| ConsoleError::internal("rendering the canned page failed", &error))?;
    Ok(with_page_headers(HttpResponse::build(status)).body(html))
}

async fn get_canned_page(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state).map_err(|e| e.into_page(&state))?;
    canned_page(&state, &signed_in, StatusCode::OK, None, None)
}

#[derive(Deserialize)]
struct CannedForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    shortcode: String,
    #[serde(default)]
    text: String,
}

async fn post_canned(request: HttpRequest, state: web::Data<AppState>, body: web::Bytes) -> Reply {
    let form: CannedForm =
        parse_form(&body).unwrap_or(CannedForm { csrf: String::new(), shortcode: String::new(), text: String::new() });
    let signed_in = signed_in_with_csrf(&request, &state, Some(&form.csrf)).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("manage canned responses").map_err(|e| e.into_page(&state))?;
    let saved = Shortcode::parse(&form.shortcode)
        .and_then(|code| signed_in.console.canned().put(&code, &form.text, signed_in.agent.name.as_str()));
    match saved {
        Ok(canned) => canned_page(
            &state,
            &signed_in,
            StatusCode::OK,
            Some(format!("Saved {}.", canned.shortcode.display())),
            None,
        ),
        Err(error @ (Error::InvalidShortcode(_) | Error::EmptyText | Error::TextTooLong { .. })) => {
            canned_page(&state, &signed_in, StatusCode::BAD_REQUEST, None, Some(error.to_string()))
        }
        Err(error) => Err(ConsoleError::from(error).into_page(&state)),
    }
}

async fn post_canned_delete(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let form: CsrfForm = parse_form(&body).unwrap_or(CsrfForm { csrf: String::new() });
    let signed_in = signed_in_with_csrf(&request, &state, Some(&form.csrf)).map_err(|e| e.into_page(&state))?;
    signed_in.require_supervisor("manage canned responses").map_err(|e| e.into_page(&state))?;
    let code = Shortcode::parse(&path).map_err(|e| ConsoleError::from(e).into_page(&state))?;
    if signed_in.console.canned().delete(&code)? {
        canned_page(&state, &signed_in, StatusCode::OK, Some(format!("Deleted {}.", code.display())), None)
    } else {
        canned_page(
            &state,
            &signed_in,
            StatusCode::NOT_FOUND,
            None,
            Some(format!("No canned response {}.", code.display())),
        )
    }
}

// ---------------------------------------------------------------------------- reads (JSON)

async fn get_queue(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let worker_state = state.clone();
    let queue = blocking(move || build_queue(&worker_state, &signed_in)).await?;
    json_ok(&queue)
}

async fn get_numbers(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    signed_in.require_supervisor("see the live numbers")?;
    let conversations = state.conversations.clone();
    let numbers = blocking(move || queue::live_numbers(&conversations, Utc::now())).await?;
    json_ok(&numbers)
}

async fn get_reports(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    signed_in.require_supervisor("see the reports")?;
    let conversations = state.conversations.clone();
    let report = blocking(move || reports::report(&conversations, Utc::now().date_naive(), REPORT_DAYS)).await?;
    let (days, intents, totals) = report_rows(&report);
    json_ok(&json!({"days": days, "top_intents": intents, "totals": totals}))
}

async fn get_canned(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    json_ok(&canned_rows(&signed_in.console)?)
}

#[derive(Deserialize)]
struct KnowledgeQuery {
    #[serde(default)]
    q: String,
}

async fn get_knowledge(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let _signed_in = signed_in(&request, &state)?;
    let query = web::Query::<KnowledgeQuery>::from_query(request.query_string())
        .map_err(|error| ConsoleError::new(StatusCode::BAD_REQUEST, "bad_query", error.to_string()))?
        .into_inner()
        .q;
    let query = console::agent_text(&query, MAX_QUERY_CHARS)?;
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let passages = blocking(move || Ok(engine.search_knowledge(&query, KNOWLEDGE_RESULTS)?)).await?;
    let results: Vec<Value> = passages
        .into_iter()
        .map(|passage| {
            let text: String = passage.text.chars().take(700).collect();
            json!({"document": passage.document, "section": passage.section, "text": text, "score": passage.score})
        })
        .collect();
    json_ok(&json!({"results": results}))
}

async fn get_conversation(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let worker_state = state.clone();
    let view = blocking(move || conversation_view(&worker_state, &signed_in, &id, false)).await?;
    json_ok(&json!({"header": view.header, "items": view.items, "last_seq": view.last_seq, "summary": view.summary}))
}

async fn get_panel(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let _signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let worker_state = state.clone();
    let (panel, panel_note) = blocking(move || {
        let conversation = worker_state.conversations.get(&id)?;
        let events = worker_state.conversations.events(&id)?;
        panel(&worker_state, &conversation, &events)
    })
    .await?;
    let html = pages::PanelFragment { panel, panel_note }
        .render_html()
        .map_err(|error| ConsoleError::internal("rendering the panel failed", &error))?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(html))
}

#[derive(Serialize)]
struct SuggestionOut {
    text: String,
    /// `greeting`, `next_step` or `knowledge`.
    origin: String,
    sources: Vec<String>,
}

async fn get_suggestions(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let operator = state.settings.dialogue.operator_name.clone();
    let conversations = state.conversations.clone();
    let agent_name = signed_in.agent.name.to_string();
    let suggestions = blocking(move || {
        let conversation = conversations.get(&id)?;
        let events = conversations.events(&id)?;
        let mut out = Vec::new();
        let agent_wrote = events.iter().any(|event| matches!(event.kind, EventKind::AgentMessage { .. }));
        if !agent_wrote {
            let first_name = conversation
                .customer_id
                .as_deref()
                .and_then(|id| accounts::CustomerId::parse(id.to_string()).ok())
                .and_then(|id| engine.registry().store().customer(&id).ok().flatten())
                .and_then(|customer| customer.full_name.split_whitespace().next().map(str::to_string));
            let hello = match first_name {
                Some(name) => format!("Hi {name}, "),
                None => "Hi, ".into(),
            };
            out.push(SuggestionOut {
                text: format!(
                    "{hello}I'm {agent_name} from {operator}. I've read your conversation with our assistant, so there's no need to repeat anything. Let me help you with this now."
                ),
                origin: "greeting".into(),
                sources: Vec::new(),
            });
        }
        for suggestion in engine.suggest_replies(&id)? {
            out.push(SuggestionOut {
                text: suggestion.text,
                origin: suggestion.origin.to_string(),
                sources: suggestion.sources.iter().map(|s| format!("{} › {}", s.document, s.section)).collect(),
            });
        }
        Ok(out)
    })
    .await?;
    json_ok(&json!({"suggestions": suggestions}))
}

async fn get_summary(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let engine = engine(&state);
    let conversations = state.conversations.clone();
    let (text, source) = blocking(move || {
        let conversation = conversations.get(&id)?;
        let events = conversations.events(&id)?;
        let desk = signed_in.console.desk(&conversations);
        let handoff_seq = events.iter().rev().find_map(|event| match event.kind {
            EventKind::Handoff { .. } => Some(event.seq),
            _ => None,
        });
        let logged = || {
            conversation
                .summary
                .clone()
                .unwrap_or_else(|| crate::dialogue::summary::summarise(&events, conversation.customer_id.as_deref()))
        };
        let (Some(handoff_seq), Some(engine)) = (handoff_seq, engine) else { return Ok((logged(), "log")) };
        if let Some(cached) = desk.cached_summary(&id)?.filter(|cached| cached.handoff_seq == handoff_seq) {
            return Ok((cached.text, "model"));
        }
        let text = engine.summarise(&id)?;
        desk.store_summary(&id, &CachedSummary { handoff_seq, text: text.clone() })?;
        Ok((text, "model"))
    })
    .await?;
    json_ok(&json!({"summary": text, "source": source}))
}

// ---------------------------------------------------------------------------- changes (JSON)

fn header_json(state: &AppState, signed_in: &SignedIn, id: &str) -> console::Result<pages::ConversationHeader> {
    let conversation = state.conversations.get(id)?;
    let events = state.conversations.events(id)?;
    let store = account_store(engine(state).as_ref());
    let snoozed_until = signed_in.console.desk(&state.conversations).snoozed_until(id)?;
    Ok(view::conversation_header(&conversation, &events, &signed_in.agent, store.as_ref(), snoozed_until, Utc::now()))
}

/// Runs one desk operation for a signed-in agent with a valid CSRF header; answers the header.
async fn desk_change(
    request: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    work: impl FnOnce(&AppState, &SignedIn, &str) -> console::Result<Value> + Send + 'static,
) -> Reply {
    let signed_in = signed_in_with_csrf(&request, &state, None)?;
    let worker_state = state.clone();
    let out = blocking(move || {
        let mut out = work(&worker_state, &signed_in, &id)?;
        out["header"] = serde_json::to_value(header_json(&worker_state, &signed_in, &id)?)?;
        Ok(out)
    })
    .await?;
    json_ok(&out)
}

async fn post_take_over(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    desk_change(request, state, path.into_inner(), |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).take_over(id, &signed_in.agent)?;
        Ok(json!({}))
    })
    .await
}

async fn post_hand_back(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    desk_change(request, state, path.into_inner(), |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).hand_back(id, &signed_in.agent)?;
        Ok(json!({}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextBody {
    text: String,
}

async fn post_message(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let text = parse_json::<TextBody>(&body)?.text;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        let event = signed_in.console.desk(&state.conversations).send(id, &signed_in.agent, &text)?;
        Ok(json!({"item": view::transcript_item(&event)}))
    })
    .await
}

async fn post_note(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let text = parse_json::<TextBody>(&body)?.text;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        let event = signed_in.console.desk(&state.conversations).note(id, &signed_in.agent, &text)?;
        Ok(json!({"item": view::transcript_item(&event)}))
    })
    .await
}

async fn post_close(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let engine = engine(&state).ok_or(Error::NotReady)?;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).close(id, &signed_in.agent, &engine)?;
        Ok(json!({}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SnoozeBody {
    minutes: u32,
}

async fn post_snooze(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let minutes = parse_json::<SnoozeBody>(&body)?.minutes;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        let until = signed_in.console.desk(&state.conversations).snooze(id, &signed_in.agent, minutes)?;
        Ok(json!({"until": until.to_rfc3339()}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignBody {
    /// An agent's name; null or empty: nobody.
    #[serde(default)]
    agent: Option<String>,
}

async fn post_assign(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let _ = signed_in_with_csrf(&request, &state, None)?;
    let target = parse_json::<AssignBody>(&body)?.agent;
    desk_change(request, state, path.into_inner(), move |state, signed_in, id| {
        signed_in.console.desk(&state.conversations).assign(id, &signed_in.agent, target.as_deref())?;
        Ok(json!({}))
    })
    .await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    name: String,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Describes the exact change an action will make, and whether the policy would refuse it now;
/// returns the idempotency key the confirmation must send back (so a double click runs once).
async fn post_action_preview(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let signed_in = signed_in_with_csrf(&request, &state, None)?;
    let action: ActionBody = parse_json(&body)?;
    let id = path.into_inner();
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let conversations = state.conversations.clone();
    let out = blocking(move || {
        let conversation = conversations.get(&id)?;
        let request: ActionRequest = checked_request(&conversation, &action.name, action.args)?;
        let registry = engine.registry();
        let description = view::describe_action(registry.store(), &request)?;
        let refusal = match registry.check(&Actor::agent(signed_in.agent.name.as_str()), &request)? {
            Ok(_) => None,
            Err(refusal) => Some(refusal.customer_message()),
        };
        Ok(json!({
            "name": request.name().as_str(),
            "args": request.args_json(),
            "description": description,
            "refusal": refusal,
            "idempotency_key": format!("console-{}", uuid::Uuid::new_v4()),
        }))
    })
    .await?;
    json_ok(&out)
}

async fn post_action(
    request: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: web::Bytes,
) -> Reply {
    let signed_in = signed_in_with_csrf(&request, &state, None)?;
    let action: ActionBody = parse_json(&body)?;
    let id = path.into_inner();
    let key = match action.idempotency_key {
        Some(key) => IdempotencyKey::parse(key)
            .map_err(|error| ConsoleError::new(StatusCode::BAD_REQUEST, "bad_idempotency_key", error.to_string()))?,
        None => {
            return Err(ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "idempotency_key_required",
                "send the idempotency_key the preview returned",
            ));
        }
    };
    let engine = engine(&state).ok_or(Error::NotReady)?;
    let desk = signed_in.console.desk(&state.conversations);
    let result = desk.run_action(&id, &signed_in.agent, engine.registry(), &action.name, action.args, key).await?;
    tracing::info!(agent = %signed_in.agent.name, conversation_id = %id, action = %result.action, replayed = result.replayed, "console action");
    json_ok(
        &json!({"action": result.action, "args": result.args, "output": result.output, "replayed": result.replayed}),
    )
}

// ---------------------------------------------------------------------------- live updates

/// One server-sent event.
fn sse_event(name: &str, data: &impl Serialize) -> web::Bytes {
    let data = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    web::Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

fn sse_response(receiver: mpsc::Receiver<web::Bytes>) -> HttpResponse {
    let body = tokio_stream::wrappers::ReceiverStream::new(receiver);
    let body = futures_util::StreamExt::map(body, Ok::<_, actix_web::Error>);
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, "text/event-stream"))
        .insert_header((header::CACHE_CONTROL, "no-cache, no-store, no-transform"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// Whether the session behind a stream is still live.
fn session_alive(state: &AppState, token: &str) -> bool {
    open_console(state).ok().and_then(|console| console.signed_in(token).ok().flatten()).is_some()
}

async fn get_queue_stream(request: HttpRequest, state: web::Data<AppState>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let token = session_token(&request).unwrap_or_default();
    let changes = state.conversations.subscribe();
    let (sender, receiver) = mpsc::channel::<web::Bytes>(64);
    actix_web::rt::spawn(queue_pump(state.clone().into_inner(), signed_in, token, sender, changes));
    Ok(sse_response(receiver))
}

async fn queue_pump(
    state: Arc<AppState>,
    signed_in: SignedIn,
    token: String,
    sender: mpsc::Sender<web::Bytes>,
    mut changes: broadcast::Receiver<ConversationChange>,
) {
    if sender.send(web::Bytes::from_static(b"retry: 3000\n\n")).await.is_err() {
        return;
    }
    let signed_in = Arc::new(signed_in);
    let mut last_queue: Option<pages::QueueView> = None;
    let mut last_numbers: Option<pages::LiveNumbers> = None;
    let mut dirty = true;
    let mut last_refresh = Instant::now();
    let mut tick = tokio::time::interval(LIVE_TICK);
    loop {
        tokio::select! {
            _ = sender.closed() => return,
            change = changes.recv() => match change {
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => dirty = true,
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => {
                let periodic = last_refresh.elapsed() >= KEEP_ALIVE;
                if !dirty && !periodic {
                    continue;
                }
                dirty = false;
                last_refresh = Instant::now();
                let worker_state = state.clone();
                let worker_signed_in = signed_in.clone();
                let worker_token = token.clone();
                let snapshot = web::block(move || -> console::Result<Option<(pages::QueueView, Option<pages::LiveNumbers>)>> {
                    if !session_alive(&worker_state, &worker_token) {
                        return Ok(None);
                    }
                    let queue = build_queue(&worker_state, &worker_signed_in)?;
                    let numbers = if worker_signed_in.agent.role.is_supervisor() {
                        Some(queue::live_numbers(&worker_state.conversations, Utc::now())?)
                    } else {
                        None
                    };
                    Ok(Some((queue, numbers)))
                })
                .await;
                let (queue, numbers) = match snapshot {
                    Ok(Ok(Some(snapshot))) => snapshot,
                    Ok(Ok(None)) => {
                        let _ = sender.send(sse_event("signed_out", &json!({}))).await;
                        return;
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(%error, "the live queue could not be built");
                        continue;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "the live queue task failed");
                        continue;
                    }
                };
                if last_queue.as_ref() != Some(&queue) {
                    if sender.send(sse_event("queue", &queue)).await.is_err() {
                        return;
                    }
                    last_queue = Some(queue);
                }
                if numbers.is_some() && last_numbers != numbers {
                    if sender.send(sse_event("numbers", &numbers)).await.is_err() {
                        return;
                    }
                    last_numbers = numbers;
                }
                if periodic && sender.send(web::Bytes::from_static(b": keep-alive\n\n")).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct StreamQuery {
    after: Option<u64>,
}

async fn get_conversation_stream(request: HttpRequest, state: web::Data<AppState>, path: web::Path<String>) -> Reply {
    let signed_in = signed_in(&request, &state)?;
    let id = path.into_inner();
    let query = web::Query::<StreamQuery>::from_query(request.query_string())
        .map_err(|error| ConsoleError::new(StatusCode::BAD_REQUEST, "bad_query", error.to_string()))?
        .into_inner();
    let last_event_id = request
        .headers()
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok());
    if !state.conversations.exists(&id)? {
        return Err(Error::UnknownConversation(id).into());
    }
    let token = session_token(&request).unwrap_or_default();
    // Subscribe before reading the log, so nothing falls between the two.
    let changes = state.conversations.subscribe();
    let (sender, receiver) = mpsc::channel::<web::Bytes>(256);
    let pump = ConversationPump {
        state: state.clone().into_inner(),
        signed_in: Arc::new(signed_in),
        token,
        id,
        sender,
        last_seq: last_event_id.or(query.after),
    };
    actix_web::rt::spawn(pump.run(changes));
    Ok(sse_response(receiver))
}

struct ConversationPump {
    state: Arc<AppState>,
    signed_in: Arc<SignedIn>,
    token: String,
    id: String,
    sender: mpsc::Sender<web::Bytes>,
    last_seq: Option<u64>,
}

/// The listener went away.
struct Gone;

impl ConversationPump {
    async fn run(mut self, mut changes: broadcast::Receiver<ConversationChange>) {
        if self.send(web::Bytes::from_static(b"retry: 3000\n\n")).await.is_err() || self.replay().await.is_err() {
            return;
        }
        let mut header_dirty = true;
        let mut panel_dirty = false;
        let mut last_refresh = Instant::now();
        let mut tick = tokio::time::interval(LIVE_TICK);
        loop {
            let sent = tokio::select! {
                _ = self.sender.closed() => return,
                change = changes.recv() => match change {
                    Ok(change) if change.id == self.id => {
                        header_dirty = true;
                        match change.event {
                            Some(event) => {
                                panel_dirty |= matches!(event.kind, EventKind::ActionDone { .. } | EventKind::ActionRefused { .. } | EventKind::CustomerIdentified { .. });
                                self.forward(&event).await
                            }
                            None => Ok(()),
                        }
                    }
                    Ok(_) => Ok(()),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        header_dirty = true;
                        panel_dirty = true;
                        self.replay().await
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => {
                    let periodic = last_refresh.elapsed() >= KEEP_ALIVE;
                    if periodic {
                        last_refresh = Instant::now();
                        let state = self.state.clone();
                        let token = self.token.clone();
                        let alive = web::block(move || session_alive(&state, &token)).await.unwrap_or(false);
                        if !alive {
                            let _ = self.send(sse_event("signed_out", &json!({}))).await;
                            return;
                        }
                    }
                    let mut sent = Ok(());
                    if header_dirty {
                        header_dirty = false;
                        sent = self.send_header().await;
                    }
                    if sent.is_ok() && panel_dirty {
                        panel_dirty = false;
                        sent = self.send(sse_event("panel", &json!({}))).await;
                    }
                    if sent.is_ok() && periodic {
                        sent = self.send(web::Bytes::from_static(b": keep-alive\n\n")).await;
                    }
                    sent
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }

    async fn send(&self, bytes: web::Bytes) -> Result<(), Gone> {
        self.sender.send(bytes).await.map_err(|_| Gone)
    }

    async fn send_header(&self) -> Result<(), Gone> {
        let state = self.state.clone();
        let signed_in = self.signed_in.clone();
        let id = self.id.clone();
        match web::block(move || header_json(&state, &signed_in, &id)).await {
            Ok(Ok(header)) => self.send(sse_event("header", &header)).await,
            Ok(Err(error)) => {
                tracing::warn!(%error, "the live header could not be built");
                Ok(())
            }
            Err(_) => Ok(()),
        }
    }

    /// Sends the transcript items logged after `last_seq`.
    async fn replay(&mut self) -> Result<(), Gone> {
        let conversations = self.state.conversations.clone();
        let id = self.id.clone();
        let events = web::block(move || conversations.events(&id)).await.ok().and_then(Result::ok).unwrap_or_default();
        for event in events {
            self.forward(&event).await?;
        }
        Ok(())
    }

    async fn forward(&mut self, event: &Event) -> Result<(), Gone> {
        if self.last_seq.is_some_and(|last| event.seq <= last) {
            return Ok(());
        }
        self.last_seq = Some(event.seq);
        match view::transcript_item(event) {
            Some(item) => {
                let data = serde_json::to_string(&item).unwrap_or_else(|_| "null".into());
                self.send(web::Bytes::from(format!("id: {}\nevent: item\ndata: {data}\n\n", event.seq))).await
            }
            None => Ok(()),
        }
    }
}
