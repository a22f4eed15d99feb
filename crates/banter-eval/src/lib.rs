//! banter-eval's library: does a model talk like the person, or know the domain? Held-out loss on the
//! training's own masks, persona fidelity measured without a judge model (char n-gram attribution and style
//! distance, stylometric distributions, diversity and memorised lines), question answering, and a
//! self-contained HTML report. The `banter-eval` binary is a thin layer over it.

pub mod figures;
pub mod html;
pub mod loss;
pub mod model;
pub mod ngram;
pub mod persona;
pub mod qa;
pub mod speeches;
pub mod stats;
pub mod style;

pub use banter_quality::split::{self, Split};
pub use model::{Candidate, LoadSettings};
