//! The wallet API under `/wallet`: the original project's routes plus history, transfers and paging.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::body::{AmountText, IdText, JsonBody};
use super::error::{ApiError, Problem, Result};
use super::respond::{json_response, once, to_response};
use crate::domain::{Currency, LedgerEntryKind, Owner, WalletId};
use crate::store::{LedgerEntry, Movement, StoredResponse, Transfer, Wallet, WalletFilter};

pub const DEFAULT_PAGE: u32 = 100;
pub const MAX_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWalletRequest {
    #[schema(example = "test2")]
    pub owner: String,
    /// ISO 4217 code, any case.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Decimal string or JSON number; defaults to 0. (`balance` is accepted as an alias.)
    #[serde(default, alias = "balance")]
    #[schema(value_type = Option<String>, example = "999.00")]
    pub initial_balance: Option<AmountText>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveMoneyRequest {
    /// Wallet id, as a string or a number.
    #[schema(value_type = String, example = "1")]
    pub id: IdText,
    /// Decimal string or JSON number, > 0, with at most the currency's decimals.
    #[schema(value_type = String, example = "100.00")]
    pub amount: AmountText,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    #[schema(value_type = String, example = "1")]
    pub from_id: IdText,
    #[schema(value_type = String, example = "2")]
    pub to_id: IdText,
    #[schema(value_type = String, example = "25.00")]
    pub amount: AmountText,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransactionResponse {
    #[schema(example = "17")]
    pub id: String,
    #[schema(example = "1")]
    pub wallet_id: String,
    #[serde(rename = "type")]
    pub kind: LedgerEntryKind,
    #[schema(example = "100.00")]
    pub amount: String,
    #[schema(example = "1099.00")]
    pub balance_after: String,
    /// The other wallet of a transfer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterparty_id: Option<String>,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletResponse {
    #[schema(example = "1")]
    pub id: String,
    #[schema(example = "test2")]
    pub owner: String,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(example = "999.00")]
    pub balance: String,
    #[schema(example = "2026-11-26T19:00:00Z")]
    pub created_at: String,
    /// The ledger entry the operation wrote (on writes only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transaction: Option<TransactionResponse>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub from: WalletResponse,
    pub to: WalletResponse,
}

fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl WalletResponse {
    pub fn new(wallet: &Wallet, entry: Option<&LedgerEntry>) -> Self {
        Self {
            id: wallet.id.to_string(),
            owner: wallet.owner.clone(),
            currency: wallet.currency.code().to_owned(),
            balance: wallet.balance.format(wallet.currency),
            created_at: timestamp(wallet.created_at),
            transaction: entry.map(|entry| TransactionResponse::new(entry, wallet.currency)),
        }
    }

    fn of_movement(movement: &Movement) -> Self {
        Self::new(&movement.wallet, Some(&movement.entry))
    }
}

impl TransactionResponse {
    pub fn new(entry: &LedgerEntry, currency: Currency) -> Self {
        Self {
            id: entry.id.to_string(),
            wallet_id: entry.wallet_id.to_string(),
            kind: entry.kind,
            amount: entry.amount.format(currency),
            balance_after: entry.balance_after.format(currency),
            counterparty_id: entry.counterparty_id.map(|id| id.to_string()),
            created_at: timestamp(entry.created_at),
        }
    }
}

fn path_id(id: &str) -> Result<WalletId> {
    Ok(WalletId::parse(id)?)
}

/// Counts a money operation by type, currency and outcome, and the volume of the successful ones,
/// and logs refused ones with their wallet, amount and reason.
fn observe_operation(
    kind: &'static str,
    currency: Option<Currency>,
    amount: i64,
    error: Option<&ApiError>,
) {
    let outcome = error.map_or("ok", ApiError::outcome);
    crate::telemetry::record_operation(kind, currency, amount, outcome);
    if let Some(error) = error {
        let currency = currency.map_or("unknown", |c| c.code());
        tracing::info!(operation = kind, currency, outcome, detail = %error, "operation refused");
    }
}

/// What an operation handler learns as it goes, for its metrics once it is answered.
struct OperationLabels {
    kind: &'static str,
    currency: Option<Currency>,
    amount: i64,
}

impl OperationLabels {
    fn new(kind: &'static str) -> Self {
        Self {
            kind,
            currency: None,
            amount: 0,
        }
    }

    fn observe(self, result: Result<Response>) -> Result<Response> {
        observe_operation(self.kind, self.currency, self.amount, result.as_ref().err());
        result
    }
}

/// Create a wallet (the original API's `POST /wallet/`).
#[utoipa::path(post, path = "/wallet/", tag = "wallets", request_body = CreateWalletRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = WalletResponse, headers(("Location" = String))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn create_wallet(
    State(app): State<AppState>,
    request: JsonBody<CreateWalletRequest>,
) -> Result<Response> {
    let mut op = OperationLabels::new("open");
    let result = async {
        let body = &request.value;
        let owner = Owner::parse(&body.owner)?;
        let code = *op.currency.insert(Currency::parse(&body.currency)?);
        let initial = match &body.initial_balance {
            Some(text) => text.non_negative(code)?,
            None => crate::domain::Amount::ZERO,
        };
        op.amount = initial.minor_units();
        let render = |created: &Movement| {
            let location = format!("/wallet/{}", created.wallet.id);
            json_response(StatusCode::CREATED, Some(location), &WalletResponse::of_movement(created))
        };
        let store = &app.store;
        once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let created = store.create_wallet(owner.as_ref(), code, initial, finish).await?;
            tracing::info!(wallet_id = %created.wallet.id, currency = %code, amount = %initial.format(code), "wallet opened");
            Ok(created)
        })
        .await
    }
    .await;
    op.observe(result)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListWalletsQuery {
    /// Only wallets of this owner (exact match).
    pub owner: Option<String>,
    /// Only wallets in this currency.
    pub currency: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// Cursor: only wallets with a larger id (from the `Link: rel="next"` header).
    pub after: Option<String>,
}

