//! The golden files of `fixtures/` through the library alone (no PNG, no libtorch): every
//! `.idf` decodes with the committed test model (the pixel checksums make that bit-exact); the
//! version-6 ones (`fixtures/v6/`, with a chained archive) re-encode to the same bytes, and the
//! version-1 to 5 ones decode to the same pixels as their newer twins. `tests/cli_golden.rs` also compares
//! the pixels with the PNGs.

use std::path::{Path, PathBuf};

use idfcodec_codec::entropy::StreamStart;
use idfcodec_codec::format::{crc32, Archive, ImageFile, Limits, Tiling, Version};
use idfcodec_codec::model::idf::decode_image;
use idfcodec_codec::tile::MAX_TILE_SIDE;
use idfcodec_codec::{
    compress, compress_archive, decompress, decompress_archive, ArchiveLayout, DecodeOptions,
    EncodeOptions, Model, ModelStorage, NamedModel,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn golden_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idf"))
        .collect();
    files.sort();
    files
}

fn test_model() -> Model {
    let bytes = std::fs::read(fixtures().join("test-model.safetensors")).unwrap();
    Model::from_safetensors(&bytes).unwrap()
}

#[test]
fn older_goldens_still_decode_to_their_version_3_twins() {
    let model = test_model();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    let files = golden_files(&fixtures());
    assert!(files.len() >= 3, "{files:?}");
    for path in files {
        let v1 = std::fs::read(&path).unwrap();
        assert_eq!(
            ImageFile::read(&v1, &Limits::default()).unwrap().version,
            Version::V1
        );
        let twin = |version: &str| {
            std::fs::read(fixtures().join(version).join(path.file_name().unwrap())).unwrap()
        };
        let options = DecodeOptions::default();
        let v3 = decompress(&twin("v3"), &named, &options).unwrap();
        assert_eq!(
            decompress(&v1, &named, &options).unwrap(),
            v3,
            "{}",
            path.display()
        );
        assert_eq!(
            decompress(&twin("v2"), &named, &options).unwrap(),
            v3,
            "{}",
            path.display()
        );
    }
}

/// The stream of an untiled version-2 golden ends at `2^32 + crc32(pixels)`, with the CRC
/// computed here from the version-1 twin's pixels (not by the codec's tile code).
#[test]
fn version_2_streams_end_at_the_pixel_checksum() {
    let model = test_model();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    for stem in ["mnist-test-0", "fashion-mnist-test-0"] {
        let name = format!("{stem}.png.idf");
        let v1 = std::fs::read(fixtures().join(&name)).unwrap();
        let pixels = decompress(&v1, &named, &DecodeOptions::default())
            .unwrap()
            .into_samples();
        let v2 = std::fs::read(fixtures().join("v2").join(&name)).unwrap();
        let file = ImageFile::read(&v2, &Limits::default()).unwrap();
        assert_eq!(file.image.tiles.len(), 1);
        let crc = crc32(&pixels);
        let decode = |expected| {
            decode_image(model.idf().unwrap(), file.image.tiles[0], 1, 28, 28, |_| {
                StreamStart::Checksum(expected)
            })
        };
        assert_eq!(decode(crc).unwrap(), pixels, "{name}");
        assert!(decode(crc ^ 0x8000_0000).is_err(), "{name}");
    }
}

#[test]
fn golden_files_round_trip_through_the_library() {
    let model = test_model();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    let files = golden_files(&fixtures().join("v6"));
    assert!(files.len() >= 3, "{files:?}");
    for path in files {
        let golden = std::fs::read(&path).unwrap();
        let file = ImageFile::read(&golden, &Limits::default()).unwrap();
        assert_eq!(file.version, Version::V6);
        for older in ["v3", "v4", "v5"] {
            let twin = std::fs::read(fixtures().join(older).join(path.file_name().unwrap()));
            assert_eq!(
                decompress(&twin.unwrap(), &named, &DecodeOptions::default()).ok(),
                decompress(&golden, &named, &DecodeOptions::default()).ok(),
                "{}: the {older} twin decodes alike",
                path.display()
            );
        }
        if file.model.is_none() {
            continue; // the colour goldens: coded without a model, checked in cli_golden.rs
        }
        let header = file.image.header;
        for threads in [1, 2] {
            let options = DecodeOptions {
                threads,
                ..DecodeOptions::default()
            };
            let image = decompress(&golden, &named, &options)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let tile_side = match header.tiling {
                Tiling::Whole => MAX_TILE_SIDE,
                Tiling::Square { log2 } => 1 << log2,
            };
            let options = EncodeOptions {
                threads,
                tile_side,
                model_storage: ModelStorage::External,
                archive_layout: ArchiveLayout::Independent,
            };
            assert!(
                compress(&image, &model, &options).unwrap() == golden,
                "{}: re-encoding changed the bytes",
                path.display()
            );
        }
    }
}

#[test]
fn the_golden_archive_round_trips_through_the_library() {
    let model = test_model();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    let golden = std::fs::read(fixtures().join("v6/goldens.idfa")).unwrap();
    let archive = Archive::read(&golden, &Limits::default()).unwrap();
    assert_eq!(archive.version, Version::V6);
    assert_eq!(archive.entries.len(), 3);
    let images = decompress_archive(&golden, &named, &DecodeOptions::default()).unwrap();
    for older in [
        "v2/goldens.idfa",
        "v3/goldens.idfa",
        "v4/goldens.idfa",
        "v4/goldens-chained.idfa",
        "v5/goldens.idfa",
        "v5/goldens-chained.idfa",
        "v6/goldens-chained.idfa",
    ] {
        let bytes = std::fs::read(fixtures().join(older)).unwrap();
        assert_eq!(
            decompress_archive(&bytes, &named, &DecodeOptions::default()).unwrap(),
            images,
            "{older}"
        );
    }
    for image in &images {
        let single = std::fs::read(fixtures().join("v6").join(format!("{}.idf", image.name)));
        let single = decompress(&single.unwrap(), &named, &DecodeOptions::default()).unwrap();
        assert_eq!(image.image, single, "{}", image.name);
    }
    let options = EncodeOptions {
        threads: 2,
        tile_side: 32,
        model_storage: ModelStorage::External,
        archive_layout: ArchiveLayout::Independent,
    };
    assert!(
        compress_archive(&images, &model, &options).unwrap() == golden,
        "re-encoding the archive changed the bytes"
    );
    let chained = EncodeOptions {
        archive_layout: ArchiveLayout::Chained,
        ..options
    };
    assert!(
        compress_archive(&images, &model, &chained).unwrap()
            == std::fs::read(fixtures().join("v6/goldens-chained.idfa")).unwrap(),
        "re-encoding the chained archive changed the bytes"
    );
}
