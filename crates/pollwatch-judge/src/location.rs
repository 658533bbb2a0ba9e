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

/// Where cargo puts dependencies' sources under its home, wherever `CARGO_HOME` is
/// (`~/.cargo`, `/usr/local/cargo` in the official Docker image): the registry's crates, one
/// directory per index then per crate, and git dependencies' checkouts.
pub const CARGO_HOME_SOURCES: [&str; 2] = ["/registry/src/", "/git/checkouts/"];

/// A spawn location's file as a person reads it: paths into cargo's registry or git checkouts
/// start at the crate (`axum-0.8.9/src/serve/mod.rs`), others are kept as tokio gives them.
pub fn display_file(file: &str) -> &str {
    for marker in CARGO_HOME_SOURCES {
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
    /// gives it, relative to the root). A dependency's source (`src/lib.rs` of a crate in the
    /// registry, vendored, or remapped to a `crate-version` directory) is never a root, though
    /// its path may end with the same relative file.
    pub fn learn(&mut self, path: &str, relative_file: &str) {
        if relative_file.is_empty()
            || relative_file.starts_with('/')
            || self.roots.len() >= MAX_ROOTS
            || is_dependency_source(path)
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

    /// Whether `path` (a frame's source file, as debug info has it) is the application's own
    /// code: a path relative to the workspace (as tokio gives spawn sites), or one under a
    /// learned root outside its `vendor/` and `target/` directories. `None` while no root is
    /// known.
    pub fn is_application(&self, path: &str) -> Option<bool> {
        if !path.starts_with('/') {
            return Some(!is_dependency_source(path));
        }
        if self.roots.is_empty() {
            return None;
        }
        Some(self.roots.iter().any(|root| {
            path.strip_prefix(root.as_str()).is_some_and(|rest| {
                !rest.starts_with("vendor/")
                    && !rest.starts_with("target/")
                    && !is_dependency_source(rest)
            })
        }))
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

/// Whether `path` is a dependency's source by its place, wherever it was built: under cargo's
/// home ([`CARGO_HOME_SOURCES`]), vendored (`vendor/<crate>/`, as `cargo vendor` writes it), or
/// in a `<crate>-<version>/src/` directory (the registry's layout, which
/// `--remap-path-prefix` usually keeps).
pub fn is_dependency_source(path: &str) -> bool {
    if CARGO_HOME_SOURCES.iter().any(|m| path.contains(m))
        || path.starts_with("vendor/")
        || path.contains("/vendor/")
    {
        return true;
    }
    let mut components = path.split('/').peekable();
    while let Some(dir) = components.next() {
        if components.peek() == Some(&"src") && is_crate_version_dir(dir) {
            return true;
        }
    }
    false
}

/// Whether `dir` is named `<crate>-<major>.<minor>.<patch>[...]`, as the registry names a
/// crate's directory.
fn is_crate_version_dir(dir: &str) -> bool {
    dir.match_indices('-').any(|(i, _)| {
        let mut parts = dir[i + 1..].splitn(3, '.');
        let numeric = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        let (major, minor) = (parts.next(), parts.next());
        let patch = parts
            .next()
            .map(|p| p.split(|c: char| !c.is_ascii_digit()).next().unwrap_or(""));
        i > 0 && numeric(major) && numeric(minor) && numeric(patch)
    })
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
    fn dependencies_are_known_by_their_place_wherever_cargo_put_them() {
        for dependency in [
            "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rusqlite-0.32.1/src/raw_statement.rs",
            // The official Docker image's CARGO_HOME.
            "/usr/local/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rusqlite-0.32.1/src/raw_statement.rs",
            "/opt/cargo/git/checkouts/hyper-6a1b2c/3d4e5f6/src/proto/h1/io.rs",
            "/app/vendor/rusqlite/src/raw_statement.rs",
            "vendor/rusqlite/src/raw_statement.rs",
            // `--remap-path-prefix=$CARGO_HOME/registry/src/index.crates.io-..=/deps`
            "/deps/rusqlite-0.32.1/src/raw_statement.rs",
            "/deps/tokio-1.54.1-alpha.1/src/runtime/mod.rs",
        ] {
            assert!(is_dependency_source(dependency), "{dependency}");
        }
        for application in [
            "/app/src/db.rs",
            "src/db.rs",
            "/home/ci/build/app/crates/server/src/main.rs",
            "/srv/my-app-2/src/main.rs",
            "/srv/api-v1.2/src/main.rs",
        ] {
            assert!(!is_dependency_source(application), "{application}");
        }
    }

    #[test]
    fn with_a_root_known_only_its_own_code_is_the_applications() {
        let mut roots = Roots::default();
        assert_eq!(roots.is_application("/app/src/db.rs"), None);
        assert_eq!(roots.is_application("src/db.rs"), Some(true));
        // A dependency ending with the spawn site's file teaches no root.
        roots.learn(
            "/usr/local/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/hyper-1.5.0/src/main.rs",
            "src/main.rs",
        );
        roots.learn("/app/vendor/axum/src/main.rs", "src/main.rs");
        assert_eq!(roots.is_application("/app/src/db.rs"), None);
        roots.learn("/app/src/main.rs", "src/main.rs");
        assert_eq!(roots.is_application("/app/src/db.rs"), Some(true));
        assert_eq!(
            roots.is_application("/app/crates/store/src/lib.rs"),
            Some(true)
        );
        for foreign in [
            "/app/vendor/rusqlite/src/raw_statement.rs",
            "/app/target/release/build/app-1a2b/out/generated.rs",
            "/usr/local/cargo/registry/src/index.crates.io-1949cf8c6b5b557f/rusqlite-0.32.1/src/raw_statement.rs",
            // A path dependency outside the workspace, or a remapped one.
            "/shared/common/src/lib.rs",
            "/deps/rusqlite-0.32.1/src/raw_statement.rs",
        ] {
            assert_eq!(roots.is_application(foreign), Some(false), "{foreign}");
        }
    }

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
