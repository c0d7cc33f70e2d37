//! The idempotency protocol, written once for the API's `Idempotency-Key` and the web app's form keys: run the
//! operation, whose own transaction records the key with its answer (a decline is kept the same way); and give a
//! request whose key is taken the answer of the request that took it.

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

    /// Another request has the key (`StoreError::IdempotencyKeyInUse`): its answer is this request's.
    fn key_in_use(&self) -> bool;

    /// The database was away or failed (a 5xx): asking it about the key now would only wait for it again.
    fn database_failed(&self) -> bool;
}

/// The web app's forms re-render a refused form with a fresh key, so nothing of theirs is kept.
impl Declinable for StoreError {
    fn declined_answer(&self) -> Option<StoredResponse> {
        None
    }

    fn key_in_use(&self) -> bool {
        matches!(self, StoreError::IdempotencyKeyInUse)
    }

    fn database_failed(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_)
                | StoreError::Database(_)
                | StoreError::Corrupt(_)
                | StoreError::Internal(_)
        )
    }
}

/// How a keyed write ended: it ran now, or an earlier request with the same key already ran it.
pub enum Ran<T> {
    Done(T),
    Replayed(StoredResponse),
}

/// Runs `operation` at most once per key. Without a key it simply runs.
///
/// With one, the operation's own transaction inserts the key with its answer (`Finish`), so a keyed
/// write costs one transaction, as an unkeyed one does (ADR 0146); a decline is then kept the same way. If the
/// key is already there (a retry, or a duplicate sent concurrently), the operation was undone and the request
/// gets what the key holds (`earlier_request`).
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
    let finish = Finish {
        key: &key.key,
        request_hash: &key.request_hash,
        render,
    };
    let error = match operation(Some(finish)).await {
        Ok(outcome) => return Ok(Ran::Done(outcome)),
        Err(error) if error.key_in_use() => return earlier_request(store, key).await,
        Err(error) => error,
    };
    // Nothing was written, not even the key: a decline is kept under it. Any other refusal is this request's
    // own unless the key was taken before it (a repeat of a request whose operation cannot run again, say a
    // capture of a hold it captured): that request's answer is this one's, as if it had been replayed first.
    // When the database failed, the client's retry finds the key's answer if the operation did commit.
    let Some(answer) = error.declined_answer() else {
        if error.database_failed() {
            return Err(error);
        }
        return match store.idempotency_key_taken(&key.key).await {
            Ok(true) => earlier_request(store, key).await,
            Ok(false) | Err(_) => Err(error),
        };
    };
    match store
        .store_idempotent_answer(&key.key, &key.request_hash, answer)
        .await
    {
        Ok(()) => Err(error),
        Err(StoreError::IdempotencyKeyInUse) => earlier_request(store, key).await,
        Err(failure) => {
            // The decline changed nothing and nothing holds the key: a retry runs afresh.
            tracing::warn!(error = %failure, "could not keep a declined request's answer");
            Err(error)
        }
    }
}

/// The answer of the request that has the key: replayed if it finished, a conflict while it runs (or for a
/// different request under the same key). The claim protocol decides, so a claim abandoned by a crashed process
/// is taken over; a claim this request takes that way is released again at once, and the client's retry runs
/// the operation afresh.
async fn earlier_request<T, E>(store: &Store, key: &IdempotencyKey) -> Result<Ran<T>, E>
where
    E: From<StoreError>,
{
    match store
        .claim_idempotency_key(&key.key, &key.request_hash)
        .await?
    {
        Claim::Replay(stored) => {
            metrics::counter!("revwallet_idempotent_replays_total").increment(1);
            Ok(Ran::Replayed(stored))
        }
        Claim::New => {
            release(store, &key.key).await;
            Err(StoreError::IdempotencyKeyInUse.into())
        }
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
