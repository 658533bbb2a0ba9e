//! Symbolization from a module's debug info on disk, for addresses captured earlier in another
//! process: what `pollwatch symbolize` uses to give a stripped build's report its lines. The
//! debug info may be the unstripped binary, a separate debug file
//! (`objcopy --only-keep-debug`), or a binary whose split debug info sits beside it in a
//! `.dwp` package; its GNU build-id says whether it belongs to the module the addresses were
//! captured in.

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};

use object::{Object, ObjectSection};

use crate::SymbolFrame;

/// One module's debug info, opened for symbolization.
pub struct DebugInfo {
    path: PathBuf,
    build_id: Option<String>,
    lines: bool,
    loader: addr2line::Loader,
}

impl fmt::Debug for DebugInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DebugInfo")
            .field("path", &self.path)
            .field("build_id", &self.build_id)
            .field("lines", &self.lines)
            .finish_non_exhaustive()
    }
}

/// Why a file cannot serve as debug info.
#[derive(Debug)]
pub enum DebugInfoError {
    /// It cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// It is not an object file this platform reads (ELF), or it is damaged.
    NotAnObject {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
}

impl fmt::Display for DebugInfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DebugInfoError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            DebugInfoError::NotAnObject { path, reason } => {
                write!(
                    f,
                    "{} is not an ELF file with debug info: {reason}",
                    path.display()
                )
            }
        }
    }
}

impl std::error::Error for DebugInfoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DebugInfoError::Read { source, .. } => Some(source),
            DebugInfoError::NotAnObject { .. } => None,
        }
    }
}

/// What an object file says of itself, read without loading its debug info.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectIdentity {
    /// Its GNU build-id in lower-case hex.
    pub build_id: Option<String>,
    /// Whether it has line tables (`.debug_line`, in the file or in a `.dwp` beside it).
    pub lines: bool,
    /// The file its `.gnu_debuglink` names, where a stripped binary's debug info was put.
    pub debuglink: Option<String>,
}

