//! The text of `pollwatch lint`: the `clippy.toml` rules, one per blocking API however many
//! call sites used it, then the fix for each call site, as TOML comments.

use crate::table::plural;
use std::fmt::Write as _;

use pollwatch_report::call_sites::CallSiteGroup;

use super::rules::{self, Rule};

/// Used when neither pollwatch nor [`rules::own_reason`] has a replacement to name.
const GENERIC_REASON: &str =
    "Blocks a tokio worker thread: use an async counterpart, or tokio::task::spawn_blocking.";

/// The rules for a report's call-site groups, and what was left out.
pub(crate) struct Lint<'a> {
    groups: &'a [CallSiteGroup],
    entries: Vec<Entry>,
    left_out: Vec<LeftOut>,
}

/// One `disallowed-methods` entry, from every group whose API it catches.
struct Entry {
    path: String,
    /// Commented out: the path is a trait method and flags every impl's calls.
    opt_in: bool,
    reason: String,
    /// The APIs pollwatch named for it, when one is not `path` itself.
    named: Vec<String>,
    /// The APIs whose calls resolve to `path`, when it is a trait method.
    via: Vec<String>,
    stalls: u64,
    /// Call sites with their stalls.
    call_sites: Vec<(String, u64)>,
}

/// A group no rule can catch.
struct LeftOut {
    call_site: String,
    /// The API clippy cannot catch, when pollwatch named one.
    api: Option<String>,
    cause: String,
    stalls: u64,
    why: String,
}

