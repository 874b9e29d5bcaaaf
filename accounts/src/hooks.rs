//! Automation hooks: an action mapped to an HTTP endpoint of the operator.
//!
//! Each delivery is one JSON body (`{"action", "args", "actor", "idempotency_key"}`), sent
//! with `X-Switchboard-Timestamp`, `X-Switchboard-Signature: t=<unix seconds>,v1=<hex
//! HMAC-SHA256(secret, "<t>.<body>")>`, `Idempotency-Key`, `X-Switchboard-Action` and
//! `X-Switchboard-Delivery` (the same id on every retry). Timeouts, connection errors and 5xx
//! answers are retried with exponential backoff and jitter; a 4xx answer never is (408 and
//! 429 fail the action, any other 4xx is the operator declining it). A circuit breaker per
//! endpoint stops deliveries for a cool-down after consecutive failures. See `HOOKS.md`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde::Serialize;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::actions::ActionName;
use super::ids::IdempotencyKey;
use super::safety::Actor;
use super::{Error, Result};

pub const SIGNATURE_HEADER: &str = "X-Switchboard-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Switchboard-Timestamp";
pub const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";
pub const ACTION_HEADER: &str = "X-Switchboard-Action";
pub const DELIVERY_HEADER: &str = "X-Switchboard-Delivery";
pub const ATTEMPT_HEADER: &str = "X-Switchboard-Attempt";

/// Largest response body read from an operator's endpoint.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// One operator endpoint and how to call it.
#[derive(Debug, Clone)]
pub struct HookEndpoint {
    pub method: reqwest::Method,
    pub url: reqwest::Url,
    /// Per attempt.
    pub timeout: Duration,
    pub headers: HeaderMap,
    pub secret: String,
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// Backoff before retry n is between half and all of `backoff_base * 2^(n-1)`, capped at `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Consecutive failed attempts that open the circuit.
    pub breaker_threshold: u32,
    /// How long an open circuit refuses deliveries before letting one trial through.
    pub breaker_cooldown: Duration,
}

impl HookEndpoint {
    /// An endpoint with the default retry and breaker settings (200 ms base backoff, 5 s cap,
    /// circuit opens after 5 consecutive failures for 30 s).
    pub fn new(method: &str, url: &str, timeout: Duration, secret: &str, max_attempts: u32) -> Result<Self> {
        let invalid = |why: String| Error::InvalidHook { action: String::new(), why };
        let method: reqwest::Method =
            method.trim().to_uppercase().parse().map_err(|_| invalid(format!("method {method:?} is not valid")))?;
        if !matches!(method, reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH) {
            return Err(invalid(format!("method {method} cannot carry a body; use POST, PUT or PATCH")));
        }
        let url: reqwest::Url = url.trim().parse().map_err(|error| invalid(format!("url {url:?}: {error}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!("url {url} is not http or https")));
        }
        if secret.is_empty() {
            return Err(invalid("secret is empty; every delivery is signed".into()));
        }
        if timeout.is_zero() {
            return Err(invalid("timeout_ms is 0".into()));
        }
        Ok(Self {
            method,
            url,
            timeout,
            headers: HeaderMap::new(),
            secret: secret.to_string(),
            max_attempts: max_attempts.clamp(1, 20),
            backoff_base: Duration::from_millis(200),
            backoff_max: Duration::from_secs(5),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
        })
    }

    /// Adds a header sent with every delivery.
    pub fn with_header(mut self, name: &str, value: &str) -> Result<Self> {
        let invalid = |why: String| Error::InvalidHook { action: String::new(), why };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid(format!("header name {name:?}")))?;
        let value = HeaderValue::from_str(value).map_err(|_| invalid(format!("header value for {name}")))?;
        self.headers.insert(name, value);
        Ok(self)
    }

    /// The endpoint of one `[hooks.<action>]` table of the configuration.
    pub fn from_settings(settings: &crate::config::HookSettings) -> Result<Self> {
        let mut endpoint = Self::new(
            &settings.method,
            &settings.url,
            Duration::from_millis(settings.timeout_ms),
            settings.secret.expose(),
            settings.max_attempts,
        )?;
        for (name, value) in &settings.headers {
            endpoint = endpoint.with_header(name, value)?;
        }
        Ok(endpoint)
    }

    fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(16);
        let full = self.backoff_base.saturating_mul(1 << exponent).min(self.backoff_max);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        half + Duration::from_millis(if jitter_ms == 0 { 0 } else { rand::random_range(0..=jitter_ms) })
    }
}

