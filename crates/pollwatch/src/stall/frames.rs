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

/// Source files of the capture machinery (names alone are not enough: with line tables only,
/// inlined frames carry short names such as `handler`).
const CAPTURE_FILES: [&str; 2] = ["pollwatch-capture/src/", "/backtrace-0."];

/// Source files of the runtime polling the task.
const RUNTIME_FILES: [&str; 3] = [
    "/src/runtime/task/",
    "/src/runtime/scheduler/",
    "/src/instrument.rs",
];

fn is_capture(frame: &Frame) -> bool {
    CAPTURE_MARKERS.iter().any(|m| frame.function.contains(m))
        || frame
            .file
            .as_deref()
            .is_some_and(|f| CAPTURE_FILES.iter().any(|m| f.contains(m)))
}

fn is_runtime(frame: &Frame) -> bool {
    RUNTIME_MARKERS
        .iter()
        .any(|m| frame.function.starts_with(m))
        || frame.file.as_deref().is_some_and(|f| {
            (f.contains("/tokio-1.") || f.contains("/tracing-0.1."))
                && RUNTIME_FILES.iter().any(|m| f.contains(m))
        })
}

/// A frame whose function has only a short name (line tables only) gets a path built from
/// its file when that file is in a dependency: `futures-executor-0.3.31/src/local_pool.rs`
/// and `block_on<..>` make `futures_executor::local_pool::block_on`.
pub(crate) fn qualified(frame: &Frame) -> String {
    let short = frame.function.split('<').next().unwrap_or_default();
    if short.contains("::") || short.starts_with("0x") {
        return frame.function.clone();
    }
    let Some(file) = frame.file.as_deref() else {
        return frame.function.clone();
    };
    let Some(at) = file.find("/.cargo/registry/src/") else {
        return frame.function.clone();
    };
    let mut parts = file[at..].split('/').skip(5);
    let Some(krate) = parts.next() else {
        return frame.function.clone();
    };
    let name = krate
        .rsplit_once('-')
        .map_or(krate, |(name, _)| name)
        .replace('-', "_");
    let modules: Vec<&str> = parts
        .skip_while(|p| *p != "src")
        .skip(1)
        .map(|p| p.trim_end_matches(".rs"))
        .filter(|p| *p != "lib" && *p != "mod")
        .collect();
    let mut path = name;
    for module in modules {
        path.push_str("::");
        path.push_str(module);
    }
    format!("{path}::{short}")
}

/// The application's frames between the capture and the runtime, innermost first.
pub(crate) fn trim(frames: &[Frame]) -> Vec<Frame> {
    let start = frames.iter().rposition(is_capture).map_or(0, |i| i + 1);
    let mut frames = &frames[start..];
    // The kernel's signal trampoline often has no symbol: an address right after the handler.
    while frames
        .first()
        .is_some_and(|f| f.file.is_none() && f.function.starts_with("0x"))
    {
        frames = &frames[1..];
    }
    let end = frames.iter().position(is_runtime).unwrap_or(frames.len());
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

/// Why a stall has no call site (file and line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// No stack was captured.
    NoStack,
    /// The stack names the application's function, but the build has no line tables.
    NoLineTables,
    /// Without line tables, the application's code was inlined into tokio's poll: no frame
    /// of it is left.
    Inlined,
    /// The stack has files and lines, but no frame of the application's code.
    NotInApplication,
}

impl Missing {
    /// The name used in reports.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Missing::NoStack => "no_stack",
            Missing::NoLineTables => "no_line_tables",
            Missing::Inlined => "inlined",
            Missing::NotInApplication => "not_in_application",
        }
    }
}

/// The blocking call found in a trimmed stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct CallSite {
    /// The innermost application frame's source file, as the debug info has it (absolute),
    /// and its line.
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
    /// The innermost application function, crate-qualified, without generic arguments or
    /// closure suffixes (`mini_redis::cmd::get::Get::apply`).
    pub(crate) function: Option<String>,
    /// Why there is no file and line.
    pub(crate) missing: Option<Missing>,
    /// The blocking API that frame called, canonical (`std::fs::read`).
    pub(crate) api: Option<String>,
    /// The dependency's function the application frame called into, when the blocking API
    /// was reached through a dependency (`ureq::request::Request::call`).
    pub(crate) dependency: Option<String>,
}

