//! The wallet API under `/wallet`: the original project's routes (docs/api.md, "Compatibility") plus history,
//! transfers and paging.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::error::{ApiError, Problem, Result};
use super::extract::{ApiQuery, PathId};
use super::paging::{cursor, link_next, page_size};
use super::respond::{answer, json_response};
use super::schema::{
    CreateWalletRequest, ListTransactionsQuery, ListWalletsQuery, MoveMoneyRequest,
    TransactionResponse, TransferRequest, TransferResponse, WalletResponse,
};
use crate::domain::{Amount, Currency, Owner, WalletId};
use crate::idempotency::{Ran, run_once};
use crate::outcome::{Operation, OperationKind};
use crate::state::AppState;
use crate::store::{Movement, StoredResponse, Transfer, WalletFilter};

/// Counts the operation once it is answered (a replay ran before and is not counted again) and renders it.
pub(super) fn counted<T>(
    op: Operation,
    result: Result<Ran<T>>,
    render: &dyn Fn(&T) -> StoredResponse,
) -> Result<Response> {
    match &result {
        Ok(Ran::Done(_)) => op.succeeded(),
        Ok(Ran::Replayed(_)) => {}
        Err(error) => op.refused(error.kind(), error),
    }
    Ok(answer(result?, render))
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
    let mut op = Operation::new(OperationKind::Open);
    let render = |created: &Movement| {
        let location = format!("/wallet/{}", created.wallet.id);
        json_response(
            StatusCode::CREATED,
            Some(location),
            &WalletResponse::of_movement(created),
        )
    };
    let result = async {
        let body = &request.value;
        let owner = Owner::parse(&body.owner)?;
        let code = op.currency(Currency::parse(&body.currency)?);
        let initial = match &body.initial_balance {
            Some(text) => op.amount(text.non_negative(code)?),
            None => Amount::ZERO,
        };
        let store = &app.store;
        run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let created = store.create_wallet(owner.as_ref(), code, initial, finish).await?;
            tracing::info!(wallet_id = %created.wallet.id, currency = %code, amount = %initial.format(code), "wallet opened");
            Ok(created)
        })
        .await
    }
    .await;
    counted(op, result, &render)
}

