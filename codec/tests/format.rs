//! Container format: round trips, corruption, limits, names, and the examples in FORMAT.md.

use idfcodec_codec::format::{
    self, crc32, Archive, ArchiveEntry, CodedImage, Container, EntryName, FileKind, FormatError,
    ImageFile, ImageHeader, Limits, ModelRef, PixelFormat, Tiling,
};
use proptest::prelude::*;

const MODEL_ID: u64 = 0x0123_4567_89ab_cdef;

/// The 28×28 test pattern of the FORMAT.md examples.
fn pattern_pixels(width: u32, height: u32) -> Vec<u8> {
    (0..height)
        .flat_map(|y| (0..width).map(move |x| ((x * 9 + y * 3) % 256) as u8))
        .collect()
}

/// A gray8 image whose tile `i` has payload bytes `0x10·i + 0, 1, …` of length `lens[i]`.
fn coded(width: u32, height: u32, tiling: Tiling, lens: &[usize]) -> CodedImage {
    let pixels = pattern_pixels(width, height);
    let header = ImageHeader {
        width,
        height,
        pixel_format: PixelFormat::Gray8,
        tiling,
        pixel_crc: crc32(&pixels),
    };
    let tiles = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (0x10 * i + j) as u8).collect())
        .collect();
    CodedImage { header, tiles }
}

/// FORMAT.md example 1: a 28×28 MNIST-sized image, embedded model, one tile.
fn example_single() -> ImageFile {
    ImageFile {
        model: ModelRef::embedded(MODEL_ID),
        image: coded(28, 28, Tiling::Whole, &[6]),
    }
}

/// FORMAT.md example 2: 40×20 in 16-pixel tiles (3×2 tiles), external model.
fn example_tiled() -> ImageFile {
    let tiling = Tiling::square(16).unwrap();
    ImageFile {
        model: ModelRef::external(MODEL_ID),
        image: coded(40, 20, tiling, &[3, 2, 2, 1, 2, 2]),
    }
}

/// FORMAT.md example 3: an archive of two 28×28 images.
fn example_archive() -> Archive {
    let entry = |name: &str, len| ArchiveEntry {
        name: EntryName::new(name).unwrap(),
        image: coded(28, 28, Tiling::Whole, &[len]),
    };
    Archive {
        model: ModelRef::embedded(MODEL_ID),
        entries: vec![entry("0/a.png", 3), entry("1/b.png", 2)],
    }
}

fn read_any(bytes: &[u8]) -> Result<Container<'_>, FormatError> {
    format::read(bytes, &Limits::UNLIMITED)
}

/// Re-serialises whatever was parsed.
fn rewrite(c: &Container<'_>) -> Vec<u8> {
    match c {
        Container::Image(f) => f.to_bytes().unwrap(),
        Container::Archive(a) => a.to_bytes().unwrap(),
    }
}

// ---------------------------------------------------------------- round trips

fn dimension() -> impl Strategy<Value = u32> {
    prop_oneof![1..=300u32, 1..=u32::MAX]
}

fn pixel_format() -> impl Strategy<Value = PixelFormat> {
    proptest::sample::select(PixelFormat::ALL.to_vec())
}

fn model_ref() -> impl Strategy<Value = ModelRef> {
    prop_oneof![
        any::<u64>().prop_map(ModelRef::embedded),
        any::<u64>().prop_map(ModelRef::external)
    ]
}

/// A header whose tile count stays small enough to build payloads for.
fn header() -> impl Strategy<Value = ImageHeader> {
    (
        dimension(),
        dimension(),
        pixel_format(),
        4u8..=16,
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(|(width, height, pixel_format, log2, tiled, pixel_crc)| {
            let square = Tiling::Square { log2 };
            let tiling = if tiled && square.grid(width, height).count() <= 64 {
                square
            } else {
                Tiling::Whole
            };
            ImageHeader {
                width,
                height,
                pixel_format,
                tiling,
                pixel_crc,
            }
        })
}

fn coded_image() -> impl Strategy<Value = CodedImage> {
    header().prop_flat_map(|header| {
        let count = header.grid().count() as usize;
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), count)
            .prop_map(move |tiles| CodedImage { header, tiles })
    })
}

