//! Pure wallet rules: money, currencies, owners, ids, roles and key secrets, and how instants are written. Knows nothing of HTTP or SQL.

mod access;
mod money;
mod time;
mod wallet;

pub use access::{KeySecret, KeySecretError, Role, hex, id_of_hash};
pub use money::{Amount, AmountError, Currency, CurrencyError};
pub use time::rfc3339;
pub use wallet::{LedgerEntryKind, Owner, OwnerError, WalletId, WalletIdError};
