//! The wallet page: balance, the forms, and the history newest first; and the redirects that lead back to it.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, Utc};

use super::error::{PageError, html, see_other};
use super::forms;
use super::query::{QueryParams, Segment, url_with};
use super::session::SignedIn;
use super::views::{
    Allowed, Candidate, Chrome, EntryView, HistoryFilterView, TransferTarget, WalletForms,
    WalletPage, WalletView,
};
use crate::auth::Caller;
use crate::domain::{Currency, LedgerEntryKind, WalletId, rfc3339};
use crate::http::{StatementQuery, statement_response};
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
        let history = HistoryQuery::read(&query);
        wallet_page(&app, &caller, id, &history, query.notice(), forms).await
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
    history_query: &HistoryQuery,
    notice: Option<&'static str>,
    forms: WalletForms,
) -> Result<WalletPage, PageError> {
    let before = history_query.before;
    let wallet = app.store.get_wallet(id).await?;
    if !caller.sees(&wallet.owner) {
        return Err(PageError::WalletNotFound);
    }
    let currency = wallet.currency;
    let allowed = Allowed::of(caller);
    let history = app
        .store
        .history(id, &history_query.filter(), before, ENTRIES_PER_PAGE)
        .await?;
    let view = WalletView::new(&wallet);
    let older_url = history.next.map(|before| {
        let mut pairs = history_query.pairs();
        pairs.push(("before", before.to_string()));
        url_with_owned(&view.url, &pairs)
    });
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
        newest_url: before.map(|_| url_with_owned(&view.url, &history_query.pairs())),
        filter: history_query.view(&view.url),
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
    match wallet_page(app, caller, id, &HistoryQuery::default(), None, forms).await {
        Ok(page) => html(status, &page),
        Err(error) => error.render(app),
    }
}

/// The wallet page's history query: a page cursor and the filter form's type and dates (`YYYY-MM-DD`, UTC days;
/// `to` is the last day shown). Read leniently like every page query: anything unreadable is no filter.
#[derive(Debug, Clone, Default)]
pub struct HistoryQuery {
    pub before: Option<i64>,
    pub kind: Option<LedgerEntryKind>,
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
}

/// The entry types the filter offers, with their labels.
const KINDS: [(&str, &str); 6] = [
    ("opening", "Opening balance"),
    ("deposit", "Deposits"),
    ("withdrawal", "Withdrawals"),
    ("transfer_in", "Transfers in"),
    ("transfer_out", "Transfers out"),
    ("closing", "Closing payout"),
];

impl HistoryQuery {
    pub fn read(query: &QueryParams) -> Self {
        let date = |name| {
            query
                .get(name)
                .and_then(|text| NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok())
        };
        Self {
            before: query.cursor("before"),
            kind: query.get("type").and_then(LedgerEntryKind::parse),
            from: date("from"),
            to: date("to"),
        }
    }

    /// The start of the first day, inclusive.
    fn start(&self) -> Option<DateTime<Utc>> {
        self.from
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|at| at.and_utc())
    }

    /// The start of the day after the last, exclusive.
    fn end(&self) -> Option<DateTime<Utc>> {
        self.to
            .and_then(|day| day.succ_opt())
            .and_then(|day| day.and_hms_opt(0, 0, 0))
            .map(|at| at.and_utc())
    }

    pub fn filter(&self) -> HistoryFilter {
        HistoryFilter {
            kind: self.kind,
            reference: None,
            from: self.start(),
            to: self.end(),
        }
    }

    /// The filter as query pairs (for the pager's links).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        pairs.extend(self.kind.map(|kind| ("type", kind.as_str().to_owned())));
        pairs.extend(self.from.map(|day| ("from", day.to_string())));
        pairs.extend(self.to.map(|day| ("to", day.to_string())));
        pairs
    }

    fn view(&self, wallet_url: &str) -> HistoryFilterView {
        let mut period = Vec::new();
        period.extend(self.start().map(|at| ("from", rfc3339(at))));
        period.extend(self.end().map(|at| ("to", rfc3339(at))));
        HistoryFilterView {
            kind: self
                .kind
                .map(|kind| kind.as_str().to_owned())
                .unwrap_or_default(),
            from: self.from.map(|day| day.to_string()).unwrap_or_default(),
            to: self.to.map(|day| day.to_string()).unwrap_or_default(),
            kinds: KINDS.to_vec(),
            active: self.kind.is_some() || self.from.is_some() || self.to.is_some(),
            clear_url: wallet_url.to_owned(),
            statement_url: url_with_owned(&format!("{wallet_url}/statement.csv"), &period),
        }
    }
}

fn url_with_owned(path: &str, pairs: &[(&str, String)]) -> String {
    let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    url_with(path, &pairs)
}

/// `GET /ui/wallets/{id}/statement.csv`: the API's statement (`http::statement_response`) for the signed-in key;
/// `from` and `to` are the instants the wallet page's link carries.
pub async fn download_statement(
    State(app): State<AppState>,
    SignedIn(caller): SignedIn,
    Segment(id): Segment,
    RawQuery(query): RawQuery,
) -> Response {
    let query = QueryParams::parse(query.as_deref());
    let result = async {
        let id = page_wallet_id(&id)?;
        let wallet = app.store.get_wallet(id).await?;
        if !caller.sees(&wallet.owner) {
            return Err(PageError::WalletNotFound);
        }
        Ok(id)
    }
    .await;
    let id = match result {
        Ok(id) => id,
        Err(error) => return error.render(&app),
    };
    let period = StatementQuery {
        from: query.get("from").map(str::to_owned),
        to: query.get("to").map(str::to_owned),
    };
    match statement_response(&app, &caller, id, &period).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
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
