//! `idfcodec compress`: PNG/JPEG images → `.idf` files, or many images → one `.idfa` archive.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use idfcodec_codec::format::{EntryName, PixelFormat};
use idfcodec_codec::image::{format_name, learned_channels};
use idfcodec_codec::tile::{DEFAULT_CONTEXT_TILE_SIDE, DEFAULT_TILE_SIDE};
use idfcodec_codec::{
    compress, compress_archive, EncodeOptions, Image, Model, ModelStorage, NamedImage,
};

use super::io::{self, Sink, Source};
use super::models::ChosenModel;

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

/// Encoder settings shared by `compress` and `verify`.
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
    #[arg(long, default_value_t = DEFAULT_EFFORT, value_name = "1-9",
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub effort: u8,
}

/// Prints `note` to stderr unless this process printed it already (a folder or a bench run asks
/// for the candidates of every image).
fn note_once(note: String) {
    static PRINTED: std::sync::Mutex<BTreeSet<String>> = std::sync::Mutex::new(BTreeSet::new());
    let mut printed = PRINTED.lock().unwrap_or_else(|e| e.into_inner());
    if !printed.contains(&note) {
        eprintln!("{note}");
        printed.insert(note);
    }
}

/// The default `--effort`: the learned gray model and the context coder, the smaller kept (the
/// measured balance: see BENCHMARKS.md).
pub const DEFAULT_EFFORT: u8 = 5;

impl CodingArgs {
    /// The models tried for images of `format` at this effort (`None`: every plane
    /// context-coded), in order of preference on ties. Learned models code gray planes (gray8,
    /// gray+alpha 8) and rgb8; a `--model` that does not fit the format is not used for it.
    /// - efforts 1-3: context coding only;
    /// - 4: `--model`, else the embedded gray default for gray images; context coding for RGB
    ///   (measured better and faster than any RGB model 2 CPU cores have trained);
    /// - 5-6: the same, and context coding: the smaller file is kept;
    /// - 7-9: `--model`, else every embedded model for the format, and context coding.
    pub fn candidates(&self, format: PixelFormat) -> Result<Vec<Option<ChosenModel>>> {
        let unused_model = |why: &str| {
            if let Some(model) = &self.model {
                note_once(format!("note: --model {model} is not used for {} images ({why}): they are context-coded", format_name(format)));
            }
        };
        let Some(channels) = learned_channels(format) else {
            unused_model("learned models code 8-bit gray and RGB planes only");
            return Ok(vec![None]);
        };
        let serves = if channels == 1 {
            PixelFormat::Gray8
        } else {
            PixelFormat::Rgb8
        };
        let given = match self.model.as_deref() {
            Some(arg) => {
                let model = ChosenModel::from_arg(arg)?;
                let codes = model.model.config().in_channels;
                if codes != channels {
                    unused_model(&format!("it codes {codes}-channel images"));
                }
                Some(model).filter(|_| codes == channels)
            }
            None => None,
        };
        let mut tried: Vec<Option<ChosenModel>> = match (self.effort, given) {
            (1..=3, _) => vec![],
            (_, Some(given)) => vec![Some(given)],
            (4..=6, None) if channels == 1 => vec![Some(ChosenModel::default_for(serves)?)],
            (4..=6, None) => vec![],
            (_, None) => ChosenModel::all_for(serves)?
                .into_iter()
                .map(Some)
                .collect(),
        };
        // from effort 5 the context coder is tried too: it costs about 1 % of a learned model's
        // time and keeps images unlike the model's training data from costing twice as much
        if tried.is_empty() || self.effort >= 5 {
            tried.push(None);
        }
        Ok(tried)
    }

    /// Codes `image` with every candidate and keeps the smallest file (the first on ties), with
    /// the model that made it.
    pub fn encode_best<'c>(
        &self,
        image: &Image,
        candidates: &'c [Option<ChosenModel>],
    ) -> Result<(Vec<u8>, &'c Option<ChosenModel>)> {
        smallest(candidates, |chosen| {
            Ok(compress(
                image,
                model_of(chosen),
                &self.options(chosen.as_ref()),
            )?)
        })
    }

    /// Encoder options for `model`.
    pub fn options(&self, model: Option<&ChosenModel>) -> EncodeOptions {
        EncodeOptions {
            threads: self.threads,
            tile_side: self.tile.unwrap_or(match model {
                Some(_) => DEFAULT_TILE_SIDE,
                None => DEFAULT_CONTEXT_TILE_SIDE,
            }),
            model_storage: model.map_or(ModelStorage::Embedded, |m| m.storage),
        }
    }
}

/// The candidates of each pixel format ([`CodingArgs::candidates`]), chosen and loaded once: a
/// model file is read once however many images it codes.
#[derive(Default)]
pub struct CandidateCache(Vec<(PixelFormat, Vec<Option<ChosenModel>>)>);

