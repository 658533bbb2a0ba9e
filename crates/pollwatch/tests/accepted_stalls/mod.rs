//! Code a test's allow-list accepts: it blocks, knowingly.

use std::time::Duration;

/// Loads a fixture the old way, holding its thread for `d`.
pub fn load_fixture_blocking(d: Duration) {
    std::thread::sleep(d);
}
