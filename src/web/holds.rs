//! The wallet page's holds (SPEC §9): the pending holds, each with a capture form (an amount, empty for the whole
//! hold, and an optional wallet to pay it into) and a void button, and the form that places a hold. The posts
//! work like the other forms (`operations.rs`): a 303 to the wallet page with a fixed notice, or the page again
//! with the refusal beside its field and the refusal's status, nothing changed. A hold that is no longer pending
//! has no row to stand beside, so that refusal heads the holds section.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::response::Response;
use chrono::{TimeDelta, Utc};

use super::error::{PageError, html, replayed, see_other};
use super::forms::{self, FormBody, Posted, Refusal, counted, mark_refused};
use super::query::Segment;
use super::session::SignedIn;
use super::views::{Field, MemoFields, WalletForms, display_amount, display_time};
use super::wallet::{HistoryQuery, page_wallet_id, visible_currency, wallet_page};
use crate::auth::Caller;
use crate::domain::{Amount, Currency, HoldId, HoldLifetime, HoldStatus, WalletId, rfc3339};
use crate::idempotency::{Ran, run_once};
use crate::outcome::{Operation, OperationKind, ProblemKind};
use crate::state::AppState;
use crate::store::{Capture, Hold, Memo, Render, StoreError, Wallet};

/// Pending holds listed on the wallet page, newest first; beyond this many, the section says so.
pub const PENDING_SHOWN: u32 = 50;
/// The place form's default lifetime, in hours (the API's default, a week).
const DEFAULT_HOURS: u32 = 7 * 24;
/// The longest lifetime the place form accepts, in hours (the API's 30 days).
const MAX_HOURS: u32 = HoldLifetime::MAX_SECONDS / 3600;

/// The holds section of the wallet page: the place form and the pending holds with their forms.
#[derive(Debug, Clone)]
pub struct HoldsSection {
    pub place_key: String,
    pub place_amount: Field,
    /// Hours until the hold releases itself; empty means the default.
    pub place_hours: Field,
    pub place_memo: MemoFields,
    pub default_hours: u32,
    pub max_hours: u32,
    pub pending: Vec<PendingHold>,
    /// More pending holds exist than are listed.
    pub more: bool,
    /// A refusal about a hold that is no longer listed (captured, voided or expired meanwhile).
    pub error: Option<String>,
}

/// A pending hold and its capture and void forms.
#[derive(Debug, Clone)]
pub struct PendingHold {
    pub id: String,
    pub amount: String,
    pub expires: String,
    pub expires_iso: String,
    pub capture_url: String,
    pub void_url: String,
    pub capture_key: String,
    /// The ids of the capture form's two inputs, unique on the page.
    pub amount_id: String,
    pub to_id: String,
    pub capture_amount: Field,
    pub capture_to: Field,
    /// The capture's optional reference and description (on the entries it writes), and their ids' prefix.
    pub capture_memo: MemoFields,
    pub memo_prefix: String,
    /// What the hold was placed with.
    pub reference: Option<String>,
    pub description: Option<String>,
    pub void_key: String,
}

impl HoldsSection {
    /// The section as a fresh page shows it: blank forms with new keys and the wallet's pending holds.
    pub async fn load(app: &AppState, wallet: &Wallet) -> Result<Self, PageError> {
        let currency = wallet.currency;
        let page = app
            .store
            .list_holds(wallet.id, Some(HoldStatus::Pending), None, PENDING_SHOWN)
            .await?;
        let url = format!("/ui/wallets/{}/holds", wallet.id);
        Ok(Self {
            place_key: forms::new_key(),
            place_amount: Field::default(),
            place_hours: Field::default(),
            place_memo: MemoFields::default(),
            default_hours: DEFAULT_HOURS,
            max_hours: MAX_HOURS,
            pending: page
                .items
                .iter()
                .map(|hold| PendingHold::new(hold, currency, &url))
                .collect(),
            more: page.next.is_some(),
            error: None,
        })
    }

    pub fn has_error(&self) -> bool {
        self.error.is_some()
            || self.place_amount.error.is_some()
            || self.place_hours.error.is_some()
            || self.place_memo.has_error()
            || self.pending.iter().any(|hold| {
                hold.capture_amount.error.is_some()
                    || hold.capture_to.error.is_some()
                    || hold.capture_memo.has_error()
            })
    }

    fn pending_mut(&mut self, id: HoldId) -> Option<&mut PendingHold> {
        let id = id.to_string();
        self.pending.iter_mut().find(|hold| hold.id == id)
    }
}

