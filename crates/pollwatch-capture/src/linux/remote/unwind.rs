//! Unwinding a copied stack with the modules' DWARF CFI (`.eh_frame`, indexed by
//! `.eh_frame_hdr`), with framehop, the unwinder samply uses for the same job: from a
//! snapshot's registers and stack bytes to the return addresses, without touching the
//! process. framehop falls back to frame pointers where a module has no unwind information.

use std::ops::Range;
use std::sync::Arc;

use framehop::{ExplicitModuleSectionInfo, FrameAddress, Module, Unwinder as _};
use object::{Object, ObjectSection, ObjectSegment};

use super::maps::Mapping;
use super::ptrace::Snapshot;

/// The most frames one stack gives.
const MAX_FRAMES: usize = 256;

#[cfg(target_arch = "x86_64")]
type Native = framehop::x86_64::UnwinderX86_64<Vec<u8>>;
#[cfg(target_arch = "x86_64")]
type NativeCache = framehop::x86_64::CacheX86_64;
#[cfg(target_arch = "aarch64")]
type Native = framehop::aarch64::UnwinderAarch64<Vec<u8>>;
#[cfg(target_arch = "aarch64")]
type NativeCache = framehop::aarch64::CacheAarch64;

/// A module mapped into the process: where, and how its addresses relate to its file's.
#[derive(Clone, Debug)]
pub(crate) struct LoadedModule {
    /// The file as the process names it.
    pub(crate) path: Arc<str>,
    /// The file to open from here: under `/proc/<pid>/root`, the process's own filesystem
    /// (a container's).
    pub(crate) file: std::path::PathBuf,
    pub(crate) build_id: Option<Arc<str>>,
    /// Where it is mapped.
    pub(crate) range: Range<u64>,
    /// What to subtract from an address in the process to get the file's own address.
    pub(crate) bias: u64,
}

/// The process's modules and the unwinder that knows their unwind tables.
pub(crate) struct Unwinder {
    unwinder: Native,
    cache: NativeCache,
    pub(crate) modules: Vec<LoadedModule>,
}

impl std::fmt::Debug for Unwinder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unwinder")
            .field("modules", &self.modules)
            .finish_non_exhaustive()
    }
}

impl Unwinder {
    /// Reads the unwind tables of every file process `pid` has mapped executable.
    pub(crate) fn new(pid: i32, maps: &[Mapping]) -> Self {
        let mut unwinder = Self {
            unwinder: Native::new(),
            cache: NativeCache::new(),
            modules: Vec::new(),
        };
        let mut paths: Vec<&str> = maps
            .iter()
            .filter(|m| m.executable)
            .filter_map(|m| m.path.as_deref())
            .collect();
        paths.sort_unstable();
        paths.dedup();
        for path in paths {
            let mappings: Vec<&Mapping> = maps
                .iter()
                .filter(|m| m.path.as_deref() == Some(path))
                .collect();
            if let Some((loaded, info)) = load(pid, path, &mappings) {
                unwinder.unwinder.add_module(Module::new(
                    path.to_owned(),
                    loaded.range.clone(),
                    loaded.bias,
                    info,
                ));
                unwinder.modules.push(loaded);
            }
        }
        unwinder
    }

    /// The module holding `address`.
    pub(crate) fn module_of(&self, address: u64) -> Option<&LoadedModule> {
        self.modules.iter().find(|m| m.range.contains(&address))
    }

    /// The frames of `snapshot`, innermost first: the interrupted instruction, then return
    /// addresses, each with the stack pointer of its frame; and whether the walk stopped
    /// before the stack's end (the copy ran out, or a frame could not be unwound).
    pub(crate) fn unwind(&mut self, snapshot: &Snapshot) -> (Vec<(FrameAddress, u64)>, bool) {
        #[cfg(target_arch = "x86_64")]
        let mut regs =
            framehop::x86_64::UnwindRegsX86_64::new(snapshot.pc, snapshot.sp, snapshot.fp);
        #[cfg(target_arch = "aarch64")]
        let mut regs =
            framehop::aarch64::UnwindRegsAarch64::new(snapshot.lr, snapshot.sp, snapshot.fp);
        let mut read = |address: u64| snapshot.read(address).ok_or(());
        let mut address = FrameAddress::from_instruction_pointer(snapshot.pc);
        let mut frames = vec![(address, snapshot.sp)];
        let cut = loop {
            if frames.len() >= MAX_FRAMES {
                break true;
            }
            match self
                .unwinder
                .unwind_frame(address, &mut regs, &mut self.cache, &mut read)
            {
                Ok(Some(ret)) => match FrameAddress::from_return_address(ret) {
                    Some(next) => {
                        address = next;
                        frames.push((next, regs.sp()));
                    }
                    None => break false,
                },
                Ok(None) => break false,
                Err(_) => break true,
            }
        };
        (frames, cut)
    }
}

/// A module's place in the process and its unwind sections, from its file.
fn load(
    pid: i32,
    path: &str,
    mappings: &[&Mapping],
) -> Option<(LoadedModule, ExplicitModuleSectionInfo<Vec<u8>>)> {
    let file_path = std::path::PathBuf::from(format!("/proc/{pid}/root{path}"));
    let file = std::fs::File::open(&file_path).ok()?;
    let cache = object::ReadCache::new(file);
    let object = object::File::parse(&cache).ok()?;
    let first = mappings.iter().min_by_key(|m| m.offset)?;
    // The segment that maps the first mapping's file offset gives the load bias.
    let bias = object.segments().find_map(|segment| {
        let (offset, size) = segment.file_range();
        let aligned = offset & !0xfff;
        (aligned <= first.offset && first.offset < offset + size.max(1)).then(|| {
            let vaddr = segment
                .address()
                .wrapping_sub(offset)
                .wrapping_add(first.offset);
            first.range.start.wrapping_sub(vaddr)
        })
    })?;
    let start = mappings.iter().map(|m| m.range.start).min()?;
    let end = mappings.iter().map(|m| m.range.end).max()?;
    let section = |name: &str| {
        let section = object.section_by_name(name)?;
        let range = section.address()..section.address() + section.size();
        Some((range, section))
    };
    let data =
        |name: &str| section(name).and_then(|(range, s)| Some((range, s.data().ok()?.to_vec())));
    let (eh_frame_svma, eh_frame) = data(".eh_frame").unzip();
    let (eh_frame_hdr_svma, eh_frame_hdr) = data(".eh_frame_hdr").unzip();
    let info = ExplicitModuleSectionInfo {
        base_svma: 0,
        text_svma: section(".text").map(|(range, _)| range),
        got_svma: section(".got").map(|(range, _)| range),
        eh_frame_svma,
        eh_frame,
        eh_frame_hdr_svma,
        eh_frame_hdr,
        debug_frame: data(".debug_frame").map(|(_, data)| data),
        ..Default::default()
    };
    let build_id = object.build_id().ok().flatten().map(|id| {
        id.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
            .into()
    });
    Some((
        LoadedModule {
            path: path.into(),
            file: file_path,
            build_id,
            range: start..end,
            bias,
        },
        info,
    ))
}
