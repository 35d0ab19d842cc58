//! The hierarchical VAE family (`family = "hvae"`, Bit-Swap's structure): the loss falls on a
//! small fixed batch for one, two and three layers; its terms (reconstruction, one KL per
//! layer) sum to the negative ELBO and the evaluation reports them with the IWAE bound; more
//! importance samples tighten the bound; bad configs are errors; resuming is bit-identical; the
//! `VarStore` is the codec's description and the engine agrees with tch (the export check).
#![cfg(feature = "train")]

mod common;
mod generative_common;

use generative_common::{assert_resume_is_bit_identical, config, job, lock, small_data};
use idfcodec::export::{vae_codec_tensors, vae_engine_check};
use idfcodec::nn::hvae::Hvae;
use idfcodec::train::{self, checkpoint, config::TrainConfig, Trainable};
use idfcodec_codec::{Model, Vae as EngineVae};
use std::path::Path;
use tch::{Device, Kind, Tensor};

/// A tiny hierarchical VAE's `[model]` lines with `extra` added.
fn tiny(latents: &str, extra: &str) -> String {
    format!("family = \"hvae\"\nlatents = {latents}\nhidden = 16\n{extra}")
}

/// The loss of the run's model on `x`, from the weights of `dir` (`None`: as built from the
/// seed), with fixed noise.
fn loss_of(c: &TrainConfig, dir: Option<&Path>, x: &Tensor) -> f64 {
    let (mut vs, model) = train::build_model::<Hvae>(c, Device::Cpu).unwrap();
    if let Some(dir) = dir {
        checkpoint::load(dir, &mut vs, None).unwrap();
    }
    tch::manual_seed(11);
    tch::no_grad(|| model.loss(x).double_value(&[]))
}

#[test]
fn the_loss_falls_on_a_fixed_batch_for_one_two_and_three_layers() {
    let _rng = lock();
    for latents in ["[4]", "[6, 3]", "[6, 4, 2]"] {
        let c = config(&tiny(latents, "mixtures = 2"), 25);
        let data = small_data(&c, 32, 16);
        let x = data.train.to_kind(Kind::Float);
        let before = loss_of(&c, None, &x);
        let dir = tempfile::tempdir().unwrap();
        let report = train::run(&job(&c, dir.path(), false), &data).unwrap();
        assert!(report.finished && report.test_bpd.unwrap().is_finite());
        let after = loss_of(&c, Some(dir.path()), &x);
        eprintln!("latents {latents}: {before:.4} -> {after:.4} bits/dim");
        assert!(
            after < before - 0.05,
            "latents {latents}: loss {before:.4} -> {after:.4} bits/dim"
        );
    }
}

#[test]
fn the_evaluation_splits_the_elbo_by_layer_and_reports_the_iwae_bound() {
    let _rng = lock();
    let c = config(&tiny("[6, 4, 2]", "iwae_samples = 4"), 1);
    let (_vs, model) = train::build_model::<Hvae>(&c, Device::Cpu).unwrap();
    let images = small_data(&c, 1, 16).test;
    let e = model.evaluate(&images, 8, Device::Cpu);
    let part = |name: &str| {
        e.parts
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", e.parts))
            .1
    };
    let dims = 28.0 * 28.0 * std::f64::consts::LN_2;
    let sum: f64 = ["reconstruction_bpd", "kl1_bpd", "kl2_bpd", "kl3_bpd"]
        .iter()
        .map(|n| part(n))
        .sum();
    assert!((sum - e.total).abs() < 1e-9);
    assert!((part("neg_elbo_nats") - e.total * dims).abs() < 1e-6 * part("neg_elbo_nats"));
    // the top layer's KL is in closed form: never negative
    assert!(part("kl3_nats") >= 0.0);
    assert!(
        (part("neg_iwae4_bpd") * dims - part("neg_iwae4_nats")).abs()
            < 1e-6 * part("neg_iwae4_nats")
    );
}

#[test]
fn more_importance_samples_tighten_the_bound() {
    let _rng = lock();
    let c = config(&tiny("[6, 3]", ""), 1);
    let (_vs, model) = train::build_model::<Hvae>(&c, Device::Cpu).unwrap();
    let x = small_data(&c, 1, 1).test.to_kind(Kind::Float);
    tch::no_grad(|| {
        let one = x.repeat([400, 1, 1, 1]);
        tch::manual_seed(3);
        let elbo = -model
            .elbo_terms(&one)
            .iter()
            .fold(Tensor::zeros([400], (Kind::Float, Device::Cpu)), |a, t| {
                a + t
            });
        tch::manual_seed(4);
        let w1 = model.iwae(&one, 1);
        tch::manual_seed(5);
        let w16 = model.iwae(&one.narrow(0, 0, 100), 16);
        let mean = |t: &Tensor| t.mean(Kind::Double).double_value(&[]);
        let se = w1.std(true).double_value(&[]) / 20.0;
        eprintln!(
            "ELBO {:.3}, IWAE(1) {:.3} ± {se:.3}, IWAE(16) {:.3} nats",
            mean(&elbo),
            mean(&w1),
            mean(&w16)
        );
        assert!((mean(&w1) - mean(&elbo)).abs() < 5.0 * se + 1e-3);
        assert!(mean(&w16) > mean(&w1));
    });
}

