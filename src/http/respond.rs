//! Runs a write once per `Idempotency-Key` and turns outcomes into responses, so that a first answer and its
//! replay are rendered by the same code, byte for byte.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::body::IdempotencyRequest;
use super::error::Result;
use crate::store::{Claim, Finish, Store, StoredResponse};

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

pub fn to_response(stored: StoredResponse, replayed: bool) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = if stored.body.is_empty() {
        status.into_response()
    } else {
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            stored.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    if let Some(location) = stored.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
        headers.insert(header::LOCATION, location);
    }
    if replayed {
        headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

/// Executes `operation` at most once per idempotency key. Without a key it simply runs. With one, the first
/// request claims the key and its response is stored in the operation's own transaction; repeats replay it.
/// A failed operation changed nothing, so its claim is released and the client may retry with the same key.
pub async fn once<'a, T, F, Fut>(
    store: &Store,
    idempotency: Option<&'a IdempotencyRequest>,
    render: &'a (dyn Fn(&T) -> StoredResponse + Send + Sync),
    operation: F,
) -> Result<Response>
where
    F: FnOnce(Option<Finish<'a, T>>) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let Some(request) = idempotency else {
        let outcome = operation(None).await?;
        return Ok(to_response(render(&outcome), false));
    };
    match store
        .claim_idempotency_key(&request.key, &request.request_hash)
        .await?
    {
        Claim::Replay(stored) => {
            metrics::counter!("revwallet_idempotent_replays_total").increment(1);
            Ok(to_response(stored, true))
        }
        Claim::New => {
            let finish = Finish {
                key: &request.key,
                render,
            };
            match operation(Some(finish)).await {
                Ok(outcome) => Ok(to_response(render(&outcome), false)),
                Err(error) => {
                    // Released before answering, so an immediate retry finds the key free; but during an outage
                    // the release itself waits for a connection, so the answer waits at most a second and the
                    // release goes on alone. Unreleased, the claim is taken over after ABANDONED_CLAIM_AFTER.
                    let (store, key) = (store.clone(), request.key.clone());
                    let release = tokio::spawn(async move {
                        if let Err(release) = store.release_idempotency_key(&key).await {
                            tracing::warn!(error = %release, "could not release idempotency key");
                        }
                    });
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), release).await;
                    Err(error)
                }
            }
        }
    }
}
