//! `banter-quality`: the quality checks of banter-validate as a library — per-sample checks, the
//! duplicate index, the report — and [`gate`], the one quality gate banter-validate, banter-train and
//! banter-chat's learner all use, so one file gets one score whichever tool reads it.

pub mod checks;
pub mod dedup;
pub mod dedup_index;
pub mod gate;
pub mod persona;
pub mod report;
pub mod split;
pub mod text;

pub use checks::{CheckId, Finding, Profile, Settings, Severity};
pub use gate::{Assessed, GATE_MIN_SCORE, GateScore, Judge, assess, gate};
