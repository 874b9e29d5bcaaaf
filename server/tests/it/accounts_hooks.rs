//! Hooks against a real local receiver (actix-web on 127.0.0.1 port 0) that checks signatures,
//! fails on purpose, and counts deliveries.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use accounts::hooks::{self, HookEndpoint, Hooks};
use accounts::{
    AccountStore, ActionCall, ActionName, ActionOutcome, ActionRegistry, ActionRequest, Actor, AuditResult, CustomerId,
    Error, IdempotencyKey, RegistryOptions, TAU2_TODAY,
};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

use super::accounts_domain::tau2;

const SECRET: &str = "hook-test-secret";

#[derive(Debug, Clone)]
struct Delivery {
    mode: String,
    attempt: u32,
    delivery_id: String,
    idempotency_key: Option<String>,
    action: String,
    signature_ok: bool,
    body: Value,
}

#[derive(Default)]
struct Receiver {
    deliveries: Mutex<Vec<Delivery>>,
}

impl Receiver {
    fn count(&self, mode: &str) -> usize {
        self.deliveries.lock().unwrap().iter().filter(|d| d.mode == mode).count()
    }
    fn of(&self, mode: &str) -> Vec<Delivery> {
        self.deliveries.lock().unwrap().iter().filter(|d| d.mode == mode).cloned().collect()
    }
}

fn header(request: &HttpRequest, name: &str) -> Option<String> {
    request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

async fn receive(
    request: HttpRequest,
    mode: web::Path<String>,
    body: web::Bytes,
    receiver: web::Data<Receiver>,
) -> HttpResponse {
    let mode = mode.into_inner();
    let signature = header(&request, hooks::SIGNATURE_HEADER).unwrap_or_default();
    let signature_ok = hooks::verify_signature(SECRET, &signature, &body, SystemTime::now(), Duration::from_secs(300))
        && signature.contains(&format!("t={}", header(&request, hooks::TIMESTAMP_HEADER).unwrap_or_default()));
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n_before = {
        let mut deliveries = receiver.deliveries.lock().unwrap();
        let n_before = deliveries.iter().filter(|d| d.mode == mode).count();
        deliveries.push(Delivery {
            mode: mode.clone(),
            attempt: header(&request, hooks::ATTEMPT_HEADER).and_then(|a| a.parse().ok()).unwrap_or(0),
            delivery_id: header(&request, hooks::DELIVERY_HEADER).unwrap_or_default(),
            idempotency_key: header(&request, hooks::IDEMPOTENCY_HEADER),
            action: header(&request, hooks::ACTION_HEADER).unwrap_or_default(),
            signature_ok,
            body: json.clone(),
        });
        n_before
    };
    if !signature_ok {
        return HttpResponse::Unauthorized()
            .json(json!({"error": {"code": "bad_signature", "message": "signature mismatch"}}));
    }
    let args = &json["args"];
    let roaming =
        |enabled: bool| json!({"line_id": args["line_id"], "roaming_enabled": enabled, "changed": true, "charge": 0.0});
    match mode.as_str() {
        "ok" => HttpResponse::Ok().json(json!({"result": roaming(true)})),
        "bare" => HttpResponse::Ok().json(roaming(true)),
        "empty" => HttpResponse::NoContent().finish(),
        "flaky" if n_before < 2 => HttpResponse::ServiceUnavailable().body("try later"),
        "flaky" => HttpResponse::Ok().json(json!({"result": roaming(true)})),
        "down" => HttpResponse::InternalServerError().body("boom"),
        "slow" => {
            actix_web::rt::time::sleep(Duration::from_millis(600)).await;
            HttpResponse::Ok().json(json!({"result": roaming(true)}))
        }
        "decline" => HttpResponse::UnprocessableEntity()
            .json(json!({"error": {"code": "fraud_hold", "message": "the account is on hold"}})),
        "throttle" => HttpResponse::TooManyRequests().finish(),
        "garbage" => HttpResponse::Ok().body("<html>not json</html>"),
        "wrong_shape" => HttpResponse::Ok().json(json!({"result": {"hello": "world"}})),
        _ => HttpResponse::NotFound().finish(),
    }
}

/// Starts the receiver on its own thread; returns its base URL and its record of deliveries.
fn start_receiver() -> (String, Arc<Receiver>) {
    let receiver = web::Data::new(Receiver::default());
    let shared = receiver.clone().into_inner();
    let (sender, port) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            sender.send(listener.local_addr().unwrap().port()).unwrap();
            HttpServer::new(move || {
                App::new().app_data(receiver.clone()).route("/hook/{mode}", web::post().to(receive))
            })
            .workers(2)
            .listen(listener)
            .unwrap()
            .run()
            .await
            .unwrap();
        })
    });
    (format!("http://127.0.0.1:{}", port.recv().unwrap()), shared)
}

