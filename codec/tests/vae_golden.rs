//! Golden files of the `vae` family (`fixtures/v6/vae/`): the real grayscale PNGs of `fixtures/`
//! coded by bits-back ANS with the committed random hierarchical VAE
//! `fixtures/test-vae.safetensors` (two stochastic layers, so both BB-ANS and Bit-Swap's order
//! are pinned) — each image alone, the three as one chained archive, the three again under
//! numbered names (`digit-08.png` …, so the archive's names count on), and four 28×28 images
//! under numbered names (`digit-08.png` … `digit-11.png`: the last three one run, format
//! version 6). Their version-4 and version-5 twins (`fixtures/v4/vae/`, `fixtures/v5/vae/`)
//! must decode to the same pixels. Every build must decode
//! them to exactly the PNGs' pixels and encode the PNGs to exactly these bytes, on one thread or
//! two: a difference is a change of the VAE coding (the bucket tables, the networks' arithmetic,
//! the order of the latents) and needs a format version (FORMAT.md), never new goldens.
//!
//! Missing files are written by `cargo test -p idfcodec-codec --test vae_golden -- --ignored
//! regenerate` (it never replaces an existing file).

use std::path::{Path, PathBuf};

use idfcodec_codec::format::{Archive, EntryName, ImageFile, Limits, Version};
use idfcodec_codec::model::vae::arch::VaeArch;
use idfcodec_codec::{
    compress, compress_archive, decompress, decompress_archive, png, ArchiveLayout, DecodeOptions,
    EncodeOptions, Family, Image, Model, ModelStorage, NamedImage, NamedModel, Vae, VaeConfig,
};

/// The PNGs, their tile sides (as in `fixtures/README.md`).
const GOLDENS: [(&str, u32); 3] = [
    ("mnist-test-0.png", 128),
    ("fashion-mnist-test-0.png", 128),
    ("mnist-mosaic-83x53.png", 64),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures")
}

fn golden_dir() -> PathBuf {
    fixtures().join("v6/vae")
}

/// The version-4 and version-5 twins of the goldens (read-compat only).
fn older_dirs() -> [PathBuf; 2] {
    [fixtures().join("v4/vae"), fixtures().join("v5/vae")]
}

/// The names of the numbered archive: each counts on from the one before.
const NUMBERED: [&str; 3] = ["digit-08.png", "digit-09.png", "digit-10.png"];

/// The random model the goldens are made with (written once by `regenerate`).
fn random_vae() -> Model {
    let config = VaeConfig {
        arch: VaeArch::Mlp,
        in_channels: 1,
        image_size: 28,
        latent: 8,
        hidden: 16,
        mixtures: 2,
        bucket_bits: 8,
        upper_latents: vec![4],
        latent_grids: idfcodec_codec::model::vae::LatentGrids::Standard,
    };
    Model::from(Vae::new_random(config, 20261205).unwrap())
}

fn test_vae() -> Model {
    let bytes = std::fs::read(fixtures().join("test-vae.safetensors")).unwrap();
    Model::from_safetensors(&bytes).unwrap()
}

fn image(name: &str) -> Image {
    png::read(&std::fs::read(fixtures().join(name)).unwrap())
        .unwrap()
        .to_image()
        .unwrap()
}

fn options(threads: usize, tile_side: u32) -> EncodeOptions {
    EncodeOptions {
        threads,
        tile_side,
        model_storage: ModelStorage::External,
        archive_layout: ArchiveLayout::Chained,
    }
}

fn entries() -> Vec<NamedImage> {
    GOLDENS
        .iter()
        .map(|(name, _)| NamedImage {
            name: EntryName::new(name.to_string()).unwrap(),
            image: image(name),
        })
        .collect()
}

/// Four 28×28 images named `digit-08.png` … `digit-11.png`, so that the last three are like
/// the entry before them (one run in version 6): the two 28×28 goldens and the mosaic's two
/// whole top-left digits (MNIST test images 1 and 2).
fn run_entries() -> Vec<NamedImage> {
    let mosaic = image("mnist-mosaic-83x53.png");
    let crop = |x0: usize| {
        let width = mosaic.width() as usize;
        let samples = (0..28)
            .flat_map(|y| mosaic.samples()[y * width + x0..y * width + x0 + 28].to_vec())
            .collect();
        Image::gray8(28, 28, samples).unwrap()
    };
    let images = [
        image("mnist-test-0.png"),
        image("fashion-mnist-test-0.png"),
        crop(0),
        crop(28),
    ];
    images
        .into_iter()
        .zip([
            "digit-08.png",
            "digit-09.png",
            "digit-10.png",
            "digit-11.png",
        ])
        .map(|(image, name)| NamedImage {
            name: EntryName::new(name).unwrap(),
            image,
        })
        .collect()
}

