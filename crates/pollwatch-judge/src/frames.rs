//! From a symbolized stack to what a person needs: the frames of the stuck thread without the
//! signal machinery and the runtime, the innermost frame in the application's own code (the
//! blocking call site), and the blocking API it called.

use pollwatch_capture::Unrestartable;
use pollwatch_report::Frame;

use crate::location::{is_dependency_source, Roots};

/// Functions of the capture machinery: everything up to the last of these is the signal
/// handler's own stack, not the application's.
const CAPTURE_MARKERS: [&str; 4] = [
    "pollwatch_capture::",
    "backtrace::backtrace::",
    "__restore_rt",
    "backtrace::trace_unsynchronized",
];

/// The first frame of the runtime: everything from here outwards is tokio polling the task.
const RUNTIME_MARKERS: [&str; 7] = [
    "tokio::runtime::task::",
    "tokio::runtime::scheduler::",
    "tokio::runtime::park::",
    "<tracing::instrument::Instrumented<T> as core::future::future::Future>::poll",
    "tokio::task::local::",
    "tokio::runtime::runtime::Runtime::block_on",
    // pollwatch's watched-future wrapper (`source/watched.rs`) polling the application's.
    "<pollwatch::source::watched::Watched<",
];

/// Path parts of the standard library's code (dependencies are known by their place, see
/// [`is_dependency_source`]; the C library's paths start with `./`).
const FOREIGN_FILE_PARTS: [&str; 4] = ["/rustc/", "/rustlib/", "/library/std/", "/library/core/"];

/// Function prefixes of code that is not the application's.
const FOREIGN_FUNCTIONS: [&str; 16] = [
    "std::", "core::", "alloc::", "tokio::", "mio::", "futures", "tracing", "<std::", "<core::",
    "<alloc::", "<tokio::", "<mio::", "<futures", "<tracing", "<&std::", "__",
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
            ((f.contains("/tokio-1.") || f.contains("/tracing-0.1."))
                && RUNTIME_FILES.iter().any(|m| f.contains(m)))
                || (f.contains("pollwatch") && f.ends_with(WATCHED_FILE))
        })
}

/// The watched-future wrapper's source file: with line tables only, its frames have short
/// names (`poll<F>`), and its file says what they are.
const WATCHED_FILE: &str = "/src/source/watched.rs";

/// A frame whose function has only a short name (line tables only) gets a path built from
/// its file. In a dependency the crate and module make it: `futures-executor-0.3.31/src/local_pool.rs`
/// and `block_on<..>` make `futures_executor::local_pool::block_on`. In the standard library
/// the module alone often does not say the type or trait, so `STD_SHORT_NAMES` does:
/// `read_exact<..>` in `library/std/src/io/mod.rs` is `std::io::Read::read_exact`.
pub fn qualified(frame: &Frame) -> String {
    let short = frame.function.split('<').next().unwrap_or_default();
    if short.is_empty() || short.contains("::") || short.starts_with("0x") {
        return frame.function.clone();
    }
    let Some(module) = frame.file.as_deref().and_then(module_of_file) else {
        return frame.function.clone();
    };
    if module.starts_with("std::") {
        for (std_module, function, public) in STD_SHORT_NAMES {
            if module == std_module && function == short {
                return public.to_owned();
            }
            if module == std_module && function == "*" {
                return format!("{public}::{short}");
            }
        }
    }
    format!("{module}::{short}")
}

/// Public names of standard library functions that release builds show by their short name
/// only: (the module their file makes, the short name or `*` for every function of the file,
/// the public name or, for `*`, the type the functions belong to).
const STD_SHORT_NAMES: [(&str, &str, &str); 19] = [
    ("std::io", "read_exact", "std::io::Read::read_exact"),
    ("std::io", "read_to_end", "std::io::Read::read_to_end"),
    ("std::io", "read_to_string", "std::io::Read::read_to_string"),
    ("std::io", "read_line", "std::io::BufRead::read_line"),
    ("std::io", "read_until", "std::io::BufRead::read_until"),
    ("std::io", "write_all", "std::io::Write::write_all"),
    ("std::io", "write_fmt", "std::io::Write::write_fmt"),
    // Only `Bytes::next` reads through `spec_read_byte`; its own short name, `next`, is
    // every iterator's in that file.
    ("std::io", "spec_read_byte", "std::io::Bytes::next"),
    ("std::io::copy", "copy", "std::io::copy"),
    ("std::io::buffered::bufreader", "*", "std::io::BufReader"),
    ("std::io::buffered::bufwriter", "*", "std::io::BufWriter"),
    ("std::io::buffered::linewriter", "*", "std::io::LineWriter"),
    ("std::sync::mpsc", "recv", "std::sync::mpsc::Receiver::recv"),
    (
        "std::sync::mpsc",
        "recv_timeout",
        "std::sync::mpsc::Receiver::recv_timeout",
    ),
    ("std::sync::poison::condvar", "*", "std::sync::Condvar"),
    ("std::sync::poison::mutex", "*", "std::sync::Mutex"),
    ("std::sync::poison::rwlock", "*", "std::sync::RwLock"),
    ("std::thread::join_handle", "*", "std::thread::JoinHandle"),
    (
        "std::net::socket_addr",
        "to_socket_addrs",
        "std::net::ToSocketAddrs::to_socket_addrs",
    ),
];

