//! Output to stdout or to a file written atomically.

use std::fmt;
use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Error;
use crate::interrupt;

/// Where a tool's data goes: stdout, or a file that appears only when complete.
///
/// A file output is written to `.<name>.<random>.tmp` in the target's directory and renamed over the
/// target by [`Output::commit`]. If the tool fails, is dropped without committing, or is interrupted by
/// Ctrl-C or SIGTERM, the temp file is removed and whatever was at the target before is untouched.
pub struct Output {
    inner: Inner,
}

enum Inner {
    Stdout(BufWriter<io::Stdout>),
    File { tmp: BufWriter<tempfile::NamedTempFile>, dest: PathBuf, _guard: TempGuard },
}

/// Keeps a temp file registered for removal on Ctrl-C for as long as it exists.
struct TempGuard(PathBuf);

impl Drop for TempGuard {
    fn drop(&mut self) {
        // Committed (renamed) or dropped (the NamedTempFile removed itself): nothing left to clean.
        interrupt::unregister_temp(&self.0);
    }
}

impl fmt::Debug for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl Output {
    /// Standard output.
    pub fn stdout() -> Self {
        Output { inner: Inner::Stdout(BufWriter::with_capacity(1 << 16, io::stdout())) }
    }

    /// `None` or `-` is stdout; a path is written atomically.
    pub fn create(path: Option<&Path>) -> Result<Self, Error> {
        match path {
            None => Ok(Self::stdout()),
            Some(p) if p.as_os_str() == "-" => Ok(Self::stdout()),
            Some(p) => Self::file(p),
        }
    }

    /// A file written atomically.
    pub fn file(dest: &Path) -> Result<Self, Error> {
        let file_name = dest
            .file_name()
            .ok_or_else(|| Error::usage(format!("{}: not a file name", dest.display())))?
            .to_string_lossy()
            .into_owned();
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if dest.is_dir() {
            return Err(Error::io(dest.display(), io::Error::other("is a directory")));
        }
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(dest.display(), e))?;
        let tmp_path = tmp.path().to_path_buf();
        interrupt::register_temp(&tmp_path);
        Ok(Output {
            inner: Inner::File {
                tmp: BufWriter::with_capacity(1 << 16, tmp),
                dest: dest.to_path_buf(),
                _guard: TempGuard(tmp_path),
            },
        })
    }

    /// The name used in error messages: the target path, or `<stdout>`.
    pub fn name(&self) -> String {
        match &self.inner {
            Inner::Stdout(_) => "<stdout>".into(),
            Inner::File { dest, .. } => dest.display().to_string(),
        }
    }

    /// True when writing to stdout.
    pub fn is_stdout(&self) -> bool {
        matches!(self.inner, Inner::Stdout(_))
    }

    /// Finishes the output: flushes stdout, or syncs the temp file and renames it over the target
    /// (keeping the target's permissions if it existed).
    pub fn commit(self) -> Result<(), Error> {
        match self.inner {
            Inner::Stdout(mut w) => w.flush().map_err(|e| Error::io("<stdout>", e)),
            Inner::File { tmp, dest, _guard } => {
                let result = (|| {
                    let tmp = tmp.into_inner().map_err(|e| e.into_error())?;
                    tmp.as_file().sync_all()?;
                    set_permissions(tmp.path(), &dest)?;
                    tmp.persist(&dest).map_err(|e| e.error)?;
                    if let Some(dir) = dest.parent().filter(|d| !d.as_os_str().is_empty()) {
                        // Make the rename itself durable; not every filesystem supports it.
                        let _ = fs::File::open(dir).and_then(|d| d.sync_all());
                    }
                    Ok(())
                })();
                drop(_guard);
                result.map_err(|e| Error::io(dest.display(), e))
            }
        }
    }
}

/// Temp files are created 0600; the output gets the old target's mode, or 0644 for a new file.
#[cfg(unix)]
fn set_permissions(tmp: &Path, dest: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let perms = fs::metadata(dest).map(|m| m.permissions()).unwrap_or_else(|_| fs::Permissions::from_mode(0o644));
    fs::set_permissions(tmp, perms)
}

#[cfg(not(unix))]
fn set_permissions(_tmp: &Path, _dest: &Path) -> io::Result<()> {
    Ok(())
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::Stdout(w) => w.write(buf),
            Inner::File { tmp, .. } => tmp.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Stdout(w) => w.write_all(buf),
            Inner::File { tmp, .. } => tmp.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Stdout(w) => w.flush(),
            Inner::File { tmp, .. } => tmp.flush(),
        }
    }
}

/// Writes one JSON record per line to an [`Output`].
#[derive(Debug)]
pub struct JsonlWriter {
    out: Output,
    count: u64,
    line: Vec<u8>,
}

impl JsonlWriter {
    /// Writes to `out`.
    pub fn new(out: Output) -> Self {
        JsonlWriter { out, count: 0, line: Vec::with_capacity(1024) }
    }

    /// `None` or `-` is stdout; a path is written atomically.
    pub fn create(path: Option<&Path>) -> Result<Self, Error> {
        Ok(Self::new(Output::create(path)?))
    }

    /// Writes one record as a line.
    pub fn write<T: Serialize + ?Sized>(&mut self, record: &T) -> Result<(), Error> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, record).map_err(|e| Error::io(self.out.name(), io::Error::other(e)))?;
        self.line.push(b'\n');
        self.out.write_all(&self.line).map_err(|e| Error::io(self.out.name(), e))?;
        self.count += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Finishes: see [`Output::commit`]. Returns the number of records written.
    pub fn commit(self) -> Result<u64, Error> {
        let n = self.count;
        self.out.commit()?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".tmp"))
            .collect()
    }

    #[test]
    fn commit_replaces_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jsonl");
        fs::write(&dest, "old\n").unwrap();
        let mut w = JsonlWriter::create(Some(&dest)).unwrap();
        w.write(&json!({"text": "a"})).unwrap();
        w.write(&json!({"text": "b"})).unwrap();
        // Until commit, the old file is what readers see.
        assert_eq!(fs::read_to_string(&dest).unwrap(), "old\n");
        assert_eq!(w.commit().unwrap(), 2);
        assert_eq!(fs::read_to_string(&dest).unwrap(), "{\"text\":\"a\"}\n{\"text\":\"b\"}\n");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("out.jsonl");
        fs::write(&dest, "precious\n").unwrap();
        {
            let mut w = JsonlWriter::create(Some(&dest)).unwrap();
            w.write(&json!({"text": "partial"})).unwrap();
            assert_eq!(leftovers(dir.path()).len(), 1);
            // An error happens before commit: the writer is dropped.
        }
        assert_eq!(fs::read_to_string(&dest).unwrap(), "precious\n");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_normal_permissions_and_old_ones_keep_theirs() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("new.jsonl");
        JsonlWriter::create(Some(&dest)).unwrap().commit().unwrap();
        assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o644);
        fs::set_permissions(&dest, fs::Permissions::from_mode(0o600)).unwrap();
        JsonlWriter::create(Some(&dest)).unwrap().commit().unwrap();
        assert_eq!(fs::metadata(&dest).unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn unwritable_directory_is_an_io_error() {
        let e = JsonlWriter::create(Some(Path::new("/nonexistent-dir/out.jsonl"))).unwrap_err();
        assert_eq!(e.exit(), crate::Exit::Io);
        assert!(e.to_string().starts_with("/nonexistent-dir/out.jsonl: "), "{e}");
    }
}
