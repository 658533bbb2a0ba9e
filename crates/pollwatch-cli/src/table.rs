//! A plain-text table: a label column, then right-aligned cells, no trailing spaces.

/// Rows of cells under headers, with full-width label lines between them.
#[derive(Debug)]
pub(crate) struct Table {
    headers: Vec<String>,
    lines: Vec<Line>,
}

#[derive(Debug)]
enum Line {
    Label(String),
    Row(String, Vec<String>),
}

/// The space between columns.
const GAP: &str = "  ";

impl Table {
    pub(crate) fn new(headers: Vec<&str>) -> Table {
        Table {
            headers: headers.into_iter().map(str::to_owned).collect(),
            lines: Vec::new(),
        }
    }

    /// A line of its own (a site label), not aligned with the columns.
    pub(crate) fn label(&mut self, text: &str) {
        self.lines.push(Line::Label(text.to_owned()));
    }

    /// A row: its name in the first column, then one cell per header.
    pub(crate) fn row(&mut self, name: &str, cells: Vec<String>) {
        self.lines.push(Line::Row(name.to_owned(), cells));
    }

    pub(crate) fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let mut name_width = width("site");
        let mut widths: Vec<usize> = self.headers.iter().map(|h| width(h)).collect();
        for line in &self.lines {
            if let Line::Row(name, cells) = line {
                name_width = name_width.max(width(name));
                for (w, cell) in widths.iter_mut().zip(cells) {
                    *w = (*w).max(width(cell));
                }
            }
        }
        let mut out = String::new();
        let push_row = |out: &mut String, name: &str, cells: &[String]| {
            let mut line = format!("{name:<name_width$}");
            for (cell, &w) in cells.iter().zip(&widths) {
                line.push_str(GAP);
                line.push_str(&" ".repeat(w.saturating_sub(width(cell))));
                line.push_str(cell);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        };
        push_row(&mut out, "site", &self.headers);
        for line in &self.lines {
            match line {
                Line::Label(text) => {
                    out.push_str(text);
                    out.push('\n');
                }
                Line::Row(name, cells) => push_row(&mut out, name, cells),
            }
        }
        out
    }
}

/// `1 poll`, `2 polls`: `n` and `noun`, plural unless `n` is 1.
pub(crate) fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_right_aligned_under_their_headers() {
        let mut t = Table::new(vec!["polls", "p99"]);
        t.label("src/a.rs:1:1");
        t.row("  before", vec!["5".into(), "1.00ms".into()]);
        t.row("  after", vec!["12345".into(), "µs".into()]);
        assert_eq!(
            t.render(),
            "site      polls     p99\n\
             src/a.rs:1:1\n  \
             before      5  1.00ms\n  \
             after   12345      µs\n"
        );
    }
}
