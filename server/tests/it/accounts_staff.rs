//! The staff API on a real server (127.0.0.1 port 0) over the tau2 accounts.

use std::net::TcpListener;
use std::sync::Arc;

use accounts::{AccountStore, ActionRegistry, CustomerId, RegistryOptions, TAU2_TODAY};
use actix_web::{App, HttpServer, web};
use serde_json::{Value, json};
use server::config::Secret;
use server::http::staff::{self, StaffApi};

use super::accounts_domain::tau2;

const TOKEN: &str = "staff-token-for-tests";

struct StaffServer {
    base: String,
    registry: Arc<ActionRegistry>,
    client: reqwest::Client,
}

/// Starts the staff routes on their own thread; `token` is `staff.api_token`.
fn start(token: &str, with_state: bool) -> StaffServer {
    let store = AccountStore::temporary_with(&tau2()).unwrap();
    let registry = Arc::new(
        ActionRegistry::new(store, RegistryOptions { today: Some(TAU2_TODAY), ..RegistryOptions::default() }).unwrap(),
    );
    let staff_api = web::Data::new(StaffApi::new(registry.clone(), Secret::new(token)));
    let (sender, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            sender.send(listener.local_addr().unwrap().port()).unwrap();
            HttpServer::new(move || {
                let app = App::new().app_data(web::PayloadConfig::new(64 * 1024));
                let app = if with_state { app.app_data(staff_api.clone()) } else { app };
                app.configure(staff::configure)
            })
            .workers(1)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        })
    });
    StaffServer { base: format!("http://127.0.0.1:{}", port.recv().unwrap()), registry, client: reqwest::Client::new() }
}

