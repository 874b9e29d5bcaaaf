//! The web widget's signed host-page identity: the operator's own sign-in, passed by the page
//! that hosts the widget.
//!
//! A host page whose customer is signed in passes `data-customer-id`, `data-customer-expires`
//! (unix seconds) and `data-customer-hash` = hex(HMAC-SHA256(key = `widget.secret`, message =
//! `"<customer id>.<expires>"`)), computed by the operator's backend. A valid, unexpired hash
//! verifies the customer it names; anything else is ignored (and logged by the caller), never
//! trusted. The comparison is constant-time.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::config::Secret;

/// Longest a signed identity may be valid ahead: a page cannot mint a lasting credential.
pub const MAX_VALIDITY_SECONDS: u64 = 24 * 60 * 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("no widget secret is configured, so signed identities are not accepted")]
    NoSecret,
    #[error("the customer hash is not 64 hexadecimal characters")]
    MalformedHash,
    #[error("the signed identity has no expiry (data-customer-expires)")]
    MissingExpiry,
    #[error("the signed identity expired")]
    Expired,
    #[error("the signed identity's expiry is more than 24 hours ahead")]
    TooFarAhead,
    #[error("the customer hash does not match the customer id and expiry")]
    Mismatch,
}

fn mac(secret: &Secret, customer_id: &str, expires: u64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("hmac takes keys of any length");
    mac.update(customer_id.as_bytes());
    mac.update(b".");
    mac.update(expires.to_string().as_bytes());
    mac
}

/// Checks a signed identity at `now` (unix seconds).
pub fn verify_signed_identity(
    secret: &Secret,
    customer_id: &str,
    expires: Option<u64>,
    hash_hex: &str,
    now: u64,
) -> Result<(), IdentityError> {
    if secret.is_empty() {
        return Err(IdentityError::NoSecret);
    }
    let expires = expires.ok_or(IdentityError::MissingExpiry)?;
    let hash_hex = hash_hex.trim();
    if hash_hex.len() != 64 {
        return Err(IdentityError::MalformedHash);
    }
    let expected = hex::decode(hash_hex).map_err(|_| IdentityError::MalformedHash)?;
    // The signature first: an attacker learns nothing from which check failed.
    mac(secret, customer_id, expires).verify_slice(&expected).map_err(|_| IdentityError::Mismatch)?;
    if expires <= now {
        return Err(IdentityError::Expired);
    }
    if expires - now > MAX_VALIDITY_SECONDS {
        return Err(IdentityError::TooFarAhead);
    }
    Ok(())
}

/// The hash a host page passes for a customer until `expires` (what the operator's backend
/// computes).
pub fn sign_identity(secret: &Secret, customer_id: &str, expires: u64) -> String {
    hex::encode(mac(secret, customer_id, expires).finalize().into_bytes())
}

/// The machine's clock in unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_765_000_000;

    #[test]
    fn a_hash_made_with_the_secret_verifies_until_it_expires() {
        let secret = Secret::new("widget-secret");
        let hash = sign_identity(&secret, "C2004", NOW + 600);
        assert_eq!(hash.len(), 64);
        assert_eq!(verify_signed_identity(&secret, "C2004", Some(NOW + 600), &hash, NOW), Ok(()));
        assert_eq!(verify_signed_identity(&secret, "C2004", Some(NOW + 600), &hash.to_uppercase(), NOW), Ok(()));
        assert_eq!(
            verify_signed_identity(&secret, "C2004", Some(NOW + 600), &hash, NOW + 600),
            Err(IdentityError::Expired)
        );
    }

    #[test]
    fn anything_else_is_refused() {
        let secret = Secret::new("widget-secret");
        let hash = sign_identity(&secret, "C2004", NOW + 600);
        let check =
            |id: &str, expires: Option<u64>, hash: &str| verify_signed_identity(&secret, id, expires, hash, NOW);
        assert_eq!(check("C2005", Some(NOW + 600), &hash), Err(IdentityError::Mismatch));
        assert_eq!(check("C2004", Some(NOW + 601), &hash), Err(IdentityError::Mismatch), "a changed expiry");
        assert_eq!(check("C2004", None, &hash), Err(IdentityError::MissingExpiry));
        let other = sign_identity(&Secret::new("other"), "C2004", NOW + 600);
        assert_eq!(check("C2004", Some(NOW + 600), &other), Err(IdentityError::Mismatch));
        let far = sign_identity(&secret, "C2004", NOW + 2 * MAX_VALIDITY_SECONDS);
        assert_eq!(check("C2004", Some(NOW + 2 * MAX_VALIDITY_SECONDS), &far), Err(IdentityError::TooFarAhead));
        for malformed in ["", "abc", &"zz".repeat(32), &format!("{hash}00"), &"é".repeat(32)] {
            assert_eq!(check("C2004", Some(NOW + 600), malformed), Err(IdentityError::MalformedHash), "{malformed}");
        }
        let none = verify_signed_identity(&Secret::default(), "C2004", Some(NOW + 600), &hash, NOW);
        assert_eq!(none, Err(IdentityError::NoSecret));
    }

    #[test]
    fn known_vector() {
        // What an operator's backend computes, e.g. in Python:
        // hmac.new(b"widget-secret", b"C2004.1765000600", hashlib.sha256).hexdigest()
        assert_eq!(
            sign_identity(&Secret::new("widget-secret"), "C2004", NOW + 600),
            "bba917fc07602bc1d150949d59fa5505ee40ac11185727fd56b66f97a9eef786"
        );
    }
}
