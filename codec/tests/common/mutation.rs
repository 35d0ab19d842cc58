//! The mutation corpus, shared by `tests/mutation.rs` (a fixed, exhaustive-where-small plan) and
//! `examples/mutation_soak.rs` (N seeded random cases): originals made through the library, the
//! ways to damage them, and the one verdict every damaged file must get.
//!
//! The promise under test (README): a decode returns an error, or exactly the image(s) that were
//! coded: the same width, height, pixel format, samples and extension records (kind and bytes),
//! and for archives the same entry count, order and names. Never a panic, never a huge
//! allocation. A decode that returns anything else is a *differing exit-0 decode*.
//!
//! Included with `#[path]`, next to `common/mod.rs` (whose [`Rng`] it uses) as `crate::common`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::ops::Range;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

use crate::common::Rng;
use idfcodec_codec::format::{
    self, Archive, ArchiveEntry, Container, EntryName, Extension, ExtensionKind, FileKind,
    ImageFile, Limits, PixelFormat,
};
use idfcodec_codec::{
    compress, compress_archive, decompress, decompress_archive, png, DecodeOptions, EncodeOptions,
    Image, Model, ModelStorage, NamedImage, NamedModel,
};

// ---------------------------------------------------------------------------------------------
// Allocation tracking (install with `#[global_allocator] static A: Tracking = Tracking;`)

/// A global allocator that records the largest single request in [`LARGEST`].
pub struct Tracking;

/// The largest allocation since it was last reset.
pub static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

/// Largest single allocation a decode of the corpus may make (its limits allow small images
/// only, see [`Corpus::decode_options`]).
pub const MAX_ALLOCATION: usize = 64 << 20;

// ---------------------------------------------------------------------------------------------
// What a file decodes to

/// What a file holds: one image, or an archive's named images in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Image(Image),
    Archive(Vec<NamedImage>),
}

impl Content {
    pub fn images(&self) -> Vec<&Image> {
        match self {
            Content::Image(i) => vec![i],
            Content::Archive(entries) => entries.iter().map(|e| &e.image).collect(),
        }
    }
}

/// What differs between `want` and `got`, or `None` if they are the same.
pub fn difference(want: &Content, got: &Content) -> Option<String> {
    match (want, got) {
        (Content::Image(a), Content::Image(b)) => image_difference(a, b),
        (Content::Archive(a), Content::Archive(b)) => {
            if a.len() != b.len() {
                return Some(format!("{} entries instead of {}", b.len(), a.len()));
            }
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x.name != y.name {
                    return Some(format!("entry {i} named {:?}, not {:?}", y.name, x.name));
                }
                if let Some(d) = image_difference(&x.image, &y.image) {
                    return Some(format!("entry {i} ({}): {d}", x.name));
                }
            }
            None
        }
        (Content::Image(_), Content::Archive(b)) => Some(format!(
            "an image file decoded as an archive of {}",
            b.len()
        )),
        (Content::Archive(a), Content::Image(_)) => Some(format!(
            "an archive of {} entries decoded as an image file",
            a.len()
        )),
    }
}

fn image_difference(a: &Image, b: &Image) -> Option<String> {
    if (a.width(), a.height()) != (b.width(), b.height()) {
        return Some(format!(
            "size {}×{}, not {}×{}",
            b.width(),
            b.height(),
            a.width(),
            a.height()
        ));
    }
    if a.pixel_format() != b.pixel_format() {
        return Some(format!(
            "pixel format {:?}, not {:?}",
            b.pixel_format(),
            a.pixel_format()
        ));
    }
    if a.samples() != b.samples() {
        let n = a
            .samples()
            .iter()
            .zip(b.samples())
            .filter(|(x, y)| x != y)
            .count();
        return Some(format!("{n} sample bytes differ"));
    }
    if a.extensions() != b.extensions() {
        let kinds = |i: &Image| i.extensions().iter().map(|e| e.kind).collect::<Vec<_>>();
        if kinds(a) != kinds(b) {
            return Some(format!("records {:?}, not {:?}", kinds(b), kinds(a)));
        }
        let changed: Vec<_> = a
            .extensions()
            .iter()
            .zip(b.extensions())
            .filter(|(x, y)| x.data != y.data)
            .map(|(x, _)| x.kind)
            .collect();
        return Some(format!("bytes of the {changed:?} record(s) differ"));
    }
    None
}

// ---------------------------------------------------------------------------------------------
// The originals

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

/// The fixed random test model (one channel: the gray plane of gray8 and gray+alpha 8).
pub fn test_model() -> Model {
    let bytes = std::fs::read(fixtures().join("test-model.safetensors")).unwrap();
    Model::from_safetensors(&bytes).unwrap()
}

/// One file to damage, as the library wrote it, and what it holds.
pub struct Original {
    pub name: String,
    pub bytes: Vec<u8>,
    pub content: Content,
    /// Where things are in `bytes`.
    pub layout: FileLayout,
    /// Whole-file rewrites of the targeted classes (pixel format, records, names, entries).
    pub rewrites: Vec<(Class, String, Vec<u8>)>,
}

/// Groups of originals (the test runs each group as its own `#[test]`, in parallel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// Every pixel format without a model, untiled and tiled.
    PixelFormats,
    /// Gray8 and gray+alpha 8 with the test model, untiled and tiled.
    Model,
    /// Images with every extension record type, synthetic and PngSuite files.
    ColourRecords,
    /// Archives with front-coded names, with and without repeated geometry.
    Archives,
    /// Larger images (soak only).
    Large,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::PixelFormats,
        Group::Model,
        Group::ColourRecords,
        Group::Archives,
        Group::Large,
    ];
}

/// The originals of some groups, the model and how they are decoded.
pub struct Corpus {
    pub model: Model,
    pub originals: Vec<Original>,
    /// Most pixels of one original: the decode limits allow 4 times that.
    largest_pixels: u64,
}

/// Small samples for `format` at (x, y), channel `c`, below `levels` (a palette's entry count
/// or 2^bits): a smooth wave with a little seeded noise. Columns 16..32 repeat columns 0..16
/// (so with 16-pixel tiles, tiles 0 and 1 differ in one pixel only and usually code to the same
/// number of bytes: a pair to swap).
fn sample(seed: u64, x: u32, y: u32, c: u32, levels: u32) -> u32 {
    let xx = if (16..32).contains(&x) { x - 16 } else { x };
    let h = (u64::from(xx) << 40 ^ u64::from(y) << 20 ^ u64::from(c) << 8) ^ seed;
    let noise = (Rng::new(h).next_u64() % 5) as f64 - 2.0;
    let wave = ((xx as f64 + 3.0 * c as f64) / 4.0).sin() * (y as f64 / 5.0).cos();
    let max = f64::from(levels - 1);
    let mut v = (max * (0.5 + 0.4 * wave) + noise * (max / 40.0).max(0.5)).round();
    if (x, y) == (24, 8) {
        v += if v > max / 2.0 { -1.0 } else { 1.0 };
    }
    v.clamp(0.0, max) as u32
}