impl StaffServer {
    async fn get(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/json")
            .header("X-Switchboard-Agent", "dana")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn no_customer_data_without_the_token() {
    let server = start(TOKEN, true);
    for token in [None, Some("wrong"), Some(""), Some("staff-token-for-test")] {
        let (status, body) = server.get("/api/v1/staff/customers/C1001", token).await;
        assert_eq!(status, 401, "{token:?}");
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(!body.to_string().contains("John"), "no data leaks");
        let (status, _) = server.get("/api/v1/staff/customers/C9999/audit", token).await;
        assert_eq!(status, 401, "no existence leak either");
        let (status, _) = server.post("/api/v1/staff/actions/enable_roaming", token, "not json").await;
        assert_eq!(status, 401);
    }
    let before = server.registry.store().snapshot().unwrap();
    let body = r#"{"customer_id": "C1001", "line_id": "L1001", "idempotency_key": "k1"}"#;
    let (status, _) = server.post("/api/v1/staff/actions/enable_roaming", None, body).await;
    assert_eq!(status, 401);
    assert_eq!(server.registry.store().snapshot().unwrap(), before);

    // An empty configured token disables the staff API rather than accepting an empty bearer.
    let disabled = start("", true);
    let (status, _) = disabled.get("/api/v1/staff/customers/C1001", Some("")).await;
    assert_eq!(status, 401);
    // Without the staff state registered the routes say so.
    let unconfigured = start(TOKEN, false);
    let (status, body) = unconfigured.get("/api/v1/staff/customers/C1001", Some(TOKEN)).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn profiles_are_masked_with_lines_and_bills() {
    let server = start(TOKEN, true);
    let (status, body) = server.get("/api/v1/staff/customers/C1001", Some(TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    let customer = &body["customer"];
    assert_eq!(customer["full_name"], "John Smith");
    assert_eq!(customer["payment_methods"][0]["display"], "Credit Card •••• 1235");
    assert_eq!(customer["email"], "j•••@example.com");
    let text = body.to_string();
    assert!(!text.contains("1985-06-15"), "date of birth hidden");
    assert!(!text.contains("john.smith@"), "email masked");
    assert_eq!(body["lines"].as_array().unwrap().len(), 3);
    assert_eq!(body["bills"][0]["bill_id"], "B1003", "newest bill first");
    let (status, body) = server.get("/api/v1/staff/customers/C9999", Some(TOKEN)).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("unknown_customer")));
    let (status, _) = server.get("/api/v1/staff/customers/C%20OR%201=1", Some(TOKEN)).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn actions_run_with_idempotency_and_typed_refusals() {
    let server = start(TOKEN, true);
    let pay = r#"{"customer_id": "C1002", "bill_id": "B1005", "idempotency_key": "req-1"}"#;
    let (status, body) = server.post("/api/v1/staff/actions/send_payment_request", Some(TOKEN), pay).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["amount_due"], 425.0);
    assert_eq!(server.registry.store().read_path("bills.B1005.status").unwrap(), Some(json!("Awaiting Payment")));
    // Replayed: same answer, no second change.
    let (status, replay) = server.post("/api/v1/staff/actions/send_payment_request", Some(TOKEN), pay).await;
    assert_eq!((status, &replay), (200, &body));
    // Same key, other arguments: 409.
    let other = r#"{"customer_id": "C1002", "bill_id": "B1004", "idempotency_key": "req-1"}"#;
    let (status, body) = server.post("/api/v1/staff/actions/send_payment_request", Some(TOKEN), other).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("idempotency_conflict")));
    // Policy refusals: 422 with the reason.
    let before = server.registry.store().snapshot().unwrap();
    for (action, body, code) in [
        (
            "refuel_data",
            r#"{"customer_id": "C1001", "line_id": "L1001", "gb_amount": 5, "idempotency_key": "r1"}"#,
            "refuel_amount_out_of_range",
        ),
        (
            "refuel_data",
            r#"{"customer_id": "C1001", "line_id": "L1001", "gb_amount": -1, "idempotency_key": "r2"}"#,
            "refuel_amount_out_of_range",
        ),
        (
            "make_payment",
            r#"{"customer_id": "C1001", "bill_id": "B1002", "idempotency_key": "r3"}"#,
            "bill_not_awaiting_payment",
        ),
        (
            "resume_line",
            r#"{"customer_id": "C1001", "line_id": "L1002", "idempotency_key": "r4"}"#,
            "line_not_suspended",
        ),
        (
            "enable_roaming",
            r#"{"customer_id": "C1001", "line_id": "L1004", "idempotency_key": "r5"}"#,
            "line_not_on_account",
        ),
    ] {
        let (status, response) = server.post(&format!("/api/v1/staff/actions/{action}"), Some(TOKEN), body).await;
        assert_eq!(status, 422, "{action}: {response}");
        assert_eq!(response["error"]["code"], code);
        assert!(!response["error"]["message"].as_str().unwrap().is_empty());
        assert_eq!(response["error"]["details"]["code"], code);
    }
    assert_eq!(server.registry.store().snapshot().unwrap(), before);
    // Not found, bad input.
    for (action, body, status_wanted, code) in [
        ("pay_everything", r#"{"idempotency_key": "x"}"#, 404, "unknown_action"),
        (
            "resume_line",
            r#"{"customer_id": "C1001", "line_id": "L9999", "idempotency_key": "x1"}"#,
            404,
            "unknown_line",
        ),
        ("resume_line", r#"{"customer_id": "C1001", "idempotency_key": "x2"}"#, 400, "invalid_arguments"),
        ("resume_line", r#"{"customer_id": "C1001", "line_id": "L1003"}"#, 400, "idempotency_key_required"),
        (
            "resume_line",
            r#"{"customer_id": "C1001", "line_id": "L1003", "idempotency_key": 7}"#,
            400,
            "bad_idempotency_key",
        ),
        ("resume_line", "[1, 2]", 400, "bad_json"),
        ("resume_line", "{\"customer_id\": ", 400, "bad_json"),
    ] {
        let (status, response) = server.post(&format!("/api/v1/staff/actions/{action}"), Some(TOKEN), body).await;
        assert_eq!(
            (status, response["error"]["code"].as_str()),
            (status_wanted, Some(code)),
            "{action} {body}: {response}"
        );
    }
    // Reads need no key.
    let (status, plans) = server.post("/api/v1/staff/actions/list_plans", Some(TOKEN), "").await;
    assert_eq!(status, 200);
    assert_eq!(plans.as_array().unwrap().len(), 5);
    // A huge body is refused before parsing.
    let huge = format!(r#"{{"summary": "{}", "idempotency_key": "h"}}"#, "x".repeat(100_000));
    let (status, _) = server.post("/api/v1/staff/actions/transfer_to_human_agents", Some(TOKEN), &huge).await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn the_audit_log_names_the_agent() {
    let server = start(TOKEN, true);
    let body = r#"{"customer_id": "C1001", "line_id": "L1001", "idempotency_key": "roam-1"}"#;
    let (status, _) = server.post("/api/v1/staff/actions/enable_roaming", Some(TOKEN), body).await;
    assert_eq!(status, 200);
    let (status, audit) = server.get("/api/v1/staff/customers/C1001/audit", Some(TOKEN)).await;
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["action"], "enable_roaming");
    assert_eq!(entries[0]["actor"], json!({"kind": "agent", "name": "dana"}));
    assert_eq!(entries[0]["result"]["status"], "done");
    assert_eq!(entries[0]["idempotency_key"], "roam-1");
    assert_eq!(server.registry.store().audit_for_customer(&CustomerId::parse("C1001").unwrap()).unwrap().len(), 1);
    let (status, _) = server.get("/api/v1/staff/customers/C9999/audit", Some(TOKEN)).await;
    assert_eq!(status, 404);
}

#[test]
fn the_server_routes_staff_requests_through_the_token_check() {
    // The shared server runs with the default settings: an empty `staff.api_token` disables
    // the staff API, so every request is refused and no customer data comes back.
    let app = super::support::shared();
    for path in ["/api/v1/staff/customers/C2001", "/api/v1/staff/customers/C2001/audit"] {
        let (status, body) = app.get(path);
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized");
        let response = super::support::client().get(app.url(path)).bearer_auth("").send().unwrap();
        assert_eq!(response.status().as_u16(), 401);
    }
    let (status, body) = app.post_json(
        "/api/v1/staff/actions/enable_roaming",
        &json!({"customer_id": "C2005", "line_id": "L2006", "idempotency_key": "k"}),
    );
    assert_eq!(status, 401, "{body}");
}
