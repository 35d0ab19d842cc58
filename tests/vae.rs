//! The VAE family: its loss falls on a small fixed batch for every architecture, likelihood and
//! KL weight; the IWAE bound with one sample is the ELBO; configs round-trip through the
//! versioned loader and bad ones are errors; resuming is bit-identical; and the sample,
//! reconstruct and interpolate grids have the right shapes, through the library and the binary.
#![cfg(feature = "train")]

mod common;
mod generative_common;

use generative_common::{assert_resume_is_bit_identical, config, job, lock, small_data};
use idfcodec::nn::generative::{self, Ends, Generative};
use idfcodec::nn::vae::Vae;
use idfcodec::picture::grid_size;
use idfcodec::train::{self, checkpoint, config::TrainConfig, Trainable};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A tiny VAE's `[model]` lines with `extra` added.
fn tiny(extra: &str) -> String {
    format!("family = \"vae\"\nlatent = 4\nhidden = 8\n{extra}")
}

/// The loss (negative β-ELBO, bits/dim) of the run's model on `x`, from the weights of `dir`
/// (`None`: as built from the seed), with fixed noise.
fn loss_of(c: &TrainConfig, dir: Option<&Path>, x: &Tensor) -> f64 {
    let (mut vs, model) = train::build_model::<Vae>(c, Device::Cpu).unwrap();
    if let Some(dir) = dir {
        checkpoint::load(dir, &mut vs, None).unwrap();
    }
    tch::manual_seed(11);
    tch::no_grad(|| model.loss(x).double_value(&[]))
}

#[test]
fn the_loss_falls_on_a_fixed_batch_for_every_kind_of_vae() {
    let _rng = lock();
    for (model, steps, min_drop) in [
        (tiny("arch = \"mlp\"\nlikelihood = \"bernoulli\""), 25, 0.05),
        (
            tiny("arch = \"conv\"\nlikelihood = \"bernoulli\""),
            25,
            0.05,
        ),
        (
            tiny("likelihood = \"gaussian\"\nlog_std = -1.0\nlearn_std = true"),
            25,
            0.05,
        ),
        (tiny("likelihood = \"logistic\"\nmixtures = 2"), 25, 0.05),
        (tiny("beta = 0.0"), 25, 0.05),
        (tiny("beta = 100.0"), 25, 0.05),
        (
            tiny("[model.adversarial]\nweight = 0.1\ncritic_width = 4\nn_critic = 2"),
            25,
            0.05,
        ),
    ] {
        let c = config(&model, steps);
        // one batch of 32 images, the same every step
        let data = small_data(&c, 32, 16);
        let x = data.train.to_kind(Kind::Float);
        let before = loss_of(&c, None, &x);
        let dir = tempfile::tempdir().unwrap();
        let report = train::run(&job(&c, dir.path(), false), &data).unwrap();
        assert!(report.finished && report.test_bpd.unwrap().is_finite());
        let after = loss_of(&c, Some(dir.path()), &x);
        eprintln!(
            "{}: {before:.4} -> {after:.4} bits/dim",
            model.replace('\n', " ")
        );
        assert!(
            after < before * (1.0 - min_drop),
            "{model}: loss {before:.4} -> {after:.4} bits/dim"
        );
        // the log names the VAE's figures and its plots are drawn
        let csv = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
        let header = csv.lines().next().unwrap();
        assert!(
            header.starts_with("step,epoch,lr,train_neg_beta_elbo_bpd,test_neg_elbo_bpd,")
                && header.contains("reconstruction_nats,kl_nats"),
            "{header}"
        );
        if model.contains("adversarial") {
            assert!(
                header.ends_with("critic_real,critic_fake,gradient_penalty"),
                "{header}"
            );
        }
        assert!(dir.path().join("elbo.png").exists());
        assert!(dir.path().join("elbo-parts.png").exists());
    }
}

