//! `pollwatch html` writes one well-formed, self-contained page: one percentile chart per site,
//! a timeline from the interval log, the stalls with their call sites, nothing fetched and no
//! script.

use std::path::{Path, PathBuf};
use std::process::Command;

fn render(run: &str, name: &str) -> (String, pollwatch_report::Report) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(run);
    let out: PathBuf =
        std::env::temp_dir().join(format!("pollwatch-html-{name}-{}.html", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .args(["html", dir.to_str().unwrap(), "-o", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let page = std::fs::read_to_string(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    (page, pollwatch_report::json::read(&dir).unwrap())
}

fn with_class<'a>(doc: &'a roxmltree::Document<'a>, class: &str) -> Vec<roxmltree::Node<'a, 'a>> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class")
                .is_some_and(|c| c.split_whitespace().any(|w| w == class))
        })
        .collect()
}

#[test]
fn one_percentile_chart_per_site_in_a_well_formed_page() {
    for run in ["before", "after"] {
        let (page, report) = render(run, run);
        let doc = roxmltree::Document::parse_with_options(
            &page,
            roxmltree::ParsingOptions {
                allow_dtd: true,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("{run}: not well-formed: {e}"));
        let charts = with_class(&doc, "percentiles");
        assert!(charts.iter().all(|c| c.tag_name().name() == "svg"));
        assert_eq!(charts.len(), report.sites.len(), "{run}");
        // Every site's section is there, named by its label.
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        for site in &report.sites {
            assert!(text.contains(&site.label), "{run}: {} missing", site.label);
        }
        // The interval log gives timelines.
        assert!(!with_class(&doc, "timeline").is_empty(), "{run}");
    }
}

#[test]
fn stalls_are_listed_with_call_sites_and_backtraces() {
    let (page, report) = render("before", "stalls");
    assert!(!report.stalls.is_empty());
    let doc = roxmltree::Document::parse_with_options(
        &page,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap();
    let text: String = doc.descendants().filter_map(|n| n.text()).collect();
    let with_call_site = report
        .stalls
        .iter()
        .find(|s| s.call_site.is_some() && !s.backtrace.is_empty())
        .unwrap();
    assert!(text.contains(with_call_site.call_site.as_deref().unwrap()));
    assert!(text.contains(&with_call_site.backtrace[0].function));
    let details = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "details")
        .count();
    assert!(details > 0, "backtraces fold away without script");
}

#[test]
fn nothing_is_fetched_and_nothing_runs() {
    let (page, _) = render("before", "offline");
    assert!(!page.contains("<script"), "no JavaScript");
    for url in ["http://", "https://"] {
        for (at, _) in page.match_indices(url) {
            let rest = &page[at..];
            assert!(
                rest.starts_with("http://www.w3.org/2000/svg")
                    || rest.starts_with("http://www.w3.org/1999/xhtml"),
                "a link out of the page: {}",
                &rest[..rest.len().min(80)]
            );
        }
    }
    assert!(
        !page.contains("NaN") && !page.contains("inf\""),
        "no broken coordinates"
    );
}

fn parse(page: &str) -> roxmltree::Document<'_> {
    roxmltree::Document::parse_with_options(
        page,
        roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        },
    )
    .unwrap()
}

/// The text of `node` and everything in it.
fn all_text(node: roxmltree::Node) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// The `dropped` counters of `report` above zero, by name, as the report file has them.
fn nonzero_dropped(report: &pollwatch_report::Report) -> Vec<(String, u64)> {
    let counters = serde_json::to_value(&report.dropped).unwrap();
    counters
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, n)| (name.clone(), n.as_u64().unwrap()))
        .filter(|(_, n)| *n > 0)
        .collect()
}

