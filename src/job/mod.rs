//! Jobs: an accepted request's state (phase, progress, outcome), the
//! registry of this process's jobs, its place in line for a restore slot,
//! and its life from the restore slot to the report (see [`run`]).
//!
//! A job goes `queued → downloading → restoring → neutralizing → finishing →
//! done`, or to `error` from any step. The database with the final name
//! appears only in `finishing`, once the copy is complete and neutralized.

mod cancel;
mod progress;
pub mod run;
mod state;
mod turn;

pub use cancel::CancelError;
pub use state::{Job, JobRequest, Jobs};
pub use turn::{take_turn, Turn};
