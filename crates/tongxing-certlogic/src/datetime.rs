//! CertLogic's date-time values: instants with millisecond precision, parsed from the formats the
//! specification allows and offset with the UTC calendar arithmetic of JavaScript's `Date`
//! (`setUTCFullYear`, `setUTCMonth`, `setUTCDate`, `setUTCHours`), which the spec names as normative.
//! Own arithmetic instead of a date library: the rules are few and exact, and evaluation stays
//! allocation-free.

use std::fmt;

/// The largest distance from the epoch that JavaScript's `Date` can represent (±100,000,000 days).
const MAX_MS: i64 = 8_640_000_000_000_000;
const MS_PER_DAY: i64 = 86_400_000;
const MS_PER_HOUR: i64 = 3_600_000;

/// An instant, in milliseconds since 1970-01-01T00:00:00Z. Offsets of the input are folded in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct DateTime {
    ms: i64,
}

/// The time units of `plusTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeUnit {
    Year,
    Month,
    Day,
    Hour,
}

impl TimeUnit {
    pub(crate) const ALL: &'static str = "year, month, day, hour";

    pub(crate) fn from_name(name: &str) -> Option<TimeUnit> {
        match name {
            "year" => Some(TimeUnit::Year),
            "month" => Some(TimeUnit::Month),
            "day" => Some(TimeUnit::Day),
            "hour" => Some(TimeUnit::Hour),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            TimeUnit::Year => "year",
            TimeUnit::Month => "month",
            TimeUnit::Day => "day",
            TimeUnit::Hour => "hour",
        }
    }
}

/// Why a string is not a CertLogic date(-time), or why arithmetic left the representable range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateError {
    /// Not one of the allowed formats.
    Format,
    /// The right shape, but not a date on the calendar (month 13, 31 April, 25:00, offset +24:00).
    NotOnCalendar,
    /// The result lies outside ±100,000,000 days around 1970, the range of a JavaScript `Date`.
    OutOfRange,
}

impl fmt::Display for DateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DateError::Format => {
                "is not in an allowed format (YYYY, YYYY-MM, YYYY-MM-DD, or \
                 YYYY-MM-DDThh:mm:ss with optional .fraction and optional Z or ±h[h][[:]mm] offset)"
            }
            DateError::NotOnCalendar => "has the right format but is not a valid calendar date or time of day",
            DateError::OutOfRange => "lies outside the representable range (±100,000,000 days around 1970)",
        })
    }
}

