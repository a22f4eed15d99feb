//! The engine lives in `banter-engine` (shared with banter-eval).
pub use banter_engine::*;
