//! From a symbolized stack to what a person needs: the frames of the stuck thread without the
//! signal machinery and the runtime, the innermost frame in the application's own code (the
//! blocking call site), and the blocking API it called.

use pollwatch_report::Frame;

/// Functions of the capture machinery: everything up to the last of these is the signal
/// handler's own stack, not the application's.
const CAPTURE_MARKERS: [&str; 4] = [
    "pollwatch_capture::",
    "backtrace::backtrace::",
    "__restore_rt",
    "backtrace::trace_unsynchronized",
];

/// The first frame of the runtime: everything from here outwards is tokio polling the task.
const RUNTIME_MARKERS: [&str; 6] = [
    "tokio::runtime::task::",
    "tokio::runtime::scheduler::",
    "tokio::runtime::park::",
    "<tracing::instrument::Instrumented<T> as core::future::future::Future>::poll",
    "tokio::task::local::",
    "tokio::runtime::runtime::Runtime::block_on",
];

/// Path prefixes and parts of code that is not the application's: the standard library,
/// dependencies, the C library.
const FOREIGN_FILE_PARTS: [&str; 6] = [
    "/rustc/",
    "/.cargo/registry/",
    "/.cargo/git/",
    "/rustlib/",
    "/library/std/",
    "/library/core/",
];

/// Function prefixes of code that is not the application's.
const FOREIGN_FUNCTIONS: [&str; 14] = [
    "std::", "core::", "alloc::", "tokio::", "futures", "tracing", "<std::", "<core::", "<alloc::",
    "<tokio::", "<futures", "<tracing", "<&std::", "__",
];

/// The application's frames between the capture and the runtime, innermost first.
pub(crate) fn trim(frames: &[Frame]) -> Vec<Frame> {
    let start = frames
        .iter()
        .rposition(|f| CAPTURE_MARKERS.iter().any(|m| f.function.contains(m)))
        .map_or(0, |i| i + 1);
    let mut frames = &frames[start..];
    // The kernel's signal trampoline often has no symbol: an address right after the handler.
    while frames
        .first()
        .is_some_and(|f| f.file.is_none() && f.function.starts_with("0x"))
    {
        frames = &frames[1..];
    }
    let end = frames
        .iter()
        .position(|f| RUNTIME_MARKERS.iter().any(|m| f.function.starts_with(m)))
        .unwrap_or(frames.len());
    frames[..end].to_vec()
}

/// Whether a frame is the application's own code.
pub(crate) fn is_application(frame: &Frame) -> bool {
    let Some(file) = frame.file.as_deref() else {
        return false;
    };
    if file.starts_with("./") || FOREIGN_FILE_PARTS.iter().any(|p| file.contains(p)) {
        return false;
    }
    !FOREIGN_FUNCTIONS
        .iter()
        .any(|p| frame.function.starts_with(p))
}

/// `file:line` of a frame, the file relative to the working directory when inside it.
pub(crate) fn location(frame: &Frame) -> Option<String> {
    let file = frame.file.as_deref()?;
    let cwd = std::env::current_dir().ok();
    let file = cwd
        .as_deref()
        .and_then(|cwd| std::path::Path::new(file).strip_prefix(cwd).ok())
        .map_or_else(|| file.to_owned(), |p| p.display().to_string());
    Some(match frame.line {
        Some(line) => format!("{file}:{line}"),
        None => file,
    })
}

/// The blocking call found in a trimmed stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CallSite {
    /// `file:line` of the innermost application frame.
    pub(crate) location: Option<String>,
    /// The blocking API that frame called, canonical (`std::fs::read`).
    pub(crate) api: Option<String>,
}

/// Finds the innermost application frame and the blocking API it called: the outermost
/// recognised API among the frames inside it.
pub(crate) fn call_site(trimmed: &[Frame]) -> CallSite {
    let Some(user) = trimmed.iter().position(is_application) else {
        let api = trimmed.iter().rev().find_map(|f| known_api(&f.function));
        return CallSite {
            location: None,
            api,
        };
    };
    let api = trimmed[..user]
        .iter()
        .rev()
        .find_map(|f| known_api(&f.function));
    CallSite {
        location: location(&trimmed[user]),
        api,
    }
}

