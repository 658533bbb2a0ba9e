//! The library's modules form layers: `lib.rs` declares them bottom to top, and a module may
//! use only the modules declared before it. A `use crate::x` that points up the list (or a
//! cycle) fails this test, naming the file and the module it reached for.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const SRC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src");

/// The modules in the order `lib.rs` declares them (a feature twin counts once).
fn declared_order() -> Vec<String> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let mut order: Vec<String> = Vec::new();
    for line in lib.lines().map(str::trim) {
        let rest = line
            .strip_prefix("pub mod ")
            .or_else(|| line.strip_prefix("mod "));
        if let Some(name) = rest.and_then(|r| r.strip_suffix(';')) {
            if !order.iter().any(|m| m == name) {
                order.push(name.to_owned());
            }
        }
    }
    order
}

/// The items the crate root re-exports from its own modules, with the module each comes from
/// (`pub use builder::Builder;` makes `Builder` -> `builder`): `crate::Builder` reaches that
/// module as `crate::builder::Builder` would.
fn re_exports() -> Vec<(String, String)> {
    let lib = std::fs::read_to_string(Path::new(SRC).join("lib.rs")).unwrap();
    let mut items = Vec::new();
    for line in lib.lines().map(str::trim) {
        let Some(path) = line
            .strip_prefix("pub use ")
            .and_then(|l| l.strip_suffix(';'))
        else {
            continue;
        };
        let Some((module, rest)) = path.split_once("::") else {
            continue;
        };
        let last = rest.rsplit("::").next().unwrap_or(rest);
        let names = last.trim_matches(|c| c == '{' || c == '}');
        let names: Vec<&str> = if rest.contains('{') {
            rest[rest.find('{').unwrap() + 1..rest.find('}').unwrap()]
                .split(',')
                .collect()
        } else {
            vec![names]
        };
        for name in names {
            let name = name.trim().rsplit(" as ").next().unwrap_or_default();
            items.push((name.to_owned(), module.to_owned()));
        }
    }
    items
}

/// Every `.rs` file of module `name`: `src/name.rs` or everything under `src/name/`.
fn files_of(name: &str) -> Vec<PathBuf> {
    let file = Path::new(SRC).join(format!("{name}.rs"));
    if file.exists() {
        return vec![file];
    }
    let mut files = Vec::new();
    let mut dirs = vec![Path::new(SRC).join(name)];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

/// The top-level modules a file names as `crate::x` or in `crate::{x, y::z}`, outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            for item in group.split(',') {
                found.insert(ident(item.trim()));
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

#[test]
fn every_module_uses_only_modules_declared_before_it() {
    let order = declared_order();
    assert!(order.len() > 10, "lib.rs declares {order:?}");
    let exports = re_exports();
    assert!(
        exports
            .iter()
            .any(|(item, module)| item == "Builder" && module == "builder"),
        "{exports:?}"
    );
    let mut upward = Vec::new();
    for (position, module) in order.iter().enumerate() {
        let files = files_of(module);
        assert!(!files.is_empty(), "no files for module {module}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for used in uses(&text) {
                // A root re-export (`crate::MetricsServer`) is the module it comes from.
                let used = exports
                    .iter()
                    .find(|(item, _)| *item == used)
                    .map_or(used, |(_, module)| module.clone());
                let Some(at) = order.iter().position(|m| *m == used) else {
                    continue;
                };
                if at > position {
                    upward.push(format!("{} uses crate::{used}", file.display()));
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "modules reaching up the layers:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_check_sees_grouped_and_plain_paths_but_not_comments() {
    let found =
        uses("use crate::{poll::PollKey, sites};\nlet x = crate::state::State; // crate::init\n");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["poll", "sites", "state"]
    );
}