/// HMAC-SHA256 of `"<timestamp>.<body>"`, hex.
pub fn signature(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac accepts any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

/// Checks a `X-Switchboard-Signature` header value (`t=...,v1=...`) against the body, allowing
/// `tolerance` between its timestamp and `now`: what an operator's receiver does.
pub fn verify_signature(secret: &str, header: &str, body: &[u8], now: SystemTime, tolerance: Duration) -> bool {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<u64>().ok(),
            Some(("v1", value)) => signatures.push(value.to_string()),
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else { return false };
    let now_secs = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if now_secs.abs_diff(timestamp) > tolerance.as_secs() {
        return false;
    }
    let expected = signature(secret, timestamp, body);
    signatures.iter().any(|candidate| bool::from(candidate.as_bytes().ct_eq(expected.as_bytes())))
}

/// The JSON body of a delivery.
#[derive(Debug, Clone, Serialize)]
pub struct HookBody<'a> {
    pub action: ActionName,
    pub args: serde_json::Value,
    pub actor: &'a Actor,
    pub idempotency_key: Option<&'a IdempotencyKey>,
}

/// What the operator answered.
#[derive(Debug, Clone, PartialEq)]
pub enum HookReply {
    /// 2xx: the result JSON (the body, or its `result` field), or `None` for an empty body.
    Done(Option<serde_json::Value>),
    /// 4xx (but 408 and 429): the operator declined; `code` and `message` come from an
    /// `{"error": {"code", "message"}}` body when there is one.
    Declined { status: u16, code: String, message: String },
}

#[derive(Debug, Default)]
struct Breaker {
    consecutive_failures: u32,
    open_until: Option<Instant>,
    trial_in_flight: bool,
}

impl Breaker {
    fn allow(&mut self, now: Instant) -> bool {
        match self.open_until {
            None => true,
            Some(until) if now < until => false,
            Some(_) if self.trial_in_flight => false,
            Some(_) => {
                self.trial_in_flight = true;
                true
            }
        }
    }

    fn success(&mut self) {
        *self = Breaker::default();
    }

    fn failure(&mut self, endpoint: &HookEndpoint, now: Instant) {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        if self.trial_in_flight || self.consecutive_failures >= endpoint.breaker_threshold {
            self.open_until = Some(now + endpoint.breaker_cooldown);
            self.trial_in_flight = false;
        }
    }

    fn is_open(&self, now: Instant) -> bool {
        self.open_until.is_some_and(|until| now < until)
    }
}

/// One operator endpoint with its circuit breaker: what an account hook and the SMS gateway
/// deliver through, with the same signed contract (`HOOKS.md`).
pub struct SignedEndpoint {
    client: reqwest::Client,
    endpoint: HookEndpoint,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for SignedEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedEndpoint").field("url", &self.endpoint.url.as_str()).finish()
    }
}

/// The HTTP client every signed delivery uses: no redirects, no idle connections (a blocking
/// caller may run each delivery on its own runtime).
fn delivery_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|error| Error::InvalidHook { action: String::new(), why: error.to_string() })
}

enum Attempt {
    Reply(HookReply),
    /// Retry (timeout, connection error, 5xx).
    Retryable(String),
    /// Give up without retrying (408, 429, 3xx, an unreadable 2xx body).
    Fatal(String),
}

