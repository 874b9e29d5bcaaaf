//! Money in integer cents and data in whole megabytes: no `f64` arithmetic on the way to a charge.
//!
//! The tau2 file shape writes dollars and gigabytes as floating-point numbers (`total_due = 160.5`,
//! `data_used_gb = 3.2`); they are converted once, when parsed, and written back the same way.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a number was not accepted as an amount of money or data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidAmount {
    #[error("{what} {value} is not a finite number")]
    NotFinite { what: &'static str, value: f64 },
    #[error("{what} {value} is out of range")]
    OutOfRange { what: &'static str, value: f64 },
    #[error("{what} {value} has a fraction of a cent")]
    FractionOfCent { what: &'static str, value: f64 },
    #[error("{what} {value} is negative")]
    Negative { what: &'static str, value: f64 },
}

/// Largest amount of money the store accepts: a trillion dollars.
const MAX_DOLLARS: f64 = 1e12;

/// An amount of US dollars, in cents; negative for credits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money {
    cents: i64,
}

impl Money {
    pub const ZERO: Money = Money { cents: 0 };

    pub const fn from_cents(cents: i64) -> Self {
        Self { cents }
    }

    pub const fn cents(self) -> i64 {
        self.cents
    }

    /// Parses a dollar amount written as a float (`160.5`): finite, at most a trillion, and a whole
    /// number of cents (up to float noise such as `0.1 + 0.2`).
    pub fn from_dollars(value: f64) -> Result<Self, InvalidAmount> {
        const WHAT: &str = "amount";
        if !value.is_finite() {
            return Err(InvalidAmount::NotFinite { what: WHAT, value });
        }
        if value.abs() > MAX_DOLLARS {
            return Err(InvalidAmount::OutOfRange { what: WHAT, value });
        }
        let cents_f = value * 100.0;
        let rounded = cents_f.round();
        // Float noise grows with the magnitude: allow a few ulps of the product.
        let tolerance = (cents_f.abs() * f64::EPSILON * 8.0).max(1e-6);
        if (cents_f - rounded).abs() > tolerance {
            return Err(InvalidAmount::FractionOfCent { what: WHAT, value });
        }
        // In range (|value| <= 1e12 so |cents| <= 1e14 < 2^53): exact.
        #[allow(clippy::cast_possible_truncation)]
        Ok(Self { cents: rounded as i64 })
    }

    /// The amount in dollars as a float, for the tau2 file shape and JSON (cents / 100 is exact
    /// to the nearest float, so `16050` reads back as `160.5`).
    #[allow(clippy::cast_precision_loss)]
    pub fn to_dollars(self) -> f64 {
        self.cents as f64 / 100.0
    }

    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.cents.checked_add(other.cents).map(Money::from_cents)
    }

    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.cents.checked_sub(other.cents).map(Money::from_cents)
    }

    pub fn is_negative(self) -> bool {
        self.cents < 0
    }

    /// The price of `data` at `self` per gigabyte (1 GB = 1000 MB), rounded half away from zero
    /// to the cent, in integer arithmetic.
    pub fn per_gb_times(self, data: DataAmount) -> Option<Money> {
        let product = i128::from(self.cents).checked_mul(i128::from(data.megabytes()))?;
        let half = if product >= 0 { 500 } else { -500 };
        let cents = (product + half) / 1000;
        i64::try_from(cents).ok().map(Money::from_cents)
    }

    /// Sum of amounts; `None` on overflow.
    pub fn sum<'a>(amounts: impl IntoIterator<Item = &'a Money>) -> Option<Money> {
        amounts.into_iter().try_fold(Money::ZERO, |total, amount| total.checked_add(*amount))
    }
}

impl fmt::Display for Money {
    /// `$160.50`, `-$5.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.cents < 0 { "-" } else { "" };
        let abs = self.cents.unsigned_abs();
        write!(f, "{sign}${}.{:02}", abs / 100, abs % 100)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.to_dollars())
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Money::from_dollars(value).map_err(serde::de::Error::custom)
    }
}

/// Largest amount of data the store accepts: a million gigabytes.
const MAX_GB: f64 = 1e6;

/// An amount of mobile data, in whole megabytes (1 GB = 1000 MB); never negative.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct DataAmount {
    megabytes: u64,
}

impl DataAmount {
    pub const ZERO: DataAmount = DataAmount { megabytes: 0 };

    pub const fn from_megabytes(megabytes: u64) -> Self {
        Self { megabytes }
    }

    pub const fn megabytes(self) -> u64 {
        self.megabytes
    }

    /// Parses gigabytes written as a float (`3.2`), rounded to the nearest megabyte.
    pub fn from_gb(value: f64) -> Result<Self, InvalidAmount> {
        const WHAT: &str = "data amount";
        if !value.is_finite() {
            return Err(InvalidAmount::NotFinite { what: WHAT, value });
        }
        if value < 0.0 {
            return Err(InvalidAmount::Negative { what: WHAT, value });
        }
        if value > MAX_GB {
            return Err(InvalidAmount::OutOfRange { what: WHAT, value });
        }
        // In range: 0 <= value * 1000 <= 1e9.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Ok(Self { megabytes: (value * 1000.0).round() as u64 })
    }

    /// Gigabytes as a float, for the tau2 file shape and JSON.
    #[allow(clippy::cast_precision_loss)]
    pub fn to_gb(self) -> f64 {
        self.megabytes as f64 / 1000.0
    }

    pub fn checked_add(self, other: DataAmount) -> Option<DataAmount> {
        self.megabytes.checked_add(other.megabytes).map(DataAmount::from_megabytes)
    }

