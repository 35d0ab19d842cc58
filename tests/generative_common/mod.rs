//! What the VAE and GAN tests share: tiny configs on real data, small fixed data sets, runs
//! through the generic loop, checkpoints compared tensor by tensor.
#![allow(dead_code)]

use idfcodec::train::{self, config::TrainConfig, LoadedData, TrainJob};
use std::path::Path;
use tch::{Device, Tensor};

use crate::common;

/// libtorch's random generator is global: tests that build models or draw noise from a seed
/// must not interleave.
pub static TORCH_RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    let guard = TORCH_RNG.lock().unwrap_or_else(|e| e.into_inner());
    tch::set_num_threads(1);
    guard
}

/// A run config of `family` with `model` fields (TOML lines under `[model]`), on MNIST, a
/// schedule of `steps` steps of batch 32 and no periodic evaluation.
pub fn config(model: &str, steps: usize) -> TrainConfig {
    let text = format!(
        "version = 2\n[model]\n{model}\n[data]\ndataset = \"mnist\"\n\
         [train]\nbatch_size = 32\nlr = 2e-3\nlr_min = 2e-3\nwarmup_steps = 0\n\
         steps = {steps}\nseed = 5\neval_every = 0\neval_images = 64\n"
    );
    let mut c = TrainConfig::from_toml(&text).unwrap();
    c.validate().unwrap();
    c.data.dir = common::fetched("mnist");
    c
}

/// `train` training images (the same batch every step when it equals the batch size) and
/// `test` test images of the config's data.
pub fn small_data(c: &TrainConfig, train: i64, test: i64) -> LoadedData {
    let full = train::load_data(c).unwrap();
    LoadedData {
        train: full.train.narrow(0, 0, train),
        test: full.test.narrow(0, 0, test),
    }
}

pub fn job(c: &TrainConfig, dir: &Path, resume: bool) -> TrainJob {
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

pub fn checkpoint_tensors(dir: &Path) -> Vec<(String, Tensor)> {
    let mut v = Tensor::read_safetensors(dir.join("checkpoint.safetensors")).unwrap();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// Trains `c` straight, and in a chunk of 3 steps then resumed: the checkpoints (weights and
/// optimiser state) must be identical.
pub fn assert_resume_is_bit_identical(c: &TrainConfig, data: &LoadedData) {
    let straight = tempfile::tempdir().unwrap();
    train::run(&job(c, straight.path(), false), data).unwrap();
    let split = tempfile::tempdir().unwrap();
    let mut j = job(c, split.path(), false);
    j.chunk_steps = Some(3);
    let paused = train::run(&j, data).unwrap();
    assert!(!paused.finished && paused.step == 3);
    // resumed as `idfcodec train --resume` does: with the stored config
    let stored = train::checkpoint::read_state(split.path()).unwrap().config;
    assert_eq!(&stored, c);
    train::run(&job(&stored, split.path(), true), data).unwrap();
    let a = checkpoint_tensors(straight.path());
    let b = checkpoint_tensors(split.path());
    assert_eq!(
        a.iter().map(|t| &t.0).collect::<Vec<_>>(),
        b.iter().map(|t| &t.0).collect::<Vec<_>>()
    );
    for ((name, ta), (_, tb)) in a.iter().zip(&b) {
        assert!(ta.equal(tb), "{name} differs after resume");
    }
    // the logs agree too (times aside)
    let columns = |dir: &Path| {
        std::fs::read_to_string(dir.join("log.csv"))
            .unwrap()
            .lines()
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                [&f[..4], &f[7..]].concat().join(",")
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(columns(straight.path()), columns(split.path()));
}