impl SignedEndpoint {
    pub fn new(endpoint: HookEndpoint) -> Result<Self> {
        Ok(Self::with_client(delivery_client()?, endpoint))
    }

    fn with_client(client: reqwest::Client, endpoint: HookEndpoint) -> Self {
        Self { client, endpoint, breaker: Mutex::new(Breaker::default()) }
    }

    /// True while the circuit is open (deliveries fail fast).
    pub fn is_circuit_open(&self) -> bool {
        self.breaker.lock().is_ok_and(|b| b.is_open(Instant::now()))
    }

    /// Delivers `body` as JSON, signed, retrying as configured. `label` names the delivery
    /// (`X-Switchboard-Action` and errors); `idempotency_key` is sent on every attempt.
    pub async fn deliver(
        &self,
        label: &str,
        body: &impl Serialize,
        idempotency_key: Option<&str>,
    ) -> Result<HookReply> {
        let endpoint = &self.endpoint;
        let bytes = serde_json::to_vec(body).map_err(|error| Error::Corrupt(error.to_string()))?;
        let delivery_id = uuid::Uuid::new_v4().to_string();
        let mut last_error = String::new();
        for attempt in 1..=endpoint.max_attempts {
            let allowed = self.breaker.lock().map(|mut breaker| breaker.allow(Instant::now())).unwrap_or(false);
            if !allowed {
                if attempt == 1 {
                    return Err(Error::HookCircuitOpen { action: label.to_string() });
                }
                break;
            }
            let outcome = self.attempt(label, &bytes, idempotency_key, &delivery_id, attempt).await;
            let failed = matches!(outcome, Attempt::Retryable(_));
            if let Ok(mut breaker) = self.breaker.lock() {
                if failed { breaker.failure(endpoint, Instant::now()) } else { breaker.success() }
            }
            match outcome {
                Attempt::Reply(reply) => return Ok(reply),
                Attempt::Fatal(why) => {
                    return Err(Error::HookFailed { action: label.to_string(), n_attempts: attempt, why });
                }
                Attempt::Retryable(why) => {
                    tracing::warn!(action = %label, attempt, why = %why, "hook delivery failed");
                    last_error = why;
                }
            }
            if attempt < endpoint.max_attempts {
                tokio::time::sleep(endpoint.backoff(attempt)).await;
            }
        }
        Err(Error::HookFailed { action: label.to_string(), n_attempts: endpoint.max_attempts, why: last_error })
    }

