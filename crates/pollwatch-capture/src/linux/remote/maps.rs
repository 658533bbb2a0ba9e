//! A process's memory map (`/proc/<pid>/maps`): where its modules and thread stacks are.

use std::ops::Range;

/// One line of `/proc/<pid>/maps`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mapping {
    pub(crate) range: Range<u64>,
    pub(crate) executable: bool,
    /// Offset in the file of `range.start`.
    pub(crate) offset: u64,
    /// The file mapped, as the process names it (`None` for anonymous memory and the
    /// kernel's `[stack]`, `[vdso]`, ... entries).
    pub(crate) path: Option<String>,
}

/// Reads the memory map of process `pid`.
pub(crate) fn read(pid: i32) -> std::io::Result<Vec<Mapping>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps"))?;
    Ok(text.lines().filter_map(parse_line).collect())
}

/// `start-end perms offset dev inode [path]`, in hex where numeric.
pub(crate) fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let range = u64::from_str_radix(start, 16).ok()?..u64::from_str_radix(end, 16).ok()?;
    let perms = fields.next()?;
    let offset = u64::from_str_radix(fields.next()?, 16).ok()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    // The path is the rest of the line, spaces included.
    let path = line
        .splitn(6, char::is_whitespace)
        .nth(5)
        .map(str::trim)
        .filter(|p| p.starts_with('/'))
        .map(|p| p.trim_end_matches(" (deleted)").to_owned());
    Some(Mapping {
        range,
        executable: perms.as_bytes().get(2) == Some(&b'x'),
        offset,
        path,
    })
}

/// The mapping that holds `address`.
pub(crate) fn holding(maps: &[Mapping], address: u64) -> Option<&Mapping> {
    maps.iter().find(|m| m.range.contains(&address))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_paths() {
        let exe = parse_line(
            "55d0c0a00000-55d0c0c21000 r-xp 00021000 fd:01 1234          /srv/my app/bin",
        )
        .unwrap();
        assert_eq!(exe.range, 0x55d0_c0a0_0000..0x55d0_c0c2_1000);
        assert!(exe.executable);
        assert_eq!(exe.offset, 0x21000);
        assert_eq!(exe.path.as_deref(), Some("/srv/my app/bin"));
        let stack =
            parse_line("7ffd3a000000-7ffd3a021000 rw-p 00000000 00:00 0   [stack]").unwrap();
        assert!(!stack.executable);
        assert_eq!(stack.path, None);
        let anon = parse_line("7f0000000000-7f0000200000 rw-p 00000000 00:00 0").unwrap();
        assert_eq!(anon.path, None);
        let gone = parse_line("1000-2000 r-xp 0 fd:01 9 /tmp/old (deleted)").unwrap();
        assert_eq!(gone.path.as_deref(), Some("/tmp/old"));
        assert_eq!(parse_line("garbage"), None);
        assert_eq!(
            holding(std::slice::from_ref(&exe), 0x55d0_c0a0_0001),
            Some(&exe)
        );
        assert_eq!(holding(&[exe], 0x10), None);
    }
}
