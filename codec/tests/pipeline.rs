//! Whole images to container bytes and back: sizes, tiling, threads, model checks, unsupported
//! formats, damaged files and archives.

mod common;

use common::{small_config, smooth_pixels, Rng};
use idfcodec_codec::engine::Shape;
use idfcodec_codec::entropy::StreamStart;
use idfcodec_codec::format::{
    self, CodedImage, EntryName, Extension, ExtensionKind, FormatError, ImageFile, ImageHeader,
    Limits, ModelRef, PixelFormat, Tiling, Version,
};
use idfcodec_codec::model::idf::encode_image;
use idfcodec_codec::tile::TileLayout;
use idfcodec_codec::{
    compress, compress_archive, decompress, decompress_archive, ArchiveLayout, CodecError,
    DecodeOptions, EncodeOptions, Idf, Image, ImageCodecError, Model, ModelStorage, NamedImage,
    NamedModel,
};
use idfcodec_codec::{EmbeddedSpec, Registry};

fn model(seed: u64) -> Model {
    Model::from(Idf::new_random(small_config(1, 2), seed).unwrap())
}

fn named(model: &Model) -> NamedModel<'_> {
    NamedModel {
        name: "test",
        model,
    }
}

fn gray(width: u32, height: u32, seed: u64) -> Image {
    let shape = Shape::new(1, height as usize, width as usize);
    Image::gray8(width, height, smooth_pixels(&mut Rng::new(seed), shape)).unwrap()
}

fn options(tile_side: u32, threads: usize) -> EncodeOptions {
    EncodeOptions {
        threads,
        tile_side,
        model_storage: ModelStorage::External,
        ..EncodeOptions::default()
    }
}

fn decode(bytes: &[u8], model: &Model) -> Result<Image, ImageCodecError> {
    decompress(bytes, &named(model), &DecodeOptions::default())
}

#[test]
fn images_of_any_size_round_trip() {
    let m = model(1);
    for (i, (w, h)) in [
        (1, 1),
        (1, 7),
        (7, 1),
        (13, 17),
        (28, 28),
        (33, 16),
        (40, 37),
    ]
    .into_iter()
    .enumerate()
    {
        let image = gray(w, h, i as u64);
        let bytes = compress(&image, &m, &options(16, 0)).unwrap();
        assert_eq!(decode(&bytes, &m).unwrap(), image, "{w}×{h}");
    }
}

#[test]
fn small_images_are_one_tile_without_index() {
    let m = model(2);
    let image = gray(28, 28, 3);
    let bytes = compress(&image, &m, &EncodeOptions::default()).unwrap();
    let file = ImageFile::read(&bytes, &Limits::default()).unwrap();
    assert_eq!(file.image.header.tiling, Tiling::Whole);
    assert_eq!(file.image.tiles.len(), 1);
    // magic 2, width 1, height 1, descriptor 1, external id 8, then the payload (versions 3 and
    // 4: the checksum is in the stream)
    assert_eq!(file.version, Version::NEWEST);
    assert_eq!(bytes.len(), 13 + file.image.tiles[0].len());
    assert_eq!(bytes[4], 0x20, "gray8, external model, untiled");
}

#[test]
fn output_does_not_depend_on_threads_and_any_tiling_decodes() {
    let m = model(4);
    let image = gray(70, 45, 5);
    let one = compress(&image, &m, &options(16, 1)).unwrap();
    for threads in [2, 3, 0] {
        assert_eq!(compress(&image, &m, &options(16, threads)).unwrap(), one);
    }
    let header = ImageFile::read(&one, &Limits::default())
        .unwrap()
        .image
        .header;
    assert_eq!(header.tiling, Tiling::Square { log2: 4 });
    assert_eq!(header.grid().count(), 5 * 3);
    let mut sizes = Vec::new();
    for side in [16, 32, 64, 128] {
        let bytes = compress(&image, &m, &options(side, 2)).unwrap();
        for threads in [1, 4] {
            let decoded = decompress(
                &bytes,
                &named(&m),
                &DecodeOptions {
                    threads,
                    ..DecodeOptions::default()
                },
            )
            .unwrap();
            assert_eq!(decoded, image, "side {side}, {threads} threads");
        }
        sizes.push(bytes.len());
    }
    assert!(sizes[0] > sizes[3], "more tiles cost more: {sizes:?}");
}

