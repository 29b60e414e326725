//! `volley record --filter`: which part of a capture to record, as `KEY=VALUE` terms joined by
//! commas: `conn=3` (the connection: inspect's connection number, or the HAR entry number of
//! its first request, as `volley record` lists them), `from=10s` and `to=40s` (a time window,
//! from the capture's start). The window cuts the conversation, not what it stands on: the HTTP
//! calls before it (a login) and the Socket.IO handshake are kept.

use std::str::FromStr;

use super::capture::Capture;
use crate::units::parse_duration;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad --filter {text:?} at column {column}: {message}")]
pub struct FilterError {
    pub text: String,
    pub column: usize,
    pub message: String,
}

/// The terms of `--filter`; the default keeps everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CaptureFilter {
    pub conn: Option<u64>,
    /// Seconds from the capture's start.
    pub from: Option<f64>,
    pub to: Option<f64>,
}

impl FromStr for CaptureFilter {
    type Err = FilterError;

    fn from_str(text: &str) -> Result<CaptureFilter, FilterError> {
        let mut filter = CaptureFilter::default();
        let mut column = 1;
        for part in text.split(',') {
            let err = |message: String| FilterError {
                text: text.to_string(),
                column,
                message,
            };
            let (key, value) = part
                .trim()
                .split_once('=')
                .ok_or_else(|| err("expected KEY=VALUE (keys: conn, from, to)".into()))?;
            let value = value.trim();
            let time = || {
                parse_duration(value)
                    .map(|d| d.as_secs_f64())
                    .map_err(|e| err(format!("`{key}`: {e}")))
            };
            match key.trim() {
                "conn" => {
                    filter.conn = Some(value.parse().map_err(|_| {
                        err(format!("`conn` is a connection number, not {value:?}"))
                    })?)
                }
                "from" => filter.from = Some(time()?),
                "to" => filter.to = Some(time()?),
                other => {
                    return Err(err(format!("unknown key `{other}` (keys: conn, from, to)")));
                }
            }
            column += part.chars().count() + 1;
        }
        if let (Some(from), Some(to)) = (filter.from, filter.to) {
            if to <= from {
                return Err(FilterError {
                    text: text.to_string(),
                    column: 1,
                    message: "`to` must come after `from`".into(),
                });
            }
        }
        Ok(filter)
    }
}

impl CaptureFilter {
    fn in_window(&self, at: f64) -> bool {
        self.from.is_none_or(|from| at >= from) && self.to.is_none_or(|to| at <= to)
    }

    /// The part of `capture` the filter keeps: the exchanges up to the window's end; the
    /// connections of that number that were open in the window, with their messages in it and
    /// their handshake (Engine.IO's open, Socket.IO's CONNECT both ways).
    pub fn apply(&self, mut capture: Capture) -> Capture {
        capture
            .exchanges
            .retain(|e| self.to.is_none_or(|to| e.at <= to));
        capture.sockets.retain(|s| {
            self.conn.is_none_or(|conn| s.conn == conn)
                && self.to.is_none_or(|to| s.at <= to)
                && self.from.is_none_or(|from| s.until >= from)
        });
        for socket in &mut capture.sockets {
            let engine = socket.engine.is_some();
            socket.messages.retain(|m| {
                self.in_window(m.at)
                    || (engine && (m.text.starts_with('0') || m.text.starts_with("40")))
            });
        }
        capture
    }

    pub fn is_empty(&self) -> bool {
        *self == CaptureFilter::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_parse_and_name_the_bad_term() {
        let f: CaptureFilter = "conn=3, from=2s,to=1m".parse().unwrap();
        assert_eq!(f.conn, Some(3));
        assert_eq!(f.from, Some(2.0));
        assert_eq!(f.to, Some(60.0));
        let e = "conn=2,peer=x".parse::<CaptureFilter>().unwrap_err();
        assert_eq!(e.column, 8);
        assert!(e.message.contains("unknown key `peer`"), "{e}");
        assert!("conn=x".parse::<CaptureFilter>().is_err());
        assert!("from=5s,to=1s".parse::<CaptureFilter>().is_err());
        assert!("conn".parse::<CaptureFilter>().is_err());
    }
}
