//! The GAN family: the critic's loss falls on a small fixed batch with DCGAN and WGAN-GP, the
//! log holds both losses, the critic's scores and the gradient penalty; the penalty is right on
//! a known case; configs round-trip and bad ones are errors; resuming is bit-identical; samples
//! and interpolations have the right shapes, and what a GAN cannot do is an error.
#![cfg(feature = "train")]

mod common;
mod generative_common;

use generative_common::{assert_resume_is_bit_identical, config, job, lock, small_data};
use idfcodec::nn::gan::{self, Gan, GanLoss};
use idfcodec::nn::generative::{self, Ends, Generative};
use idfcodec::picture::grid_size;
use idfcodec::train::{self, checkpoint, config::TrainConfig, Trainable};
use std::path::Path;
use tch::{Device, Kind, Tensor};

fn tiny(extra: &str) -> String {
    format!("family = \"gan\"\nlatent = 8\ngenerator_width = 4\ncritic_width = 4\n{extra}")
}

/// The critic's loss (no penalty) of the run's model on `x` against generated images, from the
/// weights of `dir` (`None`: as built from the seed), with fixed latents.
fn critic_loss(c: &TrainConfig, dir: Option<&Path>, x: &Tensor) -> f64 {
    let (mut vs, model) = train::build_model::<Gan>(c, Device::Cpu).unwrap();
    if let Some(dir) = dir {
        checkpoint::load(dir, &mut vs, None).unwrap();
    }
    tch::manual_seed(11);
    model.evaluate(x, 64, Device::Cpu).total
}

#[test]
fn the_critic_learns_and_the_log_holds_both_losses_and_the_scores() {
    let _rng = lock();
    for (model, extras) in [
        (
            tiny("loss = \"dcgan\"\nn_critic = 1"),
            "generator_loss,d_real_prob,d_fake_prob",
        ),
        (
            tiny("loss = \"wgan-gp\"\nn_critic = 2"),
            "generator_loss,critic_real,critic_fake,gradient_penalty",
        ),
        (
            tiny("loss = \"wgan-gp\"\narch = \"mlp\"\nn_critic = 2"),
            "generator_loss,critic_real,critic_fake,gradient_penalty",
        ),
    ] {
        let c = config(&model, 20);
        let data = small_data(&c, 32, 32);
        let before = critic_loss(&c, None, &data.train);
        let dir = tempfile::tempdir().unwrap();
        let report = train::run(&job(&c, dir.path(), false), &data).unwrap();
        assert!(report.finished && report.test_bpd.unwrap().is_finite());
        let after = critic_loss(&c, Some(dir.path()), &data.train);
        eprintln!(
            "{}: critic loss {before:.4} -> {after:.4}",
            model.replace('\n', " ")
        );
        assert!(
            after < before - 0.05,
            "{model}: critic loss {before:.4} -> {after:.4}"
        );
        let csv = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
        let mut lines = csv.lines();
        let header = lines.next().unwrap();
        assert_eq!(
            header,
            format!(
                "step,epoch,lr,train_critic_loss,test_critic_loss,images_per_s,elapsed_s,{extras}"
            )
        );
        let last: Vec<f64> = lines
            .last()
            .unwrap()
            .split(',')
            .filter(|v| !v.is_empty())
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(last.len(), header.split(',').count());
        assert!(last.iter().all(|v| v.is_finite()));
        if extras.contains("gradient_penalty") {
            assert!(*last.last().unwrap() >= 0.0);
        } else {
            // probabilities
            assert!(last[8..10].iter().all(|p| (0.0..=1.0).contains(p)));
        }
        assert!(dir.path().join("losses.png").exists());
        assert!(dir.path().join("losses-parts.png").exists());
    }
}

#[test]
fn against_a_frozen_critic_the_generator_loss_falls() {
    let _rng = lock();
    for loss in ["dcgan", "wgan-gp"] {
        let mut c = config(&tiny(&format!("loss = \"{loss}\"\nn_critic = 1")), 20);
        c.train.freeze = vec!["critic.".into()];
        let data = small_data(&c, 32, 32);
        let generator_loss = |dir: Option<&Path>| {
            let (mut vs, model) = train::build_model::<Gan>(&c, Device::Cpu).unwrap();
            if let Some(dir) = dir {
                checkpoint::load(dir, &mut vs, None).unwrap();
            }
            tch::manual_seed(11);
            let e = model.evaluate(&data.test, 64, Device::Cpu);
            e.parts
                .iter()
                .find(|(n, _)| n == "generator_loss")
                .unwrap()
                .1
        };
        let before = generator_loss(None);
        let dir = tempfile::tempdir().unwrap();
        train::run(&job(&c, dir.path(), false), &data).unwrap();
        let after = generator_loss(Some(dir.path()));
        eprintln!("{loss}, critic frozen: generator loss {before:.4} -> {after:.4}");
        assert!(
            after < before - 0.01,
            "{loss}: generator loss {before:.4} -> {after:.4}"
        );
    }
}

#[test]
fn the_gradient_penalty_of_a_constant_critic_is_one() {
    let _rng = lock();
    let c = config(&tiny(""), 1);
    let (vs, model) = train::build_model::<Gan>(&c, Device::Cpu).unwrap();
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.starts_with("critic.") {
                let _ = v.zero_();
            }
        }
    });
    let real = small_data(&c, 8, 1).train.to_kind(Kind::Float);
    let fake = model.decode(&model.prior(8)).detach();
    let gp = gan::gradient_penalty(model.critic(), &real, &fake).double_value(&[]);
    assert!((gp - 1.0).abs() < 1e-5, "{gp}");
    let s = gan::critic_step(model.critic(), GanLoss::WganGp, &real, &fake, 10.0);
    assert!((s.objective.double_value(&[]) - 10.0).abs() < 1e-4);
    assert_eq!((s.loss, s.real, s.fake), (0.0, 0.0, 0.0));
    // DCGAN: a constant logit of 0 is probability 1/2, loss 2·ln 2
    let d = gan::critic_step(model.critic(), GanLoss::Dcgan, &real, &fake, 10.0);
    assert!((d.loss - 2.0 * std::f64::consts::LN_2).abs() < 1e-5);
    assert!((d.real - 0.5).abs() < 1e-6 && d.penalty == 0.0);
}

