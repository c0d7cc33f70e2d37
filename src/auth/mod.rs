//! Access control (docs/adr/0010-access-control.md): who is calling (`Caller`), checking API keys against a
//! cache kept current through the database (`Keyring`), and the start-up keys (`bootstrap`).

mod bootstrap;
mod issue;
mod keyring;

use std::sync::Arc;

use crate::domain::Role;
pub use bootstrap::{BootstrapKey, ensure_start_keys, first_key_message};
pub use issue::new_key;
pub use keyring::{AuthFailure, Denied, Keyring};

/// `--auth`: API keys (the default), or the original open API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuthMode {
    ApiKey,
    Off,
}

/// How requests are authenticated in this process.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// `--auth off`: everyone is an unbound admin, and entries carry no actor.
    Off,
    ApiKeys(Arc<Keyring>),
}

/// A checked, unrevoked API key: what it may do and for whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: String,
    pub role: Role,
    /// The only owner whose wallets the key may see and act on; `None` for every owner.
    pub owner: Option<String>,
}

/// Who sent a request: anyone (authentication off) or the holder of a key.
#[derive(Debug, Clone)]
pub enum Caller {
    Open,
    Key(Arc<Principal>),
}

impl Caller {
    pub fn role(&self) -> Role {
        match self {
            Self::Open => Role::Admin,
            Self::Key(key) => key.role,
        }
    }

    pub fn allows(&self, needed: Role) -> bool {
        self.role().allows(needed)
    }

    /// The owner this caller is bound to, if any.
    pub fn owner(&self) -> Option<&str> {
        match self {
            Self::Open => None,
            Self::Key(key) => key.owner.as_deref(),
        }
    }

    /// Whether the caller may see (and act on) a wallet of `owner`.
    pub fn sees(&self, owner: &str) -> bool {
        self.owner().is_none_or(|bound| bound == owner)
    }

    /// What ledger entries record as having caused them.
    pub fn actor(&self) -> Option<&str> {
        match self {
            Self::Open => None,
            Self::Key(key) => Some(&key.key_id),
        }
    }

    /// Prefix of this caller's idempotency keys in the shared table, so two keys never see each other's answers.
    pub fn idempotency_scope(&self) -> String {
        match self {
            Self::Open => String::new(),
            Self::Key(key) => format!("k:{}:", key.key_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(role: Role, owner: Option<&str>) -> Caller {
        Caller::Key(Arc::new(Principal {
            key_id: "0123456789abcdef".to_owned(),
            role,
            owner: owner.map(str::to_owned),
        }))
    }

    #[test]
    fn an_owner_bound_key_sees_only_its_owner() {
        let alice = key(Role::Write, Some("alice"));
        assert!(alice.sees("alice") && !alice.sees("bob") && !alice.sees("Alice"));
        assert!(key(Role::Read, None).sees("bob"));
        assert!(Caller::Open.sees("bob"));
    }

    #[test]
    fn open_callers_are_admins_without_an_actor_or_scope() {
        assert!(Caller::Open.allows(Role::Admin));
        assert_eq!(Caller::Open.actor(), None);
        assert_eq!(Caller::Open.idempotency_scope(), "");
        let write = key(Role::Write, None);
        assert!(!write.allows(Role::Admin));
        assert_eq!(write.actor(), Some("0123456789abcdef"));
        assert_eq!(write.idempotency_scope(), "k:0123456789abcdef:");
    }
}
