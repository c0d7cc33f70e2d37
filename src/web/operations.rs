//! The wallet page's form posts: deposit, withdraw, transfer and close. Each answers with a 303 to a page showing a
//! fixed notice, or with the wallet page again (what was typed kept, the refusal beside its field).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::error::{PageError, replayed, see_other};
use super::forms::{self, FormBody, Posted, Refusal, counted, mark_refused};
use super::query::Segment;
use super::session::SignedIn;
use super::views::{Field, MemoFields, WalletForms, display_amount};
use super::wallet::{page_wallet_id, refused_wallet, visible_currency};
use crate::auth::Caller;
use crate::domain::{Amount, Currency, WalletId};
use crate::idempotency::{Ran, run_once};
use crate::outcome::{Operation, OperationKind, ProblemKind};
use crate::state::AppState;
use crate::store::{LedgerEntry, Memo, Movement, Render, StoreError, Transfer, Wallet};

/// `POST /ui/wallets/{id}/deposit`.
pub async fn deposit(
    state: State<AppState>,
    caller: SignedIn,
    id: Segment,
    form: FormBody,
) -> Response {
    move_money(state, caller, id, form, OperationKind::Deposit).await
}

/// `POST /ui/wallets/{id}/withdraw`: refused with 409 beside the amount when the wallet holds less.
pub async fn withdraw(
    state: State<AppState>,
    caller: SignedIn,
    id: Segment,
    form: FormBody,
) -> Response {
    move_money(state, caller, id, form, OperationKind::Withdrawal).await
}

async fn move_money(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Segment(id): Segment,
    form: FormBody,
    kind: OperationKind,
) -> Response {
    let notice = match kind {
        OperationKind::Withdrawal => "withdrawn",
        _ => "deposited",
    };
    let amount_field: FieldOf = match kind {
        OperationKind::Withdrawal => |forms| &mut forms.withdraw_amount,
        _ => |forms| &mut forms.deposit_amount,
    };
    let memo_field: fn(&mut WalletForms) -> &mut MemoFields = match kind {
        OperationKind::Withdrawal => |forms| &mut forms.withdraw_memo,
        _ => |forms| &mut forms.deposit_memo,
    };
    let mut op = Operation::new(kind);
    let posted = async {
        let id = page_wallet_id(&id)?;
        let currency = op.currency(visible_currency(&app, &caller, id).await?);
        let mut forms = WalletForms::blank(forms::new_key);
        *amount_field(&mut forms) = Field::typed(form.get("amount"));
        let memo = forms::read_memo(&form, memo_field(&mut forms));
        let amount = match Amount::parse_positive(form.get("amount").trim(), currency) {
            Ok(amount) => op.amount(amount),
            Err(error) => {
                let refusal = forms::amount_refusal(error, currency);
                return Ok(refused(&app, &caller, id, forms, amount_field, refusal).await);
            }
        };
        let memo = match memo {
            Ok(memo) => Memo::new(caller.actor(), memo),
            Err(kind) => {
                let page = refused_wallet(&app, &caller, id, forms, kind.status()).await;
                return Ok(Posted::Refused(kind, page));
            }
        };
        let location = format!("/ui/wallets/{id}?notice={notice}");
        let render: Render<Movement> = {
            let location = location.clone();
            Arc::new(move |_: &Movement| forms::redirect(location.clone()))
        };
        let (store, memo) = (&app.store, &memo);
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            match kind {
                OperationKind::Withdrawal => store.withdraw(id, amount, memo, finish).await,
                _ => store.deposit(id, amount, memo, finish).await,
            }
        })
        .await;
        let refusal = match result {
            Ok(Ran::Done(moved)) => {
                tracing::info!(wallet_id = %id, operation = kind.label(), %currency, amount = %amount.format(currency),
                    balance = %moved.wallet.balance.format(currency), actor = caller.actor(),
                    "money moved from the web app");
                return Ok(Posted::Done(see_other(&location)));
            }
            Ok(Ran::Replayed(stored)) => return Ok(Posted::AlreadySent(replayed(stored, &location))),
            Err(StoreError::IdempotencyKeyInUse) => {
                let pending = see_other(&format!("/ui/wallets/{id}?notice=pending"));
                return Ok(Posted::AlreadySent(pending));
            }
            Err(StoreError::IdempotencyKeyReused) => forms::resubmitted(),
            Err(StoreError::InsufficientFunds { wallet, .. }) => {
                insufficient_funds(&wallet, currency)
            }
            Err(StoreError::BalanceTooLarge(_)) => Refusal::new(
                ProblemKind::AmountTooLarge,
                "That would take the balance over the largest amount a wallet can hold.",
            ),
            Err(error) => return Err(PageError::from(error)),
        };
        Ok(refused(&app, &caller, id, forms, amount_field, refusal).await)
    }
    .await;
    counted(op, &app, posted)
}

