//! Training on real Fashion-MNIST images with a tiny IDF: the loss goes down, and a resumed run
//! continues bit-identically.
#![cfg(feature = "train")]

mod common;

use idfcodec::metrics::bpd::dataset_bpd;
use idfcodec::nn::Idf;
use idfcodec::train::{self, checkpoint, config::TrainConfig, LoadedData, TrainJob};
use std::path::Path;
use tch::{Device, Tensor};

/// libtorch's random generator (model initialisation) is global: tests that build models from a
/// seed must not interleave, or two runs with the same seed start from different weights.
static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn tiny_config() -> TrainConfig {
    let mut c = TrainConfig::default();
    let arch = &mut c.model.idf_mut().unwrap().arch;
    arch.hidden = 8;
    arch.couplings = 2;
    arch.mixtures = 2;
    c.data.dataset = "fashion-mnist".into();
    c.data.dir = common::fetched("fashion-mnist");
    c.train.batch_size = 16;
    c.train.lr = 1e-2;
    c.train.warmup_steps = 2;
    c.train.steps = 20;
    c.train.eval_every = 0;
    c.train.eval_images = 64;
    c
}

/// 512 training and 128 test images: enough to see learning, fast on 2 cores.
fn small_data(c: &TrainConfig) -> LoadedData {
    let full = train::load_data(c).unwrap();
    LoadedData {
        train: full.train.narrow(0, 0, 512),
        test: full.test.narrow(0, 0, 128),
    }
}

fn job(c: &TrainConfig, dir: &Path, resume: bool) -> TrainJob {
    TrainJob {
        config: c.clone(),
        out_dir: dir.to_path_buf(),
        resume,
        device: Device::Cpu,
        max_minutes: None,
        chunk_steps: None,
        quiet: true,
    }
}

#[test]
fn twenty_steps_lower_the_test_bpd() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let c = tiny_config();
    let data = small_data(&c);
    let (_vs, untrained) = train::build_model::<Idf>(&c, Device::Cpu).unwrap();
    let random_start = dataset_bpd(&untrained, &data.test, 64, Device::Cpu);
    // where the run starts: priors fitted to the first training images (all 512 here)
    untrained.init_priors(&data.train.to_kind(tch::Kind::Float), |_| true);
    let before = dataset_bpd(&untrained, &data.test, 64, Device::Cpu);
    assert!(
        before < random_start - 1.0,
        "data init {random_start:.3} -> {before:.3}"
    );
    let dir = tempfile::tempdir().unwrap();
    let report = train::run(&job(&c, dir.path(), false), &data).unwrap();
    let after = report.test_bpd.unwrap();
    assert!(report.finished && report.step == 20);
    assert!(after < before - 0.05, "test bpd {before:.3} -> {after:.3}");
    // the log and the plot are written
    let csv = std::fs::read_to_string(dir.path().join("log.csv")).unwrap();
    assert!(csv.lines().count() >= 2, "{csv}");
    assert!(dir.path().join("bpd.png").exists());
    // a second run into the same folder without --resume is refused, not overwritten
    assert!(train::run(&job(&c, dir.path(), false), &data).is_err());
}

fn checkpoint_tensors(dir: &Path) -> Vec<(String, Tensor)> {
    let mut v = Tensor::read_safetensors(dir.join("checkpoint.safetensors")).unwrap();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn resume_continues_bit_identically() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let mut c = tiny_config();
    c.train.steps = 8;
    let data = small_data(&c);
    let straight = tempfile::tempdir().unwrap();
    train::run(&job(&c, straight.path(), false), &data).unwrap();

    let split = tempfile::tempdir().unwrap();
    let mut j = job(&c, split.path(), false);
    j.chunk_steps = Some(3);
    let paused = train::run(&j, &data).unwrap();
    assert!(!paused.finished);
    let state = checkpoint::read_state(split.path()).unwrap();
    assert_eq!(state.step, 3);
    train::run(&job(&c, split.path(), true), &data).unwrap();

    let a = checkpoint_tensors(straight.path());
    let b = checkpoint_tensors(split.path());
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs after resume");
    }
}

