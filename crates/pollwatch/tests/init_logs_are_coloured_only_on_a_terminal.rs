//! `init()`'s log lines carry ANSI colours only on a terminal: stderr piped to a file (a log
//! file, journald, `kubectl logs`) gets plain text, and `NO_COLOR` switches colours off on a
//! terminal too.
//!
//! The logging process is a child (the global subscriber can be set once per process): this
//! binary runs itself with `--child`, its stderr a pipe, or a terminal made by `script(1)`.
//! It has no test harness.

use std::process::{Command, Output};

/// The escape sequence every ANSI colour begins with.
const ESC: &str = "\x1b[";

/// Installs pollwatch with `init()` and logs one warning.
fn child() {
    let _guard = pollwatch::init();
    tracing::warn!(target: "app", "the disk is nearly full");
}

/// What a child wrote, with `NO_COLOR` set to `no_color` (removed when `None`), on a terminal
/// or with stderr piped.
fn run(terminal: bool, no_color: Option<&str>) -> String {
    let exe = std::env::current_exe().unwrap();
    let mut command = if terminal {
        let mut script = Command::new("script");
        // -q: no banner; -e: the child's exit status; -c: the command; the typescript to
        // /dev/null (what the terminal showed comes on script's stdout).
        script.args(["-qec", &format!("'{}' --child", exe.display()), "/dev/null"]);
        script
    } else {
        let mut direct = Command::new(exe);
        direct.arg("--child");
        direct
    };
    let dir = std::env::temp_dir().join(format!("pollwatch-colours-{}", std::process::id()));
    command
        .env_remove("RUST_LOG")
        .env("POLLWATCH_REPORT_DIR", &dir)
        .env("POLLWATCH_METRICS_ADDR", "127.0.0.1:0")
        .env("TOKIO_CONSOLE_BIND", "127.0.0.1:0");
    match no_color {
        Some(value) => command.env("NO_COLOR", value),
        None => command.env_remove("NO_COLOR"),
    };
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().expect("the child runs");
    let _ = std::fs::remove_dir_all(&dir);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&stdout),
        String::from_utf8_lossy(&stderr)
    );
    assert!(status.success(), "{status}: {text}");
    assert!(text.contains("the disk is nearly full"), "{text}");
    text
}

fn main() {
    if std::env::args().any(|a| a == "--child") {
        return child();
    }
    let piped = run(false, None);
    assert!(!piped.contains(ESC), "colours in a pipe:\n{piped:?}");
    let terminal = run(true, None);
    assert!(
        terminal.contains(ESC),
        "no colours on a terminal:\n{terminal:?}"
    );
    let no_color = run(true, Some("1"));
    assert!(
        !no_color.contains(ESC),
        "colours despite NO_COLOR:\n{no_color:?}"
    );
    println!("colours on a terminal only, and never with NO_COLOR");
}
