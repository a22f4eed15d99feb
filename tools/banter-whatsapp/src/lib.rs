//! `banter-whatsapp`: parse WhatsApp chat exports of every locale and OS into messages, and build persona
//! training samples from them.

mod dates;
pub mod format;
pub mod header;
pub mod input;
pub mod locale;
pub mod parse;
pub use banter_quality::persona as samples;
mod urls;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use banter_core::cli::{self, CommonArgs};
use banter_core::exit::Coded;
use banter_core::jsonl::{JsonlReader, JsonlWriter, ReadOptions, Source};
use banter_core::records::{Message, Record, Sample, SampleBody};
use banter_core::{ChatTemplate, Error, Exit};

use parse::DateOrder;
use samples::ContextMode;

const EXAMPLES: &str = "\
Examples:
  banter-whatsapp parse 'WhatsApp Chat with Family.zip' -o messages.jsonl
  banter-whatsapp parse chat.txt --date-order mdy --json -o messages.jsonl > report.json
  banter-whatsapp samples messages.jsonl --list-authors
  banter-whatsapp samples chat.zip --persona 'Sara' -o persona.jsonl
  banter-whatsapp samples chat.txt --persona 'Sara' --context retrieve --template asimbot | banter-validate -";

/// Parse WhatsApp chat exports of every locale and OS into messages and persona training samples.
#[derive(Debug, Parser)]
#[command(name = "banter-whatsapp", version, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// An export (.txt or .zip) → messages JSONL.
    Parse(ParseArgs),
    /// An export or messages JSONL → one training sample per reply of the persona.
    Samples(SamplesArgs),
}

/// How to read an export.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The chat's name in the records (default: from the file name).
    #[arg(long, value_name = "NAME")]
    pub chat: Option<String>,
    /// Order of the date's fields (default: decided from the file).
    #[arg(long, value_enum, value_name = "ORDER")]
    pub date_order: Option<DateOrder>,
    /// The header written out, strftime-like, for a shape banter cannot infer: `%d %m %y %Y %H %I %M %S %p`,
    /// a space for any spaces, other characters as written (e.g. `%d.%m.%y, %H:%M - `).
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
    /// Largest chat a .zip may inflate to (K/M/G suffixes); a larger one, or one inflating over 200× its
    /// compressed size, is refused as a zip bomb.
    #[arg(long, value_name = "SIZE", default_value = "512M", value_parser = banter_core::util::parse_size)]
    pub max_inflated: u64,
}

/// `parse`.
#[derive(Debug, Args)]
pub struct ParseArgs {
    /// The export: WhatsApp's .txt, or the .zip it shares; `-` reads stdin.
    #[arg(value_name = "EXPORT")]
    pub input: String,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Write messages here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Print the authors with their message counts and exit.
    #[arg(long)]
    pub list_authors: bool,
}

/// `samples`.
#[derive(Debug, Args)]
pub struct SamplesArgs {
    /// An export (.txt/.zip) or messages JSONL from `parse`; `-` reads stdin.
    #[arg(value_name = "INPUT")]
    pub input: String,
    /// The person whose replies are learnt, exactly as the export spells the name (see --list-authors).
    #[arg(long, value_name = "NAME", required_unless_present = "list_authors")]
    pub persona: Option<String>,
    /// Print the authors with their message counts and exit.
    #[arg(long)]
    pub list_authors: bool,
    /// Context: the last messages (window) or the most similar of the last --top-k (retrieve, BM25).
    #[arg(long, value_enum, default_value_t = ContextMode::Window)]
    pub context: ContextMode,
    /// window: how many turns of context.
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub window: usize,
    /// retrieve: candidate turns.
    #[arg(long, value_name = "N", default_value_t = 12)]
    pub top_k: usize,
    /// retrieve: turns kept (the message answered included).
    #[arg(long, value_name = "N", default_value_t = 6)]
    pub select_k: usize,
    /// Merge one speaker's consecutive messages within this time (e.g. 90s, 5m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub merge_within: i64,
    /// A new conversation starts after this much silence; context never crosses it.
    #[arg(long, value_name = "DURATION", default_value = "6h", value_parser = parse_duration)]
    pub gap: i64,
    /// Output format: chat samples (`{"messages"}`, names A, B, …) or Asimbot text (`<USR_A> … <SYS> …`).
    #[arg(long, value_name = "TEMPLATE", default_value = "chat")]
    pub template: String,
    /// Keep media placeholders as text.
    #[arg(long)]
    pub keep_media: bool,
    /// Keep "this message was deleted".
    #[arg(long)]
    pub keep_deleted: bool,
    /// Keep system lines (joins, subject changes) as context.
    #[arg(long)]
    pub keep_system: bool,
    /// Replace phone numbers and emails with [PHONE] / [EMAIL].
    #[arg(long)]
    pub redact_pii: bool,
    /// Remove web addresses from messages (as Asimbot did); a message that was only links is dropped.
    #[arg(long)]
    pub strip_urls: bool,
    #[command(flatten)]
    pub export: ExportArgs,
    /// Write samples here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
}

