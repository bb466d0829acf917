//! Powens' naive date-times, read as Europe/Paris.
//!
//! Powens writes date-times as `YYYY-MM-DD HH:MM:SS` without an offset: the local time of
//! Paris, where its servers and most of its banks are. [`ParisDateTime`] reads them into an
//! instant with the offset that was in force: UTC+1 in winter (CET), UTC+2 in summer (CEST).
//!
//! The offsets come from the IANA time-zone database's `Europe/Paris` (through `jiff`, which
//! carries a copy of the database built in, so no system files are needed and every machine
//! reads the same times), not from a rule written here.
//!
//! Two local times need a choice, made as Python's `zoneinfo` does with `fold=0` (the test
//! compares the two): in the autumn hour that happens twice (02:00–02:59), the first one,
//! summer time; in the spring hour that never happens (02:00–02:59), the offset in force just
//! before, winter time (so 02:30 is 01:30 UTC, shown as 03:30 after the change). That is
//! jiff's `compatible` disambiguation.

use std::fmt;
use std::sync::OnceLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// Central European Time: what is assumed for an instant outside the database's range.
const CET: UtcOffset = match UtcOffset::from_hms(1, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// `Europe/Paris` from the bundled database.
fn paris() -> &'static jiff::tz::TimeZone {
    static PARIS: OnceLock<jiff::tz::TimeZone> = OnceLock::new();
    PARIS.get_or_init(|| {
        // The database is compiled in (`tzdb-bundle-always`): the lookup cannot miss. Should
        // it ever, a fixed CET is the least wrong answer.
        jiff::tz::TimeZone::get("Europe/Paris")
            .unwrap_or_else(|_| jiff::tz::TimeZone::fixed(jiff::tz::offset(1)))
    })
}

fn to_time_offset(offset: jiff::tz::Offset) -> UtcOffset {
    UtcOffset::from_whole_seconds(offset.seconds()).unwrap_or(CET)
}

/// The offset of Paris at an instant.
pub fn offset_at(instant: OffsetDateTime) -> UtcOffset {
    // Out of jiff's range (years beyond ±9999): no summer time to speak of.
    match jiff::Timestamp::new(instant.unix_timestamp(), 0) {
        Ok(ts) => to_time_offset(paris().to_offset(ts)),
        Err(_) => CET,
    }
}

/// The instant a Paris wall-clock time stands for (see the module for the two edge cases),
/// with the offset Paris had then.
pub fn from_local(local: PrimitiveDateTime) -> OffsetDateTime {
    let instant = jiff::civil::DateTime::new(
        local.year() as i16,
        u8::from(local.month()) as i8,
        local.day() as i8,
        local.hour() as i8,
        local.minute() as i8,
        local.second() as i8,
        local.nanosecond() as i32,
    )
    .ok()
    .and_then(|c| paris().to_ambiguous_timestamp(c).compatible().ok())
    .and_then(|ts| OffsetDateTime::from_unix_timestamp_nanos(ts.as_nanosecond()).ok());
    match instant {
        Some(t) => t.checked_to_offset(offset_at(t)).unwrap_or(t),
        // Beyond the database's range: winter time, as for `offset_at`.
        None => local.assume_offset(CET),
    }
}

/// An instant as Powens writes its date-times: Paris local time, `YYYY-MM-DD HH:MM:SS`
/// (the fraction of a second dropped).
pub fn local_text(instant: OffsetDateTime) -> String {
    let local = instant
        .checked_to_offset(offset_at(instant))
        .unwrap_or(instant);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second()
    )
}

/// A Powens date-time: an instant, read from Paris local time (or from an explicit offset,
/// should Powens ever send one). Writes back in RFC 3339 with Paris' offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ParisDateTime(pub OffsetDateTime);

impl ParisDateTime {
    /// The instant, with the offset Paris had then.
    pub fn instant(&self) -> OffsetDateTime {
        self.0
    }

    /// The calendar date in Paris.
    pub fn date(&self) -> Date {
        self.0
            .checked_to_offset(offset_at(self.0))
            .map_or(self.0.date(), |t| t.date())
    }
}

/// Why a text is not a Powens date-time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a date-time (expected YYYY-MM-DD HH:MM:SS): {0:?}")]
pub struct ParseError(String);

