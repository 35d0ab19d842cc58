//! `idfcodec compress`: PNG/JPEG images → `.idf` files, or many images → one `.idfa` archive.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use idfcodec_codec::format::EntryName;
use idfcodec_codec::{bits_per_dimension, ArchiveLayout, Effort, Image, NamedImage};

use super::io::{self, Sink, Source};
use crate::coding::Coding;
use crate::picture;

/// Suffix of single-image files.
pub const IMAGE_SUFFIX: &str = ".idf";
/// Suffix of archives.
pub const ARCHIVE_SUFFIX: &str = ".idfa";
/// File extensions read as images inside folders (any case).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  idfcodec compress digit.png                      # writes digit.png.idf
  idfcodec compress a.png b.png --force            # a.png.idf, b.png.idf, replacing old ones
  idfcodec compress scan.png -o scan.idf --model mnist --threads 4
  idfcodec compress photo.png --effort 9            # try every model, keep the smallest
  cat digit.png | idfcodec compress - > digit.idf
  idfcodec compress --archive digits.idfa digits/  # every PNG/JPEG under digits/, one archive")]
pub struct CompressArgs {
    /// Images to compress: PNG (every colour type and bit depth; palette, transparency and
    /// colour information are kept) or JPEG/PNM; `-` reads stdin. With --archive: files
    /// and folders (searched recursively for .png, .jpg and .jpeg files).
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,
    /// Output file (`-`: stdout); only with a single input. Default: the input's name plus
    /// `.idf` (img.png → img.png.idf), or stdout when reading stdin.
    #[arg(short, long, value_name = "OUT.idf", conflicts_with = "archive")]
    pub output: Option<PathBuf>,
    /// Put all inputs into one archive file. Entry names are the paths relative to each folder
    /// given, or the file names of files given directly.
    #[arg(long, value_name = "OUT.idfa")]
    pub archive: Option<PathBuf>,
    /// How the archive lays out its entries. auto: chained for bits-back models (the VAEs),
    /// independent otherwise. chained: one coded stream for all entries (format version 4), so a
    /// bits-back model carries its bits from image to image and no entry pays a stream start of
    /// its own; decoding runs on one thread and needs the whole archive in memory. independent:
    /// each entry its own streams, coded and decoded in parallel, extracted one by one.
    #[arg(long, value_enum, default_value_t = LayoutArg::Auto, requires = "archive")]
    pub archive_layout: LayoutArg,
    #[command(flatten)]
    pub coding: CodingArgs,
    /// Replace existing output files (a symbolic link is kept and the file it points to
    /// replaced; a device or FIFO such as /dev/null is written to).
    #[arg(long)]
    pub force: bool,
    /// Also say what of each input is not kept (PNG chunks other than the pixels, palette,
    /// transparency and colour information; bytes after a PNG's end).
    #[arg(short, long)]
    pub verbose: bool,
}

/// `--archive-layout` (the codec's [`ArchiveLayout`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    Auto,
    Chained,
    Independent,
}

impl From<LayoutArg> for ArchiveLayout {
    fn from(a: LayoutArg) -> Self {
        match a {
            LayoutArg::Auto => ArchiveLayout::Auto,
            LayoutArg::Chained => ArchiveLayout::Chained,
            LayoutArg::Independent => ArchiveLayout::Independent,
        }
    }
}