/// Parses `90s`, `5m`, `6h`, `1d` (a bare number is minutes) into seconds.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last() {
        Some((i, 's')) => (&s[..i], 1),
        Some((i, 'm')) => (&s[..i], 60),
        Some((i, 'h')) => (&s[..i], 3600),
        Some((i, 'd')) => (&s[..i], 86_400),
        _ => (s, 60),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("not a duration: \"{s}\" (use 90s, 5m, 6h or 1d)"))?;
    if n < 0.0 {
        return Err("a duration cannot be negative".into());
    }
    Ok((n * mult as f64).round() as i64)
}

/// Runs the tool.
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    if cli::generate::<Cli>(cli.common.generate)? {
        return Ok(Exit::Success);
    }
    cli::init_logging(&cli.common);
    match &cli.command {
        Command::Parse(a) => run_parse(a, &cli.common),
        Command::Samples(a) => run_samples(a, &cli.common),
    }
}

impl ExportArgs {
    /// `--format`, compiled (a usage error, exit 2, names what is wrong with it).
    pub fn compiled_format(&self) -> anyhow::Result<Option<format::Format>> {
        self.format.as_deref().map(format::Format::new).transpose().map_err(|e| Coded::new(Exit::Usage, e).into())
    }
}

/// The error for a file in which no header was found: what was tried and what to do.
fn no_headers(path: &str, lines: u64, with_format: bool) -> anyhow::Error {
    let msg = if with_format {
        format!("{path}: no line of the {lines} starts with the header --format describes")
    } else {
        format!(
            "{path}: no WhatsApp message headers found in {lines} lines. Tried: `DATE, TIME - ` (Android), \
             `[DATE, TIME] ` (iOS), `DATE TIME: `/`; `, `DATE - TIME`, time before date, and no separator before \
             `Author: `, with dates as d/m/y, m/d/y, y/m/d, y/d/m, m/y/d or d/y/m (`/ . - ,`), 12- and \
             24-hour clocks, in any digits. If this is a chat export, describe its header with --format (e.g. \
             --format '%d.%m.%y, %H:%M - ')"
        )
    };
    Coded::new(Exit::BadInput, msg).into()
}

/// Reads and parses an export.
pub fn parse_export(path: &str, args: &ExportArgs) -> anyhow::Result<(Vec<Message>, parse::ParseReport)> {
    let export = input::read(path, args.max_inflated)?;
    let chat = args.chat.clone().unwrap_or(export.chat);
    let lines = input::lines(&export.text);
    let format = args.compiled_format()?;
    let mut messages = Vec::new();
    let rep = parse::parse_each_with(&lines, &chat, args.date_order, format.as_ref(), |m| {
        messages.push(m);
        Ok::<(), std::convert::Infallible>(())
    })
    .unwrap_or_else(|e| match e {});
    if messages.is_empty() {
        return Err(no_headers(path, rep.lines, format.is_some()));
    }
    Ok((messages, rep))
}

/// One line per author; a closed stdout (`| head -1`) is a broken pipe, which exits 0, never a panic.
fn print_authors(authors: &[(String, u64)]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    for (a, n) in authors {
        writeln!(out, "{n}\t{a}")?;
    }
    out.flush()
}