/// A run saved before run configs had versions and families (its `checkpoint.json` holds the
/// IDF-only layout without `version`, the IDF's training fields in `train`, and fields left out)
/// resumes with the defaults of version 1, stays version 1, and continues bit-identically.
#[test]
fn an_unversioned_checkpoint_resumes_with_the_defaults_of_its_version() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    let mut c = tiny_config();
    c.version = 1;
    c.train.steps = 8;
    let data = small_data(&c);
    let straight = tempfile::tempdir().unwrap();
    train::run(&job(&c, straight.path(), false), &data).unwrap();

    let split = tempfile::tempdir().unwrap();
    let mut j = job(&c, split.path(), false);
    j.chunk_steps = Some(3);
    train::run(&j, &data).unwrap();
    // rewrite the stored config as the IDF-only writer did, leaving out defaulted fields
    let path = split.path().join("checkpoint.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let config = state["config"].as_object_mut().unwrap();
    assert_eq!(config.remove("version"), Some(1.into()));
    let mut model = config["model"].as_object().unwrap().clone();
    assert_eq!(model.remove("family"), Some("idf".into()));
    let own = model.remove("train").unwrap();
    model.remove("blocks");
    model.remove("levels");
    let schedule = config["train"].as_object_mut().unwrap();
    for (k, v) in own.as_object().unwrap() {
        schedule.insert(k.clone(), v.clone());
    }
    for defaulted in [
        "clip_grad_norm",
        "checkpoint_minutes",
        "coupling_lr_scale",
        "data_init",
    ] {
        schedule.remove(defaulted);
    }
    config.insert("model".into(), model.into());
    std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();

    // resumed as `idfcodec train --resume` does: with the stored config
    let stored = checkpoint::read_state(split.path()).unwrap().config;
    assert_eq!(stored, c);
    train::run(&job(&stored, split.path(), true), &data).unwrap();
    assert_eq!(
        checkpoint::read_state(split.path()).unwrap().config.version,
        1
    );
    let a = checkpoint_tensors(straight.path());
    let b = checkpoint_tensors(split.path());
    assert_eq!(a.len(), b.len());
    for ((na, ta), (nb, tb)) in a.iter().zip(&b) {
        assert_eq!(na, nb);
        assert!(ta.equal(tb), "{na} differs after resume");
    }
}

/// A tiny run trained for `tiny_config`'s 20 steps on one thread, which the growth tests start
/// from (call with `TORCH_RNG` held).
struct Parent {
    config: TrainConfig,
    data: LoadedData,
    dir: tempfile::TempDir,
    test_bpd: f64,
}

fn trained_parent() -> Parent {
    tch::set_num_threads(1);
    let config = tiny_config();
    let data = small_data(&config);
    let dir = tempfile::tempdir().unwrap();
    let report = train::run(&job(&config, dir.path(), false), &data).unwrap();
    Parent {
        test_bpd: report.test_bpd.unwrap(),
        config,
        data,
        dir,
    }
}

#[test]
fn a_trained_run_grows_into_conditional_groups() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let Parent {
        config: c,
        data,
        dir: parent,
        test_bpd: trained_bpd,
    } = trained_parent();

    // the same model with both latents split into conditional groups, started from the run
    let mut grown = c.clone();
    grown.model.idf_mut().unwrap().arch.top_groups = 2;
    grown.model.idf_mut().unwrap().arch.prior_groups = 2;
    grown.train.init_from = Some(parent.path().to_path_buf());
    let (mut vs, model) = train::build_model::<Idf>(&grown, Device::Cpu).unwrap();
    let fresh = checkpoint::copy_matching(parent.path(), &grown.model, &mut vs).unwrap();
    // only the top's new group network is new: the split priors keep their rows, and the new
    // factor-out group networks start as copies of the level's prior
    assert!(!fresh.is_empty());
    assert!(
        fresh.iter().all(|n| n.starts_with("top.group1.")),
        "{fresh:?}"
    );
    // so the grown model codes the factor-outs exactly as the parent does
    let (mut parent_vs, parent_model) = train::build_model::<Idf>(&c, Device::Cpu).unwrap();
    checkpoint::load(parent.path(), &mut parent_vs, None).unwrap();
    let x = data.test.narrow(0, 0, 16).to_kind(tch::Kind::Float);
    let levels = |groups: Vec<Tensor>, per_level: usize| {
        let n = c.model.idf().unwrap().arch.levels * per_level;
        groups[..n].iter().fold(0.0, |acc, g| {
            acc + g.sum(tch::Kind::Double).double_value(&[])
        })
    };
    let parent_levels = levels(parent_model.nll_by_group(&x), 1);
    let grown_levels = levels(model.nll_by_group(&x), 2);
    assert!(
        (parent_levels - grown_levels).abs() < 1e-3 * parent_levels,
        "factor-outs: parent {parent_levels} nats, grown {grown_levels}"
    );
    drop(model);

    // coding level 0's factor-out by pixel phase changes what its priors see and emit: none of
    // them is copied, not even the tensors whose shapes still fit (the residual blocks)
    let mut phased = grown.clone();
    phased.model.idf_mut().unwrap().arch.phase_levels = 1;
    let (mut vs, _) = train::build_model::<Idf>(&phased, Device::Cpu).unwrap();
    let fresh = checkpoint::copy_matching(parent.path(), &phased.model, &mut vs).unwrap();
    let level0: Vec<_> = vs
        .variables()
        .into_keys()
        .filter(|n| n.starts_with("level0.prior"))
        .collect();
    assert!(level0.iter().any(|n| n.contains(".block0.")), "{level0:?}");
    assert!(level0.iter().all(|n| fresh.contains(n)), "{fresh:?}");
    assert!(
        fresh
            .iter()
            .all(|n| n.starts_with("level0.prior") || n.starts_with("top.group1.")),
        "{fresh:?}"
    );

    // a run from it starts near the parent (the new priors fitted to the data) and trains on
    let dir = tempfile::tempdir().unwrap();
    let report = train::run(&job(&grown, dir.path(), false), &data).unwrap();
    let grown_bpd = report.test_bpd.unwrap();
    assert!(
        grown_bpd < trained_bpd + 0.5,
        "parent {trained_bpd:.3}, grown {grown_bpd:.3}"
    );
}

