//! Checking API keys without a database round trip in the steady state, and seeing revocations within seconds.
//!
//! A key is looked up in the database the first time this process sees it, then served from memory. A background
//! task re-reads every cached key once a second (`keep_current`), so a key revoked by any process, the CLI or
//! another replica, stops working here within about a second. Lookups of keys not yet cached go through a small
//! semaphore, so a flood of made-up keys cannot take the whole connection pool.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use subtle::ConstantTimeEq;

use super::Principal;
use crate::domain::{KeySecret, id_of_hash};
use crate::store::{ApiKey, Store, StoreError};

/// How often cached keys are re-read; revocation reaches every replica within this (plus one query).
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);
/// Bounds memory: past this many distinct keys the cache starts over.
const MAX_CACHED: usize = 10_000;
/// Concurrent database lookups of uncached keys.
const CONCURRENT_LOOKUPS: usize = 4;
/// Ids re-read per refresh query.
const REFRESH_BATCH: usize = 500;

/// Why a request was not authenticated; `reason()` is the `reason` label of `revwallet_auth_failures_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Malformed,
    Unknown,
    Revoked,
    SessionExpired,
}

impl AuthFailure {
    pub const ALL: [AuthFailure; 5] = [
        Self::Missing,
        Self::Malformed,
        Self::Unknown,
        Self::Revoked,
        Self::SessionExpired,
    ];

    pub fn reason(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Unknown => "unknown",
            Self::Revoked => "revoked",
            Self::SessionExpired => "session_expired",
        }
    }

    /// What the client is told. Unknown and revoked keys read alike, so a guess learns nothing.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Missing => "this request needs an API key: send Authorization: Bearer <key>",
            Self::Malformed => {
                "the Authorization header must be `Bearer rw_…` with a well-formed API key"
            }
            Self::Unknown | Self::Revoked => "the API key is unknown or revoked",
            Self::SessionExpired => "the session has expired or ended; sign in again",
        }
    }

    pub fn count(self) {
        metrics::counter!("revwallet_auth_failures_total", "reason" => self.reason()).increment(1);
    }
}

/// A request refused before it ran: bad credentials, or no database to check them with.
#[derive(Debug)]
pub enum Denied {
    Failure(AuthFailure),
    Store(StoreError),
}

impl From<AuthFailure> for Denied {
    fn from(failure: AuthFailure) -> Self {
        Self::Failure(failure)
    }
}

#[derive(Debug, Clone)]
enum Cached {
    Active {
        secret_hash: String,
        principal: Arc<Principal>,
    },
    Revoked,
}

impl From<ApiKey> for Cached {
    fn from(key: ApiKey) -> Self {
        if key.revoked_at.is_some() {
            return Self::Revoked;
        }
        Self::Active {
            principal: Arc::new(Principal {
                key_id: key.id,
                role: key.role,
                owner: key.owner,
            }),
            secret_hash: key.secret_hash,
        }
    }
}

#[derive(Debug)]
pub struct Keyring {
    store: Store,
    cache: RwLock<HashMap<String, Cached>>,
    lookups: tokio::sync::Semaphore,
}

impl Keyring {
    pub fn new(store: Store) -> Self {
        Self {
            store,
            cache: RwLock::default(),
            lookups: tokio::sync::Semaphore::new(CONCURRENT_LOOKUPS),
        }
    }

    /// The key behind a presented secret, if it exists and is not revoked.
    pub async fn authenticate(&self, secret: &KeySecret) -> Result<Arc<Principal>, Denied> {
        let hash = secret.hash();
        let cached = self.find(&id_of_hash(&hash)).await?;
        match cached {
            // Constant time, so response timing says nothing about how much of a guessed hash matched.
            Cached::Active {
                secret_hash,
                principal,
            } if bool::from(secret_hash.as_bytes().ct_eq(hash.as_bytes())) => Ok(principal),
            Cached::Active { .. } => Err(AuthFailure::Unknown.into()),
            Cached::Revoked => Err(AuthFailure::Revoked.into()),
        }
    }

    /// The key a web session acts as (the session proved the secret when it signed in).
    pub async fn principal(&self, key_id: &str) -> Result<Arc<Principal>, Denied> {
        match self.find(key_id).await? {
            Cached::Active { principal, .. } => Ok(principal),
            Cached::Revoked => Err(AuthFailure::Revoked.into()),
        }
    }

    /// Forgets a key revoked by this process at once (other processes see it at their next refresh).
    pub fn revoked(&self, key_id: &str) {
        self.write().insert(key_id.to_owned(), Cached::Revoked);
    }

    async fn find(&self, key_id: &str) -> Result<Cached, Denied> {
        if let Some(cached) = self.cached(key_id) {
            return Ok(cached);
        }
        let _turn =
            self.lookups.acquire().await.map_err(|_| {
                Denied::Store(StoreError::Internal("key lookups closed".to_owned()))
            })?;
        // Another request may have looked it up while this one waited.
        if let Some(cached) = self.cached(key_id) {
            return Ok(cached);
        }
        metrics::counter!("revwallet_auth_key_lookups_total").increment(1);
        let key = self.store.api_key(key_id).await.map_err(Denied::Store)?;
        let cached = Cached::from(key.ok_or(AuthFailure::Unknown)?);
        self.put(key_id, cached.clone());
        Ok(cached)
    }

    fn cached(&self, key_id: &str) -> Option<Cached> {
        self.cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key_id)
            .cloned()
    }

    fn put(&self, key_id: &str, cached: Cached) {
        let mut cache = self.write();
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        cache.insert(key_id.to_owned(), cached);
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Cached>> {
        self.cache.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-reads every cached key: revoked ones are marked so, deleted ones forgotten.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let ids: Vec<String> = self
            .cache
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect();
        for batch in ids.chunks(REFRESH_BATCH) {
            let mut current: HashMap<String, ApiKey> = self
                .store
                .api_keys_by_id(batch)
                .await?
                .into_iter()
                .map(|key| (key.id.clone(), key))
                .collect();
            let mut cache = self.write();
            for id in batch {
                match current.remove(id) {
                    Some(key) => cache.insert(id.clone(), Cached::from(key)),
                    None => cache.remove(id),
                };
            }
        }
        Ok(())
    }

    /// Runs `refresh` every `REFRESH_EVERY` for as long as the server runs.
    pub async fn keep_current(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(REFRESH_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.refresh().await {
                tracing::warn!(%error, "could not refresh the API key cache");
            }
        }
    }
}
