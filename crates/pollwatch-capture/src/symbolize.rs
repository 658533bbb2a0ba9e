//! Symbolization of captured addresses, off every hot path.
//!
//! The first symbolization parses the binary's debug info and keeps it (tens of MiB for a
//! service with line tables: 54 MiB of heap for a 36 MB binary); [`release_symbols_if_idle`]
//! gives that memory back once nothing has been symbolized for a while.

use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::ModuleAddress;

/// When the last symbolization ran, while the parsed debug info is kept.
static LAST_USE: Mutex<Option<Instant>> = Mutex::new(None);

/// One symbolized frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SymbolFrame {
    /// The address.
    pub ip: usize,
    /// The demangled function name, without the trailing hash.
    pub function: Option<String>,
    /// The source file.
    pub file: Option<String>,
    /// The line.
    pub line: Option<u32>,
    /// The module the address is in and the address as that module's file numbers it, the
    /// address looked up (one byte before a return address, inside its call instruction):
    /// what symbolizing it later, with the
    /// module's debug info, needs (see [`DebugInfo`](crate::DebugInfo)). `None` where the
    /// platform cannot say.
    pub module: Option<ModuleAddress>,
}

/// Symbolizes `ips` (innermost first), as [`Inspector::capture`](crate::Inspector::capture)
/// returns them. Call it on a thread of your own, never in a signal handler; it takes a lock
/// inside `backtrace` and allocates.
///
/// Every address gives at least one frame (with `None`s when nothing is known); an address
/// inside inlined calls gives several, innermost first, all with the same `ip`. The first
/// address is the interrupted instruction and is looked up as is; the others are return
/// addresses, looked up one byte earlier so that they land inside the call instruction
/// (and on its line) rather than after it.
pub fn symbolize(ips: &[usize]) -> Vec<SymbolFrame> {
    if let Ok(mut last) = LAST_USE.lock() {
        *last = Some(Instant::now());
    }
    let mut frames = Vec::with_capacity(ips.len());
    for (i, &ip) in ips.iter().enumerate() {
        let lookup = if i == 0 { ip } else { ip.saturating_sub(1) };
        // `backtrace::resolve` looks up one byte before the address it is given (for return
        // addresses); the module address is the one it looks up.
        let module = locate(lookup.saturating_sub(1));
        let before = frames.len();
        backtrace::resolve(lookup as *mut std::ffi::c_void, |symbol| {
            frames.push(SymbolFrame {
                ip,
                function: symbol.name().map(|n| format!("{n:#}")),
                file: symbol.filename().map(|p| p.display().to_string()),
                line: symbol.lineno(),
                module: module.clone(),
            });
        });
        if frames.len() == before {
            frames.push(SymbolFrame {
                ip,
                function: None,
                file: None,
                line: None,
                module,
            });
        }
    }
    frames
}

/// The module of a run-time address of this process.
fn locate(address: usize) -> Option<ModuleAddress> {
    #[cfg(target_os = "linux")]
    return crate::linux::modules::locate(address);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = address;
        None
    }
}

/// Symbolizes the calling thread's own stack, which runs through this binary and the C
/// library (the thread's start routine), so that later symbolizations find both debug infos
/// loaded: the first costs 20-75 ms, later ones tens of microseconds per stack.
pub fn warm_up() {
    let mut ips = [0usize; 64];
    let mut count = 0;
    backtrace::trace(|frame| {
        ips[count] = frame.ip() as usize;
        count += 1;
        count < ips.len()
    });
    let _ = symbolize(&ips[..count]);
}

/// Drops the debug info symbolization parsed and keeps, when nothing has been symbolized for
/// `idle`, and hands the freed heap back to the system (glibc keeps freed memory in its arenas
/// otherwise). Returns whether it released anything. The next symbolization parses it again
/// (20-75 ms). Call it from the thread that symbolizes, off every hot path.
pub fn release_symbols_if_idle(idle: Duration) -> bool {
    let Ok(mut last) = LAST_USE.lock() else {
        return false;
    };
    match *last {
        Some(at) if at.elapsed() >= idle => {
            *last = None;
            backtrace::clear_symbol_cache();
            crate::trim_heap();
            true
        }
        _ => false,
    }
}

/// A function of this build whose address [`has_line_tables`] looks up.
#[inline(never)]
fn line_table_probe() -> usize {
    // Something the optimizer cannot fold away, so the function keeps a body and an address.
    std::hint::black_box(line_table_probe as fn() -> usize as usize)
}

/// Whether this build's code has line tables (`debug = "line-tables-only"` or more in its
/// cargo profile), in the binary or in a separate debug file where the system looks for one:
/// a function of it symbolizes to a file and a line. Without them, stacks name
/// functions but not lines, and functions inlined into others are not named at all. The
/// answer holds for the whole binary when every crate is built with the same profile (cargo's
/// default). On Linux it reads the binary's `.debug_aranges` (a few reads, nothing kept);
/// where that cannot say (compressed debug sections), it costs one symbolization, which
/// parses the debug info. The answer is the process's, found once and kept: every later call
/// (another pollwatch in the same process) costs nothing. Call it off any hot path.
pub fn has_line_tables() -> bool {
    static FOUND: OnceLock<bool> = OnceLock::new();
    *FOUND.get_or_init(find_line_tables)
}

/// [`has_line_tables`], found.
fn find_line_tables() -> bool {
    let address = line_table_probe();
    #[cfg(target_os = "linux")]
    if let Some(covered) = crate::linux::line_tables::covers(address) {
        // A stripped binary's lines may sit in a separate debug file where the system looks
        // for one (`.gnu_debuglink`, `/usr/lib/debug/.build-id`), which symbolization uses:
        // then one symbolization says.
        let separate = || {
            std::env::current_exe()
                .ok()
                .and_then(|exe| crate::separate_debug_file(&exe))
                .is_some()
        };
        if covered || !separate() {
            return covered;
        }
    }
    symbolize(&[address + 1])
        .iter()
        .any(|f| f.file.is_some() && f.line.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_named_function() -> usize {
        a_named_function as *const () as usize
    }

    #[test]
    fn an_address_of_this_binary_gets_its_function_without_the_hash() {
        warm_up();
        let frames = symbolize(&[a_named_function() + 1]);
        let function = frames[0].function.as_deref().unwrap();
        assert!(function.ends_with("a_named_function"), "{function}");
        assert!(frames[0].file.as_deref().unwrap().ends_with("symbolize.rs"));
        assert!(frames[0].line.is_some());
    }

    #[test]
    fn an_unknown_address_still_gives_a_frame() {
        let frames = symbolize(&[1]);
        assert_eq!(
            frames,
            [SymbolFrame {
                ip: 1,
                function: None,
                file: None,
                line: None,
                module: None,
            }]
        );
        assert!(symbolize(&[]).is_empty());
    }
}
