//! Golden files: `fixtures/*.png` (real MNIST / Fashion-MNIST test images) and their encodings
//! made with the fixed `fixtures/test-model.safetensors`: `fixtures/*.png.idf` in format
//! version 1 (made before version 2 existed), `fixtures/v2/` (version 2) and `fixtures/v3/`
//! (version 3), `fixtures/v4/` to `fixtures/v6/` (versions 4 to 6, also the chained archive
//! `goldens-chained.idfa`), each with the archive `goldens.idfa`; `fixtures/v3/` to `v6/` also hold PngSuite
//! images with palettes, transparency and colour chunks, coded without a model. Every future
//! build must decode all of them to exactly these pixels (and colour chunks), and encode the
//! PNGs to exactly the bytes of the newest version: a change here is a format change (a version
//! bump, see FORMAT.md), never a test to update.
//!
//! `cargo test --test cli_golden -- --ignored regenerate` writes missing fixtures (it never
//! replaces an existing `.idf` or the model).

mod cli_common;

use std::path::{Path, PathBuf};

use cli_common::{ok, read_gray_png, test_config, write_gray_png};

/// A golden image: file stem under `fixtures/` and the `--tile` it is coded with.
struct Golden {
    stem: &'static str,
    tile: u32,
}

const GOLDEN: [Golden; 3] = [
    Golden {
        stem: "mnist-test-0",
        tile: 128,
    },
    Golden {
        stem: "fashion-mnist-test-0",
        tile: 128,
    },
    // six MNIST digits in a 3×2 mosaic, cropped to an odd size: clipped, padded tiles
    Golden {
        stem: "mnist-mosaic-83x53",
        tile: 32,
    },
];

/// Seed of `Idf::new_random(test_config(), MODEL_SEED)`, the committed test model.
const MODEL_SEED: u64 = 20_240_601;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

fn model_path() -> PathBuf {
    fixtures().join("test-model.safetensors")
}

fn png(g: &Golden) -> PathBuf {
    fixtures().join(format!("{}.png", g.stem))
}

/// The version-1 golden (frozen; the encoder no longer writes version 1).
fn idf_v1(g: &Golden) -> PathBuf {
    fixtures().join(format!("{}.png.idf", g.stem))
}

/// The folder of the newest version's goldens.
const NEWEST: &str = "v6";

/// The golden of `version` (a folder under `fixtures/`: "v2" to "v6").
fn idf_in(version: &str, g: &Golden) -> PathBuf {
    fixtures().join(version).join(format!("{}.png.idf", g.stem))
}

/// The golden of the newest version.
fn idf(g: &Golden) -> PathBuf {
    idf_in(NEWEST, g)
}

/// The archive of every golden PNG in `version`, coded with `--tile 32`.
fn archive_in(version: &str) -> PathBuf {
    fixtures().join(version).join("goldens.idfa")
}

/// The newest version's archive.
fn archive() -> PathBuf {
    archive_in(NEWEST)
}

/// The same archive chained (`--archive-layout chained`: one stream for all entries, version 4).
fn chained_archive() -> PathBuf {
    fixtures().join(NEWEST).join("goldens-chained.idfa")
}

/// PngSuite images with a palette, transparency or colour chunks, coded without a model
/// (`--effort 1`) into `fixtures/v6/NAME.idf` (`fixtures/v3/` to `v5/`: their older twins).
const COLOUR_GOLDEN: [&str; 5] = [
    "basn3p08-trns.png",
    "basn6a08.png",
    "basn3p04.png",
    "ftbrn2c08.png",
    "ccwn2c08.png",
];

fn colour_png(name: &str) -> PathBuf {
    fixtures().join("pngsuite").join(name)
}

fn colour_idf_in(version: &str, name: &str) -> PathBuf {
    fixtures().join(version).join(format!("{name}.idf"))
}

fn colour_idf(name: &str) -> PathBuf {
    colour_idf_in(NEWEST, name)
}

/// `idfcodec compress --effort 1` (no model) of a colour golden into `out`.
fn compress_colour(name: &str, out: &Path) {
    ok(&[
        "compress".as_ref(),
        colour_png(name).as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--effort".as_ref(),
        "1".as_ref(),
        "--force".as_ref(),
    ]);
}

