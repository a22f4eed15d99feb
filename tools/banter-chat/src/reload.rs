//! Serving the newest model: a watcher thread notices a newly published adapter (from `watch -o DIR`, or
//! the server's own `--learn-every`) or model, loads it completely on its own thread, and hands it to the
//! generator, which swaps it in between requests. A request is answered wholly by the model it started
//! with; a publish that fails to load leaves the old model serving.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use crate::engine::Engine;
use crate::learn::Plan;
use crate::{ModelArgs, TOOL};

/// What the server serves: `--model` with `--adapter`, or with the newest learned adapter.
#[derive(Debug, Clone)]
pub struct Published {
    model: ModelArgs,
    learned: Option<Plan>,
}

/// The identity of the files a model is loaded from (path, inode, size, modification time).
pub type Stamp = Vec<(PathBuf, u64, u64, Option<std::time::SystemTime>)>;

impl Published {
    /// The model's source; `learned` is the plan of `--learn-every`.
    pub fn new(model: ModelArgs, learned: Option<Plan>) -> Self {
        Published { model, learned }
    }

    /// The adapter to serve now.
    pub fn adapter(&self) -> Option<PathBuf> {
        match &self.learned {
            Some(p) => p.current().map(Path::to_path_buf),
            None => self.model.adapter.clone(),
        }
    }

    /// Loads the model as published now, with the stamp of what was loaded (taken first, so that a
    /// publish during the load is seen as a change afterwards).
    /// An adapter given but not published yet (no `adapter_config.json`) is waited for: the base model is
    /// served, and the watcher loads the adapter when it appears.
    pub fn load(&self) -> anyhow::Result<(Engine, Stamp)> {
        let stamp = self.stamp();
        let adapter = self.adapter();
        if let Some(a) =
            adapter.as_deref().filter(|a| self.learned.is_none() && !a.join("adapter_config.json").exists())
        {
            banter_core::eline!(
                "{TOOL}: the adapter {} is not there yet: serving the base model until it is published",
                a.display()
            );
            return Ok((self.model.load_with(None)?, stamp));
        }
        Ok((self.model.load_with(adapter.as_deref())?, stamp))
    }

    fn stamp(&self) -> Stamp {
        let mut files = Vec::new();
        if let Some(m) = &self.model.model {
            files.push(m.join("model.safetensors"));
        }
        if let Some(a) = self.adapter() {
            files.push(a.join("adapter_model.safetensors"));
        }
        files
            .into_iter()
            .map(|f| {
                let m = std::fs::metadata(&f).ok();
                let ino = m.as_ref().map_or(0, inode);
                let len = m.as_ref().map_or(0, |m| m.len());
                let mtime = m.and_then(|m| m.modified().ok());
                (f, ino, len, mtime)
            })
            .collect()
    }

    /// Watches every `every`: a changed stamp, seen the same on two looks in a row (a copy in progress
    /// settles first), is loaded and sent. The thread ends when the receiver is dropped.
    pub fn watch(self, loaded: Stamp, every: Duration) -> mpsc::Receiver<Engine> {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut serving = loaded;
            let mut seen = self.stamp();
            loop {
                std::thread::sleep(every);
                let now = self.stamp();
                if now != serving && now == seen {
                    let what = self.adapter().map_or_else(
                        || format!("model {}", self.model.model.as_deref().unwrap_or(Path::new("")).display()),
                        |a| format!("adapter {}", a.display()),
                    );
                    match self.load() {
                        Ok((e, stamp)) => {
                            serving = stamp;
                            if tx.send(e).is_err() {
                                return;
                            }
                            banter_core::eline!("{TOOL}: serving the newly published {what} from the next request");
                        }
                        Err(e) => {
                            serving = now.clone();
                            banter_core::eline!(
                                "{TOOL}: the newly published {what} did not load, still serving the previous one: {e:#}"
                            );
                        }
                    }
                }
                seen = now;
            }
        });
        rx
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    m.ino() ^ m.dev().rotate_left(32)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}
