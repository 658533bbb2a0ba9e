//! One look at a stuck thread, described: the raw sample's state and its stack, symbolized,
//! judged by [`pollwatch_judge::look`] (trimmed to the application's frames, the blocking call
//! site and API, what the thread was doing, the cause). Runs on the reporter thread
//! (symbolizing can take milliseconds).

use pollwatch_capture::CaptureError;
use pollwatch_judge::frames::Missing;
use pollwatch_judge::location::Roots;
use pollwatch_judge::look::frames_of;
pub(crate) use pollwatch_judge::look::Look;

use super::RawSample;

/// Whether `look` shows that a worker-level poll's thread is no longer a worker: its stack
/// runs no tokio scheduler. Unknown without a stack: then it is judged a worker.
pub(crate) fn left_the_worker(look: &Look, raw: &RawSample) -> bool {
    raw.worker && look.has_stack() && !look.on_worker
}

/// Symbolizes and judges one raw sample. `site_file` is the stalled task's spawn file
/// (relative, as tokio gives it): `roots` learns the build root from it.
pub(crate) fn look(raw: &RawSample, roots: &mut Roots, site_file: &str) -> Look {
    let mut look = Look::of_state(raw.state.as_ref());
    if let Some(Err(CaptureError::WouldInterrupt(call))) = &raw.capture {
        look.missing = Some(Missing::WouldInterrupt(*call));
    }
    if let Some(Ok(capture)) = &raw.capture {
        look.capture_ns = Some(u64::try_from(capture.took.as_nanos()).unwrap_or(u64::MAX));
        let symbolized = frames_of(pollwatch_capture::symbolize(&capture.ips));
        look.judge_stack(&symbolized, roots, site_file);
    }
    look
}

#[cfg(test)]
pub(crate) mod tests {
    use pollwatch_capture::{
        CaptureError, NoRestart, RawBacktrace, RunState, Syscall, Target, ThreadState,
        Unrestartable,
    };
    use pollwatch_judge::classify::Cause;

    use super::*;
    use crate::poll::PollKey;
    use crate::stall::SampleKind;

    /// A thread waiting for its TCP peer to answer, blocked in `recvfrom`.
    pub(crate) const RECEIVING: Unrestartable = Unrestartable {
        syscall: "recvfrom",
        reason: NoRestart::ReceiveTimeout,
    };

    /// A look, `running_ns` into a stall, at a thread sleeping in `recvfrom` on a TCP socket,
    /// whose capture gave `capture`.
    pub(crate) fn receiving(
        running_ns: u64,
        capture: Option<Result<RawBacktrace, CaptureError>>,
    ) -> RawSample {
        RawSample {
            kind: SampleKind::Resampled,
            key: PollKey {
                slot: 0,
                seq: 1,
                start: 7,
            },
            tid: 1,
            thread: "tokio-rt-worker".into(),
            worker_index: Some(0),
            task_id: 9,
            site: crate::sites::SiteId::from_index(0),
            worker: false,
            started_at_ns: 0,
            running_ns,
            lag_ns: 0,
            state: Some(ThreadState {
                run: RunState::Sleeping,
                wchan: None,
                syscall: Some(Syscall {
                    number: 45,
                    name: Some("recvfrom"),
                    args: [5, 0, 0, 0, 0, 0],
                    target: Some(Target::Socket {
                        fd: 5,
                        protocol: "tcp",
                        local: "127.0.0.1:50000".into(),
                        peer: Some("127.0.0.1:6000".into()),
                    }),
                }),
            }),
            cpu_now_ns: None,
            sched: None,
            sched_first: None,
            capture,
            inner_span: None,
            harm: None,
        }
    }

    #[test]
    fn a_thread_not_signalled_shows_what_it_waits_on_and_why_there_is_no_stack() {
        let raw = receiving(
            30_000_000,
            Some(Err(CaptureError::WouldInterrupt(RECEIVING))),
        );
        let seen = look(&raw, &mut Roots::default(), "src/main.rs");
        assert!(!seen.has_stack());
        assert_eq!(seen.missing, Some(Missing::WouldInterrupt(RECEIVING)));
        assert_eq!(seen.syscall.as_deref(), Some("recvfrom"));
        assert_eq!(
            seen.blocked_on.as_deref(),
            Some("TCP 127.0.0.1:50000 -> 127.0.0.1:6000")
        );
        assert_eq!(seen.cause(), Cause::Network);
        // A capture that failed for another reason has just no stack.
        let raw = receiving(30_000_000, Some(Err(CaptureError::Timeout)));
        let seen = look(&raw, &mut Roots::default(), "src/main.rs");
        assert_eq!(seen.missing, Some(Missing::NoStack));
    }
}
