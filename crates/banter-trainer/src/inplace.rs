//! Retraining in place (`--model M -o M`, or `--adapter A -o A`), as MTN Sails retrains into its existing
//! output: the run trains from M and writes to a staging folder beside it (`.M.retrain`); only a finished run
//! replaces M, in one step ([`banter_core::dirswap::replace_dir`]). Until then M is untouched, so a crash or
//! Ctrl-C leaves the old model whole, and the same command run again resumes from the staging folder's
//! checkpoints (the run directory's fingerprint rules apply to it).

use std::path::{Path, PathBuf};

use banter_core::Error;
use banter_core::inputs::canonical;

use crate::settings::TrainSettings;

/// The folder `s` retrains in place: its output when that is its model or its adapter (a local folder).
/// A LoRA run writing its adapter over its own base model is refused: the base would be lost.
pub fn target(s: &TrainSettings) -> Result<Option<PathBuf>, Error> {
    let out = canonical(&s.output);
    let same = |d: &Option<PathBuf>| d.as_ref().is_some_and(|d| d.is_dir() && canonical(d) == out);
    if same(&s.lora.adapter) {
        return Ok(Some(s.output.clone()));
    }
    if same(&s.model) {
        if s.lora.enabled || s.lora.adapter.is_some() {
            return Err(Error::usage_hint(
                format!("{}: a LoRA adapter cannot replace the model it adapts", s.output.display()),
                "write the adapter to another folder (-o ADAPTER), or retrain the whole model in place without --lora",
            ));
        }
        return Ok(Some(s.output.clone()));
    }
    Ok(None)
}

/// Where a retrain of `dest` is staged: `.NAME.retrain` beside it (a fixed name, so a rerun finds it).
pub fn staging(dest: &Path) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "model".into());
    dest.with_file_name(format!(".{name}.retrain"))
}

/// Puts the finished run in `staged` in place of `dest`.
pub fn publish(staged: &Path, dest: &Path) -> Result<(), Error> {
    banter_core::dirswap::replace_dir(staged, dest).map_err(|e| Error::io(dest.display(), e))
}

/// Removes a staging folder that holds no checkpoint (a run that failed before its first one).
pub fn discard_if_empty(staged: &Path) {
    if staged.is_dir() && crate::output::checkpoints(staged).is_empty() {
        let _ = std::fs::remove_dir_all(staged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_staging_folder_is_a_fixed_hidden_sibling() {
        assert_eq!(staging(Path::new("models/sara")), PathBuf::from("models/.sara.retrain"));
        assert_eq!(staging(Path::new("/abs/m")), PathBuf::from("/abs/.m.retrain"));
    }
}
