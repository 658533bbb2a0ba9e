//! A small well-formedness check for the tests: every element is closed in order, attributes
//! are quoted, and `&` only starts a character reference. Enough to know an XML parser would
//! accept the page, without depending on one.

/// `Ok` when `page` is balanced markup; otherwise where it is not.
pub(super) fn check(page: &str) -> Result<(), String> {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = page;
    let mut roots = 0;
    while let Some(at) = rest.find(['<', '&']) {
        let text = &rest[..at];
        if text.contains('>') {
            return Err(format!("stray `>` in text near {:?}", near(rest, 0)));
        }
        if !text.trim().is_empty() && open.is_empty() {
            return Err(format!("text outside the root: {:?}", near(text, 0)));
        }
        rest = &rest[at..];
        if rest.starts_with('&') {
            let end = rest.find(';').ok_or("`&` without `;`")?;
            reference(&rest[1..end])?;
            rest = &rest[end + 1..];
            continue;
        }
        if let Some(body) = rest.strip_prefix("<!--") {
            let end = body.find("-->").ok_or("unclosed comment")?;
            rest = &body[end + 3..];
        } else if let Some(body) = rest.strip_prefix("<?") {
            let end = body.find("?>").ok_or("unclosed processing instruction")?;
            rest = &body[end + 2..];
        } else if rest.starts_with("<!DOCTYPE") {
            if roots > 0 || !open.is_empty() {
                return Err("DOCTYPE after the root".into());
            }
            let end = rest.find('>').ok_or("unclosed DOCTYPE")?;
            rest = &rest[end + 1..];
        } else if let Some(body) = rest.strip_prefix("</") {
            let end = body.find('>').ok_or("unclosed end tag")?;
            let name = body[..end].trim();
            match open.pop() {
                Some(top) if top == name => {}
                top => return Err(format!("</{name}> closes {top:?} near {:?}", near(body, 0))),
            }
            rest = &body[end + 1..];
        } else {
            let (name, self_closing, after) = start_tag(&rest[1..])?;
            if open.is_empty() {
                roots += 1;
                if roots > 1 {
                    return Err(format!("second root element <{name}>"));
                }
            }
            if !self_closing {
                open.push(name);
            }
            rest = after;
        }
    }
    if rest.trim().is_empty() && open.is_empty() && roots == 1 {
        Ok(())
    } else {
        Err(format!("unclosed at the end: {open:?}"))
    }
}

/// Parses a start tag after its `<`: its name, whether it ends with `/>`, and what follows it.
fn start_tag(s: &str) -> Result<(&str, bool, &str), String> {
    let name_end = s
        .find(|c: char| c.is_whitespace() || c == '>' || c == '/')
        .ok_or("unclosed start tag")?;
    let name = &s[..name_end];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(format!("bad element name {name:?}"));
    }
    let mut rest = &s[name_end..];
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("/>") {
            return Ok((name, true, after));
        }
        if let Some(after) = rest.strip_prefix('>') {
            return Ok((name, false, after));
        }
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("attribute without value in <{name}>"))?;
        let attr = rest[..eq].trim();
        if attr.is_empty()
            || !attr
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-:".contains(c))
        {
            return Err(format!("bad attribute name {attr:?} in <{name}>"));
        }
        let value = rest[eq + 1..].trim_start();
        let quote = value
            .chars()
            .next()
            .filter(|q| *q == '"' || *q == '\'')
            .ok_or_else(|| format!("unquoted attribute {attr} in <{name}>"))?;
        let end = value[1..]
            .find(quote)
            .ok_or_else(|| format!("unclosed attribute {attr} in <{name}>"))?;
        let v = &value[1..=end];
        if v.contains('<') {
            return Err(format!("`<` in attribute {attr} of <{name}>"));
        }
        for r in v.split('&').skip(1) {
            reference(r.split(';').next().unwrap_or(""))?;
        }
        rest = &value[end + 2..];
    }
}

/// Checks the name of a reference between `&` and `;`.
fn reference(name: &str) -> Result<(), String> {
    let ok = matches!(name, "amp" | "lt" | "gt" | "quot" | "apos")
        || name
            .strip_prefix('#')
            .is_some_and(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
    if ok {
        Ok(())
    } else {
        Err(format!("bad reference &{name};"))
    }
}

/// A few characters of `s` from `at`, for messages.
fn near(s: &str, at: usize) -> String {
    s[at..].chars().take(60).collect()
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_balanced_markup() {
        assert_eq!(
            check("<!DOCTYPE html>\n<?xml x?><html a=\"1\" b='&amp;'><!-- <x> --><br/><p>a &lt; b</p></html>\n"),
            Ok(())
        );
    }

    #[test]
    fn rejects_what_an_xml_parser_would() {
        for bad in [
            "<html><p></html>",
            "<html><br></html>",
            "<html a=1></html>",
            "<html>a & b</html>",
            "<html>a > b</html>",
            "<html a=\"<\"></html>",
            "<html></html><html></html>",
            "<html>",
            "<html><p>&nbsp;</p></html>",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }
}
