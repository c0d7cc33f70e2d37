//! Holds under `/wallet/holds`: reserve money now, capture it (as a withdrawal or into another wallet) or void it
//! later; a hold past its expiry releases itself (docs/adr/0100-holds-model.md).

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::body::{AmountText, IdText, JsonBody, keyed_bytes, scalar_text};
use super::error::{ApiError, Problem, Result};
use super::extract::{ApiQuery, PathId};
use super::paging::{cursor, link_next, page_size};
use super::respond::json_response;
use super::schema::{
    TransactionResponse, TransferTarget, WalletResponse, WithMemo, metadata_json, with_memo,
};
use super::wallets::{counted, visible};
use crate::auth::Caller;
use crate::domain::{Currency, HoldId, HoldLifetime, HoldStatus, WalletId, rfc3339};
use crate::idempotency::run_once;
use crate::outcome::{Operation, OperationKind, ProblemKind};
use crate::state::AppState;
use crate::store::{Capture, Hold, HoldFacts, Render};
use serde_json::value::RawValue;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceHoldRequest {
    #[schema(value_type = String, example = "1")]
    pub wallet_id: IdText,
    /// Decimal string or JSON number, > 0, at most what the wallet has available.
    #[schema(value_type = String, example = "25.00")]
    pub amount: AmountText,
    /// Seconds until the hold releases itself, 1 to 2592000 (default 604800, a week).
    #[serde(default)]
    #[schema(value_type = Option<u32>, example = 3600)]
    pub expires_in: Option<SecondsText>,
    /// The caller's own id for the operation: 1–128 characters, no control characters, no edge whitespace.
    #[serde(default)]
    #[schema(example = "invoice-2026-0042")]
    pub reference: Option<String>,
    /// Up to 500 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[schema(example = "May rent")]
    pub description: Option<String>,
    /// At most 32 string keys (1–64 characters) to string values (up to 500), at most 8 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaptureHoldRequest {
    /// What to take, at most the hold (default: all of it); the rest is released.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "20.00")]
    pub amount: Option<AmountText>,
    /// Pay the capture into this wallet (same currency) instead of withdrawing it.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "2")]
    pub to_id: Option<IdText>,
    /// The caller's own id for the capture (on its ledger entries): 1–128 characters, no control characters, no edge whitespace.
    #[serde(default)]
    #[schema(example = "invoice-2026-0042")]
    pub reference: Option<String>,
    /// Up to 500 characters; line breaks and tabs allowed.
    #[serde(default)]
    #[schema(example = "May rent")]
    pub description: Option<String>,
    /// At most 32 string keys (1–64 characters) to string values (up to 500), at most 8 KiB as JSON.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Value>,
}

/// A void takes no parameters: `{}` or no body at all.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidHoldRequest {}

/// Seconds as the client wrote them, a JSON number or string.
#[derive(Debug, Clone)]
pub struct SecondsText(String);

impl<'de> Deserialize<'de> for SecondsText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        scalar_text(deserializer, "expires_in").map(Self)
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldResponse {
    #[schema(example = "5")]
    pub id: String,
    #[schema(example = "1")]
    pub wallet_id: String,
    #[schema(example = "25.00")]
    pub amount: String,
    /// `pending`, `captured`, `voided` or `expired` (a pending hold past `expires_at` reads `expired`).
    #[schema(value_type = String, example = "pending")]
    pub status: HoldStatus,
    /// What the capture took (captured holds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "20.00")]
    pub captured: Option<String>,
    #[schema(example = "2026-12-03T19:00:00Z")]
    pub expires_at: String,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The metadata object as given (keys sorted).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<Box<RawValue>>,
}

with_memo!(PlaceHoldRequest, CaptureHoldRequest);

