//! Container format: round trips, corruption, limits, names, and the examples in FORMAT.md, for
//! both versions (the writer can produce either, so every accepted file re-serialises exactly).

use idfcodec_codec::format::{
    self, crc32, Archive, ArchiveEntry, CodedImage, Container, EntryName, Extension, ExtensionKind,
    FileKind, FormatError, ImageFile, ImageHeader, Limits, ModelRef, PixelFormat, Tiling, Version,
};
use proptest::prelude::*;

const MODEL_ID: u64 = 0x0123_4567_89ab_cdef;
const VERSIONS: [Version; 6] = Version::ALL;

/// The test pattern of the FORMAT.md examples.
fn pattern_pixels(width: u32, height: u32) -> Vec<u8> {
    (0..height)
        .flat_map(|y| (0..width).map(move |x| ((x * 9 + y * 3) % 256) as u8))
        .collect()
}

/// A gray8 image whose tile `i` has payload bytes `0x10·i + 0, 1, …` of length `lens[i]`; in
/// version 1 with the pattern's checksum in the header.
fn coded(version: Version, width: u32, height: u32, tiling: Tiling, lens: &[usize]) -> CodedImage {
    let pixel_crc = match version {
        Version::V1 => Some(crc32(&pattern_pixels(width, height))),
        Version::V2 | Version::V3 | Version::V4 | Version::V5 | Version::V6 => None,
    };
    let header = ImageHeader {
        width,
        height,
        pixel_format: PixelFormat::Gray8,
        tiling,
        pixel_crc,
    };
    let tiles = lens
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (0x10 * i + j) as u8).collect())
        .collect();
    CodedImage {
        header,
        extensions: vec![],
        tiles,
    }
}

/// FORMAT.md example "single": a 28×28 MNIST-sized image, embedded model, one tile.
fn example_single(version: Version) -> ImageFile {
    ImageFile {
        version,
        model: ModelRef::embedded(MODEL_ID),
        image: coded(version, 28, 28, Tiling::Whole, &[6]),
    }
}

/// FORMAT.md example "tiled": 40×20 in 16-pixel tiles (3×2 tiles), external model.
fn example_tiled(version: Version) -> ImageFile {
    let tiling = Tiling::square(16).unwrap();
    ImageFile {
        version,
        model: ModelRef::external(MODEL_ID),
        image: coded(version, 40, 20, tiling, &[3, 2, 2, 1, 2, 2]),
    }
}

/// FORMAT.md example "extensions" (the newest version): a 4×4 image with gamma and sRGB records.
fn example_extensions() -> ImageFile {
    let mut image = coded(Version::NEWEST, 4, 4, Tiling::Whole, &[2]);
    image.extensions = vec![
        Extension {
            kind: ExtensionKind::Gamma,
            data: 45_455u32.to_be_bytes().to_vec(),
        },
        Extension {
            kind: ExtensionKind::Srgb,
            data: vec![0],
        },
    ];
    ImageFile {
        version: Version::NEWEST,
        model: ModelRef::embedded(MODEL_ID),
        image,
    }
}

/// FORMAT.md example "archive": version 1, two 28×28 images; versions 2 to 6, three images whose
/// names share prefixes and suffixes (from version 5 the second counts on from the first), the
/// second with the first one's geometry.
fn example_archive(version: Version) -> Archive {
    let entry = |name: &str, image| ArchiveEntry {
        name: EntryName::new(name).unwrap(),
        image,
    };
    let square = |len| coded(version, 28, 28, Tiling::Whole, &[len]);
    let entries = match version {
        Version::V1 => vec![entry("0/a.png", square(3)), entry("1/b.png", square(2))],
        Version::V2 | Version::V3 | Version::V4 | Version::V5 | Version::V6 => vec![
            entry("mnist-test-00001.png", square(3)),
            entry("mnist-test-00002.png", square(2)),
            entry(
                "mnist-test-00010.png",
                coded(version, 20, 20, Tiling::Whole, &[2]),
            ),
        ],
    };
    Archive {
        chain: None,
        version,
        model: ModelRef::embedded(MODEL_ID),
        entries,
    }
}

/// FORMAT.md example "chained": the newest version's archive of [`example_archive`] chained:
/// the entries without sections, then one stream.
fn example_chained() -> Archive {
    let mut archive = example_archive(Version::NEWEST);
    for entry in &mut archive.entries {
        entry.image.tiles.clear();
    }
    archive.chain = Some(vec![0x00, 0x01, 0x02, 0x03, 0x04]);
    archive
}

