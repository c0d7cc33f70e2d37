//! The home page: the wallets, a page at a time, optionally of one owner, and the form that opens a wallet.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{PageError, html, replayed, see_other};
use super::forms::{self, FormBody, Posted, counted, mark_refused};
use super::query::{QueryParams, url_with};
use super::views::{Chrome, CreateForm, Field, HomePage, WalletRow, currency_options};
use crate::domain::{Amount, Currency, Owner, WalletId};
use crate::idempotency::{Ran, run_once};
use crate::outcome::{Operation, OperationKind};
use crate::state::AppState;
use crate::store::{Movement, StoreError, WalletFilter};

/// Wallets per page on the home page.
pub const WALLETS_PER_PAGE: u32 = 20;

/// `GET /`: the wallets, oldest first, a page at a time, optionally of one owner; and the create form.
pub async fn show_home(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = QueryParams::parse(query.as_deref());
    // The same rule as the API's `?owner=`: empty means no filter, anything else must be a valid owner.
    let owner = match Owner::filter(query.get("owner")) {
        Ok(owner) => owner
            .map(|owner| owner.as_ref().to_owned())
            .unwrap_or_default(),
        Err(_) => return PageError::InvalidOwnerFilter.render(&app),
    };
    let after = query.cursor("after");
    let create = CreateForm::blank(forms::new_key());
    match home_page(&app, owner, after, query.notice(), create).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => error.render(&app),
    }
}

async fn home_page(
    app: &AppState,
    owner: String,
    after: Option<i64>,
    notice: Option<&'static str>,
    create: CreateForm,
) -> Result<HomePage, PageError> {
    let filter = WalletFilter {
        owner: (!owner.is_empty()).then(|| owner.clone()),
        currency: None,
        after: after.map(WalletId::from_db),
        limit: WALLETS_PER_PAGE,
    };
    let page = app.store.list_wallets(&filter).await?;
    let owner_pair = [("owner", owner.as_str())];
    let owner_pairs: &[(&str, &str)] = if owner.is_empty() { &[] } else { &owner_pair };
    let next_page_url = page.next.map(|after| {
        let after = after.to_string();
        let mut pairs = owner_pairs.to_vec();
        pairs.push(("after", &after));
        url_with("/", &pairs)
    });
    Ok(HomePage {
        chrome: Chrome::new(app),
        notice,
        first_page_url: after.map(|_| url_with("/", owner_pairs)),
        next_page_url,
        wallets: page.items.iter().map(WalletRow::new).collect(),
        owner_filter: owner,
        create,
        currencies: currency_options(),
    })
}

/// `POST /ui/wallets`: opens a wallet, then shows it.
pub async fn create_wallet(State(app): State<AppState>, form: FormBody) -> Response {
    let mut op = Operation::new(OperationKind::Open);
    let posted = async {
        let mut create = CreateForm {
            key: forms::new_key(),
            owner: Field::typed(form.get("owner")),
            currency: Field::typed(form.get("currency")),
            initial_balance: Field::typed(form.get("initial_balance")),
        };
        let owner = Owner::parse(form.get("owner")).map_err(forms::owner_refusal);
        let currency =
            Currency::parse(form.get("currency").trim()).map_err(forms::currency_refusal);
        if let Ok(currency) = &currency {
            op.currency(*currency);
        }
        let initial = currency.as_ref().ok().map(|currency| {
            let text = form.get("initial_balance").trim();
            if text.is_empty() {
                Ok(Amount::ZERO)
            } else {
                Amount::parse(text, *currency)
                    .map_err(|error| forms::amount_refusal(error, *currency))
            }
        });
        let (owner, currency, initial) = match (owner, currency, initial) {
            (Ok(owner), Ok(currency), Some(Ok(initial))) => (owner, currency, op.amount(initial)),
            (owner, currency, initial) => {
                let kind = mark_refused([
                    (&mut create.owner, owner.err()),
                    (&mut create.currency, currency.err()),
                    (&mut create.initial_balance, initial.and_then(Result::err)),
                ]);
                return Ok(Posted::Refused(kind, refused_home(&app, create, kind.status()).await));
            }
        };
        let render = |created: &Movement| {
            forms::redirect(format!("/ui/wallets/{}?notice=created", created.wallet.id))
        };
        let store = &app.store;
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            store
                .create_wallet(owner.as_ref(), currency, initial, None, finish)
                .await
        })
        .await;
        match result {
            Ok(Ran::Done(created)) => {
                tracing::info!(wallet_id = %created.wallet.id, %currency, amount = %initial.format(currency),
                    "wallet opened from the web app");
                let location = format!("/ui/wallets/{}?notice=created", created.wallet.id);
                Ok(Posted::Done(see_other(&location)))
            }
            Ok(Ran::Replayed(stored)) => Ok(Posted::AlreadySent(replayed(stored, "/"))),
            Err(StoreError::IdempotencyKeyInUse) => {
                Ok(Posted::AlreadySent(see_other("/?notice=pending")))
            }
            Err(StoreError::IdempotencyKeyReused) => {
                let kind = mark_refused([(&mut create.owner, Some(forms::resubmitted()))]);
                Ok(Posted::Refused(kind, refused_home(&app, create, kind.status()).await))
            }
            Err(error) => Err(PageError::from(error)),
        }
    }
    .await;
    counted(op, &app, posted)
}

async fn refused_home(app: &AppState, create: CreateForm, status: StatusCode) -> Response {
    match home_page(app, String::new(), None, None, create).await {
        Ok(page) => html(status, &page),
        Err(error) => error.render(app),
    }
}