impl CandidateCache {
    /// The candidates for images of `format`.
    pub fn get(
        &mut self,
        coding: &CodingArgs,
        format: PixelFormat,
    ) -> Result<&[Option<ChosenModel>]> {
        let at = match self.0.iter().position(|(f, _)| *f == format) {
            Some(at) => at,
            None => {
                self.0.push((format, coding.candidates(format)?));
                self.0.len() - 1
            }
        };
        Ok(&self.0[at].1)
    }
}

/// The smallest of the files `encode` makes from each candidate (the first on ties), with its
/// candidate.
fn smallest(
    candidates: &[Option<ChosenModel>],
    mut encode: impl FnMut(&Option<ChosenModel>) -> Result<Vec<u8>>,
) -> Result<(Vec<u8>, &Option<ChosenModel>)> {
    let mut best: Option<(Vec<u8>, &Option<ChosenModel>)> = None;
    for chosen in candidates {
        let bytes = encode(chosen)?;
        if best.as_ref().map_or(true, |(b, _)| bytes.len() < b.len()) {
            best = Some((bytes, chosen));
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("no model to try"))
}

/// The model of a choice, as the codec takes it.
pub fn model_of(chosen: &Option<ChosenModel>) -> Option<&Model> {
    chosen.as_ref().map(|c| &*c.model)
}

/// The model's name for reports.
pub fn model_name(chosen: &Option<ChosenModel>) -> &str {
    chosen
        .as_ref()
        .map_or("none (context coding)", |c| c.name.as_str())
}

pub fn run(a: CompressArgs) -> Result<()> {
    match &a.archive {
        Some(archive) => compress_to_archive(&a, archive),
        None => {
            if a.inputs.len() > 1 && a.output.is_some() {
                bail!("-o/--output takes one input; with several, each INPUT is written to INPUT.idf (or use --archive)");
            }
            let mut cache = CandidateCache::default();
            a.inputs
                .iter()
                .try_for_each(|input| compress_one(&a, &mut cache, input))
        }
    }
}

/// `INPUT` + `.idf`.
pub fn default_output(input: &Path) -> PathBuf {
    let mut name = OsString::from(input.as_os_str());
    name.push(IMAGE_SUFFIX);
    PathBuf::from(name)
}

fn compress_one(a: &CompressArgs, cache: &mut CandidateCache, input: &Path) -> Result<()> {
    let source = Source::new(input);
    let sink = match (&a.output, &source) {
        (Some(out), _) => Sink::new(out),
        (None, Source::Stdin) => Sink::Stdout,
        (None, Source::File(path)) => Sink::File(default_output(path)),
    };
    sink.check_writable(a.force)?;
    let input_bytes = source.read()?;
    let (image, notes) = io::decode_picture_noting(&input_bytes, &source.display())?;
    if a.verbose {
        for note in notes {
            eprintln!("{}: {note}", source.display());
        }
    }
    let candidates = cache.get(&a.coding, image.pixel_format())?;
    let (coded, chosen) = a
        .coding
        .encode_best(&image, candidates)
        .with_context(|| format!("cannot compress {}", source.display()))?;
    sink.write(&coded, a.force)?;
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
            io::bpd(coded.len() as u64, image.dimensions()),
            io::bpd(input_bytes.len() as u64, image.dimensions()),
            model_name(chosen)
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
    let format = single_format(&images)?;
    // an archive has one model: the candidates are tried on the whole archive
    let candidates = a.coding.candidates(format)?;
    let (coded, chosen) = smallest(&candidates, |chosen| {
        let options = a.coding.options(chosen.as_ref());
        Ok(compress_archive(&images, model_of(chosen), &options)?)
    })?;
    sink.write(&coded, a.force)?;
    let dimensions: u64 = images.iter().map(|n| n.image.dimensions()).sum();
    io::report(
        sink.is_stdout(),
        &format!(
            "{} images → {}: {} → {} bytes, {:.3} bpd (inputs {:.3} bpd), model {}",
            images.len(),
            sink.display(),
            input_bytes,
            coded.len(),
            io::bpd(coded.len() as u64, dimensions),
            io::bpd(input_bytes, dimensions),
            model_name(chosen)
        ),
    );
    Ok(())
}

/// The pixel format all images share (an archive is coded with one model).
fn single_format(images: &[NamedImage]) -> Result<PixelFormat> {
    let Some(first) = images.first() else {
        bail!("no images to put into the archive");
    };
    let format = first.image.pixel_format();
    if let Some(other) = images.iter().find(|n| n.image.pixel_format() != format) {
        bail!(
            "{} and {} have different pixel formats: an archive holds one kind of image",
            first.name,
            other.name
        );
    }
    Ok(format)
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
    let image = io::decode_picture(&bytes, &input.path.display().to_string())?;
    Ok((image, bytes.len() as u64))
}
