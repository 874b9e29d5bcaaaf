//! The staff API over the account system (the agent console uses it):
//!
//! - `GET /api/v1/staff/customers/{id}`: the profile (masked), lines and bills;
//! - `GET /api/v1/staff/customers/{id}/audit`: the customer's audit log;
//! - `POST /api/v1/staff/actions/{name}`: runs an action; the body is the action's arguments
//!   plus `idempotency_key` (required for changes). 200 with the result, 400 on malformed
//!   arguments, 404 on an unknown action or id, 409 on an idempotency key reused with other
//!   arguments, 422 with the reason when the policy refuses, 502/503 when the operator's hook
//!   fails or its circuit is open.
//!
//! Every route needs `Authorization: Bearer <staff.api_token>` (or a console session, when the
//! console installs a [`SessionCheck`]); without it, 401 and no customer data. An empty
//! `staff.api_token` disables the token. The acting agent's name comes from
//! `X-Switchboard-Agent` (default `staff-api`) and goes into the audit log. Errors are
//! `{"error": {"code", "message"}}` (a refusal adds `details`).

use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::ApiError;
use crate::config::Secret;
use accounts::domain::Customer;
use accounts::mask::mask_email;
use accounts::{ActionCall, ActionRegistry, ActionRequest, Actor, CustomerId, Error as AccountsError, IdempotencyKey};

/// Tells whether a request carries a signed-in console session; returns the agent's name.
pub type SessionCheck = Arc<dyn Fn(&HttpRequest) -> Option<String> + Send + Sync>;

/// Header naming the acting agent (for the audit log).
pub const AGENT_HEADER: &str = "X-Switchboard-Agent";

/// What the staff routes need, when registered as `web::Data<StaffApi>` app data (tests, or a
/// console that checks its own sessions); otherwise they use the server's `AppState`.
pub struct StaffApi {
    registry: Option<Arc<ActionRegistry>>,
    api_token: Secret,
    session_check: Option<SessionCheck>,
}

impl StaffApi {
    pub fn new(registry: Arc<ActionRegistry>, api_token: Secret) -> Self {
        Self { registry: Some(registry), api_token, session_check: None }
    }

    /// Also accepts requests with a console session.
    pub fn with_session_check(mut self, check: SessionCheck) -> Self {
        self.session_check = Some(check);
        self
    }

    /// The agent behind an authorized request, or `None`.
    fn authorize(&self, request: &HttpRequest) -> Option<Actor> {
        let named = |default: &str| {
            let name = request
                .headers()
                .get(AGENT_HEADER)
                .and_then(|value| value.to_str().ok())
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .unwrap_or(default)
                .to_string();
            Actor::agent(&name)
        };
        let bearer = request
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim);
        if let Some(token) = bearer
            && !self.api_token.is_empty()
            && bool::from(token.as_bytes().ct_eq(self.api_token.expose().as_bytes()))
        {
            return Some(named("staff-api"));
        }
        // A console session names its agent itself; the header cannot override it.
        let check = self.session_check.as_ref()?;
        check(request).map(|agent| Actor::agent(&agent))
    }
}

/// The staff routes; they answer 503 until a [`StaffApi`] or the server's `AppState` (with a
/// loaded engine) is registered as app data.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/v1/staff/customers/{id}", web::get().to(get_customer))
        .route("/api/v1/staff/customers/{id}/audit", web::get().to(get_customer_audit))
        .route("/api/v1/staff/actions/{name}", web::post().to(post_action));
}

/// The registry and the acting agent, or the error that refuses the request. The staff state
/// is the `StaffApi` app data when registered, else it comes from the server's `AppState`
/// (`staff.api_token` and the engine's registry, once the engine is loaded). The token is
/// checked first, so an unauthorized caller learns nothing else.
fn authorized(request: &HttpRequest) -> Result<(Arc<ActionRegistry>, Actor), ApiError> {
    let unauthorized =
        || ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "send Authorization: Bearer <staff.api_token>");
    if let Some(staff) = request.app_data::<web::Data<StaffApi>>() {
        let actor = staff.authorize(request).ok_or_else(unauthorized)?;
        if let Some(registry) = &staff.registry {
            return Ok((registry.clone(), actor));
        }
    }
    let Some(state) = request.app_data::<web::Data<super::AppState>>() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "staff_api_unavailable",
            "the staff API is not configured",
        ));
    };
    // The console registers its session check as app data (`http::console`).
    let session_check = request.app_data::<web::Data<SessionCheck>>().map(|check| check.get_ref().clone());
    let server_staff = StaffApi { registry: None, api_token: state.settings.staff.api_token.clone(), session_check };
    let actor = server_staff.authorize(request).ok_or_else(unauthorized)?;
    let engine = state.readiness.engine().ok_or_else(|| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "not_ready", "the account system is still loading")
    })?;
    Ok((engine.registry().clone(), actor))
}