/// A `width × height` image of `format` (palette formats get a palette of `entries` colours)
/// with these extension records (a palette record is added for palette formats).
pub fn synthetic(
    format: PixelFormat,
    width: u32,
    height: u32,
    seed: u64,
    palette_entries: u32,
    mut records: Vec<Extension>,
) -> Image {
    let levels = if format.is_palette() {
        palette_entries
    } else {
        1u32 << format.bits_per_sample().min(16)
    }
    .max(2);
    let mut samples = Vec::new();
    for y in 0..height {
        for x in 0..width {
            for c in 0..u32::from(format.channels()) {
                let v = sample(seed, x, y, c, levels);
                if format.bytes_per_sample() == 2 {
                    samples.extend_from_slice(&(v as u16).to_le_bytes());
                } else {
                    samples.push(v as u8);
                }
            }
        }
    }
    if format.is_palette() && !records.iter().any(|r| r.kind == ExtensionKind::Palette) {
        let mut rng = Rng::new(seed ^ 0x9a1e);
        records.push(record(
            ExtensionKind::Palette,
            rng.bytes(3 * palette_entries as usize),
        ));
    }
    records.sort_by_key(|r| r.kind);
    Image::new(width, height, format, samples)
        .and_then(|i| i.with_extensions(records))
        .unwrap()
}

pub fn record(kind: ExtensionKind, data: Vec<u8>) -> Extension {
    Extension { kind, data }
}

