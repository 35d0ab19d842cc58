//! `idfcodec bench` run as a user would, with PNG as the only baseline (no external tools
//! needed): the CSV's rows and columns, positive sizes, checked round trips, the plot, and
//! images idfcodec does not code yet.

mod cli_common;

use std::collections::HashMap;
use std::path::Path;

use cli_common::{fails, ok, pattern, random_model, write_gray_png};

const COLUMNS: [&str; 15] = [
    "codec",
    "family",
    "images",
    "verified",
    "unsupported",
    "failed",
    "bytes",
    "subpixels",
    "raw_bytes",
    "bpd",
    "vs_png",
    "encode_mb_s",
    "decode_mb_s",
    "peak_mib",
    "settings",
];

/// The CSV's rows as column → value maps (settings, the last column, may hold commas).
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header, COLUMNS);
    lines
        .map(|line| {
            let cells: Vec<&str> = line.splitn(COLUMNS.len(), ',').collect();
            assert_eq!(cells.len(), COLUMNS.len(), "{line}");
            COLUMNS
                .iter()
                .zip(cells)
                .map(|(c, v)| (c.to_string(), v.trim_matches('"').to_string()))
                .collect()
        })
        .collect()
}

fn number(row: &HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = {:?} in {row:?}", row[column]))
}

#[test]
fn bench_against_png_writes_checked_figures() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bench.csv");
    let plot = dir.path().join("bench.png");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let out = ok(&[
        "bench".as_ref(),
        fixtures.join("mnist-test-0.png").as_os_str(),
        fixtures.join("fashion-mnist-test-0.png").as_os_str(),
        "--against".as_ref(),
        "png".as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
        "--plot".as_ref(),
        plot.as_os_str(),
    ]);
    assert!(out.contains("| idfcodec "), "{out}");
    let rows = read_csv(&csv);
    let names: Vec<&str> = rows.iter().map(|r| r["codec"].as_str()).collect();
    assert_eq!(names, ["idfcodec", "png"]);
    for row in &rows {
        assert_eq!(row["images"], "2");
        // every image was coded and decoded back to identical pixels
        assert_eq!(row["verified"], "2", "{row:?}");
        assert_eq!(
            (row["unsupported"].as_str(), row["failed"].as_str()),
            ("0", "0")
        );
        assert_eq!(row["subpixels"], (2 * 28 * 28).to_string());
        assert!(
            number(row, "bpd") > 0.0 && number(row, "bpd") < 16.0,
            "{row:?}"
        );
        assert!(number(row, "encode_mb_s") > 0.0 && number(row, "decode_mb_s") > 0.0);
        let bytes = number(row, "bytes");
        assert!(
            (number(row, "bpd") - bytes * 8.0 / 1568.0).abs() < 1e-4,
            "{row:?}"
        );
    }
    assert_eq!(rows[0]["family"], "idfcodec");
    assert_eq!(rows[1]["vs_png"], "1.00000");
    assert!(number(&rows[0], "vs_png") > 0.0);
    let picture = image::open(&plot).unwrap();
    assert_eq!((picture.width(), picture.height()), (1400, 600));

    // outputs are not replaced without --force
    let one = fixtures.join("mnist-test-0.png");
    let again = [
        "bench".as_ref(),
        one.as_os_str(),
        "--against".as_ref(),
        "png".as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
    ];
    assert!(fails(&again).contains("already exists"));
}

#[test]
fn one_entry_per_model_and_rgb_images_context_coded() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for (i, (w, h)) in [(20, 12), (9, 31), (16, 16)].into_iter().enumerate() {
        let path = images.join(format!("{i}.png"));
        write_gray_png(&path, w, h, &pattern(w, h, i as u64));
    }
    image::RgbImage::from_fn(10, 6, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 7]))
        .save(images.join("3-rgb.png"))
        .unwrap();
    let model = random_model(dir.path(), 5);
    let csv = dir.path().join("bench.csv");
    let out = ok(&[
        "bench".as_ref(),
        images.as_os_str(),
        "--limit".as_ref(),
        "4".as_ref(),
        "--against".as_ref(),
        "png".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
        "--model".as_ref(),
        "fashion-mnist".as_ref(),
        // effort 4: the models code the gray images (5 would keep the context coder's files
        // where they are smaller)
        "--effort".as_ref(),
        "4".as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
    ]);
    assert!(!out.contains("unsupported"), "{out}");
    let rows = read_csv(&csv);
    let names: Vec<&str> = rows.iter().map(|r| r["codec"].as_str()).collect();
    assert_eq!(
        names,
        [
            format!("idfcodec:{}", model.display()).as_str(),
            "idfcodec:fashion-mnist",
            "png"
        ]
    );
    // the models code the gray images, the RGB one is context-coded: 3 sub-pixels a pixel
    for row in &rows {
        assert_eq!(row["images"], "4");
        assert_eq!(row["verified"], "4");
        assert_eq!(
            row["subpixels"],
            (20 * 12 + 9 * 31 + 16 * 16 + 10 * 6 * 3).to_string()
        );
        assert!(number(row, "bpd") > 0.0);
    }
    assert_ne!(
        rows[0]["bytes"], rows[1]["bytes"],
        "each model codes the gray images"
    );

    // --limit takes the first images in name order
    let out = ok(&[
        "bench".as_ref(),
        images.as_os_str(),
        "--limit".as_ref(),
        "1".as_ref(),
        "--against".as_ref(),
        "png".as_ref(),
        "--model".as_ref(),
        model.as_os_str(),
    ]);
    assert!(out.contains(": 1 images"), "{out}");
}