fn page_size(limit: Option<&str>) -> Result<u32> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
            _ => Err(ApiError::InvalidRequest(format!(
                "limit must be an integer from 1 to {MAX_PAGE}"
            ))),
        },
    }
}

fn cursor(text: Option<&str>, name: &str) -> Result<Option<i64>> {
    text.map(|t| {
        t.parse::<i64>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ApiError::InvalidRequest(format!("{name} must be a positive integer")))
    })
    .transpose()
}

fn link_next(path: &str, pairs: &[(&str, String)]) -> HeaderValue {
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    HeaderValue::from_str(&format!("<{path}?{query}>; rel=\"next\""))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// List open wallets, oldest first, a page at a time.
#[utoipa::path(get, path = "/wallet/", tag = "wallets", params(ListWalletsQuery),
    responses((status = 200, body = [WalletResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_wallets(
    State(app): State<AppState>,
    query: Query<ListWalletsQuery>,
) -> Result<Response> {
    let limit = page_size(query.limit.as_deref())?;
    let currency = query.currency.as_deref().map(Currency::parse).transpose()?;
    let filter = WalletFilter {
        owner: query.owner.as_deref().map(str::trim).map(str::to_owned),
        currency,
        after: cursor(query.after.as_deref(), "after")?.map(WalletId::from_db),
        limit: limit + 1,
    };
    let mut wallets = app.store.list_wallets(&filter).await?;
    let more = wallets.len() > limit as usize;
    wallets.truncate(limit as usize);
    let body: Vec<WalletResponse> = wallets
        .iter()
        .map(|w| WalletResponse::new(w, None))
        .collect();
    let mut headers = HeaderMap::new();
    if let (true, Some(last)) = (more, wallets.last()) {
        let mut pairs = vec![("limit", limit.to_string()), ("after", last.id.to_string())];
        pairs.extend(filter.owner.map(|o| ("owner", o)));
        pairs.extend(currency.map(|c| ("currency", c.code().to_owned())));
        headers.insert(header::LINK, link_next("/wallet/", &pairs));
    }
    Ok((headers, axum::Json(body)).into_response())
}

/// One wallet; also served at the original API's `GET /wallet/balance/{id}`.
#[utoipa::path(get, path = "/wallet/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = WalletResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_wallet(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<axum::Json<WalletResponse>> {
    let wallet = app.store.get_wallet(path_id(&id)?).await?;
    Ok(axum::Json(WalletResponse::new(&wallet, None)))
}

/// The original API's balance route: the same answer as `GET /wallet/{id}`.
#[utoipa::path(get, path = "/wallet/balance/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = WalletResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_balance(
    state: State<AppState>,
    id: Path<String>,
) -> Result<axum::Json<WalletResponse>> {
    get_wallet(state, id).await
}

async fn move_money(
    app: AppState,
    request: JsonBody<MoveMoneyRequest>,
    kind: LedgerEntryKind,
) -> Result<Response> {
    let label = match kind {
        LedgerEntryKind::Withdrawal => "withdrawal",
        _ => "deposit",
    };
    let mut op = OperationLabels::new(label);
    let result = async {
        let id = request.value.id.0;
        let code = *op.currency.insert(app.store.wallet_currency(id).await?);
        let amount = request.value.amount.positive(code)?;
        op.amount = amount.minor_units();
        let render = |moved: &Movement| json_response(StatusCode::OK, None, &WalletResponse::of_movement(moved));
        let store = &app.store;
        once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let moved = match kind {
                LedgerEntryKind::Withdrawal => store.withdraw(id, amount, finish).await?,
                _ => store.deposit(id, amount, finish).await?,
            };
            tracing::info!(wallet_id = %id, operation = label, currency = %code, amount = %amount.format(code),
                balance = %moved.wallet.balance.format(code), "money moved");
            Ok(moved)
        })
        .await
    }
    .await;
    op.observe(result)
}

