//! [`StetDateTime`] and [`StetDate`]: the dates banks actually send.
//!
//! The spec says ISO 8601 `date-time` (1.5) or `date` (1.4 for booking and value dates). Banks
//! send `2020-02-24T00:00Z` (no seconds, in the spec's own example), `2019-01-12T10:26:43.123+01:00`,
//! `2019-01-12T10:26:43+0100` (no colon), `2019-01-12T10:26:43` (no offset), `2019-01-12`, and
//! sometimes `""` for "no date". All of these parse; an empty string reads as an absent field
//! (see [`deserialize_empty_as_none`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// A point in time as a bank wrote it: with an offset, without one, or as a bare date.
///
/// It writes back in the same form (seconds always included; sub-seconds only when non-zero),
/// so a 1.4 `date` stays a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StetDateTime {
    /// Date and time with a UTC offset: the form the spec asks for.
    Offset(OffsetDateTime),
    /// Date and time without an offset (the bank's local time, usually Europe/Paris).
    Local(PrimitiveDateTime),
    /// A date without time (STET 1.4 booking, value and reference dates).
    Date(Date),
}

impl StetDateTime {
    /// The calendar date, in the bank's offset or local time.
    pub fn date(&self) -> Date {
        match self {
            StetDateTime::Offset(t) => t.date(),
            StetDateTime::Local(t) => t.date(),
            StetDateTime::Date(d) => *d,
        }
    }

    /// A point in time, reading a missing offset as `offset` and a bare date as its midnight.
    pub fn to_offset_date_time(&self, offset: UtcOffset) -> OffsetDateTime {
        match self {
            StetDateTime::Offset(t) => *t,
            StetDateTime::Local(t) => t.assume_offset(offset),
            StetDateTime::Date(d) => d.midnight().assume_offset(offset),
        }
    }
}

impl From<OffsetDateTime> for StetDateTime {
    fn from(value: OffsetDateTime) -> Self {
        StetDateTime::Offset(value)
    }
}

impl From<Date> for StetDateTime {
    fn from(value: Date) -> Self {
        StetDateTime::Date(value)
    }
}

/// A calendar date. Accepts a date-time too, keeping its date as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StetDate(pub Date);

impl From<Date> for StetDate {
    fn from(value: Date) -> Self {
        StetDate(value)
    }
}

/// Why a text is not a STET date or date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an ISO 8601 date or date-time: {text:?}")]
pub struct ParseDateError {
    text: String,
}

impl FromStr for StetDateTime {
    type Err = ParseDateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse(s.trim()).ok_or_else(|| ParseDateError {
            text: s.chars().take(64).collect(),
        })
    }
}

impl FromStr for StetDate {
    type Err = ParseDateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StetDateTime::from_str(s).map(|t| StetDate(t.date()))
    }
}

/// A small cursor over ASCII bytes; every read is checked, so malformed input is an error.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<u32> {
        let chunk = self.bytes.get(self.pos..self.pos + n)?;
        let mut value = 0u32;
        for &b in chunk {
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u32::from(b - b'0');
        }
        self.pos += n;
        Some(value)
    }

    fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }
}

fn parse(s: &str) -> Option<StetDateTime> {
    let mut c = Cursor {
        bytes: s.as_bytes(),
        pos: 0,
    };
    let year = c.digits(4)?;
    c.eat(b'-').then_some(())?;
    let month = c.digits(2)?;
    c.eat(b'-').then_some(())?;
    let day = c.digits(2)?;
    let month = Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date =
        Date::from_calendar_date(i32::try_from(year).ok()?, month, u8::try_from(day).ok()?).ok()?;
    if c.at_end() {
        return Some(StetDateTime::Date(date));
    }
    if !(c.eat(b'T') || c.eat(b't') || c.eat(b' ')) {
        return None;
    }
    let hour = c.digits(2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2)?;
    let mut second = 0;
    let mut nanos = 0u32;
    if c.eat(b':') {
        second = c.digits(2)?;
        if c.eat(b'.') || c.eat(b',') {
            let start = c.pos;
            let mut scale = 100_000_000u32;
            while let Some(b) = c.peek().filter(u8::is_ascii_digit) {
                nanos += u32::from(b - b'0') * scale;
                scale /= 10;
                c.pos += 1;
            }
            if c.pos == start {
                return None;
            }
        }
    }
    let time = Time::from_hms_nano(
        u8::try_from(hour).ok()?,
        u8::try_from(minute).ok()?,
        u8::try_from(second).ok()?,
        nanos,
    )
    .ok()?;
    let local = PrimitiveDateTime::new(date, time);
    if c.at_end() {
        return Some(StetDateTime::Local(local));
    }
    let offset = if c.eat(b'Z') || c.eat(b'z') {
        UtcOffset::UTC
    } else {
        let sign: i8 = if c.eat(b'+') {
            1
        } else if c.eat(b'-') {
            -1
        } else {
            return None;
        };
        let hours = i8::try_from(c.digits(2)?).ok()?;
        let minutes = if c.at_end() {
            0
        } else {
            c.eat(b':');
            i8::try_from(c.digits(2)?).ok()?
        };
        UtcOffset::from_hms(sign * hours, sign * minutes, 0).ok()?
    };
    c.at_end()
        .then(|| StetDateTime::Offset(local.assume_offset(offset)))
}