#[test]
fn archive_rows_code_the_images_as_one_checked_archive() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("bench.csv");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let vae = fixtures.join("test-vae.safetensors");
    let names = [
        "mnist-test-0.png",
        "fashion-mnist-test-0.png",
        "mnist-mosaic-83x53.png",
    ];
    let mut args: Vec<&std::ffi::OsStr> = vec!["bench".as_ref()];
    let paths: Vec<_> = names.iter().map(|n| fixtures.join(n)).collect();
    args.extend(paths.iter().map(|p| p.as_os_str()));
    args.extend([
        "--against".as_ref(),
        "png".as_ref(),
        "--model".as_ref(),
        vae.as_os_str(),
        "--effort".as_ref(),
        "4".as_ref(),
        "--archive".as_ref(),
        "--csv".as_ref(),
        csv.as_os_str(),
    ]);
    let out = ok(&args);
    assert!(out.contains(" archive "), "{out}");
    let rows = read_csv(&csv);
    let got: Vec<&str> = rows.iter().map(|r| r["codec"].as_str()).collect();
    let entry = format!("idfcodec:{}", vae.display());
    assert_eq!(
        got,
        [entry.as_str(), "png", format!("{entry} archive").as_str()]
    );
    let (lone, archive) = (&rows[0], &rows[2]);
    assert_eq!(archive["images"], "3");
    assert_eq!(archive["verified"], "3", "{archive:?}");
    assert_eq!(archive["subpixels"], lone["subpixels"]);
    assert_eq!(archive["subpixels"], (2 * 28 * 28 + 83 * 53).to_string());
    let bytes = number(archive, "bytes");
    assert!(bytes > 0.0);
    assert!((number(archive, "bpd") - bytes * 8.0 / number(archive, "subpixels")).abs() < 1e-4);
    // vs PNG compares the one archive with PNG's three files
    let png = number(&rows[1], "bytes");
    assert!(
        (number(archive, "vs_png") - bytes / png).abs() < 1e-4,
        "{archive:?}"
    );
    assert!(archive["settings"].contains("the 3 images as one archive"));

    // images of several pixel formats make no archive: the row says so, the run goes on
    let images = dir.path().join("mixed");
    std::fs::create_dir(&images).unwrap();
    write_gray_png(&images.join("0.png"), 8, 8, &pattern(8, 8, 1));
    image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([x as u8, y as u8, 7]))
        .save(images.join("1-rgb.png"))
        .unwrap();
    let out = ok(&[
        "bench".as_ref(),
        images.as_os_str(),
        "--against".as_ref(),
        "png".as_ref(),
        "--archive".as_ref(),
        "--csv".as_ref(),
        dir.path().join("mixed.csv").as_os_str(),
    ]);
    let rows = read_csv(&dir.path().join("mixed.csv"));
    let archive = rows
        .iter()
        .find(|r| r["codec"] == "idfcodec archive")
        .unwrap();
    assert_eq!(archive["unsupported"], "2", "{out}");
    assert_eq!(archive["verified"], "0");
}

#[test]
fn unknown_codecs_and_models_are_refused() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let err = fails(&[
        "bench".as_ref(),
        fixtures.join("mnist-test-0.png").as_os_str(),
        "--against".as_ref(),
        "png,gif".as_ref(),
    ]);
    assert!(err.contains("unknown codec 'gif'"), "{err}");
    let err = fails(&[
        "bench".as_ref(),
        fixtures.join("mnist-test-0.png").as_os_str(),
        "--against".as_ref(),
        "png".as_ref(),
        "--model".as_ref(),
        "no-such-model".as_ref(),
    ]);
    assert!(err.contains("no-such-model"), "{err}");
}
