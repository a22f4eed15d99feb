//! What both `--verify` checks share: the Python that runs the other runtime (`BANTER_PYTHON`, else
//! `python3`), whether it has the module, and running an embedded script on a JSON request in a temp dir.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ConvertError;

/// A Python that can `import module`, or [`ConvertError::CannotVerify`] saying how to get one.
pub(crate) fn python_with(module: &str, install: &str) -> Result<PathBuf, ConvertError> {
    let py = std::env::var_os("BANTER_PYTHON").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("python3"));
    let probe = Command::new(&py).args(["-c", &format!("import {module}")]).output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return Ok(py);
    }
    Err(ConvertError::CannotVerify(format!(
        "cannot verify: {} cannot import {module} ({install}, or point BANTER_PYTHON at a Python that has it); \
         nothing was written (without --verify the export is kept unchecked)",
        py.display()
    )))
}

/// A temp dir for one check's files.
pub(crate) fn work_dir() -> Result<tempfile::TempDir, ConvertError> {
    tempfile::Builder::new().prefix("banter-verify").tempdir().map_err(|e| ConvertError::io(Path::new("<tmp>"), e))
}

/// Runs `script` with `request` (written as `request.json` in `work`); `what` names the runtime in the
/// error, which quotes the script's last line of stderr.
pub(crate) fn run(
    py: &Path,
    script: &str,
    request: &serde_json::Value,
    work: &Path,
    what: &str,
) -> Result<(), ConvertError> {
    let req_path = work.join("request.json");
    std::fs::write(&req_path, request.to_string()).map_err(|e| ConvertError::io(&req_path, e))?;
    let script_path = work.join("verify.py");
    std::fs::write(&script_path, script).map_err(|e| ConvertError::io(&script_path, e))?;
    let o = Command::new(py).arg(&script_path).arg(&req_path).output().map_err(|e| ConvertError::io(py, e))?;
    if o.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").to_string();
    Err(ConvertError::Mismatch(format!("{what} could not run the export: {last}")))
}

/// A JSON file the script wrote.
pub(crate) fn read_json(p: &Path) -> Result<serde_json::Value, ConvertError> {
    serde_json::from_slice(&std::fs::read(p).map_err(|e| ConvertError::io(p, e))?)
        .map_err(|e| ConvertError::Format(format!("{}: {e}", p.display())))
}
