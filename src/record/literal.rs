//! Recorded text written into a scenario's templates, where `{{` opens a placeholder. A `{` of
//! the text that would open one (another `{` follows it, in the text or as a placeholder's
//! start) is written [`OPEN_BRACE`], the placeholder that renders `{`: templates have no other
//! escape. In a URL's query the text is percent-encoded instead, as the capture had it before
//! it was decoded.

use crate::protocol::engineio::encode_query_value;

/// How the literal pieces of a template are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Literal {
    /// As recorded (a JSON string, a header, a body).
    Text,
    /// Percent-encoded: a value in a path's query.
    Query,
}

/// What a template renders as a `{` where `{{` would open a placeholder.
pub const OPEN_BRACE: &str = "{{one_of({)}}";

/// A template put together from literal text and placeholders.
#[derive(Debug, Default)]
pub struct TemplateText {
    out: String,
    /// The text ends with a literal `{`, which a placeholder must not follow as written.
    open_brace_at_end: bool,
}

impl TemplateText {
    pub fn literal(&mut self, text: &str, how: Literal) -> &mut Self {
        let text = match how {
            Literal::Text => text.to_string(),
            Literal::Query => encode_query_value(text),
        };
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '{' && chars.peek() == Some(&'{') {
                self.out.push_str(OPEN_BRACE);
            } else {
                self.out.push(c);
            }
        }
        self.open_brace_at_end = text.ends_with('{');
        self
    }

    /// Appends a placeholder, `{{...}}` as written.
    pub fn placeholder(&mut self, placeholder: &str) -> &mut Self {
        if self.open_brace_at_end {
            self.out.pop();
            self.out.push_str(OPEN_BRACE);
        }
        self.out.push_str(placeholder);
        self.open_brace_at_end = false;
        self
    }

    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }
}

/// `text` as a template that renders it.
pub fn literal(text: &str, how: Literal) -> String {
    TemplateText::default().literal(text, how).finish()
}

/// `text` as a template with each `found` in it replaced by `placeholder`.
pub fn with_placeholder(text: &str, found: &str, placeholder: &str, how: Literal) -> String {
    let mut template = TemplateText::default();
    for (i, piece) in text.split(found).enumerate() {
        if i > 0 {
            template.placeholder(placeholder);
        }
        template.literal(piece, how);
    }
    template.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn braces_that_would_open_a_placeholder_are_written_as_one_that_renders_them() {
        assert_eq!(literal("a {b} c", Literal::Text), "a {b} c");
        assert_eq!(literal("{{x}}", Literal::Text), "{{one_of({)}}{x}}");
        assert_eq!(literal("{{{", Literal::Text), "{{one_of({)}}{{one_of({)}}{");
        assert_eq!(
            with_placeholder("{room-ann{", "ann", "{{users.user}}", Literal::Text),
            "{room-{{users.user}}{"
        );
        assert_eq!(
            with_placeholder("{ann", "ann", "{{users.user}}", Literal::Text),
            "{{one_of({)}}{{users.user}}"
        );
        assert_eq!(
            with_placeholder("a b&{{ann", "ann", "{{users.user}}", Literal::Query),
            "a%20b%26%7B%7B{{users.user}}"
        );
    }
}
