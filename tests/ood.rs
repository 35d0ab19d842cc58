//! `idfcodec ood` run as a user would, on tiny synthetic sets: the code lengths in its CSV are
//! the sizes of the files `idfcodec compress` writes for the same images (model and context
//! coder) and of PNG at best compression; uniform noise separates from smooth images under the
//! embedded MNIST model; bad sets and arguments give clear errors; tiny flow and hvae training
//! runs score images by their per-image bounds (`train` feature).

mod cli_common;
#[cfg(feature = "train")]
mod common;

use std::collections::HashMap;
use std::path::Path;

use cli_common::{fails, ok, pattern, write_gray_png};
use image::codecs::png::{CompressionType, FilterType, PngEncoder};

/// Writes `n` 28×28 smooth gray patterns into `dir` (a folder of same-sized images).
fn write_patterns(dir: &Path, n: u64, side: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for seed in 0..n {
        let path = dir.join(format!("p{seed:02}.png"));
        write_gray_png(&path, side, side, &pattern(side, side, seed));
    }
}

/// The CSV's rows as column → value maps.
fn read_csv(path: &Path) -> Vec<HashMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    lines
        .map(|line| {
            let cells: Vec<&str> = line.split(',').collect();
            assert_eq!(cells.len(), header.len(), "{line}");
            header
                .iter()
                .cloned()
                .zip(cells.into_iter().map(String::from))
                .collect()
        })
        .collect()
}

fn size_of_compressed(input: &Path, out: &Path, extra: &[&str]) -> u64 {
    let mut args = vec![
        "compress".to_string(),
        input.display().to_string(),
        "-o".into(),
        out.display().to_string(),
        "--force".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    ok(&args);
    std::fs::metadata(out).unwrap().len()
}

#[test]
fn code_lengths_are_real_files_and_noise_separates() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("in");
    write_patterns(&images, 4, 28);
    let csv = tmp.path().join("ood.csv");
    let plot = tmp.path().join("ood.png");
    let stdout = ok(&[
        "ood",
        "--model",
        "mnist",
        "--in-dist",
        images.to_str().unwrap(),
        "--ood",
        "noise",
        "--ood",
        "constant",
        "--limit",
        "4",
        "--csv",
        csv.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
    ]);
    let rows = read_csv(&csv);
    assert_eq!(rows.len(), 12, "4 images in each of 3 sets");
    assert!(std::fs::metadata(&plot).unwrap().len() > 1000);
    // the in-distribution rows are the files in name order: code each one as a user would
    let coded = tmp.path().join("x.idf");
    for (i, row) in rows.iter().filter(|r| r["role"] == "in").enumerate() {
        let png = images.join(format!("p{i:02}.png"));
        assert_eq!(row["index"], i.to_string());
        // effort 4 with a given model codes with that model only; effort 1 context-codes
        let model = size_of_compressed(&png, &coded, &["--model", "mnist", "--effort", "4"]);
        assert_eq!(row["coded_bytes"], model.to_string(), "{row:?}");
        let context = size_of_compressed(&png, &coded, &["--effort", "1"]);
        assert_eq!(row["context_bytes"], context.to_string(), "{row:?}");
        let pixels = image::open(&png).unwrap();
        let mut best = Vec::new();
        pixels
            .write_with_encoder(PngEncoder::new_with_quality(
                &mut best,
                CompressionType::Best,
                FilterType::Adaptive,
            ))
            .unwrap();
        assert_eq!(row["png_bytes"], best.len().to_string(), "{row:?}");
        // the scores are the measurements in bits per sub-pixel
        let nll: f64 = row["nll_bits"].parse().unwrap();
        let score: f64 = row["nll-png"].parse().unwrap();
        let expected = (nll - best.len() as f64 * 8.0) / 784.0;
        assert!((score - expected).abs() < 1e-4, "{score} vs {expected}");
    }
    // uniform noise costs about 8 bits per pixel under any model of digits; these smooth
    // patterns far less
    let line = stdout
        .lines()
        .find(|l| l.starts_with("| noise | nll |"))
        .unwrap_or_else(|| panic!("no noise/nll row in:\n{stdout}"));
    assert!(line.contains("| 1.000 | 1.000 | 0.000 |"), "{line}");
    assert!(stdout.contains("model: mnist (IDF, exact NLL"), "{stdout}");
}

#[test]
fn sets_of_another_size_need_fit() {
    let tmp = tempfile::tempdir().unwrap();
    let (small, large) = (tmp.path().join("small"), tmp.path().join("large"));
    write_patterns(&small, 2, 28);
    write_patterns(&large, 2, 40);
    let args = |fit: bool| {
        let mut a = vec![
            "ood".to_string(),
            "--model".into(),
            "mnist".into(),
            "--in-dist".into(),
            small.display().to_string(),
            "--ood".into(),
            large.display().to_string(),
            "--limit".into(),
            "2".into(),
        ];
        if fit {
            a.push("--fit".into());
        }
        a
    };
    let err = fails(&args(false));
    assert!(err.contains("40×40 gray") && err.contains("--fit"), "{err}");
    let out = ok(&args(true));
    assert!(out.contains("40×40 gray → 28×28 gray"), "{out}");
}

