//! [`Exit`], the process exit codes every banter tool shares (`docs/exit-codes.md`); a leaf module, so the
//! error types can name their codes and [`crate::exit`] can classify errors without an import cycle.

/// A process exit code with a meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(into = "u8")]
pub enum Exit {
    /// 0: success.
    Success,
    /// 1: the run worked but its result fails the policy the user set.
    GateFailed,
    /// 2: the command line or a config file is wrong.
    Usage,
    /// 3: the input data is malformed.
    BadInput,
    /// 4: a file, network or environment problem.
    Io,
    /// 5: the model or its runtime failed.
    Model,
    /// 130: interrupted by Ctrl-C or SIGTERM.
    Interrupted,
}

impl Exit {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::GateFailed => 1,
            Exit::Usage => 2,
            Exit::BadInput => 3,
            Exit::Io => 4,
            Exit::Model => 5,
            Exit::Interrupted => 130,
        }
    }

    /// A short name, as used in `--json` reports.
    pub fn name(self) -> &'static str {
        match self {
            Exit::Success => "success",
            Exit::GateFailed => "gate-failed",
            Exit::Usage => "usage",
            Exit::BadInput => "bad-input",
            Exit::Io => "io",
            Exit::Model => "model",
            Exit::Interrupted => "interrupted",
        }
    }
}

impl From<Exit> for u8 {
    fn from(e: Exit) -> u8 {
        e.code()
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}
