//! The page handlers: the wallet list with its create form, the wallet page with its four forms, and the error
//! pages. Every form posts, and is answered with a 303 redirect to a page showing a fixed notice, or with the
//! same page again (the typed values kept, the error beside the field) and the status the API would give.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::forms::{self, FormBody, Ran, Refusal};
use super::views::{
    Candidate, Chrome, CreateForm, EntryView, ErrorPage, Field, HomePage, TransferTarget,
    WalletForms, WalletPage, WalletRow, WalletView, currency_options, display_amount,
};
use crate::domain::{Amount, Currency, LedgerEntryKind, Owner, WalletId};
use crate::http::ApiError;
use crate::http::AppState;
use crate::http::error::InternalCause;
use crate::store::{StoreError, StoredResponse, WalletFilter};

/// Wallets per page on the home page.
pub const WALLETS_PER_PAGE: u32 = 20;
/// Ledger entries per page on the wallet page.
pub const ENTRIES_PER_PAGE: u32 = 20;
/// Up to this many same-currency wallets, the transfer form offers a list; beyond it, a wallet number field.
pub const MAX_LISTED_TARGETS: u32 = 50;

/// The notices a redirect may ask for. Only these fixed texts are ever shown: the query names one, it is
/// never echoed.
fn notice_text(name: &str) -> Option<&'static str> {
    Some(match name {
        "created" => "Wallet created.",
        "deposited" => "Deposit recorded.",
        "withdrawn" => "Withdrawal recorded.",
        "transferred" => "Transfer completed.",
        "closed" => "Wallet closed. Its remaining balance was paid out and its history kept.",
        "pending" => {
            "That form was already sent and is still being processed. Check the history in a moment."
        }
        _ => return None,
    })
}

/// A page that cannot be shown at all (as opposed to a form redisplayed with an error beside a field).
#[derive(Debug)]
pub enum PageError {
    NotFound,
    WalletNotFound,
    BadRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    CrossSite,
    Unavailable,
    Internal(String),
}

impl PageError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::NotFound => (
                S::NOT_FOUND,
                "Page not found",
                "There is no page at this address.",
            ),
            Self::WalletNotFound => (
                S::NOT_FOUND,
                "Wallet not found",
                "There is no open wallet with this number. It may have been closed.",
            ),
            Self::BadRequest => (
                S::BAD_REQUEST,
                "Bad request",
                "The form could not be read. Please try again.",
            ),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "Form too large",
                "The form sent was too large.",
            ),
            Self::UnsupportedMediaType => (
                S::UNSUPPORTED_MEDIA_TYPE,
                "Unsupported form",
                "Forms must be sent as application/x-www-form-urlencoded.",
            ),
            Self::CrossSite => (
                S::FORBIDDEN,
                "Form refused",
                "This form was sent from another website, so it was refused. Open revwallet and use its own forms.",
            ),
            Self::Unavailable => (
                S::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "The database cannot be reached right now. Nothing was changed; please try again shortly.",
            ),
            Self::Internal(_) => (
                S::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "An internal error occurred and has been logged. Please try again.",
            ),
        }
    }

    pub fn render(self, app: &AppState) -> Response {
        let (status, title, message) = self.parts();
        let page = ErrorPage {
            chrome: Chrome::new(app),
            title,
            message,
        };
        let mut response = html(status, &page);
        if let Self::Internal(cause) = self {
            // The logging middleware logs the cause once, with the request id; the page never shows it.
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

impl From<StoreError> for PageError {
    fn from(error: StoreError) -> Self {
        match ApiError::from(error) {
            ApiError::WalletNotFound(_) => Self::WalletNotFound,
            ApiError::ServiceUnavailable | ApiError::Timeout => Self::Unavailable,
            ApiError::Internal(cause) => Self::Internal(cause),
            other => Self::Internal(format!("unexpected store outcome: {other}")),
        }
    }
}

fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(error) => {
            let mut response = (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "internal error\n",
            )
                .into_response();
            response
                .extensions_mut()
                .insert(InternalCause(format!("template: {error}")));
            response
        }
    }
}

fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

fn replayed(stored: StoredResponse, fallback: &str) -> Response {
    see_other(stored.location.as_deref().unwrap_or(fallback))
}

