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

/// Input locations (directories and files) by canonical path, for the folder checks of [`check_output_path`].
static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// `path` made absolute with symlinks resolved; the part that does not exist yet is appended as written
/// (`..` in it resolved lexically).
pub fn canonical(path: &Path) -> PathBuf {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().map(|d| d.join(path)).unwrap_or_else(|_| path.to_path_buf())
    };
    let mut existing = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        if let Ok(c) = std::fs::canonicalize(&existing) {
            let mut out = c;
            for part in rest.iter().rev() {
                if part == ".." {
                    out.pop();
                } else if part != "." {
                    out.push(part);
                }
            }
            return out;
        }
        match (existing.file_name().map(|n| n.to_os_string()), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => return abs,
        }
    }
}

/// Remembers a directory (a model, an adapter) or a file this process reads, so that no output may be it,
/// contain it or lie inside it ([`check_output_path`]).
pub fn register_path(path: &Path) {
    register(path);
    let c = canonical(path);
    let mut paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    if !paths.contains(&c) {
        paths.push(c);
    }
}

/// Refuses (usage error, exit 2) an output — a folder or a file — that is a registered input, contains one
/// or lies inside one (`banter-export onnx M -o M`, `-o models` for `models/sara`, `-o M/model.safetensors`).
pub fn check_output_path(dest: &Path) -> Result<(), Error> {
    check_output(dest)?;
    let d = canonical(dest);
    let paths = PATHS.lock().unwrap_or_else(|e| e.into_inner());
    for input in paths.iter() {
        let why = if d == *input {
            "is"
        } else if d.starts_with(input) {
            "lies inside"
        } else if input.starts_with(&d) {
            "contains"
        } else {
            continue;
        };
        return Err(Error::usage(format!(
            "{}: the output {why} an input ({}); write the output somewhere else",
            dest.display(),
            input.display()
        )));
    }
    Ok(())
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

    #[test]
    fn an_output_that_is_contains_or_lies_inside_an_input_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        let sara = models.join("sara");
        std::fs::create_dir_all(&sara).unwrap();
        std::fs::write(sara.join("model.safetensors"), "x").unwrap();
        register_path(&sara);
        for bad in [
            sara.clone(),
            models.clone(),
            sara.join("model.safetensors"),
            sara.join("new/deeper"),
            sara.join("../sara"),
        ] {
            let msg = check_output_path(&bad).unwrap_err().to_string();
            assert!(msg.contains("an input"), "{}: {msg}", bad.display());
        }
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(&sara, &link).unwrap();
            assert!(check_output_path(&link).is_err());
            assert!(check_output_path(&link.join("x")).is_err());
        }
        assert!(check_output_path(&models.join("sara-onnx")).is_ok());
        assert!(check_output_path(&dir.path().join("out")).is_ok());
    }
}
