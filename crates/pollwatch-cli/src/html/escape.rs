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

/// `s` escaped as by [`text`], wrapping only between its directories: with a line-break
/// opportunity (`<wbr/>`) after each `/` and `\`, and every word that holds a `-` or `?`
/// (where browsers also break, as in `pollwatch-` `cli`) in a `<span class="nw">` that the
/// page's stylesheet keeps on one line. So `src/db.rs:71` breaks, if at all, as `src/` and
/// `db.rs:71`: never inside a name, nor between a file and its line. Copying the text gives
/// the path unchanged (neither adds a character).
pub(crate) fn path(s: &str) -> String {
    with_breaks(s, false)
}

/// `s` escaped as a [`path`] that may also break after each `::`: for function names in
/// backtraces, which can be long and hold no `/` (`tokio::runtime::task::harness::Harness<..>`),
/// and for suggestions, whose prose names such paths.
pub(crate) fn symbol(s: &str) -> String {
    with_breaks(s, true)
}

/// `s` escaped, with `<wbr/>` after each `/` and `\`, and after each `::` with `double_colons`.
fn with_breaks(s: &str, double_colons: bool) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 4);
    let mut rest = s;
    loop {
        let next = rest
            .find(['/', '\\'])
            .map(|at| at + 1)
            .into_iter()
            .chain(rest.find("::").filter(|_| double_colons).map(|at| at + 2))
            .min();
        let Some(end) = next else { break };
        whole_words(&mut out, &rest[..end]);
        out.push_str("<wbr/>");
        rest = &rest[end..];
    }
    whole_words(&mut out, rest);
    out
}

/// `piece` escaped, each word with a `-` or `?` in it (after which browsers break a line) kept
/// whole in a `<span class="nw">`; spaces stay places to break.
fn whole_words(out: &mut String, piece: &str) {
    for (i, word) in piece.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if word.contains(['-', '?']) {
            out.push_str("<span class=\"nw\">");
            out.push_str(&text(word));
            out.push_str("</span>");
        } else {
            out.push_str(&text(word));
        }
    }
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

    #[test]
    fn paths_break_only_after_their_separators() {
        assert_eq!(path("src/db.rs:71"), "src/<wbr/>db.rs:71");
        assert_eq!(
            path("examples/demo/src/routes/fs.rs:70:5 \"bad_fs\""),
            "examples/<wbr/>demo/<wbr/>src/<wbr/>routes/<wbr/>fs.rs:70:5 &quot;bad_fs&quot;"
        );
        assert_eq!(path(r"C:\src\a.rs:1"), r"C:\<wbr/>src\<wbr/>a.rs:1");
        assert_eq!(
            path("std::net::TcpStream::read"),
            "std::net::TcpStream::read"
        );
        assert_eq!(path("</td>"), "&lt;/<wbr/>td&gt;");
        assert_eq!(path("a//b/"), "a/<wbr/>/<wbr/>b/<wbr/>");
        assert_eq!(path(""), "");
    }

    #[test]
    fn words_a_browser_would_break_at_a_hyphen_are_kept_whole() {
        assert_eq!(
            path("crates/pollwatch-cli/src/a-b.rs:3"),
            "crates/<wbr/><span class=\"nw\">pollwatch-cli/</span><wbr/>src/<wbr/>\
             <span class=\"nw\">a-b.rs:3</span>"
        );
        assert_eq!(
            path("TCP 1.2.3.4:80 -> 5.6.7.8:443"),
            "TCP 1.2.3.4:80 <span class=\"nw\">-&gt;</span> 5.6.7.8:443"
        );
        assert_eq!(path("a?b c"), "<span class=\"nw\">a?b</span> c");
    }

    #[test]
    fn symbols_also_break_after_double_colons() {
        assert_eq!(
            symbol("std::net::TcpStream::read"),
            "std::<wbr/>net::<wbr/>TcpStream::<wbr/>read"
        );
        assert_eq!(
            symbol("<a::B as c::D>::e"),
            "&lt;a::<wbr/>B as c::<wbr/>D&gt;::<wbr/>e"
        );
        assert_eq!(symbol("x:::y"), "x::<wbr/>:y");
        assert_eq!(symbol("src/a.rs"), "src/<wbr/>a.rs");
    }
}