impl HoldResponse {
    pub fn new(hold: &Hold, currency: Currency) -> Self {
        Self {
            id: hold.id.to_string(),
            wallet_id: hold.wallet_id.to_string(),
            amount: hold.amount.format(currency),
            status: hold.status,
            captured: hold.captured.map(|c| c.format(currency)),
            expires_at: rfc3339(hold.expires_at),
            created_at: rfc3339(hold.created_at),
            reference: hold.reference.clone(),
            description: hold.description.clone(),
            metadata: metadata_json(hold.metadata.as_deref()),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CaptureResponse {
    pub hold: HoldResponse,
    /// The entry that took the money out of the hold's wallet (`withdrawal` or `transfer_out`).
    pub transaction: TransactionResponse,
    /// The hold's wallet after the capture.
    pub wallet: WalletResponse,
    /// The wallet the capture was paid into, with its `transfer_in` entry; only its `id` when it belongs to an
    /// owner the key may not see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<TransferTarget>,
}

impl CaptureResponse {
    fn new(capture: &Capture, caller: &Caller) -> Self {
        let currency = capture.from.wallet.currency;
        Self {
            hold: HoldResponse::new(&capture.hold, currency),
            transaction: TransactionResponse::new(&capture.from.entry, currency),
            wallet: WalletResponse::new(&capture.from.wallet, None),
            to: capture.to.as_ref().map(|to| TransferTarget::of(to, caller)),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListHoldsQuery {
    /// Only holds with this status (`pending`, `captured`, `voided`, `expired`).
    pub status: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// Cursor: only holds with a smaller id (from the `Link: rel="next"` header).
    pub before: Option<String>,
}

/// The `{id}` of a hold's path; anything that is not a hold id names no hold: 404.
pub struct PathHoldId(pub HoldId);

impl<S: Send + Sync> FromRequestParts<S> for PathHoldId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let not_found = || ApiError::new(ProblemKind::NotFound, "no such hold");
        let Path(text) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| not_found())?;
        HoldId::parse(&text).map(Self).map_err(|_| not_found())
    }
}

/// A body that may be absent: no `Content-Type` and nothing sent reads as `{}`; anything else is a JSON body.
pub struct OptionalJsonBody<T>(pub JsonBody<T>);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Default> FromRequest<S>
    for OptionalJsonBody<T>
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        if request.headers().contains_key(header::CONTENT_TYPE) {
            return JsonBody::from_request(request, state).await.map(Self);
        }
        let (bytes, idempotency) = keyed_bytes(request, state).await?;
        if !bytes.is_empty() {
            return Err(ProblemKind::UnsupportedMediaType.into());
        }
        Ok(Self(JsonBody {
            value: T::default(),
            idempotency,
        }))
    }
}

fn hold_response(
    status: StatusCode,
    hold: &Hold,
    currency: Currency,
) -> crate::store::StoredResponse {
    let location = (status == StatusCode::CREATED).then(|| format!("/wallet/holds/{}", hold.id));
    json_response(status, location, &HoldResponse::new(hold, currency))
}

/// Place a hold: reserve part of a wallet's available money; 409 `insufficient_funds` if it has less.
#[utoipa::path(post, path = "/wallet/holds", tag = "holds", request_body = PlaceHoldRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = HoldResponse, headers(("Location" = String))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn place_hold(
    State(app): State<AppState>,
    caller: Caller,
    request: JsonBody<PlaceHoldRequest>,
) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Hold);
    let prepared = async {
        let body = &request.value;
        let wallet = body.wallet_id.0;
        let code = op.currency(visible(&app, &caller, wallet).await?.currency);
        let amount = op.amount(body.amount.positive(code)?);
        let lifetime = match &body.expires_in {
            Some(SecondsText(text)) => HoldLifetime::parse(text)
                .map_err(|error| ApiError::invalid_request(error.to_string()))?,
            None => HoldLifetime::DEFAULT,
        };
        let memo = body.memo(caller.actor())?;
        Ok::<_, ApiError>((wallet, code, amount, lifetime, memo))
    }
    .await;
    let (wallet, code, amount, lifetime, memo) = match prepared {
        Ok(prepared) => prepared,
        Err(error) => return refused(op, error),
    };
    let render: Render<Hold> =
        Arc::new(move |hold: &Hold| hold_response(StatusCode::CREATED, hold, code));
    let (store, memo) = (&app.store, &memo);
    let result = run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
        let lifetime_seconds = chrono::TimeDelta::seconds(i64::from(lifetime.seconds()));
        let expires_at = chrono::Utc::now() + lifetime_seconds;
        let hold = store.place_hold(wallet, amount, expires_at, memo, finish).await?;
        tracing::info!(hold_id = %hold.id, wallet_id = %wallet, currency = %code, amount = %amount.format(code),
            expires_in = lifetime.seconds(), "hold placed");
        Ok(hold)
    })
    .await;
    counted(op, result, &*render)
}

/// Counts an operation refused before it reached the store.
fn refused(op: Operation, error: ApiError) -> Result<Response> {
    op.refused(error.kind(), &error);
    Err(error)
}

