//! What the store keeps for an `Idempotency-Key`: the claim a request takes, and the response recorded in the
//! same transaction as its operation. The protocol around them (claim, run, replay, release) is
//! `crate::idempotency`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Result, StoreError};

/// How long a claimed idempotency key may stay unfinished before another request may take it over:
/// longer than any request can run (the request timeout), so a live request is never overtaken.
pub const ABANDONED_CLAIM_AFTER: Duration = Duration::from_secs(120);
/// How long finished idempotency records are kept (the contract asks for at least 24 hours).
pub const IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(48 * 3600);

/// A response kept for an idempotency key, replayed byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

pub enum Claim {
    /// The key is ours: run the operation and record its response with it.
    New,
    Replay(StoredResponse),
}

/// How a keyed operation's answer is rendered from its outcome. Shared, not borrowed: a batch of writes runs in a
/// task of its own and records each member's answer there, in the batch's transaction.
pub type Render<T> = Arc<dyn Fn(&T) -> StoredResponse + Send + Sync>;

/// Records the response of an idempotent request in the same transaction as its operation: the key is inserted
/// with its answer, and that insert is the key's claim. A key already there (another request's) undoes the
/// operation with `StoreError::IdempotencyKeyInUse`.
pub struct Finish<'a, T> {
    pub key: &'a str,
    /// The fingerprint of the request (`crate::idempotency`), kept with the key.
    pub request_hash: &'a str,
    pub render: &'a Render<T>,
}

// Written by hand: a derive would require `T: Clone`, and `Finish` holds only references.
impl<T> Clone for Finish<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Finish<'_, T> {}

#[derive(Debug, FromRow)]
pub(super) struct KeyRow {
    request_hash: String,
    status: Option<i32>,
    location: Option<String>,
    body: Option<String>,
    created_at: DateTime<Utc>,
}

impl KeyRow {
    /// The stored answer to replay, `None` while the first request is unfinished; refused for another request.
    pub(super) fn into_claim(self, request_hash: &str) -> Result<Option<Claim>> {
        if self.request_hash != request_hash {
            return Err(StoreError::IdempotencyKeyReused);
        }
        Ok(match (self.status, self.body) {
            (Some(status), Some(body)) => Some(Claim::Replay(StoredResponse {
                status: u16::try_from(status)
                    .map_err(|_| StoreError::Corrupt(format!("status {status}")))?,
                location: self.location,
                body,
            })),
            _ => None,
        })
    }

    pub(super) fn is_abandoned(&self, now: DateTime<Utc>) -> bool {
        self.status.is_none() && now - self.created_at > to_delta(ABANDONED_CLAIM_AFTER)
    }
}

/// The instant `age` ago, for "older than" comparisons in SQL.
pub(super) fn cutoff(age: Duration) -> DateTime<Utc> {
    Utc::now() - chrono::TimeDelta::from_std(age).unwrap_or(chrono::TimeDelta::zero())
}

fn to_delta(age: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(age).unwrap_or(chrono::TimeDelta::MAX)
}

/// Keys whose request failed in this process without changing anything, but whose claim could not be released
/// (the database was away). A retry here takes such a claim over at once instead of waiting for
/// `ABANDONED_CLAIM_AFTER`, and housekeeping releases them once the database answers, for other replicas' sake.
///
/// Taking over is safe even when the failure hid the outcome of COMMIT: the stored answer is written in the
/// operation's own transaction, and the take-over only matches a claim with no answer. On PostgreSQL a COMMIT
/// still in flight holds the key row's lock, so the take-over waits for it and then finds the answer to replay.
#[derive(Debug, Default, Clone)]
pub(super) struct FailedClaims(Arc<Mutex<HashSet<String>>>);

impl FailedClaims {
    /// Bounds memory during a long outage; a key past the bound is taken over after `ABANDONED_CLAIM_AFTER`.
    const MAX_KEYS: usize = 10_000;

    pub(super) fn insert(&self, key: &str) {
        let mut keys = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if keys.len() < Self::MAX_KEYS {
            keys.insert(key.to_owned());
        }
    }

    pub(super) fn remove(&self, key: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    pub(super) fn contains(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(key)
    }

    pub(super) fn keys(&self) -> Vec<String> {
        let keys = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        keys.iter().cloned().collect()
    }

    /// Claims started before this instant may be taken over: any unfinished one if this process knows its
    /// request failed, else only those abandoned for `ABANDONED_CLAIM_AFTER`.
    pub(super) fn take_over_before(&self, key: &str) -> DateTime<Utc> {
        if self.contains(key) {
            Utc::now() + chrono::TimeDelta::minutes(1)
        } else {
            cutoff(ABANDONED_CLAIM_AFTER)
        }
    }
}