impl PendingHold {
    fn new(hold: &Hold, currency: Currency, holds_url: &str) -> Self {
        let id = hold.id.to_string();
        Self {
            amount: display_amount(hold.amount, currency),
            expires: display_time(hold.expires_at),
            expires_iso: rfc3339(hold.expires_at),
            capture_url: format!("{holds_url}/{id}/capture"),
            void_url: format!("{holds_url}/{id}/void"),
            capture_key: forms::new_key(),
            amount_id: format!("hold-{id}-amount"),
            to_id: format!("hold-{id}-to"),
            capture_amount: Field::default(),
            capture_to: Field::default(),
            capture_memo: MemoFields::default(),
            memo_prefix: format!("hold-{id}"),
            reference: hold.reference.clone(),
            description: hold.description.clone(),
            void_key: forms::new_key(),
            id,
        }
    }
}

/// The wallet and hold ids of `/ui/wallets/{id}/holds/{hold}/...`; anything unreadable is the HTML 404.
pub struct HoldSegments(pub String, pub String);

impl FromRequestParts<AppState> for HoldSegments {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, Response> {
        match Path::<(String, String)>::from_request_parts(parts, app).await {
            Ok(Path((wallet, hold))) => Ok(Self(wallet, hold)),
            Err(_) => Err(PageError::NotFound.render(app)),
        }
    }
}

/// A GET on a hold form's address goes to the wallet page, like the other forms' addresses.
pub async fn redirect_to_wallet(HoldSegments(id, _): HoldSegments) -> Response {
    match WalletId::parse(&id) {
        Ok(id) => see_other(&format!("/ui/wallets/{id}")),
        Err(_) => see_other("/"),
    }
}

/// Where a refusal goes on the page.
enum Beside {
    /// The place form's fields: amount, hours.
    Place(Option<Refusal>, Option<Refusal>),
    /// A pending hold's capture fields: amount, target wallet (the hold's row, or the section when it is gone).
    Capture(HoldId, Option<Refusal>, Option<Refusal>),
    /// The head of the holds section.
    Section(Refusal),
}

/// What the refused form had typed, kept on the page shown again.
struct Typed<'a> {
    amount: &'a str,
    second: &'a str,
    /// The place form's reference and description, as typed (and refused, if they were).
    memo: MemoFields,
}

/// The wallet page again, with the typed values kept and the refusal beside its field.
async fn refused(
    app: &AppState,
    caller: &Caller,
    id: WalletId,
    typed: Typed<'_>,
    beside: Beside,
) -> Posted {
    let page = wallet_page(
        app,
        caller,
        id,
        &HistoryQuery::default(),
        None,
        WalletForms::blank(forms::new_key),
    )
    .await;
    let mut page = match page {
        Ok(page) => page,
        Err(error) => {
            let kind = error.kind();
            return Posted::Refused(kind, error.render(app));
        }
    };
    let holds = &mut page.holds;
    let kind = match beside {
        Beside::Place(amount, hours) => {
            holds.place_amount = Field::typed(typed.amount);
            holds.place_hours = Field::typed(typed.second);
            let memo_refused = typed.memo.has_error();
            holds.place_memo = typed.memo;
            match (amount, hours) {
                (None, None) if memo_refused => ProblemKind::InvalidRequest,
                (amount, hours) => mark_refused([
                    (&mut holds.place_amount, amount),
                    (&mut holds.place_hours, hours),
                ]),
            }
        }
        Beside::Capture(hold, amount, to) => match holds.pending_mut(hold) {
            Some(row) => {
                row.capture_amount = Field::typed(typed.amount);
                row.capture_to = Field::typed(typed.second);
                let memo_refused = typed.memo.has_error();
                row.capture_memo = typed.memo;
                match (amount, to) {
                    (None, None) if memo_refused => ProblemKind::InvalidRequest,
                    (amount, to) => {
                        mark_refused([(&mut row.capture_amount, amount), (&mut row.capture_to, to)])
                    }
                }
            }
            None => section_refusal(holds, amount.or(to)),
        },
        Beside::Section(refusal) => section_refusal(holds, Some(refusal)),
    };
    Posted::Refused(kind, html(kind.status(), &page))
}

fn section_refusal(holds: &mut HoldsSection, refusal: Option<Refusal>) -> ProblemKind {
    let Some(refusal) = refusal else {
        return ProblemKind::InvalidRequest;
    };
    holds.error = Some(refusal.message);
    refusal.kind
}

