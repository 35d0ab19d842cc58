//! The golden files of `fixtures/` through the library alone (no PNG, no libtorch): every
//! `.idf` decodes with the committed test model (the pixel checksum makes that bit-exact) and
//! re-encodes to the same bytes. `tests/cli_golden.rs` also compares the pixels with the PNGs.

use std::path::{Path, PathBuf};

use idfcodec_codec::format::{ImageFile, Limits, Tiling};
use idfcodec_codec::tile::MAX_TILE_SIDE;
use idfcodec_codec::{
    compress, decompress, DecodeOptions, EncodeOptions, Model, ModelStorage, NamedModel,
};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn golden_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "idf"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_files_round_trip_through_the_library() {
    let bytes = std::fs::read(fixtures().join("test-model.safetensors")).unwrap();
    let model = Model::from_safetensors(&bytes).unwrap();
    let named = NamedModel {
        name: "test-model",
        model: &model,
    };
    let files = golden_files();
    assert!(files.len() >= 3, "{files:?}");
    for path in files {
        let golden = std::fs::read(&path).unwrap();
        let header = ImageFile::read(&golden, &Limits::default())
            .unwrap()
            .image
            .header;
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
            };
            assert!(
                compress(&image, &model, &options).unwrap() == golden,
                "{}: re-encoding changed the bytes",
                path.display()
            );
        }
    }
}
