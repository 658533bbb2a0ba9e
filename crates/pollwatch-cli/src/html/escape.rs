//! Escaping text for a page that must be both HTML5 and well-formed XML.
//!
//! Everything that comes from a report (site labels, task names, paths, backtraces) goes through
//! [`text`] before it is written into the page, in element content and in attribute values
//! alike. Besides the five characters with a meaning in markup, it replaces the control
//! characters that XML 1.0 does not allow anywhere (a task name could hold one), so that an XML
//! parser accepts every page.

/// `s` safe to write as element content or inside a quoted attribute value: `&`, `<`, `>`, `"`
/// and `'` become character references, and control characters other than tab, newline and
/// carriage return (not allowed in XML 1.0) become U+FFFD.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references() {
        assert_eq!(
            text(r#"<script>&"'</script>"#),
            "&lt;script&gt;&amp;&quot;&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn characters_xml_forbids_are_replaced_and_the_rest_kept() {
        assert_eq!(
            text("a\u{0}b\u{1b}c\td\u{7f}é µs"),
            "a\u{FFFD}b\u{FFFD}c\td\u{FFFD}é µs"
        );
    }
}
