//! `idfcodec decompress`: an `.idf` file → PNG, or an `.idfa` archive → a folder of PNGs.

use std::collections::HashSet;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use idfcodec_codec::format::EntryName;
use idfcodec_codec::format::{self, FileKind, Limits};
use idfcodec_codec::tile::DEFAULT_MAX_TILE_PIXELS;
use idfcodec_codec::{bits_per_dimension, decompress, ArchiveDecoder, DecodeOptions, NamedImage};

use super::compress::{ARCHIVE_SUFFIX, IMAGE_SUFFIX};
use super::io::{self, Extraction, Sink, Source};
use super::models::DecodingModels;
use crate::picture;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  idfcodec decompress digit.png.idf                 # writes digit.png
  idfcodec decompress scan.idf -o scan.png --force
  idfcodec decompress photo.idf --model my-model.safetensors   # coded with --model PATH
  idfcodec decompress - < digit.idf > digit.png
  idfcodec decompress digits.idfa -o digits/         # restores every entry under digits/")]
pub struct DecompressArgs {
    /// File to decompress: an image (.idf) or an archive (.idfa); `-` reads stdin.
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,
    /// For an image, the PNG file to write (`-`: stdout); default INPUT without `.idf` (INPUT.png
    /// if it has no such suffix), stdout when reading stdin. For an archive, the folder to
    /// restore the entries into; default INPUT without `.idfa`.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// The model the file was coded with, when it is not embedded: the model file given to
    /// `compress --model PATH` (or an embedded model's name).
    #[arg(long, value_name = "PATH|NAME")]
    pub model: Option<String>,
    /// Replace existing output files (a symbolic link is kept and the file it points to
    /// replaced; a device or FIFO such as /dev/null is written to).
    #[arg(long)]
    pub force: bool,
    /// Worker threads (0: all cores).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    #[command(flatten)]
    pub limits: LimitArgs,
}

/// What a file may make the decoder allocate and compute.
#[derive(Debug, Args)]
#[command(next_help_heading = "Limits (files needing more are refused before decoding)")]
pub struct LimitArgs {
    /// Widest image accepted, in pixels.
    #[arg(long, default_value_t = Limits::default().max_width, value_name = "N")]
    pub max_width: u32,
    /// Tallest image accepted, in pixels.
    #[arg(long, default_value_t = Limits::default().max_height, value_name = "N")]
    pub max_height: u32,
    /// Most pixels in one image.
    #[arg(long, default_value_t = Limits::default().max_pixels, value_name = "N")]
    pub max_pixels: u64,
    /// Most tiles in one image.
    #[arg(long, default_value_t = Limits::default().max_tiles, value_name = "N")]
    pub max_tiles: u64,
    /// Most entries in one archive.
    #[arg(long, default_value_t = Limits::default().max_entries, value_name = "N")]
    pub max_entries: u64,
    /// Most bytes of entry names in one archive, all names together.
    #[arg(long, default_value_t = Limits::default().max_name_bytes, value_name = "N")]
    pub max_name_bytes: u64,
    /// Largest tile in pixels, padding included (decoding memory grows with it).
    #[arg(long, default_value_t = DEFAULT_MAX_TILE_PIXELS, value_name = "N")]
    pub max_tile_pixels: u64,
    /// Most memory the decoder may hold at once, in bytes (suffixes K, M, G, T: powers of
    /// 1024): an image's pixels and the tiles decoded together; for an archive, the entries
    /// decoded together (an archive is decoded and written entry by entry within it).
    #[arg(long, default_value = "2G", value_name = "BYTES", value_parser = parse_bytes)]
    pub max_memory: u64,
}

/// `123`, `64K`, `512M`, `2G`, `1T` (powers of 1024; `KiB`-style and lower-case suffixes too).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, suffix) = text.split_at(split);
    let number: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count such as 4096, 512M or 2G"))?;
    let shift = match suffix.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("unknown size suffix {other:?} (use K, M, G or T)")),
    };
    number
        .checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} does not fit in 64 bits"))
}

impl LimitArgs {
    /// The container limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_width: self.max_width,
            max_height: self.max_height,
            max_pixels: self.max_pixels,
            max_tiles: self.max_tiles,
            max_entries: self.max_entries,
            max_name_bytes: self.max_name_bytes,
        }
    }

    /// Decoder options with these limits.
    pub fn options(&self, threads: usize) -> DecodeOptions {
        DecodeOptions {
            limits: self.limits(),
            max_tile_pixels: self.max_tile_pixels,
            threads,
            max_memory: self.max_memory,
        }
    }
}

pub fn run(a: DecompressArgs) -> Result<()> {
    let source = Source::new(&a.input);
    let bytes = source.read()?;
    let kind = format::detect(&bytes)
        .with_context(|| format!("cannot decompress {}", source.display()))?;
    let models = DecodingModels::from_arg(a.model.as_deref())?;
    match kind {
        FileKind::Image => decompress_image(&a, &source, &bytes, &models),
        FileKind::Archive => decompress_to_folder(&a, &source, &bytes, &models),
    }
}

/// `x.idf` → `x`; anything else → itself + `.png`.
pub fn default_output(input: &Path) -> PathBuf {
    strip_suffix(input, IMAGE_SUFFIX).unwrap_or_else(|| with_png_suffix(input))
}

