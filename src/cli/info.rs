//! `idfcodec info`: what an `.idf` or `.idfa` file holds, read from its headers (no decoding).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use idfcodec_codec::format::{
    self, CodedImage, Container, ImageHeader, Limits, ModelRef, Tiling, Version,
};
use idfcodec_codec::format_name;
use idfcodec_codec::{bits_per_dimension, ModelLookup, Registry};
use idfcodec_codec::{decode_memory, DEFAULT_MAX_MEMORY};

use super::io::Source;

#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  idfcodec info digit.png.idf
  idfcodec info digits.idfa other.idf")]
pub struct InfoArgs {
    /// Files to describe (`-`: stdin).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(a: InfoArgs) -> Result<()> {
    for (i, file) in a.files.iter().enumerate() {
        if i > 0 {
            println!();
        }
        describe(&Source::new(file))?;
    }
    Ok(())
}

fn describe(source: &Source) -> Result<()> {
    let bytes = source.read()?;
    let name = source.display();
    // Headers only: reading never allocates beyond the file's size, so no limits are needed.
    let container =
        format::read(&bytes, &Limits::UNLIMITED).with_context(|| format!("cannot read {name}"))?;
    match container {
        Container::Image(file) => {
            println!(
                "{name}: idfcodec image, format version {}, {} bytes",
                file.version,
                bytes.len()
            );
            println!("  model:    {}", describe_model(file.model));
            println!("  check:    {}", integrity_check(file.version));
            describe_image(&file.image, "  ");
            describe_memory(&file.image.header, file.model);
            let payload = payload_bytes(&file.image);
            println!(
                "  bytes:    {} header and tile index, {payload} payload",
                bytes.len() as u64 - payload
            );
            let dims = dimensions(&file.image);
            println!(
                "  bpd:      {:.4}",
                bits_per_dimension(bytes.len() as u64, dims)
            );
        }
        Container::Archive(archive) => {
            let dims: u64 = archive.entries.iter().map(|e| dimensions(&e.image)).sum();
            println!(
                "{name}: idfcodec archive, format version {}, {} bytes, {} entries",
                archive.version,
                bytes.len(),
                archive.entries.len()
            );
            println!("  model:    {}", describe_model(archive.model));
            match &archive.chain {
                Some(chain) => {
                    println!("  check:    {}", CHAIN_CHECK);
                    println!(
                        "  layout:   chained: one stream of {} bytes for all entries (bits-back \
                         models carry their bits from entry to entry; decoded whole)",
                        chain.len()
                    );
                }
                None => {
                    println!("  check:    {}", integrity_check(archive.version));
                    println!("  layout:   independent entries (each its own streams)");
                }
            }
            println!(
                "  bpd:      {:.4} over all entries",
                bits_per_dimension(bytes.len() as u64, dims)
            );
            for entry in &archive.entries {
                println!("  {}", entry.name);
                describe_image(&entry.image, "    ");
                if archive.chain.is_none() {
                    let payload = payload_bytes(&entry.image);
                    println!(
                        "    bytes:    {payload} payload ({:.4} bpd)",
                        bits_per_dimension(payload, dimensions(&entry.image))
                    );
                }
            }
        }
    }
    Ok(())
}

/// Geometry, pixel format, tiling and checksum lines.
fn describe_image<T: AsRef<[u8]>>(image: &CodedImage<T>, indent: &str) {
    let h = &image.header;
    println!(
        "{indent}image:    {}×{}, {}",
        h.width,
        h.height,
        format_name(h.pixel_format)
    );
    let grid = h.grid();
    match h.tiling {
        Tiling::Whole => println!("{indent}tiles:    1 (the whole image)"),
        Tiling::Square { .. } => println!(
            "{indent}tiles:    {} of {}×{} ({} columns × {} rows)",
            grid.count(),
            grid.tile_width,
            grid.tile_height,
            grid.columns,
            grid.rows
        ),
    }
    if let Some(crc) = h.pixel_crc {
        println!("{indent}checksum: {crc:08x} (CRC-32 of the pixels)");
    }
    if !image.extensions.is_empty() {
        let kinds: Vec<String> = image
            .extensions
            .iter()
            .map(|e| format!("{:?} ({} bytes)", e.kind, e.data.as_ref().len()))
            .collect();
        println!("{indent}extras:   {}", kinds.join(", "));
    }
}

/// What a chained archive's check covers.
const CHAIN_CHECK: &str = "CRC-32 of every entry's samples together with everything decoded \
    beside them (pixel format, size, colour records, tile positions, the entries' names, order \
    and count), carried in the start state of the archive's one stream";

/// What a file's integrity check covers, by format version: what a damaged file can still get
/// past unnoticed.
fn integrity_check(version: Version) -> &'static str {
    match version {
        Version::V1 => "CRC-32 of the whole image's pixels",
        Version::V2 => {
            "CRC-32 of each tile's pixel samples only (not colour records, pixel format, tile \
             placement or names; re-compress to get the newest version's check)"
        }
        Version::V3 | Version::V4 | Version::V5 | Version::V6 => {
            "CRC-32 of each tile's samples together with everything decoded beside them: pixel \
             format, size, colour records, tile position, and in archives the entry's name and \
             position"
        }
    }
}

/// The model reference, with the embedded model's name when this build has it.
fn describe_model(model: ModelRef) -> String {
    if model.is_none() {
        // context coding needs no model: nothing to find in this build
        return model.to_string();
    }
    match (Registry::embedded().resolve(model), model) {
        (Ok(found), ModelRef::Embedded { .. }) => {
            format!(
                "embedded model '{}' (id {:016x})",
                found.name,
                found.model.id()
            )
        }
        (Ok(found), ModelRef::External { .. }) => {
            format!("{model} (the same as embedded model '{}')", found.name)
        }
        (Err(_), ModelRef::Embedded { .. }) => format!("{model} (not in this build)"),
        (Err(_), ModelRef::External { .. }) => {
            format!("{model} (decompress with --model PATH)")
        }
    }
}

/// What decoding the image needs of `--max-memory` on this machine (all cores).
fn describe_memory(header: &ImageHeader, model: ModelRef) {
    let found = match model.is_none() {
        true => None,
        false => Registry::embedded().resolve(model).ok().map(|n| n.model),
    };
    let needed = decode_memory(header, found, 0);
    let unknown = !model.is_none() && found.is_none();
    println!(
        "  memory:   about {:.1} MiB to decode on {} threads{} (--max-memory, default {} MiB)",
        needed as f64 / (1u64 << 20) as f64,
        std::thread::available_parallelism().map_or(1, usize::from),
        if unknown {
            ", plus the model's working memory"
        } else {
            ""
        },
        DEFAULT_MAX_MEMORY >> 20
    );
}

fn payload_bytes<T: AsRef<[u8]>>(image: &CodedImage<T>) -> u64 {
    image.tiles.iter().map(|t| t.as_ref().len() as u64).sum()
}

fn dimensions<T: AsRef<[u8]>>(image: &CodedImage<T>) -> u64 {
    image.header.pixel_count() * u64::from(image.header.pixel_format.channels())
}
