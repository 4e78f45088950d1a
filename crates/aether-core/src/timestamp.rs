//! A point in time with the UTC offset it was written in, encoded exactly as Go's
//! `time.Time` marshals to JSON (RFC 3339 with trailing-zero-trimmed nanoseconds).
//!
//! Go keeps the offset of a parsed time and writes it back, so `2024-01-02T03:04:05+02:00`
//! round-trips unchanged; an offset of zero is always written as `Z`, as Go does.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds from 0001-01-01T00:00:00Z (Go's zero time) to the Unix epoch.
const ZERO_TIME_UNIX_SECS: i64 = -62_135_596_800;
/// First second of year 0 (local time): Go refuses to marshal years outside 0..=9999.
const YEAR_0_UNIX_SECS: i64 = -62_167_219_200;
/// First second of year 10000.
const YEAR_10000_UNIX_SECS: i64 = 253_402_300_800;

/// A nanosecond-precision instant plus the UTC offset it is displayed in.
///
/// Equality compares the instant *and* the offset, because the offset is part of the
/// JSON; use [`Timestamp::unix_nanos`] to compare instants only.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    unix_secs: i64,
    nanos: u32,
    offset_secs: i32,
}

impl Timestamp {
    /// Go's zero `time.Time`: `0001-01-01T00:00:00Z`.
    pub const ZERO: Timestamp = Timestamp {
        unix_secs: ZERO_TIME_UNIX_SECS,
        nanos: 0,
        offset_secs: 0,
    };

    /// The current time, in UTC.
    pub fn now() -> Timestamp {
        let d = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            unix_secs: d.as_secs() as i64,
            nanos: d.subsec_nanos(),
            offset_secs: 0,
        }
    }

    /// An instant from Unix nanoseconds, in UTC.
    pub fn from_unix_nanos(nanos: i128) -> Timestamp {
        Timestamp {
            unix_secs: nanos.div_euclid(1_000_000_000) as i64,
            nanos: nanos.rem_euclid(1_000_000_000) as u32,
            offset_secs: 0,
        }
    }

    /// Build from parts; `offset_secs` must be a whole number of minutes within ±24h and the
    /// local date within years 0000..=9999 (what Go can marshal).
    pub fn from_parts(unix_secs: i64, nanos: u32, offset_secs: i32) -> Option<Timestamp> {
        let ts = Timestamp {
            unix_secs,
            nanos,
            offset_secs,
        };
        ts.is_representable().then_some(ts)
    }

    fn is_representable(&self) -> bool {
        let local = self.unix_secs + self.offset_secs as i64;
        self.nanos < 1_000_000_000
            && self.offset_secs % 60 == 0
            && self.offset_secs.abs() < 24 * 3600
            && (YEAR_0_UNIX_SECS..YEAR_10000_UNIX_SECS).contains(&local)
    }

    /// Seconds since the Unix epoch.
    pub fn unix_secs(&self) -> i64 {
        self.unix_secs
    }

    /// Nanoseconds within the second.
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the Unix epoch (negative before 1970).
    pub fn unix_nanos(&self) -> i128 {
        self.unix_secs as i128 * 1_000_000_000 + self.nanos as i128
    }

    /// The UTC offset this time is written with, in seconds east of UTC.
    pub fn offset_secs(&self) -> i32 {
        self.offset_secs
    }

    /// Whether this is Go's zero time (`time.Time{}.IsZero()`).
    pub fn is_zero(&self) -> bool {
        self.unix_secs == ZERO_TIME_UNIX_SECS && self.nanos == 0
    }

    /// Append the RFC 3339 text Go's `MarshalJSON` produces (without quotes).
    pub fn write_rfc3339(&self, out: &mut Vec<u8>) {
        let local = self.unix_secs + self.offset_secs as i64;
        let days = local.div_euclid(86_400);
        let secs_of_day = local.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        push_digits(out, y as u64, 4);
        out.push(b'-');
        push_digits(out, m as u64, 2);
        out.push(b'-');
        push_digits(out, d as u64, 2);
        out.push(b'T');
        push_digits(out, (secs_of_day / 3600) as u64, 2);
        out.push(b':');
        push_digits(out, (secs_of_day / 60 % 60) as u64, 2);
        out.push(b':');
        push_digits(out, (secs_of_day % 60) as u64, 2);
        if self.nanos != 0 {
            let mut frac = self.nanos;
            let mut width = 9;
            while frac % 10 == 0 {
                frac /= 10;
                width -= 1;
            }
            out.push(b'.');
            push_digits(out, frac as u64, width);
        }
        if self.offset_secs == 0 {
            out.push(b'Z');
        } else {
            out.push(if self.offset_secs < 0 { b'-' } else { b'+' });
            let minutes = self.offset_secs.unsigned_abs() / 60;
            push_digits(out, (minutes / 60) as u64, 2);
            out.push(b':');
            push_digits(out, (minutes % 60) as u64, 2);
        }
    }

    /// Parse RFC 3339 as Go's `time.Time.UnmarshalJSON` accepts it.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp, TimestampError> {
        parse(s.as_bytes()).ok_or_else(|| TimestampError(s.to_owned()))
    }
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp::ZERO
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(35);
        self.write_rfc3339(&mut buf);
        // write_rfc3339 emits ASCII only.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse_rfc3339(s)
    }
}