    async fn attempt(
        &self,
        label: &str,
        bytes: &[u8],
        idempotency_key: Option<&str>,
        delivery_id: &str,
        attempt: u32,
    ) -> Attempt {
        let endpoint = &self.endpoint;
        let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let mut request = self
            .client
            .request(endpoint.method.clone(), endpoint.url.clone())
            .timeout(endpoint.timeout)
            .headers(endpoint.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .header(TIMESTAMP_HEADER, timestamp.to_string())
            .header(SIGNATURE_HEADER, format!("t={timestamp},v1={}", signature(&endpoint.secret, timestamp, bytes)))
            .header(ACTION_HEADER, label)
            .header(DELIVERY_HEADER, delivery_id)
            .header(ATTEMPT_HEADER, attempt.to_string())
            .body(bytes.to_vec());
        if let Some(key) = idempotency_key {
            request = request.header(IDEMPOTENCY_HEADER, key);
        }
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(error) if error.is_timeout() => return Attempt::Retryable("timed out".into()),
            Err(error) => return Attempt::Retryable(format!("request failed: {error}")),
        };
        let status = response.status();
        let mut text = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if text.len() + chunk.len() > MAX_RESPONSE_BYTES {
                        return Attempt::Fatal(format!("response is larger than {MAX_RESPONSE_BYTES} bytes"));
                    }
                    text.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(error) if error.is_timeout() => return Attempt::Retryable("timed out reading the response".into()),
                Err(error) => return Attempt::Retryable(format!("reading the response failed: {error}")),
            }
        }
        if status.is_server_error() {
            return Attempt::Retryable(format!("status {status}"));
        }
        if status.is_success() {
            if text.iter().all(u8::is_ascii_whitespace) {
                return Attempt::Reply(HookReply::Done(None));
            }
            return match serde_json::from_slice::<serde_json::Value>(&text) {
                Ok(serde_json::Value::Object(mut map)) if map.contains_key("result") => {
                    Attempt::Reply(HookReply::Done(map.remove("result")))
                }
                Ok(value) => Attempt::Reply(HookReply::Done(Some(value))),
                Err(error) => Attempt::Fatal(format!("status {status} with a body that is not JSON: {error}")),
            };
        }
        if status == reqwest::StatusCode::REQUEST_TIMEOUT || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Attempt::Fatal(format!("status {status} (not retried: 4xx)"));
        }
        if status.is_client_error() {
            let error = serde_json::from_slice::<serde_json::Value>(&text).ok();
            let field = |name: &str| {
                error
                    .as_ref()
                    .and_then(|e| e["error"][name].as_str())
                    .map(|text| text.chars().take(300).collect::<String>())
            };
            return Attempt::Reply(HookReply::Declined {
                status: status.as_u16(),
                code: field("code").unwrap_or_else(|| "declined".into()),
                message: field("message").unwrap_or_else(|| format!("the request was declined (status {status})")),
            });
        }
        Attempt::Fatal(format!("unexpected status {status}"))
    }
}

/// Runs `future` to completion for a synchronous caller (the dialogue on a blocking thread,
/// the command line): on the current tokio runtime's handle, or on a small runtime of its own
/// when there is none. Must not be called from inside an async task.
pub fn block_on<T>(future: impl std::future::Future<Output = T>) -> Result<T> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => Ok(handle.block_on(future)),
        Err(_) => Ok(tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| Error::HookFailed {
                action: "runtime".into(),
                n_attempts: 0,
                why: format!("cannot start a runtime: {error}"),
            })?
            .block_on(future)),
    }
}

/// The configured hooks, by action.
#[derive(Clone, Default)]
pub struct Hooks {
    by_action: BTreeMap<ActionName, Arc<SignedEndpoint>>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks").field("actions", &self.by_action.keys().collect::<Vec<_>>()).finish()
    }
}

impl Hooks {
    /// No hooks: every action runs on the local store.
    pub fn none() -> Self {
        Self::default()
    }

    pub fn new(endpoints: BTreeMap<ActionName, HookEndpoint>) -> Result<Self> {
        let client = delivery_client()?;
        let by_action = endpoints
            .into_iter()
            .map(|(action, endpoint)| (action, Arc::new(SignedEndpoint::with_client(client.clone(), endpoint))))
            .collect();
        Ok(Self { by_action })
    }

    /// The hooks of the configuration's `[hooks.<action name>]` tables.
    pub fn from_settings(settings: &BTreeMap<String, crate::config::HookSettings>) -> Result<Self> {
        let mut endpoints = BTreeMap::new();
        for (name, hook) in settings {
            let action: ActionName = name.parse().map_err(|_| Error::InvalidHook {
                action: name.clone(),
                why: "there is no action with this name".into(),
            })?;
            let endpoint = HookEndpoint::from_settings(hook).map_err(|error| match error {
                Error::InvalidHook { why, .. } => Error::InvalidHook { action: name.clone(), why },
                other => other,
            })?;
            endpoints.insert(action, endpoint);
        }
        Self::new(endpoints)
    }

    pub fn is_hooked(&self, action: ActionName) -> bool {
        self.by_action.contains_key(&action)
    }

    /// True while the action's circuit is open (deliveries fail fast).
    pub fn is_circuit_open(&self, action: ActionName) -> bool {
        self.by_action.get(&action).is_some_and(|hook| hook.is_circuit_open())
    }