fn run_parse(a: &ParseArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if !a.list_authors {
        common.require_data_file(a.output.as_deref(), "messages")?;
    }
    let format = a.export.compiled_format()?;
    let export = input::read(&a.input, a.export.max_inflated)?;
    let chat = a.export.chat.clone().unwrap_or(export.chat);
    let lines = input::lines(&export.text);
    let w = if a.list_authors { None } else { Some(JsonlWriter::create(a.output.as_deref())?) };
    // Messages stream to a writer thread in batches, so serialising overlaps parsing and memory stays flat;
    // nothing is committed unless the whole file parsed.
    const BATCH: usize = 1024;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Message>>(8);
    let (rep, w) = std::thread::scope(|scope| -> anyhow::Result<(parse::ParseReport, Option<JsonlWriter>)> {
        let writer = scope.spawn(move || -> Result<Option<JsonlWriter>, Error> {
            let mut w = w;
            for batch in rx {
                if let Some(w) = w.as_mut() {
                    for m in &batch {
                        w.write(m)?;
                    }
                }
            }
            Ok(w)
        });
        let mut batch = Vec::with_capacity(BATCH);
        let rep = parse::parse_each_with(&lines, &chat, a.export.date_order, format.as_ref(), |m| {
            batch.push(m);
            if batch.len() == BATCH {
                tx.send(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))).map_err(|_| ())?;
            }
            Ok::<(), ()>(())
        });
        if !batch.is_empty() {
            let _ = tx.send(batch);
        }
        drop(tx);
        let w = writer.join().map_err(|_| anyhow::anyhow!("writer thread panicked"))??;
        let rep = rep.map_err(|_| anyhow::anyhow!("the writer stopped early"))?;
        Ok((rep, w))
    })?;
    if rep.messages == 0 {
        return Err(no_headers(&a.input, rep.lines, format.is_some()));
    }
    if a.list_authors {
        print_authors(&rep.authors)?;
        return Ok(Exit::Success);
    }
    if let Some(w) = w {
        w.commit()?;
    }
    if common.json {
        cli::print_report(&cli::report("banter-whatsapp", Exit::Success, json!({"input": a.input, "parse": rep})))?;
    } else {
        say_parse_report(&a.input, &rep, common);
    }
    Ok(Exit::Success)
}

/// The human summary of a parse on stderr: counts, the format and date order found, and every line that
/// was not taken as it looked (preamble, impossible headers, other shapes, out-of-order messages).
fn say_parse_report(input: &str, rep: &parse::ParseReport, common: &CommonArgs) {
    let kinds: Vec<String> = ["text", "media", "deleted", "system"]
        .iter()
        .map(|k| format!("{} {k}", rep.kinds.get(k).copied().unwrap_or(0)))
        .collect();
    common.say(format!(
        "banter-whatsapp: {} messages ({}) from {} lines, {} authors; format {}, dates {}{}",
        rep.messages,
        kinds.join(", "),
        rep.lines,
        rep.authors.len(),
        rep.shape.as_deref().unwrap_or("?"),
        rep.date_order.map_or("?".into(), |o| format!("{o:?}").to_lowercase()),
        if rep.date_order_ambiguous { " (ambiguous: nothing told the order; --date-order overrides)" } else { "" },
    ));
    if !rep.preamble_lines.is_empty() {
        common.say(format!(
            "banter-whatsapp: {} line(s) before the first message were not part of any message (lines {})",
            rep.preamble_lines.len(),
            list(&rep.preamble_lines)
        ));
    }
    if !rep.invalid_headers.is_empty() {
        common.say(format!(
            "banter-whatsapp: {} header(s) with an impossible date or time were kept as message text ({})",
            rep.invalid_headers.len(),
            list_at(input, &rep.invalid_headers)
        ));
    }
    if rep.shapes.len() > 1 {
        let others: Vec<String> = rep.shapes[1..].iter().map(|(s, n)| format!("{s}({n} lines)")).collect();
        common.say(format!("banter-whatsapp: other header shapes in the file: {}", others.join(", ")));
    }
    if !rep.headers_not_taken.is_empty() {
        common.say(format!(
            "banter-whatsapp: {} header-like line(s) of another shape did not fit in time and were kept as \
             message text ({})",
            rep.headers_not_taken.len(),
            list_at(input, &rep.headers_not_taken)
        ));
    }
    if rep.out_of_order > 0 {
        common.say(format!(
            "banter-whatsapp: {} message(s) earlier than the one before (flagged out_of_order)",
            rep.out_of_order
        ));
    }
}

/// `FILE:LINE` for the first ten lines, then how many more.
fn list_at(path: &str, lines: &[u64]) -> String {
    let mut s = first_ten(lines, |n| format!("{path}:{n}"));
    if lines.len() > 10 {
        s.push(format!("… {} more", lines.len() - 10));
    }
    s.join(", ")
}