/// `POST /ui/wallets/{id}/holds`: reserves an amount of what the wallet has available, for a number of hours.
pub async fn place(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Segment(id): Segment,
    form: FormBody,
) -> Response {
    let mut op = Operation::new(OperationKind::Hold);
    let posted = async {
        let id = page_wallet_id(&id)?;
        let currency = op.currency(visible_currency(&app, &caller, id).await?);
        let mut typed = Typed {
            amount: form.get("amount"),
            second: form.get("expires_in_hours"),
            memo: MemoFields::default(),
        };
        let memo = forms::read_memo(&form, &mut typed.memo);
        let amount = Amount::parse_positive(typed.amount.trim(), currency)
            .map_err(|error| forms::amount_refusal(error, currency));
        let lifetime = lifetime(typed.second);
        let (amount, lifetime, memo) = match (amount, lifetime, memo) {
            (Ok(amount), Ok(lifetime), Ok(memo)) => (op.amount(amount), lifetime, memo),
            (amount, lifetime, _) => {
                let beside = Beside::Place(amount.err(), lifetime.err());
                return Ok(refused(&app, &caller, id, typed, beside).await);
            }
        };
        let memo = Memo::new(caller.actor(), memo);
        let location = format!("/ui/wallets/{id}?notice=held");
        let render: Render<Hold> = {
            let location = location.clone();
            Arc::new(move |_: &Hold| forms::redirect(location.clone()))
        };
        let store = &app.store;
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            let expires_at = Utc::now() + TimeDelta::seconds(i64::from(lifetime.seconds()));
            store.place_hold(id, amount, expires_at, &memo, finish).await
        })
        .await;
        let refusal = match result {
            Ok(Ran::Done(hold)) => {
                tracing::info!(hold_id = %hold.id, wallet_id = %id, %currency, amount = %amount.format(currency),
                    expires_in = lifetime.seconds(), "hold placed from the web app");
                return Ok(Posted::Done(see_other(&location)));
            }
            Ok(Ran::Replayed(stored)) => return Ok(Posted::AlreadySent(replayed(stored, &location))),
            Err(StoreError::IdempotencyKeyInUse) => {
                let pending = see_other(&format!("/ui/wallets/{id}?notice=pending"));
                return Ok(Posted::AlreadySent(pending));
            }
            Err(StoreError::IdempotencyKeyReused) => forms::resubmitted(),
            Err(StoreError::InsufficientFunds { wallet, .. }) => {
                let message = format!(
                    "Insufficient funds: {} {currency} of this wallet is available.",
                    display_amount(wallet.available(), currency)
                );
                Refusal::new(ProblemKind::InsufficientFunds, message)
            }
            Err(error) => return Err(PageError::from(error)),
        };
        Ok(refused(&app, &caller, id, typed, Beside::Place(Some(refusal), None)).await)
    }
    .await;
    counted(op, &app, posted)
}

/// The place form's lifetime: whole hours from 1 to 720; empty is the default week.
fn lifetime(hours: &str) -> Result<HoldLifetime, Refusal> {
    let hours = hours.trim();
    if hours.is_empty() {
        return Ok(HoldLifetime::DEFAULT);
    }
    let refusal = || {
        Refusal::new(
            ProblemKind::InvalidRequest,
            format!(
                "Enter a whole number of hours from 1 to {MAX_HOURS}, or leave it empty for {DEFAULT_HOURS}."
            ),
        )
    };
    let digits = hours.bytes().all(|b| b.is_ascii_digit());
    let hours: u32 = match hours.parse() {
        Ok(hours) if digits && (1..=MAX_HOURS).contains(&hours) => hours,
        _ => return Err(refusal()),
    };
    let seconds = hours.checked_mul(3600).ok_or_else(refusal)?;
    HoldLifetime::parse(&seconds.to_string()).map_err(|_| refusal())
}

/// The hold of the path, if it is this wallet's: a hold of another wallet under this path is no page at all.
async fn hold_of(app: &AppState, wallet: WalletId, hold: &str) -> Result<Hold, PageError> {
    let id = HoldId::parse(hold).map_err(|_| PageError::NotFound)?;
    match app.store.get_hold(id).await {
        Ok(hold) if hold.wallet_id == wallet => Ok(hold),
        Ok(_) | Err(StoreError::HoldNotFound(_)) => Err(PageError::NotFound),
        Err(error) => Err(PageError::from(error)),
    }
}

/// The words for a hold that is no longer pending.
fn not_pending(hold: &Hold) -> Refusal {
    let what = match hold.status {
        HoldStatus::Captured => "was already captured",
        HoldStatus::Voided => "was voided",
        HoldStatus::Expired => "has expired",
        HoldStatus::Pending => "is being captured or voided",
    };
    Refusal::new(
        ProblemKind::HoldNotPending,
        format!(
            "Hold #{} {what}: it can no longer be captured or voided.",
            hold.id
        ),
    )
}

