//! Stopping one thread of another process for as long as it takes to copy its registers and
//! stack: `PTRACE_SEIZE` (which neither stops nor signals it), `PTRACE_INTERRUPT`, `waitpid`
//! for the stop, the registers, `process_vm_readv` of the stack, `PTRACE_DETACH`. Only that
//! thread stops. The kernel restarts a syscall the stop interrupted without the thread seeing
//! `EINTR` (no signal handler runs), and detaches every tracee of a tracer that dies, which
//! then resumes (ptrace(2)), so a killed `pollwatch attach` leaves the thread running.

use std::time::{Duration, Instant};

use crate::Tid;

use super::{RemoteError, StoppedIn};

/// How long a thread may take to stop (a thread in an uninterruptible wait, such as a disk
/// read, or running a long syscall, stops only when it leaves the kernel).
const STOP_TIMEOUT: Duration = Duration::from_millis(200);

/// The most stack copied: deeper frames are not unwound.
pub(crate) const MAX_STACK: usize = 512 * 1024;

const PAGE: usize = 4096;

/// A stopped thread's registers and stack, as they were.
#[derive(Clone, Debug)]
pub(crate) struct Snapshot {
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    /// The frame pointer (`rbp`, `x29`).
    pub(crate) fp: u64,
    /// The link register (`x30`; 0 on x86_64).
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    pub(crate) lr: u64,
    /// The stack from `sp` up, as far as it was mapped, at most [`MAX_STACK`].
    pub(crate) stack: Vec<u8>,
    /// What it stopped in: a syscall, or its own code.
    pub(crate) stopped_in: StoppedIn,
    /// How long the thread was stopped (at most a few microseconds more: the wait for its
    /// stop polls).
    pub(crate) stopped: Duration,
    /// How long it took to stop: the time it went on running in the kernel (a long
    /// syscall) or waiting for a CPU.
    pub(crate) to_stop: Duration,
    /// The CPU time it used meanwhile (per `schedstat`, which lags a running thread by up to
    /// a scheduler tick), when known.
    pub(crate) ran_to_stop: Option<Duration>,
}

impl Snapshot {
    /// The 8 bytes at `address` of the copied stack.
    pub(crate) fn read(&self, address: u64) -> Option<u64> {
        let at = usize::try_from(address.checked_sub(self.sp)?).ok()?;
        let bytes = self.stack.get(at..at.checked_add(8)?)?;
        Some(u64::from_ne_bytes(bytes.try_into().ok()?))
    }
}

/// Stops thread `tid` of process `pid`, copies its registers and its stack up to
/// `stack_end(sp)` (the end of the mapping holding `sp`), and lets it go.
pub(crate) fn snapshot(
    pid: i32,
    tid: Tid,
    stack_end: &dyn Fn(u64) -> Option<u64>,
) -> Result<Snapshot, RemoteError> {
    seize(tid)?;
    let cpu_before = run_ns(pid, tid);
    let interrupted = Instant::now();
    let stop = interrupt(tid).and_then(|()| wait_for_stop(tid));
    // Not stopped yet (`DidNotStop`): the thread stays seized with the interrupt pending, and
    // the caller lets it go once it stops ([`release`]), or the kernel does when this process
    // exits.
    let signal = stop?;
    // The thread stops when it next leaves the kernel: until then it ran on (a long read in
    // the kernel, say). It is stopped from here on.
    let stopped_at = Instant::now();
    let to_stop = stopped_at - interrupted;
    // Read while it is stopped, so its accounting is current.
    let ran_to_stop = run_ns(pid, tid)
        .zip(cpu_before)
        .map(|(after, before)| Duration::from_nanos(after.saturating_sub(before)));
    let copied = registers(tid).map(|regs| {
        let end = stack_end(regs.sp).unwrap_or(regs.sp).max(regs.sp);
        let len = usize::try_from(end - regs.sp)
            .unwrap_or(MAX_STACK)
            .min(MAX_STACK);
        (regs, read_memory(pid, regs.sp, len))
    });
    detach(tid, signal);
    let stopped = stopped_at.elapsed();
    let (regs, stack) = copied?;
    Ok(Snapshot {
        pc: regs.pc,
        sp: regs.sp,
        fp: regs.fp,
        lr: regs.lr,
        stack,
        stopped_in: regs.stopped_in,
        stopped,
        to_stop,
        ran_to_stop,
    })
}

