//! Pure wallet rules: money, currencies, owners and ids. Knows nothing of HTTP or SQL.

mod money;
mod wallet;

pub use money::{Amount, AmountError, Currency, CurrencyError};
pub use wallet::{LedgerEntryKind, Owner, OwnerError, WalletId, WalletIdError};
