//! Putting a finished directory in place of another in one step, and cleaning up after a swap that a kill
//! interrupted.
//!
//! [`replace_dir`] uses `renameat2(RENAME_EXCHANGE)` where the kernel and filesystem have it: the staged
//! directory and the destination trade places atomically, so there is no moment without a destination.
//! Elsewhere it falls back to two renames (destination aside to `.NAME.old-PID`, staged into place); a kill
//! between them leaves the old content in `.NAME.old-PID`, which [`recover`] — run before the next write of
//! the same destination — moves back. Staging folders (`.NAME.partial-PID`) and leftovers of processes that
//! are gone are removed by [`recover`] too, so they do not accumulate.

use std::io;
use std::path::{Path, PathBuf};

/// `.NAME.partial-PID` beside `dest`: where a directory for `dest` is staged by this process.
pub fn staging_path(dest: &Path) -> PathBuf {
    sibling(dest, "partial", std::process::id())
}

fn sibling(dest: &Path, kind: &str, pid: u32) -> PathBuf {
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    dest.with_file_name(format!(".{name}.{kind}-{pid}"))
}

/// Puts the directory `staged` in place of `dest` (which may be missing), atomically where the system
/// allows; the old content is removed afterwards.
pub fn replace_dir(staged: &Path, dest: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(dest).is_err() {
        return std::fs::rename(staged, dest);
    }
    match exchange(staged, dest) {
        Ok(()) => {
            // `staged` now holds the old content.
            let _ = std::fs::remove_dir_all(staged);
            Ok(())
        }
        Err(e) if unsupported(&e) => {
            let old = sibling(dest, "old", std::process::id());
            let _ = std::fs::remove_dir_all(&old);
            std::fs::rename(dest, &old)?;
            if let Err(e) = std::fs::rename(staged, dest) {
                let _ = std::fs::rename(&old, dest);
                return Err(e);
            }
            let _ = std::fs::remove_dir_all(&old);
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// True when [`exchange`] failed only because the system cannot exchange (fall back to renames).
pub fn unsupported(e: &io::Error) -> bool {
    #[cfg(target_os = "linux")]
    {
        matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP))
    }
    #[cfg(not(target_os = "linux"))]
    {
        e.kind() == io::ErrorKind::Unsupported
    }
}

/// Exchanges two existing paths atomically (`renameat2(RENAME_EXCHANGE)`).
#[cfg(target_os = "linux")]
pub fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call; the syscall
    // reads them and touches no other memory of this process.
    #[allow(unsafe_code)]
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE as libc::c_uint,
        )
    };
    if r == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Exchanges two existing paths atomically: unsupported here.
#[cfg(not(target_os = "linux"))]
pub fn exchange(_a: &Path, _b: &Path) -> io::Result<()> {
    Err(io::Error::from(io::ErrorKind::Unsupported))
}

fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if cfg!(target_os = "linux") { Path::new("/proc").join(pid.to_string()).exists() } else { true }
}

/// What [`recover`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Recovered {
    /// A destination restored from the `.old-PID` of a killed swap.
    pub restored: Option<PathBuf>,
    /// Leftover folders removed.
    pub removed: Vec<PathBuf>,
}

/// Cleans up after killed writes of `dest`: a missing `dest` is restored from a dead process's
/// `.NAME.old-PID`; dead processes' `.NAME.old-PID` and `.NAME.partial-PID` folders are removed.
/// Folders of processes still running are left alone.
pub fn recover(dest: &Path) -> Recovered {
    let mut done = Recovered::default();
    let Some(name) = dest.file_name().map(|n| n.to_string_lossy().into_owned()) else { return done };
    let parent = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&parent) else { return done };
    let mut olds: Vec<(u32, PathBuf)> = Vec::new();
    let mut partials: Vec<PathBuf> = Vec::new();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&format!(".{name}.")) else { continue };
        let (kind, pid) = match rest.split_once('-') {
            Some((k, p)) => match p.parse::<u32>() {
                Ok(pid) => (k, pid),
                Err(_) => continue,
            },
            None => continue,
        };
        if pid == std::process::id() || alive(pid) {
            continue;
        }
        match kind {
            "old" => olds.push((pid, e.path())),
            "partial" => partials.push(e.path()),
            _ => {}
        }
    }
    olds.sort();
    if std::fs::symlink_metadata(dest).is_err()
        && let Some((_, old)) = olds.pop()
        && std::fs::rename(&old, dest).is_ok()
    {
        done.restored = Some(old);
    }
    for p in olds.into_iter().map(|o| o.1).chain(partials) {
        if std::fs::remove_dir_all(&p).is_ok() {
            done.removed.push(p);
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, file: &str, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(file), text).unwrap();
    }

    #[test]
    fn a_staged_directory_replaces_the_destination_and_the_old_content_goes() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("out");
        write(&dest, "a", "old");
        let staged = staging_path(&dest);
        write(&staged, "b", "new");
        replace_dir(&staged, &dest).unwrap();
        assert_eq!(std::fs::read_to_string(dest.join("b")).unwrap(), "new");
        assert!(!dest.join("a").exists());
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "leftovers");
        // Into a missing destination.
        let fresh = d.path().join("fresh");
        let staged = staging_path(&fresh);
        write(&staged, "c", "x");
        replace_dir(&staged, &fresh).unwrap();
        assert!(fresh.join("c").exists());
    }

    #[test]
    fn a_killed_swap_is_restored_and_leftovers_of_dead_processes_are_removed() {
        let d = tempfile::tempdir().unwrap();
        let dest = d.path().join("model");
        // A process (pid far above pid_max, so not running) was killed between the two renames.
        let dead = 4_000_000_001u32;
        write(&sibling(&dest, "old", dead), "weights", "old");
        write(&sibling(&dest, "partial", dead), "weights", "half");
        write(&sibling(&dest, "partial", dead - 1), "x", "y");
        let r = recover(&dest);
        assert_eq!(std::fs::read_to_string(dest.join("weights")).unwrap(), "old");
        assert!(r.restored.is_some());
        assert_eq!(r.removed.len(), 2);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1, "leftovers");
        // With the destination present, a dead process's old copy is stale: removed, the destination kept.
        write(&sibling(&dest, "old", dead), "weights", "older");
        let r = recover(&dest);
        assert!(r.restored.is_none() && r.removed.len() == 1);
        assert_eq!(std::fs::read_to_string(dest.join("weights")).unwrap(), "old");
        // A running process's staging folder is not touched.
        let mine = sibling(&dest, "partial", 1);
        write(&mine, "x", "y");
        recover(&dest);
        assert!(mine.exists());
    }
}
