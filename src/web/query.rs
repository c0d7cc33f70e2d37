//! Addresses of the pages: the path segment of a route, query parameters read leniently, links built with them,
//! and the fixed notices a redirect may ask for.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::response::Response;

use super::error::PageError;
use crate::state::AppState;

/// The `{id}` or `{file}` segment of a page's address, as text. A segment axum cannot read (bytes that are not
/// UTF-8 once percent-decoded) names no page: the HTML 404 page, never a plain-text 400.
pub struct Segment(pub String);

impl FromRequestParts<AppState> for Segment {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        match Path::<String>::from_request_parts(parts, app).await {
            Ok(Path(text)) => Ok(Self(text)),
            Err(_) => Err(PageError::NotFound.render(app)),
        }
    }
}

/// The notices a redirect may ask for. Only these fixed texts are ever shown: the query names one, it is
/// never echoed.
fn notice_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "created" => "Wallet created.",
        "deposited" => "Deposit recorded.",
        "withdrawn" => "Withdrawal recorded.",
        "transferred" => "Transfer completed.",
        "held" => "Hold placed.",
        "captured" => "Hold captured.",
        "voided" => "Hold voided.",
        "closed" => "Wallet closed. Its remaining balance was paid out and its history kept.",
        "pending" => {
            "That form was already sent and is still being processed. Check the history in a moment."
        }
        _ => return None,
    })
}

/// Query parameters, read leniently: a malformed or unknown parameter is ignored rather than refused.
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    pub fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn cursor(&self, name: &str) -> Option<i64> {
        self.get(name)
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|n| *n > 0)
    }

    pub fn notice(&self) -> Option<&'static str> {
        self.get("notice").and_then(notice_text)
    }
}

pub fn url_with(path: &str, pairs: &[(&str, &str)]) -> String {
    match serde_urlencoded::to_string(pairs) {
        Ok(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}