#[test]
fn invalid_options_are_refused() {
    let m = model(6);
    for side in [0, 8, 24, 2048] {
        assert!(matches!(
            compress(&gray(4, 4, 0), &m, &options(side, 1)),
            Err(ImageCodecError::InvalidOptions(_))
        ));
    }
    assert!(matches!(
        compress(&gray(4, 4, 0), &m, &options(16, 1 << 20)),
        Err(ImageCodecError::InvalidOptions(_))
    ));
    let deep = Model::from(Idf::new_random(small_config(1, 5), 1).unwrap());
    let err = compress(&gray(4, 4, 0), &deep, &options(16, 1)).unwrap_err();
    assert!(err.to_string().contains("size multiple 32"), "{err}");
}

#[test]
fn a_gray_model_is_refused_for_images_without_a_gray_plane() {
    let m = model(7);
    let rgb = Image::new(2, 2, PixelFormat::Rgb8, vec![0; 12]).unwrap();
    let err = compress(&rgb, &m, &EncodeOptions::default()).unwrap_err();
    assert!(matches!(
        err,
        ImageCodecError::ModelDoesNotFit {
            format: PixelFormat::Rgb8,
            ..
        }
    ));
    let file = ImageFile {
        version: Version::V2,
        model: ModelRef::external(m.id()),
        image: CodedImage {
            header: ImageHeader {
                width: 2,
                height: 2,
                pixel_format: PixelFormat::Gray16,
                tiling: Tiling::Whole,
                pixel_crc: None,
            },
            extensions: vec![],
            tiles: vec![vec![1u8]],
        },
    };
    let err = decode(&file.to_bytes().unwrap(), &m).unwrap_err();
    assert!(matches!(
        err,
        ImageCodecError::ModelDoesNotFit {
            format: PixelFormat::Gray16,
            ..
        }
    ));
    assert!(Image::gray8(2, 2, vec![0; 3]).is_err());
    assert!(Image::gray8(0, 2, vec![]).is_err());
}

#[test]
fn models_are_checked_before_decoding() {
    let (a, b) = (model(8), model(9));
    let bytes = compress(&gray(9, 9, 1), &a, &EncodeOptions::default()).unwrap();
    let err = decode(&bytes, &b).unwrap_err();
    assert!(
        matches!(
            err,
            ImageCodecError::Format(FormatError::ModelMismatch { .. })
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!("{:016x}", a.id())),
        "{err}"
    );
    let empty = Registry::new([]);
    let err = decompress(&bytes, &empty, &DecodeOptions::default()).unwrap_err();
    assert!(matches!(err, ImageCodecError::ModelNotFound(_)), "{err}");
    assert!(err.to_string().contains("--model PATH"), "{err}");
}

#[test]
fn embedded_references_resolve_through_a_registry() {
    let m = model(10);
    let file: &'static [u8] = Box::leak(
        m.to_safetensors(&serde_json::json!({}))
            .unwrap()
            .into_boxed_slice(),
    );
    let registry = Registry::new([EmbeddedSpec {
        name: "gray",
        serves: &[PixelFormat::Gray8],
        bytes: file,
    }]);
    let image = gray(28, 28, 2);
    let opts = EncodeOptions {
        model_storage: ModelStorage::Embedded,
        ..EncodeOptions::default()
    };
    let bytes = compress(&image, &m, &opts).unwrap();
    assert_eq!(bytes[4], 0x00, "gray8, embedded model, untiled");
    let decoded = decompress(&bytes, &registry, &DecodeOptions::default()).unwrap();
    assert_eq!(decoded, image);
}

