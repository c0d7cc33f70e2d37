//! Exact money: ISO 4217 currencies and amounts as i64 minor units, parsed from and formatted to decimal text.
//!
//! No floating point is involved anywhere: a JSON number is read from its exact text (see `http::body`).

use std::fmt;

use iso_currency::IntoEnumIterator;

/// An active ISO 4217 currency that has a minor unit (so `XAU`, `XDR` and superseded codes are refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    inner: iso_currency::Currency,
    exponent: u8,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an active ISO 4217 currency code")]
pub struct CurrencyError(pub String);

impl Currency {
    /// Parses a code, normalising to upper case; surrounding whitespace is not accepted.
    pub fn parse(code: &str) -> Result<Self, CurrencyError> {
        let upper = code.to_ascii_uppercase();
        iso_currency::Currency::from_code(&upper)
            .filter(|c| c.is_superseded().is_none())
            .and_then(|inner| {
                let exponent = u8::try_from(inner.exponent()?).ok()?;
                Some(Self { inner, exponent })
            })
            .ok_or(CurrencyError(code.to_owned()))
    }

    /// Every currency `parse` accepts, sorted by code (for forms and documentation).
    pub fn all() -> Vec<Self> {
        let mut all: Vec<Self> = iso_currency::Currency::iter()
            .filter_map(|c| Self::parse(c.code()).ok())
            .collect();
        all.sort_by_key(|c| c.code());
        all
    }

    pub fn code(&self) -> &'static str {
        self.inner.code()
    }

    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// Number of decimal places of the minor unit (EUR 2, JPY 0, KWD 3).
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A non-negative quantity of money in minor units of some currency (the currency is carried alongside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Amount(i64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    #[error("amount {0:?} is not a plain decimal number (digits, optionally a point and digits)")]
    Malformed(String),
    #[error("amount {text:?} has more than {exponent} decimal places, which {currency} allows")]
    TooManyDecimals {
        text: String,
        exponent: u8,
        currency: &'static str,
    },
    #[error("amount {0:?} is too large")]
    TooLarge(String),
    #[error("amount must be greater than zero")]
    NotPositive,
}

/// Decimal text split at the point, checked against the grammar `digits ["." digits]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DecimalText<'a> {
    whole: &'a str,
    fraction: &'a str,
}

impl<'a> DecimalText<'a> {
    fn parse(text: &'a str) -> Result<Self, AmountError> {
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (text, ""),
        };
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let fraction_ok = (fraction.is_empty() && !text.ends_with('.')) || all_digits(fraction);
        if all_digits(whole) && fraction_ok {
            Ok(Self { whole, fraction })
        } else {
            Err(AmountError::Malformed(text.to_owned()))
        }
    }
}

impl Amount {
    pub const ZERO: Amount = Amount(0);

