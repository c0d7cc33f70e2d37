//! Pure wallet rules: money, currencies, owners, ids and how instants are written. Knows nothing of HTTP or SQL.

mod money;
mod time;
mod wallet;

pub use money::{Amount, AmountError, Currency, CurrencyError};
pub use time::rfc3339;
pub use wallet::{LedgerEntryKind, Owner, OwnerError, WalletId, WalletIdError};