/// The module path a source file of a dependency (crates.io or git) or of the standard
/// library makes: `.../futures-executor-0.3.31/src/local_pool.rs` is
/// `futures_executor::local_pool`, `.../library/std/src/io/mod.rs` is `std::io`.
fn module_of_file(file: &str) -> Option<String> {
    let (krate, in_src) = if let Some(at) = file.find("/registry/src/") {
        // `$CARGO_HOME/registry/src/<index>/<crate>-<version>/src/...`
        let mut parts = file[at + "/registry/src/".len()..].split('/').skip(1);
        let dir = parts.next()?;
        let rest: Vec<&str> = parts.collect();
        (crate_of_dir(dir).to_owned(), rest)
    } else if let Some(at) = file.find("/git/checkouts/") {
        // `$CARGO_HOME/git/checkouts/<repo>-<hash>/<rev>/[<dirs>/<crate>/]src/...`
        let parts: Vec<&str> = file[at + "/git/checkouts/".len()..].split('/').collect();
        let src = parts.iter().position(|p| *p == "src")?;
        let krate = if src >= 3 {
            parts[src - 1]
        } else {
            parts[0].rsplit_once('-').map_or(parts[0], |(repo, _)| repo)
        };
        (krate.to_owned(), parts)
    } else if let Some(rest) = file
        .find("/vendor/")
        .map(|at| &file[at + "/vendor/".len()..])
        .or_else(|| file.strip_prefix("vendor/"))
    {
        // `cargo vendor`'s `vendor/<crate>/src/...`
        let mut parts = rest.split('/');
        let krate = parts.next()?;
        (krate.to_owned(), parts.collect())
    } else if let Some((dir, rest)) = crate_version_dir(file) {
        // A `<crate>-<version>/src/...` directory elsewhere (a remapped registry path).
        (crate_of_dir(dir).to_owned(), rest)
    } else if let Some(at) = file.find("/library/") {
        // `/rustc/<hash>/library/std/src/...`, or the `rust-src` component's copy
        let mut parts = file[at..].split('/').skip(2);
        let krate = parts.next()?;
        if !matches!(krate, "std" | "core" | "alloc") {
            return None;
        }
        (krate.to_owned(), parts.collect())
    } else {
        return None;
    };
    let mut path = krate.replace('-', "_");
    let modules = in_src
        .into_iter()
        .skip_while(|p| *p != "src")
        .skip(1)
        .map(|p| p.trim_end_matches(".rs"))
        .filter(|p| !matches!(*p, "lib" | "mod" | "main"));
    for module in modules {
        path.push_str("::");
        path.push_str(module);
    }
    Some(path)
}

/// The first `<crate>-<version>` directory of `file` followed by `src/`, and the components
/// after it.
fn crate_version_dir(file: &str) -> Option<(&str, Vec<&str>)> {
    let parts: Vec<&str> = file.split('/').collect();
    let at = parts.windows(2).position(|w| {
        w[1] == "src" && crate_of_dir(w[0]).len() < w[0].len() && is_dependency_source(file)
    })?;
    Some((parts[at], parts[at + 1..].to_vec()))
}

/// The crate name of a registry directory `<crate>-<version>`: the version starts at the
/// first `-` followed by `<digits>.` (crate names may hold dashes and digits).
fn crate_of_dir(dir: &str) -> &str {
    dir.match_indices('-')
        .map(|(i, _)| i)
        .find(|&i| {
            let version = &dir[i + 1..];
            let major = version.split('.').next().unwrap_or_default();
            !major.is_empty()
                && major.bytes().all(|b| b.is_ascii_digit())
                && version.len() > major.len()
        })
        .map_or(dir, |i| &dir[..i])
}

/// The application's frames between the capture and the runtime, innermost first.
pub fn trim(frames: &[Frame]) -> Vec<Frame> {
    let start = frames.iter().rposition(is_capture).map_or(0, |i| i + 1);
    let mut frames = &frames[start..];
    // The kernel's signal trampoline often has no symbol: an address right after the handler.
    // (In a stripped build no capture frame is named, and unnamed frames are all there is.)
    while start > 0
        && frames
            .first()
            .is_some_and(|f| f.file.is_none() && f.function.starts_with("0x"))
    {
        frames = &frames[1..];
    }
    let end = frames.iter().position(is_runtime).unwrap_or(frames.len());
    frames[..end].to_vec()
}

/// Whether a frame is the application's own code, by its source file's place: under the
/// workspace root `roots` learned (see [`Roots::is_application`]), or, while none is known,
/// anywhere but the standard library, the C library and the places cargo puts dependencies
/// ([`is_dependency_source`]).
pub fn is_application(frame: &Frame, roots: &Roots) -> bool {
    let Some(file) = frame.file.as_deref() else {
        return false;
    };
    if file.starts_with("./") || FOREIGN_FILE_PARTS.iter().any(|p| file.contains(p)) {
        return false;
    }
    let by_place = roots
        .is_application(file)
        .unwrap_or_else(|| !is_dependency_source(file));
    by_place
        && !FOREIGN_FUNCTIONS
            .iter()
            .any(|p| frame.function.starts_with(p))
}