/// An iCCP record: profile name, NUL, method 0, a zlib stream (stored blocks) of `profile`.
pub fn icc_record(name: &str, profile: &[u8]) -> Extension {
    let mut d = name.as_bytes().to_vec();
    d.extend_from_slice(&[0, 0, 0x78, 0x01, 0x01]);
    let n = profile.len() as u16;
    d.extend_from_slice(&n.to_le_bytes());
    d.extend_from_slice(&(!n).to_le_bytes());
    d.extend_from_slice(profile);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in profile {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    d.extend_from_slice(&(b << 16 | a).to_be_bytes());
    record(ExtensionKind::IccProfile, d)
}

fn gamma(value: u32) -> Extension {
    record(ExtensionKind::Gamma, value.to_be_bytes().to_vec())
}

/// cHRM of sRGB's primaries and white point (×100000, big-endian).
fn chromaticities() -> Extension {
    let values = [31270u32, 32900, 64000, 33000, 30000, 60000, 15000, 6000];
    record(
        ExtensionKind::Chromaticities,
        values.iter().flat_map(|v| v.to_be_bytes()).collect(),
    )
}

fn png_image(name: &str) -> Image {
    let bytes = std::fs::read(fixtures().join("pngsuite").join(name)).unwrap();
    png::read(&bytes)
        .and_then(|s| s.to_image())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn named(name: &str, image: Image) -> NamedImage {
    NamedImage {
        name: EntryName::new(name).unwrap(),
        image,
    }
}

fn options(tile_side: u32) -> EncodeOptions {
    EncodeOptions {
        threads: 1,
        tile_side,
        model_storage: ModelStorage::External,
        ..EncodeOptions::default()
    }
}

/// Untiled: the default tile side (128) is larger than every small image.
const UNTILED: u32 = 128;
const TILED: u32 = 16;

impl Corpus {
    /// The originals of `groups`, each checked to decode exactly (and, image by image, to
    /// survive the PNG writer and reader unchanged).
    pub fn build(groups: &[Group]) -> Corpus {
        let model = test_model();
        let mut files: Vec<(String, Vec<u8>, Content)> = Vec::new();
        let none: Option<&Model> = None;
        let single = |files: &mut Vec<_>, name: String, image: Image, model, side| {
            let bytes = compress(&image, model, &options(side)).unwrap();
            files.push((name, bytes, Content::Image(image)));
        };
        for &group in groups {
            match group {
                Group::PixelFormats => {
                    for (i, format) in PixelFormat::ALL.into_iter().enumerate() {
                        let entries = match format.bits_per_sample() {
                            1 => 2,
                            2 => 3,
                            4 => 11,
                            _ => 20,
                        };
                        for (side, tiling) in [(UNTILED, "untiled"), (TILED, "tiled")] {
                            let (w, h) = if side == TILED { (40, 20) } else { (13, 9) };
                            let image = synthetic(format, w, h, i as u64, entries, vec![]);
                            single(
                                &mut files,
                                format!("{format:?} {w}×{h} {tiling}"),
                                image,
                                none,
                                side,
                            );
                        }
                    }
                }
                Group::Model => {
                    for format in [PixelFormat::Gray8, PixelFormat::GrayAlpha8] {
                        for (side, w, h) in [(UNTILED, 12, 8), (TILED, 40, 20)] {
                            let image = synthetic(format, w, h, 77, 0, vec![]);
                            let name = format!("{format:?} {w}×{h} tile {side}, test model");
                            single(&mut files, name, image, Some(&model), side);
                        }
                    }
                }
                Group::ColourRecords => {
                    for (side, w, h) in [(UNTILED, 11, 7), (TILED, 40, 20)] {
                        for (name, image) in colour_images(w, h) {
                            single(
                                &mut files,
                                format!("{name} {w}×{h} tile {side}"),
                                image,
                                none,
                                side,
                            );
                        }
                    }
                    for (file, tiled) in [
                        ("basn3p08-trns.png", true),
                        ("basn6a08.png", false),
                        ("basn3p04.png", false),
                        ("basn3p01.png", false),
                        ("ccwn2c08.png", true),
                        ("ccwn3p08.png", false),
                        ("ftbbn0g04.png", false),
                        ("ftbrn2c08.png", false),
                        ("basn0g16.png", false),
                        ("basn4a16.png", false),
                    ] {
                        let image = png_image(file);
                        let sides: &[u32] = if tiled { &[UNTILED, TILED] } else { &[UNTILED] };
                        for &side in sides {
                            single(
                                &mut files,
                                format!("{file} tile {side}"),
                                image.clone(),
                                none,
                                side,
                            );
                        }
                    }
                }
                Group::Archives => {
                    for (name, entries, with_model) in archives() {
                        let m = if with_model { Some(&model) } else { None };
                        let bytes = compress_archive(&entries, m, &options(TILED)).unwrap();
                        files.push((name, bytes, Content::Archive(entries)));
                    }
                }
                Group::Large => {
                    let large = [
                        (PixelFormat::Rgb8, 300, 200, 64),
                        (PixelFormat::Rgba16, 120, 90, 32),
                        (PixelFormat::Palette8, 256, 160, 64),
                        (PixelFormat::Gray16, 200, 130, 128),
                        (PixelFormat::Gray1, 301, 77, 64),
                    ];
                    for (i, (format, w, h, side)) in large.into_iter().enumerate() {
                        let records = vec![gamma(45455), chromaticities()];
                        let image = synthetic(format, w, h, 1000 + i as u64, 200, records);
                        single(
                            &mut files,
                            format!("large {format:?} {w}×{h} tile {side}"),
                            image,
                            none,
                            side,
                        );
                    }
                    let image = synthetic(PixelFormat::Gray8, 160, 96, 5, 0, vec![]);
                    single(
                        &mut files,
                        "large Gray8 160×96, test model".into(),
                        image,
                        Some(&model),
                        32,
                    );
                }
            }
        }
        let mut corpus = Corpus {
            model,
            originals: Vec::new(),
            largest_pixels: 0,
        };
        for (name, bytes, content) in files {
            for image in content.images() {
                corpus.largest_pixels = corpus
                    .largest_pixels
                    .max(u64::from(image.width()) * u64::from(image.height()));
                check_png_round_trip(&name, image);
            }
            let original = Original {
                layout: FileLayout::of(&bytes),
                rewrites: rewrites(&bytes),
                name,
                bytes,
                content,
            };
            corpus.originals.push(original);
        }
        for o in &corpus.originals {
            match corpus.decode(&o.bytes) {
                Ok(c) if c == o.content => {}
                Ok(c) => panic!("{}: {:?}", o.name, difference(&o.content, &c)),
                Err(e) => panic!("{} does not decode: {e}", o.name),
            }
        }
        corpus
    }

    /// The model lookup: the test model (files without a model never ask for one).
    pub fn lookup(&self) -> NamedModel<'_> {
        NamedModel {
            name: "test-model",
            model: &self.model,
        }
    }

    /// One thread, and limits that admit 4 times the largest original's pixels: a damaged size
    /// field can make the decoder work on garbage, but only that much, so every case costs about
    /// the same (the verdicts do not depend on the limits: every original fits them).
    pub fn decode_options(&self) -> DecodeOptions {
        let most = (4 * self.largest_pixels).max(1 << 12);
        DecodeOptions {
            limits: Limits {
                max_width: most.min(u64::from(u32::MAX)) as u32,
                max_height: most.min(u64::from(u32::MAX)) as u32,
                max_pixels: most,
                ..Limits::default()
            },
            threads: 1,
            ..DecodeOptions::default()
        }
    }

    /// Decodes as the command line does: an archive if the magic says so, else an image.
    pub fn decode(&self, bytes: &[u8]) -> Result<Content, String> {
        let options = self.decode_options();
        let lookup = self.lookup();
        match format::detect(bytes) {
            Ok(FileKind::Archive) => decompress_archive(bytes, &lookup, &options)
                .map(Content::Archive)
                .map_err(|e| e.to_string()),
            _ => decompress(bytes, &lookup, &options)
                .map(Content::Image)
                .map_err(|e| e.to_string()),
        }
    }

    /// Decodes damaged `bytes` of `original` and judges the result.
    pub fn judge(&self, original: &Original, bytes: &[u8]) -> Verdict {
        match catch_panic(|| self.decode(bytes)) {
            Err(message) => Verdict::Panic(message),
            Ok(Err(_)) => Verdict::Error,
            Ok(Ok(content)) => match difference(&original.content, &content) {
                None => Verdict::Exact,
                Some(d) => Verdict::Different(d),
            },
        }
    }
}

/// Images carrying every extension record type (tRNS of each kind; PLTE on the palette one).
fn colour_images(w: u32, h: u32) -> Vec<(&'static str, Image)> {
    let profile: Vec<u8> = (0..48u8).map(|i| i.wrapping_mul(37)).collect();
    vec![
        (
            "Rgb8 + tRNS gAMA cHRM sRGB cICP",
            synthetic(
                PixelFormat::Rgb8,
                w,
                h,
                31,
                0,
                vec![
                    record(ExtensionKind::Transparency, vec![0, 10, 0, 20, 0, 30]),
                    gamma(45455),
                    chromaticities(),
                    record(ExtensionKind::Srgb, vec![0]),
                    record(ExtensionKind::Cicp, vec![1, 13, 0, 1]),
                ],
            ),
        ),
        (
            "Gray16 + tRNS iCCP gAMA cHRM",
            synthetic(
                PixelFormat::Gray16,
                w,
                h,
                32,
                0,
                vec![
                    record(ExtensionKind::Transparency, vec![0x12, 0x34]),
                    icc_record("test profile", &profile),
                    gamma(100000),
                    chromaticities(),
                ],
            ),
        ),
        (
            "Palette4 + PLTE tRNS sRGB cICP",
            synthetic(
                PixelFormat::Palette4,
                w,
                h,
                33,
                12,
                vec![
                    record(ExtensionKind::Transparency, vec![0, 64, 128, 192, 255]),
                    record(ExtensionKind::Srgb, vec![2]),
                    record(ExtensionKind::Cicp, vec![9, 16, 0, 1]),
                ],
            ),
        ),
        (
            "Rgba16 + iCCP cICP",
            synthetic(
                PixelFormat::Rgba16,
                w,
                h,
                34,
                0,
                vec![
                    icc_record("p", &profile[..20]),
                    record(ExtensionKind::Cicp, vec![12, 16, 0, 1]),
                ],
            ),
        ),
        (
            "Gray2 + tRNS sRGB",
            synthetic(
                PixelFormat::Gray2,
                w,
                h,
                35,
                0,
                vec![
                    record(ExtensionKind::Transparency, vec![0, 3]),
                    record(ExtensionKind::Srgb, vec![1]),
                ],
            ),
        ),
    ]
}

/// (name, entries, with the test model) of the archives.
fn archives() -> Vec<(String, Vec<NamedImage>, bool)> {
    let gray = |seed, w, h| synthetic(PixelFormat::Gray8, w, h, seed, 0, vec![]);
    // repeated geometry, names differing in one digit
    let same: Vec<NamedImage> = (1..=5)
        .map(|i| named(&format!("d/img-0{i}.png"), gray(100 + i, 12, 10)))
        .collect();
    // constant images: equal payload sizes, entries to swap whole
    let constant = |v: u8| Image::gray8(8, 8, vec![v; 64]).unwrap();
    let flat: Vec<NamedImage> = (0..4)
        .map(|i| named(&format!("flat/{i:03}.png"), constant(40 * i as u8 + 7)))
        .collect();
    // varied names, formats and records; one tiled entry
    let varied = vec![
        named("a.png", gray(1, 9, 9)),
        named(
            "a/b.png",
            synthetic(PixelFormat::Palette4, 10, 6, 2, 9, vec![gamma(45455)]),
        ),
        named(
            "photos/2024/x-1.png",
            synthetic(PixelFormat::Rgb8, 40, 20, 3, 0, vec![chromaticities()]),
        ),
        named(
            "photos/2024/x-2.png",
            synthetic(PixelFormat::Rgb8, 40, 20, 4, 0, vec![gamma(50000)]),
        ),
        named(
            "photos/2024/y.png",
            synthetic(PixelFormat::Gray1, 7, 5, 5, 0, vec![]),
        ),
        named("z", synthetic(PixelFormat::Rgba16, 5, 3, 6, 0, vec![])),
    ];
    // the test model; entries with the same geometry but different records
    let modelled = vec![
        named("m/0.png", gray(7, 12, 8)),
        named("m/1.png", gray(8, 12, 8)),
        named("m/10.png", gray(9, 40, 20)),
        named(
            "m/alpha.png",
            synthetic(PixelFormat::GrayAlpha8, 12, 8, 10, 0, vec![gamma(45455)]),
        ),
    ];
    let recorded = vec![
        named(
            "c/p1.png",
            synthetic(
                PixelFormat::Palette8,
                9,
                7,
                11,
                30,
                vec![record(ExtensionKind::Srgb, vec![0])],
            ),
        ),
        named(
            "c/p2.png",
            synthetic(
                PixelFormat::Palette8,
                9,
                7,
                11,
                30,
                vec![record(ExtensionKind::Srgb, vec![3])],
            ),
        ),
        named(
            "c/icc.png",
            synthetic(
                PixelFormat::Rgb16,
                6,
                6,
                12,
                0,
                vec![icc_record("x", b"profile bytes")],
            ),
        ),
    ];
    vec![
        ("archive d/img-0N (same geometry)".into(), same, false),
        ("archive flat/NNN (constant images)".into(), flat, false),
        ("archive varied names and formats".into(), varied, false),
        ("archive m/* with the test model".into(), modelled, true),
        ("archive c/* colour records".into(), recorded, false),
    ]
}

/// The decoded image survives the codec's PNG writer and reader unchanged (colour records
/// written back as chunks and read again).
fn check_png_round_trip(name: &str, image: &Image) {
    let source = png::SourceImage::from_image(image).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = png::write(&source).unwrap_or_else(|e| panic!("{name}: {e}"));
    let back = png::read(&written)
        .and_then(|s| s.to_image())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(&back, image, "{name}: through PNG");
}

// ---------------------------------------------------------------------------------------------
// Where things are in a file

/// Byte ranges of a file's parts, found by parsing it (payloads and record bytes borrow the
/// input, so their offsets are exact).
#[derive(Clone, Debug, Default)]
pub struct FileLayout {
    /// Every tile payload, in file order.
    pub payloads: Vec<Range<usize>>,
    /// Every extension record's bytes, with what it is ("entry 2 Gamma").
    pub records: Vec<(String, Range<usize>)>,
    /// Every archive entry name's stored (front-coded) bytes, with the entry index.
    pub names: Vec<(usize, Range<usize>)>,
    /// Bytes outside every payload, record and stored name: magic, headers, record types and
    /// lengths, tile indexes.
    pub structure: Vec<usize>,
}

fn varint_len(mut v: u64) -> usize {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

impl FileLayout {
    pub fn of(bytes: &[u8]) -> FileLayout {
        let base = bytes.as_ptr() as usize;
        let range = |s: &[u8]| {
            let start = s.as_ptr() as usize - base;
            start..start + s.len()
        };
        let mut layout = FileLayout::default();
        let images = match format::read(bytes, &Limits::default()).unwrap() {
            Container::Image(file) => vec![file.image],
            Container::Archive(archive) => {
                // entry starts: after the archive header, then after each entry's last payload
                let id = if archive.model.is_external() { 8 } else { 4 };
                let mut start = 2 + 1 + id + varint_len(archive.entries.len() as u64);
                let mut previous = String::new();
                for (i, entry) in archive.entries.iter().enumerate() {
                    let name = entry.name.as_str();
                    let prefix = previous
                        .bytes()
                        .zip(name.bytes())
                        .take_while(|(a, b)| a == b)
                        .count();
                    let suffix = previous.as_bytes()[prefix..]
                        .iter()
                        .rev()
                        .zip(name.as_bytes()[prefix..].iter().rev())
                        .take_while(|(a, b)| a == b)
                        .count();
                    let middle = &name.as_bytes()[prefix..name.len() - suffix];
                    let at = start
                        + 1
                        + varint_len(prefix as u64)
                        + varint_len(suffix as u64)
                        + varint_len(middle.len() as u64);
                    if bytes.get(at..at + middle.len()) == Some(middle) {
                        layout.names.push((i, at..at + middle.len()));
                    } else {
                        // another layout than version 2's: the entry's first bytes instead
                        layout.names.push((i, start..(start + 8).min(bytes.len())));
                    }
                    let last = entry.image.tiles.last().expect("a tile");
                    start = range(last).end;
                    previous = name.to_string();
                }
                archive.entries.into_iter().map(|e| e.image).collect()
            }
        };
        for (i, image) in images.iter().enumerate() {
            for e in &image.extensions {
                layout
                    .records
                    .push((format!("image {i} {:?}", e.kind), range(e.data)));
            }
            layout.payloads.extend(image.tiles.iter().map(|t| range(t)));
        }
        let mut elsewhere = vec![false; bytes.len()];
        let records = layout.records.iter().map(|(_, r)| r);
        let names = layout.names.iter().map(|(_, r)| r);
        for r in layout.payloads.iter().chain(records).chain(names) {
            elsewhere[r.clone()].iter_mut().for_each(|b| *b = true);
        }
        layout.structure = (0..bytes.len()).filter(|&i| !elsewhere[i]).collect();
        layout
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

/// Kinds of damage. The generic ones apply to any file; the targeted ones to what a file has.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// One bit flipped outside the payloads, record bytes and stored names: magic, geometry,
    /// descriptor, model id, record types and lengths, tile index, entry flags.
    HeaderBit,
    /// One bit flipped inside a tile payload.
    PayloadBit,
    /// One byte set to another value.
    Overwrite,
    /// One byte inserted.
    Insert,
    /// One byte deleted.
    Delete,
    /// The file cut short.
    Truncate,
    /// A piece of another file in place of a piece of this one, or this file's head followed
    /// by another file's tail.
    Splice,
    /// Two equal-size tile payloads swapped (within an image or between archive entries).
    TileSwap,
    /// The pixel format changed (the file otherwise rewritten canonically).
    PixelFormat,
    /// One bit flipped in an extension record's bytes (PLTE, tRNS, iCCP, gAMA, cHRM, sRGB, cICP).
    RecordBit,
    /// A record dropped, added, retyped, or moved between archive entries.
    RecordEdit,
    /// An archive entry name's stored bytes changed (a bit, or a character), or an entry
    /// renamed and the archive rewritten.
    EntryName,
    /// Archive entries reordered, dropped, duplicated, or their images swapped.
    EntryOrder,
    /// An archive entry written as an image file, or an image file as a one-entry archive.
    Container,
}

impl Class {
    pub const ALL: [Class; 14] = [
        Class::HeaderBit,
        Class::PayloadBit,
        Class::Overwrite,
        Class::Insert,
        Class::Delete,
        Class::Truncate,
        Class::Splice,
        Class::TileSwap,
        Class::PixelFormat,
        Class::RecordBit,
        Class::RecordEdit,
        Class::EntryName,
        Class::EntryOrder,
        Class::Container,
    ];

    /// The classes [`random_case`] picks from before the targeted ones.
    const GENERIC: [Class; 7] = [
        Class::HeaderBit,
        Class::PayloadBit,
        Class::Overwrite,
        Class::Insert,
        Class::Delete,
        Class::Truncate,
        Class::Splice,
    ];
}

/// One damaged file.
pub struct Case {
    pub class: Class,
    /// What was done, precisely enough to redo it.
    pub what: String,
    pub bytes: Vec<u8>,
}

fn flip(bytes: &[u8], at: usize, bit: u32) -> Case {
    let mut b = bytes.to_vec();
    b[at] ^= 1 << bit;
    Case {
        class: Class::HeaderBit,
        what: format!("bit {bit} of byte {at} flipped"),
        bytes: b,
    }
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> Option<&'a T> {
    match items.len() {
        0 => None,
        n => Some(&items[rng.range(0, n as i64 - 1) as usize]),
    }
}

/// Uniform in `0..n` (`n > 0`).
fn below(rng: &mut Rng, n: usize) -> usize {
    rng.range(0, n as i64 - 1) as usize
}

/// A random bit of the structure bytes.
fn header_bit(o: &Original, rng: &mut Rng) -> Case {
    let at = *pick(rng, &o.layout.structure).unwrap();
    flip(&o.bytes, at, rng.range(0, 7) as u32)
}

fn payload_bit(o: &Original, rng: &mut Rng) -> Option<Case> {
    let r = pick(rng, &o.layout.payloads)?.clone();
    if r.is_empty() {
        return None;
    }
    let at = r.start + below(rng, r.len());
    let mut case = flip(&o.bytes, at, rng.range(0, 7) as u32);
    case.class = Class::PayloadBit;
    Some(case)
}

/// A position, in the structure half of the time.
fn position(o: &Original, rng: &mut Rng, end_ok: bool) -> usize {
    if rng.range(0, 1) == 0 {
        *pick(rng, &o.layout.structure).unwrap()
    } else {
        below(rng, o.bytes.len() + usize::from(end_ok))
    }
}

fn overwrite(o: &Original, rng: &mut Rng) -> Case {
    let at = position(o, rng, false);
    let mut b = o.bytes.clone();
    let value = b[at].wrapping_add(rng.range(1, 255) as u8);
    b[at] = value;
    Case {
        class: Class::Overwrite,
        what: format!("byte {at} set to {value:#04x}"),
        bytes: b,
    }
}

fn insert(o: &Original, rng: &mut Rng) -> Case {
    let at = position(o, rng, true);
    let value = rng.range(0, 255) as u8;
    let mut b = o.bytes.clone();
    b.insert(at, value);
    Case {
        class: Class::Insert,
        what: format!("{value:#04x} inserted at {at}"),
        bytes: b,
    }
}

fn delete(o: &Original, rng: &mut Rng) -> Case {
    let at = position(o, rng, false);
    let mut b = o.bytes.clone();
    b.remove(at);
    Case {
        class: Class::Delete,
        what: format!("byte {at} deleted"),
        bytes: b,
    }
}

fn truncate(o: &Original, len: usize) -> Case {
    Case {
        class: Class::Truncate,
        what: format!("truncated to {len} bytes"),
        bytes: o.bytes[..len].to_vec(),
    }
}

fn splice(o: &Original, other: &Original, rng: &mut Rng) -> Case {
    let (a, b) = (&o.bytes, &other.bytes);
    if rng.range(0, 1) == 0 {
        // this file's head, the other's tail, cut at the same offset past their common prefix
        // (a cut inside it gives the other file itself: no damage)
        let common = a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let max = a.len().min(b.len());
        let cut = if common >= max {
            max
        } else {
            common + 1 + below(rng, max - common)
        };
        let mut bytes = a[..cut].to_vec();
        bytes.extend_from_slice(&b[cut..]);
        Case {
            class: Class::Splice,
            what: format!("head to {cut}, then the tail of {}", other.name),
            bytes,
        }
    } else {
        let from = below(rng, b.len());
        let piece = &b[from..(from + rng.range(1, 64) as usize).min(b.len())];
        let at = below(rng, a.len() + 1);
        let end = (at + rng.range(0, 64) as usize).min(a.len());
        let mut bytes = a.clone();
        bytes.splice(at..end, piece.iter().copied());
        Case {
            class: Class::Splice,
            what: format!(
                "bytes {at}..{end} replaced by bytes {from}..{} of {}",
                from + piece.len(),
                other.name
            ),
            bytes,
        }
    }
}

/// Every pair of equal-size, different tile payloads (indexes into the layout's payloads).
fn swap_pairs(o: &Original) -> Vec<(usize, usize)> {
    let p = &o.layout.payloads;
    let mut pairs = Vec::new();
    for i in 0..p.len() {
        for j in i + 1..p.len() {
            if p[i].len() == p[j].len() && o.bytes[p[i].clone()] != o.bytes[p[j].clone()] {
                pairs.push((i, j));
            }
        }
    }
    pairs
}

/// Payloads `i` and `j` (of equal size) swapped.
fn swap_case(o: &Original, (i, j): (usize, usize)) -> Case {
    let (a, b) = (o.layout.payloads[i].clone(), o.layout.payloads[j].clone());
    let mut bytes = o.bytes.clone();
    bytes.copy_within(b.clone(), a.start);
    bytes[b.clone()].copy_from_slice(&o.bytes[a.clone()]);
    Case {
        class: Class::TileSwap,
        what: format!("payloads {i} ({a:?}) and {j} ({b:?}) swapped"),
        bytes,
    }
}

/// The first `most` swaps of equal-size tile payloads.
fn tile_swaps(o: &Original, most: usize) -> Vec<Case> {
    let pairs = swap_pairs(o);
    pairs
        .into_iter()
        .take(most)
        .map(|p| swap_case(o, p))
        .collect()
}

/// Every bit of every record's bytes (records longer than `whole` bytes: `sampled` bits).
fn record_bits(o: &Original, rng: &mut Rng, whole: usize, sampled: usize) -> Vec<Case> {
    let mut cases = Vec::new();
    for (what, r) in &o.layout.records {
        let bits: Vec<usize> = if r.len() <= whole {
            (0..8 * r.len()).collect()
        } else {
            (0..sampled).map(|_| below(rng, 8 * r.len())).collect()
        };
        for bit in bits {
            let mut case = flip(&o.bytes, r.start + bit / 8, (bit % 8) as u32);
            case.class = Class::RecordBit;
            case.what = format!("{what}: {}", case.what);
            cases.push(case);
        }
    }
    cases
}

/// Every bit of every stored name byte, and each stored name byte replaced by a name character.
fn name_bytes(o: &Original) -> Vec<Case> {
    let mut cases = Vec::new();
    for (entry, r) in &o.layout.names {
        for at in r.clone() {
            for bit in 0..8 {
                let mut case = flip(&o.bytes, at, bit);
                case.class = Class::EntryName;
                case.what = format!("entry {entry} name: {}", case.what);
                cases.push(case);
            }
            let old = o.bytes[at];
            let new = match old {
                b'0'..=b'8' | b'a'..=b'y' => old + 1,
                b'9' => b'0',
                _ => b'q',
            };
            let mut bytes = o.bytes.clone();
            bytes[at] = new;
            cases.push(Case {
                class: Class::EntryName,
                what: format!(
                    "entry {entry} name: byte {at} {:?} → {:?}",
                    old as char, new as char
                ),
                bytes,
            });
        }
    }
    cases
}

/// The whole-file rewrites (canonical files made with the format's writer) of the targeted
/// classes: pixel formats, records, names, entries, container kinds.
fn rewrites(bytes: &[u8]) -> Vec<(Class, String, Vec<u8>)> {
    let mut out = Vec::new();
    match format::read(bytes, &Limits::default()).unwrap() {
        Container::Image(file) => {
            let file = file.to_owned_file();
            let mut edits = Vec::new();
            edit_images(&mut [file.image.clone()], &mut |class, what, mut images| {
                edits.push((class, what, images.remove(0)));
            });
            for (class, what, image) in edits {
                let f = ImageFile {
                    image,
                    ..file.clone()
                };
                if let Ok(b) = f.to_bytes() {
                    out.push((class, what, b));
                }
            }
            let archive = Archive {
                version: file.version,
                model: file.model,
                entries: vec![ArchiveEntry {
                    name: EntryName::new("image.png").unwrap(),
                    image: file.image.clone(),
                }],
                chain: None,
            };
            if let Ok(b) = archive.to_bytes() {
                out.push((Class::Container, "as a one-entry archive".into(), b));
            }
        }
        Container::Archive(archive) => {
            let entries: Vec<ArchiveEntry> = archive
                .entries
                .iter()
                .map(|e| ArchiveEntry {
                    name: e.name.clone(),
                    image: e.image.to_owned_image(),
                })
                .collect();
            let mut edits: Vec<(Class, String, Vec<ArchiveEntry>)> = Vec::new();
            let mut images: Vec<_> = entries.iter().map(|e| e.image.clone()).collect();
            edit_images(&mut images, &mut |class, what, images| {
                let edited = entries
                    .iter()
                    .zip(images)
                    .map(|(e, image)| ArchiveEntry {
                        name: e.name.clone(),
                        image,
                    })
                    .collect();
                edits.push((class, what, edited));
            });
            let n = entries.len();
            for i in 0..n {
                // renamed: the last character changed, the archive front-coded again
                let name = entries[i].name.as_str();
                let mut renamed = name[..name.len() - 1].to_string();
                renamed.push(if name.ends_with('x') { 'y' } else { 'x' });
                if let Ok(new) = EntryName::new(renamed.clone()) {
                    let mut e = entries.clone();
                    e[i].name = new;
                    edits.push((
                        Class::EntryName,
                        format!("entry {i} renamed {renamed:?}"),
                        e,
                    ));
                }
                let mut e = entries.clone();
                e.remove(i);
                edits.push((Class::EntryOrder, format!("entry {i} dropped"), e));
                if i + 1 < n {
                    let mut e = entries.clone();
                    e.swap(i, i + 1);
                    let what = format!("entries {i} and {} swapped", i + 1);
                    edits.push((Class::EntryOrder, what, e));
                }
                for j in i + 1..n {
                    if entries[i].image != entries[j].image {
                        let mut e = entries.clone();
                        let image = e[i].image.clone();
                        e[i].image = e[j].image.clone();
                        e[j].image = image;
                        edits.push((
                            Class::EntryOrder,
                            format!("images of {i} and {j} swapped"),
                            e,
                        ));
                    }
                    if entries[i].image.extensions != entries[j].image.extensions {
                        let mut e = entries.clone();
                        let records = e[i].image.extensions.clone();
                        e[i].image.extensions = e[j].image.extensions.clone();
                        e[j].image.extensions = records;
                        edits.push((
                            Class::RecordEdit,
                            format!("records of {i} and {j} swapped"),
                            e,
                        ));
                    }
                }
                let image = ImageFile {
                    version: archive.version,
                    model: archive.model,
                    image: entries[i].image.clone(),
                };
                if let Ok(b) = image.to_bytes() {
                    out.push((Class::Container, format!("entry {i} as an image file"), b));
                }
            }
            let mut e = entries.clone();
            e.push(ArchiveEntry {
                name: EntryName::new("extra/copy.png").unwrap(),
                image: entries[0].image.clone(),
            });
            edits.push((Class::EntryOrder, "entry 0 repeated at the end".into(), e));
            edits.push((
                Class::EntryOrder,
                "first two entries only".into(),
                entries[..2].to_vec(),
            ));
            for (class, what, entries) in edits {
                let a = Archive {
                    version: archive.version,
                    model: archive.model,
                    entries,
                    chain: None,
                };
                if let Ok(b) = a.to_bytes() {
                    out.push((class, what, b));
                }
            }
        }
    }
    out
}

/// A record of `kind` and a valid length, for adding one.
fn default_record(kind: ExtensionKind) -> Vec<u8> {
    match kind {
        ExtensionKind::Palette => vec![0, 0, 0, 255, 255, 255],
        ExtensionKind::Transparency => vec![0, 0],
        ExtensionKind::IccProfile => icc_record("added", b"icc").data,
        ExtensionKind::Gamma => 45455u32.to_be_bytes().to_vec(),
        ExtensionKind::Chromaticities => chromaticities().data,
        ExtensionKind::Srgb => vec![0],
        ExtensionKind::Cicp => vec![1, 13, 0, 1],
    }
}

/// Calls `emit` with each edit of `images` (the coded images of a file, entry by entry): a
/// pixel format changed (first two images), a record dropped, added, or given another type.
fn edit_images(
    images: &mut [format::CodedImage],
    emit: &mut dyn FnMut(Class, String, Vec<format::CodedImage>),
) {
    for i in 0..images.len() {
        if i < 2 {
            for f in PixelFormat::ALL {
                if f != images[i].header.pixel_format {
                    let mut e = images.to_vec();
                    e[i].header.pixel_format = f;
                    emit(
                        Class::PixelFormat,
                        format!("image {i}: pixel format {f:?}"),
                        e,
                    );
                }
            }
        }
        let records = images[i].extensions.clone();
        let mut set = |records: Vec<Extension>, what: String| {
            let mut e = images.to_vec();
            e[i].extensions = records;
            e[i].extensions.sort_by_key(|r| r.kind);
            emit(Class::RecordEdit, format!("image {i}: {what}"), e);
        };
        for (k, r) in records.iter().enumerate() {
            let mut fewer = records.clone();
            fewer.remove(k);
            set(fewer, format!("{:?} record dropped", r.kind));
            // the same bytes under another type whose length rule they meet
            for kind in ExtensionKind::ALL {
                let fits = match kind {
                    ExtensionKind::Palette => r.data.len() % 3 == 0 && r.data.len() <= 768,
                    ExtensionKind::Transparency => r.data.len() <= 256,
                    ExtensionKind::IccProfile => true,
                    ExtensionKind::Gamma | ExtensionKind::Cicp => r.data.len() == 4,
                    ExtensionKind::Chromaticities => r.data.len() == 32,
                    ExtensionKind::Srgb => r.data.len() == 1,
                };
                if fits && !records.iter().any(|x| x.kind == kind) {
                    let mut retyped = records.clone();
                    retyped[k].kind = kind;
                    set(retyped, format!("{:?} record retyped {kind:?}", r.kind));
                }
            }
        }
        for kind in ExtensionKind::ALL {
            if !records.iter().any(|x| x.kind == kind) {
                let mut more = records.clone();
                more.push(record(kind, default_record(kind)));
                set(more, format!("{kind:?} record added"));
            }
        }
    }
}

/// Whether `case` damages `o`: its bytes are neither `o`'s nor those of another original (a
/// splice can give a whole other file, valid and rightly decoded).
pub fn is_damage(case: &Case, o: &Original, originals: &[Original]) -> bool {
    case.bytes != o.bytes && originals.iter().all(|x| x.bytes != case.bytes)
}

/// One random case of `originals[index]` (the others to splice from): a generic class half of
/// the time, else a targeted one, falling back to a generic class where the file has nothing to
/// target; never a case that is not damage ([`is_damage`]).
pub fn random_case(originals: &[Original], index: usize, rng: &mut Rng) -> Case {
    loop {
        let case = random_candidate(originals, index, rng);
        if is_damage(&case, &originals[index], originals) {
            return case;
        }
    }
}

fn random_candidate(originals: &[Original], index: usize, rng: &mut Rng) -> Case {
    let o = &originals[index];
    if rng.range(0, 1) == 0 {
        // a targeted class this file has, then one case of it
        let mut classes: Vec<Class> = o.rewrites.iter().map(|r| r.0).collect();
        let pairs = swap_pairs(o);
        if !pairs.is_empty() {
            classes.push(Class::TileSwap);
        }
        if !o.layout.records.is_empty() {
            classes.push(Class::RecordBit);
        }
        if !o.layout.names.is_empty() {
            classes.push(Class::EntryName);
        }
        classes.sort();
        classes.dedup();
        let rewrite = |rng: &mut Rng, class: Class| {
            let of_class: Vec<_> = o.rewrites.iter().filter(|r| r.0 == class).collect();
            pick(rng, &of_class).map(|(class, what, bytes)| Case {
                class: *class,
                what: what.clone(),
                bytes: bytes.clone(),
            })
        };
        let targeted = match pick(rng, &classes).copied() {
            None => None,
            Some(Class::TileSwap) => Some(swap_case(o, *pick(rng, &pairs).unwrap())),
            Some(Class::RecordBit) => pick(rng, &o.layout.records).map(|(what, r)| {
                let at = r.start + below(rng, r.len());
                let mut case = flip(&o.bytes, at, rng.range(0, 7) as u32);
                case.class = Class::RecordBit;
                case.what = format!("{what}: {}", case.what);
                case
            }),
            Some(Class::EntryName) if rng.range(0, 1) == 0 => {
                let mut cases = name_bytes(o);
                let n = cases.len();
                (n > 0).then(|| cases.swap_remove(below(rng, n)))
            }
            Some(class) => rewrite(rng, class),
        };
        if let Some(case) = targeted {
            return case;
        }
    }
    loop {
        let case = match *pick(rng, &Class::GENERIC).unwrap() {
            Class::HeaderBit => Some(header_bit(o, rng)),
            Class::PayloadBit => payload_bit(o, rng),
            Class::Overwrite => Some(overwrite(o, rng)),
            Class::Insert => Some(insert(o, rng)),
            Class::Delete => Some(delete(o, rng)),
            Class::Truncate => Some(truncate(o, below(rng, o.bytes.len()))),
            _ => Some(splice(o, pick(rng, originals).unwrap(), rng)),
        };
        if let Some(case) = case {
            return case;
        }
    }
}

/// How many cases [`planned_cases`] makes of one file.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Structure bits flipped: all of them up to this many, else this many, sampled.
    pub header_bits: usize,
    pub payload_bits: usize,
    pub overwrites: usize,
    pub inserts: usize,
    pub deletes: usize,
    /// Every truncation up to this file length; longer files: this many, sampled.
    pub truncations: usize,
    pub splices: usize,
    pub tile_swaps: usize,
    /// Records up to this many bytes: every bit; longer ones: `record_bits_sampled` bits.
    pub record_bytes_whole: usize,
    pub record_bits_sampled: usize,
}

/// The fixed cases of `originals[index]`: exhaustive where small, else seeded samples.
pub fn planned_cases(
    originals: &[Original],
    index: usize,
    plan: &Plan,
    rng: &mut Rng,
) -> Vec<Case> {
    let o = &originals[index];
    let mut cases = Vec::new();
    let s = &o.layout.structure;
    if 8 * s.len() <= plan.header_bits {
        for &at in s {
            cases.extend((0..8).map(|bit| flip(&o.bytes, at, bit)));
        }
    } else {
        // the first 16 structure bytes (magic, geometry, model id) whole, the rest sampled
        for &at in &s[..16.min(s.len())] {
            cases.extend((0..8).map(|bit| flip(&o.bytes, at, bit)));
        }
        for _ in 0..plan.header_bits.saturating_sub(128) {
            cases.push(header_bit(o, rng));
        }
    }
    cases.extend((0..plan.payload_bits).filter_map(|_| payload_bit(o, rng)));
    cases.extend((0..plan.overwrites).map(|_| overwrite(o, rng)));
    cases.extend((0..plan.inserts).map(|_| insert(o, rng)));
    cases.extend((0..plan.deletes).map(|_| delete(o, rng)));
    let len = o.bytes.len();
    if len <= plan.truncations {
        cases.extend((0..len).map(|n| truncate(o, n)));
    } else {
        cases.extend((0..plan.truncations).map(|_| truncate(o, below(rng, len))));
        cases.extend((len - 4..len).map(|n| truncate(o, n)));
    }
    let others: Vec<&Original> = originals
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != index)
        .map(|(_, o)| o)
        .collect();
    if !others.is_empty() {
        for _ in 0..plan.splices {
            let other = others[below(rng, others.len())];
            cases.push(splice(o, other, rng));
        }
    }
    cases.extend(tile_swaps(o, plan.tile_swaps));
    cases.extend(record_bits(
        o,
        rng,
        plan.record_bytes_whole,
        plan.record_bits_sampled,
    ));
    cases.extend(name_bytes(o));
    cases.extend(o.rewrites.iter().map(|(class, what, bytes)| Case {
        class: *class,
        what: what.clone(),
        bytes: bytes.clone(),
    }));
    cases.retain(|case| is_damage(case, o, originals));
    cases
}

// ---------------------------------------------------------------------------------------------
// Verdicts and tallies

/// What a damaged file decoded to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// An error: the damage was caught.
    Error,
    /// Exactly the original (damage that changed nothing decoded).
    Exact,
    /// Exit 0 with something else: what differs.
    Different(String),
    /// The decoder panicked: the message and where.
    Panic(String),
}