/// List open wallets, oldest first, a page at a time.
#[utoipa::path(get, path = "/wallet/", tag = "wallets", params(ListWalletsQuery),
    responses((status = 200, body = [WalletResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_wallets(
    State(app): State<AppState>,
    ApiQuery(query): ApiQuery<ListWalletsQuery>,
) -> Result<Response> {
    let limit = page_size(query.limit.as_deref())?;
    let currency = query.currency.as_deref().map(Currency::parse).transpose()?;
    let owner = Owner::filter(query.owner.as_deref())?;
    let filter = WalletFilter {
        owner: owner.map(|owner| owner.as_ref().to_owned()),
        currency,
        after: cursor(query.after.as_deref(), "after")?.map(WalletId::from_db),
        limit,
    };
    let page = app.store.list_wallets(&filter).await?;
    let body: Vec<WalletResponse> = page
        .items
        .iter()
        .map(|w| WalletResponse::new(w, None))
        .collect();
    let next = page.next.map(|after| {
        let mut pairs = vec![("limit", limit.to_string()), ("after", after.to_string())];
        pairs.extend(filter.owner.map(|o| ("owner", o)));
        pairs.extend(currency.map(|c| ("currency", c.code().to_owned())));
        pairs
    });
    Ok((link_next("/wallet/", next), axum::Json(body)).into_response())
}

/// One wallet; also served at the original API's `GET /wallet/balance/{id}`.
#[utoipa::path(get, path = "/wallet/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = WalletResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_wallet(
    State(app): State<AppState>,
    PathId(id): PathId,
) -> Result<axum::Json<WalletResponse>> {
    let wallet = app.store.get_wallet(id).await?;
    Ok(axum::Json(WalletResponse::new(&wallet, None)))
}

/// The original API's balance route: the same answer as `GET /wallet/{id}`.
#[utoipa::path(get, path = "/wallet/balance/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 200, body = WalletResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_balance(state: State<AppState>, id: PathId) -> Result<axum::Json<WalletResponse>> {
    get_wallet(state, id).await
}

async fn move_money(
    app: AppState,
    request: JsonBody<MoveMoneyRequest>,
    kind: OperationKind,
) -> Result<Response> {
    let mut op = Operation::new(kind);
    let render =
        |moved: &Movement| json_response(StatusCode::OK, None, &WalletResponse::of_movement(moved));
    let result = async {
        let id = request.value.id.0;
        let code = op.currency(app.store.wallet_currency(id).await?);
        let amount = op.amount(request.value.amount.positive(code)?);
        let store = &app.store;
        run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let moved = match kind {
                OperationKind::Withdrawal => store.withdraw(id, amount, finish).await?,
                _ => store.deposit(id, amount, finish).await?,
            };
            tracing::info!(wallet_id = %id, operation = kind.label(), currency = %code, amount = %amount.format(code),
                balance = %moved.wallet.balance.format(code), "money moved");
            Ok(moved)
        })
        .await
    }
    .await;
    counted(op, result, &render)
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
    move_money(app, request, OperationKind::Deposit).await
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
    move_money(app, request, OperationKind::Withdrawal).await
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
    let mut op = Operation::new(OperationKind::Transfer);
    let render = |t: &Transfer| {
        let body = TransferResponse {
            from: WalletResponse::of_movement(&t.from),
            to: WalletResponse::of_movement(&t.to),
        };
        json_response(StatusCode::OK, None, &body)
    };
    let result = async {
        let (from, to) = (request.value.from_id.0, request.value.to_id.0);
        if from == to {
            return Err(ApiError::invalid_request(
                "cannot transfer a wallet to itself",
            ));
        }
        let from_currency = op.currency(app.store.wallet_currency(from).await?);
        let to_currency = app.store.wallet_currency(to).await?;
        if from_currency != to_currency {
            return Err(ApiError::currency_mismatch(
                from,
                to,
                (from_currency, to_currency),
            ));
        }
        let amount = op.amount(request.value.amount.positive(from_currency)?);
        let store = &app.store;
        run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let done = store.transfer(from, to, amount, finish).await?;
            tracing::info!(from_wallet_id = %from, to_wallet_id = %to, currency = %from_currency,
                amount = %amount.format(from_currency), "money transferred");
            Ok(done)
        })
        .await
    }
    .await;
    counted(op, result, &render)
}

/// A wallet's ledger, newest first.
#[utoipa::path(get, path = "/wallet/{id}/transactions", tag = "wallets",
    params(("id" = String, Path), ListTransactionsQuery),
    responses((status = 200, body = [TransactionResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_transactions(
    State(app): State<AppState>,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListTransactionsQuery>,
) -> Result<Response> {
    let limit = page_size(query.limit.as_deref())?;
    let before = cursor(query.before.as_deref(), "before")?;
    let currency = app.store.wallet_currency(id).await?;
    let page = app.store.history(id, before, limit).await?;
    let body: Vec<TransactionResponse> = page
        .items
        .iter()
        .map(|e| TransactionResponse::new(e, currency))
        .collect();
    let next = page
        .next
        .map(|before| vec![("limit", limit.to_string()), ("before", before.to_string())]);
    let path = format!("/wallet/{id}/transactions");
    Ok((link_next(&path, next), axum::Json(body)).into_response())
}

/// Close a wallet: what remains is paid out as a final `closing` entry; the id then answers 404.
#[utoipa::path(delete, path = "/wallet/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn close_wallet(State(app): State<AppState>, PathId(id): PathId) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Close);
    let result = async {
        op.currency(app.store.wallet_currency(id).await?);
        let payout = app.store.close_wallet(id, None).await?;
        if let Some(entry) = &payout {
            op.amount(entry.amount);
        }
        tracing::info!(wallet_id = %id, paid_out = payout.map_or(0, |e| e.amount.minor_units()), "wallet closed");
        Ok::<_, ApiError>(())
    }
    .await;
    match &result {
        Ok(()) => op.succeeded(),
        Err(error) => op.refused(error.kind(), error),
    }
    result.map(|()| StatusCode::NO_CONTENT.into_response())
}