#[test]
fn only_dropped_counters_above_zero_are_shown_after_the_sites() {
    // `after` dropped nothing: one short line at the end, no table of zeros.
    let (page, report) = render("after", "dropped-none");
    assert!(nonzero_dropped(&report).is_empty(), "test data changed");
    let doc = parse(&page);
    assert!(
        !with_class(&doc, "dropped")
            .iter()
            .any(|n| n.has_tag_name("table")),
        "a dropped table of zeros"
    );
    let footer = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("dropped"))
        .expect("a line about what was dropped");
    assert_eq!(all_text(footer).trim(), "Nothing dropped.");
    let sites = with_class(&doc, "site");
    assert!(sites.iter().all(|s| s.range().end < footer.range().start));
    assert!(!page.contains("href=\"#dropped\""), "no link to nothing");

    // `before` suppressed warnings and dropped nothing else: that one row, below every site.
    let (page, report) = render("before", "dropped-some");
    let nonzero = nonzero_dropped(&report);
    assert_eq!(nonzero.len(), 1, "test data changed: {nonzero:?}");
    let (name, n) = &nonzero[0];
    let doc = parse(&page);
    let tables = with_class(&doc, "dropped");
    assert_eq!(tables.len(), 1);
    let rows: Vec<_> = tables[0]
        .descendants()
        .filter(|n| n.has_tag_name("tr"))
        .collect();
    assert_eq!(rows.len(), 1, "just the counter above zero");
    let cells: Vec<String> = rows[0]
        .children()
        .filter(|n| n.has_tag_name("td"))
        .map(all_text)
        .collect();
    assert_eq!(cells[..2], [name.clone(), n.to_string()]);
    let sites = with_class(&doc, "site");
    assert_eq!(sites.len(), report.sites.len());
    for site in sites.iter().chain(&with_class(&doc, "summary")) {
        assert!(
            site.range().end < tables[0].range().start,
            "dropped above the sites"
        );
    }
    // The top says that something was dropped, and links there.
    let header = doc
        .descendants()
        .find(|n| n.has_tag_name("header"))
        .unwrap();
    let link = header
        .descendants()
        .find(|n| n.attribute("href") == Some("#dropped"))
        .expect("a link to what was dropped");
    assert!(all_text(link).contains(name.as_str()));
}

#[test]
fn paths_wrap_only_between_directories_and_tables_scroll() {
    let (page, report) = render("before", "paths");
    let doc = parse(&page);
    let style = all_text(doc.descendants().find(|n| n.has_tag_name("style")).unwrap());
    // Nothing lets a browser break inside a word; the wide tables scroll instead of squeezing.
    assert!(!style.contains("anywhere"), "breaks mid-word: {style}");
    assert!(!style.contains("break-all"), "breaks mid-word: {style}");
    assert!(style.contains(".nw { white-space: nowrap; }"), "{style}");
    assert!(style.contains("div.wide { overflow-x: auto;"), "{style}");
    for class in ["summary", "call-sites", "stalls"] {
        let tables: Vec<_> = with_class(&doc, class)
            .into_iter()
            .filter(|n| n.has_tag_name("table"))
            .collect();
        assert!(!tables.is_empty(), "no {class} table");
        for t in tables {
            let parent = t.parent_element().unwrap();
            assert_eq!(parent.attribute("class"), Some("wide"), "{class}");
        }
    }

    // Every call site is written whole, with break opportunities only after a `/`: its
    // `file.rs:line` is one piece of text.
    let mut checked = 0;
    let call_site_codes = with_class(&doc, "call-sites")
        .into_iter()
        .chain(with_class(&doc, "stalls"))
        .flat_map(|t| t.descendants().filter(|n| n.has_tag_name("code")));
    for code in call_site_codes {
        let whole = all_text(code);
        let Some(call_site) = report
            .stalls
            .iter()
            .filter_map(|s| s.call_site.as_deref())
            .find(|c| *c == whole)
        else {
            continue;
        };
        let pieces: Vec<&str> = code
            .children()
            .filter(|n| n.is_text())
            .filter_map(|n| n.text())
            .collect();
        let breaks = code.children().filter(|n| n.has_tag_name("wbr")).count();
        assert_eq!(pieces.concat(), call_site);
        assert_eq!(breaks, call_site.matches('/').count(), "{call_site}");
        for piece in &pieces[..pieces.len() - 1] {
            assert!(piece.ends_with('/'), "{call_site} breaks after {piece:?}");
        }
        let file_line = call_site.rsplit('/').next().unwrap();
        assert!(file_line.contains(".rs:"), "{call_site}");
        assert_eq!(pieces.last(), Some(&file_line), "{call_site}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} call sites found");

    // A word a browser would break at its hyphen is held whole (`demo-worker`, `->`).
    let names_with_hyphens: Vec<_> = doc
        .descendants()
        .filter(|n| {
            n.is_text()
                && n.text().is_some_and(|t| t.contains('-'))
                && n.ancestors().any(|a| a.has_tag_name("table"))
                && n.ancestors()
                    .any(|a| a.has_tag_name("code") || a.has_tag_name("span"))
        })
        .collect();
    assert!(names_with_hyphens.len() > 10, "test data changed");
    for n in names_with_hyphens {
        let t = n.text().unwrap();
        let held = n.ancestors().any(|a| a.attribute("class") == Some("nw"));
        assert!(held, "{t:?} may break at its hyphen");
    }
}