#[test]
fn bad_configs_are_errors() {
    for (latents, extra) in [
        ("[]", ""),
        ("[4, 0]", ""),
        ("[4, 4, 4, 4, 4, 4, 4, 4, 4]", ""),
        ("[4]", "bucket_bits = 20"),
        ("[4]", "in_channels = 2"),
    ] {
        let text = format!(
            "version = 2\n[model]\n{}\n[data]\ndataset = \"mnist\"\n",
            tiny(latents, extra)
        );
        let parsed = TrainConfig::from_toml(&text).and_then(|c| c.validate().map(|_| c));
        assert!(parsed.is_err(), "{latents} {extra}");
    }
}

#[test]
fn an_hvae_run_resumes_bit_identically() {
    let _rng = lock();
    let c = config(&tiny("[6, 3]", ""), 6);
    let data = small_data(&c, 64, 16);
    assert_resume_is_bit_identical(&c, &data);
}

#[test]
fn the_varstore_is_the_codec_description_and_the_engine_agrees() {
    let _rng = lock();
    for latents in ["[6]", "[6, 4]", "[6, 4, 3]"] {
        let c = config(&tiny(latents, "mixtures = 2"), 1);
        let arch = c.model.of::<Hvae>().unwrap().codable().unwrap();
        let (vs, model) = train::build_model::<Hvae>(&c, Device::Cpu).unwrap();
        let vars = vs.variables();
        let specs = arch.tensor_specs();
        assert_eq!(vars.len(), specs.len());
        for s in &specs {
            let shape: Vec<usize> = vars[&s.name].size().iter().map(|&d| d as usize).collect();
            assert_eq!(shape, s.shape, "{}", s.name);
        }
        // a random decoder puts some pixels far below 2^-24, the floor of the codec's tables
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                if name.starts_with("decoder.fc2.") {
                    let _ = v.g_mul_scalar_(0.05);
                }
            }
        });
        let values = vae_codec_tensors(&vs, &arch).unwrap();
        let engine = EngineVae::from_tensors(arch, serde_json::json!({}), values).unwrap();
        let data = train::load_data(&c).unwrap();
        let check = vae_engine_check(&engine, &model, &data.test, 10).unwrap();
        eprintln!("latents {latents}: {check:?}");
        assert_eq!(check.images, 10);
        assert!(check.max_rel_diff < 1e-3, "{check:?}");
        let bytes = engine
            .to_safetensors(&serde_json::json!({"name": "t"}))
            .unwrap();
        assert_eq!(Model::from_safetensors(&bytes).unwrap().id(), engine.id());
    }
}

/// The export's fitted grids: one (mean, standard deviation) pair of vectors per layer below the
/// top, the first layer's equal to the aggregate posterior's moments computed directly
/// (`E[μ]`, `√(E[σ²] + Var μ)` over the images); an engine with those grids codes a chain that
/// decodes (the export check's coded rate) and is another model than the standard grids'.
#[test]
fn fitted_grids_are_the_aggregate_posterior_moments() {
    use idfcodec::export::CodableVae;
    use idfcodec_codec::model::vae::LatentGrids;
    let _rng = lock();
    for latents in ["[6, 4]", "[6, 4, 3]"] {
        let c = config(&tiny(latents, ""), 1);
        let arch = c.model.of::<Hvae>().unwrap().codable().unwrap();
        let (vs, model) = train::build_model::<Hvae>(&c, Device::Cpu).unwrap();
        let data = train::load_data(&c).unwrap();
        let x = data.train.narrow(0, 0, 700);
        let moments = model.grid_moments(&x);
        assert_eq!(moments.len(), arch.layers() - 1, "{latents}");
        for ((mean, std), n) in moments.iter().zip(arch.latents()) {
            assert_eq!((mean.len(), std.len()), (n, n));
            assert!(std.iter().all(|&s| s.is_finite() && s > 0.0), "{std:?}");
        }
        let (mu, logvar) = tch::no_grad(|| model.encode(&x.to_kind(Kind::Float)));
        let (mu, var) = (mu.to_kind(Kind::Double), logvar.to_kind(Kind::Double).exp());
        let mean = mu.mean_dim(0, false, Kind::Double);
        let std = (var.mean_dim(0, false, Kind::Double)
            + (&mu - &mean).square().mean_dim(0, false, Kind::Double))
        .sqrt();
        let direct: (Vec<f64>, Vec<f64>) =
            (Vec::try_from(&mean).unwrap(), Vec::try_from(&std).unwrap());
        for j in 0..6 {
            assert!(
                (f64::from(moments[0].0[j]) - direct.0[j]).abs() < 1e-5,
                "mean {j}"
            );
            assert!(
                (f64::from(moments[0].1[j]) - direct.1[j]).abs() < 1e-5 * direct.1[j].max(1.0),
                "std {j}: {} vs {}",
                moments[0].1[j],
                direct.1[j]
            );
        }
        let mut values = vae_codec_tensors(&vs, &arch).unwrap();
        let standard =
            EngineVae::from_tensors(arch.clone(), serde_json::json!({}), values.clone()).unwrap();
        values.extend(moments.into_iter().flat_map(|(m, s)| [m, s]));
        let fitted_arch = idfcodec_codec::VaeConfig {
            latent_grids: LatentGrids::Fitted,
            ..arch
        };
        let fitted = EngineVae::from_tensors(fitted_arch, serde_json::json!({}), values).unwrap();
        assert_ne!(fitted.id(), standard.id());
        let check = vae_engine_check(&fitted, &model, &data.test, 6).unwrap();
        let coded = check.coded_bpd.unwrap();
        assert!(coded.is_finite() && coded > 0.0, "{check:?}");
    }
}
