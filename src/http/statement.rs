//! A wallet's statement as RFC 4180 CSV: an opening balance row, every entry of the period in ledger order with
//! its signed amount and the balance after it, and a closing balance row. Streamed a page of entries at a time,
//! so a wallet with millions of entries costs the server no more memory than one with ten. The API and the web
//! app both answer with `statement_response`.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;

use super::error::{ApiError, Problem, Result};
use super::extract::{ApiQuery, PathId};
use super::schema::StatementQuery;
use crate::auth::Caller;
use crate::domain::{Amount, Currency, LedgerEntryKind, WalletId, parse_instant, rfc3339};
use crate::state::AppState;
use crate::store::{HistoryFilter, LedgerEntry, Store};

/// Entries fetched per database round trip while streaming.
const PAGE: u32 = 1000;

/// The columns of every row.
pub const HEADER: [&str; 8] = [
    "created_at",
    "entry_id",
    "type",
    "amount",
    "balance_after",
    "currency",
    "reference",
    "description",
];

/// A wallet's statement as CSV (`text/csv`), streamed.
#[utoipa::path(get, path = "/wallet/{id}/statement.csv", tag = "wallets",
    params(("id" = String, Path), StatementQuery),
    responses((status = 200, content_type = "text/csv", body = String,
            description = "RFC 4180 CSV: header, opening balance, entries in ledger order, closing balance"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
pub async fn get_statement(
    State(app): State<AppState>,
    caller: Caller,
    PathId(id): PathId,
    ApiQuery(query): ApiQuery<StatementQuery>,
) -> Result<Response> {
    statement_response(&app, &caller, id, &query).await
}

/// Checks the period and the caller's sight of the wallet, reads the first page (so that a database failure is
/// still a problem answer, not a cut stream), then streams the rest.
pub async fn statement_response(
    app: &AppState,
    caller: &Caller,
    id: WalletId,
    query: &StatementQuery,
) -> Result<Response> {
    let from = given(query.from.as_deref())
        .map(|t| parse_instant("from", t))
        .transpose()?;
    let to = given(query.to.as_deref())
        .map(|t| parse_instant("to", t))
        .transpose()?;
    let wallet = app.store.get_wallet(id).await?;
    if !caller.sees(&wallet.owner) {
        return Err(ApiError::wallet_not_found(id));
    }
    // Without `to`, the period ends now: entries written while the statement streams are not half in it.
    let filter = HistoryFilter {
        from,
        to: Some(to.unwrap_or_else(Utc::now)),
        ..HistoryFilter::default()
    };
    let first = app.store.statement_page(id, &filter, None, PAGE).await?;
    let opening = match first.first() {
        // The balance before the period is the first entry's, less that entry.
        Some(entry) => entry.balance_after.minor_units() - signed(entry),
        None => {
            let end = filter.to.unwrap_or_else(Utc::now);
            let last = app.store.entry_as_of(id, end, false).await?;
            last.map_or(0, |entry| entry.balance_after.minor_units())
        }
    };
    let stream = Statement {
        store: app.store.clone(),
        id,
        currency: wallet.currency,
        filter,
        pending: Some(first),
        after: None,
        balance: opening,
        finished: false,
    };
    let head = stream.head(from.unwrap_or(wallet.created_at))?;
    let body = futures_util::stream::once(async move { Ok::<_, std::io::Error>(head) }).chain(
        futures_util::stream::try_unfold(stream, |stream| async move {
            stream.next_chunk().await.map_err(|error| {
                tracing::error!(%error, "statement stream failed");
                std::io::Error::other(error.to_string())
            })
        }),
    );
    let filename = format!("attachment; filename=\"wallet-{id}-statement.csv\"");
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, filename),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// Where a statement's stream stands.
struct Statement {
    store: Store,
    id: WalletId,
    currency: Currency,
    filter: HistoryFilter,
    /// A page read but not written yet (the first one, read before the answer started).
    pending: Option<Vec<LedgerEntry>>,
    /// The id of the last entry written.
    after: Option<i64>,
    /// The balance after the last row written, in minor units.
    balance: i64,
    finished: bool,
}

impl Statement {
    /// The header and the opening balance row.
    fn head(&self, at: DateTime<Utc>) -> Result<Bytes> {
        let mut rows = rows();
        rows.write_record(HEADER).map_err(csv_error)?;
        self.balance_row(&mut rows, at, "opening_balance")?;
        finish(rows)
    }

    fn balance_row(
        &self,
        rows: &mut csv::Writer<Vec<u8>>,
        at: DateTime<Utc>,
        kind: &str,
    ) -> Result<()> {
        let balance = self.format(self.balance);
        let at = rfc3339(at);
        let code = self.currency.code();
        rows.write_record([at.as_str(), "", kind, "", &balance, code, "", ""])
            .map_err(csv_error)
    }

    /// The next page of entry rows, then the closing balance row, then the end.
    async fn next_chunk(mut self) -> Result<Option<(Bytes, Self)>> {
        if self.finished {
            return Ok(None);
        }
        let page = match self.pending.take() {
            Some(page) => page,
            None => {
                self.store
                    .statement_page(self.id, &self.filter, self.after, PAGE)
                    .await?
            }
        };
        let mut rows = rows();
        if page.is_empty() {
            let end = self.filter.to.unwrap_or_else(Utc::now);
            self.balance_row(&mut rows, end, "closing_balance")?;
            self.finished = true;
        }
        for entry in &page {
            self.balance = entry.balance_after.minor_units();
            let amount = match signed(entry) {
                minor if minor < 0 => format!("-{}", entry.amount.format(self.currency)),
                _ => entry.amount.format(self.currency),
            };
            rows.write_record([
                rfc3339(entry.created_at).as_str(),
                &entry.id.to_string(),
                entry.kind.as_str(),
                &amount,
                &entry.balance_after.format(self.currency),
                self.currency.code(),
                entry.reference.as_deref().unwrap_or(""),
                entry.description.as_deref().unwrap_or(""),
            ])
            .map_err(csv_error)?;
        }
        self.after = page.last().map(|entry| entry.id).or(self.after);
        Ok(Some((finish(rows)?, self)))
    }

    fn format(&self, minor: i64) -> String {
        Amount::from_minor(minor).map_or_else(
            || {
                format!(
                    "-{}",
                    Amount::from_minor(-minor)
                        .unwrap_or(Amount::ZERO)
                        .format(self.currency)
                )
            },
            |amount| amount.format(self.currency),
        )
    }
}

/// A query parameter that is present and not empty.
fn given(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// An entry's effect on the balance, in minor units.
fn signed(entry: &LedgerEntry) -> i64 {
    let minor = entry.amount.minor_units();
    match entry.kind {
        LedgerEntryKind::Opening | LedgerEntryKind::Deposit | LedgerEntryKind::TransferIn => minor,
        LedgerEntryKind::Withdrawal | LedgerEntryKind::TransferOut | LedgerEntryKind::Closing => {
            -minor
        }
    }
}

/// A writer of CSV rows into memory, with RFC 4180's CRLF line ends (quoting as needed is the crate's default).
fn rows() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

fn finish(rows: csv::Writer<Vec<u8>>) -> Result<Bytes> {
    rows.into_inner()
        .map(Bytes::from)
        .map_err(|error| ApiError::internal(error.to_string()))
}

fn csv_error(error: csv::Error) -> ApiError {
    ApiError::internal(error.to_string())
}