proptest! {
    #[test]
    fn image_files_round_trip(model in model_ref(), image in coded_image()) {
        let file = ImageFile { model, image };
        let bytes = file.to_bytes().unwrap();
        let read = ImageFile::read(&bytes, &Limits::UNLIMITED).unwrap();
        prop_assert_eq!(read.to_owned_file(), file);
        prop_assert_eq!(format::detect(&bytes).unwrap(), FileKind::Image);
    }

    #[test]
    fn archives_round_trip(model in model_ref(), images in proptest::collection::vec(coded_image(), 0..5)) {
        let entries = images.into_iter().enumerate()
            .map(|(i, image)| ArchiveEntry { name: EntryName::new(format!("dir/{i}.png")).unwrap(), image })
            .collect();
        let archive = Archive { model, entries };
        let bytes = archive.to_bytes().unwrap();
        let read = Archive::read(&bytes, &Limits::UNLIMITED).unwrap();
        prop_assert_eq!(read.model, archive.model);
        let owned: Vec<_> = read.entries.iter().map(|e| (e.name.clone(), e.image.to_owned_image())).collect();
        let expected: Vec<_> = archive.entries.iter().map(|e| (e.name.clone(), e.image.clone())).collect();
        prop_assert_eq!(owned, expected);
    }

    /// Arbitrary bytes behind a valid magic never panic, and whatever parses is canonical.
    #[test]
    fn arbitrary_bytes_parse_canonically_or_error(
        magic in proptest::sample::select(vec![[0x69u8, 0xd1], [0x69, 0xa1]]),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = [magic.as_slice(), &body].concat();
        if let Ok(c) = read_any(&bytes) {
            prop_assert_eq!(rewrite(&c), bytes);
        }
    }
}

// ---------------------------------------------------------------- corruption

fn small_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("single", example_single().to_bytes().unwrap()),
        ("tiled", example_tiled().to_bytes().unwrap()),
        ("archive", example_archive().to_bytes().unwrap()),
    ]
}

/// Where the last tile's payload starts in a single-image file (it runs to the end of the file).
fn last_tile_start(file: &ImageFile) -> usize {
    let bytes = file.to_bytes().unwrap();
    bytes.len() - file.image.tiles.last().unwrap().len()
}

#[test]
fn every_truncation_errors_unless_it_only_shortens_the_last_tile() {
    for (what, file) in [("single", example_single()), ("tiled", example_tiled())] {
        let bytes = file.to_bytes().unwrap();
        let payload_start = last_tile_start(&file);
        for cut in 0..bytes.len() {
            match ImageFile::read(&bytes[..cut], &Limits::default()) {
                Err(_) => assert!(cut < payload_start, "{what}: cut at {cut} should parse"),
                Ok(read) => {
                    assert!(
                        cut >= payload_start,
                        "{what}: cut at {cut} inside the header parsed"
                    );
                    let mut expected = file.clone();
                    expected
                        .image
                        .tiles
                        .last_mut()
                        .unwrap()
                        .truncate(cut - payload_start);
                    assert_eq!(read.to_owned_file(), expected, "{what}: cut at {cut}");
                }
            }
        }
    }
    let archive = example_archive().to_bytes().unwrap();
    for cut in 0..archive.len() {
        let err = Archive::read(&archive[..cut], &Limits::default()).unwrap_err();
        assert!(
            matches!(err, FormatError::Truncated { .. }),
            "archive cut at {cut}: {err}"
        );
    }
}

#[test]
fn every_bit_flip_errors_or_parses_to_another_canonical_file() {
    for (what, bytes) in small_files() {
        let original = read_any(&bytes).unwrap();
        let (mut errors, mut parsed) = (0, 0);
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            match read_any(&flipped) {
                Err(_) => errors += 1,
                Ok(c) => {
                    parsed += 1;
                    assert_ne!(c, original, "{what}: flipping bit {bit} changed nothing");
                    assert_eq!(
                        rewrite(&c),
                        flipped,
                        "{what}: flipping bit {bit} parsed non-canonically"
                    );
                }
            }
        }
        assert!(
            errors > 0 && parsed > 0,
            "{what}: {errors} errors, {parsed} parsed"
        );
    }
}

#[test]
fn trailing_bytes_after_an_archive_are_rejected() {
    let mut bytes = example_archive().to_bytes().unwrap();
    bytes.extend_from_slice(&[0, 0, 0]);
    let err = Archive::read(&bytes, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, FormatError::TrailingBytes { count: 3 }),
        "{err}"
    );
}

#[test]
fn wrong_kind_is_named() {
    let archive = example_archive().to_bytes().unwrap();
    let err = ImageFile::read(&archive, &Limits::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected an idfcodec image file, found an idfcodec archive file"
    );
    let image = example_single().to_bytes().unwrap();
    assert!(matches!(
        Archive::read(&image, &Limits::default()),
        Err(FormatError::WrongKind { .. })
    ));
}

#[test]
fn unsupported_versions_say_which_is_supported() {
    let mut bytes = example_single().to_bytes().unwrap();
    bytes[1] = 0xd7;
    let err = read_any(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("version 7") && err.contains("reads version 1"),
        "{err}"
    );
}

// ---------------------------------------------------------------- limits