/// A PNG file's pixels and colour chunks, as the codec reads them.
fn png_content(path: &Path) -> idfcodec_codec::Image {
    let bytes = std::fs::read(path).unwrap();
    let png = idfcodec_codec::png::read(&bytes).unwrap();
    png.to_image().unwrap()
}

/// `idfcodec compress --archive` of every golden PNG into `out`, laid out as `layout` says.
fn compress_archive(out: &Path, layout: &str) {
    let mut args: Vec<std::ffi::OsString> = vec!["compress".into(), "--archive".into()];
    args.push(out.into());
    args.extend(GOLDEN.iter().map(|g| png(g).into_os_string()));
    for extra in ["--model".as_ref(), model_path().as_os_str()] {
        args.push(extra.into());
    }
    // effort 4: the goldens are the model's files (from 5 the context coder's may be kept)
    args.extend(["--tile", "32", "--effort", "4", "--force"].map(Into::into));
    args.extend(["--archive-layout", layout].map(Into::into));
    ok(&args);
}

/// `idfcodec compress` of the golden PNG into `out`.
fn compress(g: &Golden, out: &Path) {
    let tile = g.tile.to_string();
    ok(&[
        "compress".as_ref(),
        png(g).as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--model".as_ref(),
        model_path().as_os_str(),
        "--tile".as_ref(),
        tile.as_ref(),
        "--effort".as_ref(),
        "4".as_ref(),
        "--force".as_ref(),
    ]);
}

/// `idfcodec decompress` of `input` into `out` (a PNG, or a folder for an archive).
fn decompress(input: &Path, out: &Path) {
    ok(&[
        "decompress".as_ref(),
        input.as_os_str(),
        "-o".as_ref(),
        out.as_os_str(),
        "--model".as_ref(),
        model_path().as_os_str(),
    ]);
}

#[test]
fn golden_files_decode_and_encode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for g in &GOLDEN {
        for (version, file) in [
            ("v1", idf_v1(g)),
            ("v2", idf_in("v2", g)),
            ("v3", idf_in("v3", g)),
            ("v4", idf_in("v4", g)),
            ("v5", idf_in("v5", g)),
            ("v6", idf_in("v6", g)),
        ] {
            let decoded = dir.path().join(format!("{}.{version}.png", g.stem));
            decompress(&file, &decoded);
            assert_eq!(
                read_gray_png(&decoded),
                read_gray_png(&png(g)),
                "{} {version}",
                g.stem
            );
        }
        let encoded = dir.path().join(format!("{}.idf", g.stem));
        compress(g, &encoded);
        assert!(
            std::fs::read(&encoded).unwrap() == std::fs::read(idf(g)).unwrap(),
            "{}: the encoder no longer writes the golden bytes",
            g.stem
        );
    }
}

#[test]
fn the_golden_archive_decodes_and_encodes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let chained = [
        ("v4", fixtures().join("v4/goldens-chained.idfa")),
        ("v5", fixtures().join("v5/goldens-chained.idfa")),
        (NEWEST, chained_archive()),
    ];
    let archives = ["v2", "v3", "v4", "v5", "v6"].map(|v| (v, archive_in(v)));
    for (version, file) in archives.into_iter().chain(chained) {
        let restored = dir
            .path()
            .join(format!("restored-{}", file.display()).replace('/', "_"));
        decompress(&file, &restored);
        for g in &GOLDEN {
            let name = format!("{}.png", g.stem);
            assert_eq!(
                read_gray_png(&restored.join(&name)),
                read_gray_png(&png(g)),
                "{version} {name}"
            );
        }
    }
    for (layout, golden) in [("independent", archive()), ("chained", chained_archive())] {
        let encoded = dir.path().join(format!("goldens-{layout}.idfa"));
        compress_archive(&encoded, layout);
        assert!(
            std::fs::read(&encoded).unwrap() == std::fs::read(&golden).unwrap(),
            "the encoder no longer writes the golden {layout} archive"
        );
    }
}

