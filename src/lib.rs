//! revwallet: an exact-money wallet service. The binary in `main.rs` only parses the command line;
//! everything else lives here so that tests can build the app without a process.

pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod store;
pub mod telemetry;
pub mod web;