/// Query parameters, read leniently: a malformed or unknown parameter is ignored rather than refused.
struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    fn parse(query: Option<&str>) -> Self {
        Self(
            query
                .and_then(|q| serde_urlencoded::from_str(q).ok())
                .unwrap_or_default(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn cursor(&self, name: &str) -> Option<i64> {
        self.get(name)
            .and_then(|text| text.parse::<i64>().ok())
            .filter(|n| *n > 0)
    }

    fn notice(&self) -> Option<&'static str> {
        self.get("notice").and_then(notice_text)
    }
}

fn url_with(path: &str, pairs: &[(&str, &str)]) -> String {
    match serde_urlencoded::to_string(pairs) {
        Ok(query) if !query.is_empty() => format!("{path}?{query}"),
        _ => path.to_owned(),
    }
}

use crate::telemetry::record_operation;

fn outcome_of_page(error: &PageError) -> &'static str {
    match error {
        PageError::WalletNotFound => "not_found",
        PageError::Unavailable | PageError::Internal(_) => "error",
        _ => "invalid",
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Home: the wallets and the create form.

/// `GET /`: the wallets, oldest first, a page at a time, optionally of one owner; and the create form.
pub async fn show_home(State(app): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let query = QueryParams::parse(query.as_deref());
    let owner = query.get("owner").unwrap_or_default().trim().to_owned();
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
        limit: WALLETS_PER_PAGE + 1,
    };
    let mut wallets = app.store.list_wallets(&filter).await?;
    let more = wallets.len() > WALLETS_PER_PAGE as usize;
    wallets.truncate(WALLETS_PER_PAGE as usize);
    let owner_pair = [("owner", owner.as_str())];
    let owner_pairs: &[(&str, &str)] = if owner.is_empty() { &[] } else { &owner_pair };
    let next_page_url = match (more, wallets.last()) {
        (true, Some(last)) => {
            let last = last.id.to_string();
            let mut pairs = owner_pairs.to_vec();
            pairs.push(("after", &last));
            Some(url_with("/", &pairs))
        }
        _ => None,
    };
    Ok(HomePage {
        chrome: Chrome::new(app),
        notice,
        first_page_url: after.map(|_| url_with("/", owner_pairs)),
        next_page_url,
        wallets: wallets.iter().map(WalletRow::new).collect(),
        owner_filter: owner,
        create,
        currencies: currency_options(),
    })
}

/// `POST /ui/wallets`: opens a wallet, then shows it.
pub async fn create_wallet(State(app): State<AppState>, form: FormBody) -> Response {
    let mut create = CreateForm {
        key: forms::new_key(),
        owner: Field::typed(form.get("owner")),
        currency: Field::typed(form.get("currency")),
        initial_balance: Field::typed(form.get("initial_balance")),
    };
    let owner = Owner::parse(form.get("owner")).map_err(forms::owner_refusal);
    let currency = Currency::parse(form.get("currency").trim()).map_err(forms::currency_refusal);
    let initial = currency.as_ref().ok().map(|currency| {
        let text = form.get("initial_balance").trim();
        if text.is_empty() {
            Ok(Amount::ZERO)
        } else {
            Amount::parse(text, *currency).map_err(|error| forms::amount_refusal(error, *currency))
        }
    });
    let (owner, currency, initial) = match (owner, currency, initial) {
        (Ok(owner), Ok(currency), Some(Ok(initial))) => (owner, currency, initial),
        (owner, currency, initial) => {
            let refusals = [
                (&mut create.owner, owner.err()),
                (&mut create.currency, currency.as_ref().err().cloned()),
                (&mut create.initial_balance, initial.and_then(Result::err)),
            ];
            let status = mark_refused(refusals);
            record_operation("open", currency.ok(), 0, "invalid");
            return refused_home(&app, create, status).await;
        }
    };
    let render = |created: &crate::store::Movement| {
        forms::redirect(format!("/ui/wallets/{}?notice=created", created.wallet.id))
    };
    let store = &app.store;
    let result = forms::once(store, form.key.as_ref(), &render, |finish| async move {
        store
            .create_wallet(owner.as_ref(), currency, initial, finish)
            .await
    })
    .await;
    match result {
        Ok(Ran::Done(created)) => {
            record_operation("open", Some(currency), initial.minor_units(), "ok");
            tracing::info!(wallet_id = %created.wallet.id, %currency, amount = %initial.format(currency),
                "wallet opened from the web app");
            see_other(&format!("/ui/wallets/{}?notice=created", created.wallet.id))
        }
        Ok(Ran::Replayed(stored)) => replayed(stored, "/"),
        Err(StoreError::IdempotencyKeyInUse) => see_other("/?notice=pending"),
        Err(StoreError::IdempotencyKeyReused) => {
            let refusal = Refusal::new(&ApiError::IdempotencyKeyReused, RESUBMITTED);
            let status = mark_refused([(&mut create.owner, Some(refusal))]);
            refused_home(&app, create, status).await
        }
        Err(error) => {
            let error = PageError::from(error);
            record_operation("open", Some(currency), 0, outcome_of_page(&error));
            error.render(&app)
        }
    }
}

const RESUBMITTED: &str =
    "This form was already sent with other values. Check the result, then fill in the form again.";

async fn refused_home(app: &AppState, create: CreateForm, status: StatusCode) -> Response {
    match home_page(app, String::new(), None, None, create).await {
        Ok(page) => html(status, &page),
        Err(error) => error.render(app),
    }
}

/// Puts each refusal beside its field, focuses the first one, and answers with the first refusal's status.
fn mark_refused<const N: usize>(refusals: [(&mut Field, Option<Refusal>); N]) -> StatusCode {
    let mut status = None;
    for (field, refusal) in refusals {
        if let Some(refusal) = refusal {
            field.autofocus = status.is_none();
            status.get_or_insert(refusal.status);
            field.error = Some(refusal.message);
        }
    }
    status.unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
}

// ---------------------------------------------------------------------------------------------------------------
// The wallet page and its forms.

fn page_wallet_id(id: &str) -> Result<WalletId, PageError> {
    WalletId::parse(id).map_err(|_| PageError::WalletNotFound)
}

/// `GET /ui/wallets/{id}`: balance, the forms, and the history newest first (`?before=` pages back).
pub async fn show_wallet(
    State(app): State<AppState>,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = QueryParams::parse(query.as_deref());
    let result = async {
        let id = page_wallet_id(&id)?;
        let forms = WalletForms::blank(forms::new_key);
        wallet_page(&app, id, query.cursor("before"), query.notice(), forms).await
    }
    .await;
    match result {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => error.render(&app),
    }
}

async fn wallet_page(
    app: &AppState,
    id: WalletId,
    before: Option<i64>,
    notice: Option<&'static str>,
    forms: WalletForms,
) -> Result<WalletPage, PageError> {
    let wallet = app.store.get_wallet(id).await?;
    let currency = wallet.currency;
    let mut entries = app.store.history(id, before, ENTRIES_PER_PAGE + 1).await?;
    let more = entries.len() > ENTRIES_PER_PAGE as usize;
    entries.truncate(ENTRIES_PER_PAGE as usize);
    let view = WalletView::new(&wallet);
    let older_url = match (more, entries.last()) {
        (true, Some(last)) => Some(url_with(&view.url, &[("before", &last.id.to_string())])),
        _ => None,
    };
    let same_currency = WalletFilter {
        currency: Some(currency),
        limit: MAX_LISTED_TARGETS + 2,
        ..WalletFilter::default()
    };
    let mut others = app.store.list_wallets(&same_currency).await?;
    let listed_all = others.len() <= MAX_LISTED_TARGETS as usize + 1;
    others.retain(|other| other.id != id);
    let typed = forms.transfer_to.value.trim();
    let typed = typed.strip_prefix('#').unwrap_or(typed);
    let typed_unlisted =
        !typed.is_empty() && !others.iter().any(|other| other.id.to_string() == typed);
    // A refused destination that is not in the list (another currency, closed, unknown) is shown as typed.
    let target = if typed_unlisted {
        TransferTarget::TypeNumber
    } else if others.is_empty() {
        TransferTarget::Nobody
    } else if listed_all {
        TransferTarget::Pick(
            others
                .iter()
                .map(|other| Candidate {
                    id: other.id.to_string(),
                    label: format!("#{} — {}", other.id, other.owner),
                })
                .collect(),
        )
    } else {
        TransferTarget::TypeNumber
    };
    Ok(WalletPage {
        chrome: Chrome::new(app),
        notice,
        newest_url: before.map(|_| view.url.clone()),
        older_url,
        entries: entries
            .iter()
            .map(|entry| EntryView::new(entry, currency))
            .collect(),
        wallet: view,
        target,
        forms,
    })
}

/// A wallet page answered to a refused form: the typed values kept, the errors beside their fields.
async fn refused_wallet(
    app: &AppState,
    id: WalletId,
    forms: WalletForms,
    status: StatusCode,
) -> Response {
    match wallet_page(app, id, None, None, forms).await {
        Ok(page) => html(status, &page),
        Err(error) => error.render(app),
    }
}

/// A GET on a form's address (say, the address bar after a refused post) goes to the wallet page.
pub async fn redirect_to_wallet(Path(id): Path<String>) -> Response {
    match WalletId::parse(&id) {
        Ok(id) => see_other(&format!("/ui/wallets/{id}")),
        Err(_) => see_other("/"),
    }
}

pub async fn redirect_home() -> Response {
    see_other("/")
}

/// `POST /ui/wallets/{id}/deposit`.
pub async fn deposit(state: State<AppState>, id: Path<String>, form: FormBody) -> Response {
    move_money(state, id, form, LedgerEntryKind::Deposit).await
}

/// `POST /ui/wallets/{id}/withdraw`: refused with 409 beside the amount when the wallet holds less.
pub async fn withdraw(state: State<AppState>, id: Path<String>, form: FormBody) -> Response {
    move_money(state, id, form, LedgerEntryKind::Withdrawal).await
}

async fn move_money(
    State(app): State<AppState>,
    Path(id): Path<String>,
    form: FormBody,
    kind: LedgerEntryKind,
) -> Response {
    let (label, notice) = match kind {
        LedgerEntryKind::Withdrawal => ("withdrawal", "withdrawn"),
        _ => ("deposit", "deposited"),
    };
    let mut currency_seen = None;
    let result: Result<Response, PageError> = async {
        let id = page_wallet_id(&id)?;
        let currency = *currency_seen.insert(app.store.wallet_currency(id).await?);
        let mut forms = WalletForms::blank(forms::new_key);
        let field = match kind {
            LedgerEntryKind::Withdrawal => &mut forms.withdraw_amount,
            _ => &mut forms.deposit_amount,
        };
        *field = Field::typed(form.get("amount"));
        let amount = match Amount::parse_positive(form.get("amount").trim(), currency) {
            Ok(amount) => amount,
            Err(error) => {
                let status = mark_refused([(field, Some(forms::amount_refusal(error, currency)))]);
                record_operation(label, Some(currency), 0, "invalid");
                return Ok(refused_wallet(&app, id, forms, status).await);
            }
        };
        let location = format!("/ui/wallets/{id}?notice={notice}");
        let render = |_: &crate::store::Movement| forms::redirect(location.clone());
        let store = &app.store;
        let result = forms::once(store, form.key.as_ref(), &render, |finish| async move {
            match kind {
                LedgerEntryKind::Withdrawal => store.withdraw(id, amount, finish).await,
                _ => store.deposit(id, amount, finish).await,
            }
        })
        .await;
        let refusal = match result {
            Ok(Ran::Done(moved)) => {
                record_operation(label, Some(currency), amount.minor_units(), "ok");
                tracing::info!(wallet_id = %id, operation = label, %currency, amount = %amount.format(currency),
                    balance = %moved.wallet.balance.format(currency), "money moved from the web app");
                return Ok(see_other(&location));
            }
            Ok(Ran::Replayed(stored)) => return Ok(replayed(stored, &location)),
            Err(StoreError::IdempotencyKeyInUse) => return Ok(see_other(&format!("/ui/wallets/{id}?notice=pending"))),
            Err(StoreError::IdempotencyKeyReused) => Refusal::new(&ApiError::IdempotencyKeyReused, RESUBMITTED),
            Err(StoreError::InsufficientFunds { wallet, .. }) => insufficient_funds(wallet.balance, currency),
            Err(StoreError::BalanceTooLarge(_)) => Refusal::new(
                &ApiError::AmountTooLarge(String::new()),
                "That would take the balance over the largest amount a wallet can hold.",
            ),
            Err(error) => return Err(PageError::from(error)),
        };
        let field = match kind {
            LedgerEntryKind::Withdrawal => &mut forms.withdraw_amount,
            _ => &mut forms.deposit_amount,
        };
        record_operation(label, Some(currency), 0, refusal.outcome);
        let status = mark_refused([(field, Some(refusal))]);
        Ok(refused_wallet(&app, id, forms, status).await)
    }
    .await;
    result.unwrap_or_else(|error| {
        record_operation(label, currency_seen, 0, outcome_of_page(&error));
        error.render(&app)
    })
}

/// `POST /ui/wallets/{id}/transfer`: to another open wallet of the same currency.
pub async fn transfer(
    State(app): State<AppState>,
    Path(id): Path<String>,
    form: FormBody,
) -> Response {
    let mut currency_seen = None;
    let result: Result<Response, PageError> = async {
        let from = page_wallet_id(&id)?;
        let currency = *currency_seen.insert(app.store.wallet_currency(from).await?);
        let mut forms = WalletForms::blank(forms::new_key);
        forms.transfer_to = Field::typed(form.get("to"));
        forms.transfer_amount = Field::typed(form.get("amount"));

        let to = destination(&app, from, currency, form.get("to")).await?;
        let amount = Amount::parse_positive(form.get("amount").trim(), currency)
            .map_err(|error| forms::amount_refusal(error, currency));
        let (to, amount) = match (to, amount) {
            (Ok(to), Ok(amount)) => (to, amount),
            (to, amount) => {
                let outcome = to
                    .as_ref()
                    .err()
                    .or(amount.as_ref().err())
                    .map_or("invalid", |r| r.outcome);
                record_operation("transfer", Some(currency), 0, outcome);
                let status = mark_refused([
                    (&mut forms.transfer_to, to.err()),
                    (&mut forms.transfer_amount, amount.err()),
                ]);
                return Ok(refused_wallet(&app, from, forms, status).await);
            }
        };
        let location = format!("/ui/wallets/{from}?notice=transferred");
        let render = |_: &crate::store::Transfer| forms::redirect(location.clone());
        let store = &app.store;
        let result = forms::once(store, form.key.as_ref(), &render, |finish| async move {
            store.transfer(from, to, amount, finish).await
        })
        .await;
        let (field, refusal) = match result {
            Ok(Ran::Done(_)) => {
                record_operation("transfer", Some(currency), amount.minor_units(), "ok");
                tracing::info!(from_wallet_id = %from, to_wallet_id = %to, %currency,
                    amount = %amount.format(currency), "money transferred from the web app");
                return Ok(see_other(&location));
            }
            Ok(Ran::Replayed(stored)) => return Ok(replayed(stored, &location)),
            Err(StoreError::IdempotencyKeyInUse) => {
                return Ok(see_other(&format!("/ui/wallets/{from}?notice=pending")));
            }
            Err(StoreError::IdempotencyKeyReused) => (
                &mut forms.transfer_amount,
                Refusal::new(&ApiError::IdempotencyKeyReused, RESUBMITTED),
            ),
            Err(StoreError::InsufficientFunds { wallet, .. }) => (
                &mut forms.transfer_amount,
                insufficient_funds(wallet.balance, currency),
            ),
            Err(StoreError::BalanceTooLarge(_)) => (
                &mut forms.transfer_amount,
                Refusal::new(
                    &ApiError::AmountTooLarge(String::new()),
                    "That would take the other wallet over the largest amount a wallet can hold.",
                ),
            ),
            Err(StoreError::WalletNotFound(missing)) if missing == to => (
                &mut forms.transfer_to,
                Refusal::new(&ApiError::WalletNotFound(missing.to_string()), gone(to)),
            ),
            Err(error) => return Err(PageError::from(error)),
        };
        record_operation("transfer", Some(currency), 0, refusal.outcome);
        let status = mark_refused([(field, Some(refusal))]);
        Ok(refused_wallet(&app, from, forms, status).await)
    }
    .await;
    result.unwrap_or_else(|error| {
        record_operation("transfer", currency_seen, 0, outcome_of_page(&error));
        error.render(&app)
    })
}

fn insufficient_funds(balance: Amount, currency: Currency) -> Refusal {
    let message = format!(
        "Insufficient funds: this wallet holds {} {currency}.",
        display_amount(balance, currency)
    );
    Refusal::new(&ApiError::InsufficientFunds(String::new()), message)
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
    if typed.is_empty() {
        let error = ApiError::InvalidRequest("to_id missing".to_owned());
        return Ok(Err(Refusal::new(
            &error,
            "Choose the wallet to transfer to.",
        )));
    }
    let Ok(to) = WalletId::parse(typed) else {
        let error = ApiError::InvalidRequest("to_id malformed".to_owned());
        return Ok(Err(Refusal::new(&error, "Enter a wallet number, like 12.")));
    };
    if to == from {
        let error = ApiError::InvalidRequest("transfer to itself".to_owned());
        return Ok(Err(Refusal::new(
            &error,
            "Choose another wallet: a wallet cannot transfer to itself.",
        )));
    }
    match app.store.wallet_currency(to).await {
        Ok(theirs) if theirs == currency => Ok(Ok(to)),
        Ok(theirs) => {
            let error = ApiError::CurrencyMismatch {
                from,
                to,
                from_currency: currency,
                to_currency: theirs,
            };
            let message = format!(
                "Wallet #{to} holds {theirs}; a transfer needs the same currency on both sides ({currency})."
            );
            Ok(Err(Refusal::new(&error, message)))
        }
        Err(StoreError::WalletNotFound(_)) => Ok(Err(Refusal::new(
            &ApiError::WalletNotFound(to.to_string()),
            gone(to),
        ))),
        Err(error) => Err(PageError::from(error)),
    }
}

/// `POST /ui/wallets/{id}/close`: pays out what remains, closes the wallet, and returns to the list.
pub async fn close_wallet(
    State(app): State<AppState>,
    Path(id): Path<String>,
    form: FormBody,
) -> Response {
    let mut currency_seen = None;
    let result: Result<Response, PageError> = async {
        let id = page_wallet_id(&id)?;
        let currency = *currency_seen.insert(app.store.wallet_currency(id).await?);
        if form.get("confirm") != "yes" {
            let mut forms = WalletForms::blank(forms::new_key);
            let error = ApiError::InvalidRequest("close not confirmed".to_owned());
            let refusal = Refusal::new(
                &error,
                "Tick the box to confirm that this wallet should be closed.",
            );
            let status = mark_refused([(&mut forms.close_confirm, Some(refusal))]);
            record_operation("close", Some(currency), 0, "invalid");
            return Ok(refused_wallet(&app, id, forms, status).await);
        }
        let location = "/?notice=closed";
        let render = |_: &Option<crate::store::LedgerEntry>| forms::redirect(location.to_owned());
        let store = &app.store;
        let result = forms::once(store, form.key.as_ref(), &render, |finish| async move {
            store.close_wallet(id, finish).await
        })
        .await;
        match result {
            Ok(Ran::Done(payout)) => {
                let paid = payout
                    .as_ref()
                    .map_or(0, |entry| entry.amount.minor_units());
                record_operation("close", Some(currency), paid, "ok");
                tracing::info!(wallet_id = %id, paid_out = paid, "wallet closed from the web app");
                Ok(see_other(location))
            }
            Ok(Ran::Replayed(stored)) => Ok(replayed(stored, location)),
            Err(StoreError::IdempotencyKeyInUse) => Ok(see_other("/?notice=pending")),
            Err(error) => Err(PageError::from(error)),
        }
    }
    .await;
    result.unwrap_or_else(|error| {
        record_operation("close", currency_seen, 0, outcome_of_page(&error));
        error.render(&app)
    })
}

/// Any other address under `/ui/`: an HTML 404 page rather than the API's problem JSON.
pub async fn page_not_found(State(app): State<AppState>) -> Response {
    PageError::NotFound.render(&app)
}
