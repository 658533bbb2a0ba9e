//! `/proc/<pid>/task/<tid>/{stat,wchan,syscall,schedstat}` and `/proc/<pid>/fd`, of this
//! process (`/proc/self`) or, for `pollwatch attach`, of another.

use crate::{RunState, SchedTimes, Syscall, Target, ThreadInCall, ThreadState, Throttling, Tid};

use super::{net, syscalls};

/// Whose `/proc` directory: this process's, or another's (feature `remote`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "remote"), allow(dead_code))]
pub(crate) enum Of {
    This,
    Pid(i32),
}

impl Of {
    fn dir(self) -> String {
        match self {
            Of::This => "/proc/self".to_owned(),
            Of::Pid(pid) => format!("/proc/{pid}"),
        }
    }
}

fn task_file(tid: Tid, name: &str) -> Option<String> {
    task_file_of(Of::This, tid, name)
}

pub(crate) fn task_file_of(of: Of, tid: Tid, name: &str) -> Option<String> {
    std::fs::read_to_string(format!("{}/task/{tid}/{name}", of.dir())).ok()
}

pub(crate) fn thread_state(tid: Tid) -> Option<ThreadState> {
    thread_state_of(Of::This, tid)
}

pub(crate) fn thread_state_of(of: Of, tid: Tid) -> Option<ThreadState> {
    let task_file = |tid, name| task_file_of(of, tid, name);
    let run = parse_stat_state(&task_file(tid, "stat")?)?;
    let wchan = task_file(tid, "wchan")
        .map(|w| w.trim().to_owned())
        .filter(|w| !w.is_empty() && w != "0");
    // The kernel reads a thread's registers only while it sleeps: `syscall` of a thread
    // that is on a CPU reads `running`. A running thread is not in a blocking syscall.
    let syscall = (run != RunState::Running)
        .then(|| task_file(tid, "syscall"))
        .flatten()
        .and_then(|text| parse_syscall(&text))
        .map(|(number, args)| {
            let name = syscalls::name(number);
            let target = target(of, tid, name, &args);
            Syscall {
                number,
                name,
                args,
                target,
            }
        });
    Some(ThreadState {
        run,
        wchan,
        syscall,
    })
}

/// The syscall `tid` sleeps in, from `syscall` alone: `running` (also for a runnable thread)
/// and a thread blocked outside a syscall give `None`.
pub(crate) fn blocked_call(tid: Tid) -> Option<(u64, [u64; 6])> {
    blocked_call_of(Of::This, tid)
}

pub(crate) fn blocked_call_of(of: Of, tid: Tid) -> Option<(u64, [u64; 6])> {
    parse_syscall(&task_file_of(of, tid, "syscall")?)
}

/// From `schedstat` (ns, the first field), or else from `stat`'s `utime + stime` (clock
/// ticks, so a 10 ms resolution) on kernels without schedstats.
pub(crate) fn cpu_time_ns(tid: Tid) -> Option<u64> {
    task_file(tid, "schedstat")
        .and_then(|text| parse_schedstat(&text))
        .or_else(|| {
            let ticks = parse_stat_cpu_ticks(&task_file(tid, "stat")?)?;
            // SAFETY: sysconf only reads a configuration value.
            let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            let per_second = u64::try_from(per_second).ok().filter(|&t| t > 0)?;
            Some(ticks.saturating_mul(1_000_000_000 / per_second))
        })
}

/// Time on a CPU and time waiting on a run queue, from `schedstat`.
pub(crate) fn sched_times(tid: Tid) -> Option<SchedTimes> {
    sched_times_of(Of::This, tid)
}

pub(crate) fn sched_times_of(of: Of, tid: Tid) -> Option<SchedTimes> {
    parse_sched_times(&task_file_of(of, tid, "schedstat")?)
}

/// A `schedstat` line: time on the CPU (ns), time waiting on a run queue (ns), timeslices.
pub(crate) fn parse_sched_times(text: &str) -> Option<SchedTimes> {
    let mut fields = text.split_whitespace();
    let run_ns = fields.next()?.parse().ok()?;
    let wait_ns = fields.next()?.parse().ok()?;
    let timeslices = fields.next().and_then(|f| f.parse().ok()).unwrap_or(0);
    Some(SchedTimes {
        run_ns,
        wait_ns,
        timeslices,
    })
}

/// The process's cgroup v2 `cpu.stat` throttling figures, when that file exists.
pub(crate) fn cgroup_throttling() -> Option<Throttling> {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    let path = cgroup_v2_path(&cgroups)?;
    let stat = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/{}/cpu.stat",
        path.trim_start_matches('/')
    ))
    .ok()?;
    parse_cpu_stat(&stat)
}

/// The cgroup v2 path in `/proc/self/cgroup`: the line `0::<path>`.
pub(crate) fn cgroup_v2_path(cgroups: &str) -> Option<&str> {
    cgroups.lines().find_map(|line| line.strip_prefix("0::"))
}

