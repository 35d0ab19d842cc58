//! Experiments as data: a sweep file ([`sweep`]) names a base run config, variants of it, the
//! datasets, the step budget and what to report; [`run`] trains every run through
//! [`crate::train::run`], evaluates it ([`crate::train::evaluate_run`]), measures FID and KID of
//! its samples against the test split with the dataset's shipped feature classifier
//! ([`crate::metrics`]), draws its figures ([`crate::nn::generative`]) and writes the table
//! ([`report`]).
//!
//! Output folder:
//! - `runs/DATASET/VARIANT/` — each run's folder (checkpoint, `log.csv`, plots) and, once it is
//!   finished and measured, its `result.json`;
//! - `figures/DATASET-curves.png` (test figure against steps, one line per variant) and
//!   `figures/DATASET-VARIANT-{samples,reconstructions,interpolations}.png`;
//! - `table.md` and `table.csv`, one row per run, rewritten after each run (pending runs say so).
//!
//! Resumable: a run whose `result.json` records the sweep's steps is skipped; an unfinished one
//! continues from its checkpoint.

pub mod report;
pub mod sweep;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tch::Device;

use crate::data::{self, Dataset, Split};
use crate::metrics::features::{self, torchscript::TorchScriptOptions, FeatureChoice, Features};
use crate::metrics::{fid, kid, source::ImageSource};
use crate::nn::generative::{self, Ends};
use crate::train::{self, checkpoint, log, TrainJob};
pub use sweep::{Budget, Report, Sweep};

/// How to run a sweep.
#[derive(Debug, Clone)]
pub struct Options {
    /// The output folder.
    pub out: PathBuf,
    pub device: Device,
    /// No training progress bars.
    pub quiet: bool,
}

/// What a finished run measured (`result.json` in its folder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub variant: String,
    pub dataset: String,
    pub model: String,
    pub parameters: usize,
    pub steps: usize,
    pub batch_size: usize,
    /// Training time of the run in seconds (all chunks).
    pub train_seconds: f64,
    /// The family's test figure (its log's `test` column) on the whole test split, and its name.
    pub test_name: String,
    pub test_value: f64,
    /// The evaluation's further figures (a VAE: the ELBO's terms in nats and bits/dim).
    pub parts: Vec<(String, f64)>,
    pub test_images: i64,
    /// FID/KID of `samples` samples (seed 0) against the first `samples` test images.
    pub fid: Option<f64>,
    pub kid: Option<(f64, f64)>,
    pub samples: usize,
    /// The feature net of FID/KID, or why there is none.
    pub features: String,
}

/// One row of the table: a run's result, or that it is still pending.
#[derive(Debug, Clone)]
pub struct Row {
    pub variant: String,
    pub dataset: String,
    pub result: Option<RunResult>,
}

/// Runs (or resumes) every run of `sweep`, writing the table after each; returns the rows.
/// `progress` hears a line per run.
pub fn run(sweep: &Sweep, options: &Options, progress: impl Fn(&str)) -> Result<Vec<Row>> {
    let out = &options.out;
    std::fs::create_dir_all(out.join("figures"))
        .with_context(|| format!("cannot create {}", out.join("figures").display()))?;
    let mut rows: Vec<Row> = sweep
        .runs
        .iter()
        .map(|r| Row {
            variant: r.variant.clone(),
            dataset: r.dataset.clone(),
            result: read_result(&run_dir(out, r), r.config.train.steps),
        })
        .collect();
    report::write(sweep, out, &rows)?;
    let mut test_features: Vec<(String, usize, Features)> = Vec::new();
    for (k, r) in sweep.runs.iter().enumerate() {
        let tag = format!(
            "[{}/{}] {}/{}",
            k + 1,
            sweep.runs.len(),
            r.dataset,
            r.variant
        );
        if rows[k].result.is_some() {
            progress(&format!("{tag}: done already, skipped"));
            continue;
        }
        progress(&format!(
            "{tag}: {} for {} steps of batch {}",
            r.config.model.name(),
            r.config.train.steps,
            r.config.train.batch_size
        ));
        let result = run_one(sweep, r, options, &mut test_features)
            .with_context(|| format!("{}: {}/{}", sweep.path.display(), r.dataset, r.variant))?;
        progress(&format!("{tag}: {}", report::summary(&result)));
        rows[k].result = Some(result);
        report::write(sweep, out, &rows)?;
        if sweep.report.wants("curves") {
            curves(sweep, out, &r.dataset)?;
        }
    }
    Ok(rows)
}

