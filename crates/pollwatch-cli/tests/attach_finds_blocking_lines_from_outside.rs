//! `pollwatch attach PID` against real tokio processes with no pollwatch in them (the
//! `attach_target` example, built by `cargo test` with the tests): each classic mistake is
//! named at its line with its blocking API, cause and fix; a well-behaved load makes no stall;
//! a killed attacher leaves the target running and untraced; the errors users hit say what is
//! wrong.
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use pollwatch_report::Report;

const POLLWATCH: &str = env!("CARGO_BIN_EXE_pollwatch");

/// One test at a time: each target and its attacher have the machine's CPUs to themselves,
/// as a service and its attacher would.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running `attach_target`, killed when dropped.
struct Target {
    child: Child,
    lines: Receiver<String>,
    /// The blocking call's line, from its `ready FILE:LINE`.
    line: Option<u32>,
}

impl Target {
    fn start(mode: &str) -> Self {
        let bin = PathBuf::from(POLLWATCH)
            .parent()
            .unwrap()
            .join("examples/attach_target");
        let mut child = Command::new(&bin)
            .arg(mode)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        let stdout = child.stdout.take().unwrap();
        let (send, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let mut target = Target {
            child,
            lines,
            line: None,
        };
        let ready = target.next_line_starting("ready", Duration::from_secs(60));
        target.line = ready.rsplit(':').next().and_then(|line| line.parse().ok());
        target
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }

    /// The next line of its output starting with `prefix`, within `within`.
    fn next_line_starting(&mut self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => continue,
                Err(e) => panic!("no line starting {prefix:?} within {within:?}: {e}"),
            }
        }
    }

    /// The last line starting with `prefix` it has printed so far, or the next one.
    fn latest_line_starting(&mut self, prefix: &str, within: Duration) -> String {
        let latest = self
            .lines
            .try_iter()
            .filter(|line| line.starts_with(prefix))
            .last();
        latest.unwrap_or_else(|| self.next_line_starting(prefix, within))
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let data = std::env::temp_dir().join(format!("pollwatch-attach-target-{}", self.pid()));
        let _ = std::fs::remove_file(data);
    }
}