/// The first ten line numbers, then `…`.
fn list(lines: &[u64]) -> String {
    let mut s = first_ten(lines, |n| n.to_string());
    if lines.len() > 10 {
        s.push("…".into());
    }
    s.join(", ")
}

fn first_ten(lines: &[u64], show: impl Fn(u64) -> String) -> Vec<String> {
    lines.iter().take(10).map(|n| show(*n)).collect()
}

/// Messages from an export or from messages JSONL.
fn load_messages(path: &str, export: &ExportArgs) -> anyhow::Result<Vec<Message>> {
    let is_jsonl = path.ends_with(".jsonl") || {
        path != "-"
            && std::fs::read(path)
                .ok()
                .is_some_and(|b| b.iter().find(|c| !c.is_ascii_whitespace()).is_some_and(|&c| c == b'{'))
    };
    if !is_jsonl {
        return Ok(parse_export(path, export)?.0);
    }
    let reader = JsonlReader::open(&Source::parse(path), ReadOptions::default())?;
    let mut out = Vec::new();
    for r in reader.records::<Message>() {
        out.push(r?.record);
    }
    Ok(out)
}

fn run_samples(a: &SamplesArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if !a.list_authors {
        common.require_data_file(a.output.as_deref(), "samples")?;
    }
    let template = match a.template.as_str() {
        "chat" | "chatml" => None,
        other => Some(ChatTemplate::from_arg(other)?),
    };
    let mut messages = load_messages(&a.input, &a.export).with_context(|| format!("reading {}", a.input))?;
    if a.strip_urls {
        let (changed, emptied) = urls::strip_messages(&mut messages);
        common.say(format!(
            "banter-whatsapp: --strip-urls: addresses removed from {changed} message(s), {emptied} of them only links (dropped)"
        ));
    }
    let mut authors: Vec<(String, u64)> = Vec::new();
    for m in &messages {
        if let Some(au) = &m.author {
            parse::tally(&mut authors, au);
        }
    }
    if a.list_authors {
        print_authors(&authors)?;
        return Ok(Exit::Success);
    }
    let persona = a.persona.clone().unwrap_or_default();
    if !authors.iter().any(|(n, _)| *n == persona) {
        let mut top = authors.clone();
        top.sort_by_key(|x| std::cmp::Reverse(x.1));
        let names: Vec<String> = top.iter().take(8).map(|(n, c)| format!("\"{n}\" ({c})")).collect();
        return Err(Error::usage_hint(
            format!("--persona \"{persona}\" wrote no message in {}", a.input),
            format!("authors are matched exactly; the most active: {}", names.join(", ")),
        )
        .into());
    }
    let opts = samples::Options {
        persona,
        mode: a.context,
        window: a.window,
        top_k: a.top_k,
        select_k: a.select_k,
        merge_within: a.merge_within,
        gap: a.gap,
        keep_media: a.keep_media,
        keep_deleted: a.keep_deleted,
        keep_system: a.keep_system,
    };
    let (mut built, rep) = samples::build(&messages, &opts);
    if a.redact_pii {
        for s in &mut built {
            if let SampleBody::Chat(turns) = &mut s.body {
                for t in turns {
                    let found: Vec<_> = banter_quality::checks::pii::find(&t.content)
                        .into_iter()
                        .filter(|f| {
                            matches!(
                                f.kind,
                                banter_quality::checks::pii::Kind::Phone | banter_quality::checks::pii::Kind::Email
                            )
                        })
                        .collect();
                    if !found.is_empty() {
                        t.content = banter_quality::checks::pii::redact(&t.content, &found);
                    }
                }
            }
        }
    }
    let mut w = JsonlWriter::create(a.output.as_deref())?;
    for s in &built {
        match &template {
            None => w.write(s)?,
            Some(t) => {
                let mut text = Sample::text(t.render(s).text);
                text.fields = s.fields.clone();
                w.write(&text.to_value())?;
            }
        }
    }
    w.commit()?;
    if common.json {
        cli::print_report(&cli::report("banter-whatsapp", Exit::Success, json!({"input": a.input, "samples": rep})))?;
    } else {
        common.say(format!(
            "banter-whatsapp: {} samples from {} persona turns ({} without context) in {} conversations; {} messages read",
            rep.samples, rep.persona_turns, rep.no_context, rep.conversations, rep.messages
        ));
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(300));
        assert_eq!(parse_duration("6h"), Ok(21_600));
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("10"), Ok(600));
        assert!(parse_duration("soon").is_err());
    }
}