/// Whether a frame is in one of tokio's source files, given by their path in the crate
/// (`/src/task/blocking.rs`): how a build with line tables only, whose inlined frames carry
/// short names, shows tokio's functions.
pub fn in_tokio_file(frame: &Frame, files: &[&str]) -> bool {
    frame
        .file
        .as_deref()
        .is_some_and(|f| f.contains("/tokio-1.") && files.iter().any(|m| f.ends_with(m)))
}

/// Whether a frame is tokio's `LocalSet` running its tasks (by name, or by its file in a
/// build with line tables only).
pub fn is_local_set(frame: &Frame) -> bool {
    frame.function.contains("tokio::task::local::") || in_tokio_file(frame, &["/src/task/local.rs"])
}

/// A frame at line 1 of `file`, for tests.
#[cfg(test)]
pub fn frame_at(function: &str, file: Option<&str>) -> Frame {
    Frame {
        function: function.to_owned(),
        file: file.map(str::to_owned),
        line: Some(1),
        module: None,
    }
}

/// Why a stall has no call site (file and line).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    /// No stack was captured.
    NoStack,
    /// The thread was not signalled for its stack: it was in this call, which the capture
    /// signal would have interrupted.
    WouldInterrupt(Unrestartable),
    /// The stack names the application's function, but the build has no line tables.
    NoLineTables,
    /// Without line tables, the application's code was inlined into tokio's poll: no frame
    /// of it is left.
    Inlined,
    /// The stack has files and lines, but no frame of the application's code.
    NotInApplication,
    /// The application's frames are addresses no symbol names: a stripped build. The report
    /// keeps each frame's module and address, from which `pollwatch symbolize` finds the
    /// line with the build's debug info.
    NoSymbols,
}

impl Missing {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Missing::NoStack => "no_stack",
            Missing::WouldInterrupt(_) => "would_interrupt",
            Missing::NoLineTables => "no_line_tables",
            Missing::Inlined => "inlined",
            Missing::NotInApplication => "not_in_application",
            Missing::NoSymbols => "no_symbols",
        }
    }
}

/// The blocking call found in a trimmed stack.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CallSite {
    /// The innermost application frame's source file, as the debug info has it (absolute),
    /// and its line.
    pub file: Option<String>,
    /// The line of that frame.
    pub line: Option<u32>,
    /// The innermost application function, crate-qualified, without generic arguments or
    /// closure suffixes (`mini_redis::cmd::get::Get::apply`).
    pub function: Option<String>,
    /// Why there is no file and line.
    pub missing: Option<Missing>,
    /// The blocking API that frame called, canonical (`std::fs::read`).
    pub api: Option<String>,
    /// The dependency's function the application frame called into, when the blocking API
    /// was reached through a dependency (`ureq::request::Request::call`).
    pub dependency: Option<String>,
    /// The non-blocking I/O the stack is in, when the syscall under the application's frame
    /// was reached through tokio's or mio's own sockets (`mio::net::TcpStream::write`): it
    /// cannot block, so no blocking API is named.
    pub nonblocking_io: Option<String>,
}

/// The frame of tokio's or mio's non-blocking I/O among `inside` (innermost first), if any:
/// `tokio::net`'s sockets, tokio's `PollEvented` and `mio::net` never block; a syscall under
/// them returns `WouldBlock` instead of waiting.
pub fn nonblocking_io(inside: &[Frame]) -> Option<String> {
    inside.iter().find_map(|frame| {
        let name = canonical(&qualified(frame));
        ["mio::", "tokio::io::poll_evented::", "tokio::net::"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            .then_some(name)
    })
}

/// The blocking API and the non-blocking I/O among `inside`: never both.
fn api_or_nonblocking(inside: &[Frame]) -> (Option<String>, Option<String>) {
    match nonblocking_io(inside) {
        Some(io) => (None, Some(io)),
        None => (blocking_api(inside), None),
    }
}

/// Finds the innermost application frame and the blocking API it called (see
/// [`blocking_api`]). With line tables the frame is the innermost with a source file of the
/// application's; without them, the innermost with a Rust name outside the standard library
/// and the runtime (so a dependency's function can stand in for the application's there).
pub fn call_site(trimmed: &[Frame], roots: &Roots) -> CallSite {
    if trimmed.is_empty() {
        return CallSite {
            missing: Some(Missing::NoStack),
            ..CallSite::default()
        };
    }
    let located = trimmed.iter().position(|f| is_application(f, roots));
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
            None if trimmed.iter().any(is_unnamed) => (None, Some(Missing::NoSymbols)),
            None => (None, Some(Missing::Inlined)),
        },
    };
    let Some(user) = user else {
        let (api, nonblocking_io) = api_or_nonblocking(trimmed);
        return CallSite {
            missing,
            api,
            nonblocking_io,
            ..CallSite::default()
        };
    };
    let frame = &trimmed[user];
    let inside = &trimmed[..user];
    let (api, nonblocking_io) = api_or_nonblocking(inside);
    CallSite {
        file: frame.file.clone(),
        line: frame.line,
        function: Some(function_name(frame)),
        missing,
        dependency: nonblocking_io
            .is_none()
            .then(|| dependency_call(inside))
            .flatten(),
        api,
        nonblocking_io,
    }
}