#[test]
fn colour_goldens_decode_and_encode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    for name in COLOUR_GOLDEN {
        for (version, file) in [
            ("v3", colour_idf_in("v3", name)),
            ("v4", colour_idf_in("v4", name)),
            ("v5", colour_idf_in("v5", name)),
            (NEWEST, colour_idf(name)),
        ] {
            let decoded = dir.path().join(format!("{version}-{name}"));
            decompress(&file, &decoded);
            assert_eq!(
                png_content(&decoded),
                png_content(&colour_png(name)),
                "{}",
                file.display()
            );
        }
        let encoded = dir.path().join(format!("{name}.idf"));
        compress_colour(name, &encoded);
        assert!(
            std::fs::read(&encoded).unwrap() == std::fs::read(colour_idf(name)).unwrap(),
            "{name}: the encoder no longer writes the golden bytes"
        );
    }
}

#[test]
fn info_shows_the_version() {
    for (file, version) in [
        (idf_v1(&GOLDEN[0]), "format version 1"),
        (idf_in("v2", &GOLDEN[0]), "format version 2"),
        (archive_in("v2"), "format version 2"),
        (idf_in("v3", &GOLDEN[0]), "format version 3"),
        (archive_in("v3"), "format version 3"),
        (idf_in("v4", &GOLDEN[0]), "format version 4"),
        (archive_in("v4"), "format version 4"),
        (idf_in("v5", &GOLDEN[0]), "format version 5"),
        (archive_in("v5"), "format version 5"),
        (idf(&GOLDEN[0]), "format version 6"),
        (archive(), "format version 6"),
        (chained_archive(), "chained"),
        // a run: four entries, three of them stored as one flags byte and a count
        (
            fixtures().join("v6/vae/run-chained.idfa"),
            "format version 6, 1368 bytes, 4 entries",
        ),
    ] {
        let text = ok(&["info".as_ref(), file.as_os_str()]);
        assert!(text.contains(version), "{}: {text}", file.display());
    }
}

#[test]
fn the_test_model_is_small_and_fixed() {
    let bytes = std::fs::read(model_path()).unwrap();
    assert!(bytes.len() < 100_000, "{} bytes", bytes.len());
    let model = idfcodec_codec::Idf::from_safetensors(&bytes).unwrap();
    assert_eq!(model.config(), &test_config());
}

/// Writes the golden PNGs from the datasets and their `.idf` files, where missing.
#[test]
#[ignore = "writes fixtures/; run by hand with --ignored"]
fn regenerate_golden_files() {
    use idfcodec::data::{load, Dataset, Split};
    std::fs::create_dir_all(fixtures()).unwrap();
    if !model_path().exists() {
        let model = idfcodec_codec::Idf::new_random(test_config(), MODEL_SEED).unwrap();
        let card = serde_json::json!({
            "note": "random weights for the golden-file tests; never change this file",
            "random_seed": MODEL_SEED,
        });
        std::fs::write(model_path(), model.to_safetensors(&card).unwrap()).unwrap();
    }
    let data = idfcodec::data::data_dir();
    let data = if data.is_absolute() {
        data
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(data)
    };
    let mnist = load(&data, Dataset::Mnist, Split::Test).unwrap();
    let fashion = load(&data, Dataset::FashionMnist, Split::Test).unwrap();
    let sources = [
        (28, 28, mnist.image(0).to_vec()),
        (28, 28, fashion.image(0).to_vec()),
        (83, 53, mosaic(&mnist, 83, 53)),
    ];
    for (g, (w, h, pixels)) in GOLDEN.iter().zip(sources) {
        if !png(g).exists() {
            write_gray_png(&png(g), w, h, &pixels);
        }
        if !idf(g).exists() {
            std::fs::create_dir_all(idf(g).parent().unwrap()).unwrap();
            compress(g, &idf(g));
        }
    }
    if !archive().exists() {
        compress_archive(&archive(), "independent");
    }
    if !chained_archive().exists() {
        compress_archive(&chained_archive(), "chained");
    }
    for name in COLOUR_GOLDEN {
        if !colour_idf(name).exists() {
            compress_colour(name, &colour_idf(name));
        }
    }
}

/// MNIST test images 1..=6 as a 3×2 mosaic (84×56), cropped to `width × height`.
fn mosaic(set: &idfcodec::data::ImageSet, width: usize, height: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(width * height);
    for y in 0..height {
        for x in 0..width {
            let image = set.image(1 + (y / 28) * 3 + x / 28);
            out.push(image[(y % 28) * 28 + x % 28]);
        }
    }
    out
}
