//! Sizes of `context::encode_planes` against the PNG files, per pixel-format class.
//!
//! `cargo run -p idfcodec-codec --example plane_sizes [-- DIR...]` (default: `data/pngsuite`
//! and `data/photos/test`). Every image is also decoded and checked. Prints a Markdown table:
//! bytes and bits per sub-pixel (8·bytes / (w·h·channels)) of the PNG files and of the planes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use idfcodec_codec::bits_per_dimension;
use idfcodec_codec::context::{decode_planes, encode_planes, source_samples, PlaneLayout};
use idfcodec_codec::format::PixelFormat;
use idfcodec_codec::png::{self, SourceImage};

fn class(image: &SourceImage) -> &'static str {
    use PixelFormat::*;
    match image.pixel_format() {
        None | Some(Palette8 | Palette4 | Palette2 | Palette1) => "palette",
        Some(Gray1 | Gray2 | Gray4) => "gray 1/2/4",
        Some(Gray8) => "gray8",
        Some(Gray16) => "gray16",
        Some(GrayAlpha8 | GrayAlpha16) => "gray+alpha",
        Some(Rgb8) => "rgb8",
        Some(Rgb16) => "rgb16",
        Some(Rgba8 | Rgba16) => "rgba",
    }
}

#[derive(Default)]
struct Sum {
    files: usize,
    dims: u64,
    png: u64,
    planes: u64,
}

fn main() {
    let args: Vec<PathBuf> = std::env::args().skip(1).map(PathBuf::from).collect();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dirs = if args.is_empty() {
        vec![root.join("data/pngsuite"), root.join("data/photos/test")]
    } else {
        args
    };
    println!("| set | class | files | sub-pixels | PNG bytes | PNG bpd | planes bytes | planes bpd | planes/PNG |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for dir in dirs {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(d) => d.map(|e| e.unwrap().path()).collect(),
            Err(e) => {
                eprintln!("{}: {e}", dir.display());
                continue;
            }
        };
        files.retain(|p| p.extension().is_some_and(|e| e == "png"));
        files.sort();
        let set = dir.file_name().unwrap().to_string_lossy().to_string();
        let mut sums: BTreeMap<&str, Sum> = BTreeMap::new();
        let start = Instant::now();
        for path in files {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name.starts_with('x') {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            let image = png::read(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
            let coded = encode_planes(&image).unwrap();
            let decoded = decode_planes(&coded, &PlaneLayout::of(&image)).unwrap();
            assert_eq!(decoded, source_samples(&image), "{name}");
            let dims =
                u64::from(image.width()) * u64::from(image.height()) * u64::from(image.channels());
            if set == "test" {
                eprintln!(
                    "{name}: PNG {:.3} bpd, planes {:.3} bpd",
                    bits_per_dimension(bytes.len() as u64, dims),
                    bits_per_dimension(coded.len() as u64, dims)
                );
            }
            for key in [class(&image), "all"] {
                let s = sums.entry(key).or_default();
                s.files += 1;
                s.dims += dims;
                s.png += bytes.len() as u64;
                s.planes += coded.len() as u64;
            }
        }
        for (class, s) in &sums {
            let bpd = |b: u64| bits_per_dimension(b, s.dims);
            println!(
                "| {set} | {class} | {} | {} | {} | {:.3} | {} | {:.3} | {:.3} |",
                s.files,
                s.dims,
                s.png,
                bpd(s.png),
                s.planes,
                bpd(s.planes),
                s.planes as f64 / s.png as f64
            );
        }
        eprintln!(
            "{set}: {:.2} s (encode + decode + check)",
            start.elapsed().as_secs_f64()
        );
    }
}
