//! A stripped build's report gets its blocking lines back with `pollwatch symbolize`.
//!
//! This test binary is its own fixture: it copies itself, splits the debug info off
//! (`objcopy --only-keep-debug`), strips the copy (`strip --strip-all`), and runs the stripped
//! copy, which blocks a task in each way a service does (sleep, file, socket, mutex, channel,
//! process, CPU, `block_on`, `Drop`, and a sleep inlined into the task) under
//! `pollwatch::runtime` with the report written on exit. The live report has no line and says
//! the lines are recoverable; `pollwatch symbolize --debug` then names each blocking line
//! exactly (the lines are marked `// blocks: NAME` below). Debug info of another build is
//! refused; a `.build-id` tree and a `.gnu_debuglink` debug file (used live) work too.
//!
//! Run by `cargo test` (debug info) and in release by CI (`debug = "line-tables-only"`).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BLOCK: Duration = Duration::from_millis(150);
const FIXTURE: &str = "POLLWATCH_STRIPPED_FIXTURE";

fn main() {
    if std::env::var_os(FIXTURE).is_some() {
        fixture();
        return;
    }
    let work = scratch();
    let stripped = stripped_build(&work);
    let debug = work.join("app.debug");

    // Stripped, no debug file where the system looks: the live report has no line but says
    // how to get it.
    let report = run(&stripped, &work.join("live"));
    let before = read(&report);
    for stall in stalls(&before) {
        assert_eq!(stall["call_site"], serde_json::Value::Null, "{stall}");
        assert_eq!(stall["call_site_missing"], "no_symbols", "{stall}");
        let message = stall["message"].as_str().unwrap();
        assert!(message.contains("pollwatch symbolize"), "{message}");
        assert!(build_id(stall).len() >= 16, "{stall}");
    }

    // Debug info of another build is refused, naming both build-ids, and changes nothing.
    let other = PathBuf::from(env!("CARGO_BIN_EXE_pollwatch"));
    let refused = pollwatch(&["symbolize", path(&report), "--debug", path(&other)]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("another build") && said.contains("build-id"),
        "{said}"
    );
    assert_eq!(read(&report), before);

    // The separate debug file names every blocking line.
    let out = work.join("symbolized");
    let done = pollwatch(&[
        "symbolize",
        path(&report),
        "--debug",
        path(&debug),
        "--output",
        path(&out),
    ]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let summary = String::from_utf8_lossy(&done.stdout);
    assert!(summary.contains("app.debug"), "{summary}");
    every_line_named(&read(&out.join("report.json")), &summary);
    let text = std::fs::read_to_string(out.join("report.txt")).unwrap();
    assert!(
        text.contains("symbolize_recovers_stripped_lines.rs:"),
        "{text}"
    );

    // So does a `.build-id` tree, and the report can be symbolized in place.
    let id = build_id(&before["stalls"][0]);
    let tree = work.join("debug-tree/.build-id").join(&id[..2]);
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::copy(&debug, tree.join(format!("{}.debug", &id[2..]))).unwrap();
    let tree_root = work.join("debug-tree");
    let done = pollwatch(&["symbolize", path(&report), "--debug", path(&tree_root)]);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    every_line_named(&read(&report), &String::from_utf8_lossy(&done.stdout));

    // With a `.gnu_debuglink` to the debug file beside it, the running build finds the lines
    // itself.
    let linked = work.join("linked/app");
    std::fs::create_dir_all(linked.parent().unwrap()).unwrap();
    std::fs::copy(&stripped, &linked).unwrap();
    std::fs::copy(&debug, work.join("linked/app.debug")).unwrap();
    tool(
        "objcopy",
        &["--add-gnu-debuglink=app.debug", "app"],
        linked.parent().unwrap(),
    );
    let live = run(&linked, &work.join("linked-report"));
    every_line_named(&read(&live), "(live)");

    std::fs::remove_dir_all(&work).unwrap();
    println!("ok: a stripped build's lines are recovered offline and live");
}

/// Checks that every scenario's stall names its marked line (the summary is for messages).
fn every_line_named(report: &serde_json::Value, summary: &str) {
    assert_eq!(marked_lines().len(), 10);
    let sites: Vec<String> = stalls(report)
        .map(|s| s["call_site"].as_str().unwrap_or("none").to_owned())
        .collect();
    for (name, line) in marked_lines() {
        let at = format!("symbolize_recovers_stripped_lines.rs:{line}");
        assert!(
            sites.iter().any(|s| s.ends_with(&at)),
            "{name} at {at} not named; stalls name {sites:?}\n{summary}"
        );
    }
}

/// The lines marked `// blocks: NAME` in this file.
fn marked_lines() -> Vec<(String, usize)> {
    include_str!("symbolize_recovers_stripped_lines.rs")
        .lines()
        .enumerate()
        .filter_map(|(i, l)| {
            // Spelled in two parts, so that this line is not one of them.
            let name = l.split(concat!("// blo", "cks: ")).nth(1)?;
            (!l.trim_start().starts_with("//")).then(|| (name.trim().to_owned(), i + 1))
        })
        .collect()
}

/// The build-id of the first frame of `stall` that keeps its module (the C library's frames
/// may have their lines from its own debug package).
fn build_id(stall: &serde_json::Value) -> String {
    let frames = stall["backtrace"].as_array().unwrap();
    let module = frames
        .iter()
        .find_map(|f| f["module"]["build_id"].as_str())
        .unwrap_or_else(|| panic!("no frame keeps its module: {stall}"));
    module.to_owned()
}

fn stalls(report: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    report["stalls"].as_array().unwrap().iter()
}

fn read(file: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn pollwatch(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pollwatch"))
        .args(args)
        .output()
        .unwrap()
}

fn tool(program: &str, args: &[&str], dir: &Path) {
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap_or_else(|e| panic!("{program} (binutils) is needed: {e}"));
    assert!(status.success(), "{program} {args:?}");
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pollwatch-stripped-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// This binary, its debug info split off to `app.debug` and stripped: `work/app`.
fn stripped_build(work: &Path) -> PathBuf {
    let app = work.join("app");
    std::fs::copy(std::env::current_exe().unwrap(), &app).unwrap();
    tool("objcopy", &["--only-keep-debug", "app", "app.debug"], work);
    tool("strip", &["--strip-all", "app"], work);
    app
}

/// Runs `binary` as the fixture, writing its report into `dir`; returns `dir/report.json`.
fn run(binary: &Path, dir: &Path) -> PathBuf {
    let out = Command::new(binary)
        .env(FIXTURE, "1")
        .env("POLLWATCH_REPORT_DIR", dir)
        .env("POLLWATCH_THRESHOLD", "20ms")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fixture failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir.join("report.json")
}

/// The fixture: one task per way of blocking, one after another.
fn fixture() {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    let guard = pollwatch::runtime(&mut builder);
    let rt = builder.build().unwrap();
    let fifo = std::env::temp_dir().join(format!("pollwatch-fifo-{}", std::process::id()));
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    rt.block_on(async move {
        pollwatch::spawn(async { sleep() }).await.unwrap();
        pollwatch::spawn(async { inlined_sleep() }).await.unwrap();
        let writer = later(move || {
            std::fs::write(&fifo, b"data").unwrap();
            let _ = std::fs::remove_file(&fifo);
        });
        let reading = std::env::temp_dir().join(format!("pollwatch-fifo-{}", std::process::id()));
        pollwatch::spawn(async move { file(&reading) })
            .await
            .unwrap();
        writer.join().unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = later(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(b"x").unwrap();
        });
        pollwatch::spawn(async move { socket(addr) }).await.unwrap();
        server.join().unwrap();
        let (locked, holding) = mpsc::channel();
        let holder = std::thread::spawn(move || {
            let _held = LOCK.lock().unwrap();
            locked.send(()).unwrap();
            std::thread::sleep(BLOCK);
        });
        holding.recv().unwrap();
        pollwatch::spawn(async { mutex() }).await.unwrap();
        holder.join().unwrap();
        let (tx, rx) = mpsc::channel();
        let sender = later(move || tx.send(()).unwrap());
        pollwatch::spawn(async move { channel(&rx) }).await.unwrap();
        sender.join().unwrap();
        pollwatch::spawn(async { process() }).await.unwrap();
        pollwatch::spawn(async { cpu() }).await.unwrap();
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let sender = later(move || tx.send(()).unwrap());
        pollwatch::spawn(async move { block_on(rx) }).await.unwrap();
        sender.join().unwrap();
        pollwatch::spawn(async {
            let _flush = FlushOnDrop;
        })
        .await
        .unwrap();
    });
    drop(rt);
    drop(guard);
}

/// Runs `f` on a thread of its own after [`BLOCK`].
fn later(f: impl FnOnce() + Send + 'static) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(BLOCK);
        f();
    })
}

