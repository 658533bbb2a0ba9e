//! pollwatch's judgement of a stuck thread, shared by the library (judging stalls live) and
//! the `pollwatch` command (judging again a report's stalls once their stacks are symbolized
//! with debug info the running build did not have): from a symbolized stack and what `/proc`
//! showed of the thread, the application's frames, the blocking call site and API, the cause,
//! the fix and the one-line message. No tokio, no threads, no I/O.
//!
//! The modules, bottom layer first: [`classify`] (causes and fixes), [`frames`] (trimming a
//! stack and finding the call site and API), [`in_place`] and [`on_worker`] (what the stack
//! runs in), [`location`] (paths as people read them), [`look`] (one look at a thread),
//! [`verdict`] (a stall's fix and message), [`rejudge`] (a report's stall judged again).

#![warn(missing_docs)]

pub mod classify;
pub mod frames;
pub mod in_place;
pub mod location;
pub mod look;
pub mod on_worker;
pub mod rejudge;
pub mod verdict;
