//! When a name is secret: the one rule for query keys, header names, `Sec-WebSocket-Protocol`
//! markers, captured values and data columns.
//!
//! A name is cut into words at `_`, `-`, `.`, `[`, `]` and where a lower-case letter meets an
//! upper-case one (`sessionId` is `session` and `id`, `user[password]` is `user` and `password`,
//! as form fields nest); it is secret when one of its words, in any case, is a
//! word of [`SECRET_WORDS`]. So `token`, `access_token`, `X-Amz-Security-Token`, `apiKey`,
//! `user_password`, `Authorization` and `Set-Cookie` are secret; `author`, `keyboard`, `EIO`,
//! `transport`, `t` and `sid` are not.
//!
//! Not secret on purpose: the Engine.IO `sid` (it ties the requests of one session together, so
//! hiding it would hide the protocol, and the server sends it in the clear in every open
//! packet), `Sec-WebSocket-Key` (a nonce the accept header is computed from), and words that are
//! secrets only sometimes (`code`, `state`, `id`).

/// The words that make a name secret.
pub const SECRET_WORDS: &[&str] = &[
    "token",
    "auth",
    "authorization",
    "bearer",
    "jwt",
    "password",
    "passwd",
    "pwd",
    "pass",
    "secret",
    "key",
    "apikey",
    "session",
    "sessionid",
    "cookie",
    "credential",
    "signature",
    "sig",
    "ticket",
];

/// Headers whose names have a secret word but whose values are not secrets.
const PUBLIC_HEADERS: &[&str] = &["sec-websocket-key"];

/// Whether `name` names a secret (see the module's doc).
pub fn is_secret_name(name: &str) -> bool {
    words(name).any(|word| SECRET_WORDS.iter().any(|s| s.eq_ignore_ascii_case(word)))
}

/// Whether the value of header `name` is hidden whole.
pub fn is_secret_header(name: &str) -> bool {
    !PUBLIC_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name)) && is_secret_name(name)
}

/// The words of a name: cut at `_`, `-`, `.`, `[`, `]` and at a lower-case letter followed by an
/// upper-case one.
fn words(name: &str) -> impl Iterator<Item = &str> {
    let bytes = name.as_bytes();
    let mut start = 0;
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let b = bytes[i];
            if matches!(b, b'_' | b'-' | b'.' | b'[' | b']') {
                let word = &name[start..i];
                i += 1;
                start = i;
                if !word.is_empty() {
                    return Some(word);
                }
                continue;
            }
            let camel = i > start && b.is_ascii_uppercase() && bytes[i - 1].is_ascii_lowercase();
            if camel {
                let word = &name[start..i];
                start = i;
                i += 1;
                return Some(word);
            }
            i += 1;
        }
        if start < bytes.len() {
            let word = &name[start..];
            start = bytes.len();
            return Some(word);
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_into_words_at_separators_and_camel_case() {
        let cut = |name| words(name).collect::<Vec<_>>();
        assert_eq!(cut("access_token"), ["access", "token"]);
        assert_eq!(
            cut("X-Amz-Security-Token"),
            ["X", "Amz", "Security", "Token"]
        );
        assert_eq!(cut("sessionId"), ["session", "Id"]);
        assert_eq!(cut("apiKey"), ["api", "Key"]);
        assert_eq!(cut("wamp.2.json"), ["wamp", "2", "json"]);
        assert_eq!(cut("__a--b__"), ["a", "b"]);
        assert_eq!(cut("user[password]"), ["user", "password"]);
        assert_eq!(cut("a[b][c]"), ["a", "b", "c"]);
        assert_eq!(cut("EIO"), ["EIO"]);
        assert_eq!(cut(""), Vec::<&str>::new());
    }

    #[test]
    fn secret_names_have_a_secret_word() {
        for name in [
            "token",
            "access_token",
            "id_token",
            "refresh-token",
            "auth",
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "Set-Cookie",
            "apikey",
            "api_key",
            "apiKey",
            "X-Api-Key",
            "key",
            "password",
            "user_password",
            "userPassword",
            "passwd",
            "secret",
            "client_secret",
            "session",
            "sessionId",
            "jwt",
            "X-Amz-Signature",
            "X-Amz-Security-Token",
            "sig",
            "ticket",
            "bearer",
            "user[password]",
            "session[token]",
        ] {
            assert!(is_secret_name(name), "{name} should be secret");
        }
        for name in [
            "sid",
            "EIO",
            "transport",
            "t",
            "b64",
            "author",
            "keyboard",
            "room",
            "user",
            "code",
            "state",
            "id",
            "passenger",
            "tokens2",
        ] {
            assert!(!is_secret_name(name), "{name} should not be secret");
        }
    }

    #[test]
    fn the_websocket_key_header_is_not_secret_but_api_key_headers_are() {
        assert!(!is_secret_header("Sec-WebSocket-Key"));
        assert!(!is_secret_header("sec-websocket-accept"));
        assert!(is_secret_header("x-api-key"));
        assert!(is_secret_header("authorization"));
        assert!(!is_secret_header("Sec-WebSocket-Protocol"));
    }
}
