//! Why a thread is stuck and what to do about it: the cause of a stall from the thread's state,
//! its syscall and the blocking API in its stack, and the fix that fits the cause.

use std::fmt;

/// What the thread was doing, as far as the platform could tell.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Observed {
    pub(crate) run: Run,
    pub(crate) syscall: Option<String>,
    pub(crate) target: Option<TargetKind>,
}

/// The thread's scheduling state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Run {
    /// On a CPU (or runnable), not in a syscall.
    Running,
    /// Asleep in the kernel, waiting for something.
    Waiting,
    /// In uninterruptible IO.
    DiskWait,
    /// Not known (no /proc).
    #[default]
    Unknown,
}

/// What the syscall waits on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TargetKind {
    File,
    Socket,
    Pipe,
    Futex,
    Sleep,
    Other,
}

/// Why a poll held its thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Cause {
    FileIo,
    Sleep,
    Lock,
    Channel,
    Cpu,
    Network,
    BlockOn,
    Process,
    Unknown,
}

impl Cause {
    /// The name used in reports and events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Cause::FileIo => "file_io",
            Cause::Sleep => "sleep",
            Cause::Lock => "lock",
            Cause::Channel => "channel",
            Cause::Cpu => "cpu",
            Cause::Network => "network",
            Cause::BlockOn => "block_on",
            Cause::Process => "process",
            Cause::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cause: the blocking API in the stack when there is one, else the syscall and its
/// target, else the scheduling state.
pub(crate) fn cause(observed: &Observed, api: Option<&str>) -> Cause {
    if let Some(api) = api {
        let by_api = if api.starts_with("futures::executor::block_on") {
            Cause::BlockOn
        } else if api.starts_with("std::fs::") {
            Cause::FileIo
        } else if api.starts_with("std::thread::sleep") {
            Cause::Sleep
        } else if api.starts_with("std::sync::mpsc::") {
            Cause::Channel
        } else if api.starts_with("std::sync::") || api.starts_with("std::thread::JoinHandle") {
            Cause::Lock
        } else if api.starts_with("std::net::") {
            Cause::Network
        } else if api.starts_with("std::process::") {
            Cause::Process
        } else {
            Cause::Unknown
        };
        if by_api != Cause::Unknown {
            return by_api;
        }
    }
    match observed.target {
        Some(TargetKind::File) => return Cause::FileIo,
        Some(TargetKind::Socket) => return Cause::Network,
        Some(TargetKind::Futex) => return Cause::Lock,
        Some(TargetKind::Sleep) => return Cause::Sleep,
        _ => {}
    }
    match observed.run {
        Run::Running if observed.syscall.is_none() => Cause::Cpu,
        Run::DiskWait => Cause::FileIo,
        _ => Cause::Unknown,
    }
}

/// `std::fs` functions that `tokio::fs` offers under the same name.
const TOKIO_FS: [&str; 18] = [
    "read",
    "read_to_string",
    "write",
    "read_dir",
    "metadata",
    "symlink_metadata",
    "copy",
    "rename",
    "remove_file",
    "remove_dir",
    "remove_dir_all",
    "create_dir",
    "create_dir_all",
    "canonicalize",
    "hard_link",
    "read_link",
    "set_permissions",
    "try_exists",
];

/// The fix to apply, as one or two sentences.
pub(crate) fn suggestion(cause: Cause, api: Option<&str>) -> String {
    match cause {
        Cause::FileIo => {
            let same_name = api
                .and_then(|a| a.strip_prefix("std::fs::"))
                .filter(|f| TOKIO_FS.contains(f));
            match same_name {
                Some(f) => format!("Use tokio::fs::{f} or tokio::task::spawn_blocking."),
                None => "Use tokio::fs (tokio::fs::File) or move the file IO into \
                         tokio::task::spawn_blocking."
                    .to_owned(),
            }
        }
        Cause::Sleep => "Use tokio::time::sleep(..).await.".to_owned(),
        Cause::Lock => "Use tokio::sync::Mutex (or RwLock), or keep the std lock's critical \
                        section short and never hold it across slow work."
            .to_owned(),
        Cause::Channel => "Use a tokio::sync channel and .await its recv().".to_owned(),
        Cause::Cpu => "Move the computation to tokio::task::spawn_blocking, \
                       tokio::task::block_in_place or a rayon pool."
            .to_owned(),
        Cause::Network => "Use an async client (tokio::net, hyper, reqwest) or run the blocking \
                           call in tokio::task::spawn_blocking."
            .to_owned(),
        Cause::BlockOn => {
            "Never call block_on inside a task: .await the future instead.".to_owned()
        }
        Cause::Process => "Use tokio::process::Command.".to_owned(),
        Cause::Unknown => "Move the blocking call to tokio::task::spawn_blocking.".to_owned(),
    }
}

/// The fix for a blocking call inside a `Drop` (of `dropping`, when known): a `Drop` cannot
/// `.await`, so the async versions of the blocking call do not fit there.
pub(crate) fn drop_suggestion(dropping: Option<&str>) -> String {
    let what = dropping.map_or_else(|| "the value".to_owned(), |t| format!("`{t}`"));
    format!(
        "Drop cannot .await: move the blocking cleanup of {what} into \
         tokio::task::spawn_blocking, or into an explicit `async fn close()` called before the \
         value goes out of scope."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(run: Run, syscall: Option<&str>, target: Option<TargetKind>) -> Observed {
        Observed {
            run,
            syscall: syscall.map(str::to_owned),
            target,
        }
    }

    #[test]
    fn the_api_decides_when_known() {
        let waiting = observed(Run::Waiting, Some("futex"), Some(TargetKind::Futex));
        assert_eq!(
            cause(&waiting, Some("futures::executor::block_on")),
            Cause::BlockOn
        );
        assert_eq!(cause(&waiting, Some("std::sync::Mutex::lock")), Cause::Lock);
        let reading = observed(Run::Waiting, Some("read"), Some(TargetKind::File));
        assert_eq!(cause(&reading, Some("std::fs::read")), Cause::FileIo);
        assert_eq!(
            cause(&reading, Some("std::net::TcpStream::read")),
            Cause::Network
        );
    }

    #[test]
    fn without_an_api_the_syscall_target_and_state_decide() {
        assert_eq!(cause(&observed(Run::Running, None, None), None), Cause::Cpu);
        assert_eq!(
            cause(
                &observed(Run::Waiting, Some("read"), Some(TargetKind::Socket)),
                None
            ),
            Cause::Network
        );
        assert_eq!(
            cause(
                &observed(
                    Run::Waiting,
                    Some("clock_nanosleep"),
                    Some(TargetKind::Sleep)
                ),
                None
            ),
            Cause::Sleep
        );
        assert_eq!(
            cause(&observed(Run::DiskWait, Some("read"), None), None),
            Cause::FileIo
        );
        assert_eq!(
            cause(&observed(Run::Unknown, None, None), None),
            Cause::Unknown
        );
    }

    #[test]
    fn suggestions_fit_the_cause() {
        assert_eq!(
            suggestion(Cause::FileIo, Some("std::fs::read_to_string")),
            "Use tokio::fs::read_to_string or tokio::task::spawn_blocking."
        );
        assert!(suggestion(Cause::FileIo, Some("std::fs::File::read")).contains("tokio::fs::File"));
        assert!(suggestion(Cause::Sleep, None).contains("tokio::time::sleep"));
        assert!(suggestion(Cause::Lock, None).contains("tokio::sync::Mutex"));
        assert!(suggestion(Cause::Cpu, None).contains("spawn_blocking"));
        assert!(suggestion(Cause::BlockOn, None).contains("Never call block_on"));
        assert!(suggestion(Cause::Network, None).contains("async client"));
    }
}
