//! The debug info the first symbolization parses is kept while stacks keep coming and given
//! back to the system once symbolization has been idle: a service that stalls no more holds
//! none of it. (Its own test binary: the symbol cache is process-wide.)

use std::time::Duration;

use pollwatch_capture::{release_symbols_if_idle, symbolize};

/// This process's anonymous resident memory, KiB.
fn rss_anon_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[inline(never)]
fn a_function_here() -> usize {
    std::hint::black_box(a_function_here as fn() -> usize as usize)
}

fn named_here() -> bool {
    symbolize(&[a_function_here() + 1])[0]
        .function
        .as_deref()
        .is_some_and(|f| f.ends_with("a_function_here"))
}

#[test]
fn parsed_debug_info_is_released_after_idle_and_parsed_again_when_needed() {
    assert!(
        !release_symbols_if_idle(Duration::ZERO),
        "nothing to release before any symbolization"
    );
    let before = rss_anon_kib();
    assert!(named_here());
    let loaded = rss_anon_kib();
    let grew = loaded.saturating_sub(before);
    eprintln!("symbolizing parsed {grew} KiB of debug info");
    assert!(grew > 1024, "the debug info takes memory: {grew} KiB");

    assert!(
        !release_symbols_if_idle(Duration::from_secs(3600)),
        "kept while recently used"
    );
    assert!(release_symbols_if_idle(Duration::ZERO));
    let released = rss_anon_kib();
    eprintln!(
        "after release: {} KiB above the start",
        released.saturating_sub(before)
    );
    // The allocator keeps some pages whatever the amount parsed (about 800 KiB here), so
    // "most" is more than half: a build with only line tables parses under 3 MiB.
    assert!(
        released < before + grew / 2,
        "most of it is given back: {before} KiB before, {loaded} loaded, {released} released"
    );
    assert!(named_here(), "symbolization works again after a release");
    assert!(release_symbols_if_idle(Duration::ZERO));
    let again = rss_anon_kib();
    eprintln!(
        "after a second release: {} KiB above the start",
        again.saturating_sub(before)
    );
    assert!(
        again < released + grew / 4,
        "parsing again and releasing again keeps nothing more: {released} KiB after the first \
         release, {again} after the second"
    );
}
