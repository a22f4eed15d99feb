//! The files a tool reads, remembered so that an output path naming one of them is refused instead of
//! silently replacing the input with the output (`banter-whatsapp parse chat.txt -o chat.txt`).
//!
//! Files are compared by identity (device and inode on Unix), so another spelling of the same path, a
//! symlink or a hard link to an input is caught too. [`crate::jsonl::Source::open`] registers what it
//! opens; tools that read files another way call [`register`]. [`crate::jsonl::Output`] checks its
//! target when it is created and again just before it replaces it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::Error;

/// A file's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Id(u64, u64);

static INPUTS: Mutex<Vec<(Id, PathBuf)>> = Mutex::new(Vec::new());

#[cfg(unix)]
fn id(path: &Path) -> Option<Id> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().filter(|m| m.is_file()).map(|m| Id(m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn id(path: &Path) -> Option<Id> {
    use std::hash::{Hash, Hasher};
    let canon = std::fs::canonicalize(path).ok()?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    canon.hash(&mut h);
    Some(Id(0, h.finish()))
}

/// Remembers `path` (a regular file) as an input of this process.
pub fn register(path: &Path) {
    if let Some(i) = id(path) {
        let mut inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
        // An entry with the same identity whose file is gone (its inode number reused) is replaced.
        inputs.retain(|(j, p)| *j != i || id(p).as_ref() == Some(j));
        if !inputs.iter().any(|(j, _)| *j == i) {
            inputs.push((i, path.to_path_buf()));
        }
    }
}

/// Refuses (usage error, exit 2) an output path that is one of the registered inputs.
pub fn check_output(dest: &Path) -> Result<(), Error> {
    let Some(i) = id(dest) else { return Ok(()) };
    let inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    // The input must still be that file: a deleted input's inode number may be reused by a new file.
    match inputs.iter().find(|(j, p)| *j == i && id(p).as_ref() == Some(j)) {
        Some((_, input)) => Err(Error::usage(format!(
            "{}: the output is also an input ({}); write the output to another file",
            dest.display(),
            input.display()
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_under_another_name_is_refused_as_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, "{}\n").unwrap();
        let other = dir.path().join("other.jsonl");
        std::fs::write(&other, "{}\n").unwrap();
        register(&input);
        assert!(check_output(&input).is_err());
        assert!(check_output(&dir.path().join(".").join("in.jsonl")).is_err());
        #[cfg(unix)]
        {
            let link = dir.path().join("link.jsonl");
            std::os::unix::fs::symlink(&input, &link).unwrap();
            assert!(check_output(&link).is_err());
        }
        assert!(check_output(&other).is_ok());
        assert!(check_output(&dir.path().join("new.jsonl")).is_ok());
        let msg = check_output(&input).unwrap_err().to_string();
        assert!(msg.contains("also an input"), "{msg}");
    }
}