/// One hold.
#[utoipa::path(get, path = "/wallet/holds/{id}", tag = "holds", params(("id" = String, Path)),
    responses((status = 200, body = HoldResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_hold(
    State(app): State<AppState>,
    caller: Caller,
    PathHoldId(id): PathHoldId,
) -> Result<axum::Json<HoldResponse>> {
    let (hold, currency) = visible_hold(&app, &caller, id).await?;
    Ok(axum::Json(HoldResponse::new(&hold, currency)))
}

/// A hold and its wallet's currency, if the caller may see the wallet: another owner's hold is a missing one.
async fn visible_hold(app: &AppState, caller: &Caller, id: HoldId) -> Result<(Hold, Currency)> {
    let hold = app.store.get_hold(id).await?;
    let currency = hold_currency(app, caller, id, hold.wallet_id).await?;
    Ok((hold, currency))
}

/// A hold's wallet and amount (cached: capturing or voiding a hold this process placed reads nothing first)
/// and its wallet's currency, if the caller may see the wallet.
async fn visible_hold_facts(
    app: &AppState,
    caller: &Caller,
    id: HoldId,
) -> Result<(HoldFacts, Currency)> {
    let hold = app.store.hold_facts(id).await?;
    let currency = hold_currency(app, caller, id, hold.wallet_id).await?;
    Ok((hold, currency))
}

async fn hold_currency(
    app: &AppState,
    caller: &Caller,
    id: HoldId,
    wallet: WalletId,
) -> Result<Currency> {
    match visible(app, caller, wallet).await {
        Ok(facts) => Ok(facts.currency),
        Err(_) => Err(ApiError::from(crate::store::StoreError::HoldNotFound(id))),
    }
}

/// A wallet's holds, newest first, optionally of one status.
#[utoipa::path(get, path = "/wallet/{id}/holds", tag = "holds", params(("id" = String, Path), ListHoldsQuery),
    responses((status = 200, body = [HoldResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_holds(
    State(app): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListHoldsQuery>,
) -> Result<Response> {
    let limit = page_size(query.limit.as_deref())?;
    let before = cursor(query.before.as_deref(), "before")?;
    let status = match query.status.as_deref() {
        None | Some("") => None,
        Some(text) => Some(HoldStatus::parse(text).ok_or_else(|| {
            ApiError::invalid_request("status must be pending, captured, voided or expired")
        })?),
    };
    let currency = visible(&app, &caller, id).await?.currency;
    let page = app.store.list_holds(id, status, before, limit).await?;
    let body: Vec<HoldResponse> = page
        .items
        .iter()
        .map(|h| HoldResponse::new(h, currency))
        .collect();
    let next = page.next.map(|before| {
        let mut pairs = vec![("limit", limit.to_string()), ("before", before.to_string())];
        pairs.extend(status.map(|s| ("status", s.as_str().to_owned())));
        pairs
    });
    let path = format!("/wallet/{id}/holds");
    Ok((link_next(&path, next), axum::Json(body)).into_response())
}

/// Capture a pending hold, whole or in part, as a withdrawal or into another wallet; the rest is released.
#[utoipa::path(post, path = "/wallet/holds/{id}/capture", tag = "holds", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = CaptureHoldRequest,
    responses((status = 200, body = CaptureResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn capture_hold(
    State(app): State<AppState>,
    caller: Caller,
    PathHoldId(id): PathHoldId,
    OptionalJsonBody(request): OptionalJsonBody<CaptureHoldRequest>,
) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Capture);
    let render: Render<Capture> = {
        let caller = caller.clone();
        Arc::new(move |capture: &Capture| {
            json_response(
                StatusCode::OK,
                None,
                &CaptureResponse::new(capture, &caller),
            )
        })
    };
    let result = async {
        let memo = request.value.memo(caller.actor())?;
        let (hold, code) = visible_hold_facts(&app, &caller, id).await?;
        let code = op.currency(code);
        let amount = match &request.value.amount {
            Some(text) => text.positive(code)?,
            None => hold.amount,
        };
        // A finished hold is 409 whatever the amount (SPEC §9): the store says so, under the idempotency key, so a
        // repeated capture still replays its first answer. Only then does the status need reading here.
        if amount > hold.amount && app.store.get_hold(id).await?.status == HoldStatus::Pending {
            return Err(ApiError::new(
                ProblemKind::InvalidAmount,
                format!("hold {id} reserved {} {code}; cannot capture {} {code}", hold.amount.format(code), amount.format(code)),
            ));
        }
        op.amount(amount);
        let to = request.value.to_id.map(|to| to.0);
        if let Some(to) = to {
            if to == hold.wallet_id {
                return Err(ApiError::invalid_request("cannot capture a hold into its own wallet"));
            }
            let to_currency = app.store.wallet_currency(to).await?;
            if to_currency != code {
                return Err(ApiError::currency_mismatch(hold.wallet_id, to, (code, to_currency)));
            }
        }
        let (store, memo, actor) = (&app.store, &memo, caller.actor());
        run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let capture = store.capture_hold(id, amount, to, memo, finish).await?;
            tracing::info!(hold_id = %id, wallet_id = %capture.hold.wallet_id, currency = %code,
                amount = %amount.format(code), to_wallet_id = ?to.map(|t| t.get()), actor, "hold captured");
            Ok(capture)
        })
        .await
    }
    .await;
    counted(op, result, &*render)
}

/// Void a pending hold: its whole amount is available again.
#[utoipa::path(post, path = "/wallet/holds/{id}/void", tag = "holds", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body(content = Option<VoidHoldRequest>, description = "`{}` or no body"),
    responses((status = 200, body = HoldResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn void_hold(
    State(app): State<AppState>,
    caller: Caller,
    PathHoldId(id): PathHoldId,
    OptionalJsonBody(request): OptionalJsonBody<VoidHoldRequest>,
) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Void);
    let prepared = async {
        let (_, code) = visible_hold_facts(&app, &caller, id).await?;
        Ok::<_, ApiError>(op.currency(code))
    }
    .await;
    let code = match prepared {
        Ok(code) => code,
        Err(error) => return refused(op, error),
    };
    let render: Render<Hold> =
        Arc::new(move |hold: &Hold| hold_response(StatusCode::OK, hold, code));
    let store = &app.store;
    let result = run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
        let voided = store.void_hold(id, finish).await?;
        tracing::info!(hold_id = %id, wallet_id = %voided.wallet_id, currency = %code, "hold voided");
        Ok(voided)
    })
    .await;
    counted(op, result, &*render)
}
