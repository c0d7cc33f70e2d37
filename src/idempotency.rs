//! The idempotency protocol, written once for the API's `Idempotency-Key` and the web app's form keys: claim the
//! key, run the operation (which records its answer in its own transaction), replay a finished key, and release
//! the key of an operation that failed without changing anything.

use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::store::{Claim, Finish, Render, Store, StoreError, StoredResponse};

/// Prefix of the web app's form keys in the shared key table, so a form and an API client never meet.
pub const FORM_KEY_PREFIX: &str = "ui:";

/// How long a failed request waits for its key's release before answering (the release goes on alone after).
const RELEASE_WAIT: Duration = Duration::from_secs(1);

/// A client's key and the fingerprint of the request it came with.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    key: String,
    request_hash: String,
}

impl IdempotencyKey {
    /// An API request's `Idempotency-Key` (already checked to be 1–255 printable ASCII), in the caller's scope
    /// (`Caller::idempotency_scope`): two API keys sending the same `Idempotency-Key` never meet.
    pub fn for_api(scope: &str, key: &str, method: &str, path: &str, body: &[u8]) -> Self {
        Self {
            request_hash: fingerprint(method, path, body),
            key: format!("{scope}{key}"),
        }
    }

    /// A form's key (a random id rendered into the form), if it is well formed, in the signed-in caller's scope
    /// (`Caller::idempotency_scope`, after the forms' prefix): two web sessions of different keys never meet.
    pub fn for_form(scope: &str, key: &str, path: &str, body: &[u8]) -> Option<Self> {
        let well_formed = (1..=100).contains(&key.len())
            && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        well_formed.then(|| Self {
            key: format!("{FORM_KEY_PREFIX}{scope}{key}"),
            request_hash: fingerprint("POST", path, body),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// SHA-256 of "METHOD path\nbody", hex: the same key with anything else is refused as reused.
fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    crate::domain::hex(&hasher.finalize())
}

/// An error that may be a decline: the operation ran and refused, and that answer is the request's for good.
pub trait Declinable {
    /// The answer to keep under the idempotency key; `None` frees the key for a retry (the request never reached
    /// the ledger: it was invalid, or the database was away).
    fn declined_answer(&self) -> Option<StoredResponse>;
}

/// The web app's forms re-render a refused form with a fresh key, so nothing of theirs is kept.
impl Declinable for StoreError {
    fn declined_answer(&self) -> Option<StoredResponse> {
        None
    }
}

/// How a keyed write ended: it ran now, or an earlier request with the same key already ran it.
pub enum Ran<T> {
    Done(T),
    Replayed(StoredResponse),
}

/// Runs `operation` at most once per key. Without a key it simply runs. With one, the first request claims the
/// key and `operation` records `render(outcome)` in its own transaction through the `Finish` it is given; a
/// repeat gets that stored answer. A failed operation changed nothing, so its claim is released and the client
/// may retry with the same key.
pub async fn run_once<'a, T, E, F, Fut>(
    store: &Store,
    key: Option<&'a IdempotencyKey>,
    render: &'a Render<T>,
    operation: F,
) -> Result<Ran<T>, E>
where
    E: From<StoreError> + Declinable,
    F: FnOnce(Option<Finish<'a, T>>) -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let Some(key) = key else {
        return operation(None).await.map(Ran::Done);
    };
    match store
        .claim_idempotency_key(&key.key, &key.request_hash)
        .await?
    {
        Claim::Replay(stored) => {
            metrics::counter!("revwallet_idempotent_replays_total").increment(1);
            Ok(Ran::Replayed(stored))
        }
        Claim::New => {
            let finish = Finish {
                key: &key.key,
                render,
            };
            match operation(Some(finish)).await {
                Ok(outcome) => Ok(Ran::Done(outcome)),
                Err(error) => {
                    match error.declined_answer() {
                        Some(answer) => keep_decline(store, &key.key, answer).await,
                        None => release(store, &key.key).await,
                    }
                    Err(error)
                }
            }
        }
    }
}

/// Keeps a decline as the key's answer. The decline changed nothing, so if it cannot be kept (the database went
/// away) the key is freed instead, as for any failure that changed nothing.
async fn keep_decline(store: &Store, key: &str, answer: StoredResponse) {
    if let Err(error) = store.store_idempotent_answer(key, answer).await {
        tracing::warn!(%error, "could not keep a declined request's answer");
        release(store, key).await;
    }
}

/// Frees a failed request's key before answering, so an immediate retry finds it free. During an outage the
/// release itself waits for a connection, so the answer waits at most `RELEASE_WAIT` and the release goes on
/// alone; a claim never released is taken over after `store::ABANDONED_CLAIM_AFTER`.
async fn release(store: &Store, key: &str) {
    let (store, key) = (store.clone(), key.to_owned());
    let release = tokio::spawn(async move {
        if let Err(error) = store.release_idempotency_key(&key).await {
            tracing::warn!(%error, "could not release idempotency key");
        }
    });
    let _ = tokio::time::timeout(RELEASE_WAIT, release).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_keys_are_namespaced_and_fingerprint_the_post() {
        let first = IdempotencyKey::for_form("", "abc-123", "/ui/wallets/1/deposit", b"amount=1")
            .expect("valid key");
        let other = IdempotencyKey::for_form("", "abc-123", "/ui/wallets/1/deposit", b"amount=2")
            .expect("valid key");
        assert_eq!(first.key(), "ui:abc-123");
        assert_ne!(first.request_hash, other.request_hash);
        let scoped = IdempotencyKey::for_form("k:0123:", "abc-123", "/p", b"").expect("valid key");
        assert_eq!(scoped.key(), "ui:k:0123:abc-123");
        for bad in ["", "has space", "semi;colon", &"a".repeat(101)] {
            assert!(
                IdempotencyKey::for_form("", bad, "/", b"").is_none(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_form_and_an_api_post_of_the_same_bytes_share_one_fingerprint() {
        let api = IdempotencyKey::for_api("", "k", "POST", "/p", b"body");
        let form = IdempotencyKey::for_form("", "k", "/p", b"body").expect("valid key");
        assert_eq!(api.request_hash, form.request_hash);
        assert_ne!(api.key(), form.key());
    }
}
