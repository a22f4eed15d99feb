//! Ctrl-C and SIGTERM handling.
//!
//! By default the first signal removes every registered temp file (see [`crate::jsonl::Output`]) and exits
//! with code 130: nothing partial is left, nothing old is lost. A tool with work worth saving (a training
//! run writing a checkpoint, a crawler keeping what it fetched) calls [`set_cooperative`]: the first signal
//! then only raises a flag that the tool polls with [`check`] or [`interrupted`]; a second one exits at once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, Once};

use crate::error::Error;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static COOPERATIVE: AtomicBool = AtomicBool::new(false);
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static INSTALL: Once = Once::new();

/// Installs the handler (idempotent). [`crate::cli::run_main`] calls it.
pub fn install() {
    INSTALL.call_once(|| {
        // If another handler is already installed (a test harness), keep it.
        let _ = ctrlc::set_handler(on_signal);
    });
}

fn on_signal() {
    let first = !INTERRUPTED.swap(true, Ordering::SeqCst);
    if first && COOPERATIVE.load(Ordering::SeqCst) {
        crate::eline!("\ninterrupted: finishing up and saving (press Ctrl-C again to quit at once)");
        return;
    }
    remove_temps();
    std::process::exit(130);
}

/// Removes every registered temp file.
pub fn remove_temps() {
    let temps = match TEMPS.lock() {
        Ok(mut t) => std::mem::take(&mut *t),
        Err(p) => std::mem::take(&mut *p.into_inner()),
    };
    for t in temps {
        // A staged output directory (banter-export) is removed whole.
        if t.is_dir() {
            let _ = std::fs::remove_dir_all(t);
        } else {
            let _ = std::fs::remove_file(t);
        }
    }
}

/// When on, the first Ctrl-C only raises the flag; the tool saves its work and returns
/// [`Error::Interrupted`] itself.
pub fn set_cooperative(on: bool) {
    COOPERATIVE.store(on, Ordering::SeqCst);
}

/// True once Ctrl-C or SIGTERM was received.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Forgets an interrupt that was handled (a chat reply stopped by Ctrl-C: the chat goes on).
pub fn clear() {
    INTERRUPTED.store(false, Ordering::SeqCst);
}

/// `Err(Error::Interrupted)` once Ctrl-C or SIGTERM was received.
pub fn check() -> Result<(), Error> {
    if interrupted() { Err(Error::Interrupted) } else { Ok(()) }
}

/// Registers a temp file to remove if the process is interrupted.
pub fn register_temp(path: &Path) {
    if let Ok(mut t) = TEMPS.lock() {
        t.push(path.to_path_buf());
    }
}

/// Forgets a temp file (it was renamed into place or removed).
pub fn unregister_temp(path: &Path) {
    if let Ok(mut t) = TEMPS.lock() {
        t.retain(|p| p != path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temps_register_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tmp");
        std::fs::write(&p, "x").unwrap();
        register_temp(&p);
        remove_temps();
        assert!(!p.exists());
        assert!(check().is_ok());
    }
}