/// Encoder settings shared by `compress` and `verify` (what each effort tries is the codec's
/// [`Effort::preset`]).
#[derive(Debug, Args)]
pub struct CodingArgs {
    /// Learned model for the gray plane of 8-bit grayscale (and gray+alpha) images, or for 8-bit
    /// RGB images (an RGB model): the name of an embedded model (see `idfcodec models`) or a
    /// model file (.safetensors made by `idfcodec export`). Default: see --effort. Images the
    /// model cannot code (other channel counts or bit depths) are context-coded, with a note on
    /// stderr. Planes and formats no learned model codes are coded by the built-in context coder
    /// (the report says "model none"). A file coded with a model file needs the same file to
    /// decompress.
    #[arg(long, value_name = "NAME|PATH")]
    pub model: Option<String>,
    /// Worker threads (0: all cores). The output is identical for every count.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Tile side in pixels, a power of two from 16 to 512. Larger images are cut into tiles
    /// coded independently (in parallel); smaller ones are coded whole. Default: 128 with a
    /// learned model, 512 for context coding (measured best for each).
    #[arg(long, value_name = "N")]
    pub tile: Option<u32>,
    /// Effort, 1 to 9 (any effort decodes alike). 1-3: context coding only (fastest); 4:
    /// --model, else the embedded gray model for gray images (context coding for RGB); 5-6: the
    /// same and context coding, the smaller file is kept; 7-9: --model or every embedded model
    /// for the format, and context coding, smallest kept (slowest). Other pixel formats are
    /// context-coded at every effort.
    #[arg(long, default_value_t = Effort::DEFAULT.level(), value_name = "1-9",
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub effort: u8,
}

impl CodingArgs {
    /// The settings for the codec's policy (the `--model` given is read on first use).
    pub fn coding(&self) -> Result<Coding> {
        Ok(Coding::new(
            self.model.as_deref(),
            Effort::new(self.effort)?,
            self.threads,
            self.tile,
        ))
    }
}

pub fn run(a: CompressArgs) -> Result<()> {
    match &a.archive {
        Some(archive) => compress_to_archive(&a, archive),
        None => {
            if a.inputs.len() > 1 && a.output.is_some() {
                bail!("-o/--output takes one input; with several, each INPUT is written to INPUT.idf (or use --archive)");
            }
            let coding = a.coding.coding()?;
            a.inputs
                .iter()
                .try_for_each(|input| compress_one(&a, &coding, input))
        }
    }
}

/// `INPUT` + `.idf`.
pub fn default_output(input: &Path) -> PathBuf {
    let mut name = OsString::from(input.as_os_str());
    name.push(IMAGE_SUFFIX);
    PathBuf::from(name)
}

fn compress_one(a: &CompressArgs, coding: &Coding, input: &Path) -> Result<()> {
    let source = Source::new(input);
    let sink = match (&a.output, &source) {
        (Some(out), _) => Sink::new(out),
        (None, Source::Stdin) => Sink::Stdout,
        (None, Source::File(path)) => Sink::File(default_output(path)),
    };
    sink.check_writable(a.force)?;
    let input_bytes = source.read()?;
    let (image, notes) = picture::decode_picture_noting(&input_bytes, &source.display())?;
    if a.verbose {
        for note in notes {
            eprintln!("{}: {note}", source.display());
        }
    }
    // the candidates first: a `--model` that cannot be read is its own error, not this image's
    coding.plan(image.pixel_format())?;
    let compressed = coding
        .compress(&image)
        .with_context(|| format!("cannot compress {}", source.display()))?;
    let coded = &compressed.bytes;
    sink.write(coded, a.force)?;
    io::report(
        sink.is_stdout(),
        &format!(
            "{} → {}: {}×{}, {} → {} bytes, {:.3} bpd (input {:.3} bpd), model {}",
            source.display(),
            sink.display(),
            image.width(),
            image.height(),
            input_bytes.len(),
            coded.len(),
            bits_per_dimension(coded.len() as u64, image.dimensions()),
            bits_per_dimension(input_bytes.len() as u64, image.dimensions()),
            compressed.candidate.name()
        ),
    );
    Ok(())
}

