//! Instants as revwallet shows them: RFC 3339, UTC, whole seconds (`2026-11-26T19:00:00Z`).

use chrono::{DateTime, SecondsFormat, Utc};

pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}