/// The thread's time on a CPU so far (`schedstat`).
fn run_ns(pid: i32, tid: Tid) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/schedstat")).ok()?;
    text.split_whitespace().next()?.parse().ok()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn seize(tid: Tid) -> Result<(), RemoteError> {
    // SAFETY: PTRACE_SEIZE takes a tid and options (none); it changes no memory of ours.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_SEIZE,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if r == 0 {
        return Ok(());
    }
    Err(match errno() {
        libc::ESRCH => RemoteError::ThreadGone,
        libc::EPERM => RemoteError::not_permitted(),
        e => RemoteError::Ptrace {
            what: "PTRACE_SEIZE",
            errno: e,
        },
    })
}

fn interrupt(tid: Tid) -> Result<(), RemoteError> {
    // SAFETY: PTRACE_INTERRUPT on a seized tid; no memory is passed.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_INTERRUPT,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            std::ptr::null_mut::<libc::c_void>(),
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(RemoteError::Ptrace {
            what: "PTRACE_INTERRUPT",
            errno: errno(),
        })
    }
}

/// Waits (polling, up to [`STOP_TIMEOUT`]) for the seized thread to stop; returns the signal
/// to give back when it was a signal that stopped it (0 for the interrupt's own stop).
fn wait_for_stop(tid: Tid) -> Result<i32, RemoteError> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    let spin_until = Instant::now() + Duration::from_millis(1);
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status into `status`, owned here.
        let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
        if r == tid {
            if libc::WIFSTOPPED(status) {
                let event = status >> 16;
                let signal = libc::WSTOPSIG(status);
                // The interrupt's stop is a PTRACE_EVENT_STOP; a signal-delivery stop must
                // pass its signal on when the thread is let go.
                return Ok(if event == 0 { signal } else { 0 });
            }
            return Err(RemoteError::ThreadGone);
        }
        if r < 0 {
            return Err(match errno() {
                libc::ECHILD => RemoteError::ThreadGone,
                e => RemoteError::Ptrace {
                    what: "waitpid",
                    errno: e,
                },
            });
        }
        if Instant::now() >= deadline {
            return Err(RemoteError::DidNotStop);
        }
        // Most stops take microseconds: a sleep would add its own granularity (50 us of timer
        // slack, more on a busy machine) to the time the thread stays stopped. A thread still
        // in the kernel after a millisecond is in a long call: then poll less often.
        if Instant::now() < spin_until {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
}

/// Lets a thread that did not stop in time go once it has stopped: true when it is let go
/// (or gone), false while it still has not stopped.
pub(crate) fn release(tid: Tid) -> bool {
    let mut status = 0;
    // SAFETY: waitpid writes the status into `status`, owned here.
    let r = unsafe { libc::waitpid(tid, &mut status, libc::__WALL | libc::WNOHANG) };
    if r == 0 {
        return false;
    }
    if r == tid && libc::WIFSTOPPED(status) {
        let signal = if status >> 16 == 0 {
            libc::WSTOPSIG(status)
        } else {
            0
        };
        detach(tid, signal);
    }
    true
}

fn detach(tid: Tid, signal: i32) {
    // SAFETY: PTRACE_DETACH of a stopped tracee, with the signal to deliver (0: none).
    unsafe {
        libc::ptrace(
            libc::PTRACE_DETACH,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            signal as usize as *mut libc::c_void,
        );
    }
}

/// The registers of a stopped thread that unwinding and judging read.
#[derive(Clone, Copy, Debug)]
struct Registers {
    pc: u64,
    sp: u64,
    /// The frame pointer (`rbp`, `x29`).
    fp: u64,
    /// The link register (`x30`; 0 on x86_64).
    lr: u64,
    stopped_in: StoppedIn,
}