impl<'a> Lint<'a> {
    pub(crate) fn new(groups: &'a [CallSiteGroup]) -> Lint<'a> {
        let mut lint = Lint {
            groups,
            entries: Vec::new(),
            left_out: Vec::new(),
        };
        for g in groups {
            let cause = g.causes.first().map_or("unknown", String::as_str);
            let api = g
                .blocking_call
                .as_deref()
                .filter(|_| !matches!(cause, "cpu" | "descheduled" | "memory_map"));
            let Some(api) = api else {
                lint.leave_out(g, None, rules::why_not(cause));
                continue;
            };
            for (one_api, rule) in rules::rules(api) {
                let (path, opt_in) = match rule {
                    Rule::Exact { path } => (path, false),
                    Rule::TraitMethod { path } => (path, true),
                    Rule::Inexpressible { why } => {
                        lint.leave_out(g, Some(one_api), why);
                        continue;
                    }
                };
                lint.add(g, api, &one_api, path, opt_in);
            }
        }
        lint.entries.sort_by(|a, b| {
            (a.opt_in, std::cmp::Reverse(a.stalls), &a.path).cmp(&(
                b.opt_in,
                std::cmp::Reverse(b.stalls),
                &b.path,
            ))
        });
        lint
    }

    /// Counts `g` under the entry for `path`; `named` is the API as pollwatch named it.
    /// `api` is the one API of `named` that `path` catches.
    fn add(&mut self, g: &CallSiteGroup, named: &str, api: &str, path: String, opt_in: bool) {
        let at = match self.entries.iter().position(|e| e.path == path) {
            Some(at) => at,
            None => {
                let reason = rules::own_reason(&path)
                    .map(str::to_owned)
                    .or_else(|| g.suggestion.clone())
                    .unwrap_or_else(|| GENERIC_REASON.to_owned());
                self.entries.push(Entry {
                    path: path.clone(),
                    opt_in,
                    reason,
                    named: Vec::new(),
                    via: Vec::new(),
                    stalls: 0,
                    call_sites: Vec::new(),
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[at];
        entry.stalls += g.count;
        match entry.call_sites.iter_mut().find(|(c, _)| *c == g.call_site) {
            Some((_, n)) => *n += g.count,
            None => entry.call_sites.push((g.call_site.clone(), g.count)),
        }
        if named != path && !entry.named.iter().any(|n| n == named) {
            entry.named.push(named.to_owned());
        }
        if opt_in && !entry.via.iter().any(|v| v == api) {
            entry.via.push(api.to_owned());
        }
    }

    fn leave_out(&mut self, g: &CallSiteGroup, api: Option<String>, why: String) {
        self.left_out.push(LeftOut {
            call_site: g.call_site.clone(),
            api,
            cause: g.causes.join(", "),
            stalls: g.count,
            why,
        });
    }

    /// The rules as a `clippy.toml`: `disallowed-methods`, with a comment per entry saying
    /// where pollwatch saw it, and the stalls no rule can catch.
    pub(crate) fn clippy_toml(&self, run: &str) -> String {
        let mut out = String::new();
        let stalls: u64 = self.groups.iter().map(|g| g.count).sum();
        let _ = writeln!(
            out,
            "# clippy.toml from `pollwatch lint`: the blocking APIs that held tokio worker \
             threads\n# in {} ({}, at {}).",
            comment(run),
            plural(stalls, "stall"),
            plural(self.groups.len() as u64, "call site"),
        );
        out.push_str(
            "# Clippy flags every call of these, in async code or not: where one runs outside \
             the runtime,\n# allow it there with #[expect(clippy::disallowed_methods)].\n",
        );
        if self.entries.is_empty() {
            out.push_str("disallowed-methods = []\n");
        } else {
            out.push_str("disallowed-methods = [\n");
            for e in &self.entries {
                let sites: Vec<String> = e
                    .call_sites
                    .iter()
                    .map(|(c, n)| format!("{} ({n})", comment(c)))
                    .collect();
                let _ = write!(
                    out,
                    "    # {} at {}",
                    plural(e.stalls, "stall"),
                    sites.join(", ")
                );
                if !e.named.is_empty() {
                    let _ = write!(out, ", named {}", comment(&e.named.join("; ")));
                }
                out.push('\n');
                let line = format!(
                    "{{ path = {}, reason = {} }},",
                    toml_string(&e.path),
                    toml_string(&e.reason)
                );
                if e.opt_in {
                    let _ = writeln!(
                        out,
                        "    # Left out: clippy sees {} as the trait method {}, which every \
                         impl shares\n    # (files, byte slices, buffers): uncomment to flag \
                         them all.\n    # {line}",
                        comment(&e.via.join(" and ")),
                        e.path
                    );
                } else {
                    let _ = writeln!(out, "    {line}");
                }
            }
            out.push_str("]\n");
        }
        if !self.left_out.is_empty() {
            out.push_str("# Not expressible as a clippy rule:\n");
            for l in &self.left_out {
                let api = l
                    .api
                    .as_deref()
                    .map(|a| format!(" {a}"))
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "#   {}{} [{}], {}: {}",
                    comment(&l.call_site),
                    comment(&api),
                    comment(&l.cause),
                    plural(l.stalls, "stall"),
                    comment(&l.why)
                );
            }
        }
        out
    }

    /// Each call site with its blocking API and the fix pollwatch suggests, as comments.
    pub(crate) fn fixes(&self) -> String {
        let mut out = String::new();
        if self.groups.is_empty() {
            out.push_str("# No stalls: no call site to change.\n");
            return out;
        }
        out.push_str("# Suggested changes, by call site (most stalls first):\n");
        for g in self.groups {
            let _ = writeln!(
                out,
                "#   {}: {} ({}, {})",
                comment(&g.call_site),
                comment(
                    g.blocking_call
                        .as_deref()
                        .unwrap_or("no blocking API named")
                ),
                plural(g.count, "stall"),
                comment(&g.causes.join(", "))
            );
            let fix = g.suggestion.as_deref().unwrap_or(
                "none recorded (the report kept no recent stall at this call site); see the \
                 cause",
            );
            let _ = writeln!(out, "#     fix: {}", comment(fix));
        }
        out
    }

    /// How many rules there are, for the line that says the file was written.
    pub(crate) fn summary(&self) -> String {
        let active = self.entries.iter().filter(|e| !e.opt_in).count() as u64;
        let opt_in = self.entries.len() as u64 - active;
        format!(
            "{}, {} commented out, {} left out",
            plural(active, "rule"),
            opt_in,
            plural(self.left_out.len() as u64, "call")
        )
    }
}

/// `text` on one comment line: control characters (a newline would end the comment) become
/// spaces.
fn comment(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(call_site: &str, api: Option<&str>, cause: &str, count: u64) -> CallSiteGroup {
        CallSiteGroup {
            call_site: call_site.to_owned(),
            blocking_call: api.map(str::to_owned),
            count,
            causes: vec![cause.to_owned()],
            sites: Vec::new(),
            suggestion: Some(format!("fix for {cause}")),
            longest_ns: None,
            blocked_on: None,
            recent_delay_task_ns: 0,
        }
    }

    #[test]
    fn one_rule_per_api_with_every_call_site() {
        let groups = [
            group("a.rs:1", Some("std::thread::sleep"), "sleep", 3),
            group("b.rs:2", Some("std::thread::sleep"), "sleep", 2),
        ];
        let text = Lint::new(&groups).clippy_toml("run");
        assert_eq!(text.matches("path = \"std::thread::sleep\"").count(), 1);
        assert!(
            text.contains("    # 5 stalls at a.rs:1 (3), b.rs:2 (2)\n"),
            "{text}"
        );
        assert!(text.contains("reason = \"fix for sleep\""), "{text}");
    }

    #[test]
    fn cpu_stalls_and_unnamed_apis_are_listed_not_ruled() {
        let groups = [
            group("unknown", None, "cpu", 1),
            group("c.rs:3", Some("std::fs::read"), "cpu", 1),
            group("d.rs:4", None, "sleep", 1),
        ];
        let text = Lint::new(&groups).clippy_toml("run");
        assert!(text.contains("disallowed-methods = []\n"), "{text}");
        assert!(
            text.contains("#   unknown [cpu], 1 stall: a computation"),
            "{text}"
        );
        assert!(
            text.contains("#   d.rs:4 [sleep], 1 stall: pollwatch did not name"),
            "{text}"
        );
    }

    #[test]
    fn trait_methods_are_commented_out_after_the_rules() {
        let groups = [group(
            "e.rs:5",
            Some("std::net::TcpStream::read or std::net::UdpSocket::recv"),
            "network",
            7,
        )];
        let text = Lint::new(&groups).clippy_toml("run");
        let recv = text
            .find("    { path = \"std::net::UdpSocket::recv\"")
            .unwrap();
        let read = text.find("    # { path = \"std::io::Read::read\"").unwrap();
        assert!(recv < read, "{text}");
        assert!(
            text.contains("clippy sees std::net::TcpStream::read as the trait method"),
            "{text}"
        );
    }

    #[test]
    fn reasons_and_comments_cannot_break_the_toml() {
        assert_eq!(toml_string("a \"b\" \\ c\n"), r#""a \"b\" \\ c\n""#);
        assert_eq!(comment("x\ny"), "x y");
    }
}
