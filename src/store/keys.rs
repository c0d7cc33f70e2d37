//! API keys and web sessions as the store keeps them. Only hashes of secrets and session tokens are stored.

use chrono::{DateTime, Utc};
use sqlx::FromRow;

use super::{Result, StoreError};
use crate::domain::Role;

/// A key as listed: everything but its secret, which is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: String,
    pub secret_hash: String,
    pub name: String,
    pub role: Role,
    pub owner: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key to create (the caller generated or was given its secret, and hashed it).
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: String,
    pub secret_hash: String,
    pub name: String,
    pub role: Role,
    pub owner: Option<String>,
}

/// A web sign-in: the key it acts as, until when.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct WebSession {
    pub key_id: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, FromRow)]
pub(super) struct ApiKeyRow {
    id: String,
    secret_hash: String,
    name: String,
    role: String,
    owner: Option<String>,
    created_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = StoreError;
    fn try_from(row: ApiKeyRow) -> Result<Self> {
        Ok(Self {
            role: Role::parse(&row.role)
                .ok_or_else(|| StoreError::Corrupt(format!("key role {:?}", row.role)))?,
            id: row.id,
            secret_hash: row.secret_hash,
            name: row.name,
            owner: row.owner,
            created_at: row.created_at,
            revoked_at: row.revoked_at,
        })
    }
}

const KEY_COLUMNS: &str = "id, secret_hash, name, role, owner, created_at, revoked_at";

pub(super) fn insert_key_sql() -> String {
    format!(
        "insert into api_keys (id, secret_hash, name, role, owner, created_at) values ($1, $2, $3, $4, $5, $6) \
         on conflict do nothing returning {KEY_COLUMNS}"
    )
}

pub(super) fn get_key_sql() -> String {
    format!("select {KEY_COLUMNS} from api_keys where id = $1")
}

pub(super) fn list_keys_sql() -> String {
    format!("select {KEY_COLUMNS} from api_keys order by created_at, id")
}

pub(super) const REVOKE_KEY: &str =
    "update api_keys set revoked_at = $2 where id = $1 and revoked_at is null";

pub(super) const COUNT_KEYS: &str = "select count(*) from api_keys";

pub(super) const INSERT_SESSION: &str =
    "insert into web_sessions (token_hash, key_id, created_at, expires_at) values ($1, $2, $3, $4)";

pub(super) const GET_SESSION: &str =
    "select key_id, expires_at from web_sessions where token_hash = $1 and expires_at > $2";

pub(super) const DELETE_SESSION: &str = "delete from web_sessions where token_hash = $1";

pub(super) const EXPIRE_SESSIONS: &str = "delete from web_sessions where expires_at <= $1";

/// Inserts a key only into an empty table (the caller makes the check and the insert atomic).
pub(super) const INSERT_FIRST_KEY: &str = "insert into api_keys (id, secret_hash, name, role, owner, created_at) \
     select $1, $2, $3, $4, $5, $6 where not exists (select 1 from api_keys)";