fn parse_customer_id(raw: &str) -> Result<CustomerId, ApiError> {
    CustomerId::parse(raw).map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "unknown_customer", e.to_string()))
}

fn unknown_customer(customer_id: &CustomerId) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "unknown_customer", format!("no customer {customer_id}"))
}

/// The profile as staff see it: date of birth hidden, email and payment methods masked.
fn masked_customer(customer: &Customer) -> Value {
    json!({
        "customer_id": customer.customer_id,
        "full_name": customer.full_name,
        "date_of_birth": "••••-••-••",
        "email": mask_email(&customer.email),
        "phone_number": customer.phone_number,
        "address": customer.address,
        "account_status": customer.account_status,
        "created_at": customer.created_at,
        "payment_methods": customer.payment_methods.iter().map(|method| json!({
            "method_type": method.kind,
            "display": method.to_string(),
            "expiration_date": method.expiry.to_string(),
        })).collect::<Vec<_>>(),
        "line_ids": customer.line_ids,
        "bill_ids": customer.bill_ids,
        "last_extension_date": customer.last_extension_date,
        "goodwill_credit_used_this_year": customer.goodwill_credit_used_this_year,
    })
}

async fn get_customer(request: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (registry, _agent) = authorized(&request)?;
    let customer_id = parse_customer_id(&path)?;
    let store = registry.store();
    let read_failed = |e: AccountsError| ApiError::internal("reading a customer failed", &e);
    let customer = store.customer(&customer_id).map_err(read_failed)?.ok_or_else(|| unknown_customer(&customer_id))?;
    let mut lines = Vec::new();
    for line_id in &customer.line_ids {
        lines.extend(store.line(line_id).map_err(read_failed)?);
    }
    let mut bills = Vec::new();
    for bill_id in &customer.bill_ids {
        bills.extend(store.bill(bill_id).map_err(read_failed)?);
    }
    bills.sort_by_key(|bill| std::cmp::Reverse(bill.issue_date));
    Ok(HttpResponse::Ok().json(json!({"customer": masked_customer(&customer), "lines": lines, "bills": bills})))
}

async fn get_customer_audit(request: HttpRequest, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let (registry, _agent) = authorized(&request)?;
    let customer_id = parse_customer_id(&path)?;
    let store = registry.store();
    let read_failed = |e: AccountsError| ApiError::internal("reading the audit log failed", &e);
    store.customer(&customer_id).map_err(read_failed)?.ok_or_else(|| unknown_customer(&customer_id))?;
    let entries = store.audit_for_customer(&customer_id).map_err(read_failed)?;
    Ok(HttpResponse::Ok().json(json!({"customer_id": customer_id, "entries": entries})))
}

async fn post_action(
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let (registry, agent) = authorized(&request)?;
    let bad_json = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_json", message);
    let mut args = if body.iter().all(u8::is_ascii_whitespace) {
        serde_json::Map::new()
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(bad_json("the body must be a JSON object".into())),
            Err(e) => return Err(bad_json(format!("malformed JSON body: {e}"))),
        }
    };
    let bad_key = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_idempotency_key", message);
    let idempotency_key = match args.remove("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(IdempotencyKey::parse(key).map_err(|e| bad_key(e.to_string()))?),
        Some(_) => return Err(bad_key("idempotency_key must be a string".into())),
    };
    let action_request = ActionRequest::parse(&path, Value::Object(args))?;
    let mut call = ActionCall::new(action_request, agent);
    call.idempotency_key = idempotency_key;
    let outcome = registry.run(call).await?;
    let mut response = HttpResponse::Ok();
    if outcome.replayed {
        response.insert_header(("Idempotent-Replayed", "true"));
    }
    Ok(response.json(outcome.output.to_json()))
}