#[test]
fn padding_that_is_not_replication_is_refused() {
    // a 4×4 coded tile for a 3×3 image whose padding column differs from the edge
    let m = model(11);
    let mut padded = smooth_pixels(&mut Rng::new(3), Shape::new(1, 4, 4));
    let crop: Vec<u8> = (0..3)
        .flat_map(|r| padded[r * 4..r * 4 + 3].to_vec())
        .collect();
    padded[3] = padded[2].wrapping_add(1);
    let crc = format::crc32(&crop);
    for (version, start, pixel_crc) in [
        (Version::V1, StreamStart::One, Some(crc)),
        (Version::V2, StreamStart::Checksum(crc), None),
    ] {
        let payload = encode_image(m.idf().unwrap(), &padded, 1, 4, 4, start).unwrap();
        let file = ImageFile {
            version,
            model: ModelRef::external(m.id()),
            image: CodedImage {
                header: ImageHeader {
                    width: 3,
                    height: 3,
                    pixel_format: PixelFormat::Gray8,
                    tiling: Tiling::Whole,
                    pixel_crc,
                },
                extensions: vec![],
                tiles: vec![payload],
            },
        };
        let err = decode(&file.to_bytes().unwrap(), &m).unwrap_err();
        assert!(
            matches!(
                err,
                ImageCodecError::Tile {
                    error: CodecError::CorruptPayload(_),
                    ..
                }
            ),
            "{version}: {err}"
        );
    }
}

#[test]
fn extension_records_travel_with_the_pixels() {
    let m = model(13);
    let gamma = Extension {
        kind: ExtensionKind::Gamma,
        data: vec![0, 1, 0x86, 0xa0],
    };
    let image = gray(8, 8, 1).with_extensions(vec![gamma.clone()]).unwrap();
    let bytes = compress(&image, &m, &EncodeOptions::default()).unwrap();
    let back = decode(&bytes, &m).unwrap();
    assert_eq!(back, image);
    assert_eq!(back.extensions(), [gamma]);
}

/// Pseudo-random canonical samples of `format` (sub-byte and palette samples in range).
fn samples_of(format: PixelFormat, pixels: usize, rng: &mut Rng) -> Vec<u8> {
    let bits = format.bits_per_sample();
    let bytes = pixels * usize::from(format.bytes_per_pixel());
    let mut smooth = |i: usize| ((i / 3) as u8).wrapping_mul(7) ^ (rng.range(0, 4) as u8);
    (0..bytes)
        .map(|i| match bits {
            1 | 2 | 4 => smooth(i) & ((1u8 << bits) - 1),
            _ => smooth(i),
        })
        .collect()
}

#[test]
fn every_pixel_format_round_trips_without_a_model() {
    let mut rng = Rng::new(77);
    let none: Option<&Model> = None;
    for format in PixelFormat::ALL {
        for (w, h) in [(1, 1), (1, 13), (13, 1), (17, 31), (40, 20)] {
            let mut image =
                Image::new(w, h, format, samples_of(format, (w * h) as usize, &mut rng)).unwrap();
            if format.is_palette() {
                let entries = 1usize << format.bits_per_sample();
                image = image
                    .with_extensions(vec![
                        Extension {
                            kind: ExtensionKind::Palette,
                            data: (0..entries * 3).map(|i| i as u8).collect(),
                        },
                        Extension {
                            kind: ExtensionKind::Transparency,
                            data: vec![0x80],
                        },
                    ])
                    .unwrap();
            }
            // tiled at 16 pixels: the output does not depend on the thread count
            let one = compress(&image, none, &options(16, 1)).unwrap();
            let two = compress(&image, none, &options(16, 2)).unwrap();
            assert_eq!(one, two, "{format:?} {w}×{h}");
            let back = decompress(&one, &Registry::new([]), &DecodeOptions::default()).unwrap();
            assert_eq!(back, image, "{format:?} {w}×{h}");
        }
    }
}

#[test]
fn gray_alpha_codes_its_gray_plane_with_the_model() {
    let m = model(21);
    let mut rng = Rng::new(5);
    let format = PixelFormat::GrayAlpha8;
    let image = Image::new(19, 11, format, samples_of(format, 19 * 11, &mut rng)).unwrap();
    let with_model = compress(&image, &m, &options(16, 1)).unwrap();
    assert_eq!(decode(&with_model, &m).unwrap(), image);
    let without: Option<&Model> = None;
    let context_only = compress(&image, without, &options(16, 1)).unwrap();
    assert_ne!(with_model, context_only, "the model codes the gray plane");
    // the file names its model: another one is refused before decoding
    assert!(decode(&with_model, &model(22)).is_err());
}

