//! The rules `pollwatch lint` writes for the `before` run make real clippy fail a crate that
//! calls those blocking APIs, with each rule's reason; and every path resolves (clippy warns
//! about a path that names nothing).

use std::process::Command;

const LIB: &str = r#"
pub fn handler(socket: &std::net::UdpSocket) -> std::io::Result<Vec<u8>> {
    std::thread::sleep(std::time::Duration::from_millis(1));
    let mut buf = [0u8; 16];
    socket.recv(&mut buf)?;
    std::fs::read("config.json")
}
"#;

#[test]
fn the_rules_fire_with_their_reasons() {
    let dir = std::env::temp_dir().join(format!("pollwatch-lint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        "[package]\nname = \"blocking\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n",
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), LIB).unwrap();
    let clippy_toml = dir.join("clippy.toml");
    let lint = Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .args(["lint", "tests/data/before", "--output"])
        .arg(&clippy_toml)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );

    let clippy = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
        .args(["clippy", "--offline", "--quiet", "--target-dir"])
        .arg(dir.join("target"))
        .current_dir(&dir)
        // The test's own cargo settings are not the tiny crate's.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&clippy.stderr);
    assert!(
        !stderr.contains("does not refer to"),
        "a path clippy cannot resolve:\n{stderr}"
    );
    for (path, reason) in [
        ("std::thread::sleep", "Use tokio::time::sleep(..).await."),
        (
            "std::fs::read",
            "Use tokio::fs::read or tokio::task::spawn_blocking.",
        ),
        (
            "std::net::UdpSocket::recv",
            "Use tokio::net::UdpSocket::recv(..).await",
        ),
    ] {
        let fired = format!("warning: use of a disallowed method `{path}`");
        let at = stderr
            .find(&fired)
            .unwrap_or_else(|| panic!("no {fired}:\n{stderr}"));
        let note = stderr[at..]
            .lines()
            .find(|l| l.contains("= note:"))
            .unwrap_or_default();
        assert!(
            note.contains(reason),
            "{path}: {note:?}, not {reason:?}:\n{stderr}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