thread_local! {
    static IN_CASE: Cell<bool> = const { Cell::new(false) };
}
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());
static HOOK: Once = Once::new();

/// Runs `f`, turning a panic into its message and location; panics inside are not printed
/// (others, e.g. a test's failed assertion, are, by the previous hook).
pub fn catch_panic<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if IN_CASE.with(Cell::get) {
                *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = info.to_string();
            } else {
                previous(info);
            }
        }));
    });
    IN_CASE.with(|c| c.set(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    IN_CASE.with(|c| c.set(false));
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        let last = LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if last.is_empty() {
            message
        } else {
            last
        }
    })
}

/// Cases by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub cases: u64,
    pub errors: u64,
    pub exact: u64,
    pub different: u64,
    pub panics: u64,
}

impl Counts {
    fn add(&mut self, v: &Verdict) {
        self.cases += 1;
        match v {
            Verdict::Error => self.errors += 1,
            Verdict::Exact => self.exact += 1,
            Verdict::Different(_) => self.different += 1,
            Verdict::Panic(_) => self.panics += 1,
        }
    }
}

/// Counts overall and by class, and the first offending cases.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub total: Counts,
    pub by_class: BTreeMap<Class, Counts>,
    /// The first [`Tally::SHOWN`] differing or panicking cases of each class, described.
    pub offenders: BTreeMap<Class, Vec<String>>,
}

