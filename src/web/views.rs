//! What the templates show: page structs checked against `templates/` at compile time, and the display
//! formatting of money, dates and ledger entries (grouped digits for reading; forms take plain decimals).

use askama::Template;
use chrono::{DateTime, Utc};

use super::assets;
use crate::auth::Caller;
use crate::domain::{Amount, Currency, LedgerEntryKind, Role, rfc3339};
use crate::state::AppState;
use crate::store::{LedgerEntry, Wallet};

/// What every page's frame needs: the stylesheet, the operations links, and who is signed in.
pub struct Chrome {
    pub css_url: &'static str,
    pub icon_url: &'static str,
    pub grafana_url: String,
    pub prometheus_url: String,
    /// The key the page's session acts as; `None` on the sign-in page and with authentication off.
    pub account: Option<Account>,
    /// Whether the visitor may see the admin pages (the navigation links them).
    pub admin: bool,
}

impl Chrome {
    pub fn new(app: &AppState) -> Self {
        let account = match super::session::visitor() {
            Some(Caller::Key(key)) => Some(Account {
                key_id: key.key_id.clone(),
                role: key.role.as_str(),
                owner: key.owner.clone(),
            }),
            _ => None,
        };
        Self {
            css_url: assets::css_url(),
            icon_url: assets::icon_url(),
            grafana_url: app.settings.grafana_url.clone(),
            prometheus_url: app.settings.prometheus_url.clone(),
            account,
            admin: super::session::visitor().is_some_and(|caller| caller.allows(Role::Admin)),
        }
    }
}

/// The signed-in key, as the header shows it (never its secret).
pub struct Account {
    pub key_id: String,
    pub role: &'static str,
    pub owner: Option<String>,
}

/// What a caller may do on a page: which forms it is offered.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// Open wallets, deposit, withdraw, transfer.
    pub write: bool,
    /// Close wallets.
    pub close: bool,
    /// The owner a bound key acts for: the only owner it sees and opens wallets for.
    pub owner: Option<String>,
    /// Whether ledger entries record who caused them (authentication on).
    pub actors: bool,
}

impl Allowed {
    pub fn of(caller: &Caller) -> Self {
        Self {
            write: caller.allows(Role::Write),
            close: caller.allows(Role::Admin),
            owner: caller.owner().map(str::to_owned),
            actors: matches!(caller, Caller::Key(_)),
        }
    }
}

#[derive(Template)]
#[template(path = "sign_in.html")]
pub struct SignInPage {
    pub chrome: Chrome,
    /// Where to go once signed in (a local path).
    pub next: String,
    pub api_key: Field,
}

/// One form input: what the person typed (shown again after a rejection) and the error beside it.
#[derive(Debug, Clone, Default)]
pub struct Field {
    pub value: String,
    pub error: Option<String>,
    /// The first field in error takes the focus, so keyboard and screen-reader users land on it.
    pub autofocus: bool,
}

impl Field {
    /// A field showing `value`: what was typed, or a default.
    pub fn typed(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            ..Self::default()
        }
    }
}

/// The optional reference and description of a money form.
#[derive(Debug, Clone, Default)]
pub struct MemoFields {
    pub reference: Field,
    pub description: Field,
}

impl MemoFields {
    pub fn has_error(&self) -> bool {
        self.reference.error.is_some() || self.description.error.is_some()
    }
}

/// The create-wallet form on the home page.
#[derive(Debug, Clone)]
pub struct CreateForm {
    pub key: String,
    pub owner: Field,
    pub currency: Field,
    pub initial_balance: Field,
}

impl CreateForm {
    /// An empty form; an owner-bound key's owner is filled in.
    pub fn blank(key: String, owner: Option<&str>) -> Self {
        Self {
            key,
            owner: Field::typed(owner.unwrap_or_default()),
            currency: Field::typed("EUR"),
            initial_balance: Field::default(),
        }
    }
}

/// The four forms of the wallet page; each has its own idempotency key.
#[derive(Debug, Clone)]
pub struct WalletForms {
    pub deposit_key: String,
    pub deposit_amount: Field,
    pub deposit_memo: MemoFields,
    pub withdraw_key: String,
    pub withdraw_amount: Field,
    pub withdraw_memo: MemoFields,
    pub transfer_key: String,
    pub transfer_to: Field,
    pub transfer_amount: Field,
    pub transfer_memo: MemoFields,
    pub close_key: String,
    pub close_confirm: Field,
}