impl std::str::FromStr for ParisDateTime {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ParseError(s.chars().take(64).collect());
        let text = s.trim();
        // An explicit offset wins: RFC 3339, or the same with a space.
        let rfc = text.replacen(' ', "T", 1);
        if let Ok(t) = OffsetDateTime::parse(&rfc, &time::format_description::well_known::Rfc3339) {
            return Ok(ParisDateTime(
                t.checked_to_offset(offset_at(t)).unwrap_or(t),
            ));
        }
        let (date, clock) = match text.split_once([' ', 'T']) {
            Some((d, c)) => (d, Some(c)),
            None => (text, None),
        };
        let date = Date::parse(
            date,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .map_err(|_| err())?;
        let clock = match clock {
            None => Time::MIDNIGHT,
            Some(c) => {
                let (hms, fraction) = c.split_once('.').unwrap_or((c, ""));
                let mut t = Time::parse(
                    hms,
                    time::macros::format_description!("[hour]:[minute]:[second]"),
                )
                .or_else(|_| Time::parse(hms, time::macros::format_description!("[hour]:[minute]")))
                .map_err(|_| err())?;
                if !fraction.is_empty() {
                    if !fraction.bytes().all(|b| b.is_ascii_digit()) || fraction.len() > 9 {
                        return Err(err());
                    }
                    let nanos: u32 = format!("{fraction:0<9}").parse().map_err(|_| err())?;
                    t = t.replace_nanosecond(nanos).map_err(|_| err())?;
                }
                t
            }
        };
        let instant = from_local(PrimitiveDateTime::new(date, clock));
        Ok(ParisDateTime(
            instant
                .checked_to_offset(offset_at(instant))
                .unwrap_or(instant),
        ))
    }
}

impl fmt::Display for ParisDateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self
            .0
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

impl Serialize for ParisDateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ParisDateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> String {
        s.parse::<ParisDateTime>().unwrap().to_string()
    }

    #[test]
    fn winter_summer_and_the_two_changes() {
        assert_eq!(at("2026-01-15 09:30:00"), "2026-01-15T09:30:00+01:00");
        assert_eq!(at("2026-07-14 22:00:00"), "2026-07-14T22:00:00+02:00");
        // 29 March 2026: 02:00 CET becomes 03:00 CEST; 02:30 does not exist.
        assert_eq!(at("2026-03-29 01:59:59"), "2026-03-29T01:59:59+01:00");
        assert_eq!(at("2026-03-29 02:30:00"), "2026-03-29T03:30:00+02:00");
        assert_eq!(at("2026-03-29 03:00:00"), "2026-03-29T03:00:00+02:00");
        // 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice, the first kept.
        assert_eq!(at("2026-10-25 02:30:00"), "2026-10-25T02:30:00+02:00");
        assert_eq!(at("2026-10-25 03:00:00"), "2026-10-25T03:00:00+01:00");
        // Other forms: T, fraction, a bare date, an explicit offset.
        assert_eq!(at("2026-01-15T09:30:00.5"), "2026-01-15T09:30:00.5+01:00");
        assert_eq!(at("2026-06-01"), "2026-06-01T00:00:00+02:00");
        assert_eq!(at("2026-06-01T10:00:00Z"), "2026-06-01T12:00:00+02:00");
        for bad in [
            "",
            "yesterday",
            "2026-02-30 10:00:00",
            "2026-01-01 25:00:00",
            "2026-01-01 10:00:00.x",
        ] {
            assert!(bad.parse::<ParisDateTime>().is_err(), "{bad}");
        }
        let t: ParisDateTime = serde_json::from_str("\"2026-12-24 18:00:00\"").unwrap();
        assert_eq!(t.date().to_string(), "2026-12-24");
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-12-24T18:00:00+01:00\""
        );
    }

    #[test]
    fn instants_are_written_as_paris_local_time() {
        let utc = |s: &str| {
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
        };
        assert_eq!(
            local_text(utc("2026-01-15T08:30:00.9Z")),
            "2026-01-15 09:30:00"
        );
        assert_eq!(
            local_text(utc("2026-07-14T20:00:00Z")),
            "2026-07-14 22:00:00"
        );
        assert_eq!(
            local_text(utc("2026-12-31T23:30:00Z")),
            "2027-01-01 00:30:00"
        );
        // Read back, each is the same instant (to the second)...
        for t in ["2026-03-29T01:30:00Z", "2026-10-25T00:30:00Z"] {
            let back: ParisDateTime = local_text(utc(t)).parse().unwrap();
            assert_eq!(back.instant(), utc(t), "{t}");
        }
        // ...but for the second 02:30 of 25 October, read as the first: an hour earlier,
        // never later, so as a lower bound (`last_update`) it loses nothing.
        let back: ParisDateTime = local_text(utc("2026-10-25T01:30:00Z")).parse().unwrap();
        assert_eq!(back.instant(), utc("2026-10-25T00:30:00Z"));
    }
}