impl Tally {
    pub const SHOWN: usize = 3;

    /// Records a verdict; `describe` says which case it was (called for offenders only).
    pub fn record(&mut self, class: Class, verdict: &Verdict, describe: impl FnOnce() -> String) {
        self.total.add(verdict);
        self.by_class.entry(class).or_default().add(verdict);
        let problem = match verdict {
            Verdict::Different(d) => format!("exit 0 with a different result: {d}"),
            Verdict::Panic(p) => format!("PANIC: {p}"),
            _ => return,
        };
        let shown = self.offenders.entry(class).or_default();
        if shown.len() < Self::SHOWN {
            shown.push(format!("{}: {problem}", describe()));
        }
    }

    pub fn ok(&self) -> bool {
        self.total.different == 0 && self.total.panics == 0
    }

    /// One line per class, then the total.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let line = |s: &mut String, name: &str, c: &Counts| {
            let _ = writeln!(
                s,
                "  {name:<12} {:>7} cases {:>7} errors {:>6} exact {:>5} different {:>3} panics",
                c.cases, c.errors, c.exact, c.different, c.panics
            );
        };
        for (class, c) in &self.by_class {
            line(&mut s, &format!("{class:?}"), c);
        }
        line(&mut s, "all", &self.total);
        s
    }

    /// The failure message: the counts, then the first offenders.
    pub fn failure(&self) -> String {
        let mut s = format!(
            "{} of {} damaged files decoded with exit 0 to something other than the original, \
             {} panicked (a decode must return an error or exactly the original):\n{}the first \
             offenders of each class:\n",
            self.total.different,
            self.total.cases,
            self.total.panics,
            self.table()
        );
        for (class, shown) in &self.offenders {
            for o in shown {
                let _ = writeln!(s, "  [{class:?}] {o}");
            }
        }
        s
    }
}
