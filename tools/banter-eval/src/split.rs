//! `banter-eval split MESSAGES --holdout F -o split.json`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::Exit;
use banter_core::cli::CommonArgs;
use banter_core::jsonl::{JsonlReader, ReadOptions, Source, read_all};
use banter_core::records::Message;
use banter_eval_lib::Split;

use crate::TOOL;

#[derive(Debug, Args)]
pub(crate) struct SplitArgs {
    /// Messages JSONL (`banter-whatsapp parse`), or `-` for stdin.
    messages: String,
    /// The share of the chat's text messages to hold out, the last ones by time.
    #[arg(long, default_value_t = 0.1)]
    holdout: f64,
    /// Write the split here (atomically) instead of stdout.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

pub(crate) fn read_messages(arg: &str) -> anyhow::Result<Vec<Message>> {
    let src = Source::parse(arg);
    Ok(read_all::<Message>(JsonlReader::open(&src, ReadOptions::default())?, TOOL)?)
}

pub(crate) fn run(a: &SplitArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    common.require_data_file(a.output.as_deref(), "split")?;
    let messages = read_messages(&a.messages)?;
    crate::check_output(a.output.as_deref())?;
    let split = Split::of(&messages, a.holdout).map_err(|e| banter_core::Error::usage(e.to_string()))?;
    match &a.output {
        Some(p) if p.as_os_str() != "-" => crate::write_page(p, &split.to_json())?,
        _ => print!("{}", split.to_json()),
    }
    common.say(format!(
        "{TOOL}: {} of {} text messages held out, from {}{}",
        split.held_out,
        split.messages,
        split.cutoff,
        if split.chat.is_empty() { String::new() } else { format!(" (chat \"{}\")", split.chat) }
    ));
    if common.json {
        banter_core::cli::print_report(&banter_core::cli::report(TOOL, Exit::Success, json!({"split": split})))?;
    }
    Ok(Exit::Success)
}
