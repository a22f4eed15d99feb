//! Output directories written whole or not at all: files go into a hidden sibling directory, which replaces
//! the destination only when everything is written (an old destination is moved aside first and removed
//! after). A failure or Ctrl-C leaves the destination as it was.

use std::path::{Path, PathBuf};

use crate::ConvertError;

/// A directory being written; [`StagedDir::commit`] puts it in place, dropping it removes it.
#[derive(Debug)]
pub struct StagedDir {
    tmp: PathBuf,
    dest: PathBuf,
    done: bool,
}

impl StagedDir {
    /// Starts writing `dest` (refused when `dest` exists and is not a directory).
    pub fn new(dest: &Path) -> Result<Self, ConvertError> {
        if dest.exists() && !dest.is_dir() {
            return Err(ConvertError::io(dest, std::io::Error::other("exists and is not a directory")));
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| ConvertError::io(&parent, e))?;
        let name = dest.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "out".into());
        let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(|e| ConvertError::io(&tmp, e))?;
        banter_core::interrupt::register_temp(&tmp);
        Ok(StagedDir { tmp, dest: dest.to_path_buf(), done: false })
    }

    /// Where to write the files.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    /// Puts the directory in place of the destination.
    pub fn commit(mut self) -> Result<(), ConvertError> {
        let old = self.dest.with_file_name(format!(
            ".{}.old-{}",
            self.dest.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        let had = self.dest.exists();
        if had {
            std::fs::rename(&self.dest, &old).map_err(|e| ConvertError::io(&self.dest, e))?;
        }
        if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
            if had {
                let _ = std::fs::rename(&old, &self.dest);
            }
            return Err(ConvertError::io(&self.dest, e));
        }
        if had {
            let _ = std::fs::remove_dir_all(&old);
        }
        self.done = true;
        banter_core::interrupt::unregister_temp(&self.tmp);
        Ok(())
    }
}

impl Drop for StagedDir {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.tmp);
            banter_core::interrupt::unregister_temp(&self.tmp);
        }
    }
}