static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[inline(never)]
fn sleep() {
    std::thread::sleep(BLOCK); // blocks: sleep
                               // Work after the call, so the sleep is not a tail call that leaves no frame of `sleep`.
    std::hint::black_box(BLOCK);
}

#[inline(always)]
fn inlined_sleep() {
    std::thread::sleep(BLOCK); // blocks: inlined sleep
}

#[inline(never)]
fn file(fifo: &Path) {
    let data = std::fs::read(fifo).unwrap(); // blocks: file
    assert_eq!(data, b"data");
}

#[inline(never)]
fn socket(addr: std::net::SocketAddr) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let mut byte = [0; 1];
    stream.read_exact(&mut byte).unwrap(); // blocks: socket
}

#[inline(never)]
fn mutex() {
    let _held = LOCK.lock().unwrap(); // blocks: mutex
}

#[inline(never)]
fn channel(rx: &mpsc::Receiver<()>) {
    rx.recv().unwrap(); // blocks: channel
}

#[inline(never)]
fn process() {
    let status = Command::new("sleep").arg("0.15").status().unwrap(); // blocks: process
    assert!(status.success());
}

#[inline(never)]
fn cpu() {
    let deadline = Instant::now() + BLOCK;
    // One line, so that wherever the loop is interrupted it is this line.
    while Instant::now() < deadline {} // blocks: cpu
}

#[inline(never)]
fn block_on(rx: futures::channel::oneshot::Receiver<()>) {
    futures::executor::block_on(rx).unwrap(); // blocks: block_on
}

/// A value whose `Drop` blocks.
struct FlushOnDrop;

impl Drop for FlushOnDrop {
    #[inline(never)]
    fn drop(&mut self) {
        std::thread::sleep(BLOCK); // blocks: drop
        std::hint::black_box(self);
    }
}
