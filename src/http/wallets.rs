//! The wallet API under `/wallet`: the original project's routes (docs/api.md, "Compatibility") plus history,
//! transfers and paging.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::body::JsonBody;
use super::error::{ApiError, Problem, Result};
use super::extract::{ApiQuery, PathId};
use super::paging::{cursor, link_next, page_size};
use super::respond::{answer, json_response};
use super::schema::{
    CreateWalletRequest, GetWalletQuery, ListTransactionsQuery, ListWalletsQuery, MoveMoneyRequest,
    TransactionResponse, TransferRequest, TransferResponse, TransferTarget, WalletAsOfResponse,
    WalletResponse, WithMemo,
};
use crate::auth::Caller;
use chrono::{DateTime, Utc};

use crate::domain::{
    Amount, Currency, LedgerEntryKind, Owner, Reference, WalletId, parse_instant, rfc3339,
};
use crate::idempotency::{Ran, run_once};
use crate::outcome::{Operation, OperationKind, ProblemKind};
use crate::state::AppState;
use crate::store::{
    HistoryFilter, Memo, Movement, Render, StoredResponse, Transfer, WalletFacts, WalletFilter,
};

/// A wallet's currency and owner, if the caller may see it: another owner's wallet is as absent as an unknown one.
pub(super) async fn visible(app: &AppState, caller: &Caller, id: WalletId) -> Result<WalletFacts> {
    let facts = app.store.wallet_facts(id).await?;
    if caller.sees(&facts.owner) {
        Ok(facts)
    } else {
        Err(ApiError::wallet_not_found(id))
    }
}

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
    caller: Caller,
    request: JsonBody<CreateWalletRequest>,
) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Open);
    let render: Render<Movement> = Arc::new(|created: &Movement| {
        let location = format!("/wallet/{}", created.wallet.id);
        json_response(
            StatusCode::CREATED,
            Some(location),
            &WalletResponse::of_movement(created),
        )
    });
    let result = async {
        let body = &request.value;
        let owner = Owner::parse(&body.owner)?;
        if !caller.sees(owner.as_ref()) {
            return Err(ApiError::new(
                ProblemKind::Forbidden,
                "this key may open wallets only for its own owner",
            ));
        }
        let code = op.currency(Currency::parse(&body.currency)?);
        let initial = match &body.initial_balance {
            Some(text) => op.amount(text.non_negative(code)?),
            None => Amount::ZERO,
        };
        let memo = body.memo(caller.actor())?;
        let (store, memo) = (&app.store, &memo);
        run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            let created = store.create_wallet(owner.as_ref(), code, initial, memo, finish).await?;
            tracing::info!(wallet_id = %created.wallet.id, currency = %code, amount = %initial.format(code), "wallet opened");
            Ok(created)
        })
        .await
    }
    .await;
    counted(op, result, &*render)
}