/// Deposit into a wallet.
#[utoipa::path(post, path = "/wallet/deposit", tag = "money", request_body = MoveMoneyRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WalletResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn deposit(
    State(app): State<AppState>,
    request: JsonBody<MoveMoneyRequest>,
) -> Result<Response> {
    move_money(app, request, LedgerEntryKind::Deposit).await
}

/// Withdraw from a wallet; 409 `insufficient_funds` if it holds less.
#[utoipa::path(post, path = "/wallet/withdraw", tag = "money", request_body = MoveMoneyRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WalletResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    State(app): State<AppState>,
    request: JsonBody<MoveMoneyRequest>,
) -> Result<Response> {
    move_money(app, request, LedgerEntryKind::Withdrawal).await
}

/// Move money between two wallets of the same currency, atomically.
#[utoipa::path(post, path = "/wallet/transfer", tag = "money", request_body = TransferRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = TransferResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn transfer(
    State(app): State<AppState>,
    request: JsonBody<TransferRequest>,
) -> Result<Response> {
    let mut op = OperationLabels::new("transfer");
    let result = async {
        let (from, to) = (request.value.from_id.0, request.value.to_id.0);
        if from == to {
            return Err(ApiError::InvalidRequest(
                "cannot transfer a wallet to itself".to_owned(),
            ));
        }
        let from_currency = *op.currency.insert(app.store.wallet_currency(from).await?);
        let to_currency = app.store.wallet_currency(to).await?;
        if from_currency != to_currency {
            return Err(ApiError::CurrencyMismatch {
                from,
                to,
                from_currency,
                to_currency,
            });
        }
        let amount = request.value.amount.positive(from_currency)?;
        op.amount = amount.minor_units();
        let render = |t: &Transfer| {
            let body = TransferResponse {
                from: WalletResponse::of_movement(&t.from),
                to: WalletResponse::of_movement(&t.to),
            };
            json_response(StatusCode::OK, None, &body)
        };
        let store = &app.store;
        once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let done = store.transfer(from, to, amount, finish).await?;
            tracing::info!(from_wallet_id = %from, to_wallet_id = %to, currency = %from_currency,
                amount = %amount.format(from_currency), "money transferred");
            Ok(done)
        })
        .await
    }
    .await;
    op.observe(result)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListTransactionsQuery {
    /// Page size, 1 to 1000 (default 100).
    pub limit: Option<String>,
    /// Cursor: only entries with a smaller id (from the `Link: rel="next"` header).
    pub before: Option<String>,
}

/// A wallet's ledger, newest first.
#[utoipa::path(get, path = "/wallet/{id}/transactions", tag = "wallets",
    params(("id" = String, Path), ListTransactionsQuery),
    responses((status = 200, body = [TransactionResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_transactions(
    State(app): State<AppState>,
    Path(id): Path<String>,
    query: Query<ListTransactionsQuery>,
) -> Result<Response> {
    let id = path_id(&id)?;
    let limit = page_size(query.limit.as_deref())?;
    let before = cursor(query.before.as_deref(), "before")?;
    let currency = app.store.wallet_currency(id).await?;
    let mut entries = app.store.history(id, before, limit + 1).await?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let body: Vec<TransactionResponse> = entries
        .iter()
        .map(|e| TransactionResponse::new(e, currency))
        .collect();
    let mut headers = HeaderMap::new();
    if let (true, Some(last)) = (more, entries.last()) {
        let pairs = [
            ("limit", limit.to_string()),
            ("before", last.id.to_string()),
        ];
        headers.insert(
            header::LINK,
            link_next(&format!("/wallet/{id}/transactions"), &pairs),
        );
    }
    Ok((headers, axum::Json(body)).into_response())
}

/// Close a wallet: what remains is paid out as a final `closing` entry; the id then answers 404.
#[utoipa::path(delete, path = "/wallet/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn close_wallet(State(app): State<AppState>, Path(id): Path<String>) -> Result<Response> {
    let mut op = OperationLabels::new("close");
    let result = async {
        let id = path_id(&id)?;
        op.currency = Some(app.store.wallet_currency(id).await?);
        let payout = app.store.close_wallet(id, None).await?;
        op.amount = payout
            .as_ref()
            .map_or(0, |entry| entry.amount.minor_units());
        tracing::info!(wallet_id = %id, paid_out = op.amount, "wallet closed");
        let stored = StoredResponse {
            status: StatusCode::NO_CONTENT.as_u16(),
            location: None,
            body: String::new(),
        };
        Ok(to_response(stored, false))
    }
    .await;
    op.observe(result)
}