/// Picks one field out of the wallet page's forms.
type FieldOf = fn(&mut WalletForms) -> &mut Field;

/// The wallet page again with `refusal` beside the field `field` picks out.
async fn refused(
    app: &AppState,
    caller: &Caller,
    id: WalletId,
    mut forms: WalletForms,
    field: FieldOf,
    refusal: Refusal,
) -> Posted {
    let kind = mark_refused([(field(&mut forms), Some(refusal))]);
    Posted::Refused(
        kind,
        refused_wallet(app, caller, id, forms, kind.status()).await,
    )
}

/// `POST /ui/wallets/{id}/transfer`: out of a wallet the caller sees, to another open wallet of the same currency
/// (of any owner).
pub async fn transfer(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Segment(id): Segment,
    form: FormBody,
) -> Response {
    let mut op = Operation::new(OperationKind::Transfer);
    let posted = async {
        let from = page_wallet_id(&id)?;
        let currency = op.currency(visible_currency(&app, &caller, from).await?);
        let mut forms = WalletForms::blank(forms::new_key);
        forms.transfer_to = Field::typed(form.get("to"));
        forms.transfer_amount = Field::typed(form.get("amount"));
        let memo = forms::read_memo(&form, &mut forms.transfer_memo);

        let to = destination(&app, from, currency, form.get("to")).await?;
        let amount = Amount::parse_positive(form.get("amount").trim(), currency)
            .map_err(|error| forms::amount_refusal(error, currency));
        let (to, amount) = match (to, amount) {
            (Ok(to), Ok(amount)) => (to, op.amount(amount)),
            (to, amount) => {
                let kind = mark_refused([
                    (&mut forms.transfer_to, to.err()),
                    (&mut forms.transfer_amount, amount.err()),
                ]);
                let page = refused_wallet(&app, &caller, from, forms, kind.status()).await;
                return Ok(Posted::Refused(kind, page));
            }
        };
        let memo = match memo {
            Ok(memo) => Memo::new(caller.actor(), memo),
            Err(kind) => {
                let page = refused_wallet(&app, &caller, from, forms, kind.status()).await;
                return Ok(Posted::Refused(kind, page));
            }
        };
        let location = format!("/ui/wallets/{from}?notice=transferred");
        let render: Render<Transfer> = {
            let location = location.clone();
            Arc::new(move |_: &Transfer| forms::redirect(location.clone()))
        };
        let (store, memo) = (&app.store, &memo);
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            store.transfer(from, to, amount, memo, finish).await
        })
        .await;
        let to_field: FieldOf = |forms| &mut forms.transfer_to;
        let amount_field: FieldOf = |forms| &mut forms.transfer_amount;
        let posted = match result {
            Ok(Ran::Done(_)) => {
                tracing::info!(from_wallet_id = %from, to_wallet_id = %to, %currency,
                    amount = %amount.format(currency), actor = caller.actor(), "money transferred from the web app");
                Posted::Done(see_other(&location))
            }
            Ok(Ran::Replayed(stored)) => Posted::AlreadySent(replayed(stored, &location)),
            Err(StoreError::IdempotencyKeyInUse) => {
                Posted::AlreadySent(see_other(&format!("/ui/wallets/{from}?notice=pending")))
            }
            Err(StoreError::IdempotencyKeyReused) => {
                refused(&app, &caller, from, forms, amount_field, forms::resubmitted()).await
            }
            Err(StoreError::InsufficientFunds { wallet, .. }) => {
                let refusal = insufficient_funds(&wallet, currency);
                refused(&app, &caller, from, forms, amount_field, refusal).await
            }
            Err(StoreError::BalanceTooLarge(_)) => {
                let refusal = Refusal::new(
                    ProblemKind::AmountTooLarge,
                    "That would take the other wallet over the largest amount a wallet can hold.",
                );
                refused(&app, &caller, from, forms, amount_field, refusal).await
            }
            Err(StoreError::WalletNotFound(missing)) if missing == to => {
                let refusal = Refusal::new(ProblemKind::WalletNotFound, gone(to));
                refused(&app, &caller, from, forms, to_field, refusal).await
            }
            Err(error) => return Err(PageError::from(error)),
        };
        Ok(posted)
    }
    .await;
    counted(op, &app, posted)
}