/// `nr_throttled` and `throttled_usec` of a cgroup v2 `cpu.stat`; `None` when either is
/// missing (no CPU controller enabled for the cgroup).
pub(crate) fn parse_cpu_stat(stat: &str) -> Option<Throttling> {
    let field = |name: &str| {
        stat.lines().find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        })
    };
    Some(Throttling {
        nr_throttled: field("nr_throttled")?,
        throttled_usec: field("throttled_usec")?,
    })
}

/// The first field of a `schedstat` line: time spent on the CPU, ns.
pub(crate) fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().next()?.parse().ok()
}

/// `utime + stime` (fields 14 and 15) of a `stat` line, in clock ticks.
pub(crate) fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    // Fields after the command: 3 state, 4 ppid, ... 14 utime, 15 stime.
    let mut after = stat[stat.rfind(')')? + 1..].split_whitespace().skip(11);
    let utime: u64 = after.next()?.parse().ok()?;
    let stime: u64 = after.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
}

/// The state letter of a `stat` line: the field after the command name, which is in
/// parentheses and may itself contain spaces and parentheses.
pub(crate) fn parse_stat_state(stat: &str) -> Option<RunState> {
    let after = &stat[stat.rfind(')')? + 1..];
    let letter = after.split_whitespace().next()?.chars().next()?;
    Some(RunState::from_letter(letter))
}

/// A `syscall` line: `running`, `-1 sp pc` (blocked outside a syscall), or
/// `nr arg0 .. arg5 sp pc` in hex. Returns the number and the arguments of the last form.
pub(crate) fn parse_syscall(text: &str) -> Option<(u64, [u64; 6])> {
    let mut fields = text.split_whitespace();
    let number: i64 = fields.next()?.parse().ok()?;
    let number = u64::try_from(number).ok()?;
    let mut args = [0u64; 6];
    for arg in &mut args {
        let field = fields.next()?;
        *arg = u64::from_str_radix(field.trim_start_matches("0x"), 16).ok()?;
    }
    Some((number, args))
}

fn target(of: Of, tid: Tid, name: Option<&'static str>, args: &[u64; 6]) -> Option<Target> {
    let name = name?;
    if syscalls::SLEEPS.contains(&name) {
        return Some(Target::Sleep);
    }
    if syscalls::MEMORY_MAP.contains(&name) {
        return Some(Target::MemoryMapLock {
            others: threads_in(of, syscalls::MEMORY_MAP, tid),
        });
    }
    if syscalls::FUTEXES.contains(&name) {
        return Some(Target::Futex { addr: args[0] });
    }
    if !syscalls::FD_FIRST.contains(&name) {
        return None;
    }
    // An `int` argument: the kernel reads the register's low 32 bits.
    let fd = i32::try_from(args[0] & 0xffff_ffff).ok()?;
    let link = std::fs::read_link(format!("{}/fd/{fd}", of.dir())).ok()?;
    let link = link.to_string_lossy().into_owned();
    Some(fd_target(of, fd, link))
}

/// The threads of this process other than `except` asleep in one of `calls`, at most
/// [`MAX_MAP_THREADS`](crate::MAX_MAP_THREADS), by tid. One small read per thread.
fn threads_in(of: Of, calls: &[&str], except: Tid) -> Vec<ThreadInCall> {
    let task_file = |tid, name| task_file_of(of, tid, name);
    let Ok(tasks) = std::fs::read_dir(format!("{}/task", of.dir())) else {
        return Vec::new();
    };
    let mut tids: Vec<Tid> = tasks
        .filter_map(|t| t.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&t| t != except)
        .collect();
    tids.sort_unstable();
    tids.into_iter()
        .filter_map(|tid| {
            let (number, _) = parse_syscall(&task_file(tid, "syscall")?)?;
            let syscall = syscalls::name(number).filter(|n| calls.contains(n))?;
            let name = task_file(tid, "comm").map_or_else(String::new, |c| c.trim().to_owned());
            Some(ThreadInCall { tid, name, syscall })
        })
        .take(crate::MAX_MAP_THREADS)
        .collect()
}

