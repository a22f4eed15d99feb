//! `banter-export hub`.

use std::path::PathBuf;

use clap::Args;
use serde_json::json;

use banter_core::Exit;
use banter_core::cli::{self, CommonArgs};
use banter_hub::{HubSettings, RepoId, upload};

use crate::TOOL;

/// `banter-export hub DIR user/name`.
#[derive(Debug, Args)]
pub struct HubArgs {
    /// The model or adapter directory to upload (every file in it, hidden ones left out).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// The repository, `user/name` (created if missing).
    #[arg(value_name = "REPO")]
    pub repo: String,
    /// Create the repository private.
    #[arg(long)]
    pub private: bool,
    /// The branch to commit to (created from main when missing).
    #[arg(long, value_name = "BRANCH")]
    pub revision: Option<String>,
    /// Upload banter-train's checkpoint-* folders too (left out by default: they hold optimizer state).
    #[arg(long)]
    pub include_checkpoints: bool,
    /// The commit message.
    #[arg(long, value_name = "TEXT", default_value = "Upload with banter-export")]
    pub message: String,
}

pub fn run(a: &HubArgs, common: &CommonArgs) -> anyhow::Result<Exit> {
    if !a.dir.is_dir() {
        return Err(banter_core::Error::usage(format!("{}: not a directory", a.dir.display())).into());
    }
    let ok = RepoId::parse(&a.repo).filter(|r| r.revision == "main");
    if ok.is_none() {
        return Err(banter_core::Error::usage_hint(
            format!("{:?} is not a Hub repository name", a.repo),
            "give user/name (the branch goes in --revision)",
        )
        .into());
    }
    let mut s = HubSettings::from_env();
    s.progress = common.progress_enabled();
    let up = upload::Upload {
        repo: a.repo.clone(),
        revision: a.revision.clone(),
        private: a.private,
        message: a.message.clone(),
    };
    // Links are never followed out of the folder nor into a folder (a loop): said before the upload.
    // banter-train's `checkpoint-*` folders (optimizer state for resuming) stay out unless asked for.
    let listing = upload::folder_files(&a.dir, !a.include_checkpoints)?;
    for (path, why) in &listing.skipped_links {
        banter_core::eline!("{TOOL}: warning: {path}: not uploaded: {why}");
    }
    let done = upload::upload_folder(&a.dir, listing, &up, &s)?;
    if common.json {
        cli::print_report(&cli::report(TOOL, Exit::Success, json!({"command": "hub", "upload": done})))?;
    } else {
        common.say(format!(
            "{TOOL}: {} → {}@{}: {} files ({} through LFS, {:.1} MB sent){}",
            a.dir.display(),
            done.repo,
            done.revision,
            done.files,
            done.lfs_files,
            done.lfs_bytes_sent as f64 / 1e6,
            done.commit_url.as_deref().map(|u| format!(", {u}")).unwrap_or_default()
        ));
    }
    Ok(Exit::Success)
}
