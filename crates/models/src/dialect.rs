//! The dialect switch: how values serialize for STET 1.4.x or 1.5.
//!
//! Parsing never needs to know the dialect: every tolerant type accepts both forms. Writing does,
//! because a 1.4 bank wants `"amount": "12.50"` and a 1.5 bank wants `"amount": 12.50`. Serde has
//! no way to pass context down to a field's `Serialize`, so the dialect is a thread-local setting
//! that [`to_json_vec`], [`to_json_string`] and [`to_json_value`] set for the duration of one call
//! (and restore afterwards, even on panic). Plain `serde_json::to_*` calls see
//! [`Dialect::default()`], that is 1.5.

use std::cell::Cell;

use serde::Serialize;

/// Which STET version's wire forms to write.
///
/// | | 1.4 | 1.5 |
/// |---|---|---|
/// | [`Amount`](crate::Amount) | string `"12.50"` | number `12.50` |
/// | [`RemittanceInformation`](crate::RemittanceInformation) | array of lines | object `{"unstructured": [...]}` |
///
/// Dates are written as they were read (a 1.4 `date` stays a date), so they do not depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialect {
    /// STET 1.4.x, which most French banks run.
    V1_4,
    /// STET 1.5 (and 1.6, whose wire forms are the same for these types). The default.
    #[default]
    V1_5,
}

thread_local! {
    static CURRENT: Cell<Dialect> = const { Cell::new(Dialect::V1_5) };
}

impl Dialect {
    /// The dialect serializers on this thread write right now.
    pub fn current() -> Dialect {
        CURRENT.with(Cell::get)
    }

    /// Runs `f` with `self` as the current dialect, then restores the previous one.
    pub fn scope<R>(self, f: impl FnOnce() -> R) -> R {
        struct Restore(Dialect);
        impl Drop for Restore {
            fn drop(&mut self) {
                CURRENT.with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(CURRENT.with(|c| c.replace(self)));
        f()
    }
}

/// Serializes `value` to JSON bytes in `dialect`: the bytes to send (and to digest and sign).
pub fn to_json_vec<T: Serialize + ?Sized>(
    value: &T,
    dialect: Dialect,
) -> Result<Vec<u8>, serde_json::Error> {
    dialect.scope(|| serde_json::to_vec(value))
}

/// Serializes `value` to a JSON string in `dialect`.
pub fn to_json_string<T: Serialize + ?Sized>(
    value: &T,
    dialect: Dialect,
) -> Result<String, serde_json::Error> {
    dialect.scope(|| serde_json::to_string(value))
}

/// Serializes `value` to a [`serde_json::Value`] in `dialect`. Numbers keep their exact digits.
pub fn to_json_value<T: Serialize + ?Sized>(
    value: &T,
    dialect: Dialect,
) -> Result<serde_json::Value, serde_json::Error> {
    dialect.scope(|| serde_json::to_value(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_restores_the_previous_dialect() {
        assert_eq!(Dialect::current(), Dialect::V1_5);
        Dialect::V1_4.scope(|| {
            assert_eq!(Dialect::current(), Dialect::V1_4);
            Dialect::V1_5.scope(|| assert_eq!(Dialect::current(), Dialect::V1_5));
            assert_eq!(Dialect::current(), Dialect::V1_4);
        });
        assert_eq!(Dialect::current(), Dialect::V1_5);
    }

    #[test]
    fn scope_restores_after_a_panic() {
        let caught = std::panic::catch_unwind(|| Dialect::V1_4.scope(|| panic!("boom")));
        assert!(caught.is_err());
        assert_eq!(Dialect::current(), Dialect::V1_5);
    }
}