/// List open wallets, oldest first, a page at a time.
#[utoipa::path(get, path = "/wallet/", tag = "wallets", params(ListWalletsQuery),
    responses((status = 200, body = [WalletResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_wallets(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(query): ApiQuery<ListWalletsQuery>,
) -> Result<Response> {
    let limit = page_size(query.limit.as_deref())?;
    let currency = query.currency.as_deref().map(Currency::parse).transpose()?;
    let asked = Owner::filter(query.owner.as_deref())?.map(|owner| owner.as_ref().to_owned());
    // An owner-bound key lists its owner's wallets; asking for another owner finds none.
    let owner = match (caller.owner(), asked) {
        (Some(bound), Some(asked)) if bound != asked => {
            return Ok(axum::Json(json_empty()).into_response());
        }
        (Some(bound), _) => Some(bound.to_owned()),
        (None, asked) => asked,
    };
    let filter = WalletFilter {
        owner,
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

fn json_empty() -> Vec<WalletResponse> {
    Vec::new()
}

/// One wallet; also served at the original API's `GET /wallet/balance/{id}`. With `as_of`, the balance it had at
/// that instant, from the ledger (404 before the wallet existed).
#[utoipa::path(get, path = "/wallet/{id}", tag = "wallets", params(("id" = String, Path), GetWalletQuery),
    responses((status = 200, body = WalletResponse), (status = "2XX", body = WalletAsOfResponse,
            description = "with `as_of`"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_wallet(
    State(app): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<GetWalletQuery>,
) -> Result<Response> {
    let as_of = query
        .as_of
        .as_deref()
        .map(|text| parse_instant("as_of", text))
        .transpose()?;
    let wallet = app.store.get_wallet(id).await?;
    if !caller.sees(&wallet.owner) {
        return Err(ApiError::wallet_not_found(id));
    }
    let Some(at) = as_of else {
        return Ok(axum::Json(WalletResponse::new(&wallet, None)).into_response());
    };
    if at < wallet.created_at {
        return Err(ApiError::new(
            ProblemKind::WalletNotFound,
            format!("wallet {id} did not exist at {}", rfc3339(at)),
        ));
    }
    // One probe of (wallet_id, created_at): the last entry at or before the instant.
    let balance = match app.store.entry_as_of(id, at, true).await? {
        Some(entry) => entry.balance_after,
        None => Amount::ZERO,
    };
    Ok(axum::Json(WalletAsOfResponse {
        id: wallet.id.to_string(),
        owner: wallet.owner,
        currency: wallet.currency.code().to_owned(),
        balance: balance.format(wallet.currency),
        created_at: rfc3339(wallet.created_at),
        as_of: rfc3339(at),
    })
    .into_response())
}

/// The original API's balance route: the same answer as `GET /wallet/{id}`.
#[utoipa::path(get, path = "/wallet/balance/{id}", tag = "wallets", params(("id" = String, Path), GetWalletQuery),
    responses((status = 200, body = WalletResponse),
        (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn get_balance(
    state: State<AppState>,
    caller: Caller,
    id: PathId,
    query: ApiQuery<GetWalletQuery>,
) -> Result<Response> {
    get_wallet(state, caller, id, query).await
}

async fn move_money(
    app: AppState,
    caller: Caller,
    request: JsonBody<MoveMoneyRequest>,
    kind: OperationKind,
) -> Result<Response> {
    let mut op = Operation::new(kind);
    let render: Render<Movement> = Arc::new(|moved: &Movement| {
        json_response(StatusCode::OK, None, &WalletResponse::of_movement(moved))
    });
    let memo = match request.value.memo(caller.actor()) {
        Ok(memo) => memo,
        Err(error) => return counted(op, Err(error), &*render),
    };
    let (store, actor, op_ref, memo) = (&app.store, caller.actor(), &mut op, &memo);
    let (app, caller, body) = (&app, &caller, &request.value);
    let result = run_once(store, request.idempotency.as_ref(), &render, move |finish| async move {
            // Looked up under the key: an unknown wallet is a decline, kept and replayed like one.
            let id = body.id.0;
            let code = op_ref.currency(visible(app, caller, id).await?.currency);
            let amount = op_ref.amount(body.amount.positive(code)?);
            let moved = match kind {
                OperationKind::Withdrawal => store.withdraw(id, amount, memo, finish).await?,
                _ => store.deposit(id, amount, memo, finish).await?,
            };
            tracing::info!(wallet_id = %id, operation = kind.label(), currency = %code, amount = %amount.format(code),
                balance = %moved.wallet.balance.format(code), actor, "money moved");
            Ok(moved)
        })
        .await;
    counted(op, result, &*render)
}

/// Deposit into a wallet.
#[utoipa::path(post, path = "/wallet/deposit", tag = "money", request_body = MoveMoneyRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WalletResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn deposit(
    State(app): State<AppState>,
    caller: Caller,
    request: JsonBody<MoveMoneyRequest>,
) -> Result<Response> {
    move_money(app, caller, request, OperationKind::Deposit).await
}

/// Withdraw from a wallet; 409 `insufficient_funds` if it holds less.
#[utoipa::path(post, path = "/wallet/withdraw", tag = "money", request_body = MoveMoneyRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = WalletResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn withdraw(
    State(app): State<AppState>,
    caller: Caller,
    request: JsonBody<MoveMoneyRequest>,
) -> Result<Response> {
    move_money(app, caller, request, OperationKind::Withdrawal).await
}

/// Move money between two wallets of the same currency, atomically.
#[utoipa::path(post, path = "/wallet/transfer", tag = "money", request_body = TransferRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = TransferResponse),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn transfer(
    State(app): State<AppState>,
    caller: Caller,
    request: JsonBody<TransferRequest>,
) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Transfer);
    let render: Render<Transfer> = {
        let caller = caller.clone();
        Arc::new(move |t: &Transfer| {
            let body = TransferResponse {
                from: WalletResponse::of_movement(&t.from),
                to: TransferTarget::of(&t.to, &caller),
            };
            json_response(StatusCode::OK, None, &body)
        })
    };
    let (from, to) = (request.value.from_id.0, request.value.to_id.0);
    if from == to {
        let error = ApiError::invalid_request("cannot transfer a wallet to itself");
        return counted(op, Err(error), &*render);
    }
    let memo = match request.value.memo(caller.actor()) {
        Ok(memo) => memo,
        Err(error) => return counted(op, Err(error), &*render),
    };
    let (store, actor, op_ref, memo) = (&app.store, caller.actor(), &mut op, &memo);
    let (app, caller_ref, body) = (&app, &caller, &request.value);
    let result = run_once(
        store,
        request.idempotency.as_ref(),
        &render,
        move |finish| async move {
            // Out of the caller's own wallets, into any open wallet of the same currency.
            let from_currency = op_ref.currency(visible(app, caller_ref, from).await?.currency);
            let to_currency = store.wallet_currency(to).await?;
            if from_currency != to_currency {
                let currencies = (from_currency, to_currency);
                return Err(ApiError::currency_mismatch(from, to, currencies));
            }
            let amount = op_ref.amount(body.amount.positive(from_currency)?);
            let done = store.transfer(from, to, amount, memo, finish).await?;
            tracing::info!(from_wallet_id = %from, to_wallet_id = %to, currency = %from_currency,
            amount = %amount.format(from_currency), actor, "money transferred");
            Ok(done)
        },
    )
    .await;
    counted(op, result, &*render)
}

/// A wallet's ledger, newest first.
#[utoipa::path(get, path = "/wallet/{id}/transactions", tag = "wallets",
    params(("id" = String, Path), ListTransactionsQuery),
    responses((status = 200, body = [TransactionResponse], headers(("Link" = String, description = "next page"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn list_transactions(
    State(app): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<ListTransactionsQuery>,
) -> Result<Response> {
    let limit = page_size(query.limit.as_deref())?;
    let before = cursor(query.before.as_deref(), "before")?;
    let filter = history_filter(&query)?;
    let currency = visible(&app, &caller, id).await?.currency;
    let page = app.store.history(id, &filter, before, limit).await?;
    let body: Vec<TransactionResponse> = page
        .items
        .iter()
        .map(|e| TransactionResponse::new(e, currency))
        .collect();
    // The next page keeps the filters exactly as given.
    let next = page.next.map(|before| {
        let mut pairs = vec![("limit", limit.to_string()), ("before", before.to_string())];
        pairs.extend(
            query
                .kind
                .clone()
                .filter(|t| !t.is_empty())
                .map(|t| ("type", t)),
        );
        pairs.extend(
            query
                .reference
                .clone()
                .filter(|r| !r.is_empty())
                .map(|r| ("reference", r)),
        );
        pairs.extend(
            query
                .from
                .clone()
                .filter(|f| !f.is_empty())
                .map(|f| ("from", f)),
        );
        pairs.extend(
            query
                .to
                .clone()
                .filter(|t| !t.is_empty())
                .map(|t| ("to", t)),
        );
        pairs
    });
    let path = format!("/wallet/{id}/transactions");
    Ok((link_next(&path, next), axum::Json(body)).into_response())
}

/// The history filters of a query; an empty parameter is no filter.
pub(crate) fn history_filter(query: &ListTransactionsQuery) -> Result<HistoryFilter> {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
    let kind = given(&query.kind)
        .map(|text| {
            LedgerEntryKind::parse(&text).ok_or_else(|| {
                ApiError::invalid_request(
                    "type must be opening, deposit, withdrawal, transfer_in, transfer_out or closing",
                )
            })
        })
        .transpose()?;
    let reference = given(&query.reference)
        .map(|text| Reference::parse(&text).map(String::from))
        .transpose()?;
    Ok(HistoryFilter {
        kind,
        reference,
        from: instant(given(&query.from), "from")?,
        to: instant(given(&query.to), "to")?,
    })
}

fn instant(text: Option<String>, name: &'static str) -> Result<Option<DateTime<Utc>>> {
    Ok(text.map(|text| parse_instant(name, &text)).transpose()?)
}

/// Close a wallet: what remains is paid out as a final `closing` entry; the id then answers 404.
#[utoipa::path(delete, path = "/wallet/{id}", tag = "wallets", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem, content_type = "application/problem+json")))]
pub async fn close_wallet(
    State(app): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
) -> Result<Response> {
    let mut op = Operation::new(OperationKind::Close);
    let result = async {
        op.currency(visible(&app, &caller, id).await?.currency);
        let payout = app.store.close_wallet(id, &Memo::actor(caller.actor()), None).await?;
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
