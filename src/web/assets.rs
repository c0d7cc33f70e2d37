//! The web app's static files, compiled into the binary so it runs from any directory and the container image
//! carries no asset files. Pages link them with a content hash (`?v=…`), so browsers may cache them for good.

use std::sync::LazyLock;

use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::query::Segment;

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    version: LazyLock<String>,
    url: LazyLock<String>,
}

macro_rules! asset {
    ($name:literal, $content_type:literal) => {
        Asset {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../static/", $name)),
            version: LazyLock::new(|| version_of(include_bytes!(concat!("../../static/", $name)))),
            url: LazyLock::new(|| {
                format!(
                    "/static/{}?v={}",
                    $name,
                    version_of(include_bytes!(concat!("../../static/", $name)))
                )
            }),
        }
    };
}

static ASSETS: [Asset; 2] = [
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

fn version_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    digest
        .iter()
        .take(8)
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

pub fn css_url() -> &'static str {
    ASSETS[0].url.as_str()
}

pub fn icon_url() -> &'static str {
    ASSETS[1].url.as_str()
}

/// `GET /static/{file}`: the embedded file, with a strong ETag; immutable when asked for by its current hash.
pub async fn serve_asset(
    Segment(file): Segment,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = ASSETS.iter().find(|asset| asset.name == file) else {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "not found\n",
        )
            .into_response();
    };
    let version = asset.version.as_str();
    let etag = format!("\"{version}\"");
    let cache = if query.as_deref() == Some(&format!("v={version}")) {
        "public, max-age=31536000, immutable"
    } else {
        // An old or missing hash: serve the current file, but let the browser check again soon.
        "public, max-age=300"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, asset.content_type)], asset.body).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, etag);
    }
    response
}
