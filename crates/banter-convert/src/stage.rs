//! Output directories written whole or not at all: files go into a hidden sibling directory, which takes the
//! destination's place only when everything is written, in one atomic exchange where the system has it
//! ([`banter_core::dirswap`]). A failure, Ctrl-C or kill leaves the destination as it was.

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
        banter_core::inputs::check_output_path(dest)?;
        if dest.exists() && !dest.is_dir() {
            return Err(ConvertError::io(dest, std::io::Error::other("exists and is not a directory")));
        }
        let parent = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&parent).map_err(|e| ConvertError::io(&parent, e))?;
        // What a killed earlier write left: the old destination back in place, dead staging folders gone.
        let recovered = banter_core::dirswap::recover(dest);
        if let Some(old) = &recovered.restored {
            banter_core::eline!(
                "banter: {}: restored from {} (left by a killed earlier write)",
                dest.display(),
                old.display()
            );
        }
        let tmp = banter_core::dirswap::staging_path(&parent.join(dest.file_name().unwrap_or("out".as_ref())));
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
        banter_core::dirswap::replace_dir(&self.tmp, &self.dest).map_err(|e| ConvertError::io(&self.dest, e))?;
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
