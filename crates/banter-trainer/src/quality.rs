//! The data-quality gate before training (MTN Sails' 50% rule), scored as banter-validate scores it.

use banter_core::Exit;
use banter_core::exit::Coded;
use banter_core::records::Sample;
use banter_quality::{GATE_MIN_SCORE, Profile, Settings};

use crate::TOOL;
use crate::settings::Console;

/// MTN's gate, as banter-validate scores it (duplicates included): below 0.5 training is refused unless
/// `force`. Returns the score.
pub fn quality_gate(force: bool, samples: &[Sample], console: Console) -> crate::Result<f64> {
    let g = banter_quality::gate(samples, &Settings::new(Profile::Chat));
    let score = g.score();
    if g.passes(GATE_MIN_SCORE) {
        console.say(format!("{TOOL}: data quality {:.1}% of {} samples", score * 100.0, samples.len()));
        return Ok(score);
    }
    let msg = format!("data quality {:.1}% ({}) is below the 50% gate", score * 100.0, g.summary());
    if !force {
        return Err(
            Coded::new(Exit::GateFailed, format!("{msg}; run banter-validate --filter, or pass --force")).into()
        );
    }
    console.say(format!("{TOOL}: warning: {msg} (--force)"));
    Ok(score)
}
