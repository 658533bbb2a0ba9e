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

/// Syscalls whose first argument is the file descriptor they wait on.
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
];

/// Syscalls that sleep for a time.
pub(crate) const SLEEPS: &[&str] = &["nanosleep", "clock_nanosleep"];

/// Syscalls that wait on a futex word (locks, condition variables, thread parking).
pub(crate) const FUTEXES: &[&str] = &["futex", "futex_waitv"];
