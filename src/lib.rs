//! revwallet: an exact-money wallet service. The binary in `main.rs` only parses the command line;
//! everything else lives here so that tests can build the app without a process.
//!
//! Layers, each depending only on those after it: `cli` → `app` → {`http`, `web`} → {`state`, `idempotency`,
//! `outcome`, `auth`} → `store` → `domain` (see docs/architecture.md).

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod idempotency;
pub mod outcome;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod web;
pub mod webhooks;