/// `POST /ui/wallets/{id}/holds/{hold}/capture`: takes the amount (empty: the whole hold) out of the wallet, as a
/// withdrawal or into another wallet of the same currency; the rest of the hold is released.
pub async fn capture(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    HoldSegments(id, hold): HoldSegments,
    form: FormBody,
) -> Response {
    let mut op = Operation::new(OperationKind::Capture);
    let posted = async {
        let id = page_wallet_id(&id)?;
        let currency = op.currency(visible_currency(&app, &caller, id).await?);
        let hold = hold_of(&app, id, &hold).await?;
        let mut typed = Typed {
            amount: form.get("amount"),
            second: form.get("to"),
            memo: MemoFields::default(),
        };
        let memo = match forms::read_memo(&form, &mut typed.memo) {
            Ok(memo) => Memo::new(caller.actor(), memo),
            Err(_) => {
                let beside = Beside::Capture(hold.id, None, None);
                return Ok(refused(&app, &caller, id, typed, beside).await);
            }
        };
        // A hold no longer pending goes to the store all the same, so that a form sent twice is answered as the
        // first time was (the store then refuses it, with the words for the hold's state).
        let (amount, to) = if hold.status == HoldStatus::Pending {
            let amount = capture_amount(&hold, typed.amount, currency);
            let to = target(&app, id, currency, typed.second).await?;
            match (amount, to) {
                (Ok(amount), Ok(to)) => (op.amount(amount), to),
                (amount, to) => {
                    let beside = Beside::Capture(hold.id, amount.err(), to.err());
                    return Ok(refused(&app, &caller, id, typed, beside).await);
                }
            }
        } else {
            (hold.amount, None)
        };
        let hold_id = hold.id;
        let location = format!("/ui/wallets/{id}?notice=captured");
        let render: Render<Capture> = {
            let location = location.clone();
            Arc::new(move |_: &Capture| forms::redirect(location.clone()))
        };
        let (store, memo) = (&app.store, &memo);
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            store.capture_hold(hold_id, amount, to, memo, finish).await
        })
        .await;
        let beside = match result {
            Ok(Ran::Done(_)) => {
                tracing::info!(hold_id = %hold_id, wallet_id = %id, %currency, amount = %amount.format(currency),
                    to_wallet_id = ?to.map(WalletId::get), "hold captured from the web app");
                return Ok(Posted::Done(see_other(&location)));
            }
            Ok(Ran::Replayed(stored)) => return Ok(Posted::AlreadySent(replayed(stored, &location))),
            Err(StoreError::IdempotencyKeyInUse) => {
                let pending = see_other(&format!("/ui/wallets/{id}?notice=pending"));
                return Ok(Posted::AlreadySent(pending));
            }
            Err(StoreError::IdempotencyKeyReused) => {
                Beside::Capture(hold_id, Some(forms::resubmitted()), None)
            }
            Err(StoreError::HoldNotPending(hold)) => Beside::Section(not_pending(&hold)),
            Err(StoreError::CaptureTooLarge(hold)) => {
                Beside::Capture(hold_id, Some(too_large(&hold, currency)), None)
            }
            Err(StoreError::BalanceTooLarge(_)) => {
                let refusal = Refusal::new(
                    ProblemKind::AmountTooLarge,
                    "That would take the other wallet over the largest amount a wallet can hold.",
                );
                Beside::Capture(hold_id, None, Some(refusal))
            }
            Err(StoreError::WalletNotFound(missing)) if Some(missing) == to => {
                let refusal = Refusal::new(ProblemKind::WalletNotFound, gone(missing));
                Beside::Capture(hold_id, None, Some(refusal))
            }
            Err(StoreError::HoldNotFound(_)) => return Err(PageError::NotFound),
            Err(error) => return Err(PageError::from(error)),
        };
        Ok(refused(&app, &caller, id, typed, beside).await)
    }
    .await;
    counted(op, &app, posted)
}

/// The capture's amount: empty for the whole hold, else a positive amount of at most the hold.
fn capture_amount(hold: &Hold, typed: &str, currency: Currency) -> Result<Amount, Refusal> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(hold.amount);
    }
    let amount = Amount::parse_positive(typed, currency)
        .map_err(|error| forms::amount_refusal(error, currency))?;
    if amount > hold.amount {
        return Err(too_large(hold, currency));
    }
    Ok(amount)
}