    /// Delivers `body` to the action's endpoint, retrying as configured.
    pub async fn deliver(&self, body: &HookBody<'_>) -> Result<HookReply> {
        let action = body.action;
        let Some(hook) = self.by_action.get(&action) else {
            return Err(Error::InvalidHook { action: action.to_string(), why: "no hook is configured".into() });
        };
        hook.deliver(action.as_str(), body, body.idempotency_key.map(IdempotencyKey::as_str)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_within_tolerance() {
        let body = br#"{"action":"make_payment"}"#;
        let now = SystemTime::now();
        let t = now.duration_since(UNIX_EPOCH).unwrap().as_secs();
        let header = format!("t={t},v1={}", signature("s3cret", t, body));
        assert!(verify_signature("s3cret", &header, body, now, Duration::from_secs(300)));
        assert!(!verify_signature("other", &header, body, now, Duration::from_secs(300)));
        assert!(!verify_signature("s3cret", &header, b"{}", now, Duration::from_secs(300)));
        let later = now + Duration::from_secs(3600);
        assert!(!verify_signature("s3cret", &header, body, later, Duration::from_secs(300)));
        for bad in ["", "t=,v1=", "v1=abc", "t=1", "garbage"] {
            assert!(!verify_signature("s3cret", bad, body, now, Duration::from_secs(300)), "{bad:?}");
        }
    }

    #[test]
    fn endpoints_are_checked() {
        let ok = HookEndpoint::new("post", "http://127.0.0.1:9/hook", Duration::from_secs(1), "k", 3).unwrap();
        assert_eq!(ok.method, reqwest::Method::POST);
        assert!(HookEndpoint::new("GET", "http://x/", Duration::from_secs(1), "k", 3).is_err());
        assert!(HookEndpoint::new("POST", "ftp://x/", Duration::from_secs(1), "k", 3).is_err());
        assert!(HookEndpoint::new("POST", "not a url", Duration::from_secs(1), "k", 3).is_err());
        assert!(HookEndpoint::new("POST", "http://x/", Duration::from_secs(1), "", 3).is_err());
        assert!(ok.clone().with_header("X-Ok", "1").is_ok());
        assert!(ok.with_header("bad header", "1").is_err());
    }

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let endpoint = HookEndpoint::new("POST", "http://x/", Duration::from_secs(1), "k", 5).unwrap();
        for retry in 1..=10 {
            let full = Duration::from_millis(200 * (1 << (retry - 1))).min(Duration::from_secs(5));
            let wait = endpoint.backoff(retry);
            assert!(wait >= full / 2 && wait <= full, "retry {retry}: {wait:?} vs {full:?}");
        }
    }

    #[test]
    fn breaker_opens_after_threshold_and_lets_one_trial_through() {
        let mut endpoint = HookEndpoint::new("POST", "http://x/", Duration::from_secs(1), "k", 1).unwrap();
        endpoint.breaker_threshold = 2;
        endpoint.breaker_cooldown = Duration::from_secs(10);
        let mut breaker = Breaker::default();
        let t0 = Instant::now();
        assert!(breaker.allow(t0));
        breaker.failure(&endpoint, t0);
        assert!(breaker.allow(t0));
        breaker.failure(&endpoint, t0);
        assert!(!breaker.allow(t0 + Duration::from_secs(1)), "open");
        let after = t0 + Duration::from_secs(11);
        assert!(breaker.allow(after), "half-open trial");
        assert!(!breaker.allow(after), "one trial at a time");
        breaker.failure(&endpoint, after);
        assert!(!breaker.allow(after + Duration::from_secs(1)), "reopened");
        let later = after + Duration::from_secs(11);
        assert!(breaker.allow(later));
        breaker.success();
        assert!(breaker.allow(later) && breaker.allow(later), "closed again");
    }
}