#[cfg(target_arch = "x86_64")]
fn registers(tid: Tid) -> Result<Registers, RemoteError> {
    // SAFETY: `user_regs_struct` is plain data; PTRACE_GETREGS writes it whole.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    // SAFETY: PTRACE_GETREGS of a stopped tracee writes `regs`, owned here.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGS,
            tid,
            std::ptr::null_mut::<libc::c_void>(),
            &mut regs as *mut libc::user_regs_struct,
        )
    };
    if r != 0 {
        return Err(RemoteError::Ptrace {
            what: "PTRACE_GETREGS",
            errno: errno(),
        });
    }
    // `orig_rax` holds the number of the syscall the thread stopped in (or at the return
    // of); entered from its own code (an interrupt), it is negative.
    let stopped_in = match i64::try_from(regs.orig_rax) {
        Ok(number) => StoppedIn::Syscall(number as u64),
        Err(_) => StoppedIn::OwnCode,
    };
    Ok(Registers {
        pc: regs.rip,
        sp: regs.rsp,
        fp: regs.rbp,
        lr: 0,
        stopped_in,
    })
}

#[cfg(target_arch = "aarch64")]
fn registers(tid: Tid) -> Result<Registers, RemoteError> {
    // SAFETY: `user_regs_struct` is plain data; PTRACE_GETREGSET writes at most its size.
    let mut regs: libc::user_regs_struct = unsafe { std::mem::zeroed() };
    let mut iov = libc::iovec {
        iov_base: (&mut regs as *mut libc::user_regs_struct).cast(),
        iov_len: std::mem::size_of::<libc::user_regs_struct>(),
    };
    // SAFETY: PTRACE_GETREGSET (NT_PRSTATUS) of a stopped tracee writes into `regs` through
    // `iov`, both owned here.
    let r = unsafe {
        libc::ptrace(
            libc::PTRACE_GETREGSET,
            tid,
            libc::NT_PRSTATUS as usize as *mut libc::c_void,
            &mut iov as *mut libc::iovec,
        )
    };
    if r != 0 {
        return Err(RemoteError::Ptrace {
            what: "PTRACE_GETREGSET",
            errno: errno(),
        });
    }
    Ok(Registers {
        pc: regs.pc,
        sp: regs.sp,
        fp: regs.regs[29],
        lr: regs.regs[30],
        // The syscall number sits in a register set of its own here: not read.
        stopped_in: StoppedIn::Unknown,
    })
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn registers(_: Tid) -> Result<Registers, RemoteError> {
    Err(RemoteError::Unsupported)
}

/// `len` bytes of process `pid`'s memory from `from`, one page per iovec, so that a fault
/// stops the copy at a page boundary instead of failing it: what could be read.
pub(crate) fn read_memory(pid: i32, from: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    let mut local = Vec::new();
    let mut remote = Vec::new();
    let mut at = 0usize;
    while at < len {
        // The first piece ends at a page boundary of the remote address.
        let addr = from + at as u64;
        let piece = (PAGE - (addr as usize % PAGE)).min(len - at);
        local.push(libc::iovec {
            iov_base: buf[at..].as_mut_ptr().cast(),
            iov_len: piece,
        });
        remote.push(libc::iovec {
            iov_base: addr as usize as *mut libc::c_void,
            iov_len: piece,
        });
        at += piece;
    }
    let mut done = 0usize;
    // At most IOV_MAX (1024) iovecs per call.
    for (l, r) in local.chunks(1024).zip(remote.chunks(1024)) {
        let want: usize = l.iter().map(|v| v.iov_len).sum();
        // SAFETY: each local iovec points into `buf` (owned here, alive for the call) with a
        // length inside it; the remote iovecs name the other process's memory, which the
        // kernel reads (or fails to) without touching ours.
        let n = unsafe {
            libc::process_vm_readv(
                pid,
                l.as_ptr(),
                l.len() as libc::c_ulong,
                r.as_ptr(),
                r.len() as libc::c_ulong,
                0,
            )
        };
        let n = usize::try_from(n).unwrap_or(0);
        done += n;
        if n < want {
            break;
        }
    }
    buf.truncate(done);
    buf
}
