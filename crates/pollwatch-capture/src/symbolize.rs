//! Symbolization of captured addresses, off every hot path.

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
}

/// Symbolizes `ips` (innermost first). Inlined calls expand to several frames, innermost
/// first. Addresses after the first are return addresses, so they are looked up one byte
/// earlier, inside the call instruction.
pub fn symbolize(ips: &[usize]) -> Vec<SymbolFrame> {
    let mut frames = Vec::with_capacity(ips.len());
    for (i, &ip) in ips.iter().enumerate() {
        let lookup = if i == 0 { ip } else { ip.saturating_sub(1) };
        let before = frames.len();
        backtrace::resolve(lookup as *mut std::ffi::c_void, |symbol| {
            frames.push(SymbolFrame {
                ip,
                function: symbol.name().map(|n| format!("{n:#}")),
                file: symbol.filename().map(|p| p.display().to_string()),
                line: symbol.lineno(),
            });
        });
        if frames.len() == before {
            frames.push(SymbolFrame {
                ip,
                function: None,
                file: None,
                line: None,
            });
        }
    }
    frames
}

/// Symbolizes one address of this binary and one of the C library, so that later
/// symbolizations find their debug info loaded.
pub fn warm_up() {
    let here = warm_up as *const () as usize;
    let _ = symbolize(&[here]);
    let mut caller = 0usize;
    backtrace::trace(|frame| {
        caller = frame.ip() as usize;
        caller == here
    });
    let _ = symbolize(&[caller]);
}
