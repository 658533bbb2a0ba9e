//! `pollwatch html`: one self-contained HTML page (inline SVG, no JavaScript, no network).

use pollwatch_report::{hlog, Report};

/// The page for `report`, with poll time over the run from `log` when there is one. `title`
/// names the run (the directory or file it was read from).
pub(crate) fn render(report: &Report, log: Option<&hlog::Log>, title: &str) -> String {
    let _ = (report, log);
    format!("<!DOCTYPE html>\n<html><head><title>{title}</title></head><body></body></html>\n")
}