fn compress_to_archive(a: &CompressArgs, archive: &Path) -> Result<()> {
    let sink = Sink::new(archive);
    sink.check_writable(a.force)?;
    let inputs = collect_inputs(&a.inputs)?;
    let mut images = Vec::with_capacity(inputs.len());
    let mut input_bytes = 0u64;
    for input in &inputs {
        let (image, size) = read_input_image(input)?;
        input_bytes += size;
        images.push(NamedImage {
            name: input.name.clone(),
            image,
        });
    }
    // an archive has one model: the candidates are tried on the whole archive
    let mut coding = a.coding.coding()?;
    coding.archive_layout = a.archive_layout.into();
    let compressed = coding.compress_archive(&images)?;
    let coded = &compressed.bytes;
    sink.write(coded, a.force)?;
    let dimensions: u64 = images.iter().map(|n| n.image.dimensions()).sum();
    io::report(
        sink.is_stdout(),
        &format!(
            "{} images → {}: {} → {} bytes, {:.3} bpd (inputs {:.3} bpd), model {}",
            images.len(),
            sink.display(),
            input_bytes,
            coded.len(),
            bits_per_dimension(coded.len() as u64, dimensions),
            bits_per_dimension(input_bytes, dimensions),
            compressed.candidate.name()
        ),
    );
    Ok(())
}

/// An image file and its name in an archive (or in reports).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputImage {
    pub name: EntryName,
    pub path: PathBuf,
}

/// The image files named by `inputs`: a file as itself (named by its file name), a folder as
/// every PNG/JPEG file below it (named by the path relative to it, `/`-separated), sorted by
/// name within each folder. Symbolic links to folders are not followed. Two inputs with the
/// same name are an error.
pub fn collect_inputs(inputs: &[PathBuf]) -> Result<Vec<InputImage>> {
    let mut found = Vec::new();
    for input in inputs {
        if input == Path::new("-") {
            bail!("an archive cannot read stdin: its entries need file names");
        }
        let meta =
            std::fs::metadata(input).with_context(|| format!("cannot read {}", input.display()))?;
        if meta.is_dir() {
            let before = found.len();
            walk(input, "", &mut found)?;
            if found.len() == before {
                bail!("{} holds no .png, .jpg or .jpeg files", input.display());
            }
        } else {
            let name = input
                .file_name()
                .and_then(|n| n.to_str())
                .with_context(|| format!("{} has no usable file name", input.display()))?;
            found.push(input_image(name, input)?);
        }
    }
    check_distinct(&found)?;
    Ok(found)
}

fn input_image(name: &str, path: &Path) -> Result<InputImage> {
    Ok(InputImage {
        name: EntryName::new(name)
            .with_context(|| format!("cannot store {} in an archive", path.display()))?,
        path: path.to_path_buf(),
    })
}

/// Adds the image files below `dir` (whose name relative to the input folder is `prefix`).
fn walk(dir: &Path, prefix: &str, found: &mut Vec<InputImage>) -> Result<()> {
    let mut entries = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .collect::<std::io::Result<Vec<_>>>()
        .with_context(|| format!("cannot list {}", dir.display()))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            bail!("{} is not a UTF-8 file name", path.display());
        };
        let name = format!("{prefix}{file_name}");
        let kind = entry
            .file_type()
            .with_context(|| format!("cannot inspect {}", path.display()))?;
        if kind.is_dir() {
            walk(&path, &format!("{name}/"), found)?;
        } else if has_image_extension(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file())
        {
            found.push(input_image(&name, &path)?);
        }
    }
    Ok(())
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

fn check_distinct(inputs: &[InputImage]) -> Result<()> {
    let mut sorted: Vec<&InputImage> = inputs.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(pair) = sorted.windows(2).find(|p| p[0].name == p[1].name) {
        bail!(
            "{} and {} would both be stored as '{}'",
            pair[0].path.display(),
            pair[1].path.display(),
            pair[0].name
        );
    }
    Ok(())
}

/// Reads an input image file; also returns the file's size in bytes.
pub fn read_input_image(input: &InputImage) -> Result<(Image, u64)> {
    let bytes = Source::File(input.path.clone()).read()?;
    let image = picture::decode_picture(&bytes, &input.path.display().to_string())?;
    Ok((image, bytes.len() as u64))
}
