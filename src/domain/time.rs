//! Instants as revwallet shows them: RFC 3339, UTC, whole seconds (`2026-11-26T19:00:00Z`).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{name} must be an RFC 3339 instant such as 2026-11-26T19:00:00Z (got {text:?})")]
pub struct InstantError {
    pub name: &'static str,
    pub text: String,
}

/// An instant as a query parameter gives it: RFC 3339 with an offset (`Z`, or `%2B01:00` in a URL, where a bare
/// `+` reads as a space).
pub fn parse_instant(name: &'static str, text: &str) -> Result<DateTime<Utc>, InstantError> {
    DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .map_err(|_| InstantError {
            name,
            text: text.to_owned(),
        })
}
