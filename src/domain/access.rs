//! Who may do what: roles, and API key secrets (their shape, their public id and their hash).

use std::fmt;

use sha2::{Digest, Sha256};

/// What a key may do. Ordered: each role includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// GET routes.
    Read,
    /// Read, plus opening wallets and moving money.
    Write,
    /// Everything, plus keys, webhooks and closing wallets.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Read, Role::Write, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether a key of this role may use a route that needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API key secret as a client presents it: `rw_` and 32 to 200 characters of `[A-Za-z0-9_-]`.
/// Never logged or displayed (no `Display`, and `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct KeySecret(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "an API key is `{}` followed by {}–{} letters, digits, `_` or `-`",
    KeySecret::PREFIX,
    KeySecret::MIN_BODY,
    KeySecret::MAX_BODY
)]
pub struct KeySecretError;

impl KeySecret {
    pub const PREFIX: &'static str = "rw_";
    /// 32 characters of even a hex alphabet carry 128 bits.
    const MIN_BODY: usize = 32;
    const MAX_BODY: usize = 200;

    pub fn parse(text: &str) -> Result<Self, KeySecretError> {
        let body = text.strip_prefix(Self::PREFIX).ok_or(KeySecretError)?;
        let well_formed = (Self::MIN_BODY..=Self::MAX_BODY).contains(&body.len())
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        well_formed
            .then(|| Self(text.to_owned()))
            .ok_or(KeySecretError)
    }

    /// A new secret: 256 random bits, hex.
    pub fn generate() -> Self {
        let bytes: [u8; 32] = rand::random();
        Self(format!("{}{}", Self::PREFIX, hex(&bytes)))
    }

    /// SHA-256 of the secret, hex: what the database keeps. The secrets are random, so a slow password hash would
    /// only cost time on every request without making a guess any likelier to fail.
    pub fn hash(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))
    }

    /// The key's public id: the first 16 hex digits of its hash. It names the key in listings and as the actor
    /// of ledger entries, and says nothing about the secret.
    pub fn id(&self) -> String {
        id_of_hash(&self.hash())
    }

    /// The secret itself, for the one time it is shown to its owner.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySecret({})", self.id())
    }
}

pub fn id_of_hash(hash: &str) -> String {
    hash.chars().take(16).collect()
}

/// Lower-case hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_lower_ones() {
        assert!(Role::Admin.allows(Role::Write) && Role::Write.allows(Role::Read));
        assert!(!Role::Read.allows(Role::Write) && !Role::Write.allows(Role::Admin));
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Admin"), None);
    }

    #[test]
    fn generated_secrets_are_well_formed_distinct_and_hashed() {
        let (a, b) = (KeySecret::generate(), KeySecret::generate());
        assert_ne!(a, b);
        assert_eq!(KeySecret::parse(a.reveal()), Ok(a.clone()));
        assert_eq!(a.reveal().len(), 3 + 64);
        assert_eq!(a.hash().len(), 64);
        assert_eq!(a.id(), a.hash()[..16]);
        assert!(!format!("{a:?}").contains(a.reveal()));
    }

    #[test]
    fn malformed_secrets_are_refused() {
        let body = "a".repeat(32);
        assert!(KeySecret::parse(&format!("rw_{body}")).is_ok());
        for bad in [
            String::new(),
            "rw_".to_owned(),
            format!("rw_{}", "a".repeat(31)),
            format!("rw_{}", "a".repeat(201)),
            format!("sk_{body}"),
            format!("RW_{body}"),
            format!("rw_{body} "),
            format!("rw_{body}é"),
        ] {
            assert_eq!(KeySecret::parse(&bad), Err(KeySecretError), "{bad:?}");
        }
    }
}