/// The goldens' images under the [`NUMBERED`] names.
fn numbered_entries() -> Vec<NamedImage> {
    entries()
        .into_iter()
        .zip(NUMBERED)
        .map(|(entry, name)| NamedImage {
            name: EntryName::new(name).unwrap(),
            image: entry.image,
        })
        .collect()
}

/// The archive's tile side: the mosaic's (the archive shares one option set).
const ARCHIVE_TILE: u32 = 64;

#[test]
fn vae_goldens_decode_and_re_encode_to_the_same_bytes() {
    let model = test_vae();
    assert_eq!(model.family(), Family::Vae);
    assert_eq!(model.vae().unwrap().config().layers(), 2);
    let named = NamedModel {
        name: "test-vae",
        model: &model,
    };
    for (name, tile) in GOLDENS {
        let path = golden_dir().join(format!("{name}.idf"));
        let golden = std::fs::read(&path).unwrap();
        assert_eq!(
            ImageFile::read(&golden, &Limits::default())
                .unwrap()
                .version,
            Version::NEWEST
        );
        let original = image(name);
        for dir in older_dirs() {
            let twin = std::fs::read(dir.join(format!("{name}.idf"))).unwrap();
            assert!(
                decompress(&twin, &named, &DecodeOptions::default()).unwrap() == original,
                "{name}: the twin in {} decodes alike",
                dir.display()
            );
        }
        for threads in [1, 2] {
            let decoded = decompress(
                &golden,
                &named,
                &DecodeOptions {
                    threads,
                    ..DecodeOptions::default()
                },
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(decoded == original, "{name}: wrong pixels");
            assert!(
                compress(&original, &model, &options(threads, tile)).unwrap() == golden,
                "{name}: re-encoding changed the bytes ({threads} threads)"
            );
        }
        // a cut file is an error, never other pixels
        assert!(decompress(
            &golden[..golden.len() - 1],
            &named,
            &DecodeOptions::default()
        )
        .is_err());
    }
}

#[test]
fn the_chained_vae_golden_archive_round_trips() {
    let model = test_vae();
    let named = NamedModel {
        name: "test-vae",
        model: &model,
    };
    for (file, entries) in [
        ("goldens-chained.idfa", entries()),
        ("numbered-chained.idfa", numbered_entries()),
        ("run-chained.idfa", run_entries()),
    ] {
        let golden = std::fs::read(golden_dir().join(file)).unwrap();
        let archive = Archive::read(&golden, &Limits::default()).unwrap();
        assert_eq!(archive.version, Version::NEWEST);
        assert!(archive.chain.is_some());
        assert!(
            decompress_archive(&golden, &named, &DecodeOptions::default()).unwrap() == entries,
            "{file}"
        );
        for threads in [1, 2] {
            assert!(
                compress_archive(&entries, &model, &options(threads, ARCHIVE_TILE)).unwrap()
                    == golden,
                "{file}: re-encoding the chained archive changed the bytes ({threads} threads)"
            );
        }
    }
    let golden = std::fs::read(golden_dir().join("goldens-chained.idfa")).unwrap();
    let numbered = std::fs::read(golden_dir().join("numbered-chained.idfa")).unwrap();
    let decoded = |bytes: &[u8]| decompress_archive(bytes, &named, &DecodeOptions::default());
    for (dir, file) in [
        ("v4", "goldens-chained.idfa"),
        ("v5", "goldens-chained.idfa"),
        ("v5", "numbered-chained.idfa"),
    ] {
        let twin = std::fs::read(fixtures().join(dir).join("vae").join(file)).unwrap();
        let this = std::fs::read(golden_dir().join(file)).unwrap();
        assert!(
            decoded(&twin).unwrap() == decoded(&this).unwrap(),
            "the {dir} twin of {file} decodes alike"
        );
    }
    // the numbered archive spells its first name only (the others count on)
    assert!(numbered.len() < golden.len());
    // the run archive stores its first entry and one run: flags 07 and r = 2
    let run = std::fs::read(golden_dir().join("run-chained.idfa")).unwrap();
    let first = 1 + 3 + "digit-08.png".len() + 3;
    let entries_at = 2 + 1 + 8 + 1; // magic, model flags, external model id, entry count
    assert_eq!(
        run[entries_at + first..entries_at + first + 2],
        [0x07, 0x02]
    );
    let read = Archive::read(&run, &Limits::default()).unwrap();
    assert_eq!(read.entries.len(), 4);
    // the model is part of the check: another VAE cannot decode it
    let other = random_vae_with_seed(1);
    let other_named = NamedModel {
        name: "other",
        model: &other,
    };
    assert!(decompress_archive(&golden, &other_named, &DecodeOptions::default()).is_err());
}

fn random_vae_with_seed(seed: u64) -> Model {
    let mut config = test_vae().vae().unwrap().config().clone();
    config.hidden = 12;
    Model::from(Vae::new_random(config, seed).unwrap())
}

/// Writes the missing goldens (never replaces a file).
#[test]
#[ignore]
fn regenerate() {
    let model_path = fixtures().join("test-vae.safetensors");
    if !model_path.exists() {
        let model = random_vae();
        std::fs::write(&model_path, model.to_safetensors(model.card()).unwrap()).unwrap();
    }
    let model = test_vae();
    std::fs::create_dir_all(golden_dir()).unwrap();
    let write = |path: PathBuf, bytes: Vec<u8>| {
        if !path.exists() {
            std::fs::write(&path, bytes).unwrap();
            println!("wrote {}", path.display());
        }
    };
    for (name, tile) in GOLDENS {
        write(
            golden_dir().join(format!("{name}.idf")),
            compress(&image(name), &model, &options(1, tile)).unwrap(),
        );
    }
    write(
        golden_dir().join("goldens-chained.idfa"),
        compress_archive(&entries(), &model, &options(1, ARCHIVE_TILE)).unwrap(),
    );
    write(
        golden_dir().join("numbered-chained.idfa"),
        compress_archive(&numbered_entries(), &model, &options(1, ARCHIVE_TILE)).unwrap(),
    );
    write(
        golden_dir().join("run-chained.idfa"),
        compress_archive(&run_entries(), &model, &options(1, ARCHIVE_TILE)).unwrap(),
    );
}

/// The embedded `vae-mnist` (three logistic components) on MNIST test image 188
/// (`fixtures/mnist-test-188.png`), whose white strokes get a component sharp enough and far
/// enough above the first bin boundary (more than 700 scales) that the two pixel-table rules
/// differ: `fixtures/v5/vae-mnist/` holds the file the version-5 writer made (commit d534614,
/// `idfcodec compress fixtures/mnist-test-188.png --model vae-mnist`), coded with the clamped
/// start, `fixtures/v6/vae-mnist/` the version-6 file, coded with the exact one. Both decode to
/// the PNG's pixels; the newest writer makes exactly the version-6 bytes; and each payload pops
/// the PNG's pixels only under its own rule (so the goldens pin both).
#[test]
fn vae_mnist_goldens_pin_both_pixel_table_rules() {
    use idfcodec_codec::entropy::{open_stream, BinnedStart};
    use idfcodec_codec::model::vae::pop_image;
    use idfcodec_codec::Registry;
    let image = image("mnist-test-188.png");
    let entry = Registry::embedded().by_name("vae-mnist").unwrap();
    let model = entry.model().unwrap();
    let vae = model.vae().unwrap();
    let read = |version: &str| {
        std::fs::read(
            fixtures()
                .join(version)
                .join("vae-mnist/mnist-test-188.png.idf"),
        )
        .unwrap()
    };
    let (v5, v6) = (read("v5"), read("v6"));
    for (bytes, version) in [(&v5, Version::V5), (&v6, Version::V6)] {
        let file = ImageFile::read(bytes, &Limits::default()).unwrap();
        assert_eq!(file.version, version);
        let back = decompress(bytes, Registry::embedded(), &DecodeOptions::default()).unwrap();
        assert_eq!(back, image, "{version:?}");
        let pops = |tables: BinnedStart| -> Option<Vec<u8>> {
            let mut coder = open_stream(file.image.tiles[0]).ok()?;
            pop_image(&mut coder, vae, (28, 28), tables).ok()
        };
        let (own, other) = match version {
            Version::V6 => (BinnedStart::Exact, BinnedStart::Clamped),
            _ => (BinnedStart::Clamped, BinnedStart::Exact),
        };
        assert_eq!(pops(own).as_deref(), Some(image.samples()), "{version:?}");
        assert_ne!(pops(other).as_deref(), Some(image.samples()), "{version:?}");
    }
    let options = EncodeOptions {
        threads: 1,
        tile_side: 128,
        model_storage: ModelStorage::Embedded,
        archive_layout: ArchiveLayout::Auto,
    };
    assert_eq!(compress(&image, model, &options).unwrap(), v6);
    assert!(v6.len() < v5.len(), "{} vs {}", v6.len(), v5.len());
}
