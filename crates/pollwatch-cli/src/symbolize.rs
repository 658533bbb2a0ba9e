//! `pollwatch symbolize`: gives a report written by a build without symbols or line tables
//! (a stripped production binary) its call sites, blocking APIs, causes and fixes, from the
//! build's debug info kept elsewhere. Each frame of such a report keeps its module's path and
//! GNU build-id and its address in the module; the debug info whose build-id matches
//! symbolizes those addresses, and `pollwatch-judge` judges the stalls again as the live
//! process would have with line tables. Debug info of another build is refused, naming both
//! build-ids.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use pollwatch_capture::{dwp_beside, identify, DebugInfo};
use pollwatch_judge::look::frames_of;
use pollwatch_judge::rejudge::{needs_symbols, rejudge_report};
use pollwatch_report::{hlog, write, FrameModule, Report};

use crate::input::Run;
use crate::Outcome;

/// `pollwatch symbolize`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A report directory, or its `report.json`.
    path: PathBuf,
    /// The build's debug info: its separate debug file (`objcopy --only-keep-debug`), the
    /// unstripped binary (with its `.dwp` beside it, if any), a `.dwp` (read with the binary
    /// beside it), or a directory (a `.build-id/xx/rest.debug` tree, or files matched by
    /// build-id). Repeat for shared libraries.
    #[arg(short, long, required = true, value_name = "FILE|DIR")]
    debug: Vec<PathBuf>,
    /// Write the symbolized report (`report.json`, `report.txt`, and a copy of the interval
    /// log) to DIR instead of over the report.
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
}

/// A module the report's stacks need symbols for.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Wanted {
    build_id: Option<String>,
    path: String,
}

pub(crate) fn run(args: &Args) -> Result<Outcome, String> {
    let run = Run::read(&args.path, false)?;
    let mut report = run.report;
    let wanted = wanted(&report);
    if wanted.is_empty() {
        return Ok(Outcome::Done(format!(
            "nothing to symbolize: every stall of {} names its call site, or has no frame \
             with a module address\n",
            run.name
        )));
    }
    let found = find_debug_info(&args.debug, &wanted)?;
    let mut infos: HashMap<Option<String>, DebugInfo> = HashMap::new();
    for (module, file) in &found {
        let info = DebugInfo::open(file).map_err(|e| e.to_string())?;
        infos.insert(module.build_id.clone(), info);
    }
    let mut resolve = |module: &FrameModule| {
        let info = infos.get(&module.build_id)?;
        Some(frames_of(info.symbolize(module.address)))
    };
    let before: Vec<String> = report.stalls.iter().map(|s| s.call_site_label()).collect();
    let done = rejudge_report(&mut report, &mut resolve);
    let out_dir = args.output.clone().unwrap_or_else(|| run.dir.clone());
    write_report(&run.dir, &out_dir, &report)?;
    Ok(Outcome::Done(summary(
        &run.name, &out_dir, &wanted, &found, &report, &before, &done,
    )))
}

