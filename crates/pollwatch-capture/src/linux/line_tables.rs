//! Whether an address of this binary's code has line tables, read from the ELF file's
//! `.debug_aranges` (the address ranges each compile unit with debug info covers), without
//! parsing the debug info itself: a few reads of `/proc/self/exe`, no memory kept.
//!
//! A build without line tables for its own code may still carry the standard library's (rustc
//! ships it with them, and `strip = "none"` keeps them), so the presence of `.debug_line`
//! proves nothing; whether the address falls in a covered range does.

use std::fs::File;
use std::os::unix::fs::FileExt;

const SHF_COMPRESSED: u64 = 0x800;
const PT_PHDR: u32 = 6;
const PT_LOAD: u32 = 1;
/// The most of `.debug_aranges` read (a large service has a few MiB).
const MAX_ARANGES: u64 = 64 << 20;

/// `Some(covered)` when `address` of the running binary is (or is not) in a compile unit's
/// ranges; `None` when the file cannot say (not 64-bit little-endian ELF, no or compressed
/// `.debug_aranges`, a read failed).
pub(crate) fn covers(address: usize) -> Option<bool> {
    let exe = File::open("/proc/self/exe").ok()?;
    let header = read(&exe, 0, 64)?;
    if header.get(..4)? != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return None;
    }
    let link_address = (address as u64).checked_sub(load_bias(&exe, &header)?)?;
    let aranges = find_section(&exe, &header, b".debug_aranges")?;
    Some(ranges_cover(&aranges, link_address))
}

fn read(file: &File, offset: u64, len: u64) -> Option<Vec<u8>> {
    let mut buf = vec![0; usize::try_from(len).ok()?];
    file.read_exact_at(&mut buf, offset).ok()?;
    Some(buf)
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Where the binary was loaded relative to its link addresses (non-zero for PIE).
fn load_bias(exe: &File, header: &[u8]) -> Option<u64> {
    let (phoff, phentsize, phnum) = (
        u64_at(header, 32)?,
        u64::from(u16_at(header, 54)?),
        u64::from(u16_at(header, 56)?),
    );
    let table = read(exe, phoff, phentsize * phnum)?;
    // SAFETY: `getauxval` reads the process's auxiliary vector, which never changes.
    let runtime_phdr = unsafe { libc::getauxval(libc::AT_PHDR) };
    let entries = (0..phnum as usize).map(|i| i * phentsize as usize);
    let mut link_phdr = None;
    for at in entries {
        let kind = u32_at(&table, at)?;
        let (offset, vaddr) = (u64_at(&table, at + 8)?, u64_at(&table, at + 16)?);
        if kind == PT_PHDR {
            link_phdr = Some(vaddr);
            break;
        }
        let filesz = u64_at(&table, at + 32)?;
        if kind == PT_LOAD && link_phdr.is_none() && offset <= phoff && phoff < offset + filesz {
            link_phdr = Some(vaddr + (phoff - offset));
        }
    }
    runtime_phdr.checked_sub(link_phdr?)
}

/// The contents of the section named `name`, unless it is compressed.
fn find_section(exe: &File, header: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    let (shoff, shentsize, shnum, shstrndx) = (
        u64_at(header, 40)?,
        u64::from(u16_at(header, 58)?),
        u64::from(u16_at(header, 60)?),
        u64::from(u16_at(header, 62)?),
    );
    let table = read(exe, shoff, shentsize * shnum)?;
    let section = |i: u64| {
        let at = (i * shentsize) as usize;
        Some((
            u32_at(&table, at)?,      // name offset
            u64_at(&table, at + 8)?,  // flags
            u64_at(&table, at + 24)?, // file offset
            u64_at(&table, at + 32)?, // size
        ))
    };
    let (_, _, names_at, names_len) = section(shstrndx)?;
    let names = read(exe, names_at, names_len.min(1 << 20))?;
    for i in 0..shnum {
        let (name_at, flags, offset, size) = section(i)?;
        let found = names.get(name_at as usize..)?.split(|&b| b == 0).next()?;
        if found == name {
            if flags & SHF_COMPRESSED != 0 || size > MAX_ARANGES {
                return None;
            }
            return read(exe, offset, size);
        }
    }
    None
}

/// Whether any address range of the 64-bit `.debug_aranges` sets in `section` covers `address`.
fn ranges_cover(section: &[u8], address: u64) -> bool {
    let mut at = 0;
    while let Some(length) = u32_at(section, at) {
        // 32-bit DWARF only (64-bit DWARF starts with 0xffffffff); a set is its length + 4.
        if length == 0 || length == u32::MAX {
            return false;
        }
        let end = at + 4 + length as usize;
        let (Some(address_size), Some(segment_size)) =
            (section.get(at + 10).copied(), section.get(at + 11).copied())
        else {
            return false;
        };
        if address_size == 8 && segment_size == 0 {
            // Tuples start at the first multiple of twice the address size after the header.
            let mut tuple = (at + 12).next_multiple_of(16);
            while tuple + 16 <= end {
                let (Some(start), Some(len)) = (u64_at(section, tuple), u64_at(section, tuple + 8))
                else {
                    return false;
                };
                if start == 0 && len == 0 {
                    break;
                }
                if start <= address && address < start.saturating_add(len) {
                    return true;
                }
                tuple += 16;
            }
        }
        at = end;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(ranges: &[(u64, u64)]) -> Vec<u8> {
        let mut body = vec![2, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0]; // version, cu offset, sizes, pad
        for &(start, len) in ranges.iter().chain([&(0, 0)]) {
            body.extend(start.to_le_bytes());
            body.extend(len.to_le_bytes());
        }
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend(body);
        out
    }

    #[test]
    fn an_address_inside_a_set_s_range_is_covered() {
        let mut section = set(&[(0x1000, 0x100)]);
        section.extend(set(&[(0x5000, 0x10), (0x6000, 0x10)]));
        assert!(ranges_cover(&section, 0x1000));
        assert!(ranges_cover(&section, 0x10ff));
        assert!(!ranges_cover(&section, 0x1100));
        assert!(ranges_cover(&section, 0x6008));
        assert!(!ranges_cover(&section, 0x7000));
        assert!(!ranges_cover(&[], 0x1000));
        assert!(
            !ranges_cover(&section[..20], 0x1000),
            "a cut section is not read past"
        );
    }

    #[inline(never)]
    fn probe() -> usize {
        std::hint::black_box(probe as fn() -> usize as usize)
    }

    #[test]
    fn this_test_binary_s_own_code_is_covered() {
        // Test builds have debug info (the dev profile's default).
        assert_eq!(covers(probe()), Some(true));
    }
}
