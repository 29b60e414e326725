//! Cookies as a user agent reads them (RFC 6265 section 5): a `Set-Cookie` header parsed
//! (5.2), the lenient cookie-date algorithm (5.1.1), the default path and path matching (5.1.4).
//! Bytes in, values out: the jar that keeps cookies against a clock is `transport::http`'s.

/// One `Set-Cookie` header. Domain, Secure, HttpOnly and SameSite are accepted and dropped: a
/// volley session talks to one host, so they have nothing to decide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetCookie<'a> {
    pub name: &'a [u8],
    pub value: &'a [u8],
    /// The last `Path` attribute, when it starts with `/`; otherwise the default path applies.
    pub path: Option<&'a [u8]>,
    /// The last valid `Max-Age`, in seconds: zero or less deletes the cookie. Wins over `expires`.
    pub max_age: Option<i64>,
    /// The last valid `Expires`, in seconds since the Unix epoch.
    pub expires: Option<i64>,
}

/// Parses one `Set-Cookie` value; `None` when the header is to be ignored (no `=` in the first
/// part, or an empty name). Attributes that do not parse are ignored, as the RFC says.
pub fn parse_set_cookie(header: &[u8]) -> Option<SetCookie<'_>> {
    let mut parts = header.split(|&b| b == b';');
    let pair = parts.next()?;
    let eq = pair.iter().position(|&b| b == b'=')?;
    let name = pair[..eq].trim_ascii();
    if name.is_empty() {
        return None;
    }
    let mut cookie = SetCookie {
        name,
        value: pair[eq + 1..].trim_ascii(),
        path: None,
        max_age: None,
        expires: None,
    };
    for attribute in parts {
        let (key, value) = match attribute.iter().position(|&b| b == b'=') {
            Some(eq) => (
                attribute[..eq].trim_ascii(),
                attribute[eq + 1..].trim_ascii(),
            ),
            None => (attribute.trim_ascii(), &[][..]),
        };
        if key.eq_ignore_ascii_case(b"path") {
            cookie.path = value.starts_with(b"/").then_some(value);
        } else if key.eq_ignore_ascii_case(b"max-age") {
            cookie.max_age = parse_max_age(value).or(cookie.max_age);
        } else if key.eq_ignore_ascii_case(b"expires") {
            cookie.expires = parse_cookie_date(value).or(cookie.expires);
        }
    }
    Some(cookie)
}

