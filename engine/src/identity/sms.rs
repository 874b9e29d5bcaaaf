//! Text messages to customers' phones: the operator's SMS gateway behind a signed hook (the
//! account hooks' contract: `{"action": "send_sms", "args": {"to", "text"}, "actor",
//! "idempotency_key"}`, `HOOKS.md`), or, without one (the demo), the outbox file
//! `<data_dir>/outbox/sms.jsonl`, one `{"to", "text", "at"}` per line.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use accounts::hooks::{HookReply, SignedEndpoint};

/// `[sms]`: the operator's SMS gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsSettings {
    /// The gateway's URL; empty: texts go to the outbox file (the demo).
    #[serde(deserialize_with = "accounts::config::scalar_as_string")]
    pub url: String,
    /// Key of the HMAC-SHA256 signature of each delivery.
    pub secret: accounts::Secret,
    /// Per attempt; 0: the hooks' default (5 s).
    pub timeout_ms: u64,
}

/// A text that could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("the text message could not be sent: {0}")]
pub struct SmsError(pub String);

/// Where texts go.
pub trait SmsGateway: Send + Sync {
    /// Sends `text` to `to` (a number on file, E.164); `key` makes a retry send it once.
    fn send(&self, to: &str, text: &str, key: &str) -> Result<(), SmsError>;
}

/// One text in the outbox file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxSms {
    pub to: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

/// The demo's gateway: every text appended to a JSON-lines file.
pub struct Outbox {
    path: PathBuf,
    lock: Mutex<()>,
}

impl Outbox {
    /// The outbox under the data dir.
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self { path: data_dir.join("outbox").join("sms.jsonl"), lock: Mutex::new(()) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every text sent so far, oldest first (lines that do not parse are skipped).
    pub fn read(&self) -> Vec<OutboxSms> {
        read_outbox(&self.path)
    }
}

/// The texts of an outbox file, oldest first; none when it does not exist.
pub fn read_outbox(path: &Path) -> Vec<OutboxSms> {
    let Ok(text) = std::fs::read_to_string(path) else { return Vec::new() };
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

impl SmsGateway for Outbox {
    fn send(&self, to: &str, text: &str, _key: &str) -> Result<(), SmsError> {
        let _guard = self.lock.lock().map_err(|_| SmsError("the outbox lock is poisoned".into()))?;
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| SmsError(format!("creating the outbox: {error}")))?;
        }
        let mut line = serde_json::to_string(&OutboxSms { to: to.to_string(), text: text.to_string(), at: Utc::now() })
            .map_err(|error| SmsError(error.to_string()))?;
        line.push('\n');
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|error| SmsError(format!("opening the outbox: {error}")))?;
        file.write_all(line.as_bytes()).map_err(|error| SmsError(format!("writing the outbox: {error}")))?;
        file.sync_data().map_err(|error| SmsError(format!("writing the outbox: {error}")))
    }
}

/// The operator's gateway behind a signed hook.
pub struct SmsHook {
    endpoint: SignedEndpoint,
}

impl SmsHook {
    pub fn new(settings: &SmsSettings) -> accounts::Result<Self> {
        let timeout =
            std::time::Duration::from_millis(if settings.timeout_ms == 0 { 5_000 } else { settings.timeout_ms });
        let named = |error: accounts::Error| match error {
            accounts::Error::InvalidHook { why, .. } => accounts::Error::InvalidHook { action: "send_sms".into(), why },
            other => other,
        };
        let endpoint =
            accounts::HookEndpoint::new("POST", &settings.url, timeout, settings.secret.expose(), 3).map_err(named)?;
        Ok(Self { endpoint: SignedEndpoint::new(endpoint).map_err(named)? })
    }
}

#[derive(Serialize)]
struct SmsBody<'a> {
    action: &'static str,
    args: SmsArgs<'a>,
    actor: accounts::Actor,
    idempotency_key: &'a str,
}

#[derive(Serialize)]
struct SmsArgs<'a> {
    to: &'a str,
    text: &'a str,
}

impl SmsGateway for SmsHook {
    fn send(&self, to: &str, text: &str, key: &str) -> Result<(), SmsError> {
        let body = SmsBody {
            action: "send_sms",
            args: SmsArgs { to, text },
            actor: accounts::Actor::System,
            idempotency_key: key,
        };
        let reply = accounts::hooks::block_on(self.endpoint.deliver("send_sms", &body, Some(key)))
            .map_err(|error| SmsError(error.to_string()))?;
        match reply {
            Ok(HookReply::Done(_)) => Ok(()),
            Ok(HookReply::Declined { status, code, .. }) => {
                Err(SmsError(format!("the gateway declined it (status {status}, {code})")))
            }
            Err(error) => Err(SmsError(error.to_string())),
        }
    }
}

/// The gateway `[sms]` configures: the signed hook, or the outbox under the data dir.
pub fn gateway(settings: &SmsSettings, data_dir: &Path) -> accounts::Result<std::sync::Arc<dyn SmsGateway>> {
    Ok(if settings.url.trim().is_empty() {
        std::sync::Arc::new(Outbox::in_data_dir(data_dir))
    } else {
        std::sync::Arc::new(SmsHook::new(settings)?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_keeps_every_text_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = Outbox::in_data_dir(dir.path());
        assert!(outbox.read().is_empty());
        outbox.send("+15551232002", "Your code is 123456", "k1").unwrap();
        outbox.send("+15551232004", "Your code is 654321", "k2").unwrap();
        let texts = outbox.read();
        assert_eq!(texts.len(), 2);
        assert_eq!((texts[0].to.as_str(), texts[1].text.as_str()), ("+15551232002", "Your code is 654321"));
        std::fs::OpenOptions::new().append(true).open(outbox.path()).unwrap().write_all(b"not json\n").unwrap();
        assert_eq!(outbox.read().len(), 2, "a broken line is skipped");
    }
}
