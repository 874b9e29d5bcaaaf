//! Who may run an action, and the proof that a customer confirmed it.
//!
//! A change or money action run for a customer needs a [`ConfirmationToken`] minted for that
//! conversation and that exact request (name and arguments): the dialogue mints one when the
//! customer says yes to the pending action, and the registry checks it (signature, request,
//! conversation, expiry) and spends it in the same transaction as the change, so each token
//! works once. Tokens are HMAC-SHA256 signed with a random key kept in the store, so they
//! survive a restart of the server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::actions::ActionRequest;
use super::ids::{ConversationId, CustomerId};
use super::{Error, Result};

/// Who runs an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Actor {
    /// A customer the dialogue has verified (identified and checked against name and date of
    /// birth, per the policy), speaking in a conversation. Acts only on their own account and
    /// needs a confirmation token for every change.
    Customer { customer_id: CustomerId, conversation_id: ConversationId },
    /// A human agent (console or staff API); the policy still applies.
    Agent { name: String },
    /// Switchboard itself (look-ups before verification, imports, maintenance).
    System,
}

impl Actor {
    /// An agent actor, its name trimmed and cut to 100 characters.
    pub fn agent(name: &str) -> Self {
        Actor::Agent { name: name.trim().chars().take(100).collect() }
    }

    pub fn customer(customer_id: CustomerId, conversation_id: ConversationId) -> Self {
        Actor::Customer { customer_id, conversation_id }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// A customer's confirmation of one exact action, minted by [`super::ActionRegistry::confirm`].
/// Opaque text: `nonce.expiry.signature`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ConfirmationToken(String);

impl ConfirmationToken {
    /// Wraps a token received as text (checked only when used).
    pub fn from_text(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The parts of a token that checked out; the nonce is what the store remembers as spent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CheckedConfirmation {
    pub(crate) nonce: String,
}

/// Mints and checks confirmation tokens.
#[derive(Clone)]
pub(crate) struct Confirmations {
    key: Vec<u8>,
    ttl: Duration,
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Confirmations {
    pub(crate) fn new(key: Vec<u8>, ttl: Duration) -> Self {
        Self { key, ttl }
    }

    fn signature(&self, conversation: &ConversationId, request: &ActionRequest, nonce: &str, expires: u64) -> Vec<u8> {
        let request_json = serde_json::to_string(request).unwrap_or_default();
        let mut mac = HmacSha256::new_from_slice(&self.key).expect("hmac accepts any key length");
        mac.update(b"switchboard-confirmation-v1\n");
        mac.update(conversation.as_str().as_bytes());
        mac.update(b"\n");
        mac.update(request_json.as_bytes());
        mac.update(b"\n");
        mac.update(nonce.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    pub(crate) fn mint(
        &self,
        conversation: &ConversationId,
        request: &ActionRequest,
        now: SystemTime,
    ) -> ConfirmationToken {
        let nonce = hex::encode(rand::random::<[u8; 16]>());
        let expires = unix_seconds(now) + self.ttl.as_secs();
        let signature = self.signature(conversation, request, &nonce, expires);
        ConfirmationToken(format!("{nonce}.{expires}.{}", hex::encode(signature)))
    }

    /// Checks the token against the conversation and the request; does not spend it.
    pub(crate) fn check(
        &self,
        token: &ConfirmationToken,
        conversation: &ConversationId,
        request: &ActionRequest,
        now: SystemTime,
    ) -> Result<CheckedConfirmation> {
        let malformed = || Error::ConfirmationInvalid { why: "the token is malformed" };
        let text = token.as_str();
        if text.len() > 200 {
            return Err(malformed());
        }
        let mut parts = text.split('.');
        let (Some(nonce), Some(expires), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(malformed());
        };
        if nonce.len() != 32 || !nonce.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(malformed());
        }
        let expires: u64 = expires.parse().map_err(|_| malformed())?;
        let signature = hex::decode(signature).map_err(|_| malformed())?;
        let expected = self.signature(conversation, request, nonce, expires);
        if !bool::from(signature.ct_eq(&expected)) {
            return Err(Error::ConfirmationInvalid {
                why: "it was not issued for this action, these arguments and this conversation",
            });
        }
        if unix_seconds(now) > expires {
            return Err(Error::ConfirmationExpired);
        }
        Ok(CheckedConfirmation { nonce: nonce.to_string() })
    }
}

/// Fingerprint of who asked for what: a replayed idempotency key must carry the same one.
pub(crate) fn fingerprint(actor: &Actor, request: &ActionRequest) -> String {
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(actor).unwrap_or_default());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(request).unwrap_or_default());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(gb: f64) -> ActionRequest {
        ActionRequest::parse("refuel_data", serde_json::json!({"customer_id": "C1", "line_id": "L1", "gb_amount": gb}))
            .unwrap()
    }

    #[test]
    fn tokens_bind_conversation_and_request() {
        let confirmations = Confirmations::new(b"key".to_vec(), Duration::from_secs(60));
        let conversation = ConversationId::parse("conv-1").unwrap();
        let now = SystemTime::now();
        let token = confirmations.mint(&conversation, &request(1.0), now);
        assert!(confirmations.check(&token, &conversation, &request(1.0), now).is_ok());
        let other_args = confirmations.check(&token, &conversation, &request(2.0), now).unwrap_err();
        assert!(matches!(other_args, Error::ConfirmationInvalid { .. }));
        let other_conversation = ConversationId::parse("conv-2").unwrap();
        assert!(confirmations.check(&token, &other_conversation, &request(1.0), now).is_err());
        let later = now + Duration::from_secs(120);
        assert!(matches!(
            confirmations.check(&token, &conversation, &request(1.0), later),
            Err(Error::ConfirmationExpired)
        ));
        let other_key = Confirmations::new(b"other".to_vec(), Duration::from_secs(60));
        assert!(other_key.check(&token, &conversation, &request(1.0), now).is_err());
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let confirmations = Confirmations::new(b"key".to_vec(), Duration::from_secs(60));
        let conversation = ConversationId::parse("conv-1").unwrap();
        for text in ["", "yes", "a.b.c", "a.b.c.d", &"x".repeat(500), "00000000000000000000000000000000.99999999999.zz"]
        {
            let token = ConfirmationToken::from_text(text);
            assert!(confirmations.check(&token, &conversation, &request(1.0), SystemTime::now()).is_err(), "{text:?}");
        }
    }

    #[test]
    fn fingerprints_differ_by_actor_and_args() {
        let customer = Actor::customer(CustomerId::parse("C1").unwrap(), ConversationId::parse("c").unwrap());
        assert_eq!(fingerprint(&customer, &request(1.0)), fingerprint(&customer, &request(1.0)));
        assert_ne!(fingerprint(&customer, &request(1.0)), fingerprint(&customer, &request(2.0)));
        assert_ne!(fingerprint(&customer, &request(1.0)), fingerprint(&Actor::System, &request(1.0)));
    }
}
