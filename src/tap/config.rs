//! `volley tap`'s settings, typed: the URL read once into an address and a protocol, headers and
//! the Socket.IO options checked, before anything connects.

use std::time::Duration;

use super::TapError;
use super::link::Protocol;
use crate::protocol::engineio::Version;
use crate::protocol::socketio::check_namespace;
use crate::transport::endpoint::{ServerUrl, parse_header};
use crate::transport::engine::{EngineOptions, Transport};
use crate::transport::socketio::SocketIoOptions as SessionOptions;
use crate::wire::decode::DecodeOptions;
use crate::wire::sink::SinkConfig;

/// Where the lines to send come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// These lines, in order (`--send`).
    Lines(Vec<String>),
    /// Standard input, line by line until its end.
    Stdin,
}

/// The Socket.IO options; every one has the official client's default.
#[derive(Debug, Clone, Default)]
pub struct SocketIoOptions {
    pub transport: Transport,
    /// Engine.IO version; default: `EIO=` in the URL's query, else 4.
    pub version: Option<Version>,
    /// Engine.IO path; default `/socket.io/`.
    pub path: Option<String>,
    /// CONNECT auth payload: a JSON object.
    pub auth: Option<String>,
}

#[derive(Debug, Clone)]
pub struct TapConfig {
    /// The URL as given, for messages.
    pub url: String,
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub protocol: Protocol,
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Accept any TLS certificate.
    pub insecure: bool,
    pub input: Input,
    /// After the last line: how long to keep receiving before closing.
    pub wait: Duration,
    pub connect_timeout: Duration,
    pub sink: SinkConfig,
    pub decode: DecodeOptions,
}

const DEFAULT_ENGINE_PATH: &str = "/socket.io/";

impl TapConfig {
    /// Reads `url`: raw WebSocket for `ws://` and `wss://`, Socket.IO with `socketio` options or
    /// for `http://` and `https://`. A Socket.IO URL is read as the official client reads it: its
    /// path is the namespace (unless it is the Engine.IO path itself, `/socket.io/`), its query
    /// goes on every Engine.IO request. Everything else starts at its default: no headers, lines
    /// from stdin, no wait, a 10 s connect timeout, records printed without colour.
    pub fn new(url: &str, socketio: Option<SocketIoOptions>) -> Result<TapConfig, TapError> {
        let is_http = url.starts_with("http://") || url.starts_with("https://");
        let socketio = match socketio {
            None if is_http => Some(SocketIoOptions::default()),
            other => other,
        };
        if url == "builtin" {
            return Err(TapError::Usage(
                "`builtin` names the embedded server in scenarios: start `volley serve` and tap the URL it prints".into(),
            ));
        }
        let ServerUrl {
            tls,
            host,
            port,
            path,
        } = ServerUrl::parse(url, socketio.is_some()).map_err(TapError::Usage)?;
        let protocol = match socketio {
            None => Protocol::Raw {
                path: path.unwrap_or_else(|| "/".into()),
            },
            Some(options) => socketio_protocol(path.as_deref().unwrap_or(""), options)?,
        };
        Ok(TapConfig {
            url: url.to_string(),
            host,
            port,
            tls,
            protocol,
            headers: Vec::new(),
            insecure: false,
            input: Input::Stdin,
            wait: Duration::ZERO,
            connect_timeout: Duration::from_secs(10),
            sink: SinkConfig {
                print: true,
                ..SinkConfig::default()
            },
            decode: DecodeOptions::default(),
        })
    }

    /// Adds a header written `NAME: VALUE`.
    pub fn add_header(&mut self, text: &str) -> Result<(), TapError> {
        let (name, value) = text.split_once(':').ok_or_else(|| {
            TapError::Usage(format!("--header `{text}`: write it as `NAME: VALUE`"))
        })?;
        let header = parse_header(name.trim(), value.trim())
            .map_err(|e| TapError::Usage(format!("--header `{text}`: {e}")))?;
        self.headers.push(header);
        Ok(())
    }
}