impl DateTime {
    /// Parses a `plusTime` operand: a full date-time, a date (midnight UTC), or a partial date
    /// (`YYYY`, `YYYY-MM`), which is read the way `dccDateOfBirth` reads it (spec 1.3.2).
    pub(crate) fn parse(s: &str) -> Result<DateTime, DateError> {
        let b = s.as_bytes();
        if b.len() <= 10 {
            return DateTime::parse_date_of_birth(s);
        }
        if b[10] != b'T' {
            return Err(DateError::Format);
        }
        let (y, m, d) = parse_date(&b[..10])?;
        if b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return Err(DateError::Format);
        }
        let hour = digits(b, 11, 2)?;
        let minute = digits(b, 14, 2)?;
        let second = digits(b, 17, 2)?;
        let mut rest = &b[19..];
        let mut millis = 0;
        if let [b'.', tail @ ..] = rest {
            let n = tail.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return Err(DateError::Format);
            }
            // Normalised to milliseconds; further decimals are dropped (rounding down).
            for (i, c) in tail[..n.min(3)].iter().enumerate() {
                millis += i64::from(c - b'0') * [100, 10, 1][i];
            }
            rest = &tail[n..];
        }
        let offset_minutes = parse_offset(rest)?;
        if hour > 23 || minute > 59 || second > 59 {
            return Err(DateError::NotOnCalendar);
        }
        let ms = days_from_civil(y, m, d) * MS_PER_DAY
            + ((i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second)) * 1000
            + millis
            - offset_minutes * 60_000;
        Ok(DateTime { ms })
    }

    /// Parses a DCC date of birth (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) to the last instant-at-midnight
    /// consistent with it: `YYYY` → 31 December, `YYYY-MM` → the month's last day.
    pub(crate) fn parse_date_of_birth(s: &str) -> Result<DateTime, DateError> {
        let b = s.as_bytes();
        let (y, m, d) = match b.len() {
            4 => (i64::from(digits(b, 0, 4)?), 12, 31),
            7 => {
                if b[4] != b'-' {
                    return Err(DateError::Format);
                }
                let y = i64::from(digits(b, 0, 4)?);
                let m = digits(b, 5, 2)?;
                if !(1..=12).contains(&m) {
                    return Err(DateError::NotOnCalendar);
                }
                (y, m, days_in_month(y, m))
            }
            10 => parse_date(b)?,
            _ => return Err(DateError::Format),
        };
        Ok(DateTime { ms: days_from_civil(y, m, d) * MS_PER_DAY })
    }

    /// `plusTime`'s offsetting, with the semantics of JavaScript's `setUTC<unit>(getUTC<unit>() + amount)`:
    /// a day or hour is a fixed length (UTC has no DST); a month or year keeps the day of the month
    /// and lets it overflow into the next month (2020-02-29 + 1 year = 2021-03-01).
    pub(crate) fn plus(self, amount: i64, unit: TimeUnit) -> Result<DateTime, DateError> {
        let ms = match unit {
            TimeUnit::Hour => amount.checked_mul(MS_PER_HOUR).and_then(|d| self.ms.checked_add(d)),
            TimeUnit::Day => amount.checked_mul(MS_PER_DAY).and_then(|d| self.ms.checked_add(d)),
            TimeUnit::Month | TimeUnit::Year => {
                let days = self.ms.div_euclid(MS_PER_DAY);
                let time_of_day = self.ms.rem_euclid(MS_PER_DAY);
                let (y, m, d) = civil_from_days(days);
                let month_index = match unit {
                    TimeUnit::Month => (y * 12 + i64::from(m) - 1).checked_add(amount),
                    _ => y
                        .checked_add(amount)
                        .and_then(|y| y.checked_mul(12))
                        .and_then(|i| i.checked_add(i64::from(m) - 1)),
                };
                match month_index {
                    // Beyond ±400,000 years the result is out of range anyway; stop before
                    // the calendar arithmetic could overflow.
                    Some(i) if i.abs() <= 12 * 400_000 => {
                        let (ny, nm) = (i.div_euclid(12), (i.rem_euclid(12) + 1) as u32);
                        let days = days_from_civil(ny, nm, 1) + i64::from(d) - 1;
                        Some(days * MS_PER_DAY + time_of_day)
                    }
                    _ => None,
                }
            }
        };
        match ms {
            Some(ms) if (-MAX_MS..=MAX_MS).contains(&ms) => Ok(DateTime { ms }),
            _ => Err(DateError::OutOfRange),
        }
    }
}

/// ISO 8601 in UTC with milliseconds, as JavaScript's `Date.prototype.toISOString` writes it.
impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.ms.div_euclid(MS_PER_DAY);
        let t = self.ms.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        if (0..=9999).contains(&y) {
            write!(f, "{y:04}")?;
        } else if y < 0 {
            write!(f, "-{:06}", -y)?;
        } else {
            write!(f, "+{y:06}")?;
        }
        write!(f, "-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", t / MS_PER_HOUR, t / 60_000 % 60, t / 1000 % 60, t % 1000)
    }
}

/// `n` ASCII digits starting at `at`, as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Result<u32, DateError> {
    let slice = b.get(at..at + n).ok_or(DateError::Format)?;
    slice.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() { Ok(acc * 10 + u32::from(c - b'0')) } else { Err(DateError::Format) }
    })
}

/// `YYYY-MM-DD`, checked against the calendar.
fn parse_date(b: &[u8]) -> Result<(i64, u32, u32), DateError> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(DateError::Format);
    }
    let y = i64::from(digits(b, 0, 4)?);
    let m = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
        return Err(DateError::NotOnCalendar);
    }
    Ok((y, m, d))
}