/// What the wallet could give: its balance, or, while holds reserve part of it, what is available.
fn insufficient_funds(wallet: &Wallet, currency: Currency) -> Refusal {
    let message = if wallet.held > Amount::ZERO {
        format!(
            "Insufficient funds: this wallet holds {} {currency}, of which {} {currency} is available (the rest is held).",
            display_amount(wallet.balance, currency),
            display_amount(wallet.available(), currency)
        )
    } else {
        format!(
            "Insufficient funds: this wallet holds {} {currency}.",
            display_amount(wallet.balance, currency)
        )
    };
    Refusal::new(ProblemKind::InsufficientFunds, message)
}

fn gone(id: WalletId) -> String {
    format!("There is no open wallet #{id}. It may have been closed.")
}

/// Reads the transfer's destination: a refusal beside the field, or a page error when the store is down.
async fn destination(
    app: &AppState,
    from: WalletId,
    currency: Currency,
    typed: &str,
) -> Result<Result<WalletId, Refusal>, PageError> {
    let typed = typed.trim();
    let typed = typed.strip_prefix('#').unwrap_or(typed);
    let invalid = |message: &str| Ok(Err(Refusal::new(ProblemKind::InvalidRequest, message)));
    if typed.is_empty() {
        return invalid("Choose the wallet to transfer to.");
    }
    let Ok(to) = WalletId::parse(typed) else {
        return invalid("Enter a wallet number, like 12.");
    };
    if to == from {
        return invalid("Choose another wallet: a wallet cannot transfer to itself.");
    }
    match app.store.wallet_currency(to).await {
        Ok(theirs) if theirs == currency => Ok(Ok(to)),
        Ok(theirs) => {
            let message = format!(
                "Wallet #{to} holds {theirs}; a transfer needs the same currency on both sides ({currency})."
            );
            Ok(Err(Refusal::new(ProblemKind::CurrencyMismatch, message)))
        }
        Err(StoreError::WalletNotFound(_)) => {
            Ok(Err(Refusal::new(ProblemKind::WalletNotFound, gone(to))))
        }
        Err(error) => Err(PageError::from(error)),
    }
}

/// `POST /ui/wallets/{id}/close`: pays out what remains, closes the wallet, and returns to the list.
pub async fn close_wallet(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Segment(id): Segment,
    form: FormBody,
) -> Response {
    let mut op = Operation::new(OperationKind::Close);
    let posted = async {
        let id = page_wallet_id(&id)?;
        op.currency(visible_currency(&app, &caller, id).await?);
        if form.get("confirm") != "yes" {
            let refusal = Refusal::new(
                ProblemKind::InvalidRequest,
                "Tick the box to confirm that this wallet should be closed.",
            );
            let forms = WalletForms::blank(forms::new_key);
            let confirm: FieldOf = |forms| &mut forms.close_confirm;
            return Ok(refused(&app, &caller, id, forms, confirm, refusal).await);
        }
        let location = "/?notice=closed";
        let render: Render<Option<LedgerEntry>> =
            Arc::new(move |_: &Option<LedgerEntry>| forms::redirect(location.to_owned()));
        let (store, memo) = (&app.store, &Memo::actor(caller.actor()));
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            store.close_wallet(id, memo, finish).await
        })
        .await;
        match result {
            Ok(Ran::Done(payout)) => {
                if let Some(entry) = &payout {
                    op.amount(entry.amount);
                }
                tracing::info!(wallet_id = %id, paid_out = payout.map_or(0, |e| e.amount.minor_units()),
                    actor = caller.actor(), "wallet closed from the web app");
                Ok(Posted::Done(see_other(location)))
            }
            Ok(Ran::Replayed(stored)) => Ok(Posted::AlreadySent(replayed(stored, location))),
            Err(StoreError::IdempotencyKeyInUse) => {
                Ok(Posted::AlreadySent(see_other("/?notice=pending")))
            }
            // The same form key with other values: 422, as the other forms answer. The first post most likely
            // closed the wallet, so there is no wallet page to show the refusal on.
            Err(StoreError::IdempotencyKeyReused) => Err(PageError::Resubmitted),
            Err(error) => Err(PageError::from(error)),
        }
    }
    .await;
    counted(op, &app, posted)
}