/// The Socket.IO protocol for the path and query of a URL (`/admin?token=x`).
fn socketio_protocol(url_path: &str, options: SocketIoOptions) -> Result<Protocol, TapError> {
    let usage = |m: String| TapError::Usage(m);
    let (path, query) = url_path.split_once('?').unwrap_or((url_path, ""));

    let mut engine_path = options
        .path
        .clone()
        .unwrap_or_else(|| DEFAULT_ENGINE_PATH.into());
    if !engine_path.ends_with('/') {
        engine_path.push('/');
    }
    if !engine_path.starts_with('/')
        || engine_path.contains('?')
        || engine_path.parse::<http::uri::PathAndQuery>().is_err()
    {
        return Err(usage(format!(
            "--path `{engine_path}` must start with `/` and be a URL path without a query"
        )));
    }

    // The query of a URL copied from a browser's network panel carries the session's own
    // parameters: EIO says the version, the others belong to that session.
    let mut url_version = None;
    let mut extra = String::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "EIO" => {
                url_version = Some(match value {
                    "3" => Version::V3,
                    "4" => Version::V4,
                    other => {
                        return Err(usage(format!(
                            "EIO={other} in the URL: volley speaks Engine.IO 4 and 3"
                        )));
                    }
                });
            }
            "transport" | "sid" | "t" => {}
            _ => {
                extra.push('&');
                extra.push_str(pair);
            }
        }
    }
    let version = options.version.or(url_version).unwrap_or(Version::V4);

    let is_engine_path = path.trim_end_matches('/') == engine_path.trim_end_matches('/');
    let namespace = if path.is_empty() || path == "/" || is_engine_path {
        "/".to_string()
    } else {
        check_namespace(path)
            .map_err(|e| usage(format!("the URL's path is the namespace: {e}")))?;
        path.to_string()
    };

    let auth = match options.auth {
        None => None,
        Some(_) if version == Version::V3 => {
            return Err(usage(
                "Socket.IO 2 servers (Engine.IO 3) take no CONNECT auth: send credentials in a --header or the URL's query".into(),
            ));
        }
        Some(text) => match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(value @ serde_json::Value::Object(_)) => Some(value.to_string()),
            Ok(_) => return Err(usage(format!("--auth `{text}` must be a JSON object"))),
            Err(e) => return Err(usage(format!("--auth `{text}` is not JSON: {e}"))),
        },
    };
    Ok(Protocol::SocketIo {
        plan: SessionOptions {
            engine: EngineOptions {
                transport: options.transport,
                version,
                path: engine_path,
                query: extra,
            },
            recovery: false,
        },
        namespace,
        auth,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sio(url: &str, options: SocketIoOptions) -> (EngineOptions, String, Option<String>) {
        match TapConfig::new(url, Some(options)).unwrap().protocol {
            Protocol::SocketIo {
                plan,
                namespace,
                auth,
            } => (plan.engine, namespace, auth),
            Protocol::Raw { .. } => panic!("expected Socket.IO"),
        }
    }

    #[test]
    fn a_ws_url_is_raw_websocket_on_its_path() {
        let config = TapConfig::new("wss://example.com/chat?room=a", None).unwrap();
        assert!(config.tls);
        assert_eq!(config.port, 443);
        assert!(matches!(config.protocol, Protocol::Raw { path } if path == "/chat?room=a"));
        let config = TapConfig::new("ws://127.0.0.1:9000", None).unwrap();
        assert!(matches!(config.protocol, Protocol::Raw { path } if path == "/"));
    }

    #[test]
    fn an_http_url_is_socketio_with_the_path_as_namespace() {
        let config = TapConfig::new("http://localhost:3000/admin?token=t", None).unwrap();
        let Protocol::SocketIo {
            plan, namespace, ..
        } = config.protocol
        else {
            panic!("expected Socket.IO");
        };
        assert_eq!(namespace, "/admin");
        assert_eq!(plan.engine.path, "/socket.io/");
        assert_eq!(plan.engine.query, "&token=t");
        assert_eq!(plan.engine.version, Version::V4);
    }

    #[test]
    fn a_url_copied_from_a_browser_is_read_as_the_engineio_endpoint() {
        let (plan, namespace, _) = sio(
            "ws://localhost:3000/socket.io/?EIO=3&transport=websocket&sid=abc&x=1",
            SocketIoOptions::default(),
        );
        assert_eq!(namespace, "/");
        assert_eq!(plan.path, "/socket.io/");
        assert_eq!(plan.version, Version::V3);
        assert_eq!(plan.query, "&x=1");
        let (plan, namespace, _) = sio(
            "ws://localhost:3000/rt",
            SocketIoOptions {
                path: Some("/rt".into()),
                ..SocketIoOptions::default()
            },
        );
        assert_eq!((plan.path.as_str(), namespace.as_str()), ("/rt/", "/"));
    }

    #[test]
    fn auth_must_be_a_json_object_and_is_refused_for_engineio_3() {
        let with_auth = |auth: &str, version| {
            TapConfig::new(
                "http://h:1",
                Some(SocketIoOptions {
                    auth: Some(auth.into()),
                    version,
                    ..SocketIoOptions::default()
                }),
            )
        };
        let (_, _, auth) = sio(
            "http://h:1",
            SocketIoOptions {
                auth: Some(r#"{ "token": "t" }"#.into()),
                ..SocketIoOptions::default()
            },
        );
        assert_eq!(auth.as_deref(), Some(r#"{"token":"t"}"#));
        for bad in ["[1]", "{x}"] {
            let err = with_auth(bad, None).unwrap_err();
            assert!(matches!(err, TapError::Usage(_)), "{err}");
        }
        let err = with_auth("{}", Some(Version::V3)).unwrap_err();
        assert!(err.to_string().contains("no CONNECT auth"), "{err}");
    }

    #[test]
    fn headers_are_written_name_colon_value_and_checked() {
        let mut config = TapConfig::new("ws://h:1/", None).unwrap();
        config.add_header("Authorization: Bearer x:y").unwrap();
        assert_eq!(config.headers[0].0.as_str(), "authorization");
        assert_eq!(config.headers[0].1.to_str().unwrap(), "Bearer x:y");
        for bad in ["NoColon", "Host: other", "Bad Name: v"] {
            assert!(config.add_header(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_tap_cannot_use_are_usage_errors() {
        for bad in ["builtin", "http://h:1/no spaces", "ftp://h/", "h:1"] {
            let err = TapConfig::new(bad, None).unwrap_err();
            assert!(matches!(err, TapError::Usage(_)), "{bad}: {err}");
        }
    }
}
