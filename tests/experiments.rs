//! `idfcodec experiment run`: a tiny sweep (2 variants × a few steps on MNIST) runs end to end
//! and writes a table with one row per variant and the figures; running it again skips the
//! finished variants; a bad sweep file is a clear error.
#![cfg(feature = "train")]

mod common;
mod generative_common;

use idfcodec::experiments::{self, Budget, Options, Sweep};
use std::path::Path;
use tch::Device;

/// A sweep of two MLP VAEs (latent 2 and 3) of 3 steps on MNIST, FID on 40 samples.
fn tiny_sweep(dir: &Path) -> std::path::PathBuf {
    let data = common::fetched("mnist");
    std::fs::write(
        dir.join("base.toml"),
        format!(
            "version = 2\n[model]\nfamily = \"vae\"\narch = \"mlp\"\nin_channels = 1\n\
             image_size = 28\nlatent = 4\nhidden = 16\n[data]\ndataset = \"mnist\"\ndir = {:?}\n\
             [train]\nbatch_size = 16\nwarmup_steps = 0\nsteps = 50\nseed = 3\neval_every = 2\n\
             eval_images = 32\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let sweep = dir.join("tiny.toml");
    std::fs::write(
        &sweep,
        "title = \"tiny\"\nbase = \"base.toml\"\nsteps = 3\n[report]\nsamples = 40\n\
         [[variant]]\nname = \"z2\"\nset = { \"model.latent\" = 2 }\n\
         [[variant]]\nname = \"z3\"\nset = { \"model.latent\" = 3 }\n",
    )
    .unwrap();
    sweep
}

#[test]
fn a_sweep_runs_end_to_end_and_resumes() {
    let _guard = generative_common::lock();
    let dir = tempfile::tempdir().unwrap();
    let sweep = Sweep::from_file(&tiny_sweep(dir.path()), Budget::AsWritten).unwrap();
    assert_eq!(sweep.runs.len(), 2);
    let out = dir.path().join("out");
    let options = Options {
        out: out.clone(),
        device: Device::Cpu,
        quiet: true,
    };
    let lines = std::cell::RefCell::new(Vec::new());
    let rows =
        experiments::run(&sweep, &options, |l| lines.borrow_mut().push(l.to_string())).unwrap();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        let r = row.result.as_ref().expect("every run finished");
        assert_eq!(r.steps, 3);
        assert!(r.test_value.is_finite() && r.test_value > 0.0);
        assert!(r.fid.is_some_and(|f| f.is_finite() && f > 0.0));
        assert!(r.parts.iter().any(|(n, _)| n == "kl_nats"));
    }

    let csv = std::fs::read_to_string(out.join("table.csv")).unwrap();
    let lines_csv: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines_csv.len(),
        3,
        "a header and one row per variant:\n{csv}"
    );
    assert!(lines_csv[1].starts_with("mnist,z2,") && lines_csv[2].starts_with("mnist,z3,"));
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert_eq!(md.lines().filter(|l| l.starts_with("| mnist |")).count(), 2);
    assert!(!md.contains("pending"));
    for f in [
        "mnist-curves.png",
        "mnist-z2-samples.png",
        "mnist-z2-reconstructions.png",
        "mnist-z2-interpolations.png",
        "mnist-z3-samples.png",
    ] {
        let img = image::open(out.join("figures").join(f)).unwrap();
        assert!(img.width() > 0, "{f}");
    }
    let samples = image::open(out.join("figures/mnist-z2-samples.png")).unwrap();
    let grid = image::open(out.join("figures/mnist-z2-reconstructions.png")).unwrap();
    assert!(
        samples.height() > grid.height(),
        "8×8 samples are taller than 2×8 reconstructions"
    );

    // again: both variants are skipped, nothing is retrained, the table is the same
    let ckpt = out.join("runs/mnist/z2/checkpoint.safetensors");
    let before = std::fs::metadata(&ckpt).unwrap().modified().unwrap();
    let lines = std::cell::RefCell::new(Vec::new());
    let again =
        experiments::run(&sweep, &options, |l| lines.borrow_mut().push(l.to_string())).unwrap();
    let lines = lines.into_inner();
    assert_eq!(
        lines.iter().filter(|l| l.contains("skipped")).count(),
        2,
        "{lines:?}"
    );
    assert_eq!(
        std::fs::metadata(&ckpt).unwrap().modified().unwrap(),
        before
    );
    assert_eq!(std::fs::read_to_string(out.join("table.csv")).unwrap(), csv);
    assert_eq!(again[0].result, rows[0].result);

    // a larger budget continues the runs from their checkpoints
    let longer = Sweep::from_file(&sweep.path, Budget::Steps(4)).unwrap();
    let rows = experiments::run(&longer, &options, |_| {}).unwrap();
    assert!(rows.iter().all(|r| r.result.as_ref().unwrap().steps == 4));
    let log = std::fs::read_to_string(out.join("runs/mnist/z3/log.csv")).unwrap();
    assert!(log.lines().count() >= 3, "{log}");
}

#[test]
fn an_unfinished_variant_is_pending_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let sweep = Sweep::from_file(&tiny_sweep(dir.path()), Budget::AsWritten).unwrap();
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    experiments::report::write(
        &sweep,
        &out,
        &sweep
            .runs
            .iter()
            .map(|r| experiments::Row {
                variant: r.variant.clone(),
                dataset: r.dataset.clone(),
                result: None,
            })
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let md = std::fs::read_to_string(out.join("table.md")).unwrap();
    assert_eq!(md.matches("pending").count(), 2, "{md}");
}

#[test]
fn a_bad_sweep_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    tiny_sweep(dir.path());
    let bad = dir.path().join("bad.toml");
    let cases = [
        ("base = \"base.toml\"\n", "no [[variant]]"),
        (
            "base = \"base.toml\"\n[[variant]]\nname = \"a\"\nset = { \"model.latnt\" = 3 }\n",
            "latnt",
        ),
        (
            "base = \"missing.toml\"\n[[variant]]\nname = \"a\"\n",
            "missing.toml",
        ),
        (
            "base = \"base.toml\"\nsteps = \"many\"\n[[variant]]\nname = \"a\"\n",
            "steps",
        ),
        (
            "base = \"base.toml\"\n[[variant]]\nname = \"a\"\n[[variant]]\nname = \"a\"\n",
            "two variants",
        ),
    ];
    for (text, needle) in cases {
        std::fs::write(&bad, text).unwrap();
        let e = Sweep::from_file(&bad, Budget::AsWritten).unwrap_err();
        assert!(e.contains("bad.toml") && e.contains(needle), "{e}");
    }
    // and through the binary: an error message and a failing exit status, no panic
    std::fs::write(&bad, cases[1].0).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idfcodec"))
        .args(["experiment", "run"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("latnt") && !stderr.contains("panicked"),
        "{stderr}"
    );
}