#[test]
fn decoder_limits_are_enforced() {
    let m = model(12);
    let bytes = compress(&gray(40, 20, 1), &m, &options(64, 1)).unwrap();
    let tight = DecodeOptions {
        max_tile_pixels: 40 * 20 - 1,
        ..DecodeOptions::default()
    };
    let err = decompress(&bytes, &named(&m), &tight).unwrap_err();
    assert!(matches!(err, ImageCodecError::TileTooLarge { .. }), "{err}");
    assert!(err.to_string().contains("--max-tile-pixels"), "{err}");
    let limits = Limits {
        max_pixels: 799,
        ..Limits::default()
    };
    let err = decompress(
        &bytes,
        &named(&m),
        &DecodeOptions {
            limits,
            ..DecodeOptions::default()
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--max-pixels"), "{err}");
}

/// Every truncation and every single-bit flip either fails or gives exactly the image, in
/// version 2 (what the encoder writes) and version 1 (built here from version-1 streams).
#[test]
fn damaged_files_never_give_wrong_pixels() {
    let m = model(13);
    let image = gray(5, 3, 4);
    let v2 = compress(&image, &m, &EncodeOptions::default()).unwrap();
    let mut v1 = ImageFile::read(&v2, &Limits::default())
        .unwrap()
        .to_owned_file();
    v1.version = Version::V1;
    v1.image.header.pixel_crc = Some(format::crc32(image.samples()));
    let layout = TileLayout::new(v1.image.header.grid().rect(0).unwrap(), 4);
    let padded = layout.extract(image.samples(), 5);
    let (h, w) = (layout.padded_height, layout.padded_width);
    v1.image.tiles =
        vec![encode_image(m.idf().unwrap(), &padded, 1, h, w, StreamStart::One).unwrap()];
    let v1 = v1.to_bytes().unwrap();
    assert_eq!(decode(&v1, &m).unwrap(), image);
    for bytes in [v2, v1] {
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], &m).is_err(), "truncated to {len}");
        }
        let mut extended = bytes.clone();
        extended.push(1);
        assert!(decode(&extended, &m).is_err(), "extended");
        let mut accepted = 0;
        for bit in 0..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            if let Ok(decoded) = decode(&damaged, &m) {
                assert_eq!(decoded, image, "bit {bit} gave other pixels");
                accepted += 1;
            }
        }
        assert_eq!(accepted, 0, "every bit of a canonical file matters");
    }
}

#[test]
fn archives_round_trip_with_names() {
    let m = model(14);
    let images: Vec<NamedImage> = [
        ("a.png", 28, 28),
        ("dir/b.png", 3, 5),
        ("dir/sub/c", 40, 20),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, w, h))| NamedImage {
        name: EntryName::new(name).unwrap(),
        image: gray(w, h, 20 + i as u64),
    })
    .collect();
    let opts = options(16, 2);
    let bytes = compress_archive(&images, &m, &opts).unwrap();
    assert_eq!(
        compress_archive(&images, &m, &options(16, 1)).unwrap(),
        bytes
    );
    let back = decompress_archive(&bytes, &named(&m), &DecodeOptions::default()).unwrap();
    assert_eq!(back, images);
    assert!(matches!(
        decode(&bytes, &m),
        Err(ImageCodecError::Format(FormatError::WrongKind { .. }))
    ));
    let mut damaged = bytes.clone();
    let last = damaged.len() - 1;
    damaged[last] ^= 0x10;
    let err = decompress_archive(&damaged, &named(&m), &DecodeOptions::default()).unwrap_err();
    assert!(err.to_string().contains("dir/sub/c"), "{err}");
    let twice = [images[0].clone(), images[0].clone()];
    assert!(compress_archive(&twice, &m, &opts).is_err());
}

