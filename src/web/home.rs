//! The home page: the wallets, a page at a time, optionally of one owner, and the form that opens a wallet.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{PageError, html, replayed, see_other};
use super::forms::{self, FormBody, Posted, Refusal, counted, mark_refused};
use super::query::{QueryParams, url_with};
use super::session::SignedIn;
use super::views::{Allowed, Chrome, CreateForm, Field, HomePage, WalletRow, currency_options};
use crate::auth::Caller;
use crate::domain::{Amount, Currency, Owner, WalletId};
use crate::idempotency::{Ran, run_once};
use crate::outcome::{Operation, OperationKind, ProblemKind};
use crate::state::AppState;
use crate::store::{Memo, Movement, Render, StoreError, WalletFilter};

/// Wallets per page on the home page.
pub const WALLETS_PER_PAGE: u32 = 20;

/// `GET /`: the wallets the caller sees, oldest first, a page at a time, optionally of one owner; and the create
/// form if the caller's role allows it.
pub async fn show_home(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    RawQuery(query): RawQuery,
) -> Response {
    let query = QueryParams::parse(query.as_deref());
    // The same rule as the API's `?owner=`: empty means no filter, anything else must be a valid owner.
    let owner = match Owner::filter(query.get("owner")) {
        Ok(owner) => owner
            .map(|owner| owner.as_ref().to_owned())
            .unwrap_or_default(),
        Err(_) => return PageError::InvalidOwnerFilter.render(&app),
    };
    let after = query.cursor("after");
    let create = CreateForm::blank(forms::new_key(), caller.owner());
    match home_page(&app, &caller, owner, after, query.notice(), create).await {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => error.render(&app),
    }
}

async fn home_page(
    app: &AppState,
    caller: &Caller,
    owner: String,
    after: Option<i64>,
    notice: Option<&'static str>,
    create: CreateForm,
) -> Result<HomePage, PageError> {
    let asked = (!owner.is_empty()).then(|| owner.clone());
    // An owner-bound key lists its owner's wallets; asking for another owner finds none (as in the API).
    let filter_owner = match (caller.owner(), asked) {
        (Some(bound), Some(asked)) if bound != asked => None,
        (Some(bound), _) => Some(Some(bound.to_owned())),
        (None, asked) => Some(asked),
    };
    let page = match filter_owner {
        Some(owner) => {
            let filter = WalletFilter {
                owner,
                currency: None,
                after: after.map(WalletId::from_db),
                limit: WALLETS_PER_PAGE,
            };
            app.store.list_wallets(&filter).await?
        }
        None => crate::store::Page {
            items: Vec::new(),
            next: None,
        },
    };
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
        allowed: Allowed::of(caller),
    })
}

/// `POST /ui/wallets`: opens a wallet, then shows it. An owner-bound key opens wallets only for its owner.
pub async fn create_wallet(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    form: FormBody,
) -> Response {
    let mut op = Operation::new(OperationKind::Open);
    let posted = async {
        let mut create = CreateForm {
            key: forms::new_key(),
            owner: Field::typed(form.get("owner")),
            currency: Field::typed(form.get("currency")),
            initial_balance: Field::typed(form.get("initial_balance")),
        };
        let owner = Owner::parse(form.get("owner"))
            .map_err(forms::owner_refusal)
            .and_then(|owner| {
                if caller.sees(owner.as_ref()) {
                    Ok(owner)
                } else {
                    Err(Refusal::new(
                        ProblemKind::Forbidden,
                        "This API key may open wallets only for its own owner.",
                    ))
                }
            });
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
                return Ok(Posted::Refused(kind, refused_home(&app, &caller, create, kind.status()).await));
            }
        };
        let render: Render<Movement> = Arc::new(|created: &Movement| {
            forms::redirect(format!("/ui/wallets/{}?notice=created", created.wallet.id))
        });
        let (store, memo) = (&app.store, &Memo::actor(caller.actor()));
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            store
                .create_wallet(owner.as_ref(), currency, initial, memo, finish)
                .await
        })
        .await;
        match result {
            Ok(Ran::Done(created)) => {
                tracing::info!(wallet_id = %created.wallet.id, %currency, amount = %initial.format(currency),
                    actor = caller.actor(), "wallet opened from the web app");
                let location = format!("/ui/wallets/{}?notice=created", created.wallet.id);
                Ok(Posted::Done(see_other(&location)))
            }
            Ok(Ran::Replayed(stored)) => Ok(Posted::AlreadySent(replayed(stored, "/"))),
            Err(StoreError::IdempotencyKeyInUse) => {
                Ok(Posted::AlreadySent(see_other("/?notice=pending")))
            }
            Err(StoreError::IdempotencyKeyReused) => {
                let kind = mark_refused([(&mut create.owner, Some(forms::resubmitted()))]);
                Ok(Posted::Refused(kind, refused_home(&app, &caller, create, kind.status()).await))
            }
            Err(error) => Err(PageError::from(error)),
        }
    }
    .await;
    counted(op, &app, posted)
}

async fn refused_home(
    app: &AppState,
    caller: &Caller,
    create: CreateForm,
    status: StatusCode,
) -> Response {
    match home_page(app, caller, String::new(), None, None, create).await {
        Ok(page) => html(status, &page),
        Err(error) => error.render(app),
    }
}
