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
