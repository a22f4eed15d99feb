//! The trainer's error: every failure keeps its cause as its source, so banter-core's exit-code
//! classifier (which walks the chain) finds the code of the cause — a bad record 3, a usage error 2, an
//! unreadable file 4, libtorch 5, a failed gate 6 — and the message names the file, line and field it did.

use banter_core::exit::Coded;
use banter_model::ModelError;
use banter_model::precision::PrecisionError;
use banter_model::runtime::RuntimeError;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Bad input, usage or I/O, with the file, line and field (banter-core's error).
    #[error("{0}")]
    Core(#[from] banter_core::Error),
    /// An error with its own exit code (a failed quality gate, a refused output folder, …).
    #[error("{0}")]
    Coded(#[from] Coded),
    /// Loading, building or saving the model.
    #[error("{0}")]
    Model(#[from] ModelError),
    /// A precision the device cannot honour.
    #[error("{0}")]
    Precision(#[from] PrecisionError),
    /// A device that is not there.
    #[error("{0}")]
    Runtime(#[from] RuntimeError),
    /// libtorch.
    #[error("libtorch: {0}")]
    Torch(#[from] tch::TchError),
    /// Reading or writing a file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A JSON file banter wrote (a checkpoint's state) that does not parse.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// The process group: the store cannot be reached, a collective failed (exit 4).
    #[error("{0}")]
    Dist(banter_dist::DistError),
}

impl From<banter_dist::DistError> for TrainError {
    fn from(e: banter_dist::DistError) -> Self {
        match e {
            // An incomplete launch is a usage error (exit 2).
            banter_dist::DistError::Env(msg) => TrainError::Core(banter_core::Error::usage(msg)),
            e => TrainError::Dist(e),
        }
    }
}

/// The trainer's result.
pub type Result<T, E = TrainError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_train_error_keeps_its_cause_and_its_exit_code() {
        let e = TrainError::from(banter_core::Error::usage("--lr must be positive"));
        assert!(std::error::Error::source(&e).is_some(), "the cause is the source");
        let any = anyhow::Error::from(e);
        assert_eq!(banter_core::exit::classify(&any), banter_core::Exit::Usage);
        let gate = anyhow::Error::from(TrainError::from(Coded::new(banter_core::Exit::GateFailed, "below 50%")));
        assert_eq!(banter_core::exit::classify(&gate), banter_core::Exit::GateFailed);
    }
}
