//! The loaded modules (the executable and its shared libraries), from the dynamic loader's
//! list (`dl_iterate_phdr`): for an address, the module's file, its GNU build-id, and the
//! address as the module's file numbers it. That is what a stripped build's stack needs to be
//! symbolized later, with its separate debug info.

use std::sync::{Arc, Mutex};

use crate::ModuleAddress;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const NT_GNU_BUILD_ID: u32 = 3;

/// One loaded module.
#[derive(Debug)]
struct Module {
    path: Arc<str>,
    build_id: Option<Arc<str>>,
    /// The load bias: a run-time address minus this is the file's address.
    bias: usize,
    /// Its loaded segments, as run-time address ranges.
    segments: Vec<(usize, usize)>,
}

/// The modules seen so far; read again when an address falls in none of them (a library
/// loaded later).
static MODULES: Mutex<Vec<Module>> = Mutex::new(Vec::new());

/// Where `address` (a run-time address of this process's code) is: its module and the address
/// relative to it. `None` for an address in no loaded module.
pub(crate) fn locate(address: usize) -> Option<ModuleAddress> {
    let mut modules = MODULES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(found) = find(&modules, address) {
        return Some(found);
    }
    *modules = loaded();
    find(&modules, address)
}

fn find(modules: &[Module], address: usize) -> Option<ModuleAddress> {
    let module = modules.iter().find(|m| {
        m.segments
            .iter()
            .any(|&(start, end)| (start..end).contains(&address))
    })?;
    Some(ModuleAddress {
        path: module.path.clone(),
        build_id: module.build_id.clone(),
        address: (address - module.bias) as u64,
    })
}

/// The modules loaded now.
fn loaded() -> Vec<Module> {
    let mut modules: Vec<Module> = Vec::new();
    // SAFETY: `dl_iterate_phdr` calls `collect` once per loaded module with a pointer to a
    // valid `dl_phdr_info`, under the loader's lock, and `data` is the `Vec` above, borrowed
    // mutably for the duration of the call only.
    unsafe {
        libc::dl_iterate_phdr(
            Some(collect),
            (&mut modules as *mut Vec<Module>).cast::<libc::c_void>(),
        );
    }
    modules
}

/// `dl_iterate_phdr`'s callback: reads one module's name, segments and build-id note.
///
/// # Safety
/// `info` points to a valid `dl_phdr_info` whose program headers and loaded segments are
/// mapped, and `data` to a `Vec<Module>`, as `dl_iterate_phdr` guarantees for [`loaded`].
unsafe extern "C" fn collect(
    info: *mut libc::dl_phdr_info,
    _size: libc::size_t,
    data: *mut libc::c_void,
) -> libc::c_int {
    // SAFETY: see the function's contract.
    let (info, modules) = unsafe { (&*info, &mut *data.cast::<Vec<Module>>()) };
    let bias = info.dlpi_addr as usize;
    let headers: &[libc::Elf64_Phdr] = if info.dlpi_phdr.is_null() {
        &[]
    } else {
        // SAFETY: the loader's program headers of this module: `dlpi_phnum` entries.
        unsafe { std::slice::from_raw_parts(info.dlpi_phdr, usize::from(info.dlpi_phnum)) }
    };
    let mut segments = Vec::new();
    let mut build_id = None;
    for header in headers {
        let start = bias.wrapping_add(header.p_vaddr as usize);
        let len = header.p_memsz as usize;
        match header.p_type {
            PT_LOAD => segments.push((start, start.wrapping_add(len))),
            PT_NOTE if build_id.is_none() => {
                // SAFETY: a note segment of a loaded module is mapped readable (it lies inside
                // a loaded segment), `p_memsz` bytes long.
                let notes = unsafe { std::slice::from_raw_parts(start as *const u8, len) };
                build_id = gnu_build_id(notes).map(|id| Arc::from(hex(id)));
            }
            _ => {}
        }
    }
    // SAFETY: `dlpi_name` is null or a NUL-terminated string owned by the loader.
    let name = (!info.dlpi_name.is_null())
        .then(|| unsafe { std::ffi::CStr::from_ptr(info.dlpi_name) }.to_string_lossy())
        .filter(|n| !n.is_empty());
    let path: Arc<str> = match name {
        Some(name) => Arc::from(name.as_ref()),
        // The executable itself has no name in the list.
        None => std::fs::read_link("/proc/self/exe").map_or_else(
            |_| Arc::from("<executable>"),
            |p| Arc::from(p.to_string_lossy().as_ref()),
        ),
    };
    modules.push(Module {
        path,
        build_id,
        bias,
        segments,
    });
    0
}

/// The GNU build-id in a run of ELF notes (`namesz`, `descsz`, `type`, name, desc, each
/// padded to 4 bytes).
pub(crate) fn gnu_build_id(mut notes: &[u8]) -> Option<&[u8]> {
    let word = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let pad = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let name_len = word(notes, 0)? as usize;
        let desc_len = word(notes, 4)? as usize;
        let kind = word(notes, 8)?;
        let name = notes.get(12..12 + name_len)?;
        let desc_at = 12 + pad(name_len);
        let desc = notes.get(desc_at..desc_at + desc_len)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return Some(desc);
        }
        notes = notes.get(desc_at + pad(desc_len)..)?;
    }
    None
}

/// Lower-case hex, as `readelf -n` and the `.build-id` directories write build-ids.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn here() -> usize {
        here as fn() -> usize as usize
    }

    #[test]
    fn an_address_of_this_binary_is_in_this_executable_with_its_build_id() {
        let found = locate(here()).expect("this binary's code is in a loaded module");
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(&*found.path, exe.to_string_lossy());
        let id = found
            .build_id
            .expect("rustc's linker writes a GNU build-id");
        assert!(
            id.len() >= 16 && id.chars().all(|c| c.is_ascii_hexdigit()),
            "{id}"
        );
        // The file's own address of the function lies inside the file's loaded range: not the
        // run-time address (PIE) but one `nm` would show.
        assert!(found.address < here() as u64 || found.address == here() as u64);
    }

    #[test]
    fn an_address_in_no_module_is_none() {
        assert!(locate(8).is_none());
    }

    #[test]
    fn notes_are_read_past_other_notes() {
        let mut notes = Vec::new();
        for (name, kind, desc) in [
            (&b"GNU\0"[..], 1u32, &[9u8; 16][..]),
            (b"GNU\0", 3, &[0xab, 0xcd, 0xef]),
        ] {
            notes.extend((name.len() as u32).to_ne_bytes());
            notes.extend((desc.len() as u32).to_ne_bytes());
            notes.extend(kind.to_ne_bytes());
            notes.extend(name);
            notes.extend(desc);
            while notes.len() % 4 != 0 {
                notes.push(0);
            }
        }
        assert_eq!(gnu_build_id(&notes), Some(&[0xab, 0xcd, 0xef][..]));
        assert_eq!(gnu_build_id(&notes[..20]), None);
    }
}