#[test]
fn rgb_images_are_coded_by_an_rgb_model() {
    let rgb_model = Model::from(Idf::new_random(small_config(3, 2), 31).unwrap());
    let mut rng = Rng::new(8);
    let format = PixelFormat::Rgb8;
    for (w, h) in [(1, 1), (7, 5), (37, 21)] {
        let image =
            Image::new(w, h, format, samples_of(format, (w * h) as usize, &mut rng)).unwrap();
        let one = compress(&image, &rgb_model, &options(16, 1)).unwrap();
        assert_eq!(one, compress(&image, &rgb_model, &options(16, 2)).unwrap());
        assert_eq!(decode(&one, &rgb_model).unwrap(), image, "{w}×{h}");
    }
    // a gray model does not fit RGB, an RGB model does not fit gray or RGBA
    let gray_image = gray(8, 8, 3);
    assert!(compress(&gray_image, &rgb_model, &options(16, 1)).is_err());
    let rgba = Image::new(2, 2, PixelFormat::Rgba8, vec![7; 16]).unwrap();
    assert!(compress(&rgba, &rgb_model, &options(16, 1)).is_err());
}

/// An archive decodes entry by entry in batches that fit the memory budget: with room for one
/// entry at a time, every entry before a damaged one has been handed over before the damaged
/// one is decoded; with room for all, none is (they are decoded together and the batch fails).
#[test]
fn archives_decode_in_batches_within_the_memory_budget() {
    let m = model(7);
    let images: Vec<NamedImage> = (0..5)
        .map(|i| NamedImage {
            name: EntryName::new(format!("e/{i}.png")).unwrap(),
            image: gray(32, 24, i),
        })
        .collect();
    let mut bytes = compress_archive(&images, &m, &options(128, 1)).unwrap();
    let archive = format::Archive::read(&bytes, &Limits::default()).unwrap();
    let header = archive.entries[0].image.header;
    let one = idfcodec_codec::decode_memory(&header, Some(&m), 1);
    // damage the last payload byte of entry 3
    let end = {
        let last = archive.entries[3].image.tiles[0];
        last.as_ptr() as usize - bytes.as_ptr() as usize + last.len() - 1
    };
    bytes[end] ^= 0x40;
    let delivered = |max_memory: u64| {
        let options = DecodeOptions {
            threads: 1,
            max_memory,
            ..DecodeOptions::default()
        };
        let named = named(&m);
        let decoder = idfcodec_codec::ArchiveDecoder::new(&bytes, &named, &options)?;
        let mut names = Vec::new();
        let result = decoder.decode_each(|entry| {
            names.push(entry.name.to_string());
            Ok::<_, ImageCodecError>(())
        });
        assert!(result.is_err(), "entry 3 is damaged");
        Ok::<_, ImageCodecError>(names)
    };
    assert_eq!(
        delivered(one + one / 2).unwrap(),
        ["e/0.png", "e/1.png", "e/2.png"]
    );
    assert!(delivered(5 * one).unwrap().is_empty());
    let err = delivered(one - 1).unwrap_err();
    assert!(
        matches!(
            err,
            ImageCodecError::Entry { ref error, .. }
                if matches!(**error, ImageCodecError::MemoryBudget { .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("--max-memory"), "{err}");
}

/// Chained archives (format version 4) of any model and format: one stream for all entries,
/// tiled and untiled images, with the IDF (gray and gray+alpha: its alpha context-coded on the
/// same stream) and without a model (every format). Each decodes to its entries exactly, the
/// bytes do not depend on the thread count, the chain is smaller than independent entries (no
/// start state per tile), and swapping two entries' names or flipping a byte is caught.
#[test]
fn chained_archives_of_every_kind_round_trip() {
    let m = model(31);
    let mut rng = Rng::new(9);
    let with = |layout, threads| EncodeOptions {
        archive_layout: layout,
        ..options(16, threads)
    };
    let mut cases: Vec<(Option<&Model>, Vec<NamedImage>)> = Vec::new();
    let sizes = [(28, 28), (40, 20), (1, 1), (17, 33)];
    let gray_entries = sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| NamedImage {
            name: EntryName::new(format!("g/{i}.png")).unwrap(),
            image: gray(w, h, 40 + i as u64),
        })
        .collect();
    cases.push((Some(&m), gray_entries));
    let alpha = PixelFormat::GrayAlpha8;
    let alpha_entries = sizes
        .iter()
        .enumerate()
        .map(|(i, &(w, h))| NamedImage {
            name: EntryName::new(format!("a/{i}.png")).unwrap(),
            image: Image::new(w, h, alpha, samples_of(alpha, (w * h) as usize, &mut rng)).unwrap(),
        })
        .collect();
    cases.push((Some(&m), alpha_entries));
    for format in [PixelFormat::Rgb8, PixelFormat::Gray1, PixelFormat::Rgba16] {
        let entries = sizes
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| NamedImage {
                name: EntryName::new(format!("{format:?}/{i}.png")).unwrap(),
                image: Image::new(w, h, format, samples_of(format, (w * h) as usize, &mut rng))
                    .unwrap(),
            })
            .collect();
        cases.push((None, entries));
    }
    for (model, entries) in &cases {
        let lookup: Box<dyn idfcodec_codec::ModelLookup> = match model {
            Some(m) => Box::new(named(m)),
            None => Box::new(Registry::new([])),
        };
        let what = format!("{:?}", entries[0].image.pixel_format());
        let chained = compress_archive(entries, *model, &with(ArchiveLayout::Chained, 1)).unwrap();
        assert_eq!(
            compress_archive(entries, *model, &with(ArchiveLayout::Chained, 2)).unwrap(),
            chained,
            "{what}"
        );
        let independent =
            compress_archive(entries, *model, &with(ArchiveLayout::Independent, 1)).unwrap();
        assert_eq!(
            compress_archive(entries, *model, &with(ArchiveLayout::Auto, 1)).unwrap(),
            independent,
            "{what}: Auto does not chain a model without bits back"
        );
        assert!(chained.len() < independent.len(), "{what}");
        let archive = format::Archive::read(&chained, &Limits::default()).unwrap();
        assert_eq!(archive.version, Version::NEWEST);
        assert!(
            archive.chain.is_some() && archive.entries.iter().all(|e| e.image.tiles.is_empty())
        );
        assert_eq!(archive.to_bytes().unwrap(), chained, "{what}: canonical");
        let back = decompress_archive(&chained, lookup.as_ref(), &DecodeOptions::default());
        assert_eq!(&back.unwrap(), entries, "{what}");
        // another entry order under the same names: the chain's checksum binds names to pixels
        let mut swapped = archive.clone();
        let (a, b) = swapped.entries.split_at_mut(1);
        std::mem::swap(&mut a[0].name, &mut b[0].name);
        let swapped = swapped.to_bytes().unwrap();
        assert!(
            decompress_archive(&swapped, lookup.as_ref(), &DecodeOptions::default()).is_err(),
            "{what}: swapped names"
        );
        for k in (0..chained.len()).step_by(5) {
            let mut bad = chained.clone();
            bad[k] ^= 0x20;
            if let Ok(back) = decompress_archive(&bad, lookup.as_ref(), &DecodeOptions::default()) {
                assert_eq!(&back, entries, "{what}: byte {k} flipped gave other images");
            }
        }
        for cut in 1..4.min(chained.len()) {
            let cut = &chained[..chained.len() - cut];
            assert!(decompress_archive(cut, lookup.as_ref(), &DecodeOptions::default()).is_err());
        }
    }
}

/// A chain is refused in versions before 4, and a chained archive with no stream is truncated.
#[test]
fn chains_need_version_4_and_a_stream() {
    let entries = vec![NamedImage {
        name: EntryName::new("x.png").unwrap(),
        image: gray(8, 8, 1),
    }];
    let none: Option<&Model> = None;
    let options = EncodeOptions {
        archive_layout: ArchiveLayout::Chained,
        ..options(16, 1)
    };
    let bytes = compress_archive(&entries, none, &options).unwrap();
    let mut archive = format::Archive::read(&bytes, &Limits::default()).unwrap();
    archive.version = Version::V3;
    assert!(matches!(
        archive.to_bytes(),
        Err(FormatError::NotInVersion { .. })
    ));
    let mut v3 = bytes.clone();
    v3[1] = 0xa3;
    assert!(matches!(
        format::Archive::read(&v3, &Limits::default()),
        Err(FormatError::ReservedBits { .. })
    ));
    // the entries end where the chain starts: nothing after them is a truncated chain
    let archive = format::Archive::read(&bytes, &Limits::default()).unwrap();
    let chain_len = archive.chain.unwrap().len();
    assert!(matches!(
        format::Archive::read(&bytes[..bytes.len() - chain_len], &Limits::default()),
        Err(FormatError::Truncated { .. })
    ));
}
