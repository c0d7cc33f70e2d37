//! Holds: money reserved in a wallet, to be captured or released later. Their ids, states and lifetimes.

use std::fmt;

use super::WalletId;

/// A hold id: a positive integer in its canonical spelling, like a wallet id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HoldId(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not a hold id (a positive integer)")]
pub struct HoldIdError(pub String);

impl HoldId {
    pub fn parse(text: &str) -> Result<Self, HoldIdError> {
        WalletId::parse(text)
            .map(|id| Self(id.get()))
            .map_err(|_| HoldIdError(text.to_owned()))
    }

    pub fn from_db(id: i64) -> Self {
        Self(id)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a hold stands. Only `Pending` counts in the wallet's `held`; the other three are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HoldStatus {
    Pending,
    Captured,
    Voided,
    Expired,
}

impl HoldStatus {
    pub const ALL: [Self; 4] = [Self::Pending, Self::Captured, Self::Voided, Self::Expired];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Captured => "captured",
            Self::Voided => "voided",
            Self::Expired => "expired",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }
}

/// How long a hold lasts before it releases itself: 1 second to 30 days, a week unless the client says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HoldLifetime(u32);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "expires_in must be a whole number of seconds from 1 to {}",
    HoldLifetime::MAX_SECONDS
)]
pub struct HoldLifetimeError;

impl HoldLifetime {
    pub const MAX_SECONDS: u32 = 2_592_000;
    pub const DEFAULT: Self = Self(604_800);

    /// Seconds as the client wrote them (a JSON number or string of digits).
    pub fn parse(text: &str) -> Result<Self, HoldLifetimeError> {
        let digits = !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
        match text.parse::<u32>() {
            Ok(seconds) if digits && (1..=Self::MAX_SECONDS).contains(&seconds) => {
                Ok(Self(seconds))
            }
            _ => Err(HoldLifetimeError),
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_whole_seconds_within_thirty_days() {
        assert_eq!(HoldLifetime::parse("1").map(HoldLifetime::seconds), Ok(1));
        assert_eq!(
            HoldLifetime::parse("2592000").map(HoldLifetime::seconds),
            Ok(2_592_000)
        );
        for bad in [
            "0",
            "2592001",
            "-1",
            "1.5",
            "1e3",
            "",
            " 5",
            "99999999999999999999",
        ] {
            assert!(HoldLifetime::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn statuses_round_trip_and_hold_ids_are_canonical() {
        for status in HoldStatus::ALL {
            assert_eq!(HoldStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(HoldStatus::parse("PENDING"), None);
        assert_eq!(HoldId::parse("12").map(HoldId::get), Ok(12));
        assert!(HoldId::parse("012").is_err());
    }
}
