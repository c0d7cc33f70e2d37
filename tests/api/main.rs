//! All integration tests in one binary (one link step). Each module runs its tests on SQLite and PostgreSQL.

mod helpers;

mod access;
mod backup;
mod cli;
mod concurrency;
mod errors;
mod events;
mod faults;
mod history;
mod holds;
mod idempotency;
mod input;
mod limits;
mod memos;
mod observability;
mod readme;
mod routes;
mod web_access;
mod web_holds;
mod webhooks;