fn write_date(f: &mut fmt::Formatter<'_>, d: Date) -> fmt::Result {
    write!(
        f,
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    )
}

fn write_time(f: &mut fmt::Formatter<'_>, t: Time) -> fmt::Result {
    write!(f, "{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())?;
    let nanos = t.nanosecond();
    if nanos == 0 {
        Ok(())
    } else if nanos.is_multiple_of(1_000_000) {
        write!(f, ".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        write!(f, ".{:06}", nanos / 1_000)
    } else {
        write!(f, ".{nanos:09}")
    }
}

impl fmt::Display for StetDateTime {
    /// RFC 3339 for date-times (`Z` for UTC), `YYYY-MM-DD` for dates.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StetDateTime::Offset(t) => {
                write_date(f, t.date())?;
                f.write_str("T")?;
                write_time(f, t.time())?;
                let o = t.offset();
                if o.is_utc() {
                    f.write_str("Z")
                } else {
                    let sign = if o.is_negative() { '-' } else { '+' };
                    write!(
                        f,
                        "{sign}{:02}:{:02}",
                        o.whole_hours().unsigned_abs(),
                        o.minutes_past_hour().unsigned_abs()
                    )
                }
            }
            StetDateTime::Local(t) => {
                write_date(f, t.date())?;
                f.write_str("T")?;
                write_time(f, t.time())
            }
            StetDateTime::Date(d) => write_date(f, *d),
        }
    }
}

impl fmt::Display for StetDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_date(f, self.0)
    }
}

macro_rules! serde_via_str {
    ($ty:ty, $what:literal) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(V)
            }
        }
    };
}

serde_via_str!(StetDateTime, "an ISO 8601 date-time or date");
serde_via_str!(StetDate, "an ISO 8601 date");

/// Reads an optional date field where `""`, whitespace or `null` mean "absent".
///
/// The generated models use it as `#[serde(default, deserialize_with = "...")]` on every
/// optional date and date-time field.
pub fn deserialize_empty_as_none<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<T> serde::de::Visitor<'_> for V<T>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a date, an empty string or null")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Option<T>, E> {
            if v.trim().is_empty() {
                Ok(None)
            } else {
                v.parse().map(Some).map_err(E::custom)
            }
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_none<E: serde::de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
    }
    deserializer.deserialize_any(V(std::marker::PhantomData))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_banks_send() {
        for (text, written) in [
            ("2020-02-24T00:00Z", "2020-02-24T00:00:00Z"),
            (
                "2019-01-12T10:26:43.123+01:00",
                "2019-01-12T10:26:43.123+01:00",
            ),
            ("2019-01-12T10:26:43+0100", "2019-01-12T10:26:43+01:00"),
            ("2019-01-12T10:26:43+01", "2019-01-12T10:26:43+01:00"),
            ("2019-01-12T10:26:43-03:30", "2019-01-12T10:26:43-03:30"),
            ("2019-01-12T10:26:43", "2019-01-12T10:26:43"),
            ("2019-01-12T10:26:43.5", "2019-01-12T10:26:43.500"),
            (
                "2019-01-12T10:26:43.123456789Z",
                "2019-01-12T10:26:43.123456789Z",
            ),
            ("2019-01-12", "2019-01-12"),
            (" 2019-01-12 ", "2019-01-12"),
        ] {
            let t: StetDateTime = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(t.to_string(), written, "{text}");
            assert_eq!(written.parse::<StetDateTime>().unwrap(), t);
        }
    }

    #[test]
    fn rejects_what_is_not_a_date() {
        for text in [
            "",
            "2019",
            "2019-13-01",
            "2019-02-30",
            "2019-01-12T25:00",
            "2019-01-12T10:26:43+",
            "2019-01-12T10:26:43.",
            "2019-01-12X",
            "12/01/2019",
            "2019-01-12T10:26:43+01:00junk",
        ] {
            assert!(text.parse::<StetDateTime>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_date_field_takes_the_date_of_a_date_time() {
        let d: StetDate = "1985-02-19T00:00:00+01:00".parse().unwrap();
        assert_eq!(d.to_string(), "1985-02-19");
    }

    #[test]
    fn empty_means_absent() {
        #[derive(Deserialize)]
        struct T {
            #[serde(default, deserialize_with = "deserialize_empty_as_none")]
            d: Option<StetDateTime>,
        }
        for json in [r#"{"d": ""}"#, r#"{"d": null}"#, r#"{}"#, r#"{"d": "  "}"#] {
            assert_eq!(serde_json::from_str::<T>(json).unwrap().d, None, "{json}");
        }
        assert!(
            serde_json::from_str::<T>(r#"{"d": "2019-01-12"}"#)
                .unwrap()
                .d
                .is_some()
        );
        assert!(serde_json::from_str::<T>(r#"{"d": "soon"}"#).is_err());
    }
}