/// The offset suffix, in minutes east of UTC: nothing or `Z` (UTC), or a sign followed by
/// `h`, `hh`, `hmm`, `hhmm`, `h:mm` or `hh:mm`.
fn parse_offset(b: &[u8]) -> Result<i64, DateError> {
    let (sign, body) = match b {
        [] | [b'Z'] => return Ok(0),
        [b'+', body @ ..] => (1, body),
        [b'-', body @ ..] => (-1, body),
        _ => return Err(DateError::Format),
    };
    let (hours, minutes) = match body.iter().position(|&c| c == b':') {
        Some(colon @ (1 | 2)) if body.len() == colon + 3 => (digits(body, 0, colon)?, digits(body, colon + 1, 2)?),
        Some(_) => return Err(DateError::Format),
        None => match body.len() {
            1 | 2 => (digits(body, 0, body.len())?, 0),
            3 => (digits(body, 0, 1)?, digits(body, 1, 2)?),
            4 => (digits(body, 0, 2)?, digits(body, 2, 2)?),
            _ => return Err(DateError::Format),
        },
    };
    if hours > 23 || minutes > 59 {
        return Err(DateError::NotOnCalendar);
    }
    Ok(sign * (i64::from(hours) * 60 + i64::from(minutes)))
}

fn is_leap_year(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(y) => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`].
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> String {
        DateTime::parse(s).unwrap().to_string()
    }

    fn plus(s: &str, amount: i64, unit: TimeUnit) -> String {
        DateTime::parse(s).unwrap().plus(amount, unit).unwrap().to_string()
    }

    #[test]
    fn parses_every_allowed_format() {
        assert_eq!(iso("2021"), "2021-12-31T00:00:00.000Z");
        assert_eq!(iso("2021-02"), "2021-02-28T00:00:00.000Z");
        assert_eq!(iso("2020-02"), "2020-02-29T00:00:00.000Z");
        assert_eq!(iso("2021-06-01"), "2021-06-01T00:00:00.000Z");
        assert_eq!(iso("2021-06-01T12:34:56"), "2021-06-01T12:34:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56Z"), "2021-06-01T12:34:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56+2"), "2021-06-01T10:34:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56+02"), "2021-06-01T10:34:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56+130"), "2021-06-01T11:04:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56-0130"), "2021-06-01T14:04:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56+1:30"), "2021-06-01T11:04:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56-01:30"), "2021-06-01T14:04:56.000Z");
        assert_eq!(iso("2021-06-01T12:34:56.7"), "2021-06-01T12:34:56.700Z");
        assert_eq!(iso("2021-06-01T12:34:56.78Z"), "2021-06-01T12:34:56.780Z");
        assert_eq!(iso("2021-06-01T12:34:56.123999+02:00"), "2021-06-01T10:34:56.123Z");
        assert_eq!(iso("2021-01-01T00:30:00+01:00"), "2020-12-31T23:30:00.000Z");
    }

    #[test]
    fn rejects_what_the_spec_does_not_allow() {
        for s in [
            "",
            "21",
            "2021-1",
            "2021-06-01T12:34",
            "2021-06-01 12:34:56",
            "2021-06-01t12:34:56",
            "2021-06-01T12:34:56.",
            "2021-06-01T12:34:56z",
            "2021-06-01T12:34:56+",
            "2021-06-01T12:34:56+12345",
            "2021-06-01T12:34:56+1:3",
            "2021-06-01T12:34:56+123:00",
            "2021-06-01T12:34:56 ",
            "２０２１",
        ] {
            assert_eq!(DateTime::parse(s), Err(DateError::Format), "{s:?}");
        }
        for s in [
            "2021-13",
            "2021-00-10",
            "2021-09-31",
            "2021-02-29",
            "2021-06-01T24:00:00Z",
            "2021-06-01T12:60:00Z",
            "2021-06-01T12:00:60Z",
            "2021-06-01T12:00:00+24:00",
        ] {
            assert_eq!(DateTime::parse(s), Err(DateError::NotOnCalendar), "{s:?}");
        }
        assert_eq!(DateTime::parse_date_of_birth("2021-06-01T00:00:00Z"), Err(DateError::Format));
    }

    #[test]
    fn offsets_like_javascript_setutc_methods() {
        // The spec's leap-day table.
        assert_eq!(plus("2020-02-29", 1, TimeUnit::Day), "2020-03-01T00:00:00.000Z");
        assert_eq!(plus("2020-02-29", 1, TimeUnit::Month), "2020-03-29T00:00:00.000Z");
        assert_eq!(plus("2020-02-29", 1, TimeUnit::Year), "2021-03-01T00:00:00.000Z");
        assert_eq!(plus("2021-01-31", 1, TimeUnit::Month), "2021-03-03T00:00:00.000Z");
        assert_eq!(plus("2021-03-31", -1, TimeUnit::Month), "2021-03-03T00:00:00.000Z");
        assert_eq!(plus("2021-01-15", -13, TimeUnit::Month), "2019-12-15T00:00:00.000Z");
        assert_eq!(plus("2021-01-15", 24, TimeUnit::Month), "2023-01-15T00:00:00.000Z");
        assert_eq!(plus("2021-06-01T00:00:00+00:00", 40, TimeUnit::Hour), "2021-06-02T16:00:00.000Z");
        assert_eq!(plus("2021-03-27T12:00:00Z", 1, TimeUnit::Day), "2021-03-28T12:00:00.000Z");
        // Month arithmetic happens on the UTC calendar, after the offset is folded in.
        assert_eq!(plus("2021-02-01T00:30:00+01:00", 1, TimeUnit::Month), "2021-03-03T23:30:00.000Z");
        assert_eq!(plus("1969-12-31T23:59:59.999Z", 0, TimeUnit::Hour), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn range_is_that_of_javascript_dates() {
        let dt = DateTime::parse("2021-01-01").unwrap();
        assert_eq!(dt.plus(i64::MAX, TimeUnit::Year), Err(DateError::OutOfRange));
        assert_eq!(dt.plus(i64::MIN, TimeUnit::Month), Err(DateError::OutOfRange));
        assert_eq!(dt.plus(i64::MAX, TimeUnit::Hour), Err(DateError::OutOfRange));
        assert_eq!(dt.plus(300_000, TimeUnit::Year), Err(DateError::OutOfRange));
        assert_eq!(dt.plus(10_000, TimeUnit::Year).unwrap().to_string(), "+012021-01-01T00:00:00.000Z");
        assert_eq!(dt.plus(-3_000, TimeUnit::Year).unwrap().to_string(), "-000979-01-01T00:00:00.000Z");
    }

    #[test]
    fn civil_round_trip() {
        for days in (-800_000..800_000).step_by(97) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        /// 0000-01-01 .. 9999-12-31, the years the four-digit formats can write.
        const FIRST: i64 = -62_167_219_200_000;
        const LAST: i64 = 253_402_300_799_999;

        proptest! {
            #[test]
            fn display_and_parse_are_inverse(ms in FIRST..=LAST) {
                let dt = DateTime { ms };
                prop_assert_eq!(DateTime::parse(&dt.to_string()), Ok(dt));
            }

            #[test]
            fn offsets_are_folded_in(ms in FIRST + MS_PER_DAY..=LAST - MS_PER_DAY, offset in -(23 * 60 + 59)..=(23 * 60 + 59i64)) {
                // The same instant written in another offset parses to the same instant.
                let local = DateTime { ms: ms + offset * 60_000 }.to_string();
                let sign = if offset < 0 { '-' } else { '+' };
                let text = format!("{}{sign}{:02}:{:02}", &local[..23], offset.abs() / 60, offset.abs() % 60);
                prop_assert_eq!(DateTime::parse(&text), Ok(DateTime { ms }));
            }

            #[test]
            fn a_day_is_24_hours_and_a_year_is_12_months(ms in FIRST..=LAST, n in -5000i64..5000) {
                let dt = DateTime { ms };
                prop_assert_eq!(dt.plus(n, TimeUnit::Day), dt.plus(24 * n, TimeUnit::Hour));
                prop_assert_eq!(dt.plus(n, TimeUnit::Year), dt.plus(12 * n, TimeUnit::Month));
            }
        }
    }
}
