//! Reading code for the layer check: comments and literals blanked out (newlines kept, so line
//! numbers survive), then the rest split into tokens.

// ---------------------------------------------------------------------------------------------
// Reading code: blanking comments and literals, then splitting into tokens

/// A word (identifier, keyword, number), `::`, or any other single character.
pub struct Token {
    pub text: String,
    pub line: usize,
}

/// The token text at `i`, or "" out of range, so that lookahead needs no bounds checks.
pub fn text(tokens: &[Token], i: usize) -> &str {
    tokens.get(i).map_or("", |token| token.text.as_str())
}

pub fn is_ident(word: &str) -> bool {
    word.starts_with(|c: char| c.is_alphabetic() || c == '_') && word.chars().all(is_word_char)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn word_len(chars: &[char]) -> usize {
    chars.iter().take_while(|&&c| is_word_char(c)).count()
}

/// Splits blanked code into tokens with 1-based line numbers. `$` is dropped so that
/// `$crate::x` in a macro reads as `crate::x`.
pub fn tokenize(code: &str) -> Vec<Token> {
    let chars: Vec<char> = code.chars().collect();
    let mut tokens = Vec::new();
    let (mut i, mut line) = (0, 1);
    while i < chars.len() {
        let c = chars[i];
        let double_colon = c == ':' && chars.get(i + 1) == Some(&':');
        let end = i + word_len(&chars[i..]).max(1 + usize::from(double_colon));
        if !c.is_whitespace() && c != '$' {
            tokens.push(Token {
                text: chars[i..end].iter().collect(),
                line,
            });
        }
        line += usize::from(c == '\n');
        i = end;
    }
    tokens
}

/// Replaces comments (line, doc and nested block comments) and string, byte-string, raw-string
/// and char literals with spaces, keeping newlines so that line numbers stay right. A string in
/// an attribute that is nothing but a path (`#[serde(with = "crate::units::serde")]`) is kept:
/// it names a module as surely as code does.
pub fn blank_comments_and_literals(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let (mut i, mut attribute_depth, mut after_hash) = (0, 0, false);
    while i < chars.len() {
        if let Some(end) = comment_end(&chars, i) {
            blank(&chars[i..end], &mut out);
            i = end;
        } else if let Some(((from, to), end)) = literal_at(&chars, i) {
            let inner: String = chars[from..to].iter().collect();
            let is_path =
                inner.contains("::") && inner.chars().all(|c| is_word_char(c) || c == ':');
            let keep = if attribute_depth > 0 && is_path {
                from..to
            } else {
                end..end
            };
            blank(&chars[i..keep.start], &mut out);
            out.extend(&chars[keep.clone()]);
            blank(&chars[keep.end..end], &mut out);
            i = end;
        } else {
            let c = chars[i];
            match c {
                '[' if after_hash || attribute_depth > 0 => attribute_depth += 1,
                ']' if attribute_depth > 0 => attribute_depth -= 1,
                _ => {}
            }
            after_hash = c == '#' || (after_hash && (c == '!' || c.is_whitespace()));
            let end = i + word_len(&chars[i..]).max(1); // whole words, so `br"` is seen at `b`
            out.extend(&chars[i..end]);
            i = end;
        }
    }
    out
}

/// Writes `chars` as spaces, keeping the newlines.
fn blank(chars: &[char], out: &mut String) {
    out.extend(chars.iter().map(|&c| if c == '\n' { '\n' } else { ' ' }));
}

/// The end of the comment starting at `i`, if one does. Block comments nest in Rust.
fn comment_end(chars: &[char], i: usize) -> Option<usize> {
    let at = |k: usize, pair: [char; 2]| chars[k..].starts_with(&pair);
    if at(i, ['/', '/']) {
        return Some(i + chars[i..].iter().take_while(|&&c| c != '\n').count());
    }
    if !at(i, ['/', '*']) {
        return None;
    }
    let (mut k, mut depth) = (i + 2, 1);
    while k < chars.len() && depth > 0 {
        match (chars[k], chars.get(k + 1)) {
            ('/', Some('*')) => (depth, k) = (depth + 1, k + 2),
            ('*', Some('/')) => (depth, k) = (depth - 1, k + 2),
            _ => k += 1,
        }
    }
    Some(k)
}

/// The literal starting at `i`, if one does, as ((content start, content end), end): `"..."`,
/// `b"..."`, `c"..."`, raw strings `r#"..."#` (any number of `#`, also with `b` or `c`), and
/// char literals `'x'`, `'\n'`, `b'x'`; but not lifetimes like `'a`.
fn literal_at(chars: &[char], i: usize) -> Option<((usize, usize), usize)> {
    let prefix_len = word_len(&chars[i..]);
    let after = i + prefix_len;
    let prefix: String = chars[i..after].iter().collect();
    match (prefix.as_str(), chars.get(after)) {
        ("" | "b" | "c", Some('"')) => {
            let mut close = after + 1;
            while close < chars.len() && chars[close] != '"' {
                close += if chars[close] == '\\' { 2 } else { 1 };
            }
            Some((
                (after + 1, close.min(chars.len())),
                (close + 1).min(chars.len()),
            ))
        }
        ("r" | "br" | "cr", Some('"' | '#')) => {
            let hashes = chars[after..].iter().take_while(|&&c| c == '#').count();
            if chars.get(after + hashes) != Some(&'"') {
                return None; // a raw identifier like r#type
            }
            let start = after + hashes + 1;
            let closing: Vec<char> = std::iter::once('"').chain(vec!['#'; hashes]).collect();
            let close = (start..chars.len()).find(|&k| chars[k..].starts_with(&closing));
            let close = close.unwrap_or(chars.len());
            Some(((start, close), (close + closing.len()).min(chars.len())))
        }
        ("" | "b", Some('\'')) => {
            let close = match (chars.get(after + 1), chars.get(after + 2)) {
                (Some('\\'), _) => (after + 3..chars.len()).find(|&k| chars[k] == '\'')?,
                (_, Some('\'')) => after + 2,
                _ => return None, // a lifetime or a loop label
            };
            Some(((after + 1, close), close + 1))
        }
        _ => None,
    }
}
