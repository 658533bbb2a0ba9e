//! Where a frame's code is, as a person clicks it: source paths relative to the workspace (like
//! spawn sites, `src/cmd/get.rs:73`), dependencies as `crate-version/src/...`, and the
//! absolute build-machine path kept for tools.
//!
//! Debug info records absolute paths (`/home/ci/build/app/src/cmd/get.rs`), while tokio's spawn
//! locations are relative to the directory cargo ran rustc in (the workspace root for its
//! members). [`Roots`] learns that root from the stacks themselves: when a frame's absolute path
//! ends with a spawn site's relative file, the rest is a root, and every path under it is shown
//! relative to it. A path under no known root is shown relative to the working directory if it
//! is inside it, else from its last `src/` component (the crate root).

use std::path::Path;

/// A spawn location's file as a person reads it: paths into cargo's registry or git checkouts
/// start at the crate (`axum-0.8.9/src/serve/mod.rs`), others are kept as tokio gives them.
pub fn display_file(file: &str) -> &str {
    for marker in ["/.cargo/registry/src/", "/.cargo/git/checkouts/"] {
        if let Some(at) = file.find(marker) {
            let rest = &file[at + marker.len()..];
            // Skip the registry index directory (`index.crates.io-<hash>/`).
            return rest.split_once('/').map_or(rest, |(_, krate)| krate);
        }
    }
    file
}

/// The most roots remembered (one per workspace the binary was built from: usually one).
const MAX_ROOTS: usize = 8;

/// The build roots learned so far. Owned by the reporter thread.
#[derive(Debug, Default)]
pub struct Roots {
    roots: Vec<String>,
}

impl Roots {
    /// Learns the root of `path` if it ends with `relative_file` (a spawn site's file as tokio
    /// gives it, relative to the root).
    pub fn learn(&mut self, path: &str, relative_file: &str) {
        if relative_file.is_empty()
            || relative_file.starts_with('/')
            || self.roots.len() >= MAX_ROOTS
        {
            return;
        }
        let Some(root) = path.strip_suffix(relative_file) else {
            return;
        };
        if !root.ends_with('/') || self.roots.iter().any(|r| r == root) {
            return;
        }
        self.roots.push(root.to_owned());
    }

    /// `path` as a person reads it (see the module docs).
    pub fn display(&self, path: &str) -> String {
        if let Some(rest) = self
            .roots
            .iter()
            .find_map(|r| path.strip_prefix(r.as_str()))
        {
            return rest.to_owned();
        }
        let dependency = display_file(path);
        if dependency.len() != path.len() {
            return dependency.to_owned();
        }
        if let Some(inside) = std::env::current_dir().ok().and_then(|cwd| {
            Path::new(path)
                .strip_prefix(cwd)
                .ok()
                .map(Path::to_path_buf)
        }) {
            return inside.display().to_string();
        }
        if !path.starts_with('/') {
            return path.to_owned();
        }
        match path.rfind("/src/") {
            Some(at) => path[at + 1..].to_owned(),
            None => path.to_owned(),
        }
    }
}

/// `file:line`, or `file` when the line is unknown.
pub fn with_line(file: &str, line: Option<u32>) -> String {
    match line {
        Some(line) => format!("{file}:{line}"),
        None => file.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_root_learned_from_a_spawn_site_makes_every_path_under_it_relative() {
        let mut roots = Roots::default();
        assert_eq!(
            roots.display("/home/ci/build/app/src/cmd/get.rs"),
            "src/cmd/get.rs",
            "without a root: from the crate's src/"
        );
        roots.learn(
            "/home/ci/build/app/crates/server/src/main.rs",
            "crates/server/src/main.rs",
        );
        assert_eq!(
            roots.display("/home/ci/build/app/crates/db/src/get.rs"),
            "crates/db/src/get.rs"
        );
        roots.learn("/elsewhere/src/main.rs", "src/other.rs");
        assert_eq!(
            roots.roots.len(),
            1,
            "a path that does not end with the file teaches nothing"
        );
    }

    #[test]
    fn dependencies_start_at_the_crate_and_relative_paths_stay() {
        let roots = Roots::default();
        assert_eq!(
            roots.display("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/ureq-2.12.1/src/unit.rs"),
            "ureq-2.12.1/src/unit.rs"
        );
        assert_eq!(roots.display("src/main.rs"), "src/main.rs");
        assert_eq!(with_line("src/main.rs", Some(3)), "src/main.rs:3");
        assert_eq!(with_line("src/main.rs", None), "src/main.rs");
    }
}