/// `-?DIGIT+`, saturating rather than failing on absurd values.
fn parse_max_age(value: &[u8]) -> Option<i64> {
    let (negative, digits) = match value.split_first()? {
        (b'-', rest) => (true, rest),
        _ => (false, value),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = digits.iter().fold(0i64, |n, &d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    Some(if negative { -secs } else { secs })
}

/// The path a cookie gets when `Set-Cookie` has no usable `Path`: the request path up to, not
/// including, its last `/` (`/docs/login` -> `/docs`), or `/`.
pub fn default_path(request_path: &str) -> &str {
    match request_path.rfind('/') {
        Some(i) if i > 0 && request_path.starts_with('/') => &request_path[..i],
        _ => "/",
    }
}

/// Whether a cookie with `cookie_path` goes with a request for `request_path`.
pub fn path_matches(request_path: &[u8], cookie_path: &[u8]) -> bool {
    request_path.starts_with(cookie_path)
        && (request_path.len() == cookie_path.len()
            || cookie_path.ends_with(b"/")
            || request_path[cookie_path.len()] == b'/')
}

/// A cookie date in seconds since the Unix epoch: tokens in any order, a time `hh:mm:ss`, a day,
/// a month by its first three letters, a year (two digits are 1970-2069). `None` for a date that
/// does not exist or lacks a part.
pub fn parse_cookie_date(value: &[u8]) -> Option<i64> {
    let mut time = None;
    let mut day = None;
    let mut month = None;
    let mut year = None;
    for token in value.split(|&b| is_date_delimiter(b)) {
        if token.is_empty() {
            continue;
        }
        if time.is_none() {
            if let Some(t) = parse_time(token) {
                time = Some(t);
                continue;
            }
        }
        if day.is_none() {
            if let Some(d) = leading_number(token, 1, 2) {
                day = Some(d);
                continue;
            }
        }
        if month.is_none() {
            if let Some(m) = parse_month(token) {
                month = Some(m);
                continue;
            }
        }
        if year.is_none() {
            year = leading_number(token, 2, 4);
        }
    }
    let ((hour, minute, second), day, month) = (time?, day?, month?);
    let year = match year? {
        y @ 70..=99 => y + 1900,
        y @ 0..=69 => y + 2000,
        y => y,
    };
    if year < 1601 || hour > 23 || minute > 59 || second > 59 || day == 0 {
        return None;
    }
    if day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(i64::from(year), i64::from(month), i64::from(day));
    Some(days * 86_400 + i64::from(hour * 3600 + minute * 60 + second))
}

fn is_date_delimiter(b: u8) -> bool {
    matches!(b, 0x09 | 0x20..=0x2F | 0x3B..=0x40 | 0x5B..=0x60 | 0x7B..=0x7E)
}

/// `min` to `max` digits at the start of `token`, followed by nothing or a non-digit.
fn leading_number(token: &[u8], min: usize, max: usize) -> Option<u32> {
    let n = token.iter().take_while(|b| b.is_ascii_digit()).count();
    (min..=max).contains(&n).then(|| {
        token[..n]
            .iter()
            .fold(0, |acc, &d| acc * 10 + u32::from(d - b'0'))
    })
}

/// `h:m:s`, each one or two digits (the seconds may be followed by a non-digit).
fn parse_time(token: &[u8]) -> Option<(u32, u32, u32)> {
    let mut fields = token.splitn(3, |&b| b == b':');
    let (hour, minute, second) = (fields.next()?, fields.next()?, fields.next()?);
    let whole = |field: &[u8]| match field.iter().all(u8::is_ascii_digit) {
        true => leading_number(field, 1, 2),
        false => None,
    };
    Some((whole(hour)?, whole(minute)?, leading_number(second, 1, 2)?))
}

fn parse_month(token: &[u8]) -> Option<u32> {
    const MONTHS: [&[u8; 3]; 12] = [
        b"jan", b"feb", b"mar", b"apr", b"may", b"jun", b"jul", b"aug", b"sep", b"oct", b"nov",
        b"dec",
    ];
    let prefix = token.get(..3)?;
    let index = MONTHS
        .iter()
        .position(|m| prefix.eq_ignore_ascii_case(&m[..]))?;
    Some(index as u32 + 1)
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(header: &str) -> SetCookie<'_> {
        parse_set_cookie(header.as_bytes()).expect(header)
    }

    #[test]
    fn rfc_6265_section_3_1_examples_parse() {
        let c = parsed("SID=31d4d96e407aad42");
        assert_eq!((c.name, c.value), (&b"SID"[..], &b"31d4d96e407aad42"[..]));
        assert_eq!((c.path, c.max_age, c.expires), (None, None, None));

        let c = parsed("SID=31d4d96e407aad42; Path=/; Domain=example.com");
        assert_eq!(c.path, Some(&b"/"[..]));
        let c = parsed("SID=31d4d96e407aad42; Path=/; Secure; HttpOnly");
        assert_eq!(
            (c.value, c.path),
            (&b"31d4d96e407aad42"[..], Some(&b"/"[..]))
        );

        let c = parsed("lang=en-US; Expires=Wed, 09 Jun 2021 10:18:14 GMT");
        assert_eq!(c.expires, Some(1_623_233_894));
        let c = parsed("lang=; Expires=Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!((c.value, c.expires), (&b""[..], Some(784_111_777)));
    }

    #[test]
    fn set_cookie_edge_cases_follow_section_5_2() {
        assert_eq!(parse_set_cookie(b"no-equals-sign; Path=/"), None);
        assert_eq!(parse_set_cookie(b" =value"), None);
        let c = parsed("  a = b c ;path=/x; PATH=relative; max-age=10; Max-Age=oops; SameSite=Lax");
        assert_eq!((c.name, c.value), (&b"a"[..], &b"b c"[..]));
        assert_eq!(
            c.path, None,
            "the last Path wins, and a relative one means the default"
        );
        assert_eq!(c.max_age, Some(10), "an invalid Max-Age is ignored");
        assert_eq!(parsed("a=b; Max-Age=0").max_age, Some(0));
        assert_eq!(parsed("a=b; Max-Age=-5").max_age, Some(-5));
        assert_eq!(parsed("a=b; Max-Age=-").max_age, None);
        assert_eq!(parsed("a=b; Max-Age=1e3").max_age, None);
        assert_eq!(
            parsed("a=b; Max-Age=99999999999999999999999").max_age,
            Some(i64::MAX)
        );
        assert_eq!(parsed("a=\"quoted=\"").value, b"\"quoted=\"");
        assert_eq!(parse_set_cookie(b"a=\xff\xfe").unwrap().value, b"\xff\xfe");
    }

    #[test]
    fn cookie_dates_in_every_usual_format() {
        for date in [
            "Sun, 06 Nov 1994 08:49:37 GMT",  // IMF-fixdate
            "Sunday, 06-Nov-94 08:49:37 GMT", // RFC 850
            "Sun Nov  6 08:49:37 1994",       // asctime
            "Sun, 06-Nov-1994 08:49:37 GMT",  // what servers often send
            "6 nov 1994 8:49:37",
        ] {
            assert_eq!(
                parse_cookie_date(date.as_bytes()),
                Some(784_111_777),
                "{date}"
            );
        }
        assert_eq!(
            parse_cookie_date(b"Fri, 31 Dec 99 23:59:59 GMT"),
            Some(946_684_799)
        );
        assert_eq!(parse_cookie_date(b"Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_cookie_date(b"Sat, 01 Jan 1601 00:00:00 GMT"),
            Some(-11_644_473_600)
        );
        assert_eq!(
            parse_cookie_date(b"Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
        for bad in [
            "Wed, 31 Feb 2021 10:18:14 GMT",
            "Wed, 09 Jun 2021",
            "Wed, 09 Jun 1600 10:18:14 GMT",
            "Wed, 09 Jun 2021 24:00:00 GMT",
            "Wed, 00 Jun 2021 10:18:14 GMT",
            "Wed, 09 Foo 2021 10:18:14 GMT",
            "Wed, 09 Jun 2021 10:18:140 GMT",
            "",
        ] {
            assert_eq!(parse_cookie_date(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn default_path_and_path_match_follow_section_5_1_4() {
        assert_eq!(default_path("/docs/login"), "/docs");
        assert_eq!(default_path("/docs/"), "/docs");
        assert_eq!(default_path("/login"), "/");
        assert_eq!(default_path("/"), "/");
        assert_eq!(default_path(""), "/");
        assert_eq!(default_path("relative/x"), "/");

        for request in ["/docs", "/docs/", "/docs/Web/HTTP"] {
            assert!(path_matches(request.as_bytes(), b"/docs"), "{request}");
        }
        for request in ["/", "/docsets", "/fr/docs", "/Docs"] {
            assert!(!path_matches(request.as_bytes(), b"/docs"), "{request}");
        }
        assert!(path_matches(b"/docs/x", b"/docs/"));
        assert!(!path_matches(b"/docs", b"/docs/"));
        assert!(path_matches(b"/anything", b"/"));
    }
}
