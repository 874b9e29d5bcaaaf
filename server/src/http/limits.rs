//! Rate limits of the public routes: requests per client address (the API, the widget's routes,
//! the stream), messages per conversation, and conversations created per client address. Each
//! is a keyed GCRA limiter (`governor`) in memory; a refusal is 429 with `Retry-After`.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::StatusCode;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use super::ApiError;

/// `[limits]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitSettings {
    /// Requests per minute from one client address to the public API, the widget's routes and
    /// the stream; 0: no limit.
    pub requests_per_ip_per_minute: u32,
    /// Messages per minute to one conversation; 0: no limit.
    pub messages_per_conversation_per_minute: u32,
    /// Conversations one client address may start per hour; 0: no limit.
    pub conversations_per_ip_per_hour: u32,
    /// A header the operator's own proxy sets to the client's address (its last value is
    /// used); empty: the connection's address. Never name a header clients can set freely
    /// without a proxy in front.
    #[serde(deserialize_with = "crate::config::scalar_as_string")]
    pub client_ip_header: String,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            requests_per_ip_per_minute: 600,
            messages_per_conversation_per_minute: 30,
            conversations_per_ip_per_hour: 120,
            client_ip_header: String::new(),
        }
    }
}

/// The limiters, shared by every worker.
pub struct Limits {
    header: String,
    requests: Option<DefaultKeyedRateLimiter<IpAddr>>,
    messages: Option<DefaultKeyedRateLimiter<String>>,
    conversations: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

fn limiter<K: std::hash::Hash + Eq + Clone>(per: u32, period: Duration) -> Option<DefaultKeyedRateLimiter<K>> {
    let n = NonZeroU32::new(per)?;
    // `per` events each `period`, all of them usable at once (a burst of the whole allowance).
    let quota = Quota::with_period(period / per).expect("a positive period").allow_burst(n);
    Some(RateLimiter::keyed(quota))
}

impl Limits {
    pub fn new(settings: &LimitSettings) -> Self {
        Self {
            header: settings.client_ip_header.trim().to_string(),
            requests: limiter(settings.requests_per_ip_per_minute, Duration::from_secs(60)),
            messages: limiter(settings.messages_per_conversation_per_minute, Duration::from_secs(60)),
            conversations: limiter(settings.conversations_per_ip_per_hour, Duration::from_secs(3600)),
        }
    }

    /// The client's address: the configured proxy header's last value, else the peer's.
    pub fn client_ip(&self, request: &HttpRequest) -> Option<IpAddr> {
        if !self.header.is_empty()
            && let Some(value) = request.headers().get(self.header.as_str()).and_then(|v| v.to_str().ok())
            && let Some(ip) = value.rsplit(',').next().and_then(|last| last.trim().parse().ok())
        {
            return Some(ip);
        }
        request.peer_addr().map(|addr| addr.ip())
    }

    /// One request from the client to a public route.
    pub fn request(&self, request: &HttpRequest) -> Result<(), ApiError> {
        match (&self.requests, self.client_ip(request)) {
            (Some(limiter), Some(ip)) => check(limiter, &ip, "too many requests from this address"),
            _ => Ok(()),
        }
    }

    /// One new conversation from the client.
    pub fn new_conversation(&self, request: &HttpRequest) -> Result<(), ApiError> {
        match (&self.conversations, self.client_ip(request)) {
            (Some(limiter), Some(ip)) => check(limiter, &ip, "too many new conversations from this address"),
            _ => Ok(()),
        }
    }

    /// One message to a conversation.
    pub fn message(&self, conversation_id: &str) -> Result<(), ApiError> {
        match &self.messages {
            Some(limiter) => check(limiter, &conversation_id.to_string(), "too many messages to this conversation"),
            None => Ok(()),
        }
    }
}

fn check<K: std::hash::Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    message: &str,
) -> Result<(), ApiError> {
    match limiter.check_key(key) {
        Ok(()) => Ok(()),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            tracing::info!(wait_s = seconds, "{message}");
            Err(ApiError {
                retry_after: Some(seconds.max(1)),
                ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", format!("{message}; retry later"))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_allows_its_burst_then_refuses_with_a_wait() {
        let hourly: DefaultKeyedRateLimiter<IpAddr> = limiter(5, Duration::from_secs(3600)).unwrap();
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..5 {
            check(&hourly, &ip, "x").unwrap();
        }
        let refused = check(&hourly, &ip, "x").unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.retry_after.is_some_and(|s| (1..=720).contains(&s)), "{:?}", refused.retry_after);
        check(&hourly, &"192.0.2.8".parse().unwrap(), "x").unwrap();
        assert!(limiter::<IpAddr>(0, Duration::from_secs(60)).is_none(), "0 turns a limit off");
    }
}