/// FORMAT.md example "run" (and "v5-run" in `version`): a chained archive of four 28×28 images
/// `mnist-test-00001.png` … `00004.png`, then a 20×20 `mnist-test-00010.png`: in version 6 the
/// second to fourth are one run.
fn example_run(version: Version) -> Archive {
    let image = |side| coded(version, side, side, Tiling::Whole, &[1]);
    let mut entries: Vec<ArchiveEntry> = (1..=4)
        .map(|i| ArchiveEntry {
            name: EntryName::new(format!("mnist-test-0000{i}.png")).unwrap(),
            image: image(28),
        })
        .collect();
    entries.push(ArchiveEntry {
        name: EntryName::new("mnist-test-00010.png").unwrap(),
        image: image(20),
    });
    for entry in &mut entries {
        entry.image.tiles.clear();
    }
    Archive {
        chain: Some(vec![0x00, 0x01, 0x02]),
        version,
        model: ModelRef::embedded(MODEL_ID),
        entries,
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

fn version() -> impl Strategy<Value = Version> {
    proptest::sample::select(VERSIONS.to_vec())
}

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

/// A header whose tile count stays small enough to build payloads for; few distinct sizes, so
/// that archive entries often repeat the previous geometry.
fn header(version: Version) -> impl Strategy<Value = ImageHeader> {
    (
        prop_oneof![Just(28u32), dimension()],
        prop_oneof![Just(28u32), dimension()],
        prop_oneof![Just(PixelFormat::Gray8), pixel_format()],
        4u8..=16,
        any::<bool>(),
        any::<u32>(),
    )
        .prop_map(move |(width, height, pixel_format, log2, tiled, crc)| {
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
                pixel_crc: (version == Version::V1).then_some(crc),
            }
        })
}

/// `records` made to suit `format` as version 3 requires: colour records kept, a one-entry
/// palette on palette images, no palette or transparency record on other images.
fn fitted(records: Vec<Extension>, format: PixelFormat) -> Vec<Extension> {
    let mut records: Vec<Extension> = records
        .into_iter()
        .filter(|r| !matches!(r.kind, ExtensionKind::Palette | ExtensionKind::Transparency))
        .collect();
    if format.is_palette() {
        records.insert(
            0,
            Extension {
                kind: ExtensionKind::Palette,
                data: vec![1, 2, 3],
            },
        );
    }
    records
}

fn extensions() -> impl Strategy<Value = Vec<Extension>> {
    proptest::collection::btree_map(
        proptest::sample::select(ExtensionKind::ALL.to_vec()),
        1..=40usize,
        0..3,
    )
    .prop_map(|records| {
        records
            .into_iter()
            .map(|(kind, n)| {
                let len = match kind {
                    ExtensionKind::Palette => 3 * n,
                    ExtensionKind::Gamma | ExtensionKind::Cicp => 4,
                    ExtensionKind::Chromaticities => 32,
                    ExtensionKind::Srgb => 1,
                    _ => n,
                };
                Extension {
                    kind,
                    data: (0..len).map(|i| i as u8).collect(),
                }
            })
            .collect()
    })
}

fn coded_image(version: Version) -> impl Strategy<Value = CodedImage> {
    (header(version), extensions()).prop_flat_map(move |(header, extensions)| {
        let count = header.grid().count() as usize;
        let extensions = match version {
            Version::V1 => vec![],
            Version::V2 => extensions,
            Version::V3 | Version::V4 | Version::V5 | Version::V6 => {
                fitted(extensions, header.pixel_format)
            }
        };
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), count).prop_map(
            move |tiles| CodedImage {
                header,
                extensions: extensions.clone(),
                tiles,
            },
        )
    })
}

/// Distinct valid names from a small alphabet, so that neighbours share prefixes and suffixes.
fn names(max: usize) -> impl Strategy<Value = Vec<EntryName>> {
    proptest::collection::btree_set("[ab0-2./]{1,8}", 1..max)
        .prop_map(|set| {
            set.into_iter()
                .filter_map(|n| EntryName::new(n).ok())
                .collect::<Vec<_>>()
        })
        .prop_filter("an archive holds at least one image", |names| {
            !names.is_empty()
        })
}

/// `archive`'s bytes with the byte at `at` set to `byte`: an error, or a canonical archive.
fn mutated_parses_canonically_or_errors(
    archive: &Archive,
    at: prop::sample::Index,
    byte: u8,
) -> Result<(), TestCaseError> {
    let mut bytes = archive.to_bytes().unwrap();
    let i = at.index(bytes.len());
    bytes[i] = byte;
    if let Ok(c) = read_any(&bytes) {
        prop_assert_eq!(rewrite(&c), bytes);
    }
    Ok(())
}

fn archive(version: Version, max: usize) -> impl Strategy<Value = Archive> {
    (model_ref(), names(max)).prop_flat_map(move |(model, names)| {
        let n = names.len();
        proptest::collection::vec(coded_image(version), n).prop_map(move |images| Archive {
            chain: None,
            version,
            model,
            entries: names
                .iter()
                .cloned()
                .zip(images)
                .map(|(name, image)| ArchiveEntry { name, image })
                .collect(),
        })
    })
}

proptest! {
    #[test]
    fn image_files_round_trip(
        (version, model, image) in version().prop_flat_map(|v| (Just(v), model_ref(), coded_image(v)))
    ) {
        let file = ImageFile { version, model, image };
        let bytes = file.to_bytes().unwrap();
        let read = ImageFile::read(&bytes, &Limits::UNLIMITED).unwrap();
        prop_assert_eq!(read.to_owned_file(), file);
        prop_assert_eq!(format::identify(&bytes).unwrap(), (FileKind::Image, version));
    }

    #[test]
    fn archives_round_trip(archive in version().prop_flat_map(|v| archive(v, 8))) {
        let bytes = archive.to_bytes().unwrap();
        let read = Archive::read(&bytes, &Limits::UNLIMITED).unwrap();
        prop_assert_eq!(read.version, archive.version);
        prop_assert_eq!(read.model, archive.model);
        let owned: Vec<_> = read.entries.iter().map(|e| (e.name.clone(), e.image.to_owned_image())).collect();
        let expected: Vec<_> = archive.entries.iter().map(|e| (e.name.clone(), e.image.clone())).collect();
        prop_assert_eq!(owned, expected);
    }

    /// Arbitrary bytes behind a valid magic never panic, and whatever parses is canonical.
    #[test]
    fn arbitrary_bytes_parse_canonically_or_error(
        magic in proptest::sample::select(vec![[0x69u8, 0xd1], [0x69, 0xa1], [0x69, 0xd2], [0x69, 0xa2]]),
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let bytes = [magic.as_slice(), &body].concat();
        if let Ok(c) = read_any(&bytes) {
            prop_assert_eq!(rewrite(&c), bytes);
        }
    }

    /// Version-2 archive bytes with one byte changed: an error, or a canonical archive.
    #[test]
    fn mutated_v2_archives_parse_canonically_or_error(
        archive in archive(Version::V2, 6),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        mutated_parses_canonically_or_errors(&archive, at, byte)?;
    }
}