fn too_large(hold: &Hold, currency: Currency) -> Refusal {
    Refusal::new(
        ProblemKind::InvalidAmount,
        format!(
            "Hold #{} reserves {} {currency}: capture at most that.",
            hold.id,
            display_amount(hold.amount, currency)
        ),
    )
}

fn gone(id: WalletId) -> String {
    format!("There is no open wallet #{id}. It may have been closed.")
}

/// The wallet a capture is paid into: none when the field is empty (a withdrawal); a refusal beside the field,
/// or a page error when the store is down.
async fn target(
    app: &AppState,
    from: WalletId,
    currency: Currency,
    typed: &str,
) -> Result<Result<Option<WalletId>, Refusal>, PageError> {
    let typed = typed.trim();
    let typed = typed.strip_prefix('#').unwrap_or(typed);
    if typed.is_empty() {
        return Ok(Ok(None));
    }
    let invalid = |message: &str| Ok(Err(Refusal::new(ProblemKind::InvalidRequest, message)));
    let Ok(to) = WalletId::parse(typed) else {
        return invalid(
            "Enter a wallet number, like 12, or leave it empty to withdraw the capture.",
        );
    };
    if to == from {
        return invalid(
            "Choose another wallet, or leave it empty: a hold is not captured into its own wallet.",
        );
    }
    match app.store.wallet_currency(to).await {
        Ok(theirs) if theirs == currency => Ok(Ok(Some(to))),
        Ok(theirs) => {
            let message = format!(
                "Wallet #{to} holds {theirs}; a capture into another wallet needs the same currency ({currency})."
            );
            Ok(Err(Refusal::new(ProblemKind::CurrencyMismatch, message)))
        }
        Err(StoreError::WalletNotFound(_)) => {
            Ok(Err(Refusal::new(ProblemKind::WalletNotFound, gone(to))))
        }
        Err(error) => Err(PageError::from(error)),
    }
}

/// `POST /ui/wallets/{id}/holds/{hold}/void`: releases the whole hold.
pub async fn void(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    HoldSegments(id, hold): HoldSegments,
    form: FormBody,
) -> Response {
    let mut op = Operation::new(OperationKind::Void);
    let posted = async {
        let id = page_wallet_id(&id)?;
        op.currency(visible_currency(&app, &caller, id).await?);
        let hold = hold_of(&app, id, &hold).await?;
        let typed = Typed {
            amount: "",
            second: "",
            memo: MemoFields::default(),
        };
        let hold_id = hold.id;
        let location = format!("/ui/wallets/{id}?notice=voided");
        let render: Render<Hold> = {
            let location = location.clone();
            Arc::new(move |_: &Hold| forms::redirect(location.clone()))
        };
        let store = &app.store;
        let result = run_once(store, form.key.as_ref(), &render, |finish| async move {
            store.void_hold(hold_id, finish).await
        })
        .await;
        let refusal = match result {
            Ok(Ran::Done(_)) => {
                tracing::info!(hold_id = %hold_id, wallet_id = %id, "hold voided from the web app");
                return Ok(Posted::Done(see_other(&location)));
            }
            Ok(Ran::Replayed(stored)) => {
                return Ok(Posted::AlreadySent(replayed(stored, &location)));
            }
            Err(StoreError::IdempotencyKeyInUse) => {
                let pending = see_other(&format!("/ui/wallets/{id}?notice=pending"));
                return Ok(Posted::AlreadySent(pending));
            }
            Err(StoreError::IdempotencyKeyReused) => forms::resubmitted(),
            Err(StoreError::HoldNotPending(hold)) => not_pending(&hold),
            Err(StoreError::HoldNotFound(_)) => return Err(PageError::NotFound),
            Err(error) => return Err(PageError::from(error)),
        };
        Ok(refused(&app, &caller, id, typed, Beside::Section(refusal)).await)
    }
    .await;
    counted(op, &app, posted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_place_forms_hours_are_the_apis_lifetimes() {
        assert_eq!(
            lifetime("").map(HoldLifetime::seconds),
            Ok(HoldLifetime::DEFAULT.seconds())
        );
        assert_eq!(DEFAULT_HOURS * 3600, HoldLifetime::DEFAULT.seconds());
        assert_eq!(lifetime(" 2 ").map(HoldLifetime::seconds), Ok(7200));
        assert_eq!(
            lifetime("720").map(HoldLifetime::seconds),
            Ok(HoldLifetime::MAX_SECONDS)
        );
        for bad in ["0", "721", "1.5", "-1", "+1", "1e2", "week", "99999999999"] {
            let refusal = lifetime(bad).expect_err(bad);
            assert_eq!(refusal.kind, ProblemKind::InvalidRequest, "{bad}");
        }
    }
}
