//! `idfcodec ood`: out-of-distribution detection from a model's likelihood and real code
//! lengths against generic coders (the machinery is in `crate::ood`).

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};
use clap::Args;

use super::io;
use crate::data::data_dir;
use crate::ood::complexity::Generic;
use crate::ood::model::{self, RunOptions};
use crate::ood::sets::{Fit, Geometry, SetSpec};
use crate::ood::{compare, measure, plot, report, MeasuredSet, Score};

#[derive(Debug, Args)]
#[command(after_help = "\
Sets (--in-dist, --ood): a dataset split (mnist:test, fashion-mnist:train[..1000]), a folder of
same-sized PNG/JPEG images, patches:SIZE:DIR (seeded random SIZE×SIZE RGB patches of the photos in
DIR), noise (uniform noise) or constant (one random colour per image); the last two take the
in-distribution geometry. A set of another geometry needs --fit (converted, then resized).

Per image: the model's NLL (IDF: exact; codec VAE: negative ELBO at the posterior mean; a vae,
hvae or ebm-prior training run: the IWAE bound with --k samples, the ebm-prior's under its tilted
prior minus log Z; a nice, realnvp or glow run: the dequantization bound of its test bpd, one draw
of the noise), the codec's file with the model (codec models), PNG (image crate, best), the
context coder's file and the smallest file of the classical codecs installed (cwebp, cjxl,
optipng). Scores, all in bits per sub-pixel, higher = more out of distribution:
  nll             the model's NLL
  coded           the real code length of the model's file
  nll-png, nll-context, nll-classical
                  NLL minus a generic code length (Serrà et al. 2020's input complexity)
  nll-background  NLL minus the --background model's NLL (the likelihood ratio, Ren et al. 2019)
Per OOD set and score: AUROC, AUPR (OOD positive) and the FPR at 95 % TPR.

Examples:
  idfcodec ood --model fashion-mnist --in-dist fashion-mnist:test --ood mnist:test --limit 500
  idfcodec ood --model photos --in-dist patches:32:data/photos/test --ood mnist:test --ood noise \\
               --ood constant --fit --plot photos.png
  idfcodec ood --model run:runs/vae --background run:runs/vae-small --in-dist mnist:test \\
               --ood fashion-mnist:test --csv scores.csv")]
pub struct OodArgs {
    /// The model: an embedded model's name (`idfcodec models`), a model file, or a vae,
    /// ebm-prior, hvae, nice, realnvp or glow training run (run:DIR).
    #[arg(long, value_name = "NAME|PATH|run:DIR")]
    pub model: String,
    /// A background model for the likelihood ratio (same forms as --model).
    #[arg(long, value_name = "NAME|PATH|run:DIR")]
    pub background: Option<String>,
    /// The in-distribution images.
    #[arg(long, value_name = "SET")]
    pub in_dist: String,
    /// Out-of-distribution images (repeat for several sets).
    #[arg(long = "ood", value_name = "SET", required = true)]
    pub ood: Vec<String>,
    /// Images per set (the first N; noise and constant: exactly N).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub limit: usize,
    /// Convert and resize sets of another geometry than the in-distribution set's.
    #[arg(long)]
    pub fit: bool,
    /// Importance samples per image for vae, hvae and ebm-prior training runs (IWAE K).
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub k: i64,
    /// Prior latents for an ebm-prior run's log Z.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub logz_samples: u64,
    /// Seed of a training run's draws.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write every image's measurements and scores as CSV.
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<PathBuf>,
    /// Draw the bpd histograms per set into a PNG.
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
    /// Replace existing --csv and --plot files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: OodArgs) -> Result<()> {
    for out in a.csv.iter().chain(&a.plot) {
        io::check_not_clobbering(out, a.force)?;
    }
    ensure!(a.limit > 0, "--limit must be at least 1");
    let fit = if a.fit { Fit::Resize } else { Fit::Refuse };
    let in_spec: SetSpec = a.in_dist.parse()?;
    let ood_specs: Vec<SetSpec> = a.ood.iter().map(|s| s.parse()).collect::<Result<_>>()?;
    let run_options = RunOptions {
        k: a.k,
        logz_samples: a.logz_samples,
        seed: a.seed,
    };
    let model = model::open(&a.model, run_options)?;
    let background = match &a.background {
        Some(spec) => Some(model::open(spec, run_options)?),
        None => None,
    };
    // every set read (and fitted) before the slow part
    let dir = data_dir();
    let in_set = in_spec.load(&dir, a.limit, None, fit)?;
    let target = Geometry::of(&in_set.images);
    let ood_sets = ood_specs
        .iter()
        .map(|s| s.load(&dir, a.limit, Some(target), fit))
        .collect::<Result<Vec<_>>>()?;
    // every set has the in-distribution geometry now: the models must take it
    for m in std::iter::once(&model).chain(&background) {
        m.check_geometry(target.channels, target.height, target.width)
            .with_context(|| format!("{}: the model does not take its images", in_set.name))?;
    }
    let (mut generic, notes) = Generic::installed()?;
    for note in notes {
        eprintln!("note: {note}");
    }
    println!("model: {} ({})", model.name(), model.likelihood());
    if let Some(b) = &background {
        println!("background: {} ({})", b.name(), b.likelihood());
    }
    let classical = generic.classical_names();
    println!(
        "classical codecs: {}",
        if classical.is_empty() {
            "none installed".to_string()
        } else {
            classical.join(", ")
        }
    );
    let mut measured: Vec<MeasuredSet> = Vec::new();
    for set in std::iter::once(&in_set).chain(&ood_sets) {
        let bar = super::progress::bar(set.images.count as u64, &format!("images of {}", set.name));
        let m = measure(
            model.as_ref(),
            background.as_deref(),
            &mut generic,
            set,
            &mut |done| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        measured.push(m);
    }
    let scores = Score::available(model.codes(), !classical.is_empty(), background.is_some());
    let (in_measured, ood_measured) = measured.split_first().expect("the in-distribution set");
    let results = ood_measured
        .iter()
        .map(|o| Ok((o.name.clone(), compare(in_measured, o, &scores)?)))
        .collect::<Result<Vec<_>>>()?;
    let all: Vec<&MeasuredSet> = measured.iter().collect();
    println!("\n{}", report::means_table(&all));
    println!("{}", report::separation_table(&in_measured.name, &results));
    if let Some(path) = &a.csv {
        io::write_file(
            path,
            report::csv(in_measured, ood_measured, &scores).as_bytes(),
            a.force,
        )?;
    }
    if let Some(path) = &a.plot {
        let title = format!("{}: {} vs OOD sets", model.name(), in_measured.name);
        io::write_file(path, &plot::figure(&all, &title)?, a.force)?;
    }
    Ok(())
}
