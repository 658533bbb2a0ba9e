//! The poll-time histogram's bucket bounds (features `prometheus` and `metrics`).

/// The upper bounds (`le`) of the `pollwatch_poll_duration_seconds` histogram's buckets, in
/// seconds; `+Inf` follows. (The poll path's `FOLD_BOUNDS_NS` are the same bounds in
/// nanoseconds.)
pub const POLL_DURATION_BUCKETS: [f64; 17] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
