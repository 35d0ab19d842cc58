//! One architecture, two implementations: the tch model that trains and the codec's engine that
//! codes must give the same NLL for the same weights (up to float summation order), and an
//! exported file must load in the codec.
#![cfg(feature = "train")]

mod common;

use idfcodec::export::{codec_tensors, engine_check};
use idfcodec::nn::Idf;
use idfcodec::train::{self, config::TrainConfig};
use idfcodec_codec::Idf as EngineIdf;
use tch::Device;

fn small_config() -> TrainConfig {
    let mut c = TrainConfig::default();
    c.model.idf_mut().unwrap().arch.hidden = 16;
    c.model.idf_mut().unwrap().arch.couplings = 2;
    c.model.idf_mut().unwrap().arch.mixtures = 3;
    c.data.dataset = "mnist".into();
    c.data.dir = common::fetched("mnist");
    c
}

#[test]
fn engine_and_tch_agree_on_real_images() {
    tch::set_num_threads(1);
    // (top groups, prior groups, phase levels, top phases, phase-major squeeze, prior skips)
    for (top_groups, prior_groups, phase_levels, top_phases, phase_squeeze, prior_skip) in [
        (1, 1, 0, false, false, false),
        (4, 2, 0, false, false, false),
        (4, 2, 1, false, false, false),
        (4, 2, 0, true, false, false),
        (4, 2, 0, true, true, true),
    ] {
        let mut cfg = small_config();
        cfg.model.idf_mut().unwrap().arch.top_groups = top_groups;
        cfg.model.idf_mut().unwrap().arch.prior_groups = prior_groups;
        cfg.model.idf_mut().unwrap().arch.phase_levels = phase_levels;
        cfg.model.idf_mut().unwrap().arch.top_phases = top_phases;
        cfg.model.idf_mut().unwrap().arch.phase_squeeze = phase_squeeze;
        cfg.model.idf_mut().unwrap().arch.prior_skip = prior_skip;
        agree_on_real_images(&cfg);
    }
}

fn agree_on_real_images(cfg: &TrainConfig) {
    let (vs, model) = train::build_model::<Idf>(cfg, Device::Cpu).unwrap();
    // Zero-initialised couplings would make the flow the identity: give every weight a value.
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            let scale = if name.ends_with("conv_out.weight") {
                0.02
            } else {
                0.1
            };
            v.copy_(&(v.randn_like() * scale));
        }
    });
    let values = codec_tensors(&vs, &cfg.model.idf().unwrap().arch).unwrap();
    let engine = EngineIdf::from_parts(
        cfg.model.idf().unwrap().arch.clone(),
        serde_json::json!({}),
        values,
    )
    .unwrap();
    let data = train::load_data(cfg).unwrap();
    let check = engine_check(&engine, &model, &data.test, 20).unwrap();
    assert_eq!(check.images, 20);
    assert!(check.float_bpd > 0.5 && check.float_bpd < 64.0, "{check:?}");
    assert!(check.max_rel_diff < 1e-3, "{check:?}");
    // the couplings really translate: silencing them changes the NLL
    tch::no_grad(|| {
        for (name, mut v) in vs.variables() {
            if name.contains("coupling") && name.contains("conv_out") {
                let _ = v.zero_();
            }
        }
    });
    let identity = engine_check(&engine, &model, &data.test, 20).unwrap();
    assert!(
        (identity.float_bpd - check.float_bpd).abs() > 1e-3,
        "{identity:?} vs {check:?}"
    );
}

#[test]
fn exported_bytes_load_in_the_codec_with_the_same_id() {
    let cfg = small_config();
    let (vs, _) = train::build_model::<Idf>(&cfg, Device::Cpu).unwrap();
    let values = codec_tensors(&vs, &cfg.model.idf().unwrap().arch).unwrap();
    let a = EngineIdf::from_parts(
        cfg.model.idf().unwrap().arch.clone(),
        serde_json::json!({}),
        values,
    )
    .unwrap();
    let bytes = a.to_safetensors(&serde_json::json!({"name": "t"})).unwrap();
    let b = EngineIdf::from_safetensors(&bytes).unwrap();
    assert_eq!(a.id(), b.id());
    assert_eq!(b.card()["name"], "t");
    assert_eq!(b.config(), &cfg.model.idf().unwrap().arch);
}
