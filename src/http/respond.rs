//! Turns the outcome of a write into a response, so that a first answer and its replay are rendered by the same
//! code, byte for byte.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::idempotency::Ran;
use crate::store::StoredResponse;

pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// Renders a JSON body with a status (and a `Location` for created resources).
pub fn json_response<T: Serialize>(
    status: StatusCode,
    location: Option<String>,
    body: &T,
) -> StoredResponse {
    StoredResponse {
        status: status.as_u16(),
        location,
        // Serialising our own response types cannot fail: they hold only strings and numbers.
        body: serde_json::to_string(body).unwrap_or_default(),
    }
}

/// The response of a write that ran now, or the stored one (marked `Idempotent-Replayed`) of one that ran before.
pub fn answer<T>(ran: Ran<T>, render: &dyn Fn(&T) -> StoredResponse) -> Response {
    match ran {
        Ran::Done(outcome) => response(render(&outcome)),
        Ran::Replayed(stored) => {
            let mut response = response(stored);
            response
                .headers_mut()
                .insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
            response
        }
    }
}

fn response(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    // Every error body of the API is problem JSON, stored declines included.
    let content_type = if status.is_client_error() || status.is_server_error() {
        "application/problem+json"
    } else {
        "application/json"
    };
    let mut response = if stored.body.is_empty() {
        status.into_response()
    } else {
        (status, [(header::CONTENT_TYPE, content_type)], stored.body).into_response()
    };
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