/// Finds the innermost application frame and the blocking API it called (see
/// [`blocking_api`]). With line tables the frame is the innermost with a source file of the
/// application's; without them, the innermost with a Rust name outside the standard library
/// and the runtime (so a dependency's function can stand in for the application's there).
pub(crate) fn call_site(trimmed: &[Frame]) -> CallSite {
    if trimmed.is_empty() {
        return CallSite {
            missing: Some(Missing::NoStack),
            ..CallSite::default()
        };
    }
    let located = trimmed.iter().position(is_application);
    let named = || {
        trimmed
            .iter()
            .position(|f| f.file.is_none() && is_application_by_name(f))
    };
    let (user, missing) = match located {
        Some(user) => (Some(user), None),
        None => match named() {
            Some(user) => (Some(user), Some(Missing::NoLineTables)),
            None if trimmed.iter().any(|f| f.line.is_some() && is_rust(f)) => {
                (None, Some(Missing::NotInApplication))
            }
            None => (None, Some(Missing::Inlined)),
        },
    };
    let Some(user) = user else {
        return CallSite {
            missing,
            api: blocking_api(trimmed),
            ..CallSite::default()
        };
    };
    let frame = &trimmed[user];
    let inside = &trimmed[..user];
    CallSite {
        file: frame.file.clone(),
        line: frame.line,
        function: Some(function_name(frame)),
        missing,
        api: blocking_api(inside),
        dependency: dependency_call(inside),
    }
}

/// Whether a frame is Rust code, not the C library's (whose debug info may be installed
/// while the application has none).
fn is_rust(frame: &Frame) -> bool {
    frame.function.contains("::")
        && !frame
            .file
            .as_deref()
            .is_some_and(|f| f.starts_with("./") || f.ends_with(".c"))
}

/// Whether a frame without a source file is, by its name, Rust code outside the standard
/// library, the runtime and pollwatch: a demangled path (`app::module::f`), not a C symbol.
fn is_application_by_name(frame: &Frame) -> bool {
    let name = frame.function.trim_start_matches('<');
    name.contains("::")
        && !name.starts_with("0x")
        && !FOREIGN_FUNCTIONS
            .iter()
            .any(|p| frame.function.starts_with(p))
        && !CAPTURE_MARKERS.iter().any(|m| frame.function.contains(m))
}

/// A frame's function as a person names it: crate-qualified (from the file for a
/// dependency's short name), without generic arguments, trait qualification or closure
/// suffixes.
pub(crate) fn function_name(frame: &Frame) -> String {
    let mut name = canonical(&qualified(frame));
    loop {
        let trimmed = name
            .strip_suffix("::{{closure}}")
            .or_else(|| name.strip_suffix("::{closure#0}"));
        match trimmed {
            Some(rest) => name = rest.to_owned(),
            None => break name,
        }
    }
}

/// A `Drop` running in a stack.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dropping {
    /// The type being dropped, when the stack names one other than the task's future.
    pub(crate) type_name: Option<String>,
}

/// The drop running in the stack, if any, from `<T as Drop>::drop` or
/// `core::ptr::drop_in_place<T>` frames (short `drop_in_place<T>` with line tables only): the
/// innermost type that is not the task's future itself (an async block or fn, or the
/// `tracing::Instrumented` around it).
pub(crate) fn dropping(trimmed: &[Frame]) -> Option<Dropping> {
    let mut types = trimmed
        .iter()
        .filter_map(|frame| dropped_type(&frame.function))
        .peekable();
    types.peek()?;
    Some(Dropping {
        type_name: types.find(|t| !is_future_type(t)),
    })
}

/// The type a `Drop::drop` or `drop_in_place` frame drops.
fn dropped_type(function: &str) -> Option<String> {
    let name = function.trim_start_matches('&');
    if let Some(inner) = name
        .strip_prefix('<')
        .and_then(|n| n.strip_suffix(" as core::ops::drop::Drop>::drop"))
    {
        return Some(inner.to_owned());
    }
    let at = name.find("drop_in_place<")?;
    let (before, inner) = name.split_at(at + "drop_in_place<".len());
    let qualified = at == 0 || before.ends_with("::drop_in_place<");
    let inner = inner.strip_suffix('>')?;
    qualified.then(|| inner.to_owned())
}

/// Whether a dropped type is a task's future rather than a value of the application's.
fn is_future_type(type_name: &str) -> bool {
    type_name.starts_with("tracing::instrument::Instrumented<")
        || type_name.ends_with("{{closure}}")
        || type_name.contains("{async_block")
        || type_name.contains("{async_fn")
}

/// The blocking API among `inside`, the frames a call site called (innermost first): the
/// outermost recognised one.
pub(crate) fn blocking_api(inside: &[Frame]) -> Option<String> {
    inside.iter().rev().find_map(|f| known_api(&qualified(f)))
}

