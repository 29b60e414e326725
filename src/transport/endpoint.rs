//! Where a server is and what a request to it may carry beside volley's own headers: a URL read
//! into TLS, host, port and path, and the extra headers a user adds. Shared by scenarios
//! (`target`, `[headers]`), `volley tap` and `volley inspect --upstream`.

use http::Uri;

/// A server's address as a URL gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `wss://` or `https://`.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// The URL's path and query, when it has more than `/`. For Socket.IO the path is the
    /// namespace, as the official client reads it.
    pub path: Option<String>,
}

impl ServerUrl {
    /// Reads a `ws://` / `wss://` URL (also `http://` / `https://` with `socketio`). The messages
    /// name the text and say what volley speaks.
    pub fn parse(text: &str, socketio: bool) -> Result<ServerUrl, String> {
        let uri: Uri = text.parse().map_err(|e| {
            format!("target `{text}` is not a URL ({e}): use \"builtin\" or ws://host:port/path")
        })?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            Some("http") if socketio => false,
            Some("https") if socketio => true,
            Some(other) => {
                let speaks = if socketio {
                    "http://, https://, ws:// and wss://"
                } else {
                    "ws:// and wss:// (http:// is for protocol = \"socketio\")"
                };
                return Err(format!(
                    "target `{text}` has scheme `{other}`: volley speaks {speaks}"
                ));
            }
            None => {
                return Err(format!(
                    "target `{text}` needs a scheme: ws://host:port/path"
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("target `{text}` has no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let path = uri
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .filter(|p| p != "/" && !p.is_empty());
        Ok(ServerUrl {
            tls,
            host,
            port,
            path,
        })
    }
}

/// An extra request header, checked: a valid name that volley does not set itself, and a value
/// HTTP allows.
pub fn parse_header(
    name: &str,
    value: &str,
) -> Result<(http::HeaderName, http::HeaderValue), String> {
    let parsed_name = http::HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid HTTP header name"))?;
    let reserved = [
        "host",
        "connection",
        "upgrade",
        "content-length",
        "transfer-encoding",
    ];
    if reserved.contains(&parsed_name.as_str())
        || parsed_name.as_str().starts_with("sec-websocket-")
    {
        return Err(format!("header `{name}` is set by volley itself"));
    }
    let parsed_value = http::HeaderValue::from_str(value)
        .map_err(|_| format!("header `{name}` has characters HTTP does not allow"))?;
    Ok((parsed_name, parsed_value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_tls_host_port_and_path() {
        let url = ServerUrl::parse("wss://[::1]/chat?room=a", false).unwrap();
        assert_eq!(
            url,
            ServerUrl {
                tls: true,
                host: "::1".into(),
                port: 443,
                path: Some("/chat?room=a".into()),
            }
        );
        let url = ServerUrl::parse("http://localhost:3000/", true).unwrap();
        assert_eq!((url.tls, url.port, url.path), (false, 3000, None));
        let err = ServerUrl::parse("http://localhost:3000", false).unwrap_err();
        assert!(err.contains("http:// is for protocol"), "{err}");
        assert!(ServerUrl::parse("localhost:3000", false).is_err());
    }

    #[test]
    fn headers_volley_sets_itself_are_refused() {
        assert!(parse_header("X-Token", "abc").is_ok());
        let err = parse_header("Sec-WebSocket-Key", "x").unwrap_err();
        assert!(err.contains("set by volley itself"), "{err}");
        assert!(parse_header("bad header", "x").is_err());
        assert!(parse_header("X-A", "line\nbreak").is_err());
    }
}