/// Reads an object file's build-id, whether it has line tables and its debug link, reading
/// only its headers and notes.
pub fn identify(path: &Path) -> Result<ObjectIdentity, DebugInfoError> {
    let file = File::open(path).map_err(|source| DebugInfoError::Read {
        path: path.to_owned(),
        source,
    })?;
    let cache = object::ReadCache::new(file);
    let object = object::File::parse(&cache).map_err(|e| DebugInfoError::NotAnObject {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let build_id = object.build_id().ok().flatten().map(hex);
    let lines = object
        .section_by_name(".debug_line")
        .is_some_and(|s| s.size() > 0)
        || dwp_beside(path).is_file();
    let debuglink = object
        .gnu_debuglink()
        .ok()
        .flatten()
        .map(|(name, _crc)| String::from_utf8_lossy(name).into_owned());
    Ok(ObjectIdentity {
        build_id,
        lines,
        debuglink,
    })
}

/// Where a `.dwp` package of `path`'s split debug info is: `app.dwp` beside `app`.
pub fn dwp_beside(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_owned();
    name.push(".dwp");
    path.with_file_name(name)
}

impl DebugInfo {
    /// Opens `path` (an ELF file with debug info: the unstripped binary, or its separate debug
    /// file; a `.dwp` beside it is used too).
    pub fn open(path: &Path) -> Result<Self, DebugInfoError> {
        let identity = identify(path)?;
        let loader = addr2line::Loader::new(path).map_err(|e| DebugInfoError::NotAnObject {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(DebugInfo {
            path: path.to_owned(),
            build_id: identity.build_id,
            lines: identity.lines,
            loader,
        })
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its GNU build-id in lower-case hex.
    pub fn build_id(&self) -> Option<&str> {
        self.build_id.as_deref()
    }

    /// Whether it has line tables.
    pub fn has_lines(&self) -> bool {
        self.lines
    }

    /// Symbolizes one address as the module's file numbers it (a
    /// [`ModuleAddress::address`](crate::ModuleAddress::address), already the address to look
    /// up): the frames there, innermost first, as [`crate::symbolize`] gives them in process
    /// (demangled names without their hash, inlined calls as frames of their own). At least
    /// one frame; `ip` is the address. The frames carry no module.
    pub fn symbolize(&self, address: u64) -> Vec<SymbolFrame> {
        let ip = usize::try_from(address).unwrap_or(usize::MAX);
        let mut frames = Vec::new();
        if let Ok(mut found) = self.loader.find_frames(address) {
            while let Ok(Some(frame)) = found.next() {
                let function = frame
                    .function
                    .as_ref()
                    .and_then(|f| f.raw_name().ok())
                    .map(|name| demangle(&name));
                let (file, line) = frame
                    .location
                    .map_or((None, None), |l| (l.file.map(str::to_owned), l.line));
                frames.push(SymbolFrame {
                    ip,
                    function,
                    file,
                    line,
                    module: None,
                });
            }
        }
        if frames.is_empty() || frames.iter().all(|f| f.function.is_none()) {
            // No DWARF function: the symbol table still names it.
            let function = self.loader.find_symbol(address).map(demangle);
            match frames.last_mut() {
                Some(last) => last.function = function,
                None => frames.push(SymbolFrame {
                    ip,
                    function,
                    file: None,
                    line: None,
                    module: None,
                }),
            }
        }
        frames
    }
}

/// A symbol's name as [`crate::symbolize`] writes it: demangled, without the hash.
fn demangle(name: &str) -> String {
    match rustc_demangle::try_demangle(name) {
        Ok(demangled) => format!("{demangled:#}"),
        Err(_) => name.to_owned(),
    }
}

/// Lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The separate debug file the system's debuggers would use for the object file `path`, when
/// one exists: `/usr/lib/debug/.build-id/xx/rest.debug` by its build-id, else the file its
/// `.gnu_debuglink` names, beside it, in `.debug/` beside it, or under `/usr/lib/debug`
/// with its directory (gdb's order, which the in-process symbolizer follows).
pub fn separate_debug_file(path: &Path) -> Option<PathBuf> {
    let identity = identify(path).ok()?;
    let by_id = identity.build_id.as_deref().and_then(|id| {
        let (first, rest) = (id.get(..2)?, id.get(2..)?);
        Some(PathBuf::from(format!(
            "/usr/lib/debug/.build-id/{first}/{rest}.debug"
        )))
    });
    if let Some(found) = by_id.filter(|p| p.is_file()) {
        return Some(found);
    }
    let name = identity.debuglink?;
    let path = std::fs::canonicalize(path).ok()?;
    let parent = path.parent()?;
    [
        parent.join(&name),
        parent.join(".debug").join(&name),
        Path::new("/usr/lib/debug")
            .join(parent.strip_prefix("/").unwrap_or(parent))
            .join(&name),
    ]
    .into_iter()
    .find(|candidate| *candidate != path && candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn a_named_function() -> usize {
        std::hint::black_box(a_named_function as fn() -> usize as usize)
    }

    #[test]
    fn this_binary_symbolizes_from_its_file_as_in_process() {
        let exe = std::env::current_exe().unwrap();
        let info = DebugInfo::open(&exe).unwrap();
        assert!(info.build_id().is_some_and(|id| id.len() >= 16));
        let live = crate::symbolize(&[a_named_function() + 1]);
        let module = live[0].module.clone().expect("the address's module");
        assert_eq!(module.build_id.as_deref(), info.build_id());
        let offline = info.symbolize(module.address);
        let names = |frames: &[SymbolFrame]| -> Vec<(Option<String>, Option<u32>)> {
            frames
                .iter()
                .map(|f| (f.function.clone(), f.line))
                .collect()
        };
        assert_eq!(names(&offline), names(&live));
        assert!(offline[0]
            .function
            .as_deref()
            .unwrap()
            .ends_with("a_named_function"));
    }

    #[test]
    fn a_file_that_is_not_elf_is_refused_naming_it() {
        let dir = std::env::temp_dir().join(format!("pollwatch-debuginfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notes.txt");
        std::fs::write(&path, "not an object file").unwrap();
        let err = DebugInfo::open(&path).unwrap_err();
        assert!(matches!(err, DebugInfoError::NotAnObject { .. }), "{err}");
        assert!(err.to_string().contains("notes.txt"), "{err}");
        let err = DebugInfo::open(&dir.join("missing")).unwrap_err();
        assert!(matches!(err, DebugInfoError::Read { .. }), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