#[test]
fn a_vae_trains_on_rgb_photo_patches() {
    let _rng = lock();
    let mut c = config(
        &tiny("in_channels = 3\nimage_size = 32\nlikelihood = \"logistic\"\nmixtures = 2"),
        20,
    );
    c.data.dataset = "photos".into();
    c.data.dir = common::fetched("photos");
    c.data.train_patches = 32;
    c.data.test_patches = 8;
    let data = train::load_data(&c).unwrap();
    assert_eq!(data.train.size(), [32, 3, 32, 32]);
    let x = data.train.to_kind(Kind::Float);
    let before = loss_of(&c, None, &x);
    let dir = tempfile::tempdir().unwrap();
    train::run(&job(&c, dir.path(), false), &data).unwrap();
    let after = loss_of(&c, Some(dir.path()), &x);
    eprintln!("photo patches: {before:.4} -> {after:.4} bits/dim");
    assert!(after < before - 0.1, "{before:.4} -> {after:.4}");
    // a model built for 32×32 refuses 28×28 images with an error
    c.data = config("family = \"vae\"", 1).data;
    let err = train::load_data(&c).err().expect("28×28 images refused");
    assert!(err.to_string().contains("channel"), "{err}");
}

#[test]
fn the_iwae_bound_with_one_sample_is_the_elbo() {
    let _rng = lock();
    let c = config(&tiny("likelihood = \"logistic\"\nmixtures = 2"), 1);
    let (_vs, vae) = train::build_model::<Vae>(&c, Device::Cpu).unwrap();
    let x = small_data(&c, 8, 1).train.to_kind(Kind::Float);
    tch::no_grad(|| {
        // the same draws: exactly the one-sample ELBO
        tch::manual_seed(7);
        let terms = vae.elbo(&x);
        tch::manual_seed(7);
        let bound = vae.iwae(&x, 1);
        let elbo = -(&terms.reconstruction + &terms.kl_sample);
        let gap = (&bound - &elbo).abs().max().double_value(&[]);
        eprintln!("|IWAE(k=1) - ELBO| = {gap} nats");
        assert!(gap < 1e-3, "IWAE(k=1) - ELBO = {gap} nats");

        // over many draws its mean is the ELBO with the KL in closed form, and more samples
        // tighten the bound
        let reps = 2000;
        let one = x.narrow(0, 0, 1).repeat([reps, 1, 1, 1]);
        tch::manual_seed(8);
        let w1 = vae.iwae(&one, 1);
        tch::manual_seed(9);
        let t = vae.elbo(&one);
        let analytic = -(&t.reconstruction + &t.kl);
        let (m1, ma) = (
            w1.mean(Kind::Double).double_value(&[]),
            analytic.mean(Kind::Double).double_value(&[]),
        );
        let sd = (w1.std(true).double_value(&[]).powi(2)
            + analytic.std(true).double_value(&[]).powi(2))
        .sqrt();
        let se = sd / (reps as f64).sqrt();
        assert!(
            (m1 - ma).abs() < 5.0 * se + 1e-3,
            "mean IWAE(k=1) {m1:.3}, ELBO {ma:.3} nats (standard error {se:.3})"
        );
        tch::manual_seed(10);
        let w16 = vae
            .iwae(&one.narrow(0, 0, 200), 16)
            .mean(Kind::Double)
            .double_value(&[]);
        eprintln!("IWAE(k=1) {m1:.3} ± {se:.3}, ELBO {ma:.3}, IWAE(k=16) {w16:.3} nats");
        assert!(
            w16 > m1,
            "IWAE(k=16) {w16:.3} should exceed IWAE(k=1) {m1:.3}"
        );
    });
}