/// A function name without generic arguments, with `<T as Trait>::f` turned into `T::f`.
pub(crate) fn canonical(function: &str) -> String {
    let mut name = function.trim_start_matches('&').to_owned();
    // `<std::fs::File as std::io::Read>::read` -> `std::fs::File::read`
    if let Some(rest) = name.strip_prefix('<') {
        if let Some(as_at) = rest.find(" as ") {
            if let Some(close) = rest.rfind(">::") {
                if close > as_at {
                    name = format!("{}::{}", &rest[..as_at], &rest[close + 3..]);
                }
            }
        }
    }
    let name = name.trim_start_matches('&').to_owned();
    // Drop generic arguments: `Mutex<T>::lock` -> `Mutex::lock`.
    let mut out = String::with_capacity(name.len());
    let mut depth = 0usize;
    for c in name.chars() {
        match c {
            '<' => depth += 1,
            '>' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Public paths for the private modules std's functions live in.
const RENAMES: [(&str, &str); 11] = [
    ("std::thread::functions::", "std::thread::"),
    ("std::sync::poison::mutex::", "std::sync::"),
    ("std::sync::poison::rwlock::", "std::sync::"),
    ("std::sync::poison::condvar::", "std::sync::"),
    ("std::sync::mutex::", "std::sync::"),
    ("std::sync::rwlock::", "std::sync::"),
    ("std::sync::condvar::", "std::sync::"),
    ("std::net::tcp::", "std::net::"),
    ("std::net::udp::", "std::net::"),
    ("std::sync::mpsc::", "std::sync::mpsc::"),
    ("futures_executor::local_pool::", "futures::executor::"),
];

/// The public blocking APIs pollwatch recognises, as prefixes of canonical names.
const BLOCKING_APIS: [&str; 18] = [
    "std::io::Read::",
    "std::io::Write::",
    "std::fs::",
    "std::thread::sleep",
    "std::sync::Mutex::lock",
    "std::sync::RwLock::read",
    "std::sync::RwLock::write",
    "std::sync::Condvar::wait",
    "std::sync::mpsc::Receiver::recv",
    "std::net::TcpStream::",
    "std::net::TcpListener::accept",
    "std::net::UdpSocket::",
    "std::net::ToSocketAddrs",
    "std::process::Command::",
    "std::process::Child::wait",
    "std::io::stdio::",
    "futures::executor::block_on",
    "std::thread::JoinHandle::join",
];

/// The public name of a blocking API, if `function` is one.
pub(crate) fn known_api(function: &str) -> Option<String> {
    let mut name = canonical(function);
    for (from, to) in RENAMES {
        if let Some(rest) = name.strip_prefix(from) {
            name = format!("{to}{rest}");
            break;
        }
    }
    // `std::fs::read::inner` -> `std::fs::read`
    for suffix in ["::inner", "::{{closure}}"] {
        while let Some(stripped) = name.strip_suffix(suffix) {
            name = stripped.to_owned();
        }
    }
    if name.contains("{{closure}}") {
        return None;
    }
    BLOCKING_APIS
        .iter()
        .any(|api| name.starts_with(api))
        .then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            function: function.to_owned(),
            file: file.map(str::to_owned),
            line,
        }
    }

    fn sleep_stack() -> Vec<Frame> {
        vec![
            frame(
                "backtrace::backtrace::libunwind::trace",
                Some("/root/.cargo/registry/src/x/backtrace-0.3/src/backtrace/libunwind.rs"),
                Some(117),
            ),
            frame(
                "pollwatch_capture::linux::signal::handler",
                Some("crates/pollwatch-capture/src/linux/signal.rs"),
                Some(90),
            ),
            frame("__restore_rt", None, None),
            frame(
                "__GI___clock_nanosleep",
                Some("./time/../sysdeps/unix/sysv/linux/clock_nanosleep.c"),
                Some(48),
            ),
            frame(
                "std::sys::thread::unix::sleep",
                Some("/rustc/abc/library/std/src/sys/thread/unix.rs"),
                Some(579),
            ),
            frame(
                "std::thread::functions::sleep",
                Some("/rustc/abc/library/std/src/thread/functions.rs"),
                Some(289),
            ),
            frame(
                "demo::routes::bad_sleep::{{closure}}",
                Some("examples/demo/src/routes.rs"),
                Some(67),
            ),
            frame(
                "tokio::runtime::task::core::Core<T,S>::poll::{{closure}}",
                Some("/root/.cargo/registry/src/x/tokio-1.54.1/src/runtime/task/core.rs"),
                Some(380),
            ),
            frame(
                "std::panicking::try",
                Some("/rustc/abc/library/std/src/panicking.rs"),
                Some(1),
            ),
        ]
    }

    #[test]
    fn trimming_removes_the_capture_and_the_runtime() {
        let trimmed = trim(&sleep_stack());
        let names: Vec<&str> = trimmed.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(
            names,
            [
                "__GI___clock_nanosleep",
                "std::sys::thread::unix::sleep",
                "std::thread::functions::sleep",
                "demo::routes::bad_sleep::{{closure}}"
            ]
        );
    }

    #[test]
    fn the_call_site_is_the_innermost_application_frame_and_names_the_api() {
        let site = call_site(&trim(&sleep_stack()));
        assert_eq!(
            site.location.as_deref(),
            Some("examples/demo/src/routes.rs:67")
        );
        assert_eq!(site.api.as_deref(), Some("std::thread::sleep"));
    }

    #[test]
    fn the_outermost_recognised_api_wins() {
        let stack = vec![
            frame(
                "__GI___libc_read",
                Some("./io/../sysdeps/unix/sysv/linux/read.c"),
                Some(26),
            ),
            frame(
                "<std::fs::File as std::io::Read>::read",
                Some("/rustc/x/library/std/src/fs.rs"),
                Some(1494),
            ),
            frame(
                "std::io::default_read_to_end::<std::fs::File>",
                Some("/rustc/x/library/std/src/io/mod.rs"),
                Some(445),
            ),
            frame(
                "std::fs::read::inner",
                Some("/rustc/x/library/std/src/fs.rs"),
                Some(349),
            ),
            frame("app::store::load", Some("src/store.rs"), Some(17)),
        ];
        let site = call_site(&stack);
        assert_eq!(site.api.as_deref(), Some("std::fs::read"));
        assert_eq!(site.location.as_deref(), Some("src/store.rs:17"));
    }

    #[test]
    fn canonical_names_drop_generics_and_trait_qualification() {
        assert_eq!(
            canonical("<std::fs::File as std::io::Read>::read"),
            "std::fs::File::read"
        );
        assert_eq!(
            canonical("std::sync::poison::mutex::Mutex<T>::lock"),
            "std::sync::poison::mutex::Mutex::lock"
        );
        assert_eq!(
            canonical("<&std::net::tcp::TcpStream as std::io::Read>::read"),
            "std::net::tcp::TcpStream::read"
        );
        assert_eq!(
            known_api("std::sync::poison::mutex::Mutex<T>::lock").as_deref(),
            Some("std::sync::Mutex::lock")
        );
        assert_eq!(
            known_api("<std::net::tcp::TcpStream as std::io::Read>::read").as_deref(),
            Some("std::net::TcpStream::read")
        );
        assert_eq!(
            known_api("futures_executor::local_pool::block_on").as_deref(),
            Some("futures::executor::block_on")
        );
        assert_eq!(known_api("std::io::default_read_to_end"), None);
    }

    #[test]
    fn dependencies_and_libc_are_not_application_code() {
        assert!(!is_application(&frame(
            "sha2::compress",
            Some("/root/.cargo/registry/src/idx/sha2-0.10/src/lib.rs"),
            Some(1)
        )));
        assert!(!is_application(&frame(
            "read",
            Some("./io/read.c"),
            Some(1)
        )));
        assert!(!is_application(&frame("app::f", None, None)));
        assert!(is_application(&frame(
            "app::f",
            Some("/work/app/src/main.rs"),
            Some(3)
        )));
    }
}