impl WalletForms {
    pub fn blank(mut key: impl FnMut() -> String) -> Self {
        Self {
            deposit_key: key(),
            deposit_amount: Field::default(),
            deposit_memo: MemoFields::default(),
            withdraw_key: key(),
            withdraw_amount: Field::default(),
            withdraw_memo: MemoFields::default(),
            transfer_key: key(),
            transfer_to: Field::default(),
            transfer_amount: Field::default(),
            transfer_memo: MemoFields::default(),
            close_key: key(),
            close_confirm: Field::default(),
        }
    }

    pub fn has_error(&self) -> bool {
        [
            &self.deposit_amount,
            &self.withdraw_amount,
            &self.transfer_to,
            &self.transfer_amount,
            &self.close_confirm,
        ]
        .iter()
        .any(|field| field.error.is_some())
            || [&self.deposit_memo, &self.withdraw_memo, &self.transfer_memo]
                .iter()
                .any(|memo| memo.has_error())
    }
}

pub struct CurrencyOption {
    pub code: &'static str,
    pub label: String,
}

pub fn currency_options() -> Vec<CurrencyOption> {
    Currency::all()
        .into_iter()
        .map(|c| CurrencyOption {
            code: c.code(),
            label: format!("{} — {}", c.code(), c.name()),
        })
        .collect()
}

pub struct WalletRow {
    pub id: String,
    pub url: String,
    pub owner: String,
    pub currency: &'static str,
    pub balance: String,
}

impl WalletRow {
    pub fn new(wallet: &Wallet) -> Self {
        Self {
            id: wallet.id.to_string(),
            url: wallet_url(wallet),
            owner: wallet.owner.clone(),
            currency: wallet.currency.code(),
            balance: display_amount(wallet.balance, wallet.currency),
        }
    }
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    pub chrome: Chrome,
    pub notice: Option<&'static str>,
    pub owner_filter: String,
    pub wallets: Vec<WalletRow>,
    pub first_page_url: Option<String>,
    pub next_page_url: Option<String>,
    pub create: CreateForm,
    pub currencies: Vec<CurrencyOption>,
    pub allowed: Allowed,
}

impl HomePage {
    pub fn has_error(&self) -> bool {
        [
            &self.create.owner,
            &self.create.currency,
            &self.create.initial_balance,
        ]
        .iter()
        .any(|field| field.error.is_some())
    }
}

pub struct WalletView {
    pub id: String,
    pub url: String,
    pub owner: String,
    pub currency: &'static str,
    pub currency_name: String,
    pub balance: String,
    /// Reserved by pending holds, and what is left to spend.
    pub held: String,
    pub available: String,
    pub opened: String,
    pub opened_iso: String,
    /// How many decimals an amount may have, in words, for the hint under each amount field.
    pub amount_hint: String,
}

impl WalletView {
    pub fn new(wallet: &Wallet) -> Self {
        let currency = wallet.currency;
        let amount_hint = match currency.exponent() {
            0 => format!("Whole {} only, like 1500.", currency.code()),
            1 => format!("Up to 1 decimal place, like {}.", example_amount(currency)),
            n => format!(
                "Up to {n} decimal places, like {}.",
                example_amount(currency)
            ),
        };
        Self {
            id: wallet.id.to_string(),
            url: wallet_url(wallet),
            owner: wallet.owner.clone(),
            currency: currency.code(),
            currency_name: currency.name().to_owned(),
            balance: display_amount(wallet.balance, currency),
            held: display_amount(wallet.held, currency),
            available: display_amount(wallet.available(), currency),
            opened: display_time(wallet.created_at),
            opened_iso: rfc3339(wallet.created_at),
            amount_hint,
        }
    }
}

/// A wallet a transfer may go to.
pub struct Candidate {
    pub id: String,
    pub label: String,
}

/// How the transfer form asks for the destination: a list when it is short, else the wallet number.
pub enum TransferTarget {
    Nobody,
    Pick(Vec<Candidate>),
    TypeNumber,
}

pub struct EntryView {
    pub label: String,
    pub when: String,
    pub when_iso: String,
    pub amount: String,
    pub credit: bool,
    pub balance: String,
    /// The id of the API key that caused the entry, or `—` (authentication off when it was made).
    pub actor: String,
    pub reference: Option<String>,
    pub description: Option<String>,
}

