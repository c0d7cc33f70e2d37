//! Webhook secrets and signatures: `Revwallet-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! keyed with the secret's text exactly as it was shown when the webhook was created.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::domain::hex;
use crate::store::{SecretKind, StoredSecret};

pub const SECRET_PREFIX: &str = "whsec_";

fn hmac_hex(key: &[u8], message: &[u8]) -> String {
    // HMAC takes a key of any length: `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(message);
    hex(&mac.finalize().into_bytes())
}

/// A new webhook's secret: what the store keeps, and the secret to show once. With a server key, the store keeps
/// only a random seed and the secret is derived from it, so a database dump alone cannot sign.
pub fn new_secret(server_key: Option<&str>) -> (StoredSecret, String) {
    let random = hex(&rand::random::<[u8; 32]>());
    match server_key {
        Some(key) => {
            let stored = StoredSecret {
                kind: SecretKind::Derived,
                value: random,
            };
            let shown = derive(key, &stored.value);
            (stored, shown)
        }
        None => {
            let shown = format!("{SECRET_PREFIX}{random}");
            let stored = StoredSecret {
                kind: SecretKind::Plain,
                value: shown.clone(),
            };
            (stored, shown)
        }
    }
}

fn derive(server_key: &str, seed: &str) -> String {
    format!(
        "{SECRET_PREFIX}{}",
        hmac_hex(server_key.as_bytes(), seed.as_bytes())
    )
}

/// The secret a delivery is signed with; `None` for a derived one while no server key is configured.
pub fn signing_secret(stored: &StoredSecret, server_key: Option<&str>) -> Option<String> {
    match stored.kind {
        SecretKind::Plain => Some(stored.value.clone()),
        SecretKind::Derived => server_key.map(|key| derive(key, &stored.value)),
    }
}

/// The hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = timestamp.to_string().into_bytes();
    message.push(b'.');
    message.extend_from_slice(body);
    hmac_hex(secret.as_bytes(), &message)
}

/// The `Revwallet-Signature` header value.
pub fn signature_header(secret: &str, timestamp: i64, body: &[u8]) -> String {
    format!("t={timestamp},v1={}", signature(secret, timestamp, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_matches_a_known_vector() {
        // Computed independently: Python's hmac.new(b"whsec_test", b'1700000000.{"id":"1"}', sha256).
        assert_eq!(
            signature_header("whsec_test", 1_700_000_000, br#"{"id":"1"}"#),
            "t=1700000000,v1=11bf4466ea17c3df3fd743af0b435368e16b7a05eb8eced85e8c4670767bdec5"
        );
    }

    #[test]
    fn a_derived_secret_needs_the_server_key_and_is_not_what_the_store_keeps() {
        let (stored, shown) = new_secret(Some("server-key"));
        assert_eq!(stored.kind, SecretKind::Derived);
        assert!(!shown.contains(&stored.value));
        assert_eq!(
            signing_secret(&stored, Some("server-key")).as_deref(),
            Some(shown.as_str())
        );
        assert_eq!(signing_secret(&stored, None), None);
        assert_ne!(signing_secret(&stored, Some("other key")), Some(shown));
        // HMAC-SHA256(b"server-key", b"seed"), computed independently.
        assert_eq!(
            derive("server-key", "seed"),
            "whsec_fa788a0029a3fdb7b1b4af1d41048009f0cd9a574bc17a56a34fdae44c960d1b"
        );
    }

    #[test]
    fn a_plain_secret_is_shown_once_and_signs_as_kept() {
        let (stored, shown) = new_secret(None);
        assert_eq!(stored.kind, SecretKind::Plain);
        assert!(shown.starts_with(SECRET_PREFIX) && shown.len() == SECRET_PREFIX.len() + 64);
        assert_eq!(signing_secret(&stored, None), Some(shown));
    }
}
