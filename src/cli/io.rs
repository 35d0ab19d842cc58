//! Files in and out for the codec subcommands: `-` for stdin/stdout, outputs written to a
//! temporary file in the output's folder and moved into place only when complete, never over
//! an existing file without `--force` (devices and FIFOs written through, symbolic links kept),
//! archive extraction undone on failure ([`Extraction`]). Image files ⇄ codec images are
//! [`crate::picture`]'s.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{bail, Context, Result};

/// Where bytes come from: a file, or stdin for `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Stdin,
    File(PathBuf),
}

impl Source {
    /// `-` is stdin, anything else a file.
    pub fn new(path: &Path) -> Self {
        if path == Path::new("-") {
            Source::Stdin
        } else {
            Source::File(path.to_path_buf())
        }
    }

    /// Every byte of the input.
    pub fn read(&self) -> Result<Vec<u8>> {
        match self {
            Source::Stdin => {
                let mut bytes = Vec::new();
                io::stdin()
                    .lock()
                    .read_to_end(&mut bytes)
                    .context("cannot read stdin")?;
                Ok(bytes)
            }
            Source::File(path) => {
                fs::read(path).with_context(|| format!("cannot read {}", path.display()))
            }
        }
    }

    /// The name used in messages.
    pub fn display(&self) -> String {
        match self {
            Source::Stdin => "<stdin>".to_string(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

/// Where bytes go: a file, or stdout for `-`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    Stdout,
    File(PathBuf),
}

impl Sink {
    /// `-` is stdout, anything else a file.
    pub fn new(path: &Path) -> Self {
        if path == Path::new("-") {
            Sink::Stdout
        } else {
            Sink::File(path.to_path_buf())
        }
    }

    /// Whether the data goes to stdout (so that reports must go to stderr).
    pub fn is_stdout(&self) -> bool {
        matches!(self, Sink::Stdout)
    }

    /// The name used in messages.
    pub fn display(&self) -> String {
        match self {
            Sink::Stdout => "<stdout>".to_string(),
            Sink::File(path) => path.display().to_string(),
        }
    }

    /// Refuses early (before any work) a file output that exists when `force` is off (see
    /// [`check_not_clobbering`]), or stdout when it is closed.
    pub fn check_writable(&self, force: bool) -> Result<()> {
        match self {
            Sink::File(path) => check_not_clobbering(path, force),
            Sink::Stdout => check_stdout_open(),
        }
    }

    /// Writes `bytes` completely ([`write_file`]), or leaves nothing behind. Binary data is not
    /// written to a terminal, nor to a stdout that was closed.
    pub fn write(&self, bytes: &[u8], force: bool) -> Result<()> {
        match self {
            Sink::File(path) => write_file(path, bytes, force),
            Sink::Stdout => {
                check_stdout_open()?;
                let mut out = io::stdout().lock();
                if out.is_terminal() {
                    bail!(
                        "refusing to write binary data to a terminal: redirect stdout or use -o FILE"
                    );
                }
                out.write_all(bytes)
                    .and_then(|()| out.flush())
                    .context("cannot write to stdout")
            }
        }
    }
}

/// Prints a report line on stdout, or on stderr when stdout carries the data.
pub fn report(data_on_stdout: bool, line: &str) {
    if data_on_stdout {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// Set when stdout was closed as the process started ([`note_stdout_closed_at_start`]).
static STDOUT_CLOSED: AtomicBool = AtomicBool::new(false);

/// Records that stdout was closed when the process started. Called by `main` only: the Rust
/// runtime then opens `/dev/null` in its place before `main` runs, so that data written to
/// stdout would vanish without an error; [`Sink::Stdout`] refuses to write instead.
pub fn note_stdout_closed_at_start() {
    STDOUT_CLOSED.store(true, Ordering::Relaxed);
}

/// An error if stdout was closed when the process started.
fn check_stdout_open() -> Result<()> {
    if STDOUT_CLOSED.load(Ordering::Relaxed) {
        bail!("stdout is closed, so the output would be lost: redirect stdout or use -o FILE");
    }
    Ok(())
}

/// An error, before any work, if [`write_file`] would refuse the output `path` (a path the user
/// named): without `force` anything existing there (a file, a symbolic link, a device); with or
/// without it a folder, a block device or a socket.
pub fn check_not_clobbering(path: &Path, force: bool) -> Result<()> {
    output_destination(path, force).map(|_| ())
}

/// Writes `bytes` to the output `path` (a path the user named) completely, or leaves nothing
/// behind:
/// - nothing there, or a regular file (replaced only with `force`): written to a temporary file
///   beside it, synced and moved into place, so that the output appears complete or not at all;
///   without `force` an existing file is never replaced, even one created while we were writing;
/// - a symbolic link (`force`): the link is kept, and the file it points to is written as above
///   (the temporary file beside that file), or written through if it is a device;
/// - a character device or FIFO (`force`; `/dev/null` when timing a decoder): opened and
///   written in place, never replaced.
///
/// Temporary files of the same output left by killed runs are removed first, with a note.
pub fn write_file(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    match output_destination(path, force)? {
        Destination::Replace(file) => {
            let stem = temp_stem(&file);
            for stale in stale_temps(folder_of(&file)) {
                if stale.stem == stem.as_encoded_bytes() {
                    stale.remove();
                }
            }
            replace_file(&file, bytes, force)
        }
        Destination::Through(device) => write_through(&device, bytes),
    }
}

/// How the bytes of an output reach it.
#[derive(Debug, PartialEq, Eq)]
enum Destination {
    /// A regular file at this path, new or replaced: a temporary file beside it, renamed onto it.
    Replace(PathBuf),
    /// A character device or FIFO at this path: opened and written in place.
    Through(PathBuf),
}

/// What an existing path is, as far as writing to it goes.
enum Existing {
    /// A regular file: replaced.
    File,
    /// A character device or FIFO (its description): written through.
    Device(&'static str),
    /// Something no output is written to (its description).
    Unwritable(&'static str),
}

impl Existing {
    fn of(meta: &fs::Metadata) -> Self {
        let kind = meta.file_type();
        if kind.is_file() {
            return Existing::File;
        }
        if kind.is_dir() {
            return Existing::Unwritable("a folder");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if kind.is_char_device() {
                return Existing::Device("a character device");
            }
            if kind.is_fifo() {
                return Existing::Device("a FIFO (named pipe)");
            }
            if kind.is_block_device() {
                return Existing::Unwritable("a block device");
            }
            if kind.is_socket() {
                return Existing::Unwritable("a socket");
            }
        }
        Existing::Unwritable("not a regular file")
    }
}

/// Where the bytes for the output `path` go, symbolic links followed; an error where that is
/// refused (something exists and `force` is off) or impossible (a folder, a block device, a
/// socket).
fn output_destination(path: &Path, force: bool) -> Result<Destination> {
    let Some(meta) = inspect(path)? else {
        return Ok(Destination::Replace(path.to_path_buf()));
    };
    let (target, named) = if meta.file_type().is_symlink() {
        let target = resolve_link(path)?;
        let named = format!(
            "{} (a symbolic link to {})",
            path.display(),
            target.display()
        );
        (target, named)
    } else {
        (path.to_path_buf(), path.display().to_string())
    };
    match inspect(&target)?.as_ref().map(Existing::of) {
        Some(Existing::Unwritable(what)) => bail!("cannot write {named}: it is {what}"),
        Some(Existing::Device(what)) if !force => {
            bail!("{named} is {what}: use --force to write to it")
        }
        _ if !force => bail!("{named} already exists: use --force to overwrite it"),
        Some(Existing::Device(_)) => Ok(Destination::Through(target)),
        Some(Existing::File) | None => Ok(Destination::Replace(target)),
    }
}

/// The metadata of `path` itself (a link is not followed); `None` when nothing is there.
fn inspect(path: &Path) -> Result<Option<fs::Metadata>> {
    match fs::symlink_metadata(path) {
        Ok(meta) => Ok(Some(meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    }
}

/// Longest chain of symbolic links followed (as on Linux).
const MAX_LINK_HOPS: usize = 40;

/// The path the symbolic link `link` finally points to (which need not exist), each link's
/// target taken relative to the link's folder.
fn resolve_link(link: &Path) -> Result<PathBuf> {
    let mut path = link.to_path_buf();
    for _ in 0..MAX_LINK_HOPS {
        match inspect(&path)? {
            Some(meta) if meta.file_type().is_symlink() => {
                let next = fs::read_link(&path)
                    .with_context(|| format!("cannot read the symbolic link {}", path.display()))?;
                path = match path.parent() {
                    Some(folder) => folder.join(next),
                    None => next,
                };
            }
            _ => return Ok(path),
        }
    }
    bail!(
        "cannot write {}: more than {MAX_LINK_HOPS} symbolic links in a row",
        link.display()
    )
}

/// The folder of `path` (`.` for a bare file name).
fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to a temporary file beside `target`, synced, and moves it onto `target`: only
/// where nothing is there unless `force` (then whatever is there, a link included, is replaced).
fn replace_file(target: &Path, bytes: &[u8], force: bool) -> Result<()> {
    let mut temp = TempFile::create_beside(target)?;
    temp.file
        .write_all(bytes)
        .and_then(|()| temp.file.sync_all())
        .with_context(|| format!("cannot write {}", temp.path.display()))?;
    temp.persist(target, force)
}

/// Writes `bytes` into the character device or FIFO at `path`, in place.
fn write_through(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file = File::options()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {} for writing", path.display()))?;
    // a regular file put there since it was inspected would be written over in place
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect {}", path.display()))?;
    if !matches!(Existing::of(&meta), Existing::Device(_)) {
        bail!(
            "{} is no longer a device or FIFO: nothing written",
            path.display()
        );
    }
    file.write_all(bytes)
        .and_then(|()| file.flush())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Most bytes of an output's name kept in its temporary files' names: with the `.` in front and
/// `.PID-N.tmp` after (at most 36 bytes) the name stays within the 255 bytes most file systems
/// allow, so that names from 220 to 255 bytes can be written too.
const TEMP_STEM_BYTES: usize = 218;

/// The part of the temporary files' names that names their output `target`: its file name, cut
/// to [`TEMP_STEM_BYTES`] on Unix.
fn temp_stem(target: &Path) -> OsString {
    let name = target
        .file_name()
        .map_or_else(OsString::new, |n| n.to_os_string());
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let bytes = name.as_bytes();
        if bytes.len() > TEMP_STEM_BYTES {
            return std::ffi::OsStr::from_bytes(&bytes[..TEMP_STEM_BYTES]).to_os_string();
        }
    }
    name
}

/// The name of a temporary file: `.STEM.PID-N.tmp`.
fn temp_name(stem: &OsString, pid: u32, n: u64) -> OsString {
    let mut name = OsString::from(".");
    name.push(stem);
    name.push(format!(".{pid}-{n}.tmp"));
    name
}

/// A temporary file ([`temp_name`]) whose process is gone: left by a run killed while writing.
#[derive(Debug)]
struct StaleTemp {
    path: PathBuf,
    /// The [`temp_stem`] of the output it was for, as encoded bytes.
    stem: Vec<u8>,
    pid: u32,
}

impl StaleTemp {
    /// Removes the file, with a note on stderr (or why it could not be removed).
    fn remove(&self) {
        match fs::remove_file(&self.path) {
            Ok(()) => eprintln!(
                "note: removed {}, left by an interrupted run (process {} is gone)",
                self.path.display(),
                self.pid
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => eprintln!(
                "note: cannot remove {}, left by an interrupted run: {e}",
                self.path.display()
            ),
        }
    }
}

/// The temporary files in `folder` whose process is gone ([`process_is_gone`]). A folder that
/// cannot be listed has none (writing into it reports what is wrong).
fn stale_temps(folder: &Path) -> Vec<StaleTemp> {
    let Ok(entries) = fs::read_dir(folder) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let (stem, pid) = parse_temp_name(&entry.file_name())?;
            process_is_gone(pid).then(|| StaleTemp {
                path: entry.path(),
                stem,
                pid,
            })
        })
        .collect()
}

/// The stem (encoded bytes) and process id of a [`temp_name`]; `None` for any other name.
fn parse_temp_name(name: &std::ffi::OsStr) -> Option<(Vec<u8>, u32)> {
    let bytes = name.as_encoded_bytes();
    let inner = bytes.strip_prefix(b".")?.strip_suffix(b".tmp")?;
    let dot = inner.iter().rposition(|&b| b == b'.')?;
    let (stem, owner) = (&inner[..dot], &inner[dot + 1..]);
    let (pid, n) = std::str::from_utf8(owner).ok()?.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if stem.is_empty() || !digits(pid) || !digits(n) {
        return None;
    }
    Some((stem.to_vec(), pid.parse().ok()?))
}

/// Whether no process `pid` runs: its `/proc` entry is absent while `/proc` is mounted.
#[cfg(target_os = "linux")]
fn process_is_gone(pid: u32) -> bool {
    let proc_mounted = Path::new("/proc/self").exists();
    let absent = matches!(
        fs::symlink_metadata(format!("/proc/{pid}")),
        Err(e) if e.kind() == io::ErrorKind::NotFound
    );
    proc_mounted && absent
}

/// Elsewhere a process is never known to be gone: temporary files are left alone.
#[cfg(not(target_os = "linux"))]
fn process_is_gone(_pid: u32) -> bool {
    false
}

/// A file being written; removed on drop unless [`TempFile::persist`] moved it into place.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// A new, empty, uniquely named file ([`temp_name`]) in the folder of `target`.
    fn create_beside(target: &Path) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let folder = folder_of(target);
        let stem = temp_stem(target);
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let path = folder.join(temp_name(&stem, std::process::id(), n));
            match File::options().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(TempFile {
                        path,
                        file,
                        persisted: false,
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("cannot create a temporary file in {}", folder.display())
                    })
                }
            }
        }
        bail!(
            "cannot find a free temporary file name in {}",
            folder.display()
        )
    }

    /// Moves the file to `target`. Without `force` this is a hard link (which fails if
    /// `target` exists) followed by removing the temporary name; where hard links are not
    /// supported, a check followed by a rename.
    fn persist(mut self, target: &Path, force: bool) -> Result<()> {
        let exists = || {
            anyhow::anyhow!(
                "{} already exists: use --force to overwrite it",
                target.display()
            )
        };
        let moved = if force {
            fs::rename(&self.path, target)
        } else {
            match fs::hard_link(&self.path, target) {
                Ok(()) => fs::remove_file(&self.path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Err(exists()),
                Err(_) => {
                    if inspect(target)?.is_some() {
                        return Err(exists());
                    }
                    fs::rename(&self.path, target)
                }
            }
        };
        moved.with_context(|| format!("cannot write {}", target.display()))?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// An error, before anything is written, if the archive entry file `target` exists and `force`
/// is off (whatever it is: [`Extraction`] replaces it, never writes through it), or if it cannot
/// be inspected (a name too long, say).
pub fn check_entry_target(target: &Path, force: bool) -> Result<()> {
    if inspect(target)?.is_some() && !force {
        bail!(
            "{} already exists: use --force to overwrite it",
            target.display()
        );
    }
    Ok(())
}

/// Archive entries written under a folder one at a time, each through a temporary file and
/// moved into place, and undone on failure: [`Extraction::rollback`] (or dropping it unfinished)
/// removes the files written and then the folders it created, deepest first, when empty; a
/// folder that existed before is never removed.
///
/// Entries never leave the folder: their paths must be plain relative paths, the folders on their
/// way real folders (not symbolic links), and an existing entry file (with `force`) is replaced
/// itself, a link or device included, never written through.
pub struct Extraction {
    root: PathBuf,
    /// The folders this extraction created, each after its parent.
    created_folders: Vec<PathBuf>,
    /// The files written so far.
    written: Vec<PathBuf>,
    /// The stale temporary files ([`stale_temps`]) of each folder written to, listed once.
    stale: HashMap<PathBuf, Vec<StaleTemp>>,
    /// Finished or rolled back: nothing is left to undo.
    settled: bool,
}

impl Extraction {
    /// Starts an extraction into `root`, creating it (and its missing parents) if needed.
    pub fn new(root: &Path) -> Result<Self> {
        let mut extraction = Extraction {
            root: root.to_path_buf(),
            created_folders: Vec::new(),
            written: Vec::new(),
            stale: HashMap::new(),
            settled: false,
        };
        // on failure, dropping `extraction` removes the parents created so far
        extraction.create_root()?;
        Ok(extraction)
    }

    /// Creates the root folder and its missing parents.
    fn create_root(&mut self) -> Result<()> {
        let mut missing = Vec::new();
        let mut folder = self.root.clone();
        while !folder.as_os_str().is_empty() && inspect(&folder)?.is_none() {
            missing.push(folder.clone());
            match folder.parent() {
                Some(parent) => folder = parent.to_path_buf(),
                None => break,
            }
        }
        for folder in missing.iter().rev() {
            self.create_folder(folder)?;
        }
        Ok(())
    }

    /// Creates `folder`, remembered as created; one that someone else created meanwhile is used,
    /// but not remembered.
    fn create_folder(&mut self, folder: &Path) -> Result<()> {
        match fs::create_dir(folder) {
            Ok(()) => {
                self.created_folders.push(folder.to_path_buf());
                Ok(())
            }
            Err(e)
                if e.kind() == io::ErrorKind::AlreadyExists
                    && inspect(folder)?.is_some_and(|m| m.is_dir()) =>
            {
                Ok(())
            }
            Err(e) => {
                Err(e).with_context(|| format!("cannot create the folder {}", folder.display()))
            }
        }
    }

    /// Writes one entry's `bytes` to `relative` under the folder, creating the folders on its
    /// way, and returns the file's path. An existing file is replaced only with `force`. Errors
    /// name the entry's whole target path.
    pub fn write_entry(&mut self, relative: &Path, bytes: &[u8], force: bool) -> Result<PathBuf> {
        self.write_entry_file(relative, bytes, force)
            .with_context(|| format!("cannot write {}", self.root.join(relative).display()))
    }

    fn write_entry_file(&mut self, relative: &Path, bytes: &[u8], force: bool) -> Result<PathBuf> {
        let path = self.create_parents(relative)?;
        self.remove_stale_temps_of(&path);
        replace_file(&path, bytes, force)?;
        self.written.push(path.clone());
        Ok(path)
    }

    /// `root/relative`, creating the folders on its way. Refuses a path that would leave the
    /// root: `..`, absolute or prefixed components, or an existing component that is a symbolic
    /// link or not a folder.
    fn create_parents(&mut self, relative: &Path) -> Result<PathBuf> {
        let components: Vec<_> = relative.components().collect();
        if components.is_empty() {
            bail!("refusing to write an entry with an empty name");
        }
        let mut path = self.root.clone();
        for (i, component) in components.iter().enumerate() {
            let Component::Normal(part) = component else {
                bail!(
                    "refusing to write {}: not a plain relative path",
                    relative.display()
                );
            };
            path.push(part);
            if i + 1 == components.len() {
                break;
            }
            match inspect(&path)? {
                Some(meta) if meta.is_dir() => {}
                Some(_) => bail!(
                    "refusing to write under {}: it is not a folder (or is a symbolic link)",
                    path.display()
                ),
                None => self.create_folder(&path)?,
            }
        }
        Ok(path)
    }

    /// Removes the stale temporary files of `file`, each folder listed once per extraction.
    fn remove_stale_temps_of(&mut self, file: &Path) {
        let folder = folder_of(file);
        let stale = self
            .stale
            .entry(folder.to_path_buf())
            .or_insert_with(|| stale_temps(folder));
        let stem = temp_stem(file);
        stale.retain(|s| {
            let of_file = s.stem == stem.as_encoded_bytes();
            if of_file {
                s.remove();
            }
            !of_file
        });
    }

    /// Keeps everything written.
    pub fn finish(mut self) {
        self.settled = true;
    }

    /// Removes the files written (a file replaced with `force` is gone too), then the folders
    /// created, deepest first, where empty.
    pub fn rollback(mut self) {
        self.undo();
    }

    fn undo(&mut self) {
        self.settled = true;
        for file in self.written.drain(..).rev() {
            match fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => eprintln!("note: cannot remove {}: {e}", file.display()),
            }
        }
        for folder in self.created_folders.drain(..).rev() {
            remove_folder_if_empty(&folder);
        }
    }
}

impl Drop for Extraction {
    fn drop(&mut self) {
        if !self.settled {
            self.undo();
        }
    }
}

/// Removes `folder` if it is empty; a note on stderr if it is empty but cannot be removed.
fn remove_folder_if_empty(folder: &Path) {
    let Err(e) = fs::remove_dir(folder) else {
        return;
    };
    let has_entries = fs::read_dir(folder).is_ok_and(|mut entries| entries.next().is_some());
    if e.kind() != io::ErrorKind::NotFound && !has_entries {
        eprintln!("note: cannot remove the folder {}: {e}", folder.display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_atomically_and_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("a.bin");
        write_file(&out, b"one", false).unwrap();
        assert!(write_file(&out, b"two", false).is_err());
        assert_eq!(fs::read(&out).unwrap(), b"one");
        write_file(&out, b"two", true).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left");
        assert!(write_file(&dir.path().join("missing/x"), b"x", false).is_err());
    }

    #[test]
    fn entries_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let mut extraction = Extraction::new(dir.path()).unwrap();
        let p = extraction
            .write_entry(Path::new("a/b/c.png"), b"c", false)
            .unwrap();
        assert_eq!(p, dir.path().join("a/b/c.png"));
        assert!(dir.path().join("a/b").is_dir());
        for bad in ["../x", "/x", ""] {
            assert!(extraction.write_entry(Path::new(bad), b"", false).is_err());
        }
        fs::write(dir.path().join("f"), b"").unwrap();
        assert!(extraction
            .write_entry(Path::new("f/x"), b"", false)
            .is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/tmp", dir.path().join("link")).unwrap();
            let err = extraction
                .write_entry(Path::new("link/x"), b"", false)
                .unwrap_err();
            assert!(format!("{err:#}").contains("symbolic link"), "{err:#}");
        }
        extraction.finish();
        assert_eq!(fs::read(dir.path().join("a/b/c.png")).unwrap(), b"c");
    }

    #[test]
    fn a_rolled_back_extraction_removes_only_what_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("new/out");
        fs::create_dir(dir.path().join("kept")).unwrap();
        let mut extraction = Extraction::new(&root).unwrap();
        extraction
            .write_entry(Path::new("x/y/z.png"), b"z", false)
            .unwrap();
        // a folder that existed before, and one that is not empty at rollback, stay
        fs::create_dir_all(root.join("old")).unwrap();
        extraction
            .write_entry(Path::new("old/o.png"), b"o", false)
            .unwrap();
        extraction
            .write_entry(Path::new("full/f.png"), b"f", false)
            .unwrap();
        fs::write(root.join("full/someone-else's"), b"").unwrap();
        extraction.rollback();
        assert!(root.join("old").is_dir() && !root.join("old/o.png").exists());
        assert!(root.join("full/someone-else's").exists());
        assert!(!root.join("x").exists());
        assert!(dir.path().join("kept").is_dir());
        // dropping an unfinished extraction rolls it back too
        let fresh = dir.path().join("fresh");
        let mut extraction = Extraction::new(&fresh).unwrap();
        extraction
            .write_entry(Path::new("a/b.png"), b"", false)
            .unwrap();
        drop(extraction);
        assert!(!fresh.exists());
    }

    #[test]
    fn entry_errors_name_the_whole_target() {
        let dir = tempfile::tempdir().unwrap();
        let mut extraction = Extraction::new(dir.path()).unwrap();
        let long = "n".repeat(300);
        for relative in [format!("{long}.png"), format!("sub/{long}/x.png")] {
            let err = extraction
                .write_entry(Path::new(&relative), b"", false)
                .unwrap_err();
            let target = dir.path().join(&relative);
            assert!(
                format!("{err:#}").contains(&target.display().to_string()),
                "{err:#}"
            );
        }
        extraction.rollback();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn names_up_to_255_bytes_are_written() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("é".repeat(127) + "x");
        assert_eq!(out.file_name().unwrap().len(), 255);
        write_file(&out, b"long", false).unwrap();
        assert_eq!(fs::read(&out).unwrap(), b"long");
    }

    #[test]
    fn temporary_names_parse_back() {
        let stem = temp_stem(Path::new("dir/a.b.png"));
        let name = temp_name(&stem, 123, 4);
        assert_eq!(name, ".a.b.png.123-4.tmp");
        assert_eq!(parse_temp_name(&name), Some((b"a.b.png".to_vec(), 123)));
        for other in [
            ".a.png.tmp",
            "a.png.1-2.tmp",
            ".a.png.1-.tmp",
            ".a.png.x-2.tmp",
            "..1-2.tmp",
        ] {
            assert_eq!(
                parse_temp_name(std::ffi::OsStr::new(other)),
                None,
                "{other}"
            );
        }
    }
}