/// The dependency function the application called into, among `inside` (innermost first),
/// if the blocking call went through one.
pub(crate) fn dependency_call(_inside: &[Frame]) -> Option<String> {
    None
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
        assert_eq!(site.file.as_deref(), Some("examples/demo/src/routes.rs"));
        assert_eq!(site.line, Some(67));
        assert_eq!(site.function.as_deref(), Some("demo::routes::bad_sleep"));
        assert_eq!(site.missing, None);
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
        assert_eq!(
            (site.file.as_deref(), site.line),
            (Some("src/store.rs"), Some(17))
        );
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
    fn release_builds_with_short_names_are_trimmed_by_file() {
        let stack = vec![
            frame("handler", Some("/w/crates/pollwatch-capture/src/linux/signal.rs"), Some(92)),
            frame("0x7f68e7403050", None, None),
            frame("__GI___clock_nanosleep", Some("./time/../sysdeps/unix/sysv/linux/clock_nanosleep.c"), Some(48)),
            frame("std::thread::functions::sleep", Some("/rustc/x/library/std/src/thread/functions.rs"), Some(289)),
            frame("{async_block#0}", Some("/w/examples/demo/src/routes/sleep.rs"), Some(14)),
            frame("poll<X>", Some("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/tracing-0.1.44/src/instrument.rs"), Some(321)),
        ];
        let trimmed = trim(&stack);
        assert_eq!(trimmed.len(), 3, "{trimmed:#?}");
        let site = call_site(&trimmed);
        assert_eq!(
            (site.file.as_deref(), site.line),
            (Some("/w/examples/demo/src/routes/sleep.rs"), Some(14))
        );
        assert_eq!(site.api.as_deref(), Some("std::thread::sleep"));
    }

    #[test]
    fn short_dependency_names_are_qualified_from_their_file() {
        let f = frame(
            "block_on<futures_channel::oneshot::Receiver<()>>",
            Some("/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/futures-executor-0.3.31/src/local_pool.rs"),
            Some(317),
        );
        assert_eq!(qualified(&f), "futures_executor::local_pool::block_on");
        assert_eq!(
            known_api(&qualified(&f)).as_deref(),
            Some("futures::executor::block_on")
        );
    }

    #[test]
    fn without_line_tables_the_innermost_application_function_is_named() {
        let stack = vec![
            frame("__GI___clock_nanosleep", None, None),
            frame("std::thread::functions::sleep", None, None),
            frame("mini_redis::cmd::get::Get::apply::{{closure}}", None, None),
            frame("mini_redis::server::Handler::run::{{closure}}", None, None),
            frame(
                "tokio::runtime::task::harness::Harness<T,S>::poll",
                None,
                None,
            ),
        ];
        let site = call_site(&trim(&stack));
        assert_eq!(site.missing, Some(Missing::NoLineTables));
        assert_eq!(site.file, None);
        assert_eq!(
            site.function.as_deref(),
            Some("mini_redis::cmd::get::Get::apply")
        );
        assert_eq!(site.api.as_deref(), Some("std::thread::sleep"));
    }

    #[test]
    fn code_inlined_into_the_runtime_is_said_to_be() {
        let stack = vec![
            frame(
                "__GI___clock_nanosleep",
                Some("./time/../sysdeps/unix/sysv/linux/clock_nanosleep.c"),
                Some(48),
            ),
            frame("read", None, None),
            frame("std::thread::functions::sleep", None, None),
            frame("tokio::runtime::task::core::Core<T,S>::poll", None, None),
        ];
        let site = call_site(&trim(&stack));
        assert_eq!(site.missing, Some(Missing::Inlined));
        assert_eq!(site.function, None);
        assert_eq!(site.api.as_deref(), Some("std::thread::sleep"));
        assert_eq!(call_site(&[]).missing, Some(Missing::NoStack));
    }

    #[test]
    fn a_running_drop_names_its_type() {
        let stack = vec![
            frame("std::thread::functions::sleep", None, None),
            frame("<app::SlowDrop as core::ops::drop::Drop>::drop", None, None),
            frame("core::ptr::drop_in_place<app::SlowDrop>", None, None),
            frame(
                "core::ptr::drop_in_place<app::main::{{closure}}>",
                None,
                None,
            ),
        ];
        let named = |t: &str| {
            Some(Dropping {
                type_name: Some(t.to_owned()),
            })
        };
        assert_eq!(dropping(&stack), named("app::SlowDrop"));
        let short = vec![frame(
            "drop_in_place<app::SlowDrop>",
            Some("/rustc/x/library/core/src/ptr/mod.rs"),
            Some(1),
        )];
        assert_eq!(dropping(&short), named("app::SlowDrop"));
        let future = vec![
            frame("std::thread::functions::sleep", None, None),
            frame(
                "core::ptr::drop_in_place<tracing::instrument::Instrumented<app::main::{{closure}}>>",
                None,
                None,
            ),
        ];
        assert_eq!(dropping(&future), Some(Dropping { type_name: None }));
        assert_eq!(dropping(&sleep_stack()), None);
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
