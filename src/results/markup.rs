//! Text made safe for the markup files: report.html and junit.xml, one escaper for both, which
//! every piece of text from a run or a results folder goes through on its way into them.

/// Text made safe for element content and quoted attribute values in HTML and XML. Characters XML
/// 1.0 cannot hold at all (control characters other than tab and line breaks, U+FFFE, U+FFFF) are
/// left out; the apostrophe is `&#39;`, which both read.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' | '\t' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_and_what_xml_cannot_hold_are_escaped_or_left_out() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{1}b\tc\u{ffff}"), "ab\tc");
    }
}