/// The modules whose frames the stalls without a call site need symbolized.
fn wanted(report: &Report) -> Vec<Wanted> {
    let mut wanted: Vec<Wanted> = report
        .stalls
        .iter()
        .filter(|s| needs_symbols(s))
        .flat_map(|s| s.backtrace.iter().filter_map(|f| f.module.as_ref()))
        // Not a file: the kernel's vDSO (`linux-vdso.so.1`), which has no debug info to give.
        .filter(|m| m.path.starts_with('/'))
        .map(|m| Wanted {
            build_id: m.build_id.clone(),
            path: m.path.clone(),
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    wanted
}

/// The debug file for each wanted module among `given`, matched by build-id. A file given by
/// name that fits no module is refused; modules no debug info fits are left out (the C
/// library's, usually). At least one module must be found.
fn find_debug_info(given: &[PathBuf], wanted: &[Wanted]) -> Result<Vec<(Wanted, PathBuf)>, String> {
    let mut found: Vec<(Wanted, PathBuf)> = Vec::new();
    let ids = || {
        wanted
            .iter()
            .map(|w| {
                format!(
                    "{} (build-id {})",
                    w.path,
                    w.build_id.as_deref().unwrap_or("none")
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for path in given {
        if path.is_dir() {
            for file in candidates(path, wanted) {
                let Ok(identity) = identify(&file) else {
                    continue;
                };
                if let Some(w) = wanted
                    .iter()
                    .find(|w| w.build_id.is_some() && w.build_id == identity.build_id)
                {
                    if !found.iter().any(|(f, _)| f == w) {
                        found.push((w.clone(), file));
                    }
                }
            }
            continue;
        }
        let file = match path.extension() {
            Some(ext) if ext == "dwp" => {
                let binary = path.with_extension("");
                if !binary.is_file() || dwp_beside(&binary) != *path {
                    return Err(format!(
                        "{}: a .dwp holds split debug info whose addresses are in the binary \
                         it was built with; give that unstripped binary ({} is missing)",
                        path.display(),
                        binary.display()
                    ));
                }
                binary
            }
            _ => path.clone(),
        };
        let identity = identify(&file).map_err(|e| e.to_string())?;
        match wanted.iter().find(|w| w.build_id == identity.build_id) {
            Some(w) => {
                if !identity.lines {
                    return Err(format!(
                        "{} matches {} (build-id {}) but has no line tables: give the file \
                         the debug info was split into (objcopy --only-keep-debug), or a build \
                         with debug = \"line-tables-only\" or more",
                        file.display(),
                        w.path,
                        w.build_id.as_deref().unwrap_or("none")
                    ));
                }
                found.push((w.clone(), file));
            }
            None => {
                return Err(format!(
                    "{} has build-id {}, but the report's stacks are in {}: it is the debug \
                     info of another build",
                    file.display(),
                    identity.build_id.as_deref().unwrap_or("none"),
                    ids()
                ))
            }
        }
    }
    if found.is_empty() {
        return Err(format!(
            "no debug info for {} in {}",
            ids(),
            given
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(found)
}

/// The files of a directory that may be a wanted module's debug info: its `.build-id` tree's
/// files for the wanted build-ids (the directory may be the tree itself), then the files in
/// it and in `.debug` beside them.
fn candidates(dir: &Path, wanted: &[Wanted]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for id in wanted.iter().filter_map(|w| w.build_id.as_deref()) {
        let (Some(first), Some(rest)) = (id.get(..2), id.get(2..)) else {
            continue;
        };
        for tree in [dir.join(".build-id"), dir.to_path_buf()] {
            files.push(tree.join(first).join(format!("{rest}.debug")));
        }
    }
    for dir in [dir.to_path_buf(), dir.join(".debug")] {
        if let Ok(entries) = std::fs::read_dir(&dir) {
            let mut more: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            more.sort();
            files.extend(more);
        }
    }
    files.retain(|f| f.is_file());
    files
}

/// Writes the report's JSON and text to `out`, with a copy of the interval log when `out` is
/// not where the report was.
fn write_report(from: &Path, out: &Path, report: &Report) -> Result<(), String> {
    write::write_dir(out, report, pollwatch_report::text::TOP_SITES).map_err(|e| e.to_string())?;
    let log = from.join(hlog::FILE);
    if out != from && log.is_file() {
        std::fs::copy(&log, out.join(hlog::FILE))
            .map_err(|e| format!("cannot copy {} to {}: {e}", log.display(), out.display()))?;
    }
    Ok(())
}

/// What was symbolized, and the call sites the stalls now name, most stalls first.
fn summary(
    name: &str,
    out: &Path,
    wanted: &[Wanted],
    found: &[(Wanted, PathBuf)],
    report: &Report,
    before: &[String],
    done: &pollwatch_judge::rejudge::Rejudged,
) -> String {
    let mut text = String::new();
    for (module, file) in found {
        let _ = writeln!(
            text,
            "{} (build-id {}): {}",
            module.path,
            module.build_id.as_deref().unwrap_or("none"),
            file.display()
        );
    }
    for module in wanted
        .iter()
        .filter(|w| !found.iter().any(|(f, _)| f == *w))
    {
        let _ = writeln!(
            text,
            "{} (build-id {}): no debug info given; its frames stay addresses",
            module.path,
            module.build_id.as_deref().unwrap_or("none")
        );
    }
    let _ = writeln!(
        text,
        "\nsymbolized {} stall{} of {name}: {} now name{} the blocking line",
        done.stalls,
        if done.stalls == 1 { "" } else { "s" },
        done.with_call_site,
        if done.with_call_site == 1 { "s" } else { "" },
    );
    let mut lines: BTreeMap<(String, String), u64> = BTreeMap::new();
    for (stall, old) in report.stalls.iter().zip(before) {
        let label = stall.call_site_label();
        if label != *old {
            let what = match (&stall.blocking_call, stall.cause.as_str()) {
                (Some(api), cause) => format!("{api} ({cause})"),
                (None, cause) => format!("({cause})"),
            };
            *lines.entry((label, what)).or_default() += 1;
        }
    }
    let mut lines: Vec<_> = lines.into_iter().collect();
    lines.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    for ((at, what), n) in lines {
        let _ = writeln!(text, "  {n:>4}  {at}  {what}");
    }
    let _ = writeln!(
        text,
        "\nwrote {}",
        out.join(pollwatch_report::json::FILE).display()
    );
    text
}
