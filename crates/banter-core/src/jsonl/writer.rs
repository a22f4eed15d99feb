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
///
/// A symlink is followed: its target is replaced, the link stays. A target that is not a regular file
/// (`/dev/null`, a FIFO, a terminal, a socket) is written to directly, as a shell redirection would — it
/// cannot be replaced atomically, and replacing it would destroy it. A target that is one of the tool's
/// inputs ([`crate::inputs`]) is refused.
pub struct Output {
    inner: Inner,
}

enum Inner {
    Stdout(BufWriter<io::Stdout>),
    File { tmp: BufWriter<tempfile::NamedTempFile>, dest: PathBuf, _guard: TempGuard },
    Direct { file: BufWriter<fs::File>, dest: PathBuf },
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

    /// A file written atomically (see the type's docs for symlinks, devices and FIFOs).
    pub fn file(dest: &Path) -> Result<Self, Error> {
        let shown = dest.to_path_buf();
        let dest = &follow_links(dest).map_err(|e| Error::io(shown.display(), e))?;
        crate::inputs::check_output(dest)?;
        match fs::metadata(dest) {
            Ok(m) if m.is_dir() => return Err(Error::io(shown.display(), io::Error::other("is a directory"))),
            Ok(m) if !m.is_file() => {
                let file = fs::OpenOptions::new().write(true).open(dest).map_err(|e| Error::io(shown.display(), e))?;
                return Ok(Output {
                    inner: Inner::Direct { file: BufWriter::with_capacity(1 << 16, file), dest: shown },
                });
            }
            _ => {}
        }
        let file_name = dest
            .file_name()
            .ok_or_else(|| Error::usage(format!("{}: not a file name", shown.display())))?
            .to_string_lossy()
            .into_owned();
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| Error::io(shown.display(), e))?;
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
            Inner::File { dest, .. } | Inner::Direct { dest, .. } => dest.display().to_string(),
        }
    }

    /// The temporary file being written, before [`Output::commit`] renames it into place (after a flush it
    /// holds everything written so far); `None` for stdout and devices.
    pub fn pending_path(&self) -> Option<&Path> {
        match &self.inner {
            Inner::File { tmp, .. } => Some(tmp.get_ref().path()),
            _ => None,
        }
    }

    /// Writes `bytes` at `offset` of a file output already written past it (a header filled in last).
    /// Returns false, writing nothing, for stdout and devices, which cannot seek.
    pub fn write_at(&mut self, offset: u64, bytes: &[u8]) -> Result<bool, Error> {
        use std::os::unix::fs::FileExt;
        match &mut self.inner {
            Inner::File { tmp, dest, .. } => {
                tmp.flush().map_err(|e| Error::io(dest.display(), e))?;
                tmp.get_ref().as_file().write_all_at(bytes, offset).map_err(|e| Error::io(dest.display(), e))?;
                Ok(true)
            }
            _ => Ok(false),
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
            Inner::Direct { mut file, dest } => file.flush().map_err(|e| Error::io(dest.display(), e)),
            Inner::File { tmp, dest, _guard } => {
                // An input opened after the output was created is caught here, before anything is replaced.
                crate::inputs::check_output(&dest)?;
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

/// `path` with symlinks followed to the file they finally name (which may not exist yet).
fn follow_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = fs::read_link(&p)?;
                p = if t.is_absolute() { t } else { p.parent().map_or_else(|| t.clone(), |d| d.join(&t)) };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
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
            Inner::Direct { file, .. } => file.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::Stdout(w) => w.write_all(buf),
            Inner::File { tmp, .. } => tmp.write_all(buf),
            Inner::Direct { file, .. } => file.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::Stdout(w) => w.flush(),
            Inner::File { tmp, .. } => tmp.flush(),
            Inner::Direct { file, .. } => file.flush(),
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

    #[cfg(unix)]
    #[test]
    fn symlinks_are_followed_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.jsonl");
        fs::write(&real, "old\n").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink("real.jsonl", &link).unwrap();
        let mut w = JsonlWriter::create(Some(&link)).unwrap();
        w.write(&json!({"a": 1})).unwrap();
        w.commit().unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read_to_string(&real).unwrap(), "{\"a\":1}\n");
        // A dangling link gets its target created.
        let dangling = dir.path().join("dangling.jsonl");
        std::os::unix::fs::symlink("made.jsonl", &dangling).unwrap();
        JsonlWriter::create(Some(&dangling)).unwrap().commit().unwrap();
        assert!(dir.path().join("made.jsonl").is_file());
        assert!(fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
        assert!(leftovers(dir.path()).is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn devices_and_fifos_are_written_in_place() {
        use std::os::unix::fs::FileTypeExt;
        let mut w = JsonlWriter::create(Some(Path::new("/dev/null"))).unwrap();
        w.write(&json!({"a": 1})).unwrap();
        w.commit().unwrap();
        assert!(fs::metadata("/dev/null").unwrap().file_type().is_char_device());
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        #[allow(unsafe_code)]
        // SAFETY: a valid NUL-terminated path.
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read_to_string(fifo).unwrap())
        };
        let mut w = JsonlWriter::create(Some(&fifo)).unwrap();
        w.write(&json!({"b": 2})).unwrap();
        w.commit().unwrap();
        assert_eq!(reader.join().unwrap(), "{\"b\":2}\n");
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
    }

    #[test]
    fn an_output_that_is_an_input_is_refused_and_the_input_kept() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.jsonl");
        fs::write(&input, "{\"text\":\"keep\"}\n").unwrap();
        crate::inputs::register(&input);
        let err = JsonlWriter::create(Some(&input)).unwrap_err();
        assert_eq!(err.exit().code(), 2, "{err}");
        assert_eq!(fs::read_to_string(&input).unwrap(), "{\"text\":\"keep\"}\n");
        // Registered after the output was created: caught at commit.
        let late = dir.path().join("late.jsonl");
        fs::write(&late, "x\n").unwrap();
        let w = JsonlWriter::create(Some(&late)).unwrap();
        crate::inputs::register(&late);
        assert!(w.commit().is_err());
        assert_eq!(fs::read_to_string(&late).unwrap(), "x\n");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn unwritable_directory_is_an_io_error() {
        let e = JsonlWriter::create(Some(Path::new("/nonexistent-dir/out.jsonl"))).unwrap_err();
        assert_eq!(e.exit(), crate::Exit::Io);
        assert!(e.to_string().starts_with("/nonexistent-dir/out.jsonl: "), "{e}");
    }
}
