//! The codable VAE, two implementations: the tch model that trains and the codec's engine that
//! codes are built from one description (`idfcodec_codec::VaeConfig`, via
//! `VaeConfig::codable`), so the tch `VarStore` must hold exactly the codec's tensors, and the
//! engine's negative ELBO (reconstruction at the posterior mean under the quantised tables,
//! plus the KL) must match the float model's on real images.
#![cfg(feature = "train")]

mod common;

use idfcodec::export::{vae_codec_tensors, vae_engine_check};
use idfcodec::nn::dist::LikelihoodKind;
use idfcodec::nn::layers::Arch;
use idfcodec::nn::vae::Vae;
use idfcodec::train::{self, config::TrainConfig, model::ModelConfig};
use idfcodec_codec::{Model, Vae as EngineVae};
use tch::Device;

fn codable_config(mixtures: usize) -> TrainConfig {
    let mut c = TrainConfig {
        model: ModelConfig::Vae(Default::default()),
        ..Default::default()
    };
    let v = c.model.vae_mut().unwrap();
    v.arch = Arch::Mlp;
    v.likelihood = LikelihoodKind::Logistic;
    v.latent = 6;
    v.hidden = 24;
    v.mixtures = mixtures;
    c.data.dataset = "mnist".into();
    c.data.dir = common::fetched("mnist");
    c
}

#[test]
fn the_varstore_is_the_codec_description() {
    let cfg = codable_config(2);
    let arch = cfg.model.vae().unwrap().codable().unwrap();
    let (vs, _) = train::build_model::<Vae>(&cfg, Device::Cpu).unwrap();
    let vars = vs.variables();
    let specs = arch.tensor_specs();
    assert_eq!(vars.len(), specs.len());
    for s in &specs {
        let shape: Vec<usize> = vars[&s.name].size().iter().map(|&d| d as usize).collect();
        assert_eq!(shape, s.shape, "{}", s.name);
    }
    let mut conv = cfg.clone();
    conv.model.vae_mut().unwrap().arch = Arch::Conv;
    assert!(conv.model.vae().unwrap().codable().is_err());
}

fn resnet_config() -> TrainConfig {
    let mut c = codable_config(2);
    let v = c.model.vae_mut().unwrap();
    v.arch = Arch::Resnet;
    v.hidden = 8;
    v.blocks = 2;
    c
}

/// The residual VAE: the `VarStore` is the codec's description (names, shapes, order of the
/// ops checked through the outputs), and the engine's negative ELBO matches the float model's.
#[test]
fn the_resnet_vae_is_the_codec_description_and_agrees() {
    tch::set_num_threads(1);
    let cfg = resnet_config();
    let arch = cfg.model.vae().unwrap().codable().unwrap();
    let (vs, model) = train::build_model::<Vae>(&cfg, Device::Cpu).unwrap();
    let vars = vs.variables();
    let specs = arch.tensor_specs();
    assert_eq!(vars.len(), specs.len());
    for s in &specs {
        let shape: Vec<usize> = vars[&s.name].size().iter().map(|&d| d as usize).collect();
        assert_eq!(shape, s.shape, "{}", s.name);
    }
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.starts_with("decoder.out.") {
                let _ = v.g_mul_scalar_(0.05);
            }
        }
    });
    let values = vae_codec_tensors(&vs, &arch).unwrap();
    let engine = EngineVae::from_tensors(arch, serde_json::json!({}), values).unwrap();
    let data = train::load_data(&cfg).unwrap();
    let check = vae_engine_check(&engine, &model, &data.test, 10).unwrap();
    println!("{check:?}");
    assert!(check.max_rel_diff < 1e-3, "{check:?}");
}

#[test]
fn engine_and_tch_agree_on_real_images() {
    tch::set_num_threads(1);
    for mixtures in [1, 3] {
        let cfg = codable_config(mixtures);
        let arch = cfg.model.vae().unwrap().codable().unwrap();
        let (vs, model) = train::build_model::<Vae>(&cfg, Device::Cpu).unwrap();
        // A random decoder puts some pixels at probabilities far below 2^-24, the floor of
        // the codec's quantised tables (a trained one does not): shrink its last layer.
        tch::no_grad(|| {
            for (name, mut v) in vs.variables() {
                if name.starts_with("decoder.fc2.") {
                    let _ = v.g_mul_scalar_(0.05);
                }
            }
        });
        let values = vae_codec_tensors(&vs, &arch).unwrap();
        let engine = EngineVae::from_tensors(arch, serde_json::json!({}), values).unwrap();
        let data = train::load_data(&cfg).unwrap();
        let check = vae_engine_check(&engine, &model, &data.test, 10).unwrap();
        println!("{check:?}");
        assert_eq!(check.images, 10);
        assert!(check.max_rel_diff < 1e-3, "{check:?}");
        // and the exported bytes load as a codec model of the VAE family
        let bytes = engine
            .to_safetensors(&serde_json::json!({"name": "t"}))
            .unwrap();
        let loaded = Model::from_safetensors(&bytes).unwrap();
        assert_eq!(loaded.id(), engine.id());
    }
}

