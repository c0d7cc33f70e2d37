//! The keys a server makes sure of at start-up: the operator's bootstrap admin key, or, on a database with no key
//! at all, a first admin key printed once.

use crate::domain::{KeySecret, Role};
use crate::store::{NewApiKey, Store};

/// `REVWALLET_BOOTSTRAP_ADMIN_KEY`, checked.
#[derive(Debug, Clone)]
pub struct BootstrapKey(pub KeySecret);

impl BootstrapKey {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        KeySecret::parse(text.trim())
            .map(Self)
            .map_err(|error| anyhow::anyhow!("REVWALLET_BOOTSTRAP_ADMIN_KEY: {error}"))
    }
}

/// Ensures the bootstrap key exists as an admin key; without one, creates a first admin key when there is no key
/// at all and returns it (its only showing is the caller's to do).
pub async fn ensure_start_keys(
    store: &Store,
    bootstrap: Option<&BootstrapKey>,
) -> anyhow::Result<Option<KeySecret>> {
    if let Some(BootstrapKey(secret)) = bootstrap {
        let key = admin_key(secret, "bootstrap");
        if store.insert_api_key(&key).await?.is_some() {
            tracing::info!(key_id = %key.id, "bootstrap admin key created");
            return Ok(None);
        }
        match store.api_key(&key.id).await? {
            Some(existing) if existing.secret_hash != key.secret_hash => {
                anyhow::bail!(
                    "REVWALLET_BOOTSTRAP_ADMIN_KEY collides with another key's id; choose another"
                )
            }
            // An operator's revocation stands: a restart must not bring a revoked key back.
            Some(existing) if existing.revoked_at.is_some() => tracing::warn!(
                key_id = %key.id,
                "the bootstrap admin key was revoked; it stays revoked (set a new REVWALLET_BOOTSTRAP_ADMIN_KEY)"
            ),
            _ => {}
        }
        return Ok(None);
    }
    if store.count_api_keys().await? > 0 {
        return Ok(None);
    }
    let secret = KeySecret::generate();
    let created = store
        .insert_first_api_key(&admin_key(&secret, "first admin key"))
        .await?;
    Ok(created.then_some(secret))
}

fn admin_key(secret: &KeySecret, name: &str) -> NewApiKey {
    // An unbound admin key with a plain name is always acceptable.
    NewApiKey {
        id: secret.id(),
        secret_hash: secret.hash(),
        name: name.to_owned(),
        role: Role::Admin,
        owner: None,
    }
}

/// What `serve` prints (once, on stderr, never through the logs) when it created the first key.
pub fn first_key_message(secret: &KeySecret, listen: std::net::SocketAddr) -> String {
    let key = secret.reveal();
    format!(
        "\nrevwallet: no API key existed, so this admin key was created. It is shown only now; keep it secret.\n\n    \
         {key}\n\nUse it as a bearer token, for example:\n\n    \
         curl -H 'Authorization: Bearer {key}' http://{listen}/wallet/\n\n\
         Create narrower keys with `revwallet keys create --role write --owner <owner>` or POST /wallet/keys.\n"
    )
}
