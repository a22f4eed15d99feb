//! What every tool's `main` shares: the common flags, logging set-up, the error printer and exit-code
//! mapping ([`run_main`]), `--json` reports, and shell completions / man pages.

use std::io::{self, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, ValueEnum};
use serde_json::{Map, Value};

use crate::error::Error;
use crate::exit::{self, Coded, Exit};
use crate::interrupt;

/// Flags every tool takes.
#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// Print nothing on stderr but errors.
    #[arg(short, long, global = true, help_heading = "Common options")]
    pub quiet: bool,
    /// More detail on stderr (-v debug, -vv trace; RUST_LOG overrides).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = "Common options")]
    pub verbose: u8,
    /// Never draw progress bars (they are drawn only when stderr is a terminal anyway).
    #[arg(long, global = true, help_heading = "Common options")]
    pub no_progress: bool,
    /// Print a machine-readable report (JSON) on stdout instead of the human summary.
    #[arg(long, global = true, help_heading = "Common options")]
    pub json: bool,
    /// Print a shell completion script or a man page and exit.
    #[arg(long, value_name = "WHAT", global = true, hide = true)]
    pub generate: Option<Generate>,
}

impl CommonArgs {
    /// True when progress bars may be drawn: stderr is a terminal, and neither `--quiet` nor
    /// `--no-progress` was given.
    pub fn progress_enabled(&self) -> bool {
        !self.quiet && !self.no_progress && io::stderr().is_terminal()
    }

    /// With `--json`, the report owns stdout: refuses a data stream there too (`what` names the data).
    pub fn require_data_file(&self, output: Option<&std::path::Path>, what: &str) -> Result<(), Error> {
        if self.json && output.is_none_or(|p| p.as_os_str() == "-") {
            return Err(Error::usage_hint(
                format!("--json prints the report on stdout, where the {what} would go"),
                "write them to a file with -o FILE",
            ));
        }
        Ok(())
    }

    /// Prints a human summary line on stderr unless `--quiet`.
    pub fn say(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            crate::eline!("{}", msg.as_ref());
        }
    }
}

/// The `-o/--output` flag of tools that write data.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Write the data here (atomically: temp file, then rename) instead of stdout; `-` is stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// What `--generate` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// bash completions.
    CompleteBash,
    /// zsh completions.
    CompleteZsh,
    /// fish completions.
    CompleteFish,
    /// A man page (roff).
    Man,
}

/// Handles `--generate` for the tool's clap definition `C`; returns true when it printed something.
pub fn generate<C: CommandFactory>(what: Option<Generate>) -> anyhow::Result<bool> {
    let Some(what) = what else { return Ok(false) };
    let mut cmd = C::command();
    let name = cmd.get_name().to_string();
    let mut out = io::stdout().lock();
    match what {
        Generate::CompleteBash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut out),
        Generate::CompleteZsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut out),
        Generate::CompleteFish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut out),
        Generate::Man => clap_mangen::Man::new(cmd).render(&mut out)?,
    }
    out.flush()?;
    Ok(true)
}

/// Sets up `tracing` on stderr: warnings by default, `-v` debug, `-vv` trace, `-q` errors only;
/// `RUST_LOG` overrides.
pub fn init_logging(common: &CommonArgs) {
    let level = match (common.quiet, common.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Runs a tool's body: installs the Ctrl-C handler, prints any error as
/// `tool: error: message` (plus `hint: …`), and turns the outcome into the documented exit code.
/// A closed stdout pipe exits 0 silently.
pub fn run_main(tool: &str, body: impl FnOnce() -> anyhow::Result<Exit>) -> ExitCode {
    interrupt::install();
    match body() {
        Ok(code) => code.into(),
        Err(err) => {
            let code = exit::classify(&err);
            if !exit::is_broken_pipe(&err) {
                print_error(tool, &err);
            }
            code.into()
        }
    }
}

/// Prints `tool: error: outer: cause: cause`, then `hint: …` after a blank line if the error has one.
pub fn print_error(tool: &str, err: &anyhow::Error) {
    let mut stderr = io::stderr().lock();
    // Each cause once: an error whose message already quotes its source (`path: os error`) does not get
    // the source appended a second time.
    let mut msg = err.to_string();
    for cause in err.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    let _ = writeln!(stderr, "{tool}: error: {msg}");
    let hint = err.chain().find_map(|c| c.downcast_ref::<Error>().and_then(Error::hint));
    if let Some(hint) = hint {
        let _ = writeln!(stderr, "\nhint: {hint}");
    }
}

/// A `--json` report: `{"tool","version","exit_code", …fields}`.
pub fn report(tool: &str, code: Exit, fields: Value) -> Value {
    let mut m = Map::new();
    m.insert("tool".into(), tool.into());
    m.insert("version".into(), crate::VERSION.into());
    m.insert("exit_code".into(), code.code().into());
    if let Value::Object(f) = fields {
        m.extend(f);
    }
    Value::Object(m)
}

/// Prints a JSON report on stdout, one line.
pub fn print_report(report: &Value) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, report)?;
    writeln!(out)?;
    out.flush()?;
    Ok(())
}

/// The answer of a tool whose issue is not built yet: says so plainly and exits 2. It never pretends
/// to work.
pub fn not_built(tool: &str, issue: u32) -> anyhow::Result<Exit> {
    Err(Coded::new(
        Exit::Usage,
        format!("{tool} is not built yet (tracked in issue #{issue}); only --help and --version work"),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn report_has_the_common_fields_first() {
        let r = report("banter-x", Exit::GateFailed, json!({"counts": {"total": 3}}));
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!(r#"{{"tool":"banter-x","version":"{}","exit_code":1,"counts":{{"total":3}}}}"#, crate::VERSION)
        );
    }

    #[test]
    fn not_built_is_a_usage_error() {
        let e = not_built("banter-x", 9).unwrap_err();
        assert_eq!(exit::classify(&e), Exit::Usage);
        assert!(e.to_string().contains("not built yet"));
    }
}