/// `path` without `suffix`, if it ends with it and something is left.
fn strip_suffix(path: &Path, suffix: &str) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(suffix).filter(|s| !s.is_empty())?;
    Some(path.with_file_name(stem))
}

/// `path` + `.png`.
fn with_png_suffix(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".png");
    PathBuf::from(name)
}

fn decompress_image(
    a: &DecompressArgs,
    source: &Source,
    bytes: &[u8],
    models: &DecodingModels,
) -> Result<()> {
    let sink = match (&a.output, source) {
        (Some(out), _) => Sink::new(out),
        (None, Source::Stdin) => Sink::Stdout,
        (None, Source::File(path)) => Sink::File(default_output(path)),
    };
    sink.check_writable(a.force)?;
    let image = decompress(bytes, models, &a.limits.options(a.threads))
        .with_context(|| format!("cannot decompress {}", source.display()))?;
    let png = picture::encode_png(&image)?;
    sink.write(&png, a.force)?;
    io::report(
        sink.is_stdout(),
        &format!(
            "{} → {}: {}×{}, {} → {} bytes ({:.3} bpd)",
            source.display(),
            sink.display(),
            image.width(),
            image.height(),
            bytes.len(),
            png.len(),
            bits_per_dimension(bytes.len() as u64, image.dimensions())
        ),
    );
    Ok(())
}

fn decompress_to_folder(
    a: &DecompressArgs,
    source: &Source,
    bytes: &[u8],
    models: &DecodingModels,
) -> Result<()> {
    let folder = match (&a.output, source) {
        (Some(out), _) if out == Path::new("-") => {
            bail!("an archive decompresses into a folder, not stdout: give -o FOLDER")
        }
        (Some(out), _) => out.clone(),
        (None, Source::File(path)) => strip_suffix(path, ARCHIVE_SUFFIX).with_context(|| {
            format!(
                "{} does not end in {ARCHIVE_SUFFIX}: give the output folder with -o FOLDER",
                path.display()
            )
        })?,
        (None, Source::Stdin) => bail!("give the output folder with -o FOLDER"),
    };
    check_folder(&folder)?;
    let options = a.limits.options(a.threads);
    let cannot = || format!("cannot decompress {}", source.display());
    let decoder = ArchiveDecoder::new(bytes, models, &options).with_context(cannot)?;
    let names: Vec<PathBuf> = decoder.names().map(entry_file).collect();
    check_targets(&folder, &names, a.force)?;
    let dimensions = restore(&folder, &decoder, &names, a.force).with_context(cannot)?;
    println!(
        "{} → {}: {} images, {} bytes ({:.3} bpd)",
        source.display(),
        folder.display(),
        decoder.len(),
        bytes.len(),
        bits_per_dimension(bytes.len() as u64, dimensions)
    );
    Ok(())
}

/// The relative file an entry is restored to: its name, plus `.png` unless it ends in `.png`
/// (the pixels are written as PNG whatever the original file was).
fn entry_file(name: &EntryName) -> PathBuf {
    let path = name.to_relative_path();
    let is_png = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("png"));
    if is_png {
        path
    } else {
        with_png_suffix(&path)
    }
}

/// An error if `folder` exists and is not a folder.
fn check_folder(folder: &Path) -> Result<()> {
    match std::fs::metadata(folder) {
        Ok(meta) if !meta.is_dir() => bail!("{} exists and is not a folder", folder.display()),
        _ => Ok(()),
    }
}

/// Checks, before anything is written, that no target exists unless `force` (and that each can
/// be inspected: a name too long for the file system is refused here), and that no two entries
/// map to the same file.
fn check_targets(folder: &Path, names: &[PathBuf], force: bool) -> Result<()> {
    let mut seen = HashSet::new();
    for name in names {
        let target = folder.join(name);
        io::check_entry_target(&target, force)?;
        if !seen.insert(target) {
            bail!(
                "two entries would both be written to {}",
                folder.join(name).display()
            );
        }
    }
    Ok(())
}

/// Decodes the archive entry by entry ([`ArchiveDecoder::decode_each`]: bounded memory) and
/// writes each as PNG under `folder` as soon as it is decoded; on failure, removes the files
/// written and the folders created so far ([`Extraction`]). Returns the samples restored.
fn restore(
    folder: &Path,
    decoder: &ArchiveDecoder<'_>,
    names: &[PathBuf],
    force: bool,
) -> Result<u64> {
    let mut extraction = Extraction::new(folder)?;
    let mut names = names.iter();
    let mut dimensions = 0;
    let restored = decoder.decode_each(|entry: NamedImage| {
        let name = names.next().context("more decoded entries than names")?;
        let png = picture::encode_png(&entry.image)?;
        extraction
            .write_entry(name, &png, force)
            .with_context(|| format!("cannot restore the archive entry '{}'", entry.name))?;
        dimensions += entry.image.dimensions();
        anyhow::Ok(())
    });
    match restored {
        Ok(()) => {
            extraction.finish();
            Ok(dimensions)
        }
        Err(e) => {
            extraction.rollback();
            Err(e)
        }
    }
}