/// A run's folder.
pub fn run_dir(out: &Path, r: &sweep::Run) -> PathBuf {
    out.join("runs").join(&r.dataset).join(&r.variant)
}

/// The run's `result.json` if it holds a result for `steps` steps.
fn read_result(dir: &Path, steps: usize) -> Option<RunResult> {
    let text = std::fs::read_to_string(dir.join("result.json")).ok()?;
    let result: RunResult = serde_json::from_str(&text).ok()?;
    (result.steps == steps).then_some(result)
}

/// Trains (or resumes) one run to its end, then measures it and draws its figures.
fn run_one(
    sweep: &Sweep,
    r: &sweep::Run,
    options: &Options,
    test_features: &mut Vec<(String, usize, Features)>,
) -> Result<RunResult> {
    let dir = run_dir(&options.out, r);
    let job = TrainJob {
        config: r.config.clone(),
        out_dir: dir.clone(),
        resume: checkpoint::exists(&dir),
        device: options.device,
        max_minutes: None,
        chunk_steps: None,
        quiet: options.quiet,
    };
    let data = train::load_data(&r.config)?;
    let report = train::run(&job, &data)?;
    drop(data);
    anyhow::ensure!(report.finished, "training stopped before its last step");
    let state = checkpoint::read_state(&dir)?;
    let (evaluation, test_images) = train::evaluate_run(&dir, &state.config, None, options.device)?;

    let samples = sweep.report.samples;
    let (fid, kid, features) = match r.dataset.parse::<Dataset>() {
        Ok(ds) if samples > 0 => {
            let data_dir = if r.config.data.dir.as_os_str().is_empty() {
                data::data_dir()
            } else {
                r.config.data.dir.clone()
            };
            let (fid, kid, name) =
                sample_quality(&dir, ds, &data_dir, samples, options, test_features)?;
            (Some(fid), Some(kid), name)
        }
        Ok(_) => (None, None, "not asked for (report.samples = 0)".into()),
        Err(_) => (
            None,
            None,
            format!("no feature net shipped for {}", r.dataset),
        ),
    };
    figures(sweep, r, &dir, options)?;
    let result = RunResult {
        variant: r.variant.clone(),
        dataset: r.dataset.clone(),
        model: r.config.model.name().to_string(),
        parameters: report.parameters,
        steps: state.step,
        batch_size: r.config.train.batch_size,
        train_seconds: state.train_seconds,
        test_name: r.config.model.log_columns().test,
        test_value: evaluation.total,
        parts: evaluation.parts,
        test_images,
        fid,
        kid,
        samples,
        features,
    };
    let json = serde_json::to_string_pretty(&result)?;
    std::fs::write(dir.join("result.json"), json)
        .with_context(|| format!("cannot write {}", dir.join("result.json").display()))?;
    Ok(result)
}

