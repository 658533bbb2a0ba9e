//! Mistake 4: CPU-heavy work (here a key-stretching hash, many rounds of SipHash over a
//! buffer, like a password hash) computed inside a task never yields, so it holds the worker
//! for its whole duration. `tokio::task::spawn_blocking` moves it to the blocking pool.

use std::hash::Hasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;

use super::{in_named_task, AppState, HandlerError, Outcome};

/// How much data each round hashes.
const BLOCK_BYTES: usize = 16 * 1024;

/// The hash work, calibrated once at startup to take about a chosen time on this machine.
#[derive(Debug)]
pub struct Hashing {
    data: Vec<u8>,
    rounds: u32,
}

impl Hashing {
    /// Measures this machine and picks the number of rounds that takes about `target`.
    pub fn calibrate(target: Duration) -> Self {
        let data: Vec<u8> = (0..BLOCK_BYTES).map(|i| (i % 251) as u8).collect();
        let mut probe = Self { data, rounds: 16 };
        let started = Instant::now();
        std::hint::black_box(probe.stretch(0));
        let per_round = started.elapsed().as_secs_f64() / f64::from(probe.rounds);
        let rounds = (target.as_secs_f64() / per_round.max(1e-9)).clamp(1.0, 1e7);
        // `as` is exact here: `rounds` is a whole number clamped to 1 ..= 10^7.
        probe.rounds = rounds.round() as u32;
        probe
    }

    /// How many rounds one request hashes.
    pub fn rounds(&self) -> u32 {
        self.rounds
    }

    /// Hashes the data `rounds` times, each round seeded with the previous digest.
    pub fn stretch(&self, seed: u64) -> u64 {
        let mut digest = seed;
        for _ in 0..self.rounds {
            let mut hasher = std::hash::DefaultHasher::new();
            hasher.write_u64(digest);
            hasher.write(&self.data);
            digest = hasher.finish();
        }
        digest
    }
}

/// `GET /bad/cpu`: computes the hash in the task, holding the worker.
pub async fn bad(State(state): State<AppState>) -> Outcome {
    let hashing = Arc::clone(&state.hashing);
    in_named_task("bad_cpu", async move {
        let digest = hashing.stretch(1);
        Ok(format!(
            "bad_cpu: {digest:016x} computed on the worker thread\n"
        ))
    })
    .await
}

/// `GET /good/cpu`: computes the same hash with `spawn_blocking`.
pub async fn good(State(state): State<AppState>) -> Outcome {
    let hashing = Arc::clone(&state.hashing);
    in_named_task("good_cpu", async move {
        let digest = tokio::task::spawn_blocking(move || hashing.stretch(1))
            .await
            .map_err(|e| HandlerError(format!("good_cpu: hashing failed: {e}")))?;
        Ok(format!(
            "good_cpu: {digest:016x} computed on the blocking pool\n"
        ))
    })
    .await
}
