//! Issuing keys: what a new key may be, checked the same way for the CLI, the admin API and start-up.

use crate::domain::{KeySecret, Owner, Role};
use crate::store::NewApiKey;

/// A key to create from what a client asked for, checked the same way by the CLI and the admin API.
pub fn new_key(
    secret: &KeySecret,
    role: Role,
    owner: Option<&str>,
    name: &str,
) -> Result<NewApiKey, String> {
    let owner = Owner::filter(owner)
        .map_err(|error| format!("owner: {error}"))?
        .map(|owner| owner.as_ref().to_owned());
    if role == Role::Admin && owner.is_some() {
        return Err(
            "an admin key cannot be bound to an owner (it could create unbound keys)".into(),
        );
    }
    let name = name.trim();
    if name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err("name: at most 200 characters, no control characters".into());
    }
    Ok(NewApiKey {
        id: secret.id(),
        secret_hash: secret.hash(),
        name: name.to_owned(),
        role,
        owner,
    })
}
