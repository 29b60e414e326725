//! An HTTP body as a record (`http_body`): which bodies are text, their start kept while they
//! are relayed (at most the size limit, gzip and deflate undone on the way), and their secrets
//! hidden by their format: JSON members, form fields, or as any text (the last pass of
//! [`super::redact`] does the rest).

use std::borrow::Cow;
use std::io::Write;

use super::record::{Record, RecordKind};
use crate::secrets::{SecretRules, SecretValues};

/// Body text kept per body at most, unless `--max-body` says otherwise.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// How the text of a body is read for secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/json`, `application/*+json`: secret members hidden.
    Json,
    /// `application/x-www-form-urlencoded`: secret fields hidden.
    Form,
    /// `text/*`, `application/xml`, `application/javascript`: as any text.
    Text,
}

impl BodyFormat {
    /// The format of a body of this `Content-Type`; None when it is not a text type.
    pub fn of(content_type: &[u8]) -> Option<BodyFormat> {
        let value = std::str::from_utf8(content_type).ok()?;
        let media = value.split(';').next()?.trim().to_ascii_lowercase();
        let (kind, subtype) = media.split_once('/')?;
        match (kind, subtype) {
            ("text", _) => Some(BodyFormat::Text),
            ("application", "json") => Some(BodyFormat::Json),
            ("application", s) if s.ends_with("+json") => Some(BodyFormat::Json),
            ("application", "x-www-form-urlencoded") => Some(BodyFormat::Form),
            ("application", "xml" | "javascript") => Some(BodyFormat::Text),
            _ => None,
        }
    }
}

/// At most `limit` bytes of a body's text; notes that more came.
struct Limited {
    kept: Vec<u8>,
    limit: usize,
    cut: bool,
}

impl Write for Limited {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let take = bytes.len().min(self.limit - self.kept.len());
        self.kept.extend_from_slice(&bytes[..take]);
        self.cut |= take < bytes.len();
        // Taken whole: what does not fit is dropped, not refused.
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a body's bytes go: kept as they are, or decompressed first.
enum Decoding {
    Identity(Limited),
    Gzip(flate2::write::GzDecoder<Limited>),
    Deflate(flate2::write::ZlibDecoder<Limited>),
}

impl Decoding {
    fn text(&mut self) -> &mut Limited {
        match self {
            Decoding::Identity(text) => text,
            Decoding::Gzip(decoder) => decoder.get_mut(),
            Decoding::Deflate(decoder) => decoder.get_mut(),
        }
    }
}

/// The start of a text body, kept while the body is relayed: never more than the limit in
/// memory, whatever the body's size; once the limit is reached, a compressed body is no longer
/// decompressed.
pub struct BodyCapture {
    format: BodyFormat,
    /// The encoding as the header names it, for messages.
    encoding: String,
    /// Bytes of the body seen (after de-chunking, before decoding).
    len: u64,
    decoding: Decoding,
    /// Why decompressing failed.
    failed: Option<String>,
}

/// A whole body's record material: its length, the start of its text, whether that was cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedBody {
    pub format: BodyFormat,
    pub len: u64,
    pub text: String,
    pub truncated: bool,
}

impl BodyCapture {
    /// A capture for a body with these `Content-Type` and `Content-Encoding` values; None when
    /// the body gets no record: `limit` 0, no type or not a text type, an encoding other than
    /// gzip or deflate.
    pub fn new(
        content_type: Option<&[u8]>,
        encoding: Option<&[u8]>,
        limit: usize,
    ) -> Option<BodyCapture> {
        if limit == 0 {
            return None;
        }
        let format = BodyFormat::of(content_type?)?;
        let encoding = encoding
            .map(|e| String::from_utf8_lossy(e).trim().to_ascii_lowercase())
            .unwrap_or_default();
        let text = Limited {
            kept: Vec::new(),
            limit,
            cut: false,
        };
        let decoding = match encoding.as_str() {
            "" | "identity" => Decoding::Identity(text),
            "gzip" | "x-gzip" => Decoding::Gzip(flate2::write::GzDecoder::new(text)),
            "deflate" => Decoding::Deflate(flate2::write::ZlibDecoder::new(text)),
            _ => return None,
        };
        Some(BodyCapture {
            format,
            encoding,
            len: 0,
            decoding,
            failed: None,
        })
    }