/// A small codable VAE trained for a few hundred steps codes real test images, chained in one
/// archive, at its negative ELBO: the chain's bits (the first image's initial bits and the final
/// flush included) stay within 2 % (plus 256 bits) of the float model's −ELBO on the same
/// images, estimated with 16 samples per image — the bits-back gap is bounded.
#[test]
fn a_trained_vae_codes_its_test_images_at_its_elbo() {
    use idfcodec_codec::format::{Archive, EntryName, Limits};
    use idfcodec_codec::{
        compress_archive, decompress_archive, ArchiveLayout, EncodeOptions, Image, NamedImage,
        NamedModel,
    };
    use tch::nn::OptimizerConfig;
    use tch::Kind;

    tch::set_num_threads(1);
    tch::manual_seed(7);
    let mut cfg = codable_config(1);
    {
        let v = cfg.model.vae_mut().unwrap();
        v.latent = 8;
        v.hidden = 64;
    }
    let arch = cfg.model.vae().unwrap().codable().unwrap();
    let (vs, model) = train::build_model::<Vae>(&cfg, Device::Cpu).unwrap();
    let data = train::load_data(&cfg).unwrap();
    let mut opt = tch::nn::Adam::default().build(&vs, 2e-3).unwrap();
    let train_images = data.train.narrow(0, 0, 2048).to_kind(Kind::Float);
    let losses: Vec<f64> = (0..256)
        .map(|step| {
            let x = train_images.narrow(0, (step % 32) * 64, 64);
            let loss = model.neg_beta_elbo(&model.elbo(&x)).mean(Kind::Float);
            opt.backward_step(&loss);
            loss.double_value(&[])
        })
        .collect();
    assert!(losses[240..].iter().sum::<f64>() < losses[..16].iter().sum::<f64>());
    let n = 40;
    let test = data.test.narrow(0, 0, n);
    let neg_elbo_bits: f64 = tch::no_grad(|| {
        let x = test.to_kind(Kind::Float);
        let total: f64 = (0..16)
            .map(|_| {
                let terms = model.elbo(&x);
                (&terms.reconstruction + &terms.kl)
                    .sum(Kind::Double)
                    .double_value(&[])
            })
            .sum();
        total / 16.0 / std::f64::consts::LN_2
    });
    let values = vae_codec_tensors(&vs, &arch).unwrap();
    let engine = EngineVae::from_tensors(arch, serde_json::json!({}), values).unwrap();
    let engine = Model::from(engine);
    let entries: Vec<NamedImage> = (0..n)
        .map(|i| {
            let px: Vec<u8> = Vec::try_from(&test.get(i).flatten(0, -1)).unwrap();
            NamedImage {
                name: EntryName::new(format!("{i}.png")).unwrap(),
                image: Image::gray8(28, 28, px).unwrap(),
            }
        })
        .collect();
    let options = EncodeOptions {
        threads: 1,
        archive_layout: ArchiveLayout::Chained,
        ..EncodeOptions::default()
    };
    let bytes = compress_archive(&entries, &engine, &options).unwrap();
    let named = NamedModel {
        name: "trained",
        model: &engine,
    };
    let back = decompress_archive(&bytes, &named, &Default::default()).unwrap();
    assert!(back == entries, "the chain decodes exactly");
    let chain = Archive::read(&bytes, &Limits::default())
        .unwrap()
        .chain
        .unwrap();
    // the rest of the file is O(1) (format version 6): magic, model flags, external model id,
    // entry count, the first entry ("0.png" front-coded, 28×28) and one run ("1.png" to
    // "39.png": flags and r = 38), whatever the number of images
    assert_eq!(
        bytes.len() - chain.len(),
        2 + 1 + 8 + 1 + (1 + 3 + 5 + 3) + 2
    );
    let coded_bits = chain.len() as f64 * 8.0;
    let dims = (n * 784) as f64;
    println!(
        "{n} test images: −ELBO {:.4} bpd, chain {:.4} bpd (gap {:+.2} %)",
        neg_elbo_bits / dims,
        coded_bits / dims,
        100.0 * (coded_bits / neg_elbo_bits - 1.0)
    );
    assert!(
        coded_bits <= 1.02 * neg_elbo_bits + 256.0,
        "{coded_bits} vs {neg_elbo_bits}"
    );
    assert!(
        coded_bits >= 0.9 * neg_elbo_bits,
        "{coded_bits} vs {neg_elbo_bits}"
    );
}