fn endpoint(base: &str, mode: &str, secret: &str) -> HookEndpoint {
    let mut endpoint = HookEndpoint::new("POST", &format!("{base}/hook/{mode}"), Duration::from_millis(300), secret, 4)
        .unwrap()
        .with_header("X-Operator-Tenant", "kestrel")
        .unwrap();
    endpoint.backoff_base = Duration::from_millis(10);
    endpoint.backoff_max = Duration::from_millis(40);
    endpoint
}

fn registry_with_hooks(endpoints: BTreeMap<ActionName, HookEndpoint>) -> ActionRegistry {
    let store = AccountStore::temporary_with(&tau2()).unwrap();
    let hooks = Hooks::new(endpoints).unwrap();
    ActionRegistry::new(store, RegistryOptions { today: Some(TAU2_TODAY), hooks, ..RegistryOptions::default() })
        .unwrap()
}

fn roaming_registry(base: &str, mode: &str) -> ActionRegistry {
    registry_with_hooks(BTreeMap::from([(ActionName::EnableRoaming, endpoint(base, mode, SECRET))]))
}

fn enable_roaming(key: &IdempotencyKey) -> ActionCall {
    let request = ActionRequest::parse("enable_roaming", json!({"customer_id": "C1001", "line_id": "L1001"})).unwrap();
    ActionCall::new(request, Actor::agent("hook-test")).with_idempotency_key(key.clone())
}

fn roaming_on(registry: &ActionRegistry) -> Value {
    registry.store().read_path("lines.L1001.roaming_enabled").unwrap().unwrap()
}

#[tokio::test]
async fn a_signed_delivery_maps_back_to_the_typed_result() {
    let (base, receiver) = start_receiver();
    for mode in ["ok", "bare", "empty"] {
        let registry = roaming_registry(&base, mode);
        let key = IdempotencyKey::random();
        let outcome: ActionOutcome = registry.run(enable_roaming(&key)).await.unwrap();
        assert!(outcome.via_hook, "{mode}");
        assert_eq!(outcome.output.to_json()["roaming_enabled"], true, "{mode}");
        assert_eq!(roaming_on(&registry), json!(true), "{mode}: the local record follows");
        let deliveries = receiver.of(mode);
        assert_eq!(deliveries.len(), 1, "{mode}");
        let delivery = &deliveries[0];
        assert!(delivery.signature_ok);
        assert_eq!(delivery.idempotency_key.as_deref(), Some(key.as_str()));
        assert_eq!(delivery.action, "enable_roaming");
        assert_eq!(delivery.body["action"], "enable_roaming");
        assert_eq!(delivery.body["args"], json!({"customer_id": "C1001", "line_id": "L1001"}));
        assert_eq!(delivery.body["actor"], json!({"kind": "agent", "name": "hook-test"}));
        // A replay with the same key returns the first result without a second delivery.
        let replay = registry.run(enable_roaming(&key)).await.unwrap();
        assert!(replay.replayed);
        assert_eq!(receiver.count(mode), 1, "{mode}");
        let log = registry.store().audit_for_customer(&CustomerId::parse("C1001").unwrap()).unwrap();
        assert_eq!(log.len(), 1);
        assert!(log[0].via_hook);
    }
}