#[test]
fn bad_sets_and_arguments_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("in");
    write_patterns(&images, 2, 28);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let missing = tmp.path().join("missing");
    let run = |model: &str, in_dist: &Path, ood: &str, limit: &str| {
        fails(&[
            "ood",
            "--model",
            model,
            "--in-dist",
            in_dist.to_str().unwrap(),
            "--ood",
            ood,
            "--limit",
            limit,
        ])
    };
    let err = run("mnist", &missing, "noise", "2");
    assert!(err.contains(&missing.display().to_string()), "{err}");
    let err = run("mnist", &images, empty.to_str().unwrap(), "2");
    assert!(err.contains("no .png/.jpg/.jpeg images"), "{err}");
    let err = run("mnist", &images, "noise", "0");
    assert!(err.contains("at least 1"), "{err}");
    let err = run("mnist", Path::new("noise"), "constant", "2");
    assert!(err.contains("cannot be that set"), "{err}");
    let err = run("no-such-model", &images, "noise", "2");
    assert!(err.contains("no-such-model"), "{err}");
    let err = run("mnist", &images, "patches:0:x", "2");
    assert!(err.contains("patch size"), "{err}");
    // an RGB model on gray images
    let err = run("photos", &images, "noise", "2");
    assert!(err.contains("3-channel"), "{err}");
}

/// The AUROC of `set` under `score` in `ood`'s separation table (`stdout`).
#[cfg(feature = "train")]
fn auroc(stdout: &str, set: &str, score: &str) -> f64 {
    let row = format!("| {set} | {score} |");
    let line = stdout
        .lines()
        .find(|l| l.starts_with(&row))
        .unwrap_or_else(|| panic!("no {row} row in:\n{stdout}"));
    line.split('|').nth(3).unwrap().trim().parse().unwrap()
}

/// A Glow and an hvae trained 300 steps on MNIST: `ood --model run:DIR` scores MNIST test
/// images and uniform noise by the run's per-image bound (the Glow's dequantization bound, the
/// hvae's IWAE bound), finite, noise far above the digits; a run whose weights are gone says so.
#[cfg(feature = "train")]
#[test]
fn flow_and_hvae_runs_score_images_by_their_bound_and_noise_separates() {
    let data_dir = common::fetched("mnist");
    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).to_str().unwrap().to_string();
    let models = [
        (
            "glow",
            "levels = 2\nsteps = 1\nhidden = 8",
            "Glow run, dequantization bound",
        ),
        (
            "hvae",
            "latents = [8, 4]\nhidden = 32",
            "hierarchical VAE run, IWAE bound with K = 100",
        ),
    ];
    for (family, fields, likelihood) in models {
        let config = path(&format!("{family}.toml"));
        let text = format!(
            "version = 2\n[model]\nfamily = \"{family}\"\n{fields}\n[data]\ndataset = \"mnist\"\n\
             [train]\nbatch_size = 32\nsteps = 300\nlr = 3e-3\neval_every = 0\neval_images = 200\n"
        );
        std::fs::write(&config, text).unwrap();
        let run = path(family);
        let out = ok(&[
            "train",
            "--config",
            &config,
            "--out",
            &run,
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--threads",
            "1",
            "--quiet",
        ]);
        assert!(out.contains("finished"), "{family}: {out}");
        let csv = path(&format!("{family}.csv"));
        let model = format!("run:{run}");
        let stdout = ok(&[
            "ood",
            "--model",
            &model,
            "--in-dist",
            "mnist:test",
            "--ood",
            "noise",
            "--limit",
            "50",
            "--csv",
            &csv,
        ]);
        assert!(
            stdout.contains(&format!("model: {model} ({likelihood}")),
            "{stdout}"
        );
        let rows = read_csv(Path::new(&csv));
        assert_eq!(rows.len(), 100, "50 images in each of 2 sets");
        let bpd = |role: &str| -> Vec<f64> {
            rows.iter()
                .filter(|r| r["role"] == role)
                .map(|r| r["nll_bits"].parse::<f64>().unwrap() / 784.0)
                .collect()
        };
        let (digits, noise) = (bpd("in"), bpd("ood"));
        assert!(
            digits
                .iter()
                .chain(&noise)
                .all(|b| b.is_finite() && *b > 0.0),
            "{family}: {digits:?} {noise:?}"
        );
        // a model of digits that learnt anything rates uniform noise (8 bits per pixel at best
        // under a uniform model) far below them
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        eprintln!(
            "{family}: digits {:.3} bpd, noise {:.3} bpd",
            mean(&digits),
            mean(&noise)
        );
        assert!(
            mean(&noise) > mean(&digits) + 1.0,
            "{family}: {digits:?} {noise:?}"
        );
        assert!(auroc(&stdout, "noise", "nll") > 0.99, "{family}: {stdout}");
    }
    // the weights gone: the error names the run and the missing file
    let run = path("glow");
    std::fs::remove_file(Path::new(&run).join("checkpoint.safetensors")).unwrap();
    let err = fails(&[
        "ood",
        "--model",
        &format!("run:{run}"),
        "--in-dist",
        "mnist:test",
        "--ood",
        "noise",
    ]);
    assert!(
        err.contains("weights of the glow run") && err.contains("checkpoint.safetensors"),
        "{err}"
    );
}