/// Whether a frame is an address no symbol names (a stripped build's code).
fn is_unnamed(frame: &Frame) -> bool {
    frame.file.is_none() && frame.function.starts_with("0x")
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
pub fn function_name(frame: &Frame) -> String {
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
pub struct Dropping {
    /// The type being dropped, when the stack names one other than the task's future.
    pub type_name: Option<String>,
}

/// The drop running in the stack, if any, from `<T as Drop>::drop` or
/// `core::ptr::drop_in_place<T>` frames (short `drop_in_place<T>` with line tables only): the
/// innermost type that is not the task's future itself (an async block or fn, or the
/// `tracing::Instrumented` around it).
pub fn dropping(trimmed: &[Frame]) -> Option<Dropping> {
    // The standard library's own types (a `Vec`'s buffer, a `Box`) are not a `Drop` that
    // blocks: freeing memory is the work of the call that dropped them.
    let mut types = trimmed
        .iter()
        .filter_map(|frame| dropped_type(&frame.function))
        .filter(|t| !is_standard_type(t))
        .peekable();
    types.peek()?;
    Some(Dropping {
        type_name: types.find(|t| !is_future_type(t)),
    })
}

/// Whether a dropped type is one of the standard library's.
fn is_standard_type(type_name: &str) -> bool {
    let name = type_name.trim_start_matches(['&', '[', '(']);
    ["alloc::", "core::", "std::"]
        .iter()
        .any(|p| name.starts_with(p))
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

/// The blocking API among `inside`, the frames a call site called (innermost first), named
/// after the outermost recognised one, the call the application made.
///
/// When that call is a trait method or a wrapper that does not say what it blocks on
/// (`THROUGH`: `std::io::Read::read_exact`, `std::io::BufRead::read_line`,
/// `std::io::BufWriter::flush`, ...), the name is the concrete call inside it (the nearest
/// recognised frame that is not one of those), its read or write variant named plainly,
/// followed by the call made: `std::net::TcpStream::read (via std::io::BufRead::read_line)`,
/// `std::fs::File::write (via std::io::Write::write_all)`. Otherwise (`std::fs::read`,
/// `std::sync::Mutex::lock`, ...) the call made is the name.
pub fn blocking_api(inside: &[Frame]) -> Option<String> {
    let apis: Vec<String> = inside
        .iter()
        .filter_map(|f| known_api(&qualified(f)))
        .collect();
    let outer = apis.last()?;
    if !is_through(outer) {
        if outer == MERGED_SOCKET_READ {
            return Some(AMBIGUOUS_SOCKET_READ.to_owned());
        }
        return Some(outer.clone());
    }
    let Some(concrete) = apis.iter().rev().find(|api| !is_through(api)) else {
        return Some(outer.clone());
    };
    let concrete = if concrete == MERGED_SOCKET_READ {
        // `UdpSocket` implements none of the reading traits: through one, it is a `TcpStream`.
        "std::net::TcpStream::read".to_owned()
    } else {
        plain_operation(concrete)
    };
    Some(format!("{concrete} (via {outer})"))
}

/// Traits and wrappers whose frames do not say what they read or write.
const THROUGH: [&str; 8] = [
    "std::io::Read::",
    "std::io::Write::",
    "std::io::BufRead::",
    "std::io::BufReader::",
    "std::io::BufWriter::",
    "std::io::LineWriter::",
    "std::io::Bytes::",
    "std::io::copy",
];

fn is_through(api: &str) -> bool {
    THROUGH.iter().any(|t| api.starts_with(t))
}

/// The standard library compiles `<TcpStream as Read>::read` and `UdpSocket::recv` to one
/// function, which the debug info calls `UdpSocket::recv`: called directly, a stack cannot
/// tell the two apart (the stall's `blocked_on` can: TCP or UDP).
const MERGED_SOCKET_READ: &str = "std::net::UdpSocket::recv";

/// The name of [`MERGED_SOCKET_READ`] called directly.
const AMBIGUOUS_SOCKET_READ: &str = "std::net::TcpStream::read or std::net::UdpSocket::recv";

/// `std::net::TcpStream::read_buf` -> `std::net::TcpStream::read`: the variants a trait's
/// default methods call are one read or write to a person.
fn plain_operation(api: &str) -> String {
    for (variant, plain) in [
        ("::read_buf_exact", "::read"),
        ("::read_buf", "::read"),
        ("::read_vectored", "::read"),
        ("::write_vectored", "::write"),
    ] {
        if let Some(owner) = api.strip_suffix(variant) {
            return format!("{owner}{plain}");
        }
    }
    api.to_owned()
}

/// The dependency function the application called into, among `inside` (innermost first),
/// if the blocking call went through one: the outermost frame in a dependency's source (a
/// crates.io or git checkout), canonical and crate-qualified
/// (`futures_executor::local_pool::block_on`, `serde_json::de::from_reader`).
pub fn dependency_call(inside: &[Frame]) -> Option<String> {
    let frame = inside
        .iter()
        .rev()
        .find(|f| f.file.as_deref().is_some_and(is_dependency_source))?;
    let mut name = canonical(&qualified(frame));
    while let Some((outer, last)) = name.rsplit_once("::") {
        if last.starts_with('{') {
            name = outer.to_owned();
        } else {
            break;
        }
    }
    Some(name)
}

/// A function name without generic arguments: `<T as Trait>::f` turned into `T::f` (into
/// `Trait::f` when `T` is no path, as in `<(&str, u16) as ToSocketAddrs>::to_socket_addrs`),
/// `<T>::f` into `T::f`.
pub fn canonical(function: &str) -> String {
    let mut name = function.trim_start_matches('&').to_owned();
    // `<std::fs::File as std::io::Read>::read` -> `std::fs::File::read`
    if let Some(rest) = name.strip_prefix('<') {
        if let Some(as_at) = rest.find(" as ") {
            if let Some(close) = rest.rfind(">::") {
                if close > as_at {
                    let ty = rest[..as_at].trim_start_matches(['&', '*']);
                    let ty = ty.strip_prefix("mut ").unwrap_or(ty);
                    let owner = if ty.starts_with(|c: char| c.is_alphabetic()) && ty.contains("::")
                    {
                        ty
                    } else {
                        &rest[as_at + 4..close]
                    };
                    name = format!("{owner}::{}", &rest[close + 3..]);
                }
            }
        } else if let Some(close) = rest.find(">::") {
            // `<std::process::Command>::output` -> `std::process::Command::output`
            if !rest[..close].contains('<') {
                name = format!("{}::{}", &rest[..close], &rest[close + 3..]);
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
const RENAMES: [(&str, &str); 18] = [
    ("std::thread::functions::", "std::thread::"),
    ("std::thread::join_handle::", "std::thread::"),
    ("std::sync::poison::mutex::", "std::sync::"),
    ("std::sync::poison::rwlock::", "std::sync::"),
    ("std::sync::poison::condvar::", "std::sync::"),
    ("std::sync::mutex::", "std::sync::"),
    ("std::sync::rwlock::", "std::sync::"),
    ("std::sync::condvar::", "std::sync::"),
    ("std::net::tcp::", "std::net::"),
    ("std::net::udp::", "std::net::"),
    ("std::net::socket_addr::", "std::net::"),
    ("std::os::unix::net::stream::", "std::os::unix::net::"),
    ("std::io::buffered::bufreader::", "std::io::"),
    ("std::io::buffered::bufwriter::", "std::io::"),
    ("std::io::buffered::linewriter::", "std::io::"),
    ("std::io::copy::", "std::io::"),
    ("std::sync::mpsc::", "std::sync::mpsc::"),
    ("futures_executor::local_pool::", "futures::executor::"),
];

/// The public blocking APIs pollwatch recognises, as prefixes of canonical names.
const BLOCKING_APIS: [&str; 29] = [
    "std::io::Read::",
    "std::io::Write::",
    "std::io::BufRead::",
    "std::io::BufReader::",
    "std::io::BufWriter::",
    "std::io::LineWriter::",
    "std::io::Bytes::",
    "std::io::copy",
    "std::fs::",
    "std::thread::sleep",
    "std::sync::Mutex::lock",
    "std::sync::RwLock::read",
    "std::sync::RwLock::write",
    "std::sync::Condvar::wait",
    "std::sync::mpsc::Receiver::recv",
    "std::sync::mpsc::SyncSender::send",
    "std::net::TcpStream::",
    "std::net::TcpListener::accept",
    "std::net::UdpSocket::",
    "std::net::ToSocketAddrs",
    "std::os::unix::net::UnixStream::",
    "std::process::Command::",
    "std::process::Child::wait",
    "std::process::ChildStdout::",
    "std::process::ChildStderr::",
    "std::process::ChildStdin::",
    "std::io::stdio::",
    "futures::executor::block_on",
    "std::thread::JoinHandle::join",
];

/// The public name of a blocking API, if `function` is one.
pub fn known_api(function: &str) -> Option<String> {
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
    if name.contains("{{closure}}") || name.contains("{closure#") {
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

    fn is_application_here(frame: &Frame) -> bool {
        is_application(frame, &Roots::default())
    }

    /// The call site with no workspace root learned.
    fn call_site_here(trimmed: &[Frame]) -> CallSite {
        call_site(trimmed, &Roots::default())
    }

    fn frame(function: &str, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            function: function.to_owned(),
            file: file.map(str::to_owned),
            line,
            module: None,
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
        let site = call_site_here(&trim(&sleep_stack()));
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
        let site = call_site_here(&stack);
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
        let site = call_site_here(&trimmed);
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

    fn std_frame(function: &str, file: &str) -> Frame {
        frame(
            function,
            Some(&format!("/rustc/59807616e1fa/library/std/src/{file}")),
            Some(1),
        )
    }

    #[test]
    fn short_std_names_get_their_public_type_or_trait() {
        let cases = [
            (
                "read_exact<std::net::tcp::TcpStream>",
                "io/mod.rs",
                "std::io::Read::read_exact",
            ),
            (
                "read_line<std::io::buffered::bufreader::BufReader<X>>",
                "io/mod.rs",
                "std::io::BufRead::read_line",
            ),
            (
                "fill_buf<std::net::tcp::TcpStream>",
                "io/buffered/bufreader.rs",
                "std::io::BufReader::fill_buf",
            ),
            (
                "recv<()>",
                "sync/mpsc.rs",
                "std::sync::mpsc::Receiver::recv",
            ),
            ("recv<()>", "sync/mpmc/mod.rs", "std::sync::mpmc::recv"),
            (
                "wait_timeout<bool>",
                "sync/poison/condvar.rs",
                "std::sync::Condvar::wait_timeout",
            ),
            (
                "join<()>",
                "thread/join_handle.rs",
                "std::thread::JoinHandle::join",
            ),
            (
                "join<()>",
                "thread/lifecycle.rs",
                "std::thread::lifecycle::join",
            ),
            ("read<&std::path::PathBuf>", "fs.rs", "std::fs::read"),
        ];
        for (function, file, public) in cases {
            assert_eq!(
                qualified(&std_frame(function, file)),
                public,
                "{function} in {file}"
            );
        }
        // Full names are left as they are.
        let full = std_frame("<std::process::Command>::output", "process.rs");
        assert_eq!(qualified(&full), "<std::process::Command>::output");
    }

    #[test]
    fn git_dependencies_and_dashed_versions_make_crate_paths() {
        let git = frame(
            "send<X>",
            Some("/home/u/.cargo/git/checkouts/client-rs-3f2a9c/1a2b3c4/crates/http-client/src/blocking/mod.rs"),
            Some(9),
        );
        assert_eq!(qualified(&git), "http_client::blocking::send");
        let git_root = frame(
            "call",
            Some("/home/u/.cargo/git/checkouts/ureq-0b1c2d/5e6f7a8/src/request.rs"),
            Some(9),
        );
        assert_eq!(qualified(&git_root), "ureq::request::call");
        assert_eq!(crate_of_dir("futures-executor-0.3.31"), "futures-executor");
        assert_eq!(crate_of_dir("sha2-0.10.8"), "sha2");
        assert_eq!(crate_of_dir("x25519-dalek-2.0.0-rc.3"), "x25519-dalek");
    }

    #[test]
    fn inherent_and_trait_impls_on_non_paths_are_canonical() {
        assert_eq!(
            canonical("<std::process::Command>::output"),
            "std::process::Command::output"
        );
        assert_eq!(
            known_api("<(&str, u16) as std::net::socket_addr::ToSocketAddrs>::to_socket_addrs")
                .as_deref(),
            Some("std::net::ToSocketAddrs::to_socket_addrs")
        );
        assert_eq!(
            canonical("<&mut serde_json::de::Deserializer<R> as serde_core::de::Deserializer>::deserialize_any"),
            "serde_json::de::Deserializer::deserialize_any"
        );
        assert_eq!(
            known_api("std::thread::join_handle::JoinHandle<T>::join").as_deref(),
            Some("std::thread::JoinHandle::join")
        );
    }

    /// The frames (innermost first) of a read from a socket as std compiles it, from the
    /// syscall up to `outer`, called by an application frame.
    fn socket_read_under(outer: &[Frame]) -> Vec<Frame> {
        let mut stack = vec![
            frame(
                "__libc_recv",
                Some("./socket/../sysdeps/unix/sysv/linux/recv.c"),
                Some(28),
            ),
            std_frame(
                "<std::sys::net::connection::socket::unix::Socket>::read",
                "sys/net/connection/socket/unix.rs",
            ),
            std_frame(
                "<std::sys::net::connection::socket::UdpSocket>::recv",
                "sys/net/connection/socket/mod.rs",
            ),
            std_frame("<std::net::udp::UdpSocket>::recv", "net/udp.rs"),
        ];
        stack.extend_from_slice(outer);
        stack.push(frame(
            "app::client::fetch",
            Some("/w/app/src/client.rs"),
            Some(40),
        ));
        stack
    }

    #[test]
    fn a_syscall_under_tokio_s_non_blocking_io_names_no_blocking_api() {
        let registry = "/home/u/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f";
        // As mini-redis's `self.stream.flush().await` on a tokio `TcpStream` shows it.
        let write = socket_read_under(&[
            frame(
                "<mio::net::tcp::stream::TcpStream as std::io::Write>::write",
                Some(&format!("{registry}/mio-1.0.4/src/net/tcp/stream.rs")),
                Some(317),
            ),
            frame(
                "tokio::io::poll_evented::PollEvented<E>::poll_write",
                Some(&format!("{registry}/tokio-1.54.1/src/io/poll_evented.rs")),
                Some(264),
            ),
            frame(
                "<tokio::io::util::flush::Flush<A> as core::future::future::Future>::poll",
                Some(&format!("{registry}/tokio-1.54.1/src/io/util/flush.rs")),
                Some(46),
            ),
        ]);
        let site = call_site_here(&write);
        assert_eq!(site.api, None, "{site:?}");
        assert_eq!(site.dependency, None, "{site:?}");
        assert_eq!(
            site.nonblocking_io.as_deref(),
            Some("mio::net::tcp::stream::TcpStream::write")
        );
        assert_eq!(site.line, Some(40), "the application's line is still named");
        // Without line tables, by the symbol names alone.
        let stripped: Vec<Frame> = write
            .iter()
            .map(|f| frame(&f.function, None, None))
            .collect();
        assert_eq!(call_site_here(&stripped).api, None);
        assert!(call_site_here(&stripped).nonblocking_io.is_some());
        // A std socket the application calls itself still blocks.
        let direct = call_site_here(&socket_read_under(&[]));
        assert!(direct.api.is_some() && direct.nonblocking_io.is_none());
    }

    #[test]
    fn a_trait_call_is_named_after_the_concrete_call_inside_it() {
        let read_exact = socket_read_under(&[std_frame("std::io::Read::read_exact", "io/mod.rs")]);
        assert_eq!(
            call_site_here(&read_exact).api.as_deref(),
            Some("std::net::TcpStream::read (via std::io::Read::read_exact)")
        );
        let release = socket_read_under(&[std_frame(
            "read_exact<std::net::tcp::TcpStream>",
            "io/mod.rs",
        )]);
        assert_eq!(
            call_site_here(&release).api,
            call_site_here(&read_exact).api
        );
        // Called directly, the merged read cannot be told from a UDP receive.
        assert_eq!(
            call_site_here(&socket_read_under(&[])).api.as_deref(),
            Some("std::net::TcpStream::read or std::net::UdpSocket::recv")
        );
        let write_all = vec![
            std_frame("<std::fs::File as std::io::Write>::write", "fs.rs"),
            std_frame("std::io::Write::write_all", "io/mod.rs"),
            frame("app::save", Some("/w/app/src/save.rs"), Some(3)),
        ];
        assert_eq!(
            call_site_here(&write_all).api.as_deref(),
            Some("std::fs::File::write (via std::io::Write::write_all)")
        );
        // A trait call with nothing concrete inside it keeps its own name.
        let stdin_like = vec![
            frame("read", Some("./io/read.c"), Some(1)),
            std_frame("std::io::Read::read_exact", "io/mod.rs"),
            frame("app::input", Some("/w/app/src/input.rs"), Some(3)),
        ];
        assert_eq!(
            call_site_here(&stdin_like).api.as_deref(),
            Some("std::io::Read::read_exact")
        );
    }

    #[test]
    fn no_dependency_between_the_application_and_std() {
        let site = call_site_here(&socket_read_under(&[std_frame(
            "std::io::Read::read_exact",
            "io/mod.rs",
        )]));
        assert_eq!(site.dependency, None);
    }

    /// The trimmed stack of thread `tid` of this process, captured and symbolized as pollwatch
    /// does for a stuck poll; `None` where the capture machinery is not available.
    fn captured_stack(tid: pollwatch_capture::Tid) -> Option<Vec<Frame>> {
        let inspector = pollwatch_capture::inspector(true);
        if !inspector.can_capture() {
            if cfg!(target_os = "linux") {
                panic!("Linux captures stacks");
            }
            return None;
        }
        for _ in 0..200 {
            match inspector.capture(tid, std::time::Duration::from_secs(1)) {
                Ok(raw) => {
                    let frames = pollwatch_capture::symbolize(&raw.ips)
                        .into_iter()
                        .map(|f| Frame {
                            function: f.function.unwrap_or_else(|| format!("{:#x}", f.ip)),
                            file: f.file,
                            line: f.line,
                            module: None,
                        })
                        .collect::<Vec<_>>();
                    return Some(trim(&frames));
                }
                Err(
                    pollwatch_capture::CaptureError::Busy
                    | pollwatch_capture::CaptureError::AwaitingLate,
                ) => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) => panic!("capture failed: {e}"),
            }
        }
        panic!("the capture machinery stayed busy")
    }

    /// Starts a thread that runs `work` and returns its id once it runs.
    fn thread_started(
        work: impl FnOnce() + Send + 'static,
    ) -> (pollwatch_capture::Tid, std::thread::JoinHandle<()>) {
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            tid_tx.send(pollwatch_capture::current_tid()).unwrap();
            work();
        });
        (tid_rx.recv().unwrap(), thread)
    }

    /// Starts a thread that runs `blocking` and returns its id once the kernel shows it
    /// asleep in a syscall (where `/proc` can tell).
    fn thread_running(
        blocking: impl FnOnce() + Send + 'static,
    ) -> (pollwatch_capture::Tid, std::thread::JoinHandle<()>) {
        let (tid, thread) = thread_started(blocking);
        let inspector = pollwatch_capture::inspector(false);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while cfg!(target_os = "linux")
            && !inspector.thread_state(tid).is_some_and(|s| {
                s.run == pollwatch_capture::RunState::Sleeping && s.syscall.is_some()
            })
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the thread never blocked"
            );
            std::thread::yield_now();
        }
        (tid, thread)
    }

    #[test]
    fn a_blocking_dependency_call_is_named_from_a_real_stack() {
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let (tid, thread) = thread_running(move || {
            let _ = futures::executor::block_on(rx);
        });
        let stack = captured_stack(tid);
        tx.send(()).unwrap();
        thread.join().unwrap();
        let Some(stack) = stack else { return };
        let site = call_site_here(&stack);
        assert_eq!(
            site.api.as_deref(),
            Some("futures::executor::block_on"),
            "{stack:#?}"
        );
        assert_eq!(
            site.dependency.as_deref(),
            Some("futures_executor::local_pool::block_on"),
            "{stack:#?}"
        );
        assert!(
            site.file.as_deref().unwrap_or("").contains("frames.rs"),
            "{site:?}"
        );
    }

    #[test]
    fn a_std_call_made_by_a_dependency_names_both_from_a_real_stack() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tid, thread) = thread_running(move || {
            let stream = std::net::TcpStream::connect(addr).unwrap();
            let _ = serde_json::from_reader::<_, serde_json::Value>(stream);
        });
        let (conn, _) = listener.accept().unwrap();
        let stack = captured_stack(tid);
        drop(conn);
        thread.join().unwrap();
        let Some(stack) = stack else { return };
        let site = call_site_here(&stack);
        assert_eq!(
            site.api.as_deref(),
            Some("std::net::TcpStream::read (via std::io::Bytes::next)"),
            "{stack:#?}"
        );
        assert_eq!(
            site.dependency.as_deref(),
            Some("serde_json::de::from_reader"),
            "{stack:#?}"
        );
    }

    /// A name lookup of `localhost` takes well under a millisecond here, too short for a
    /// stall test: a thread repeats it, and its stack is captured until one capture lands
    /// inside a lookup.
    #[test]
    fn a_name_lookup_is_named_from_a_real_stack() {
        use std::net::ToSocketAddrs;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let looking_up = stop.clone();
        let (tid, thread) = thread_started(move || {
            while !looking_up.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = ("localhost", 80).to_socket_addrs();
            }
        });
        let mut seen = Vec::new();
        for _ in 0..300 {
            let Some(stack) = captured_stack(tid) else {
                break;
            };
            let site = call_site_here(&stack);
            if let Some(api) = site.api {
                seen.push(api);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        thread.join().unwrap();
        if !pollwatch_capture::inspector(true).can_capture() {
            return;
        }
        assert_eq!(
            seen.first().map(String::as_str),
            Some("std::net::ToSocketAddrs::to_socket_addrs"),
            "{seen:?}"
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
        let site = call_site_here(&trim(&stack));
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
        let site = call_site_here(&trim(&stack));
        assert_eq!(site.missing, Some(Missing::Inlined));
        assert_eq!(site.function, None);
        assert_eq!(site.api.as_deref(), Some("std::thread::sleep"));
        assert_eq!(call_site_here(&[]).missing, Some(Missing::NoStack));
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
        let freeing = vec![
            frame("__GI___munmap", None, None),
            frame(
                "core::ptr::drop_in_place<alloc::raw_vec::RawVec<u8>>",
                None,
                None,
            ),
            frame("core::ptr::drop_in_place<alloc::vec::Vec<u8>>", None, None),
            frame("demo::routes::fs::bad_fs::{{closure}}", None, None),
        ];
        assert_eq!(
            dropping(&freeing),
            None,
            "freeing a Vec is not a blocking Drop"
        );
        assert_eq!(dropping(&sleep_stack()), None);
    }

    /// A query stuck on SQLite's own mutex, as actix-web's SQLite example shows it with
    /// rusqlite's sources at `registry` (the default `~/.cargo`, the Docker image's
    /// `/usr/local/cargo`, vendored, or remapped).
    fn sqlite_lock_under(registry: &str) -> Vec<Frame> {
        vec![
            frame("__lll_lock_wait", Some("./nptl/lowlevellock.c"), Some(49)),
            frame("pthreadMutexEnter", None, None),
            frame(
                "rusqlite::raw_statement::RawStatement::step",
                Some(&format!("{registry}/src/raw_statement.rs")),
                Some(106),
            ),
            frame(
                "rusqlite::statement::Statement::query_row",
                Some(&format!("{registry}/src/statement.rs")),
                Some(400),
            ),
            frame("app::db::get_weather", Some("/app/src/db.rs"), Some(71)),
            frame("app::main::{closure#0}", Some("/app/src/main.rs"), Some(40)),
        ]
    }

    #[test]
    fn a_dependency_is_known_by_its_place_wherever_cargo_put_it() {
        let index = "registry/src/index.crates.io-1949cf8c6b5b557f/rusqlite-0.32.1";
        for registry in [
            format!("/root/.cargo/{index}"),
            format!("/usr/local/cargo/{index}"),
            "/app/vendor/rusqlite".to_owned(),
            "/deps/rusqlite-0.32.1".to_owned(),
        ] {
            let stack = sqlite_lock_under(&registry);
            let mut roots = Roots::default();
            let without_root = call_site(&stack, &roots);
            roots.learn("/app/src/main.rs", "src/main.rs");
            for site in [without_root, call_site(&stack, &roots)] {
                assert_eq!(site.file.as_deref(), Some("/app/src/db.rs"), "{registry}");
                assert_eq!(site.line, Some(71));
                assert_eq!(
                    site.dependency.as_deref(),
                    Some("rusqlite::statement::Statement::query_row"),
                    "{registry}"
                );
            }
        }
    }

    #[test]
    fn dependencies_and_libc_are_not_application_code() {
        assert!(!is_application_here(&frame(
            "sha2::compress",
            Some("/root/.cargo/registry/src/idx/sha2-0.10/src/lib.rs"),
            Some(1)
        )));
        assert!(!is_application_here(&frame(
            "read",
            Some("./io/read.c"),
            Some(1)
        )));
        assert!(!is_application_here(&frame("app::f", None, None)));
        assert!(is_application_here(&frame(
            "app::f",
            Some("/work/app/src/main.rs"),
            Some(3)
        )));
    }
}