/// `pollwatch attach PID --duration ... --no-tui`, and the report it wrote.
fn attach(pid: i32, duration: &str) -> (Output, Report) {
    let dir = std::env::temp_dir().join(format!(
        "pollwatch-attach-test-{}-{pid}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(POLLWATCH)
        .args([
            "attach",
            &pid.to_string(),
            "--duration",
            duration,
            "--no-tui",
        ])
        .arg("--report-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report = pollwatch_report::json::read(&dir.join("report.json")).unwrap();
    let show = Command::new(POLLWATCH)
        .arg("show")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(show.status.success(), "pollwatch show reads it");
    let _ = std::fs::remove_dir_all(&dir);
    (output, report)
}

#[test]
fn each_mistake_is_named_at_its_line_with_its_api_cause_and_fix() {
    let _one = one_at_a_time();
    let cases = [
        ("sleep", Some("std::thread::sleep"), "sleep"),
        ("file", Some("std::fs::read"), "file_io"),
        ("socket", Some("std::net::TcpStream::read"), "network"),
        ("mutex", Some("std::sync::Mutex::lock"), "lock"),
        ("command", Some("std::process::Command::output"), "process"),
        ("cpu", None, "cpu"),
    ];
    for (mode, api, cause) in cases {
        let target = Target::start(mode);
        let line = target.line.unwrap();
        let (output, report) = attach(target.pid(), "3s");
        drop(target);
        let said = String::from_utf8_lossy(&output.stdout);
        assert!(!report.stalls.is_empty(), "{mode}: no stall\n{said}");
        for stall in &report.stalls {
            let at = stall.call_site.as_deref().unwrap_or_default();
            let (file, at_line) = at.rsplit_once(':').unwrap_or_default();
            let at_line: u32 = at_line.parse().unwrap_or(0);
            assert!(
                file.ends_with("examples/attach_target.rs"),
                "{mode}: {stall:#?}"
            );
            // A CPU loop is named where the thread was running: the loop's lines.
            let lines = if mode == "cpu" {
                line - 2..=line + 1
            } else {
                line..=line
            };
            assert!(lines.contains(&at_line), "{mode}: line {line}: {stall:#?}");
            assert_eq!(stall.cause, cause, "{mode}: {stall:#?}");
            match api {
                Some(api) => assert!(
                    stall
                        .blocking_call
                        .as_deref()
                        .unwrap_or_default()
                        .contains(api),
                    "{mode}: {stall:#?}"
                ),
                None => assert_eq!(stall.blocking_call, None, "{mode}: {stall:#?}"),
            }
            assert!(!stall.suggestion.is_empty());
            assert!(stall.message.contains(at), "{mode}: {}", stall.message);
            assert!(stall.ended, "{mode}: every stall ends when the watch does");
        }
        assert!(
            said.lines().any(|l| l.contains("caught:")
                && l.contains(&format!(
                    ":{}",
                    report.stalls[0]
                        .call_site
                        .as_deref()
                        .unwrap()
                        .rsplit(':')
                        .next()
                        .unwrap()
                ))),
            "{mode}: said live:\n{said}"
        );
        assert!(
            report.inconsistencies().is_empty(),
            "{:?}",
            report.inconsistencies()
        );
    }
}

#[test]
fn each_blocking_call_is_one_stall_though_reading_its_stack_interrupts_it() {
    let _one = one_at_a_time();
    // Each round of the target sleeps once on a worker, then prints its number.
    let mut target = Target::start("sleep");
    let round = |line: String| -> u64 { line["tick ".len()..].parse().unwrap() };
    let before = round(target.latest_line_starting("tick", Duration::from_secs(10)));
    let (_, report) = attach(target.pid(), "3s");
    let after = round(target.latest_line_starting("tick", Duration::from_secs(10)));
    // The sleep under way when attaching began, and the one after the last round printed.
    let sleeps = after - before + 1;
    let stalls = report.stalls.len() as u64;
    // A stack read interrupts the sleep, which the kernel restarts (as `restart_syscall`):
    // still the same call, the same stall.
    assert!(
        (1..=sleeps).contains(&stalls),
        "{stalls} stalls for {sleeps} sleeps: {:#?}",
        report.stalls
    );
    assert!(
        stalls * 10 >= sleeps * 7,
        "most sleeps caught: {stalls} of {sleeps}"
    );
}

#[test]
fn a_well_behaved_load_makes_no_stall() {
    let _one = one_at_a_time();
    let mut target = Target::start("good");
    let ops = |line: String| -> u64 { line["ops ".len()..].parse().unwrap() };
    let before = ops(target.next_line_starting("ops", Duration::from_secs(10)));
    let (output, report) = attach(target.pid(), "3s");
    let after = ops(target.next_line_starting("ops", Duration::from_secs(10)));
    assert!(
        after > before,
        "the load ran: {before} -> {after} round trips"
    );
    assert_eq!(report.stalls, Vec::new(), "no stall: {:#?}", report.stalls);
    assert_eq!(report.totals.stalls, 0);
    // Its workers run from task to task with no read or write syscall (sockets are read with
    // `recv`): a glance at their poll frames shows the poll changed, with no stop. Reading
    // their stacks at every look instead makes about 30 reads a second per worker here (90
    // in 3 s); glancing, 2 on an idle machine and 30 to 40 with two processes spinning on
    // both cores (a worker kept off a CPU mid-poll shows the same poll frames).
    let out = String::from_utf8_lossy(&output.stdout);
    let reads: u64 = out
        .lines()
        .find_map(|l| {
            l.split("; ")
                .nth(1)?
                .split(" stack read")
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("the stack reads in the summary: {out}"));
    assert!(
        reads < 2 * 3 * 10,
        "fewer than 10 stack reads a second per worker: {reads} in 3 s"
    );
}

#[test]
fn a_killed_attacher_leaves_the_target_running_untraced() {
    let _one = one_at_a_time();
    let mut target = Target::start("sleep");
    for round in 0..5u64 {
        let mut attacher = Command::new(POLLWATCH)
            .args(["attach", &target.pid().to_string(), "--no-tui"])
            .arg("--report-dir")
            .arg(
                std::env::temp_dir()
                    .join(format!("pollwatch-attach-killed-{}", std::process::id())),
            )
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Once it is reading stacks (its first stall said), at a different moment each round.
        let mut out = BufReader::new(attacher.stdout.take().unwrap());
        let mut line = String::new();
        while out.read_line(&mut line).unwrap() > 0 && !line.contains("caught:") {
            line.clear();
        }
        std::thread::sleep(Duration::from_millis(round * 7));
        attacher.kill().unwrap();
        attacher.wait().unwrap();
        // Every thread of the target is untraced and not stopped...
        for task in std::fs::read_dir(format!("/proc/{}/task", target.pid())).unwrap() {
            let status = std::fs::read_to_string(task.unwrap().path().join("status")).unwrap();
            assert!(
                status.contains("TracerPid:\t0\n"),
                "round {round}: {status}"
            );
            assert!(!status.contains("State:\tt"), "round {round}: {status}");
        }
        // ... and it goes on working.
        for _ in 0..3 {
            target.next_line_starting("tick", Duration::from_secs(10));
        }
    }
    let _ = std::fs::remove_dir_all(
        std::env::temp_dir().join(format!("pollwatch-attach-killed-{}", std::process::id())),
    );
}

#[test]
fn the_errors_users_hit_say_what_is_wrong() {
    let _one = one_at_a_time();
    let run = |args: &[&str]| {
        let output = Command::new(POLLWATCH).args(args).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    // Past the largest pid Linux gives.
    assert!(run(&["attach", "4194305"]).contains("no process 4194305"));
    let mut not_tokio = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = not_tokio.id().to_string();
    let said = run(&["attach", &pid, "--duration", "1s"]);
    not_tokio.kill().unwrap();
    not_tokio.wait().unwrap();
    assert!(said.contains("no tokio runtime worker"), "{said}");
    let said = run(&["attach", &pid, "--threshold", "10ms", "--tick", "20ms"]);
    assert!(said.contains("--tick"), "{said}");
}

#[test]
fn a_refused_attach_says_which_permission_is_missing() {
    let _one = one_at_a_time();
    // Another user's process: as root, attach as `nobody` to one of root's; otherwise, to
    // init's.
    let mut mine = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = mine.id().to_string();
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    let output = if root {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                POLLWATCH,
            ])
            .args(["attach", &pid])
            .output()
            .expect("setpriv runs")
    } else {
        Command::new(POLLWATCH)
            .args(["attach", "1"])
            .output()
            .unwrap()
    };
    mine.kill().unwrap();
    mine.wait().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("not permitted to trace it"), "{said}");
    assert!(said.contains("CAP_SYS_PTRACE"), "{said}");
}