/// Text that is not an RFC 3339 time Go would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp {0:?}")]
pub struct TimestampError(String);

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::with_capacity(35);
        self.write_rfc3339(&mut buf);
        serializer.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(s).map_err(E::custom)
            }
            // Go leaves a time.Time untouched when the JSON value is null.
            fn visit_unit<E: de::Error>(self) -> Result<Timestamp, E> {
                Ok(Timestamp::ZERO)
            }
        }
        deserializer.deserialize_any(V)
    }
}

fn push_digits(out: &mut Vec<u8>, mut v: u64, width: usize) {
    let start = out.len();
    out.resize(start + width, b'0');
    for i in (start..start + width).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 → (year, month, day). Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

fn num(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32)
    })
}

fn parse(b: &[u8]) -> Option<Timestamp> {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't') {
        return None;
    }
    let year = num(&b[0..4])? as i64;
    let month = num(&b[5..7])?;
    let day = num(&b[8..10])?;
    let hour = num(&b[11..13])?;
    let minute = num(&b[14..16])?;
    let second = num(&b[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b[i] == b'.' || b[i] == b',' {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            // Digits past nanoseconds are accepted and truncated, as Go does.
            if i - start < 9 {
                nanos = nanos * 10 + (b[i] - b'0') as u32;
            }
            i += 1;
        }
        let digits = i - start;
        if digits == 0 {
            return None;
        }
        for _ in digits..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match &b[i..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = num(&[*h1, *h2])?;
            let m = num(&[*m1, *m2])?;
            if h > 23 || m > 59 {
                return None;
            }
            let off = (h * 3600 + m * 60) as i32;
            if *sign == b'-' {
                -off
            } else {
                off
            }
        }
        _ => return None,
    };
    let local =
        days_from_civil(year, month, day) * 86_400 + (hour * 3600 + minute * 60 + second) as i64;
    Timestamp::from_parts(local - offset_secs as i64, nanos, offset_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(s: &str) -> String {
        Timestamp::parse_rfc3339(s).unwrap().to_string()
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(Timestamp::ZERO.to_string(), "0001-01-01T00:00:00Z");
        assert_eq!(
            Timestamp::from_unix_nanos(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(1_700_000_000_120_000_000).to_string(),
            "2023-11-14T22:13:20.12Z"
        );
        assert_eq!(
            Timestamp::from_unix_nanos(-1).to_string(),
            "1969-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn round_trips_offsets_and_fractions() {
        for s in [
            "2024-02-29T23:59:59.000000001+05:30",
            "2024-01-02T03:04:05-08:00",
            "9999-12-31T23:59:59.999999999Z",
            "0001-01-01T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "0001-01-01T00:30:00+01:00",
            "2024-06-01T12:00:00.5Z",
        ] {
            assert_eq!(rt(s), s);
        }
        // Go writes a zero offset as Z and trims trailing zeros.
        assert_eq!(
            rt("2024-01-02T03:04:05.100+00:00"),
            "2024-01-02T03:04:05.1Z"
        );
        assert_eq!(
            rt("2024-01-02T03:04:05.1234567891Z"),
            "2024-01-02T03:04:05.123456789Z"
        );
    }

    #[test]
    fn rejects_what_go_rejects() {
        for s in [
            "",
            "2024-02-30T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-13-01T00:00:00Z",
            "2024-01-01T24:00:00Z",
            "2024-01-01T00:00:00",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00.Z",
            "2024-01-01T00:00:00+0100",
            "10000-01-01T00:00:00Z",
            "2024-01-01T00:00:00+24:00",
        ] {
            assert!(Timestamp::parse_rfc3339(s).is_err(), "{s} should fail");
        }
    }

    #[test]
    fn civil_conversion_is_inverse() {
        for days in (-719_162..2_932_896).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
