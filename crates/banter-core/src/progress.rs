//! Progress bars on stderr, drawn only when stderr is a terminal and the user did not ask for quiet.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::CommonArgs;

/// A bar over `len` items (or a spinner when the length is unknown); hidden unless
/// [`CommonArgs::progress_enabled`].
pub fn bar(len: Option<u64>, msg: &str, common: &CommonArgs) -> ProgressBar {
    bar_if(common.progress_enabled(), len, msg)
}

/// Like [`bar`], with the decision made by the caller.
pub fn bar_if(enabled: bool, len: Option<u64>, msg: &str) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let pb = match len {
        Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{msg} [{bar:32}] {human_pos}/{human_len} {per_sec} eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {msg} {human_pos} {per_sec} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    pb.set_message(msg.to_string());
    pb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_bars_are_hidden() {
        assert!(bar_if(false, Some(10), "x").is_hidden());
        let quiet = CommonArgs { quiet: true, ..Default::default() };
        assert!(bar(Some(3), "x", &quiet).is_hidden());
    }
}