/// FID and KID (mean, spread) of `n` samples of the run (seed 0) against the first `n` test
/// images, with the dataset's shipped classifier, and the features' description.
fn sample_quality(
    dir: &Path,
    ds: Dataset,
    data_dir: &Path,
    n: usize,
    options: &Options,
    test_features: &mut Vec<(String, usize, Features)>,
) -> Result<(f64, (f64, f64), String)> {
    const BATCH: usize = 500;
    let net = features::open(
        &FeatureChoice::Shipped(ds),
        &TorchScriptOptions::default(),
        options.device,
    )?;
    let test = ImageSource::Dataset {
        dataset: ds,
        split: Split::Test,
        start: None,
        end: Some(n),
    };
    let key = ds.to_string();
    if !test_features.iter().any(|(k, m, _)| *k == key && *m == n) {
        let f = features::features_of(&*net, &test, data_dir, Some(n), BATCH)?;
        test_features.push((key.clone(), n, f));
    }
    let (_, _, real) = test_features
        .iter()
        .find(|(k, m, _)| *k == key && *m == n)
        .expect("just computed");
    let fake = features::features_of(
        &*net,
        &ImageSource::Run(dir.to_path_buf()),
        data_dir,
        Some(n),
        BATCH,
    )?;
    let d = fid::fid(&fake.features, &real.features).map_err(anyhow::Error::msg)?;
    let options = kid::KidOptions {
        subset_size: (n / 2).max(2),
        ..Default::default()
    };
    let k = kid::kid(&fake.features, &real.features, options).map_err(anyhow::Error::msg)?;
    let what = format!(
        "{}, {} samples (seed 0) vs {test}; KID over {} subsets of {}",
        net.name(),
        fake.features.nrows(),
        k.subsets,
        k.subset_size
    );
    Ok((d, (k.mean, k.std), what))
}

/// The run's figure files, as the sweep names them.
pub fn figure_path(out: &Path, r: &sweep::Run, figure: &str) -> PathBuf {
    out.join("figures")
        .join(format!("{}-{}-{figure}.png", r.dataset, r.variant))
}

/// Draws the run's sample grid (64, seed 0), and for a model with an encoder its
/// reconstructions (8 test images over theirs) and interpolations (4 pairs of test images, 8
/// steps); a model without one interpolates between prior latents.
fn figures(sweep: &Sweep, r: &sweep::Run, dir: &Path, options: &Options) -> Result<()> {
    let want = |f: &str| sweep.report.wants(f);
    if !(want("samples") || want("reconstructions") || want("interpolations")) {
        return Ok(());
    }
    let (model, state) = generative::load_run(dir, options.device)?;
    let write = |figure: &str, png: Vec<u8>| -> Result<()> {
        let path = figure_path(&options.out, r, figure);
        std::fs::write(&path, png).with_context(|| format!("cannot write {}", path.display()))
    };
    if want("samples") {
        let images = generative::sample(model.as_ref(), 64, 0);
        write("samples", generative::grid_png(&images, 8)?)?;
    }
    if want("reconstructions") && model.has_encoder() {
        let images = generative::images_for(&state, "test", 8, 0)?;
        let both = generative::reconstruct(model.as_ref(), &images).map_err(anyhow::Error::msg)?;
        write("reconstructions", generative::grid_png(&both, 8)?)?;
    }
    if want("interpolations") {
        let grid = if model.has_encoder() {
            let images = generative::images_for(&state, "test", 8, 0)?;
            generative::interpolate(model.as_ref(), Ends::Images(&images), 8)
        } else {
            generative::interpolate(model.as_ref(), Ends::Prior { rows: 4, seed: 0 }, 8)
        };
        write(
            "interpolations",
            generative::grid_png(&grid.map_err(anyhow::Error::msg)?, 8)?,
        )?;
    }
    Ok(())
}

/// `figures/DATASET-curves.png`: each finished or started run's test figure against steps (from
/// its `log.csv`), one line per variant.
fn curves(sweep: &Sweep, out: &Path, dataset: &str) -> Result<()> {
    let mut series = Vec::new();
    let mut y_label = None;
    for r in sweep.runs.iter().filter(|r| r.dataset == dataset) {
        let rows = log::read(&run_dir(out, r).join("log.csv"), usize::MAX);
        let line: Vec<(f64, f64)> = rows
            .iter()
            .filter_map(|row| row.test_bpd.map(|t| (row.step as f64, t)))
            .collect();
        // one figure per plot: runs of another family's test figure (a GAN beside VAEs) are
        // left out
        let test = r.config.model.log_columns().test;
        if *y_label.get_or_insert_with(|| test.clone()) == test {
            series.push((r.variant.clone(), line));
        }
    }
    let path = out.join("figures").join(format!("{dataset}-curves.png"));
    log::plot_lines(
        &path,
        &format!("{} on {dataset}", sweep.title),
        "step",
        y_label.map(|t| format!("test {t}")).as_deref(),
        &series,
    )?;
    Ok(())
}
