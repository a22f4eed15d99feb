//! What both `--verify` checks share: the Python that runs the other runtime, whether it has the module, and
//! running an embedded script on a JSON request in a temp dir.
//!
//! The Python is found as the binaries find libtorch, with no environment variable needed: `BANTER_PYTHON`
//! when set, else the virtual environment whose `torch` provides the libtorch this process loaded (the
//! project's `.venv`, where `make` installs onnxruntime and gguf), else `python3` on the `PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::ConvertError;

/// The Python of the virtual environment that holds the loaded libtorch (`…/lib/python3.X/site-packages/
/// torch/lib/libtorch_cpu.so` → `…/bin/python`), read from `/proc/self/maps`.
fn venv_python() -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    let lib = maps.lines().filter_map(|l| l.split_whitespace().nth(5)).find(|p| p.ends_with("/libtorch_cpu.so"))?;
    // libtorch_cpu.so → torch/lib → torch → site-packages → python3.X → lib → the environment.
    let env = Path::new(lib).ancestors().nth(6)?;
    ["bin/python", "bin/python3"].iter().map(|b| env.join(b)).find(|p| p.is_file())
}

/// The Pythons to try, in order.
fn candidates() -> Vec<PathBuf> {
    if let Some(p) = std::env::var_os("BANTER_PYTHON").filter(|p| !p.is_empty()) {
        return vec![PathBuf::from(p)];
    }
    venv_python().into_iter().chain([PathBuf::from("python3")]).collect()
}

/// A Python that can `import module`, or [`ConvertError::CannotVerify`] saying how to get one.
pub(crate) fn python_with(module: &str, install: &str) -> Result<PathBuf, ConvertError> {
    let tried = candidates();
    for py in &tried {
        let probe = Command::new(py).args(["-c", &format!("import {module}")]).output();
        if probe.as_ref().is_ok_and(|o| o.status.success()) {
            return Ok(py.clone());
        }
    }
    let names: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(ConvertError::CannotVerify(format!(
        "cannot verify: no Python here can import {module} (tried {}; {install}, or point BANTER_PYTHON at a \
         Python that has it); nothing was written (without --verify the export is kept unchecked)",
        names.join(", ")
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
