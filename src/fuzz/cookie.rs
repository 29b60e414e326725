//! `Set-Cookie` headers from a server and cookie dates (`protocol::cookie`).
//!
//! A parsed cookie is made of the header's own bytes, trimmed, with no separator inside; its
//! path, when kept, is absolute. A date that parses is a real instant: written again in each of
//! the three formats servers use (IMF-fixdate, RFC 850, asctime), it parses to the same second.
//! The default path of a request path is a cookie path that the request path matches.

use crate::protocol::cookie::{self, SetCookie};

/// Weekdays from 1970-01-01, a Thursday.
const WEEKDAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

pub fn check(data: &[u8]) {
    if let Some(cookie) = cookie::parse_set_cookie(data) {
        check_cookie(data, &cookie);
    }
    if let Some(seconds) = cookie::parse_cookie_date(data) {
        check_date(data, seconds);
    }
    let path = String::from_utf8_lossy(data);
    let default = cookie::default_path(&path);
    assert!(
        default.starts_with('/'),
        "default path {default:?} of {path:?}"
    );
    if path.starts_with('/') {
        assert!(
            cookie::path_matches(path.as_bytes(), default.as_bytes()),
            "{path:?} does not match its own default path {default:?}"
        );
    }
}

fn check_cookie(header: &[u8], cookie: &SetCookie) {
    let within = |part: &[u8]| {
        let start = header.as_ptr() as usize;
        let at = part.as_ptr() as usize;
        part.is_empty() || (start <= at && at + part.len() <= start + header.len())
    };
    let shown = String::from_utf8_lossy(header);
    assert!(!cookie.name.is_empty(), "an empty name from {shown:?}");
    for part in [cookie.name, cookie.value] {
        assert!(within(part), "a part not taken from {shown:?}");
        assert!(!part.contains(&b';'), "a `;` inside a part of {shown:?}");
        assert_eq!(part, part.trim_ascii(), "untrimmed part of {shown:?}");
    }
    assert!(
        !cookie.name.contains(&b'='),
        "a `=` in the name from {shown:?}"
    );
    if let Some(path) = cookie.path {
        assert!(path.starts_with(b"/") && within(path), "path of {shown:?}");
    }
}

/// The date written in the three usual formats parses back to `seconds`.
fn check_date(text: &[u8], seconds: i64) {
    let (year, month, day) = civil_from_days(seconds.div_euclid(86_400));
    let in_day = seconds.rem_euclid(86_400);
    let (hour, minute, second) = (in_day / 3600, in_day / 60 % 60, in_day % 60);
    assert!(
        year >= 1601,
        "{} parsed to the year {year}",
        String::from_utf8_lossy(text)
    );
    let weekday = WEEKDAYS[seconds.div_euclid(86_400).rem_euclid(7) as usize];
    let wkd = &weekday[..3];
    let mon = MONTHS[month as usize - 1];
    let formats = [
        format!("{wkd}, {day:02} {mon} {year} {hour:02}:{minute:02}:{second:02} GMT"),
        format!("{weekday}, {day:02}-{mon}-{year} {hour:02}:{minute:02}:{second:02} GMT"),
        format!("{wkd} {mon} {day:>2} {hour:02}:{minute:02}:{second:02} {year}"),
    ];
    for written in formats {
        assert_eq!(
            cookie::parse_cookie_date(written.as_bytes()),
            Some(seconds),
            "{} parsed to {seconds}, written as {written:?}",
            String::from_utf8_lossy(text)
        );
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01, by whole 400-year eras
/// (146,097 days each) counted from 0000-03-01, so that February ends each year.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let from_march_0000 = days + 719_468;
    let era = from_march_0000.div_euclid(146_097);
    let day_of_era = from_march_0000.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_of_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-134_774), (1601, 1, 1));
        assert_eq!(civil_from_days(784_111_777 / 86_400), (1994, 11, 6));
    }
}
