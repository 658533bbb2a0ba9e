//! What `pollwatch attach` costs the service it watches: the `attach_target` example's
//! well-behaved load (async TCP round trips from 32 tasks on 2 workers, release build)
//! measured in round trips per second, in rounds of 2 s alternating unattached and attached
//! (`pollwatch attach PID --duration 3s`) in the same process, with one more unattached round
//! at the end. This machine's speed moves between rounds (a VM whose throughput falls into
//! two groups, near 105,000 and near 140,000 a second here), so each attached round is
//! compared with the two unattached rounds around it, and the cost is the median of those
//! ratios. Target: at most 5%.
//!
//! ```text
//! cargo bench -p pollwatch-cli --bench attach_overhead
//! ```

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ROUNDS: usize = 11;
const WINDOW: Duration = Duration::from_secs(2);
/// The most the attached throughput may fall short of the unattached one.
const TARGET: f64 = 0.05;

fn main() {
    let pollwatch = PathBuf::from(env!("CARGO_BIN_EXE_pollwatch"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let built = Command::new(cargo)
        .args([
            "build",
            "--release",
            "-p",
            "pollwatch-cli",
            "--example",
            "attach_target",
        ])
        .status()
        .expect("cargo runs");
    assert!(built.success(), "the attach_target example builds");
    let target_bin = pollwatch.parent().unwrap().join("examples/attach_target");
    let mut target = Command::new(&target_bin)
        .arg("good")
        .stdout(Stdio::piped())
        .spawn()
        .expect("the target starts");
    let pid = target.id().to_string();
    let (send, ops) = mpsc::channel::<(Instant, u64)>();
    let stdout = target.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("ops ").and_then(|n| n.parse().ok()) {
                let _ = send.send((Instant::now(), n));
            }
        }
    });
    // The round trips done over the next `WINDOW`, per second.
    let rate = |ops: &mpsc::Receiver<(Instant, u64)>| {
        while ops.try_recv().is_ok() {}
        let (t0, n0) = ops.recv().unwrap();
        let mut last = (t0, n0);
        while last.0.duration_since(t0) < WINDOW {
            last = ops.recv().unwrap();
        }
        (last.1 - n0) as f64 / last.0.duration_since(t0).as_secs_f64()
    };
    rate(&ops); // warm-up
    let report =
        std::env::temp_dir().join(format!("pollwatch-attach-bench-{}", std::process::id()));
    let (mut alone, mut attached) = (Vec::new(), Vec::new());
    for round in 0..=ROUNDS {
        alone.push(rate(&ops));
        if round == ROUNDS {
            break;
        }
        let mut attach = Command::new(&pollwatch)
            .args([
                "attach",
                &pid,
                "--duration",
                "3s",
                "--no-tui",
                "--report-dir",
            ])
            .arg(&report)
            .stdout(Stdio::null())
            .spawn()
            .expect("pollwatch attach starts");
        // Past its start (finding the workers).
        std::thread::sleep(Duration::from_millis(500));
        attached.push(rate(&ops));
        assert!(attach.wait().unwrap().success());
    }
    let _ = target.kill();
    let _ = target.wait();
    let _ = std::fs::remove_dir_all(&report);
    // Each attached round against the mean of the unattached rounds before and after it.
    let costs: Vec<f64> = attached
        .iter()
        .enumerate()
        .map(|(i, b)| 1.0 - b / ((alone[i] + alone[i + 1]) / 2.0))
        .collect();
    let median = |v: &[f64]| {
        let mut sorted = v.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let (a, b) = (median(&alone), median(&attached));
    let cost = median(&costs);
    println!("round trips per second in rounds of {WINDOW:?}, in the order run:");
    println!("  unattached (median {a:.0})   {alone:.0?}");
    println!("  attached   (median {b:.0})   {attached:.0?}");
    println!(
        "  cost of each attached round against the two around it (%): {:.1?}",
        costs.iter().map(|c| c * 100.0).collect::<Vec<_>>()
    );
    println!(
        "attach costs {:.1}% of the throughput (median of {ROUNDS} rounds): {} (target: at most {:.0}%)",
        cost * 100.0,
        if cost <= TARGET { "PASS" } else { "MISS" },
        TARGET * 100.0
    );
}