    /// Parses decimal text such as `"100.50"` in `currency`, refusing to round.
    pub fn parse(text: &str, currency: Currency) -> Result<Self, AmountError> {
        let decimal = DecimalText::parse(text)?;
        let exponent = currency.exponent();
        if decimal.fraction.len() > usize::from(exponent) {
            return Err(AmountError::TooManyDecimals {
                text: text.to_owned(),
                exponent,
                currency: currency.code(),
            });
        }
        let too_large = || AmountError::TooLarge(text.to_owned());
        // Pad the fraction to the currency's exponent: "1.5" EUR is 150 minor units.
        let padding = usize::from(exponent) - decimal.fraction.len();
        let mut minor: i64 = 0;
        let digits = decimal
            .whole
            .bytes()
            .chain(decimal.fraction.bytes())
            .chain(std::iter::repeat_n(b'0', padding));
        for digit in digits {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(i64::from(digit - b'0')))
                .ok_or_else(too_large)?;
        }
        Ok(Self(minor))
    }

    /// Like `parse`, for deposits, withdrawals and transfers, which must move something.
    pub fn parse_positive(text: &str, currency: Currency) -> Result<Self, AmountError> {
        match Self::parse(text, currency)? {
            Self::ZERO => Err(AmountError::NotPositive),
            amount => Ok(amount),
        }
    }

    /// An amount read back from storage, where the database guarantees it is non-negative.
    pub fn from_minor(minor: i64) -> Option<Self> {
        (minor >= 0).then_some(Self(minor))
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }

    /// Formats with exactly the currency's decimals: `"999.00"` EUR, `"1000"` JPY, `"1.500"` KWD.
    pub fn format(self, currency: Currency) -> String {
        let exponent = u32::from(currency.exponent());
        if exponent == 0 {
            return self.0.to_string();
        }
        let scale = 10_i64.pow(exponent);
        format!(
            "{}.{:0width$}",
            self.0 / scale,
            self.0 % scale,
            width = exponent as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("test currency exists")
    }

    #[test]
    fn currency_codes_are_normalised_to_upper_case() {
        assert_eq!(currency("eur").code(), "EUR");
        assert_eq!(currency("Jpy").exponent(), 0);
        assert_eq!(currency("KWD").exponent(), 3);
    }

    #[test]
    fn unknown_superseded_and_unitless_codes_are_refused() {
        for code in ["XYZ", "", "EURO", " EUR", "XAU", "XDR", "VEF"] {
            assert!(Currency::parse(code).is_err(), "{code:?} should be refused");
        }
    }

    #[test]
    fn every_listed_currency_parses_back_to_itself() {
        let all = Currency::all();
        assert!(all.len() > 150, "only {} currencies", all.len());
        for c in all {
            assert_eq!(Currency::parse(c.code()), Ok(c));
        }
    }

    #[test]
    fn amounts_parse_into_minor_units_without_rounding() {
        assert_eq!(Amount::parse("100.00", currency("EUR")), Ok(Amount(10_000)));
        assert_eq!(Amount::parse("100.5", currency("EUR")), Ok(Amount(10_050)));
        assert_eq!(Amount::parse("100", currency("EUR")), Ok(Amount(10_000)));
        assert_eq!(Amount::parse("0.1", currency("EUR")), Ok(Amount(10)));
        assert_eq!(Amount::parse("1000", currency("JPY")), Ok(Amount(1000)));
        assert_eq!(Amount::parse("1.5", currency("KWD")), Ok(Amount(1500)));
        assert_eq!(Amount::parse("007.50", currency("EUR")), Ok(Amount(750)));
    }

    #[test]
    fn too_many_decimals_is_an_error_not_a_rounding() {
        assert!(matches!(
            Amount::parse("1.001", currency("EUR")),
            Err(AmountError::TooManyDecimals { exponent: 2, .. })
        ));
        assert!(matches!(
            Amount::parse("1.0", currency("JPY")),
            Err(AmountError::TooManyDecimals { exponent: 0, .. })
        ));
    }

    #[test]
    fn text_outside_the_grammar_is_malformed() {
        for text in [
            "", ".", "1.", ".5", "-1", "+1", "1e3", "1E3", " 1", "1 ", "1,5", "NaN", "inf", "0x10",
            "1.2.3", "١", "１",
        ] {
            assert!(
                matches!(
                    Amount::parse(text, currency("EUR")),
                    Err(AmountError::Malformed(_))
                ),
                "{text:?} should be malformed"
            );
        }
    }

    #[test]
    fn amounts_beyond_i64_minor_units_are_too_large() {
        assert_eq!(
            Amount::parse("92233720368547758.07", currency("EUR")),
            Ok(Amount(i64::MAX))
        );
        assert!(matches!(
            Amount::parse("92233720368547758.08", currency("EUR")),
            Err(AmountError::TooLarge(_))
        ));
        assert!(matches!(
            Amount::parse(&"9".repeat(400), currency("JPY")),
            Err(AmountError::TooLarge(_))
        ));
    }

    #[test]
    fn zero_is_refused_only_where_something_must_move() {
        assert_eq!(Amount::parse("0.00", currency("EUR")), Ok(Amount::ZERO));
        assert_eq!(
            Amount::parse_positive("0.00", currency("EUR")),
            Err(AmountError::NotPositive)
        );
    }

    #[test]
    fn formatting_uses_exactly_the_currency_decimals() {
        assert_eq!(Amount(99_900).format(currency("EUR")), "999.00");
        assert_eq!(Amount(1000).format(currency("JPY")), "1000");
        assert_eq!(Amount(1500).format(currency("KWD")), "1.500");
        assert_eq!(Amount(5).format(currency("EUR")), "0.05");
        assert_eq!(
            Amount(i64::MAX).format(currency("EUR")),
            "92233720368547758.07"
        );
    }

    fn currencies() -> impl Strategy<Value = Currency> {
        prop_oneof![Just("JPY"), Just("EUR"), Just("KWD"), Just("CLF")].prop_map(currency)
    }

    proptest! {
        #[test]
        fn format_then_parse_is_the_identity(minor in 0..=i64::MAX, c in currencies()) {
            let amount = Amount(minor);
            prop_assert_eq!(Amount::parse(&amount.format(c), c), Ok(amount));
        }

        #[test]
        fn parse_then_format_pads_to_the_exponent(
            whole in "[1-9][0-9]{0,12}", fraction in "[0-9]{0,4}", c in currencies()
        ) {
            let text = if fraction.is_empty() { whole.clone() } else { format!("{whole}.{fraction}") };
            match Amount::parse(&text, c) {
                Ok(amount) => {
                    prop_assert!(fraction.len() <= usize::from(c.exponent()));
                    let formatted = amount.format(c);
                    let expected_fraction = format!("{fraction:0<width$}", width = usize::from(c.exponent()));
                    let expected = if c.exponent() == 0 { whole } else { format!("{whole}.{expected_fraction}") };
                    prop_assert_eq!(formatted, expected);
                }
                Err(AmountError::TooManyDecimals { .. }) => {
                    prop_assert!(fraction.len() > usize::from(c.exponent()))
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn anything_outside_the_grammar_is_rejected(text in "\\PC{0,12}", c in currencies()) {
            let in_grammar = {
                let (w, f) = text.split_once('.').unwrap_or((&text, ""));
                let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                digits(w) && (digits(f) || (f.is_empty() && !text.contains('.')))
            };
            if !in_grammar {
                prop_assert!(matches!(Amount::parse(&text, c), Err(AmountError::Malformed(_))));
            }
        }

        #[test]
        fn signs_exponents_and_spaces_are_always_rejected(
            n in "[0-9]{1,6}(\\.[0-9]{1,2})?", prefix in "[-+ ]", suffix in "([eE][+-]?[0-9]{1,2}| )?"
        ) {
            let text = format!("{prefix}{n}{suffix}");
            prop_assert!(matches!(Amount::parse(&text, currency("EUR")), Err(AmountError::Malformed(_))));
        }
    }
}
