//! The `pollwatch` command's output, as snapshots: the cases in `tests/cmd/*.trycmd` and the
//! examples in the README and the guide (`docs/`), run against real reports in `tests/data` (two demo runs: `before`
//! with the blocking routes, `after` with their fixed versions).
//!
//! Update the snapshots after an intended change with
//! `TRYCMD=overwrite cargo test -p pollwatch-cli --test cli_snapshots`, and review the diff.

#[test]
fn cli_snapshots() {
    // The README's commands name paths from the repository root, like a user would type them.
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    std::env::set_current_dir(root).unwrap();
    trycmd::TestCases::new()
        .register_bin(
            "pollwatch",
            std::path::Path::new(env!("CARGO_BIN_EXE_pollwatch")),
        )
        .case("crates/pollwatch-cli/tests/cmd/*.trycmd")
        .case("README.md")
        .case("docs/*.md");
}
