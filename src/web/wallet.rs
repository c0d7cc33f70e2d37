//! The wallet page: balance, the forms, and the history newest first; and the redirects that lead back to it.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::error::{PageError, html, see_other};
use super::forms;
use super::query::{QueryParams, Segment, url_with};
use super::session::SignedIn;
use super::views::{
    Allowed, Candidate, Chrome, EntryView, TransferTarget, WalletForms, WalletPage, WalletView,
};
use crate::auth::Caller;
use crate::domain::{Currency, WalletId};
use crate::state::AppState;
use crate::store::{HistoryFilter, WalletFilter};

/// Ledger entries per page on the wallet page.
pub const ENTRIES_PER_PAGE: u32 = 20;
/// Up to this many same-currency wallets, the transfer form offers a list; beyond it, a wallet number field.
pub const MAX_LISTED_TARGETS: u32 = 50;

pub fn page_wallet_id(id: &str) -> Result<WalletId, PageError> {
    WalletId::parse(id).map_err(|_| PageError::WalletNotFound)
}

/// A wallet's currency, if the caller may see the wallet: another owner's wallet is as absent as an unknown one.
pub async fn visible_currency(
    app: &AppState,
    caller: &Caller,
    id: WalletId,
) -> Result<Currency, PageError> {
    let facts = app.store.wallet_facts(id).await?;
    if caller.sees(&facts.owner) {
        Ok(facts.currency)
    } else {
        Err(PageError::WalletNotFound)
    }
}

/// `GET /ui/wallets/{id}`: balance, the forms, and the history newest first (`?before=` pages back).
pub async fn show_wallet(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Segment(id): Segment,
    RawQuery(query): RawQuery,
) -> Response {
    let query = QueryParams::parse(query.as_deref());
    let result = async {
        let id = page_wallet_id(&id)?;
        let forms = WalletForms::blank(forms::new_key);
        let (before, notice) = (query.cursor("before"), query.notice());
        wallet_page(&app, &caller, id, before, notice, forms).await
    }
    .await;
    match result {
        Ok(page) => html(StatusCode::OK, &page),
        Err(error) => error.render(&app),
    }
}

pub(super) async fn wallet_page(
    app: &AppState,
    caller: &Caller,
    id: WalletId,
    before: Option<i64>,
    notice: Option<&'static str>,
    forms: WalletForms,
) -> Result<WalletPage, PageError> {
    let wallet = app.store.get_wallet(id).await?;
    if !caller.sees(&wallet.owner) {
        return Err(PageError::WalletNotFound);
    }
    let currency = wallet.currency;
    let allowed = Allowed::of(caller);
    let history = app
        .store
        .history(id, &HistoryFilter::default(), before, ENTRIES_PER_PAGE)
        .await?;
    let view = WalletView::new(&wallet);
    let older_url = history
        .next
        .map(|before| url_with(&view.url, &[("before", &before.to_string())]));
    // One more than the list may show, counting this wallet: more than that, and the form asks for a number.
    // An owner-bound key may transfer into any owner's wallet but never sees the others: it types the number.
    let (others, listed_all) = if allowed.write && allowed.owner.is_none() {
        let same_currency = WalletFilter {
            currency: Some(currency),
            limit: MAX_LISTED_TARGETS + 1,
            ..WalletFilter::default()
        };
        let candidates = app.store.list_wallets(&same_currency).await?;
        let listed_all = candidates.next.is_none();
        let mut others = candidates.items;
        others.retain(|other| other.id != id);
        (others, listed_all)
    } else {
        (Vec::new(), false)
    };
    let typed = forms.transfer_to.value.trim();
    let typed = typed.strip_prefix('#').unwrap_or(typed);
    let typed_unlisted =
        !typed.is_empty() && !others.iter().any(|other| other.id.to_string() == typed);
    // A refused destination that is not in the list (another currency, closed, unknown) is shown as typed.
    let target = if typed_unlisted || allowed.owner.is_some() {
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
        holds: super::holds::HoldsSection::load(app, &wallet).await?,
        chrome: Chrome::new(app),
        notice,
        newest_url: before.map(|_| view.url.clone()),
        older_url,
        entries: history
            .items
            .iter()
            .map(|entry| EntryView::new(entry, currency))
            .collect(),
        wallet: view,
        target,
        forms,
        allowed,
    })
}

/// A wallet page answered to a refused form: the typed values kept, the errors beside their fields.
pub async fn refused_wallet(
    app: &AppState,
    caller: &Caller,
    id: WalletId,
    forms: WalletForms,
    status: StatusCode,
) -> Response {
    match wallet_page(app, caller, id, None, None, forms).await {
        Ok(page) => html(status, &page),
        Err(error) => error.render(app),
    }
}

/// A GET on a form's address (say, the address bar after a refused post) goes to the wallet page.
pub async fn redirect_to_wallet(Segment(id): Segment) -> Response {
    match WalletId::parse(&id) {
        Ok(id) => see_other(&format!("/ui/wallets/{id}")),
        Err(_) => see_other("/"),
    }
}

pub async fn redirect_home() -> Response {
    see_other("/")
}

/// Any other address under `/ui/`: an HTML 404 page rather than the API's problem JSON.
pub async fn page_not_found(State(app): State<AppState>) -> Response {
    PageError::NotFound.render(&app)
}