    /// The next bytes of the body, de-chunked.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.len += bytes.len() as u64;
        if self.failed.is_some() || self.decoding.text().cut {
            return;
        }
        let written = match &mut self.decoding {
            Decoding::Identity(text) => text.write_all(bytes),
            Decoding::Gzip(decoder) => decoder.write_all(bytes),
            Decoding::Deflate(decoder) => decoder.write_all(bytes),
        };
        if let Err(e) = written {
            self.failed = Some(format!("cannot decompress: {e}"));
        }
    }

    /// The body's record material once it has all come: None for an empty body or one whose
    /// text is not UTF-8; an error when its encoding could not be undone.
    pub fn finish(mut self) -> Result<Option<CapturedBody>, String> {
        if self.len == 0 {
            return Ok(None);
        }
        if self.failed.is_none() && !self.decoding.text().cut {
            let finished = match &mut self.decoding {
                Decoding::Identity(_) => Ok(()),
                Decoding::Gzip(decoder) => decoder.try_finish(),
                Decoding::Deflate(decoder) => decoder.try_finish(),
            };
            if let Err(e) = finished {
                self.failed = Some(format!("cannot decompress: {e}"));
            }
        }
        if let Some(detail) = self.failed {
            return Err(format!("HTTP body ({}): {detail}", self.encoding));
        }
        let text = self.decoding.text();
        let truncated = text.cut;
        let text = match String::from_utf8(std::mem::take(&mut text.kept)) {
            Ok(text) => text,
            // Cut inside a character: the text ends before it.
            Err(e) if truncated && e.utf8_error().error_len().is_none() => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
            Err(_) => return Ok(None),
        };
        Ok(Some(CapturedBody {
            format: self.format,
            len: self.len,
            text,
            truncated,
        }))
    }
}