fn fd_target(of: Of, fd: i32, link: String) -> Target {
    if let Some(inode) = link
        .strip_prefix("socket:[")
        .and_then(|rest| rest.strip_suffix(']'))
        .and_then(|inode| inode.parse::<u64>().ok())
    {
        let found = match of {
            Of::This => net::of_fd(fd, inode),
            Of::Pid(pid) => net::of_remote_fd(pid, fd, inode),
        };
        return match found {
            Some(found) => Target::Socket {
                fd,
                protocol: found.protocol,
                local: found.local,
                peer: found.peer,
            },
            None => Target::Socket {
                fd,
                protocol: "socket",
                local: link,
                peer: None,
            },
        };
    }
    if link.starts_with("pipe:[") {
        return Target::Pipe { fd, link };
    }
    if link.starts_with('/') {
        return Target::File { fd, path: link };
    }
    Target::Fd { fd, link }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_state_survives_a_command_with_spaces_and_parentheses() {
        let stat = "4242 (my (odd) proc) S 1 4242 4242 0 -1 4194560 100 0 0 0";
        assert_eq!(parse_stat_state(stat), Some(RunState::Sleeping));
        assert_eq!(parse_stat_state("1 (x) R 0"), Some(RunState::Running));
        assert_eq!(parse_stat_state("1 (x) D 0"), Some(RunState::DiskWait));
        assert_eq!(parse_stat_state("garbage"), None);
    }

    #[test]
    fn cpu_time_from_schedstat_or_stat() {
        assert_eq!(
            parse_schedstat("1234567 89 10\n"),
            Some(1_234_567),
            "schedstat: on-CPU ns, wait ns, slices"
        );
        assert_eq!(parse_schedstat(""), None);
        let stat = "77 (a) b) R 1 77 77 0 -1 4194304 95 0 0 0 12 3 0 0 20 0 1 0 100 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(15));
        assert_eq!(parse_stat_cpu_ticks("77 (x) R 1"), None);
    }

    #[test]
    fn run_and_run_queue_wait_from_schedstat() {
        assert_eq!(
            parse_sched_times("1234567 89 10\n"),
            Some(SchedTimes {
                run_ns: 1_234_567,
                wait_ns: 89,
                timeslices: 10
            })
        );
        assert_eq!(parse_sched_times("1234567\n"), None);
        assert_eq!(parse_sched_times(""), None);
    }

    #[test]
    fn cgroup_v2_throttling_from_cpu_stat() {
        let cgroups = "12:cpu,cpuacct:/old\n0::/system.slice/app.service\n";
        assert_eq!(cgroup_v2_path(cgroups), Some("/system.slice/app.service"));
        assert_eq!(cgroup_v2_path("4:memory:/x\n"), None);
        let stat = "usage_usec 9000\nuser_usec 6000\nsystem_usec 3000\nnr_periods 50\n\
                    nr_throttled 7\nthrottled_usec 123456\n";
        assert_eq!(
            parse_cpu_stat(stat),
            Some(Throttling {
                nr_throttled: 7,
                throttled_usec: 123_456
            })
        );
        // A cgroup without the CPU controller has only the usage lines.
        assert_eq!(parse_cpu_stat("usage_usec 9000\nuser_usec 6000\n"), None);
    }

    #[test]
    fn syscall_lines_in_every_form() {
        assert_eq!(parse_syscall("running\n"), None);
        assert_eq!(parse_syscall("-1 0x7ffc 0x7f00\n"), None);
        let (nr, args) =
            parse_syscall("0 0x9 0x7f9e35dfc260 0x20 0x0 0x0 0x0 0x7f9e35dfc1f8 0x7f9e376fa07d\n")
                .unwrap();
        assert_eq!(nr, 0);
        assert_eq!(args, [9, 0x7f9e35dfc260, 0x20, 0, 0, 0]);
        assert_eq!(
            parse_syscall("202 0x1"),
            None,
            "truncated lines are rejected"
        );
        let (nr, args) =
            parse_syscall("202 0x55c8ca336a38 0x89 0x2 0x0 0x0 0xffffffff 0x7ffd3a0 0x7f00\n")
                .unwrap();
        assert_eq!(
            (nr, args[0], args[1], args[5]),
            (202, 0x55c8ca336a38, 0x89, 0xffffffff)
        );
        assert_eq!(parse_syscall("0 zz 0 0 0 0 0 0 0"), None, "not hex");
    }

    #[test]
    fn threads_in_a_call_are_found_by_their_syscall() {
        let (ready, asleep) = std::sync::mpsc::channel();
        let sleeper = std::thread::Builder::new()
            .name("pw-map-test".into())
            .spawn(move || {
                ready.send(crate::current_tid()).unwrap();
                std::thread::sleep(std::time::Duration::from_secs(2));
            })
            .unwrap();
        let tid = asleep.recv().unwrap();
        // Until it is asleep in the call: the thread's own syscall file says so.
        while !task_file(tid, "syscall")
            .and_then(|t| parse_syscall(&t))
            .is_some_and(|(n, _)| syscalls::SLEEPS.contains(&syscalls::name(n).unwrap_or("")))
        {
            std::thread::yield_now();
        }
        let found = threads_in(Of::This, syscalls::SLEEPS, crate::current_tid());
        let seen = found
            .iter()
            .find(|t| t.tid == tid)
            .expect("the sleeping thread");
        assert_eq!(seen.name, "pw-map-test");
        assert!(syscalls::SLEEPS.contains(&seen.syscall));
        assert!(threads_in(Of::This, syscalls::SLEEPS, tid)
            .iter()
            .all(|t| t.tid != tid));
        sleeper.join().unwrap();
    }

    #[test]
    fn fd_links_become_targets() {
        assert_eq!(
            fd_target(Of::This, 3, "/data/users.json".into()),
            Target::File {
                fd: 3,
                path: "/data/users.json".into()
            }
        );
        assert!(matches!(
            fd_target(Of::This, 4, "pipe:[123]".into()),
            Target::Pipe { .. }
        ));
        assert!(matches!(
            fd_target(Of::This, 5, "anon_inode:[eventpoll]".into()),
            Target::Fd { .. }
        ));
    }
}
