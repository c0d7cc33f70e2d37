//! Paging parameters of the API's listings: the page size, the cursors, and the `Link: rel="next"` header.

use axum::http::{HeaderMap, HeaderValue, header};

use super::error::{ApiError, Result};

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

pub fn page_size(limit: Option<&str>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid_request(format!(
                "limit must be an integer from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

pub fn cursor(text: Option<&str>, name: &str) -> Result<Option<i64>> {
    text.map(|t| {
        t.parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::invalid_request(format!("{name} must be a positive integer")))
    })
    .transpose()
}

/// Headers with `Link: <path?query>; rel="next"` when there is a next page.
pub fn link_next(path: &str, next: Option<Vec<(&str, String)>>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(pairs) = next {
        let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
        if let Ok(value) = HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\"")) {
            headers.insert(header::LINK, value);
        }
    }
    headers
}