#[test]
fn the_evaluation_splits_the_elbo_and_reports_the_iwae_bound() {
    let _rng = lock();
    let c = config(&tiny("iwae_samples = 4"), 1);
    let (_vs, vae) = train::build_model::<Vae>(&c, Device::Cpu).unwrap();
    let images = small_data(&c, 1, 16).test;
    let e = vae.evaluate(&images, 8, Device::Cpu);
    let part = |name: &str| {
        e.parts
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", e.parts))
            .1
    };
    let dims = 28.0 * 28.0 * std::f64::consts::LN_2;
    assert!((part("reconstruction_bpd") + part("kl_bpd") - e.total).abs() < 1e-9);
    assert!((part("neg_elbo_nats") - e.total * dims).abs() < 1e-6 * part("neg_elbo_nats"));
    assert!(
        (part("reconstruction_nats") + part("kl_nats") - part("neg_elbo_nats")).abs()
            < 1e-6 * part("neg_elbo_nats")
    );
    assert!(part("kl_nats") >= 0.0);
    assert!(
        (part("neg_iwae4_bpd") * dims - part("neg_iwae4_nats")).abs()
            < 1e-6 * part("neg_iwae4_nats")
    );
}

#[test]
fn configs_round_trip_through_the_versioned_loader_and_bad_ones_are_errors() {
    let text = "version = 2\n[model]\nfamily = \"vae\"\narch = \"mlp\"\nlatent = 3\nbeta = 100.0\n\
                likelihood = \"gaussian\"\nlearn_std = true\n[model.adversarial]\nweight = 0.5\n";
    let c = TrainConfig::from_toml(text).unwrap();
    assert_eq!(c.version, 2);
    assert_eq!(c.model.family(), "vae");
    let vae = c.model.of::<Vae>().unwrap();
    assert_eq!((vae.latent, vae.beta, vae.learn_std), (3, 100.0, true));
    // fields left out take the family's defaults, nested tables too
    let defaults = Vae::default_config(2);
    assert_eq!(vae.hidden, defaults.hidden);
    assert_eq!(vae.adversarial.n_critic, defaults.adversarial.n_critic);
    assert_eq!(vae.adversarial.weight, 0.5);
    // what a run stores reads back as itself
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"family\":\"vae\""), "{json}");
    assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);

    for bad in [
        "latent = 0",
        "hidden = 0",
        "beta = -1.0",
        "arch = \"rnn\"",
        "likelihood = \"poisson\"",
        "image_size = 30",
        "in_channels = 2",
        "mixtures = 0",
        "latnet = 4",
        "[model.adversarial]\nn_critic = 0",
        "[model.adversarial]\nweight = -1.0",
        "[model.adversarial]\nwieght = 1.0",
    ] {
        let text = format!("version = 2\n[model]\nfamily = \"vae\"\n{bad}\n");
        let r = TrainConfig::from_toml(&text).and_then(|c| c.validate());
        assert!(r.is_err(), "accepted: {bad}");
    }
}

#[test]
fn a_vae_run_resumes_bit_identically() {
    let _rng = lock();
    for model in [
        tiny("likelihood = \"gaussian\"\nlearn_std = true"),
        tiny("[model.adversarial]\nweight = 0.1\ncritic_width = 4\nn_critic = 2"),
    ] {
        let c = config(&model, 6);
        let data = small_data(&c, 64, 16);
        assert_resume_is_bit_identical(&c, &data);
    }
}