#[tokio::test]
async fn timeouts_and_5xx_are_retried_with_the_same_delivery_id() {
    let (base, receiver) = start_receiver();
    let registry = roaming_registry(&base, "flaky");
    let outcome = registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap();
    assert!(outcome.via_hook);
    let deliveries = receiver.of("flaky");
    assert_eq!(deliveries.len(), 3, "two 503s, then success");
    assert_eq!(deliveries.iter().map(|d| d.attempt).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(deliveries.iter().all(|d| d.delivery_id == deliveries[0].delivery_id && d.signature_ok));

    for mode in ["down", "slow"] {
        let mut failing = endpoint(&base, mode, SECRET);
        failing.breaker_threshold = 100; // this test is about retries, not the breaker
        let registry = registry_with_hooks(BTreeMap::from([(ActionName::EnableRoaming, failing)]));
        let before = registry.store().snapshot().unwrap();
        let key = IdempotencyKey::random();
        let error = registry.run(enable_roaming(&key)).await.unwrap_err();
        assert!(matches!(error, Error::HookFailed { n_attempts: 4, .. }), "{mode}: {error}");
        assert_eq!(receiver.count(mode), 4, "{mode}: every attempt delivered");
        assert_eq!(registry.store().snapshot().unwrap(), before, "{mode}: nothing applied");
        assert!(registry.store().audit_all().unwrap().is_empty(), "{mode}: a transient failure is not a result");
        // Not recorded: a later retry with the same key delivers again.
        let _ = registry.run(enable_roaming(&key)).await;
        assert_eq!(receiver.count(mode), 8, "{mode}");
    }
}

#[tokio::test]
async fn a_4xx_is_never_retried_and_is_a_typed_refusal() {
    let (base, receiver) = start_receiver();
    let registry = roaming_registry(&base, "decline");
    let before = registry.store().snapshot().unwrap();
    let key = IdempotencyKey::random();
    let error = registry.run(enable_roaming(&key)).await.unwrap_err();
    let Error::Refused(refusal) = &error else { panic!("{error}") };
    assert_eq!(refusal.code(), "operator_declined");
    assert_eq!(refusal.details()["operator_code"], "fraud_hold");
    assert!(refusal.customer_message().contains("on hold"));
    assert_eq!(receiver.count("decline"), 1, "no retry on 4xx");
    assert_eq!(registry.store().snapshot().unwrap(), before);
    let log = registry.store().audit_all().unwrap();
    assert!(matches!(&log[0].result, AuditResult::Refused { code, .. } if code == "operator_declined"));
    // The refusal is the recorded result for the key.
    assert!(matches!(registry.run(enable_roaming(&key)).await, Err(Error::Refused(_))));
    assert_eq!(receiver.count("decline"), 1);

    let registry = roaming_registry(&base, "throttle");
    let error = registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap_err();
    assert!(matches!(error, Error::HookFailed { n_attempts: 1, .. }), "{error}");
    assert_eq!(receiver.count("throttle"), 1, "429 is not retried either");
}

#[tokio::test]
async fn a_wrong_secret_is_caught_by_the_receiver() {
    let (base, receiver) = start_receiver();
    let registry =
        registry_with_hooks(BTreeMap::from([(ActionName::EnableRoaming, endpoint(&base, "ok", "not-the-secret"))]));
    let error = registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap_err();
    assert!(matches!(&error, Error::Refused(r) if r.details()["operator_code"] == "bad_signature"), "{error}");
    assert!(!receiver.of("ok")[0].signature_ok);
    assert_eq!(roaming_on(&registry), json!(false));
}

#[tokio::test]
async fn unreadable_answers_change_nothing() {
    let (base, _receiver) = start_receiver();
    for mode in ["garbage", "wrong_shape"] {
        let registry = roaming_registry(&base, mode);
        let before = registry.store().snapshot().unwrap();
        let error = registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap_err();
        assert!(matches!(error, Error::HookFailed { .. } | Error::HookBadResponse { .. }), "{mode}: {error}");
        assert_eq!(registry.store().snapshot().unwrap(), before, "{mode}");
    }
}

#[tokio::test]
async fn the_local_policy_refuses_before_anything_is_delivered() {
    let (base, receiver) = start_receiver();
    let registry = registry_with_hooks(BTreeMap::from([(ActionName::RefuelData, endpoint(&base, "ok", SECRET))]));
    let request =
        ActionRequest::parse("refuel_data", json!({"customer_id": "C1001", "line_id": "L1001", "gb_amount": 5.0}))
            .unwrap();
    let call = ActionCall::new(request, Actor::agent("hook-test")).with_idempotency_key(IdempotencyKey::random());
    let error = registry.run(call).await.unwrap_err();
    assert!(matches!(&error, Error::Refused(r) if r.code() == "refuel_amount_out_of_range"), "{error}");
    assert_eq!(receiver.count("ok"), 0);
}

#[tokio::test]
async fn the_circuit_opens_after_repeated_failures_and_closes_after_a_good_trial() {
    let (base, receiver) = start_receiver();
    let mut down = endpoint(&base, "down", SECRET);
    down.max_attempts = 1;
    down.breaker_threshold = 3;
    down.breaker_cooldown = Duration::from_millis(400);
    let registry = registry_with_hooks(BTreeMap::from([(ActionName::EnableRoaming, down)]));
    for _ in 0..3 {
        let error = registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap_err();
        assert!(matches!(error, Error::HookFailed { .. }), "{error}");
    }
    assert_eq!(receiver.count("down"), 3);
    assert!(registry.hooks().is_circuit_open(ActionName::EnableRoaming));
    for _ in 0..5 {
        let error = registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap_err();
        assert!(matches!(error, Error::HookCircuitOpen { .. }), "{error}");
    }
    assert_eq!(receiver.count("down"), 3, "an open circuit sends nothing");
    tokio::time::sleep(Duration::from_millis(450)).await;
    let _ = registry.run(enable_roaming(&IdempotencyKey::random())).await;
    assert_eq!(receiver.count("down"), 4, "one trial after the cool-down");
    assert!(registry.hooks().is_circuit_open(ActionName::EnableRoaming), "a failed trial reopens it");

    // A healthy endpoint: the trial succeeds and the circuit closes.
    let mut flaky = endpoint(&base, "ok", SECRET);
    flaky.max_attempts = 1;
    flaky.breaker_threshold = 1;
    flaky.breaker_cooldown = Duration::from_millis(100);
    let registry = registry_with_hooks(BTreeMap::from([(ActionName::EnableRoaming, flaky)]));
    registry.run(enable_roaming(&IdempotencyKey::random())).await.unwrap();
    assert!(!registry.hooks().is_circuit_open(ActionName::EnableRoaming));
}

#[tokio::test]
async fn hooked_reads_return_the_operators_answer() {
    let (base, receiver) = start_receiver();
    let registry = registry_with_hooks(BTreeMap::from([(ActionName::GetDataUsage, endpoint(&base, "empty", SECRET))]));
    let request = ActionRequest::parse("get_data_usage", json!({"customer_id": "C1001", "line_id": "L1001"})).unwrap();
    let outcome = registry.run(ActionCall::new(request, Actor::System)).await.unwrap();
    assert!(outcome.via_hook);
    assert_eq!(outcome.output.to_json()["data_used_gb"], 3.2, "an empty answer keeps the local result");
    assert_eq!(receiver.of("empty")[0].body["actor"], json!({"kind": "system"}));
}

#[test]
fn hooks_also_run_from_blocking_callers() {
    let (base, receiver) = start_receiver();
    let registry = roaming_registry(&base, "ok");
    let outcome = registry.run_blocking(enable_roaming(&IdempotencyKey::random())).unwrap();
    assert!(outcome.via_hook);
    let outcome = registry.run_blocking(enable_roaming(&IdempotencyKey::random())).unwrap();
    assert!(outcome.via_hook);
    assert_eq!(receiver.count("ok"), 2);
}

#[test]
fn hooks_come_from_the_configuration() {
    let mut settings = BTreeMap::new();
    settings.insert(
        "make_payment".to_string(),
        server::config::HookSettings {
            url: "https://billing.example.com/switchboard/payments".into(),
            secret: server::config::Secret::new("k"),
            headers: BTreeMap::from([("X-Tenant".to_string(), "kestrel".to_string())]),
            ..server::config::HookSettings::default()
        },
    );
    let hooks = Hooks::from_settings(&settings).unwrap();
    assert!(hooks.is_hooked(ActionName::MakePayment));
    assert!(!hooks.is_hooked(ActionName::RefuelData));
    settings.insert("pay_everything".into(), server::config::HookSettings::default());
    let error = Hooks::from_settings(&settings).unwrap_err();
    assert!(error.to_string().contains("pay_everything"), "{error}");
    let mut no_secret = BTreeMap::new();
    no_secret.insert(
        "refuel_data".to_string(),
        server::config::HookSettings { url: "https://x.example/".into(), ..server::config::HookSettings::default() },
    );
    assert!(Hooks::from_settings(&no_secret).unwrap_err().to_string().contains("secret"));
}