#[test]
fn frozen_parameters_keep_their_values() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let Parent {
        config: c,
        data,
        dir: parent,
        ..
    } = trained_parent();

    // the same model, top coded by pixel phase, the flow and factor-out priors frozen
    let mut grown = c.clone();
    grown.model.idf_mut().unwrap().arch.top_phases = true;
    grown.train.init_from = Some(parent.path().to_path_buf());
    grown.train.freeze = vec!["level".into()];
    let dir = tempfile::tempdir().unwrap();
    train::run(&job(&grown, dir.path(), false), &data).unwrap();

    let before = checkpoint_tensors(parent.path());
    let after = checkpoint_tensors(dir.path());
    let find = |v: &[(String, Tensor)], name: &str| {
        v.iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.shallow_clone())
    };
    let params: Vec<&String> = after
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.starts_with("param."))
        .collect();
    let levels: Vec<_> = params
        .iter()
        .filter(|n| n.starts_with("param.level"))
        .collect();
    assert!(levels.len() > 8, "{params:?}");
    for name in levels {
        let (a, b) = (find(&before, name).unwrap(), find(&after, name).unwrap());
        assert!(a.equal(&b), "{name} moved although frozen");
    }
    // the top trained: its parameters and the new phase networks moved
    let top = "param.top.params";
    assert!(!find(&before, top)
        .unwrap()
        .equal(&find(&after, top).unwrap()));
    assert!(params.iter().any(|n| n.starts_with("param.top.g0p1.")));
}

#[test]
fn a_trained_run_grows_by_a_residual_block_without_losing_what_it_learned() {
    let _rng = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    let Parent {
        config: c,
        data,
        dir: parent,
        test_bpd: trained,
    } = trained_parent();

    let mut grown = c.clone();
    grown.model.idf_mut().unwrap().arch.blocks = c.model.idf().unwrap().arch.blocks + 1;
    grown.train.init_from = Some(parent.path().to_path_buf());
    let (mut vs, model) = train::build_model::<Idf>(&grown, Device::Cpu).unwrap();
    let fresh = checkpoint::copy_matching(parent.path(), &grown.model, &mut vs).unwrap();
    // only the new blocks are new, and their second convolutions start at zero
    let new_block = format!(".block{}.", c.model.idf().unwrap().arch.blocks);
    assert!(!fresh.is_empty());
    assert!(fresh.iter().all(|n| n.contains(&new_block)), "{fresh:?}");
    let variables = vs.variables();
    for name in &fresh {
        let norm = variables[name]
            .abs()
            .sum(tch::Kind::Double)
            .double_value(&[]);
        if name.contains(".conv2.") {
            assert_eq!(norm, 0.0, "{name}");
        } else if name.ends_with(".weight") {
            assert!(norm > 0.0, "{name}");
        }
    }
    let x = data.test.to_kind(tch::Kind::Float);
    let (mut parent_vs, parent_model) = train::build_model::<Idf>(&c, Device::Cpu).unwrap();
    checkpoint::load(parent.path(), &mut parent_vs, None).unwrap();
    let bpd = |m: &Idf| m.bpd(&x).double_value(&[]);
    let (p, g) = (bpd(&parent_model), bpd(&model));
    assert!((p - g).abs() < 1e-4, "parent {p} bpd, grown {g}");
    drop(model);

    // a run from it keeps every copied prior (no data-dependent restart of their last layers):
    // at a negligible rate it ends where the parent did
    grown.train.lr = 1e-12;
    grown.train.lr_min = 0.0;
    let dir = tempfile::tempdir().unwrap();
    let report = train::run(&job(&grown, dir.path(), false), &data).unwrap();
    let start = report.test_bpd.unwrap();
    assert!(
        (start - trained).abs() < 1e-3,
        "parent {trained:.4}, grown run {start:.4}"
    );
}
