//! Exit codes shared by every banter tool (`docs/exit-codes.md`), and the mapping from errors to them.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also when a downstream reader closed the pipe) |
//! | 1 | gate failed: the run worked but the result fails the policy (`--min-score`, …) |
//! | 2 | usage error, invalid config file |
//! | 3 | bad input data |
//! | 4 | I/O, network or environment error |
//! | 5 | model or runtime error (libtorch, CUDA, out of memory, NaN loss) |
//! | 130 | interrupted (Ctrl-C), after saving what could be saved |

use std::io;

use crate::error::Error;
pub use crate::exit_code::Exit;

/// An error that knows its own exit code. Tool crates wrap their errors in it (or return it directly)
/// when the code is not implied by a [`banter_core::Error`](Error) or an I/O error in the chain.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct Coded {
    /// The exit code.
    pub code: Exit,
    /// The message.
    pub msg: String,
}

impl Coded {
    /// A new coded error.
    pub fn new(code: Exit, msg: impl Into<String>) -> Self {
        Self { code, msg: msg.into() }
    }
}

/// The exit code for an error: the first cause in its chain that has a known code decides.
///
/// A broken pipe anywhere in the chain is success: `banter-x … | head` must not fail.
pub fn classify(err: &anyhow::Error) -> Exit {
    for cause in err.chain() {
        if let Some(code) = classify_one(cause) {
            return code;
        }
    }
    Exit::Io
}

/// A classifier for an error type defined in a crate above banter-core (banter-model's `ModelError`).
pub type Classifier = fn(&(dyn std::error::Error + 'static)) -> Option<Exit>;

static CLASSIFIERS: std::sync::RwLock<Vec<Classifier>> = std::sync::RwLock::new(Vec::new());

/// Teaches [`classify`] another crate's error type (idempotent). A library with its own error enum
/// registers it once, so its errors travel through `?` with their sources and still get their exit code.
pub fn register(f: Classifier) {
    let mut c = CLASSIFIERS.write().unwrap_or_else(|e| e.into_inner());
    if !c.iter().any(|g| std::ptr::fn_addr_eq(*g, f)) {
        c.push(f);
    }
}

fn classify_one(cause: &(dyn std::error::Error + 'static)) -> Option<Exit> {
    if let Some(e) = cause.downcast_ref::<Error>() {
        return Some(e.exit());
    }
    if let Some(e) = cause.downcast_ref::<Coded>() {
        return Some(e.code);
    }
    if let Some(e) = cause.downcast_ref::<io::Error>() {
        return Some(if e.kind() == io::ErrorKind::BrokenPipe { Exit::Success } else { Exit::Io });
    }
    if cause.downcast_ref::<serde_json::Error>().is_some() {
        return Some(Exit::BadInput);
    }
    if cause.downcast_ref::<clap::Error>().is_some() {
        return Some(Exit::Usage);
    }
    let registered = CLASSIFIERS.read().unwrap_or_else(|e| e.into_inner());
    registered.iter().find_map(|f| f(cause))
}

/// True when the error is (or was caused by) a closed stdout pipe.
pub fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
            || matches!(c.downcast_ref::<Error>(), Some(Error::Io { source, .. }) if source.kind() == io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldError;
    use anyhow::Context;

    #[test]
    fn codes_match_the_documented_table() {
        let all = [
            (Exit::Success, 0),
            (Exit::GateFailed, 1),
            (Exit::Usage, 2),
            (Exit::BadInput, 3),
            (Exit::Io, 4),
            (Exit::Model, 5),
            (Exit::Interrupted, 130),
        ];
        for (e, c) in all {
            assert_eq!(e.code(), c);
        }
    }

    #[test]
    fn classify_walks_the_chain() {
        let e =
            anyhow::Error::new(Error::data("a.jsonl", Some(2), FieldError::record("bad"))).context("reading samples");
        assert_eq!(classify(&e), Exit::BadInput);
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert_eq!(classify(&e), Exit::Success);
        assert!(is_broken_pipe(&e));
        let e = anyhow::Error::new(Coded::new(Exit::Model, "NaN loss"));
        assert_eq!(classify(&e), Exit::Model);
        let e: anyhow::Error = Err::<(), _>(io::Error::from(io::ErrorKind::NotFound)).context("opening x").unwrap_err();
        assert_eq!(classify(&e), Exit::Io);
        let e = anyhow::anyhow!("something unexpected");
        assert_eq!(classify(&e), Exit::Io);
        let e = anyhow::Error::new(serde_json::from_str::<u8>("x").unwrap_err());
        assert_eq!(classify(&e), Exit::BadInput);
    }
}