#[test]
fn gan_configs_round_trip_and_bad_ones_are_errors() {
    let c = TrainConfig::from_toml(
        "version = 2\n[model]\nfamily = \"gan\"\nloss = \"dcgan\"\ncritic_width = 64\n",
    )
    .unwrap();
    let g = c.model.of::<Gan>().unwrap();
    assert_eq!((g.loss, g.critic_width), (GanLoss::Dcgan, 64));
    assert_eq!(g.generator_width, Gan::default_config(2).generator_width);
    let json = serde_json::to_string(&c).unwrap();
    assert!(json.contains("\"loss\":\"dcgan\""), "{json}");
    assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
    for bad in [
        "latent = 0",
        "n_critic = 0",
        "generator_width = 0",
        "loss = \"lsgan\"",
        "beta1 = 1.0",
        "gradient_penalty = -1.0",
        "image_size = 30",
        "widht = 3",
    ] {
        let text = format!("version = 2\n[model]\nfamily = \"gan\"\n{bad}\n");
        let r = TrainConfig::from_toml(&text).and_then(|c| c.validate());
        assert!(r.is_err(), "accepted: {bad}");
    }
}

#[test]
fn a_gan_run_resumes_bit_identically() {
    let _rng = lock();
    let c = config(&tiny("loss = \"wgan-gp\"\nn_critic = 2"), 6);
    let data = small_data(&c, 64, 16);
    assert_resume_is_bit_identical(&c, &data);
}

#[test]
fn samples_and_interpolations_of_a_gan_and_what_it_cannot_do() {
    let _rng = lock();
    let c = config(&tiny(""), 1);
    let (_vs, g) = train::build_model::<Gan>(&c, Device::Cpu).unwrap();
    let s = generative::sample(&g, 7, 2);
    assert_eq!((s.size(), s.kind()), (vec![7, 1, 28, 28], Kind::Uint8));
    let i = generative::interpolate(&g, Ends::Prior { rows: 3, seed: 4 }, 5).unwrap();
    assert_eq!(i.size(), [15, 1, 28, 28]);
    // the ends of each row are the images of its two latents
    tch::manual_seed(4);
    let z = g.prior(6);
    let ends = tch::no_grad(|| generative::to_u8(&g.decode(&z)));
    assert!(i.get(0).equal(&ends.get(0)) && i.get(4).equal(&ends.get(1)));
    assert!(i.get(10).equal(&ends.get(4)) && i.get(14).equal(&ends.get(5)));
    // no encoder: no reconstruction, no interpolation between images
    let x = small_data(&c, 1, 2).test;
    assert!(generative::reconstruct(&g, &x).is_err());
    assert!(generative::interpolate(&g, Ends::Images(&x), 5).is_err());
}

#[path = "cli_common/mod.rs"]
mod cli;

#[test]
fn the_cli_samples_and_interpolates_a_gan_and_refuses_what_it_cannot_do() {
    let (gan_run, idf_run) = {
        let _rng = lock();
        let c = config(&tiny(""), 1);
        let data = small_data(&c, 32, 8);
        let gan_run = tempfile::tempdir().unwrap();
        train::run(&job(&c, gan_run.path(), false), &data).unwrap();
        // a tiny IDF run: sampling it is not supported yet
        let mut idf = TrainConfig {
            data: c.data.clone(),
            train: c.train.clone(),
            ..TrainConfig::default()
        };
        let arch = &mut idf.model.idf_mut().unwrap().arch;
        arch.hidden = 4;
        arch.couplings = 1;
        arch.mixtures = 1;
        let idf_run = tempfile::tempdir().unwrap();
        train::run(&job(&idf, idf_run.path(), false), &small_data(&idf, 32, 8)).unwrap();
        (gan_run, idf_run)
    };
    let out = tempfile::tempdir().unwrap();
    let p = |name: &str| out.path().join(name).to_str().unwrap().to_string();
    let size = |name: &str| {
        let img = image::open(out.path().join(name)).unwrap();
        (img.width() as usize, img.height() as usize)
    };
    let r = gan_run.path().to_str().unwrap();
    cli::ok(&["sample", r, "--n", "9", "--out", &p("s.png")]);
    assert_eq!(size("s.png"), grid_size(9, 28, 28, 3));
    let said = cli::ok(&[
        "interpolate",
        r,
        "--pairs",
        "2",
        "--steps",
        "3",
        "--out",
        &p("i.png"),
    ]);
    assert!(said.contains("random latents"), "{said}");
    assert_eq!(size("i.png"), grid_size(6, 28, 28, 3));
    let err = cli::fails(&["reconstruct", r, "--out", &p("r.png")]);
    assert!(err.contains("no encoder"), "{err}");
    let err = cli::fails(&[
        "sample",
        idf_run.path().to_str().unwrap(),
        "--out",
        &p("x.png"),
    ]);
    assert!(
        err.contains("IDF") && err.contains("not supported"),
        "{err}"
    );
    assert!(!out.path().join("r.png").exists() && !out.path().join("x.png").exists());
    // eval names the GAN's figures
    let said = cli::ok(&["eval", r, "--limit", "8"]);
    assert!(
        said.contains("test critic_loss") && said.contains("generator_loss"),
        "{said}"
    );
}
