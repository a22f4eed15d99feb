//! `extract`: the main text of saved pages — HTML files, folders of them (read recursively, in name
//! order), or one page on stdin — as docs JSONL, the same records `fetch` writes. `.txt`/`.md` files are
//! documents already and are passed through as text.

use std::path::{Path, PathBuf};

use clap::Args;
use rayon::prelude::*;
use serde_json::Value;

use banter_core::cli::CommonArgs;
use banter_core::records::Doc;
use banter_core::{Error, Exit, interrupt, progress};

use crate::fetch::Failure;
use crate::{Collector, NO_TEXT, extract};

/// `extract`.
#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// Saved pages: `.html`/`.htm`/`.xhtml` files, `.txt`/`.md` documents, folders of them, or `-` (one
    /// page on stdin). A named file with another extension is read as HTML when it starts with `<`.
    #[arg(value_name = "PATH", required = true)]
    pub inputs: Vec<String>,
    /// The address the pages were saved from (resolves relative links for the readability extractors).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Write docs here (atomically) instead of stdout.
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,
    /// Exit 0 when some pages give no text (exit 1 by default; the rest is written either way).
    #[arg(long)]
    pub allow_partial: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Html,
    Text,
    /// Named on the command line with another extension: HTML when it starts with `<`, else text.
    Sniff,
}

fn kind_of(path: &Path) -> Option<Kind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "html" | "htm" | "xhtml" | "shtml" => Some(Kind::Html),
        "txt" | "md" | "text" => Some(Kind::Text),
        _ => None,
    }
}

/// The files to read, in order, and how many files inside folders were skipped for their extension.
fn collect(inputs: &[String]) -> Result<(Vec<(PathBuf, Kind)>, u64), Error> {
    let mut files = Vec::new();
    let mut skipped = 0;
    for input in inputs {
        if input == "-" {
            files.push((PathBuf::from("-"), Kind::Sniff));
            continue;
        }
        let path = PathBuf::from(input);
        let meta = std::fs::metadata(&path).map_err(|e| Error::io(input, e))?;
        if meta.is_dir() {
            walk(&path, &mut files, &mut skipped)?;
        } else {
            files.push((path.clone(), kind_of(&path).unwrap_or(Kind::Sniff)));
        }
    }
    Ok((files, skipped))
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, Kind)>, skipped: &mut u64) -> Result<(), Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir.display().to_string(), e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::io(dir.display().to_string(), e))?;
    entries.sort();
    for p in entries {
        // Hidden files and folders (editor backups, .git) are not pages.
        if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if p.is_dir() {
            walk(&p, files, skipped)?;
        } else if let Some(k) = kind_of(&p) {
            files.push((p, k));
        } else {
            *skipped += 1;
        }
    }
    Ok(())
}

/// One file's doc, or why it has none.
fn read_one(path: &Path, kind: Kind, base_url: Option<&str>) -> Result<Doc, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| format!("cannot read stdin: {e}"))?;
        b
    } else {
        banter_core::inputs::register(path);
        std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?
    };
    let (text, _) = extract::decode(&bytes, None);
    let html = match kind {
        Kind::Html => true,
        Kind::Text => false,
        Kind::Sniff => text.trim_start_matches('\u{feff}').trim_start().starts_with('<'),
    };
    let mut fields = banter_core::records::Fields::default();
    fields.insert("path", Value::from(path.display().to_string()));
    let doc = if html {
        let ex = extract::extract(&text, base_url);
        Doc { url: None, title: ex.title, text: ex.text, lang: ex.lang, fetched_at: None, status: None, fields }
    } else {
        let text = text.trim_start_matches('\u{feff}').trim().to_string();
        Doc { url: None, title: None, text, lang: None, fetched_at: None, status: None, fields }
    };
    if doc.text.trim().is_empty() { Err(NO_TEXT.to_string()) } else { Ok(doc) }
}

/// Runs `extract`.
pub(crate) fn run(a: &ExtractArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if a.inputs.iter().filter(|i| *i == "-").count() > 1 {
        return Err(Error::usage("`-` (stdin) can be given once").into());
    }
    let (files, skipped) = collect(&a.inputs)?;
    if files.is_empty() {
        return Err(Error::usage_hint(
            "no page to extract",
            "give .html/.htm/.xhtml or .txt/.md files, or folders holding them",
        )
        .into());
    }
    let mut col = Collector::to(a.output.as_deref(), a.allow_partial, common)?;
    let bar = progress::bar(Some(files.len() as u64), "extracting", common);
    // Pages are extracted in parallel a chunk at a time and written in input order.
    for chunk in files.chunks(32) {
        if interrupt::interrupted() {
            break;
        }
        let done: Vec<Result<Doc, String>> =
            chunk.par_iter().map(|(p, k)| read_one(p, *k, a.base_url.as_deref())).collect();
        for ((path, _), r) in chunk.iter().zip(done) {
            match r {
                Ok(doc) => col.doc(&doc)?,
                Err(reason) => {
                    col.failures.push(Failure { url: path.display().to_string(), status: None, reason, robots: false })
                }
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    if skipped > 0 {
        common.say(format!("banter-scrape: {skipped} file(s) in the folders skipped: not .html/.htm/.xhtml/.txt/.md"));
    }
    col.finish("extract", common)
}