/// An image file header claiming `width × height`, followed by `tail`.
fn claimed(width: u64, height: u64, descriptor: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x69, 0xd1];
    for mut v in [width, height] {
        while v >= 0x80 {
            bytes.push(v as u8 | 0x80);
            v >>= 7;
        }
        bytes.push(v as u8);
    }
    bytes.extend_from_slice(descriptor);
    bytes.extend_from_slice(&[0; 8]); // model id and checksum
    bytes.extend_from_slice(tail);
    bytes
}

fn limit_flag(err: FormatError) -> &'static str {
    match err {
        FormatError::LimitExceeded { flag, .. } => flag,
        other => panic!("expected a limit error, got {other}"),
    }
}

#[test]
fn limits_are_enforced_with_the_flag_to_raise_them() {
    let limits = Limits::default();
    let read =
        |bytes: &[u8], limits: &Limits| ImageFile::read(bytes, limits).map(|_| ()).unwrap_err();
    assert_eq!(
        limit_flag(read(&claimed(1 << 31, 1 << 31, &[0], &[]), &limits)),
        "--max-width"
    );
    assert_eq!(
        limit_flag(read(&claimed(1, 1 << 31, &[0], &[]), &limits)),
        "--max-height"
    );
    let err = read(&claimed(20_000, 20_000, &[0], &[]), &limits);
    assert!(
        err.to_string().contains("--max-pixels")
            && err.to_string().contains(&(1u64 << 28).to_string()),
        "{err}"
    );
    let few_tiles = Limits {
        max_tiles: 3,
        ..limits
    };
    let tiled = claimed(64, 64, &[0x40, 4], &[0; 64]); // 16 tiles
    assert_eq!(limit_flag(read(&tiled, &few_tiles)), "--max-tiles");
    ImageFile::read(
        &tiled,
        &Limits {
            max_tiles: 16,
            ..limits
        },
    )
    .unwrap();
    let err = read(&claimed(1 << 32, 1, &[0], &[]), &Limits::UNLIMITED);
    assert!(
        matches!(
            err,
            FormatError::FieldOutOfRange {
                field: "image width",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn archive_entry_count_is_limited_and_checked_against_the_input() {
    let mut bytes = example_archive().to_bytes().unwrap();
    let count_at = 2 + 1 + 4; // magic, model flags, model id
    assert_eq!(bytes[count_at], 2);
    let err = Archive::read(
        &bytes,
        &Limits {
            max_entries: 1,
            ..Limits::default()
        },
    )
    .unwrap_err();
    assert_eq!(limit_flag(err), "--max-entries");
    bytes.splice(count_at..count_at + 1, [0xff, 0xff, 0xff, 0xff, 0x0f]);
    let err = Archive::read(&bytes, &Limits::UNLIMITED).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::Truncated {
                what: "archive entries"
            }
        ),
        "{err}"
    );
}

/// What reading `bytes` as an image file with no limits fails with.
fn unlimited_error(bytes: Vec<u8>) -> FormatError {
    ImageFile::read(&bytes, &Limits::UNLIMITED)
        .map(|_| ())
        .unwrap_err()
}

#[test]
fn huge_claims_fail_fast_even_without_limits() {
    let start = std::time::Instant::now();
    // 2^32−1 squared in 16-pixel tiles: 2^56 tiles, but the file has no room for a tile index
    let max = u32::MAX.into();
    let err = unlimited_error(claimed(max, max, &[0x40, 4], &[1, 2, 3]));
    assert!(
        matches!(err, FormatError::Truncated { what: "tile index" }),
        "{err}"
    );
    // two tiles, the first claiming 2^63 bytes
    let huge_len = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
    let err = unlimited_error(claimed(32, 16, &[0x40, 4], &huge_len));
    assert!(
        matches!(
            err,
            FormatError::Truncated {
                what: "tile payloads"
            }
        ),
        "{err}"
    );
    assert!(start.elapsed().as_secs() < 1);
}

// ---------------------------------------------------------------- models and names

#[test]
fn the_model_reference_refuses_other_models() {
    for file in [example_single(), example_tiled()] {
        let bytes = file.to_bytes().unwrap();
        let read = ImageFile::read(&bytes, &Limits::default()).unwrap();
        read.model.verify("right", MODEL_ID).unwrap();
        let err = read
            .model
            .verify("mnist-small", 0xfeed_0000_0000_0001)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("89abcdef")
                && err.contains("mnist-small")
                && err.contains("feed000000000001"),
            "{err}"
        );
    }
}

/// An archive holding one entry named by the raw bytes `name`.
fn archive_named(name: &[u8]) -> Vec<u8> {
    let template = Archive {
        model: ModelRef::embedded(MODEL_ID),
        entries: vec![ArchiveEntry {
            name: EntryName::new("x".repeat(name.len())).unwrap(),
            image: coded(4, 4, Tiling::Whole, &[1]),
        }],
    };
    let mut bytes = template.to_bytes().unwrap();
    let at = bytes
        .windows(name.len())
        .position(|w| w.iter().all(|&b| b == b'x'))
        .unwrap();
    bytes[at..at + name.len()].copy_from_slice(name);
    bytes
}

#[test]
fn archive_names_cannot_escape_the_output_directory() {
    Archive::read(&archive_named(b"ok/name.png"), &Limits::default()).unwrap();
    for bad in [
        &b"../etc/pw"[..],
        b"/etc/passwd",
        b"a/../../b",
        b"C:\\win",
        b"a\0b",
        b"\xff\xfe",
        b"a//b",
        b".",
    ] {
        let err = Archive::read(&archive_named(bad), &Limits::default()).unwrap_err();
        assert!(
            matches!(err, FormatError::InvalidName { .. }),
            "{:?}: {err}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn duplicate_names_are_refused_both_ways() {
    let mut archive = example_archive();
    archive.entries[1].name = archive.entries[0].name.clone();
    assert!(matches!(
        archive.to_bytes(),
        Err(FormatError::DuplicateName { .. })
    ));
    let mut bytes = example_archive().to_bytes().unwrap();
    let second = bytes.windows(7).rposition(|w| w == b"1/b.png").unwrap();
    bytes[second..second + 7].copy_from_slice(b"0/a.png");
    assert!(matches!(
        Archive::read(&bytes, &Limits::default()),
        Err(FormatError::DuplicateName { .. })
    ));
}

#[test]
fn writing_refuses_inconsistent_images_and_writes_nothing() {
    let mut file = example_tiled();
    file.image.tiles.pop();
    let mut out = Vec::new();
    let err = file.write_to(&mut out).unwrap_err();
    assert!(
        matches!(
            err,
            FormatError::TileCountMismatch {
                expected: 6,
                found: 5
            }
        ),
        "{err}"
    );
    assert!(out.is_empty());
    let mut file = example_single();
    file.image.header.width = 0;
    assert!(matches!(
        file.to_bytes(),
        Err(FormatError::FieldOutOfRange { .. })
    ));
    file.image.header.width = 28;
    file.image.header.tiling = Tiling::Square { log2: 3 };
    assert!(matches!(
        file.to_bytes(),
        Err(FormatError::FieldOutOfRange { .. })
    ));
}

// ---------------------------------------------------------------- sizes and the spec document

#[test]
fn a_28x28_header_costs_13_bytes_with_an_embedded_model() {
    for (model, overhead) in [
        (ModelRef::embedded(MODEL_ID), 13),
        (ModelRef::external(MODEL_ID), 17),
    ] {
        let file = ImageFile {
            model,
            image: coded(28, 28, Tiling::Whole, &[100]),
        };
        assert_eq!(file.to_bytes().unwrap().len() - 100, overhead, "{model}");
    }
    let archive = example_archive();
    let per_entry = |n: usize| {
        let a = Archive {
            model: archive.model,
            entries: archive.entries[..n].to_vec(),
        };
        a.to_bytes().unwrap().len()
            - a.entries
                .iter()
                .map(|e| e.image.tiles[0].len())
                .sum::<usize>()
    };
    // name "1/b.png" (1 + 7 bytes) + width, height, descriptor, checksum (7) + section length (1)
    assert_eq!(per_entry(2) - per_entry(1), 16);
}

/// The bytes of the fenced block after `<!-- example: {label} -->` in FORMAT.md: on every line,
/// the hex pairs before the first double space.
fn documented_example(label: &str) -> Vec<u8> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../FORMAT.md")).unwrap();
    let marker = format!("<!-- example: {label} -->");
    let block = doc
        .split(&marker)
        .nth(1)
        .unwrap_or_else(|| panic!("FORMAT.md lacks {marker}"));
    let block = block.split("```").nth(1).unwrap();
    block
        .lines()
        .skip(1) // the language tag
        .flat_map(|line| {
            line.split("  ")
                .next()
                .unwrap()
                .split_whitespace()
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .map(|pair| {
            u8::from_str_radix(&pair, 16).unwrap_or_else(|_| panic!("bad hex {pair:?} in {label}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn format_md_examples_are_what_the_writer_produces() {
    for (label, bytes) in small_files() {
        assert_eq!(
            documented_example(label),
            bytes,
            "FORMAT.md example {label:?} is out of date; the writer gives\n{}",
            hex(&bytes)
        );
        read_any(&bytes).unwrap();
    }
    let pixels = pattern_pixels(28, 28);
    assert_eq!(example_single().image.header.pixel_crc, crc32(&pixels));
}

#[test]
fn crc32_is_the_standard_one() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(b""), 0);
}
