//! The web widget's signed host-page identity.
//!
//! A host page whose customer is signed in passes `data-customer-id` and
//! `data-customer-hash` = hex(HMAC-SHA256(key = `widget.secret`, message = customer id)),
//! computed by the operator's backend. A valid hash counts as verification; anything else
//! is ignored (and logged by the caller), never trusted.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// How a conversation's customer was bound when the host page vouched for them.
pub const SIGNED_HOST_PAGE: &str = "signed host page";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no widget secret is configured, so signed identities are not accepted")]
    NoSecret,
    #[error("the customer hash is not 64 hexadecimal characters")]
    MalformedHash,
    #[error("the customer hash does not match the customer id")]
    Mismatch,
}

/// Checks `hash_hex` against the customer id in constant time.
pub fn verify_customer_hash(secret: &Secret, customer_id: &str, hash_hex: &str) -> Result<(), IdentityError> {
    if secret.is_empty() {
        return Err(IdentityError::NoSecret);
    }
    let hash_hex = hash_hex.trim();
    if hash_hex.len() != 64 {
        return Err(IdentityError::MalformedHash);
    }
    let expected = hex::decode(hash_hex).map_err(|_| IdentityError::MalformedHash)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("hmac takes keys of any length");
    mac.update(customer_id.as_bytes());
    mac.verify_slice(&expected).map_err(|_| IdentityError::Mismatch)
}

/// The hash a host page passes for a customer (what the operator's backend computes).
pub fn sign_customer_id(secret: &Secret, customer_id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("hmac takes keys of any length");
    mac.update(customer_id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_made_with_the_secret_verifies() {
        let secret = Secret::new("widget-secret");
        let hash = sign_customer_id(&secret, "C2004");
        assert_eq!(hash.len(), 64);
        assert_eq!(verify_customer_hash(&secret, "C2004", &hash), Ok(()));
        assert_eq!(verify_customer_hash(&secret, "C2004", &hash.to_uppercase()), Ok(()));
    }

    #[test]
    fn anything_else_is_refused() {
        let secret = Secret::new("widget-secret");
        let hash = sign_customer_id(&secret, "C2004");
        assert_eq!(verify_customer_hash(&secret, "C2005", &hash), Err(IdentityError::Mismatch));
        let other = sign_customer_id(&Secret::new("other"), "C2004");
        assert_eq!(verify_customer_hash(&secret, "C2004", &other), Err(IdentityError::Mismatch));
        for malformed in ["", "abc", &"zz".repeat(32), &format!("{hash}00"), &"é".repeat(32)] {
            assert_eq!(
                verify_customer_hash(&secret, "C2004", malformed),
                Err(IdentityError::MalformedHash),
                "{malformed}"
            );
        }
        assert_eq!(verify_customer_hash(&Secret::default(), "C2004", &hash), Err(IdentityError::NoSecret));
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let secret = Secret::new("Jefe");
        assert_eq!(
            sign_customer_id(&secret, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
