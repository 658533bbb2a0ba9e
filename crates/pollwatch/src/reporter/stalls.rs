//! Handling the watchdog's messages on the reporter thread.

use std::time::Instant;

use pollwatch_report::Stall;

use crate::shared::Shared;
use crate::stall::book::Warn;
use crate::stall::{describe, Msg, SampleKind};

use super::events;

pub(super) fn handle(shared: &Shared, msg: Msg) {
    let dispatch = shared.dispatch();
    match msg {
        Msg::Sample(raw) => {
            let look = describe::look(&raw);
            let key = (raw.slot, raw.seq);
            let Ok(mut book) = shared.book.lock() else {
                return;
            };
            match raw.kind {
                SampleKind::Detected => {
                    let stall = describe::stall(shared, &raw, &look);
                    // Feature `console`: the site's BlockingSite resource.
                    crate::console::stall_detected(shared, key, raw.site, &stall);
                    let warn = book.detected(key, raw.site, stall, raw.cpu_now_ns, Instant::now());
                    drop(book);
                    if let (Warn::Yes(stall), Some(dispatch)) = (warn, &dispatch) {
                        events::stall(dispatch, &stall);
                    }
                }
                SampleKind::Resampled => {
                    let cpu = book.cpu_since_detection(key, raw.cpu_now_ns);
                    if let Some(stall) = book.live_mut(key) {
                        stall.samples.push(describe::sample(&raw, &look, cpu));
                        stall.duration_ns = stall.duration_ns.max(raw.running_ns);
                        stall.cpu_ns = cpu.or(stall.cpu_ns);
                        if stall.backtrace.is_empty() && !look.backtrace.is_empty() {
                            // The first look had no stack (its capture failed): take this one's.
                            describe::adopt_stack(stall, &look);
                        }
                        // Feature `console`: the site's longest stall so far, its call site.
                        crate::console::running(shared, key, stall);
                    }
                }
            }
        }
        Msg::Ended {
            slot,
            seq,
            total_ns,
            exact,
            cpu_now_ns,
        } => {
            let key = (slot, seq);
            let Ok(mut book) = shared.book.lock() else {
                return;
            };
            let cpu = book.cpu_since_detection(key, cpu_now_ns);
            let settled = book.is_exact(key);
            let ended = book.ended(key, total_ns, |stall| {
                stall.ended = true;
                if exact {
                    stall.duration_ns = total_ns;
                } else if !settled {
                    // The watchdog's estimate, until the poll's own measurement arrives.
                    stall.duration_ns = stall.duration_ns.max(total_ns);
                }
                stall.cpu_ns = cpu.or(stall.cpu_ns);
                refresh_message(stall);
            });
            drop(book);
            // Feature `console`: the site is no longer stalled.
            crate::console::ended(shared, key, total_ns);
            if let (Some(stall), Some(dispatch)) = (ended, &dispatch) {
                events::stall(dispatch, &stall);
            }
        }
        Msg::Stop => {}
    }
}

/// Rewrites a stall's message after its figures changed.
pub(crate) fn refresh_message(stall: &mut Stall) {
    let site = stall
        .site
        .split(" \"")
        .next()
        .unwrap_or_default()
        .to_owned();
    stall.message = describe::message(stall, &site);
}