// ---------------------------------------------------------------- corruption

/// Every example of FORMAT.md, labelled as there.
fn small_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "single",
            example_single(Version::NEWEST).to_bytes().unwrap(),
        ),
        ("tiled", example_tiled(Version::NEWEST).to_bytes().unwrap()),
        ("extensions", example_extensions().to_bytes().unwrap()),
        (
            "archive",
            example_archive(Version::NEWEST).to_bytes().unwrap(),
        ),
        (
            "v4-archive",
            example_archive(Version::V4).to_bytes().unwrap(),
        ),
        ("chained", example_chained().to_bytes().unwrap()),
        ("run", example_run(Version::NEWEST).to_bytes().unwrap()),
        ("v5-run", example_run(Version::V5).to_bytes().unwrap()),
        ("v2-single", example_single(Version::V2).to_bytes().unwrap()),
        ("v1-single", example_single(Version::V1).to_bytes().unwrap()),
        ("v1-tiled", example_tiled(Version::V1).to_bytes().unwrap()),
        (
            "v1-archive",
            example_archive(Version::V1).to_bytes().unwrap(),
        ),
    ]
}

/// Where the last tile's payload starts in a single-image file (it runs to the end of the file).
fn last_tile_start(file: &ImageFile) -> usize {
    let bytes = file.to_bytes().unwrap();
    bytes.len() - file.image.tiles.last().unwrap().len()
}

