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
