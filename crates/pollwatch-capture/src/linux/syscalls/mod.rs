//! Syscall names, per architecture, from the C library's own numbering.

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
use aarch64::TABLE;

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
use x86_64::TABLE;

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const TABLE: &[(i64, &str)] = &[];

/// The name of syscall `number` on this architecture.
pub(crate) fn name(number: u64) -> Option<&'static str> {
    let number = i64::try_from(number).ok()?;
    TABLE
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// Syscalls whose first argument is the file descriptor they wait on (or work on), so that
/// `/proc/self/fd/<arg0>` names their target.
pub(crate) const FD_FIRST: &[&str] = &[
    "read",
    "write",
    "pread64",
    "pwrite64",
    "readv",
    "writev",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "recvfrom",
    "recvmsg",
    "recvmmsg",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "accept",
    "accept4",
    "connect",
    "fsync",
    "fdatasync",
    "flock",
    "fstat",
    "getdents64",
    "sendfile",
    "splice",
    "copy_file_range",
    "ftruncate",
    "ioctl",
    "fcntl",
    "sync_file_range",
    "lseek",
    "close",
    "fallocate",
    "fstatfs",
    "fadvise64",
    "syncfs",
    "shutdown",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_ctl",
    "io_uring_enter",
];

/// Syscalls that sleep for a time.
pub(crate) const SLEEPS: &[&str] = &["nanosleep", "clock_nanosleep"];

/// Syscalls that wait on a futex word (locks, condition variables, thread parking).
pub(crate) const FUTEXES: &[&str] = &["futex", "futex_waitv"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_blocking_syscalls_have_names() {
        for wanted in [
            "read",
            "write",
            "pread64",
            "pwrite64",
            "readv",
            "writev",
            "openat",
            "close",
            "fsync",
            "fdatasync",
            "recvfrom",
            "recvmsg",
            "sendto",
            "sendmsg",
            "accept4",
            "connect",
            "ppoll",
            "pselect6",
            "epoll_pwait",
            "futex",
            "nanosleep",
            "clock_nanosleep",
            "wait4",
            "flock",
            "fcntl",
            "sendfile",
            "splice",
            "copy_file_range",
            "statx",
            "newfstatat",
            "getdents64",
            "mmap",
            "ioctl",
        ] {
            assert!(
                TABLE.iter().any(|(_, name)| *name == wanted),
                "{wanted} missing"
            );
        }
        assert!(TABLE.len() >= 60);
    }

    #[test]
    fn numbers_and_names_are_unique() {
        for (i, (number, name)) in TABLE.iter().enumerate() {
            for (other_number, other_name) in &TABLE[i + 1..] {
                assert_ne!(number, other_number, "{name} / {other_name}");
                assert_ne!(name, other_name);
            }
        }
    }

    #[test]
    fn lookups_by_number() {
        let read = TABLE.iter().find(|(_, n)| *n == "read").unwrap().0;
        assert_eq!(name(u64::try_from(read).unwrap()), Some("read"));
        assert_eq!(name(999_999), None);
        assert_eq!(name(u64::MAX), None);
    }

    #[test]
    fn classification_tables_only_name_known_syscalls_or_other_architectures() {
        // Names absent here exist on the other architecture (x86_64 has epoll_wait, aarch64
        // does not); a typo would be absent on both and show up on x86_64 CI.
        #[cfg(target_arch = "x86_64")]
        for name in FD_FIRST.iter().chain(SLEEPS).chain(FUTEXES) {
            assert!(TABLE.iter().any(|(_, n)| n == name), "{name}");
        }
    }
}