#[test]
fn every_truncation_errors_unless_it_only_shortens_the_last_tile() {
    let files = VERSIONS
        .iter()
        .flat_map(|&v| [example_single(v), example_tiled(v)])
        .chain([example_extensions()]);
    for file in files {
        let what = format!("{:?}", file.image.header);
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
    for version in VERSIONS {
        let archive = example_archive(version).to_bytes().unwrap();
        for cut in 0..archive.len() {
            let err = Archive::read(&archive[..cut], &Limits::default()).unwrap_err();
            assert!(
                matches!(err, FormatError::Truncated { .. }),
                "archive v{version} cut at {cut}: {err}"
            );
        }
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
    for version in VERSIONS {
        let mut bytes = example_archive(version).to_bytes().unwrap();
        bytes.extend_from_slice(&[0, 0, 0]);
        let err = Archive::read(&bytes, &Limits::default()).unwrap_err();
        assert!(
            matches!(err, FormatError::TrailingBytes { count: 3 }),
            "{err}"
        );
    }
}

#[test]
fn wrong_kind_is_named() {
    for version in VERSIONS {
        let archive = example_archive(version).to_bytes().unwrap();
        let err = ImageFile::read(&archive, &Limits::default()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected an idfcodec image file, found an idfcodec archive file"
        );
        let image = example_single(version).to_bytes().unwrap();
        assert!(matches!(
            Archive::read(&image, &Limits::default()),
            Err(FormatError::WrongKind { .. })
        ));
    }
}

#[test]
fn unsupported_versions_say_which_are_supported() {
    let mut bytes = example_single(Version::NEWEST).to_bytes().unwrap();
    assert_eq!(bytes[..2], [0x69, 0xd6]);
    bytes[1] = 0xd7;
    let err = read_any(&bytes).unwrap_err().to_string();
    assert!(
        err.contains("version 7") && err.contains("reads versions 1 to 6"),
        "{err}"
    );
}

/// The version-1 layout read as version 2 (and the reverse) is refused or is another file: the
/// version nibble really selects the layout.
#[test]
fn the_version_nibble_selects_the_layout() {
    for version in VERSIONS {
        let mut bytes = example_single(version).to_bytes().unwrap();
        bytes[1] ^= 0x03; // 1 <-> 2
        if let Ok(c) = read_any(&bytes) {
            assert_ne!(rewrite(&c), example_single(version).to_bytes().unwrap());
        }
    }
}

// ---------------------------------------------------------------- limits

/// A version-1 image file header claiming `width × height`, followed by `tail` (version 2 has
/// the same fields up to the model id, and no checksum).
fn claimed(width: u64, height: u64, descriptor: &[u8], tail: &[u8]) -> Vec<u8> {
    claimed_in(Version::V1, width, height, descriptor, tail)
}

fn claimed_in(
    version: Version,
    width: u64,
    height: u64,
    descriptor: &[u8],
    tail: &[u8],
) -> Vec<u8> {
    let mut bytes = vec![0x69, 0xd0 | version.number()];
    for mut v in [width, height] {
        while v >= 0x80 {
            bytes.push(v as u8 | 0x80);
            v >>= 7;
        }
        bytes.push(v as u8);
    }
    bytes.extend_from_slice(descriptor);
    let fixed = match version {
        Version::V1 => 8, // model id and checksum
        Version::V2 | Version::V3 | Version::V4 | Version::V5 | Version::V6 => 4, // model id
    };
    bytes.extend_from_slice(&vec![0; fixed]);
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
    let v2 = claimed_in(Version::V2, 64, 64, &[0x40, 4], &[0; 64]);
    assert_eq!(limit_flag(read(&v2, &few_tiles)), "--max-tiles");
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
    for version in VERSIONS {
        let mut bytes = example_archive(version).to_bytes().unwrap();
        let count_at = 2 + 1 + 4; // magic, model flags, model id
        assert_eq!(
            usize::from(bytes[count_at]),
            example_archive(version).entries.len()
        );
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
    // version 2: every entry needs at least 5 bytes
    let mut bytes = vec![0x69, 0xa2, 0, 0, 0, 0, 0, 3];
    bytes.extend_from_slice(&[0; 14]);
    assert!(matches!(
        Archive::read(&bytes, &Limits::UNLIMITED),
        Err(FormatError::Truncated {
            what: "archive entries"
        })
    ));
}

#[test]
fn archive_name_bytes_are_limited() {
    let archive = example_archive(Version::V2);
    let bytes = archive.to_bytes().unwrap();
    let total: usize = archive.entries.iter().map(|e| e.name.as_str().len()).sum();
    let limits = |max_name_bytes| Limits {
        max_name_bytes,
        ..Limits::default()
    };
    Archive::read(&bytes, &limits(total as u64)).unwrap();
    let err = Archive::read(&bytes, &limits(total as u64 - 1)).unwrap_err();
    assert_eq!(limit_flag(err), "--max-name-bytes");
}

/// What reading `bytes` as an image file with no limits fails with.
fn unlimited_error(bytes: Vec<u8>) -> FormatError {
    ImageFile::read(&bytes, &Limits::UNLIMITED)
        .map(|_| ())
        .unwrap_err()
}

#[test]
fn huge_claims_fail_fast_even_without_limits() {
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
}

// ---------------------------------------------------------------- models and names

#[test]
fn the_model_reference_refuses_other_models() {
    for file in VERSIONS
        .iter()
        .flat_map(|&v| [example_single(v), example_tiled(v)])
    {
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

/// An archive holding one entry named by the raw bytes `name` (a first entry's name is stored
/// whole in both versions).
fn archive_named(version: Version, name: &[u8]) -> Vec<u8> {
    let template = Archive {
        chain: None,
        version,
        model: ModelRef::embedded(MODEL_ID),
        entries: vec![ArchiveEntry {
            name: EntryName::new("x".repeat(name.len())).unwrap(),
            image: coded(version, 4, 4, Tiling::Whole, &[1]),
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
    for version in VERSIONS {
        Archive::read(&archive_named(version, b"ok/name.png"), &Limits::default()).unwrap();
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
            let err = Archive::read(&archive_named(version, bad), &Limits::default()).unwrap_err();
            assert!(
                matches!(err, FormatError::InvalidName { .. }),
                "{:?}: {err}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

fn read_archive(bytes: &[u8]) -> Result<Archive<&[u8]>, FormatError> {
    Archive::read(bytes, &Limits::default())
}

/// A version-2 archive of entries named `names` (all 4×4), as bytes.
fn v2_archive(names: &[&str]) -> Vec<u8> {
    Archive {
        chain: None,
        version: Version::V2,
        model: ModelRef::embedded(MODEL_ID),
        entries: names
            .iter()
            .map(|n| ArchiveEntry {
                name: EntryName::new(*n).unwrap(),
                image: coded(Version::V2, 4, 4, Tiling::Whole, &[1]),
            })
            .collect(),
    }
    .to_bytes()
    .unwrap()
}

/// Replaces the first occurrence of `from` after the archive header with `to`.
fn splice(bytes: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let header = 2 + 1 + 4 + 1;
    let at = header
        + bytes[header..]
            .windows(from.len())
            .position(|w| w == from)
            .unwrap_or_else(|| panic!("{from:02x?} not in {bytes:02x?}"));
    [&bytes[..at], to, &bytes[at + from.len()..]].concat()
}

#[test]
fn duplicate_names_are_refused_both_ways() {
    let mut archive = example_archive(Version::V1);
    archive.entries[1].name = archive.entries[0].name.clone();
    assert!(matches!(
        archive.to_bytes(),
        Err(FormatError::DuplicateName { .. })
    ));
    let mut bytes = example_archive(Version::V1).to_bytes().unwrap();
    let second = bytes.windows(7).rposition(|w| w == b"1/b.png").unwrap();
    bytes[second..second + 7].copy_from_slice(b"0/a.png");
    assert!(matches!(
        Archive::read(&bytes, &Limits::default()),
        Err(FormatError::DuplicateName { .. })
    ));
    // version 2: the second entry "b.png" (prefix 0, suffix 4, middle "b") made a copy of the
    // first (prefix 5, suffix 0, no middle)
    let bytes = v2_archive(&["a.png", "b.png"]);
    let copy = splice(
        &bytes,
        &[0x01, 0x00, 0x04, 0x01, b'b'],
        &[0x01, 0x05, 0x00, 0x00],
    );
    assert!(matches!(
        Archive::read(&copy, &Limits::default()),
        Err(FormatError::DuplicateName { .. })
    ));
}

#[test]
fn v2_names_are_front_coded_canonically() {
    let bytes = v2_archive(&["mnist-test-00001.png", "mnist-test-00002.png"]);
    // second entry: same-geometry flag, prefix 15, suffix 4, middle "2"
    let second = [0x01, 0x0f, 0x04, 0x01, b'2'];
    let read = read_archive;
    assert_eq!(
        read(&bytes).unwrap().entries[1].name.as_str(),
        "mnist-test-00002.png"
    );
    for (coding, what) in [
        (
            &[0x01, 0x0e, 0x04, 0x02, b'0', b'2'][..],
            "a shorter prefix",
        ),
        (&[0x01, 0x0f, 0x03, 0x02, b'2', b'.'], "a shorter suffix"),
        (
            &[0x01, 0x0f, 0x00, 0x05, b'2', b'.', b'p', b'n', b'g'],
            "no suffix",
        ),
    ] {
        let err = read(&splice(&bytes, &second, coding)).unwrap_err();
        assert!(
            matches!(err, FormatError::NonCanonical { .. }),
            "{what}: {err}"
        );
    }
    for (coding, what) in [
        (
            &[0x01, 0x15, 0x00, 0x00][..],
            "prefix longer than the previous name",
        ),
        (&[0x01, 0x0f, 0x06, 0x00], "suffix reaching into the prefix"),
        (
            &[0x01, 0x00, 0x00, 0x81, 0x08],
            "name longer than 1024 bytes",
        ),
    ] {
        let err = read(&splice(&bytes, &second, coding)).unwrap_err();
        assert!(
            matches!(err, FormatError::FieldOutOfRange { .. }),
            "{what}: {err}"
        );
    }
    // the entry flags' reserved bits
    let err = read(&splice(&bytes, &second, &[0x03, 0x0f, 0x04, 0x01, b'2'])).unwrap_err();
    assert!(matches!(err, FormatError::ReservedBits { .. }), "{err}");
}

#[test]
fn v2_geometry_repeats_only_by_the_flag() {
    let bytes = v2_archive(&["a", "b"]);
    // entry 0: flags 00, name 00 00 01 'a', geometry 04 04 00, section 01 00
    // entry 1: flags 01, name 00 00 01 'b', section 01 00
    let first = [0x00, 0x00, 0x00, 0x01, b'a', 0x04, 0x04, 0x00];
    let second = [0x01, 0x00, 0x00, 0x01, b'b'];
    let read = read_archive;
    read(&bytes).unwrap();
    // the geometry written out again instead of the flag
    let repeated = splice(
        &bytes,
        &second,
        &[0x00, 0x00, 0x00, 0x01, b'b', 0x04, 0x04, 0x00],
    );
    assert!(matches!(
        read(&repeated),
        Err(FormatError::NonCanonical { .. })
    ));
    // the flag on the first entry
    let first_flagged = splice(&bytes, &first, &[0x01, 0x00, 0x00, 0x01, b'a']);
    assert!(matches!(
        read(&first_flagged),
        Err(FormatError::NonCanonical { .. })
    ));
}

#[test]
fn writing_refuses_inconsistent_images_and_writes_nothing() {
    let mut file = example_tiled(Version::V2);
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
    let mut file = example_single(Version::V2);
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
    // what a version cannot hold
    let mut v1_without_crc = example_single(Version::V1);
    v1_without_crc.image.header.pixel_crc = None;
    let mut v2_with_crc = example_single(Version::V2);
    v2_with_crc.image.header.pixel_crc = Some(1);
    let mut v1_with_extensions = example_extensions();
    v1_with_extensions.version = Version::V1;
    v1_with_extensions.image.header.pixel_crc = Some(1);
    for file in [v1_without_crc, v2_with_crc, v1_with_extensions] {
        let mut out = Vec::new();
        let err = file.write_to(&mut out).unwrap_err();
        assert!(matches!(err, FormatError::NotInVersion { .. }), "{err}");
        assert!(out.is_empty());
    }
    let mut unordered = example_extensions();
    unordered.image.extensions.reverse();
    assert!(matches!(
        unordered.to_bytes(),
        Err(FormatError::NonCanonical { .. })
    ));
}

#[test]
fn extension_blocks_are_version_2_only() {
    let bytes = example_extensions().to_bytes().unwrap();
    let read = ImageFile::read(&bytes, &Limits::default()).unwrap();
    assert_eq!(read.to_owned_file(), example_extensions());
    // descriptor bit 7 is reserved in version 1
    let mut v1 = example_single(Version::V1).to_bytes().unwrap();
    v1[4] |= 0x80;
    assert!(matches!(
        ImageFile::read(&v1, &Limits::default()),
        Err(FormatError::ReservedBits { .. })
    ));
    // an unknown record type
    let mut unknown = bytes.clone();
    let block = 2 + 1 + 1 + 1 + 4; // magic, width, height, descriptor, model id
    assert_eq!(unknown[block + 1], 4, "the first record is gamma");
    unknown[block + 1] = 9;
    assert!(matches!(
        ImageFile::read(&unknown, &Limits::default()),
        Err(FormatError::UnknownExtension { code: 9 })
    ));
}

// ---------------------------------------------------------------- sizes and the spec document

#[test]
fn a_28x28_header_costs_9_bytes_with_an_embedded_model() {
    for (version, model, overhead) in [
        (Version::V3, ModelRef::embedded(MODEL_ID), 9),
        (Version::V3, ModelRef::external(MODEL_ID), 13),
        (Version::V2, ModelRef::embedded(MODEL_ID), 9),
        (Version::V1, ModelRef::embedded(MODEL_ID), 13),
        (Version::V1, ModelRef::external(MODEL_ID), 17),
    ] {
        let file = ImageFile {
            version,
            model,
            image: coded(version, 28, 28, Tiling::Whole, &[100]),
        };
        assert_eq!(file.to_bytes().unwrap().len() - 100, overhead, "{model}");
    }
    for (version, second_entry) in [
        // name "1/b.png" (1 + 7 bytes) + width, height, descriptor, checksum (7) + section length
        (Version::V1, 16),
        // flags, prefix 15, suffix 4, middle length 1, middle "2", section length
        (Version::V2, 6),
        (Version::V3, 6),
        (Version::V4, 6),
        // flags (same geometry, sequential name), section length (no runs: not chained)
        (Version::V5, 2),
        (Version::V6, 2),
    ] {
        let archive = example_archive(version);
        let per_entry = |n: usize| {
            let a = Archive {
                entries: archive.entries[..n].to_vec(),
                ..archive.clone()
            };
            a.to_bytes().unwrap().len()
                - a.entries
                    .iter()
                    .map(|e| e.image.tiles[0].len())
                    .sum::<usize>()
        };
        assert_eq!(per_entry(2) - per_entry(1), second_entry, "v{version}");
    }
}

/// The bytes of the fenced block after `<!-- example: {label} -->` in FORMAT.md: on every line,
/// the hex pairs before the first double space.
fn documented_example(label: &str) -> Vec<u8> {
    let doc =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../FORMAT.md")).unwrap();
    let marker = format!("<!-- example: {label} -->");
    let Some(block) = doc.split(&marker).nth(1) else {
        return Vec::new();
    };
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
    let mut stale = Vec::new();
    for (label, bytes) in small_files() {
        read_any(&bytes).unwrap();
        if documented_example(label) != bytes {
            stale.push(format!("{label}:\n{}", hex(&bytes)));
        }
    }
    assert!(
        stale.is_empty(),
        "FORMAT.md examples are out of date; the writer gives\n{}",
        stale.join("\n")
    );
    let pixels = pattern_pixels(28, 28);
    assert_eq!(
        example_single(Version::V1).image.header.pixel_crc,
        Some(crc32(&pixels))
    );
}

#[test]
fn crc32_is_the_standard_one() {
    assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    assert_eq!(crc32(b""), 0);
}

// ---------------------------------------------------------------- sequential names (version 5)

/// A two-entry version-5 archive of 1×1 images named `first`, `second`, its bytes and where the
/// second entry's flags byte is.
fn two_entries(version: Version, first: &str, second: &str) -> (Vec<u8>, usize) {
    let square = || coded(version, 1, 1, Tiling::Whole, &[1]);
    let archive = Archive {
        chain: None,
        version,
        model: ModelRef::embedded(MODEL_ID),
        entries: [first, second]
            .map(|name| ArchiveEntry {
                name: EntryName::new(name).unwrap(),
                image: square(),
            })
            .into(),
    };
    let bytes = archive.to_bytes().unwrap();
    let one = Archive {
        entries: archive.entries[..1].to_vec(),
        ..archive.clone()
    }
    .to_bytes()
    .unwrap();
    // the entry count is one byte in both; the second entry starts where the one-entry archive ends
    (bytes, one.len())
}

#[test]
fn sequential_names_cost_one_flag_and_are_canonical() {
    // counted on: flags byte 0x03 (same geometry, sequential), then the section
    let (bytes, second) = two_entries(Version::V5, "img-009.png", "img-010.png");
    assert_eq!(bytes[second], 0x03);
    assert_eq!(
        bytes.len() - second,
        1 + 1 + 1,
        "flags, section length, tile"
    );
    let read = Archive::read(&bytes, &Limits::default()).unwrap();
    assert_eq!(read.entries[1].name.as_str(), "img-010.png");

    // the same names in version 4 are front-coded, and bit 1 is reserved there
    let (mut v4, second) = two_entries(Version::V4, "img-009.png", "img-010.png");
    assert_eq!(v4[second], 0x01);
    v4[second] |= 0x02;
    assert!(matches!(
        Archive::read(&v4, &Limits::default()),
        Err(FormatError::ReservedBits { .. })
    ));

    // a name that does not count on is front-coded; setting the flag on it names another entry
    // (then refused if that name repeats), clearing it from a counted name is non-canonical
    let (mut other, second) = two_entries(Version::V5, "a7.png", "b.png");
    assert_eq!(other[second], 0x01);
    other[second] = 0x03;
    assert!(Archive::read(&other, &Limits::default()).is_err());

    // spelling out a counted-on name instead of setting the flag is refused
    let (v4_bytes, _) = two_entries(Version::V4, "x1", "x2");
    let mut spelled = v4_bytes.clone();
    spelled[1] = 0xa5;
    let err = Archive::read(&spelled, &Limits::default()).unwrap_err();
    assert!(matches!(err, FormatError::NonCanonical { .. }), "{err}");

    // after a name without digits the flag has nothing to count on
    let (mut first, second) = two_entries(Version::V5, "a.png", "b.png");
    first[second] = 0x03;
    let err = Archive::read(&first, &Limits::default()).unwrap_err();
    assert!(
        matches!(err, FormatError::NonCanonical { .. }) && err.to_string().contains("number"),
        "{err}"
    );
}

// ---------------------------------------------------------------- runs (version 6)

/// A chained archive of `version` of 1×1 images (28×28 where `big` says so, a gamma record where
/// `gamma` says so) under `names`, with a one-byte chain.
fn chained_of(version: Version, entries: &[(&str, bool, bool)]) -> Archive {
    let entries = entries
        .iter()
        .map(|&(name, big, gamma)| {
            let side = if big { 28 } else { 1 };
            let mut image = coded(version, side, side, Tiling::Whole, &[1]);
            image.tiles.clear();
            if gamma {
                image.extensions = vec![Extension {
                    kind: ExtensionKind::Gamma,
                    data: 45_455u32.to_be_bytes().to_vec(),
                }];
            }
            ArchiveEntry {
                name: EntryName::new(name).unwrap(),
                image,
            }
        })
        .collect();
    Archive {
        chain: Some(vec![0x01]),
        version,
        model: ModelRef::embedded(MODEL_ID),
        entries,
    }
}

/// The bytes of `archive`'s entries: after magic, model flags, model id (4) and a one-byte
/// entry count, before the one-byte chain.
fn entry_bytes(bytes: &[u8]) -> &[u8] {
    &bytes[2 + 1 + 4 + 1..bytes.len() - 1]
}

/// The first entry of the [`chained_of`] archives below: flags, name "n1" front-coded, 1×1
/// gray8.
const FIRST: [u8; 9] = [0x00, 0x00, 0x00, 0x02, b'n', b'1', 0x01, 0x01, 0x00];

#[test]
fn runs_cover_maximal_groups_of_like_entries() {
    let plain = |name| (name, false, false);
    let archive = chained_of(
        Version::V6,
        &[
            plain("n1"),
            plain("n2"),
            plain("n3"),
            plain("n4"),
            // not like: another geometry, then a lone like entry (no run)
            ("n5", true, false),
            ("n6", true, false),
            plain("x.png"),
            plain("x9.png"),
            // like, but with an extension block: never in a run
            ("x10.png", false, true),
            ("x11.png", false, true),
            plain("x12.png"),
            plain("x13.png"),
        ],
    );
    let bytes = archive.to_bytes().unwrap();
    let mut expected = FIRST.to_vec();
    expected.extend_from_slice(&[0x07, 0x02]); // n2 to n4: one run of 2 after n2
    expected.extend_from_slice(&[0x02, 0x1c, 0x1c, 0x00]); // n5: counted on, 28×28
    expected.push(0x03); // n6: like n5, alone
    expected.extend_from_slice(&[0x00, 0x00, 0x00, 0x05]);
    expected.extend_from_slice(b"x.png");
    expected.extend_from_slice(&[0x01, 0x01, 0x00]); // x.png: 1×1
    expected.extend_from_slice(&[0x01, 0x01, 0x04, 0x01, b'9']); // x9.png: front-coded "9"
    let gamma = [0x06, 0x04, 0x04, 0x00, 0x00, 0xb1, 0x8f];
    expected.extend_from_slice(&[0x02, 0x01, 0x01, 0x80]); // x10.png: counted on, gamma
    expected.extend_from_slice(&gamma);
    expected.push(0x03); // x11.png: like x10.png but for its record, which it repeats
    expected.extend_from_slice(&gamma);
    expected.extend_from_slice(&[0x02, 0x01, 0x01, 0x00]); // x12.png: counted on, no gamma
    expected.push(0x03); // x13.png: like x12.png, alone
    assert_eq!(hex(entry_bytes(&bytes)), hex(&expected));
    let read = Archive::read(&bytes, &Limits::default()).unwrap();
    assert_eq!(read.entries.len(), archive.entries.len());
    let owned: Vec<_> = read
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.image.to_owned_image()))
        .collect();
    let written: Vec<_> = archive
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.image.clone()))
        .collect();
    assert_eq!(owned, written);
    assert_eq!(read.to_bytes().unwrap(), bytes);

    // a thousand numbered entries cost their first entry and one run: flags and a 2-byte count
    let names: Vec<String> = (0..1000).map(|i| format!("img-{i:04}.png")).collect();
    let many: Vec<_> = names.iter().map(|n| (n.as_str(), true, false)).collect();
    let bytes = chained_of(Version::V6, &many).to_bytes().unwrap();
    let v5 = chained_of(Version::V5, &many).to_bytes().unwrap();
    let first = 1 + 3 + "img-0000.png".len() + 3;
    let header = 2 + 1 + 4 + 2; // the entry count takes 2 bytes
    assert_eq!(bytes.len(), header + first + 1 + 2 + 1);
    assert_eq!(v5.len(), header + first + 999 + 1);
    let read = Archive::read(&bytes, &Limits::default()).unwrap();
    assert_eq!(read.entries.len(), 1000);
    assert_eq!(read.entries[999].name.as_str(), "img-0999.png");
    assert_eq!(read.to_bytes().unwrap(), bytes);
    // the same entries independent (each its own section): no runs
    let mut independent = chained_of(Version::V6, &many);
    independent.chain = None;
    for entry in &mut independent.entries {
        entry.image.tiles = vec![vec![7]];
    }
    let bytes = independent.to_bytes().unwrap();
    assert_eq!(bytes.len(), header + first + 2 + 999 * 3);
}

/// A version-6 chained archive of 1×1 images claiming `count` entries, [`FIRST`], then `tail`
/// and a one-byte chain.
fn claimed_run(count: u8, tail: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0x69, 0xa6, 0x02, 0xef, 0xcd, 0xab, 0x89, count];
    bytes.extend_from_slice(&FIRST);
    bytes.extend_from_slice(tail);
    bytes.push(0x01);
    bytes
}

#[test]
fn runs_are_canonical_and_checked_before_they_are_expanded() {
    fn read(bytes: &[u8]) -> Result<Archive<&[u8]>, FormatError> {
        Archive::read(bytes, &Limits::default())
    }
    // the writer's bytes for n1..n4 are a run of 3
    let written = chained_of(Version::V6, &[("n1", false, false)])
        .to_bytes()
        .unwrap();
    assert_eq!(written, claimed_run(1, &[]));
    let four = chained_of(
        Version::V6,
        &["n1", "n2", "n3", "n4"].map(|n| (n, false, false)),
    )
    .to_bytes()
    .unwrap();
    assert_eq!(four, claimed_run(4, &[0x07, 0x02]));
    let names = |bytes: &[u8]| -> Vec<String> {
        read(bytes)
            .unwrap()
            .entries
            .iter()
            .map(|e| e.name.to_string())
            .collect()
    };
    assert_eq!(names(&four), ["n1", "n2", "n3", "n4"]);

    let out_of_range = |bytes: Vec<u8>, run: u64| {
        let err = read(&bytes).unwrap_err();
        assert!(
            matches!(
                err,
                FormatError::FieldOutOfRange { field: "archive entry run length", value, .. }
                    if value == run
            ),
            "run {run}: {err}"
        );
    };
    // r = 0, and runs longer than the entries left
    out_of_range(claimed_run(4, &[0x07, 0x00, 0x03, 0x03]), 0);
    out_of_range(claimed_run(4, &[0x07, 0x03]), 3);
    out_of_range(claimed_run(2, &[0x07, 0x02]), 2);
    // a hostile count is refused at once, even with no limits: nothing is expanded
    let mut huge = vec![0x07];
    huge.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]); // 2^60
    out_of_range(claimed_run(4, &huge), 1 << 60);
    let err = Archive::read(&claimed_run(4, &huge), &Limits::UNLIMITED).unwrap_err();
    assert!(matches!(err, FormatError::FieldOutOfRange { .. }), "{err}");

    // not maximal: a like entry after a run, a run after a like entry, two like entries
    let non_canonical = |bytes: Vec<u8>, what: &str| {
        let err = read(&bytes).unwrap_err();
        assert!(
            matches!(err, FormatError::NonCanonical { .. }),
            "{what}: {err}"
        );
    };
    non_canonical(claimed_run(4, &[0x07, 0x01, 0x03]), "like after a run");
    non_canonical(claimed_run(4, &[0x03, 0x07, 0x01]), "run after like");
    non_canonical(claimed_run(4, &[0x03, 0x03, 0x03]), "like entries");
    non_canonical(claimed_run(5, &[0x07, 0x01, 0x07, 0x01]), "run after run");
    // which version 5 wrote, and still reads
    let mut v5 = claimed_run(4, &[0x03, 0x03, 0x03]);
    v5[1] = 0xa5;
    let read_v5 = Archive::read(&v5, &Limits::default()).unwrap();
    assert_eq!(read_v5.entries.len(), 4);
    assert_eq!(read_v5.to_bytes().unwrap(), v5);
    // the run flag needs both other flags
    for flags in [0x04, 0x05, 0x06] {
        non_canonical(
            claimed_run(2, &[flags, 0x01, 0x00, 0x00, 0x01, b'2']),
            "run without like",
        );
    }
    // a run cannot repeat an image with an extension block (records are never inherited)
    let gamma = chained_of(Version::V6, &["n1", "n2", "n3"].map(|n| (n, false, true)))
        .to_bytes()
        .unwrap();
    let record = [0x06, 0x04, 0x04, 0x00, 0x00, 0xb1, 0x8f];
    let first_end = 2 + 1 + 4 + 1 + (1 + 3 + 2 + 3) + record.len();
    assert_eq!(gamma[first_end], 0x03);
    let mut bad = gamma[..first_end].to_vec();
    bad.extend_from_slice(&[0x07, 0x01]);
    bad.extend_from_slice(&record);
    bad.push(0x01);
    non_canonical(bad, "run with extension block");

    // bit 2 is reserved in unchained archives and before version 6
    let reserved = |bytes: &[u8], what: &str| {
        let err = read(bytes).unwrap_err();
        assert!(
            matches!(err, FormatError::ReservedBits { .. }),
            "{what}: {err}"
        );
    };
    let mut v5_run = four.clone();
    v5_run[1] = 0xa5;
    reserved(&v5_run, "version 5");
    let mut unchained = chained_of(
        Version::V6,
        &["n1", "n2", "n3", "n4"].map(|n| (n, false, false)),
    );
    unchained.chain = None;
    for entry in &mut unchained.entries {
        entry.image.tiles = vec![vec![7]];
    }
    let mut bytes = unchained.to_bytes().unwrap();
    let second = 2 + 1 + 4 + 1 + FIRST.len() + 2;
    assert_eq!(bytes[second..second + 2], [0x03, 0x01]);
    bytes[second] = 0x07;
    reserved(&bytes, "unchained");

    // a run's names are checked like any: against the name budget, and for repeats
    let limits = Limits {
        max_name_bytes: 7,
        ..Limits::default()
    };
    let err = Archive::read(&four, &limits).unwrap_err();
    assert_eq!(limit_flag(err), "--max-name-bytes");
    Archive::read(
        &four,
        &Limits {
            max_name_bytes: 8,
            ..Limits::default()
        },
    )
    .unwrap();
    // a name after a run that repeats one of the run's: "n2" front-coded after "n3"
    let mut dup = vec![0x69, 0xa6, 0x02, 0xef, 0xcd, 0xab, 0x89, 0x04];
    dup.extend_from_slice(&FIRST);
    dup.extend_from_slice(&[0x07, 0x01]); // n2, n3
    dup.extend_from_slice(&[0x01, 0x01, 0x00, 0x01, b'2']); // prefix "n", middle "2": "n2"
    dup.push(0x01);
    let err = read(&dup).unwrap_err();
    assert!(matches!(err, FormatError::DuplicateName { .. }), "{err}");
}

/// Numbered names with random gaps, two geometries and extension records: any chained archive
/// round trips, and version 6's runs never make it bigger than version 5.
fn run_archive(version: Version) -> impl Strategy<Value = Archive> {
    proptest::collection::vec((0..4u8, any::<bool>(), 0..6u8), 1..40).prop_map(move |steps| {
        let mut name = String::from("f-08.png");
        let mut names = Vec::new();
        let mut entries = Vec::new();
        for (gap, big, gamma) in steps {
            for _ in 0..=gap / 3 {
                name = format::next_name(&name).unwrap();
            }
            names.push(name.clone());
            entries.push((big, gamma == 0));
        }
        let spec: Vec<_> = names
            .iter()
            .zip(&entries)
            .map(|(n, &(big, gamma))| (n.as_str(), big, gamma))
            .collect();
        chained_of(version, &spec)
    })
}

proptest! {
    #[test]
    fn chained_archives_with_runs_round_trip(archive in run_archive(Version::V6)) {
        let bytes = archive.to_bytes().unwrap();
        let read = Archive::read(&bytes, &Limits::UNLIMITED).unwrap();
        let owned: Vec<_> = read.entries.iter().map(|e| (e.name.clone(), e.image.to_owned_image())).collect();
        let expected: Vec<_> = archive.entries.iter().map(|e| (e.name.clone(), e.image.clone())).collect();
        prop_assert_eq!(owned, expected);
        prop_assert_eq!(read.to_bytes().unwrap(), bytes.clone());
        let v5 = Archive { version: Version::V5, ..archive.clone() };
        prop_assert!(bytes.len() <= v5.to_bytes().unwrap().len());
    }

    /// Version-6 chained archive bytes with one byte changed: an error, or a canonical archive.
    #[test]
    fn mutated_runs_parse_canonically_or_error(
        archive in run_archive(Version::V6),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        mutated_parses_canonically_or_errors(&archive, at, byte)?;
    }
}