    pub fn saturating_sub(self, other: DataAmount) -> DataAmount {
        DataAmount::from_megabytes(self.megabytes.saturating_sub(other.megabytes))
    }
}

impl fmt::Display for DataAmount {
    /// `3.2 GB`, `2 GB`, `0.5 GB`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.megabytes / 1000;
        let fraction = self.megabytes % 1000;
        if fraction == 0 {
            write!(f, "{whole} GB")
        } else {
            let digits = format!("{fraction:03}");
            write!(f, "{whole}.{} GB", digits.trim_end_matches('0'))
        }
    }
}

impl Serialize for DataAmount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.to_gb())
    }
}

impl<'de> Deserialize<'de> for DataAmount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        DataAmount::from_gb(value).map_err(serde::de::Error::custom)
    }
}

/// The most data one refuel may add (policy: "The maximum amount of data that can be refueled is 2GB").
pub const MAX_REFUEL: DataAmount = DataAmount::from_megabytes(2000);

/// A refuel amount: more than 0 and at most 2 GB, in whole megabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefuelAmount(DataAmount);

impl RefuelAmount {
    /// `None` unless `0 < gb <= 2` and at least one megabyte.
    pub fn from_gb(gb: f64) -> Option<Self> {
        if !(gb.is_finite() && gb > 0.0 && gb <= MAX_REFUEL.to_gb()) {
            return None;
        }
        let amount = DataAmount::from_gb(gb).ok()?;
        (amount.megabytes() >= 1 && amount <= MAX_REFUEL).then_some(Self(amount))
    }

    pub fn amount(self) -> DataAmount {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn dollars_parse_to_cents() {
        assert_eq!(Money::from_dollars(160.5).unwrap().cents(), 16050);
        assert_eq!(Money::from_dollars(0.1 + 0.2).unwrap().cents(), 30);
        assert_eq!(Money::from_dollars(-5.0).unwrap().cents(), -500);
        assert!(matches!(Money::from_dollars(0.005), Err(InvalidAmount::FractionOfCent { .. })));
        assert!(matches!(Money::from_dollars(f64::NAN), Err(InvalidAmount::NotFinite { .. })));
        assert!(matches!(Money::from_dollars(1e13), Err(InvalidAmount::OutOfRange { .. })));
    }

    #[test]
    fn money_displays_as_dollars() {
        assert_eq!(Money::from_cents(16050).to_string(), "$160.50");
        assert_eq!(Money::from_cents(-500).to_string(), "-$5.00");
        assert_eq!(Money::from_cents(7).to_string(), "$0.07");
    }

    #[test]
    fn refuel_prices_at_plan_rate() {
        let check = |per_gb_cents, gb: f64, expected_cents| {
            let data = RefuelAmount::from_gb(gb).unwrap().amount();
            assert_eq!(Money::from_cents(per_gb_cents).per_gb_times(data).unwrap().cents(), expected_cents, "{gb} GB");
        };
        check(500, 2.0, 1000); // Basic: $5/GB
        check(200, 1.5, 300); // Premium: $2/GB
        check(10, 0.5, 5); // Unlimited Plus: $0.10/GB
        check(10, 0.25, 3); // 2.5 cents rounds half up
        check(1000, 0.001, 1); // IoT: $10/GB, 1 MB
    }

    #[test]
    fn refuel_amount_bounds() {
        assert!(RefuelAmount::from_gb(2.0).is_some());
        assert!(RefuelAmount::from_gb(0.001).is_some());
        for bad in [0.0, -1.0, 5.0, 2.0001, 0.0001, f64::NAN, f64::INFINITY, -0.0] {
            assert!(RefuelAmount::from_gb(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn data_displays_as_gigabytes() {
        assert_eq!(DataAmount::from_gb(3.2).unwrap().to_string(), "3.2 GB");
        assert_eq!(DataAmount::from_gb(2.0).unwrap().to_string(), "2 GB");
        assert_eq!(DataAmount::from_gb(0.05).unwrap().to_string(), "0.05 GB");
        assert!(DataAmount::from_gb(-0.1).is_err());
    }

    proptest! {
        #[test]
        fn cents_round_trip_through_dollars(cents in -100_000_000_000_i64..100_000_000_000) {
            let money = Money::from_cents(cents);
            prop_assert_eq!(Money::from_dollars(money.to_dollars()).unwrap(), money);
        }

        #[test]
        fn megabytes_round_trip_through_gigabytes(megabytes in 0_u64..1_000_000_000) {
            let data = DataAmount::from_megabytes(megabytes);
            prop_assert_eq!(DataAmount::from_gb(data.to_gb()).unwrap(), data);
        }

        #[test]
        fn refuel_charge_is_between_floor_and_ceiling(per_gb_cents in 0_i64..100_000, megabytes in 1_u64..=2000) {
            let charge = Money::from_cents(per_gb_cents).per_gb_times(DataAmount::from_megabytes(megabytes)).unwrap();
            let exact_times_1000 = i128::from(per_gb_cents) * i128::from(megabytes);
            let charge_times_1000 = i128::from(charge.cents()) * 1000;
            prop_assert!((charge_times_1000 - exact_times_1000).abs() <= 500);
        }

        #[test]
        fn any_accepted_refuel_is_within_policy(gb in -10.0_f64..10.0) {
            if let Some(amount) = RefuelAmount::from_gb(gb) {
                prop_assert!(gb > 0.0 && gb <= 2.0);
                prop_assert!(amount.amount().megabytes() >= 1 && amount.amount() <= MAX_REFUEL);
            } else {
                prop_assert!(gb <= 0.0005 || gb > 2.0);
            }
        }
    }
}