impl EntryView {
    pub fn new(entry: &LedgerEntry, currency: Currency) -> Self {
        let other = entry
            .counterparty_id
            .map_or_else(String::new, |id| format!(" #{id}"));
        let (label, credit) = match entry.kind {
            LedgerEntryKind::Opening => ("Opening balance".to_owned(), true),
            LedgerEntryKind::Deposit => ("Deposit".to_owned(), true),
            LedgerEntryKind::Withdrawal => ("Withdrawal".to_owned(), false),
            LedgerEntryKind::TransferIn => (format!("Transfer from{other}"), true),
            LedgerEntryKind::TransferOut => (format!("Transfer to{other}"), false),
            LedgerEntryKind::Closing => ("Closing payout".to_owned(), false),
        };
        // U+2212 MINUS SIGN: as wide as the plus sign, so signed columns stay aligned.
        let sign = if credit { "+" } else { "\u{2212}" };
        Self {
            label,
            when: display_time(entry.created_at),
            when_iso: rfc3339(entry.created_at),
            amount: format!("{sign}{}", display_amount(entry.amount, currency)),
            credit,
            balance: display_amount(entry.balance_after, currency),
            actor: entry.actor.clone().unwrap_or_else(|| "—".to_owned()),
            reference: entry.reference.clone(),
            description: entry.description.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "wallet.html")]
pub struct WalletPage {
    pub chrome: Chrome,
    pub notice: Option<&'static str>,
    pub wallet: WalletView,
    pub entries: Vec<EntryView>,
    pub newest_url: Option<String>,
    pub older_url: Option<String>,
    pub target: TransferTarget,
    pub forms: WalletForms,
    pub allowed: Allowed,
    pub holds: super::holds::HoldsSection,
    pub filter: HistoryFilterView,
}

/// The history filter form as the page shows it, and the statement link for the same dates.
pub struct HistoryFilterView {
    /// The entry type picked (empty: all).
    pub kind: String,
    /// Dates as `YYYY-MM-DD` (empty: open-ended); `to` is the last day shown.
    pub from: String,
    pub to: String,
    pub kinds: Vec<(&'static str, &'static str)>,
    pub active: bool,
    pub clear_url: String,
    pub statement_url: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub chrome: Chrome,
    pub title: &'static str,
    pub message: &'static str,
}

pub fn wallet_url(wallet: &Wallet) -> String {
    format!("/ui/wallets/{}", wallet.id)
}

/// Money for reading: the exact decimal text with the whole part grouped in thousands (`1,234.50`).
pub fn display_amount(amount: Amount, currency: Currency) -> String {
    let plain = amount.format(currency);
    let (whole, fraction) = match plain.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (plain.as_str(), None),
    };
    let mut grouped = String::with_capacity(plain.len() + whole.len() / 3);
    for (i, digit) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if let Some(fraction) = fraction {
        grouped.push('.');
        grouped.push_str(fraction);
    }
    grouped
}

/// An example amount with the currency's decimals, for hints and error messages (`12.50`, `1500`, `12.500`).
pub fn example_amount(currency: Currency) -> String {
    match currency.exponent() {
        0 => "1500".to_owned(),
        n => format!("12.5{}", "0".repeat(usize::from(n) - 1)),
    }
}

pub fn display_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn amount(text: &str, code: &str) -> (Amount, Currency) {
        let currency = Currency::parse(code).expect("test currency");
        (
            Amount::parse(text, currency).expect("test amount"),
            currency,
        )
    }

    #[test]
    fn amounts_are_grouped_in_thousands_with_the_currency_decimals() {
        for (text, code, shown) in [
            ("0", "EUR", "0.00"),
            ("999.5", "EUR", "999.50"),
            ("1000", "EUR", "1,000.00"),
            ("1234567.89", "EUR", "1,234,567.89"),
            ("1500", "JPY", "1,500"),
            ("100", "JPY", "100"),
            ("12345.678", "KWD", "12,345.678"),
        ] {
            let (value, currency) = amount(text, code);
            assert_eq!(display_amount(value, currency), shown, "{text} {code}");
        }
    }

    #[test]
    fn examples_have_exactly_the_currency_decimals() {
        for (code, example) in [("EUR", "12.50"), ("JPY", "1500"), ("KWD", "12.500")] {
            let currency = Currency::parse(code).expect("test currency");
            assert_eq!(example_amount(currency), example);
            assert!(Amount::parse(&example_amount(currency), currency).is_ok());
        }
    }
}