#[test]
fn sample_reconstruct_and_interpolate_make_images_of_the_right_shape() {
    let _rng = lock();
    let c = config(&tiny(""), 2);
    let (_vs, vae) = train::build_model::<Vae>(&c, Device::Cpu).unwrap();
    assert_eq!(vae.image_shape(), [1, 28, 28]);
    let s = generative::sample(&vae, 5, 1);
    assert_eq!((s.size(), s.kind()), (vec![5, 1, 28, 28], Kind::Uint8));
    // seeded: the same seed, the same images
    assert!(s.equal(&generative::sample(&vae, 5, 1)));
    let x = small_data(&c, 1, 6).test;
    let r = generative::reconstruct(&vae, &x).unwrap();
    assert_eq!(r.size(), [12, 1, 28, 28]);
    assert!(r.narrow(0, 0, 6).equal(&x), "originals first");
    let i = generative::interpolate(&vae, Ends::Images(&x), 4).unwrap();
    assert_eq!(i.size(), [12, 1, 28, 28]);
    // the ends of a row are the decoded latents of its two images
    let ends = tch::no_grad(|| {
        let z = Generative::encode(&vae, &x.narrow(0, 0, 2).to_kind(Kind::Float)).unwrap();
        generative::to_u8(&vae.decode(&z))
    });
    assert!(i.get(0).equal(&ends.get(0)) && i.get(3).equal(&ends.get(1)));
    assert!(generative::interpolate(&vae, Ends::Images(&x.narrow(0, 0, 3)), 4).is_err());
    assert!(generative::interpolate(&vae, Ends::Images(&x), 1).is_err());
}

#[path = "cli_common/mod.rs"]
mod cli;

#[test]
fn the_cli_writes_grids_of_the_right_size_and_refuses_to_overwrite() {
    let run = {
        let _rng = lock();
        let c = config(&tiny(""), 2);
        let data = small_data(&c, 32, 16);
        let dir = tempfile::tempdir().unwrap();
        train::run(&job(&c, dir.path(), false), &data).unwrap();
        dir
    };
    let out = tempfile::tempdir().unwrap();
    let png = |name: &str| out.path().join(name);
    let size = |name: &str| {
        let img = image::open(png(name)).unwrap();
        (img.width() as usize, img.height() as usize)
    };
    let r = run.path().to_str().unwrap();
    let p = |name: &str| png(name).to_str().unwrap().to_string();

    cli::ok(&[
        "sample",
        r,
        "--n",
        "6",
        "--columns",
        "3",
        "--out",
        &p("s.png"),
    ]);
    assert_eq!(size("s.png"), grid_size(6, 28, 28, 3));
    cli::ok(&["reconstruct", r, "--n", "5", "--out", &p("r.png")]);
    assert_eq!(size("r.png"), grid_size(10, 28, 28, 5));
    cli::ok(&[
        "interpolate",
        r,
        "--pairs",
        "2",
        "--steps",
        "4",
        "--out",
        &p("i.png"),
    ]);
    assert_eq!(size("i.png"), grid_size(8, 28, 28, 4));

    // an existing output is kept without --force, replaced with it
    let before = std::fs::read(png("s.png")).unwrap();
    let err = cli::fails(&["sample", r, "--n", "4", "--out", &p("s.png")]);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(std::fs::read(png("s.png")).unwrap(), before);
    cli::ok(&["sample", r, "--n", "4", "--out", &p("s.png"), "--force"]);
    assert_eq!(size("s.png"), grid_size(4, 28, 28, 2));

    // eval reports the ELBO's terms and, asked for, the IWAE bound
    let said = cli::ok(&["eval", r, "--limit", "8", "--iwae", "2"]);
    for figure in ["test neg_elbo_bpd", "kl_nats", "neg_iwae2_nats"] {
        assert!(said.contains(figure), "{said}");
    }

    // a run is a source of images for the metrics: --n samples, the same ones every time
    let source = format!("run:{r}");
    let fid = || cli::ok(&["metrics", "fid", &source, "mnist:test", "--n", "20"]);
    let said = fid();
    assert!(said.contains("FID") && said.contains("20 vs 20"), "{said}");
    assert_eq!(fid(), said);

    // bad input is an error, not a panic
    cli::fails(&["interpolate", r, "--steps", "1", "--out", &p("x.png")]);
    cli::fails(&[
        "reconstruct",
        r,
        "--data",
        "/nonexistent",
        "--out",
        &p("x.png"),
    ]);
    cli::fails(&["sample", "/nonexistent-run", "--out", &p("x.png")]);
    assert!(!png("x.png").exists());
}
