//! Wallet identity and ownership, and the kinds of ledger entry.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use unicode_properties::general_category::{GeneralCategory, UnicodeGeneralCategory};

/// A wallet id: a positive sequential integer, rendered as a string in JSON. Its one spelling is the canonical
/// decimal one: no sign, no leading zero, no spaces (`01` is not another spelling of `1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalletId(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a wallet id (a positive integer)")]
pub struct WalletIdError(pub String);

impl WalletId {
    pub fn parse(text: &str) -> Result<Self, WalletIdError> {
        let canonical = text.bytes().all(|b| b.is_ascii_digit()) && !text.starts_with('0');
        match text.parse::<i64>() {
            Ok(id) if id > 0 && canonical => Ok(Self(id)),
            _ => Err(WalletIdError(text.to_owned())),
        }
    }

    /// An id read back from storage.
    pub fn from_db(id: i64) -> Self {
        Self(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for WalletId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A wallet owner's name: 1–100 characters after trimming and normalising to Unicode NFC, with no control
/// characters (category Cc) and no invisible or bidirectional formatting characters (Cf: zero-width spaces and
/// joiners, bidi overrides and isolates, U+FEFF; Zl and Zp: U+2028, U+2029), so two owners that look the same
/// are the same owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OwnerError {
    #[error("owner must not be empty")]
    Empty,
    #[error("owner must be at most {} characters", Owner::MAX_CHARS)]
    TooLong,
    #[error("owner must not contain control characters")]
    ControlCharacter,
    #[error(
        "owner must not contain invisible or bidirectional formatting characters (such as U+200B or U+202E)"
    )]
    FormatCharacter,
}

impl Owner {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(text: &str) -> Result<Self, OwnerError> {
        let owner: String = text.trim().nfc().collect();
        if owner.is_empty() {
            Err(OwnerError::Empty)
        } else if owner.chars().count() > Self::MAX_CHARS {
            Err(OwnerError::TooLong)
        } else if owner.chars().any(char::is_control) {
            Err(OwnerError::ControlCharacter)
        } else if owner.chars().any(is_format_or_separator) {
            Err(OwnerError::FormatCharacter)
        } else {
            Ok(Self(owner))
        }
    }

    /// An owner filter (the API's `?owner=`, the web home page's filter), by the same rule as an owner: empty
    /// (or only whitespace) means no filter; anything else must be a valid owner, and is compared normalised.
    pub fn filter(text: Option<&str>) -> Result<Option<Self>, OwnerError> {
        match text.map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => Self::parse(text).map(Some),
        }
    }
}

/// Cf (format: zero-width, bidi controls, U+FEFF), Zl (U+2028) and Zp (U+2029).
fn is_format_or_separator(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

impl AsRef<str> for Owner {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// What a ledger entry records. The ledger is append-only; the balance is the signed sum of its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LedgerEntryKind {
    Opening,
    Deposit,
    Withdrawal,
    TransferIn,
    TransferOut,
    Closing,
}

impl LedgerEntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opening => "opening",
            Self::Deposit => "deposit",
            Self::Withdrawal => "withdrawal",
            Self::TransferIn => "transfer_in",
            Self::TransferOut => "transfer_out",
            Self::Closing => "closing",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Opening,
            Self::Deposit,
            Self::Withdrawal,
            Self::TransferIn,
            Self::TransferOut,
            Self::Closing,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wallet_ids_are_positive_integers() {
        assert_eq!(WalletId::parse("1").map(WalletId::get), Ok(1));
        for bad in [
            "0",
            "-1",
            "+1",
            "1.0",
            "",
            "abc",
            "99999999999999999999",
            " 1",
            "01",
            "007",
            "1_000",
            "١",
        ] {
            assert!(WalletId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn owners_are_trimmed_and_bounded() {
        assert_eq!(
            Owner::parse("  test2 ").map(|o| o.0),
            Ok("test2".to_owned())
        );
        assert_eq!(Owner::parse("   "), Err(OwnerError::Empty));
        assert!(Owner::parse(&"é".repeat(100)).is_ok());
        assert_eq!(Owner::parse(&"é".repeat(101)), Err(OwnerError::TooLong));
        assert_eq!(Owner::parse("a\u{7}b"), Err(OwnerError::ControlCharacter));
        assert_eq!(Owner::parse("a\u{0}b"), Err(OwnerError::ControlCharacter));
    }

    #[test]
    fn invisible_and_bidi_characters_are_refused_in_owners() {
        for spoof in [
            "ali\u{200B}ce",
            "ali\u{200D}ce",
            "\u{FEFF}alice",
            "alice\u{202E}moc.evil",
            "ali\u{2028}ce",
            "ali\u{2029}ce",
            "ali\u{2066}ce\u{2069}",
            "ali\u{00AD}ce",
        ] {
            assert_eq!(
                Owner::parse(spoof),
                Err(OwnerError::FormatCharacter),
                "{spoof:?}"
            );
        }
        // Letters, marks and ordinary spaces of every script are still owners.
        for fine in ["Zoë", "李小龍", "Ελένη", "José María", "علي"] {
            assert!(Owner::parse(fine).is_ok(), "{fine:?}");
        }
    }

    #[test]
    fn owners_are_normalised_to_nfc() {
        let decomposed = Owner::parse("Zoe\u{308}").expect("owner");
        let composed = Owner::parse("Zo\u{eb}").expect("owner");
        assert_eq!(decomposed, composed);
        assert_eq!(decomposed.as_ref(), "Zo\u{eb}");
        // The length is counted after normalising: 100 decomposed é are 100 characters.
        assert!(Owner::parse(&"e\u{301}".repeat(100)).is_ok());
    }

    #[test]
    fn an_empty_owner_filter_is_no_filter_and_any_other_follows_the_owner_rule() {
        assert_eq!(Owner::filter(None), Ok(None));
        assert_eq!(Owner::filter(Some("")), Ok(None));
        assert_eq!(Owner::filter(Some("  ")), Ok(None));
        assert_eq!(
            Owner::filter(Some(" Zoe\u{308} ")),
            Ok(Some(Owner("Zo\u{eb}".to_owned())))
        );
        assert_eq!(
            Owner::filter(Some("\u{0}")),
            Err(OwnerError::ControlCharacter)
        );
        assert_eq!(
            Owner::filter(Some("a\u{200B}")),
            Err(OwnerError::FormatCharacter)
        );
        assert_eq!(
            Owner::filter(Some(&"a".repeat(101))),
            Err(OwnerError::TooLong)
        );
    }

    #[test]
    fn entry_kinds_round_trip_through_text() {
        for kind in [
            "opening",
            "deposit",
            "withdrawal",
            "transfer_in",
            "transfer_out",
            "closing",
        ] {
            assert_eq!(
                LedgerEntryKind::parse(kind).map(LedgerEntryKind::as_str),
                Some(kind)
            );
        }
        assert_eq!(LedgerEntryKind::parse("refund"), None);
    }
}