impl CapturedBody {
    /// Fills `record` as the body's `http_body` record: its length, and its text with the
    /// secrets of its format hidden (the values hidden are added to `known`).
    pub fn fill(self, record: &mut Record, rules: &SecretRules, known: &mut SecretValues) {
        record.kind = RecordKind::HttpBody;
        record.len = Some(self.len);
        record.truncated = self.truncated;
        let hidden = match self.format {
            BodyFormat::Json => rules.redact_json_members(&self.text, Some(known)),
            BodyFormat::Form => rules.redact_form(&self.text, Some(known)),
            BodyFormat::Text => Cow::Borrowed(self.text.as_str()),
        };
        let hidden = match hidden {
            Cow::Owned(hidden) => Some(hidden),
            Cow::Borrowed(_) => None,
        };
        let text = hidden.unwrap_or(self.text);
        record.text = Some(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(content_type: &str, encoding: Option<&str>, limit: usize) -> BodyCapture {
        BodyCapture::new(
            Some(content_type.as_bytes()),
            encoding.map(str::as_bytes),
            limit,
        )
        .expect("a text body is captured")
    }

    /// Feeds `body` in pieces of `piece` bytes, as a body arrives in reads.
    fn fed(
        mut capture: BodyCapture,
        body: &[u8],
        piece: usize,
    ) -> Result<Option<CapturedBody>, String> {
        for part in body.chunks(piece) {
            capture.feed(part);
        }
        capture.finish()
    }

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn text_types_are_recorded_and_others_not() {
        for (content_type, format) in [
            ("application/json", Some(BodyFormat::Json)),
            ("Application/JSON; charset=utf-8", Some(BodyFormat::Json)),
            ("application/problem+json", Some(BodyFormat::Json)),
            ("application/x-www-form-urlencoded", Some(BodyFormat::Form)),
            ("text/html; charset=UTF-8", Some(BodyFormat::Text)),
            ("text/plain", Some(BodyFormat::Text)),
            ("application/xml", Some(BodyFormat::Text)),
            ("application/javascript", Some(BodyFormat::Text)),
            ("image/png", None),
            ("application/octet-stream", None),
            ("multipart/form-data; boundary=x", None),
            ("application/jsonx", None),
            ("json", None),
            ("", None),
        ] {
            assert_eq!(
                BodyFormat::of(content_type.as_bytes()),
                format,
                "{content_type}"
            );
        }
        assert!(BodyCapture::new(None, None, 100).is_none(), "no type");
        assert!(
            BodyCapture::new(Some(b"text/plain"), None, 0).is_none(),
            "--max-body 0"
        );
        assert!(BodyCapture::new(Some(b"text/plain"), Some(b"br"), 100).is_none());
    }

    #[test]
    fn a_body_is_kept_up_to_the_limit_and_its_whole_length_counted() {
        let body = fed(capture("text/plain", None, 10), b"0123456789abcdef", 3)
            .unwrap()
            .unwrap();
        assert_eq!(
            (body.len, body.text.as_str(), body.truncated),
            (16, "0123456789", true)
        );
        let body = fed(capture("text/plain", None, 10), b"0123456789", 4)
            .unwrap()
            .unwrap();
        assert_eq!((body.text.as_str(), body.truncated), ("0123456789", false));
        assert_eq!(fed(capture("text/plain", None, 10), b"", 1), Ok(None));
    }

    #[test]
    fn a_cut_inside_a_character_ends_the_text_before_it_and_other_bytes_are_not_text() {
        let body = fed(capture("text/plain", None, 5), "abcdé€".as_bytes(), 2)
            .unwrap()
            .unwrap();
        assert_eq!((body.text.as_str(), body.truncated), ("abcd", true));
        assert_eq!(
            fed(capture("text/plain", None, 50), b"ok\xff\xfe", 2),
            Ok(None)
        );
        assert_eq!(
            fed(
                capture("text/plain", None, 50),
                "abcé".as_bytes()[..4].as_ref(),
                2
            ),
            Ok(None)
        );
    }

    #[test]
    fn gzip_and_deflate_are_undone_as_the_body_comes_and_stop_at_the_limit() {
        let text = r#"{"user":"u","password":"p"}"#.repeat(100);
        let zipped = gzip(text.as_bytes());
        let body = fed(
            capture("application/json", Some("gzip"), 1 << 20),
            &zipped,
            7,
        )
        .unwrap()
        .unwrap();
        assert_eq!(body.len, zipped.len() as u64);
        assert_eq!((body.text.as_str(), body.truncated), (text.as_str(), false));
        let cut = fed(capture("application/json", Some(" GZIP "), 30), &zipped, 7)
            .unwrap()
            .unwrap();
        assert_eq!((cut.text.as_str(), cut.truncated), (&text[..30], true));
        assert_eq!(cut.len, zipped.len() as u64);

        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(b"a=1&b=2").unwrap();
        let deflated = encoder.finish().unwrap();
        let body = fed(
            capture("application/x-www-form-urlencoded", Some("deflate"), 100),
            &deflated,
            3,
        )
        .unwrap()
        .unwrap();
        assert_eq!(body.text, "a=1&b=2");
    }

    #[test]
    fn a_broken_or_unfinished_gzip_body_is_an_error() {
        let zipped = gzip(b"hello there");
        let err = fed(
            capture("text/plain", Some("gzip"), 100),
            &zipped[..zipped.len() - 6],
            4,
        );
        assert!(
            err.unwrap_err()
                .starts_with("HTTP body (gzip): cannot decompress")
        );
        let err = fed(
            capture("text/plain", Some("gzip"), 100),
            b"not gzip at all",
            4,
        );
        assert!(err.is_err());
    }

    #[test]
    fn a_records_text_has_the_secrets_of_its_format_hidden() {
        let rules = SecretRules::hidden(&[]);
        let mut known = SecretValues::default();
        let mut record = Record::default();
        let body = CapturedBody {
            format: BodyFormat::Json,
            len: 40,
            text: r#"{"user":"u","password":"pw-u-secret"}"#.into(),
            truncated: false,
        };
        body.fill(&mut record, &rules, &mut known);
        assert_eq!(record.kind, RecordKind::HttpBody);
        assert_eq!(
            record.text.as_deref(),
            Some(r#"{"user":"u","password":"[redacted]"}"#)
        );
        assert_eq!(record.len, Some(40));
        assert!(!known.is_empty());
        let mut record = Record::default();
        let text = r#"{"password":"x"}"#;
        CapturedBody {
            format: BodyFormat::Text,
            len: 16,
            text: text.into(),
            truncated: true,
        }
        .fill(&mut record, &rules, &mut known);
        assert_eq!(record.text.as_deref(), Some(text), "not JSON by its type");
        assert!(record.truncated);
    }
}
