//! Files in and out for the codec subcommands: `-` for stdin/stdout, outputs written to a
//! temporary file in the output's folder and moved into place only when complete, never over
//! an existing file without `--force`, and PNG/JPEG ⇄ [`Image`] conversion.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{bail, Context, Result};
use idfcodec_codec::format::PixelFormat;
use idfcodec_codec::{png, Image};

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

    /// Refuses early (before any work) a file output that exists when `force` is off, or stdout
    /// when it is closed.
    pub fn check_writable(&self, force: bool) -> Result<()> {
        match self {
            Sink::File(path) => check_not_clobbering(path, force),
            Sink::Stdout => check_stdout_open(),
        }
    }

    /// Writes `bytes` completely, or leaves nothing behind. Binary data is not written to a
    /// terminal, nor to a stdout that was closed.
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

/// An error if `path` exists (or is a dangling link) and `force` is off.
pub fn check_not_clobbering(path: &Path, force: bool) -> Result<()> {
    if !force && fs::symlink_metadata(path).is_ok() {
        bail!(
            "{} already exists: use --force to overwrite it",
            path.display()
        );
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same folder, synced and then moved
/// into place: the output appears complete or not at all. Without `force` an existing file is
/// never replaced, even one created while we were writing.
pub fn write_file(path: &Path, bytes: &[u8], force: bool) -> Result<()> {
    check_not_clobbering(path, force)?;
    let mut temp = TempFile::create_beside(path)?;
    temp.file
        .write_all(bytes)
        .and_then(|()| temp.file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    temp.persist(path, force)
}

/// A file being written; removed on drop unless [`TempFile::persist`] moved it into place.
struct TempFile {
    path: PathBuf,
    file: File,
    persisted: bool,
}

impl TempFile {
    /// A new, empty, uniquely named file in the folder of `target`.
    fn create_beside(target: &Path) -> Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let folder = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let stem = target
            .file_name()
            .map_or_else(OsString::new, |n| n.to_os_string());
        for _ in 0..100 {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let mut name = OsString::from(".");
            name.push(&stem);
            name.push(format!(".{}-{n}.tmp", std::process::id()));
            let path = folder.join(name);
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
                    return Err(e)
                        .with_context(|| format!("cannot create a file in {}", folder.display()))
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
        let moved = if force {
            fs::rename(&self.path, target)
        } else {
            match fs::hard_link(&self.path, target) {
                Ok(()) => fs::remove_file(&self.path),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return check_not_clobbering(target, false);
                }
                Err(_) => {
                    check_not_clobbering(target, false)?;
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

/// `root` joined with the relative path `name`, creating the folders on the way. Refuses a
/// path that would leave `root`: `..`, absolute or prefixed components, or an existing
/// component under `root` that is a symbolic link or not a folder.
pub fn create_path_under(root: &Path, name: &Path) -> Result<PathBuf> {
    let mut path = root.to_path_buf();
    let components: Vec<_> = name.components().collect();
    for (i, component) in components.iter().enumerate() {
        let Component::Normal(part) = component else {
            bail!(
                "refusing to write {}: not a plain relative path",
                name.display()
            );
        };
        path.push(part);
        if i + 1 == components.len() {
            break;
        }
        match fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => bail!(
                "refusing to write under {}: it is not a folder (or is a symbolic link)",
                path.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir(&path)
                .with_context(|| format!("cannot create the folder {}", path.display()))?,
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
        }
    }
    Ok(path)
}

/// Decodes an image file into an [`Image`]: a PNG exactly as stored (every colour type and bit
/// depth, palette, tRNS and colour chunks; see [`idfcodec_codec::png`]), anything else the `image`
/// crate reads (JPEG, PNM) by its pixels.
pub fn decode_picture(bytes: &[u8], name: &str) -> Result<Image> {
    Ok(decode_picture_noting(bytes, name)?.0)
}

/// [`decode_picture`], with a note for each thing of the file that is not kept (PNG chunks that
/// do not change how the pixels look, bytes after the end).
pub fn decode_picture_noting(bytes: &[u8], name: &str) -> Result<(Image, Vec<String>)> {
    if bytes.starts_with(PNG_SIGNATURE) {
        let source = png::read(bytes).with_context(|| format!("cannot read {name}"))?;
        let mut notes: Vec<String> = source
            .dropped()
            .iter()
            .map(|c| format!("dropped the {} chunk ({} bytes)", c.name(), c.len))
            .collect();
        if source.trailing_bytes() > 0 {
            notes.push(format!(
                "ignored {} bytes after the PNG's end",
                source.trailing_bytes()
            ));
        }
        let image = source
            .to_image()
            .with_context(|| format!("cannot read {name}"))?;
        return Ok((image, notes));
    }
    let image = codec_image(read_picture(bytes, name)?)
        .map_err(|color| anyhow::anyhow!("{name} is {color}, which idfcodec cannot code"))?;
    Ok((
        image,
        vec!["read by its pixels only (not a PNG)".to_string()],
    ))
}

/// The first bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Decodes a PNG or JPEG file (whatever its color type).
pub fn read_picture(bytes: &[u8], name: &str) -> Result<image::DynamicImage> {
    image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .with_context(|| format!("cannot read {name}"))?
        .decode()
        .with_context(|| format!("{name} is not a PNG or JPEG image idfcodec can read"))
}

/// The codec's [`Image`] of a decoded picture (8- and 16-bit gray, gray+alpha, RGB and RGBA), or
/// the description of its color type ("32-bit float RGB") when the codec cannot code it.
pub fn codec_image(picture: image::DynamicImage) -> Result<Image, String> {
    use image::DynamicImage as D;
    let (width, height) = (picture.width(), picture.height());
    let wide = |v: Vec<u16>| v.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>();
    let (format, samples) = match picture {
        D::ImageLuma8(p) => (PixelFormat::Gray8, p.into_raw()),
        D::ImageLumaA8(p) => (PixelFormat::GrayAlpha8, p.into_raw()),
        D::ImageRgb8(p) => (PixelFormat::Rgb8, p.into_raw()),
        D::ImageRgba8(p) => (PixelFormat::Rgba8, p.into_raw()),
        D::ImageLuma16(p) => (PixelFormat::Gray16, wide(p.into_raw())),
        D::ImageLumaA16(p) => (PixelFormat::GrayAlpha16, wide(p.into_raw())),
        D::ImageRgb16(p) => (PixelFormat::Rgb16, wide(p.into_raw())),
        D::ImageRgba16(p) => (PixelFormat::Rgba16, wide(p.into_raw())),
        other => return Err(describe_color(other.color())),
    };
    Image::new(width, height, format, samples).map_err(|e| e.to_string())
}

/// Encodes an [`Image`] as PNG with its own colour type and bit depth, palette, transparency and
/// colour chunks.
pub fn encode_png(image: &Image) -> Result<Vec<u8>> {
    let source = png::SourceImage::from_image(image).context("cannot write the image as PNG")?;
    png::write(&source).context("PNG encoding failed")
}

/// A human name of a decoded picture's color type ("8-bit RGB").
pub fn describe_color(color: image::ColorType) -> String {
    use image::ColorType::*;
    match color {
        L8 => "8-bit grayscale",
        La8 => "8-bit grayscale with alpha",
        Rgb8 => "8-bit RGB",
        Rgba8 => "8-bit RGBA",
        L16 => "16-bit grayscale",
        La16 => "16-bit grayscale with alpha",
        Rgb16 => "16-bit RGB",
        Rgba16 => "16-bit RGBA",
        Rgb32F => "32-bit float RGB",
        Rgba32F => "32-bit float RGBA",
        _ => "in an unsupported color type",
    }
    .to_string()
}

/// Bits per dimension of `bytes` bytes over `dimensions` samples.
pub fn bpd(bytes: u64, dimensions: u64) -> f64 {
    bytes as f64 * 8.0 / dimensions.max(1) as f64
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
    fn paths_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let p = create_path_under(dir.path(), Path::new("a/b/c.png")).unwrap();
        assert_eq!(p, dir.path().join("a/b/c.png"));
        assert!(dir.path().join("a/b").is_dir());
        assert!(create_path_under(dir.path(), Path::new("../x")).is_err());
        assert!(create_path_under(dir.path(), Path::new("/x")).is_err());
        fs::write(dir.path().join("f"), b"").unwrap();
        assert!(create_path_under(dir.path(), Path::new("f/x")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/tmp", dir.path().join("link")).unwrap();
            assert!(create_path_under(dir.path(), Path::new("link/x")).is_err());
        }
    }
}
