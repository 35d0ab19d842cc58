//! The training loop: data order from the seed, optimiser, schedule, periodic evaluation,
//! checkpoints every few minutes, a CSV log and a bpd plot. Resuming continues bit-identically
//! on the CPU: the only state is the weights, the optimiser and the step counter.

pub mod checkpoint;
pub mod config;
pub mod log;
pub mod optim;

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::data::{self, Dataset, ImageSet, PatchConfig, Split};
use crate::metrics::bpd::dataset_bpd;
use crate::nn::Idf;
use checkpoint::RunState;
use config::TrainConfig;
use idfcodec_codec::arch::{IdfConfig, MEAN_SCALE};
use log::LogRow;
use optim::Optimizer;

/// Errors of training, evaluation and export.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    #[error("config: {0}")]
    Config(String),
    #[error("data: {0}")]
    Data(#[from] data::DataError),
    #[error("plot: {0}")]
    Plot(String),
    #[error("{0}")]
    Other(String),
}

impl TrainError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        TrainError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How to run a training job.
pub struct TrainJob {
    pub config: TrainConfig,
    /// Run folder: checkpoint, `log.csv`, `bpd.png`.
    pub out_dir: PathBuf,
    /// Continue from the checkpoint in `out_dir`.
    pub resume: bool,
    pub device: Device,
    /// Stop (with a checkpoint) after this many minutes of this chunk; resume later.
    pub max_minutes: Option<f64>,
    /// Stop (with a checkpoint) after this many steps of this chunk; resume later.
    pub chunk_steps: Option<usize>,
    /// No progress bar (tests, logs).
    pub quiet: bool,
}

/// What a finished (or paused) chunk reports.
#[derive(Clone, Debug)]
pub struct TrainReport {
    pub step: usize,
    pub finished: bool,
    pub test_bpd: Option<f64>,
    pub last_train_bpd: f64,
    pub images_per_s: f64,
    pub chunk_seconds: f64,
    pub parameters: usize,
}

/// A dataset as tensors.
pub struct LoadedData {
    pub train: Tensor,
    pub test: Tensor,
}

fn to_tensor(set: &ImageSet) -> Tensor {
    Tensor::from_slice(&set.pixels).reshape([
        set.count as i64,
        set.channels as i64,
        set.height as i64,
        set.width as i64,
    ])
}

/// Loads the train and test images named by the config.
pub fn load_data(cfg: &TrainConfig) -> Result<LoadedData, TrainError> {
    let dir = if cfg.data.dir.as_os_str().is_empty() {
        data::data_dir()
    } else {
        cfg.data.dir.clone()
    };
    let (train, test) = match cfg.data.dataset.parse::<Dataset>() {
        Ok(ds) => (
            data::load(&dir, ds, Split::Train)?,
            data::load(&dir, ds, Split::Test)?,
        ),
        Err(unknown) => {
            let folder = dir.join(&cfg.data.dataset);
            if !folder.join("train").is_dir() {
                return Err(TrainError::Config(format!(
                    "{unknown}, and {} is not a folder of images with a train/ subfolder",
                    folder.display()
                )));
            }
            let patches = PatchConfig {
                size: cfg.data.patch_size,
                channels: cfg.model.in_channels,
                seed: cfg.train.seed,
                flips: true,
            };
            let test_patches = PatchConfig {
                flips: false,
                ..patches
            };
            (
                data::patch_set(&folder.join("train"), patches, cfg.data.train_patches)?,
                data::patch_set(&folder.join("test"), test_patches, cfg.data.test_patches)?,
            )
        }
    };
    if train.channels != cfg.model.in_channels {
        return Err(TrainError::Config(format!(
            "{} has {} channel(s) but model.in_channels = {}",
            cfg.data.dataset, train.channels, cfg.model.in_channels
        )));
    }
    let m = cfg.model.size_multiple();
    if train.height % m != 0 || train.width % m != 0 {
        return Err(TrainError::Config(format!(
            "images are {}×{}, but {} levels need multiples of {m}",
            train.height, train.width, cfg.model.levels
        )));
    }
    Ok(LoadedData {
        train: to_tensor(&train),
        test: to_tensor(&test),
    })
}

/// The batch order: a fresh permutation per epoch from (seed, epoch); last partial batch dropped.
struct BatchOrder {
    seed: u64,
    count: usize,
    batch: usize,
    epoch: Option<usize>,
    perm: Vec<i64>,
}

impl BatchOrder {
    fn steps_per_epoch(&self) -> usize {
        (self.count / self.batch).max(1)
    }

    fn indices(&mut self, step: usize) -> Tensor {
        let epoch = step / self.steps_per_epoch();
        if self.epoch != Some(epoch) {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(
                self.seed ^ (epoch as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            );
            self.perm = (0..self.count as i64).collect();
            self.perm.shuffle(&mut rng);
            self.epoch = Some(epoch);
        }
        let k = (step % self.steps_per_epoch()) * self.batch;
        let end = (k + self.batch).min(self.count);
        Tensor::from_slice(&self.perm[k..end])
    }
}

/// Training images whose latents start the priors (`train.data_init`).
const DATA_INIT_IMAGES: i64 = 512;

/// Builds the model and its variables on `device`, seeded.
pub fn build_model(cfg: &TrainConfig, device: Device) -> (VarStore, Idf) {
    tch::manual_seed(cfg.train.seed as i64);
    let vs = VarStore::new(device);
    let model = Idf::new(&vs.root(), &cfg.model);
    (vs, model)
}

/// The learning-rate multiplier of the parameter `name` (tensor names of
/// [`idfcodec_codec::arch`]), per element where it matters.
///
/// Adam moves every parameter by about the learning rate per step whatever its gradient, so a
/// parameter's rate must match how far its effect travels: a raw mixture mean is multiplied by
/// `MEAN_SCALE` (128) pixels, and a prior with a scale of a twentieth of a pixel (MNIST's
/// background) cannot stand means that jitter by 0.1 pixel a step. Rows of the priors' last
/// layer and of the top parameters that produce means get `1/MEAN_SCALE`, so a mean moves by
/// about the learning rate in pixels. On top, [`config::Schedule::output_lr_scale`] and
/// [`config::Schedule::coupling_lr_scale`] slow the last layers' weights. A prior's linear path
/// (`conv_skip`, input to output) learns at the full rate: a mean following its neighbours needs
/// weights near 1/4, which 1/MEAN_SCALE would take hundreds of thousands of steps to reach.
fn lr_scale(schedule: &config::Schedule, mixtures: usize, name: &str, param: &Tensor) -> Tensor {
    let last_layer = name.contains(".conv_out.");
    let frozen = schedule
        .freeze
        .iter()
        .any(|prefix| name.starts_with(prefix));
    let base = if frozen {
        0.0
    } else if last_layer && name.contains(".coupling") {
        schedule.coupling_lr_scale
    } else if last_layer && name.ends_with("weight") {
        schedule.output_lr_scale
    } else {
        1.0
    };
    let raw_rows = |count: i64| {
        // raw channel r of a latent holds a mean when r mod 3M is in M..2M
        let m = mixtures as i64;
        let rates: Vec<f32> = (0..count)
            .map(|r| {
                let mean = (m..2 * m).contains(&(r % (3 * m)));
                (base
                    * if mean {
                        1.0 / f64::from(MEAN_SCALE)
                    } else {
                        1.0
                    }) as f32
            })
            .collect();
        Tensor::from_slice(&rates).to_device(param.device())
    };
    let size = param.size();
    if name == IdfConfig::TOP_PARAMS {
        // [C, 3M]: the raw row of every channel along the last axis
        raw_rows(size[1]).reshape([1, size[1]])
    } else if last_layer && (name.contains(".prior") || name.starts_with("top.")) {
        // weight [3M·F, hidden, 3, 3] or bias [3M·F]: one raw channel per output row
        let mut shape = vec![1i64; size.len()];
        shape[0] = size[0];
        raw_rows(size[0]).reshape(shape)
    } else {
        Tensor::from(base as f32).to_device(param.device())
    }
}

/// Runs (or resumes) a training job until its step count or its time limit.
pub fn run(job: &TrainJob, data: &LoadedData) -> Result<TrainReport, TrainError> {
    job.config.validate().map_err(TrainError::Config)?;
    std::fs::create_dir_all(&job.out_dir).map_err(|e| TrainError::io(&job.out_dir, e))?;
    if checkpoint::exists(&job.out_dir) && !job.resume {
        return Err(TrainError::Config(format!(
            "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
            job.out_dir.display()
        )));
    }
    let cfg = &job.config;
    let (mut vs, model) = build_model(cfg, job.device);
    let mut opt = Optimizer::new(&vs, cfg.train.optimizer, |name, param| {
        lr_scale(&cfg.train, cfg.model.mixtures, name, param)
    });
    let mut state = RunState {
        step: 0,
        train_seconds: 0.0,
        test_bpd: None,
        config: cfg.clone(),
        hardware: Vec::new(),
    };
    if job.resume && checkpoint::exists(&job.out_dir) {
        state = checkpoint::load(&job.out_dir, &mut vs, Some(&mut opt))?;
        let mut saved = state.config.clone();
        saved.train.steps = cfg.train.steps;
        if saved != *cfg {
            return Err(TrainError::Config(
                "the checkpoint was trained with another config (only train.steps may change on --resume)".into(),
            ));
        }
        state.config = cfg.clone();
    } else {
        // names of the variables a `init_from` run did not provide (None: no such run)
        let fresh = match &cfg.train.init_from {
            Some(dir) => {
                let fresh = checkpoint::copy_matching(dir, &cfg.model, &mut vs)?;
                println!(
                    "started from {}: {} tensors copied, new: {}",
                    dir.display(),
                    vs.variables().len() - fresh.len(),
                    if fresh.is_empty() {
                        "none".to_string()
                    } else {
                        fresh.join(", ")
                    }
                );
                Some(fresh)
            }
            None => None,
        };
        if cfg.train.data_init {
            let n = DATA_INIT_IMAGES.min(data.train.size()[0]);
            let x = data
                .train
                .narrow(0, 0, n)
                .to_device(job.device)
                .to_kind(Kind::Float);
            model.init_priors(&x, |prior| {
                fresh.as_ref().map_or(true, |fresh| {
                    fresh
                        .iter()
                        .any(|v| v == prior || v.starts_with(&format!("{prior}.conv_out.")))
                })
            });
        }
    }
    state.hardware.push(crate::device::describe(job.device));

    let csv = job.out_dir.join("log.csv");
    let png = job.out_dir.join("bpd.png");
    let mut rows = log::read(&csv, state.step);
    let title = format!(
        "IDF on {} ({} parameters)",
        cfg.data.dataset,
        cfg.model.parameter_count()
    );
    let n_train = data.train.size()[0] as usize;
    let mut order = BatchOrder {
        seed: cfg.train.seed,
        count: n_train,
        batch: cfg.train.batch_size,
        epoch: None,
        perm: vec![],
    };
    let eval_n = (cfg.train.eval_images as i64)
        .min(data.test.size()[0])
        .max(1);
    let eval_batch = 500;

    let bar = if job.quiet {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(cfg.train.steps as u64)
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} steps {msg} (eta {eta})",
        )
        .expect("valid template"),
    );
    bar.set_position(state.step as u64);

    let chunk_start = Instant::now();
    let mut last_save = Instant::now();
    let mut accounted = 0.0;
    let mut window = (0.0f64, 0usize, Instant::now());
    let mut last_train_bpd = f64::NAN;
    let mut images = 0usize;
    let log_every = 50.min(cfg.train.eval_every.max(1));
    let time_up = |t: &Instant| {
        job.max_minutes
            .is_some_and(|m| t.elapsed().as_secs_f64() > m * 60.0)
    };

    let chunk_end = job
        .chunk_steps
        .map_or(cfg.train.steps, |n| (state.step + n).min(cfg.train.steps));
    while state.step < chunk_end && !time_up(&chunk_start) {
        let step = state.step;
        let lr = cfg.lr_at(step);
        let idx = order.indices(step);
        let x = data
            .train
            .index_select(0, &idx)
            .to_device(job.device)
            .to_kind(Kind::Float);
        let loss = model.bpd(&x);
        opt.zero_grad();
        loss.backward();
        let mut scale = 1.0;
        if cfg.train.clip_grad_norm > 0.0 {
            let norm = opt.grad_norm();
            if norm > cfg.train.clip_grad_norm {
                scale = cfg.train.clip_grad_norm / norm;
            }
        }
        opt.step(lr, scale);
        let bpd = loss.double_value(&[]);
        if !bpd.is_finite() {
            return Err(TrainError::Other(format!(
                "loss became {bpd} at step {step}; lower the learning rate"
            )));
        }
        images += x.size()[0] as usize;
        window.0 += bpd;
        window.1 += 1;
        state.step += 1;
        bar.inc(1);

        let eval_now = cfg.train.eval_every > 0 && state.step % cfg.train.eval_every == 0;
        if state.step % log_every == 0 || eval_now || state.step == cfg.train.steps {
            let secs = window.2.elapsed().as_secs_f64();
            let mean = window.0 / window.1 as f64;
            last_train_bpd = mean;
            let test_bpd = eval_now.then(|| {
                dataset_bpd(
                    &model,
                    &data.test.narrow(0, 0, eval_n),
                    eval_batch,
                    job.device,
                )
            });
            let ips = (window.1 * cfg.train.batch_size) as f64 / secs.max(1e-9);
            rows.push(LogRow {
                step: state.step,
                epoch: state.step as f64 / order.steps_per_epoch() as f64,
                lr,
                train_bpd: mean,
                test_bpd,
                images_per_s: ips,
                elapsed_s: state.train_seconds + chunk_start.elapsed().as_secs_f64() - accounted,
            });
            let test_msg = rows
                .iter()
                .rev()
                .find_map(|r| r.test_bpd)
                .map(|t| format!(" test {t:.3}"))
                .unwrap_or_default();
            bar.set_message(format!("bpd {mean:.3}{test_msg} | {ips:.0} img/s"));
            window = (0.0, 0, Instant::now());
            if eval_now {
                log::write(&csv, &rows)?;
                log::plot(&png, &rows, &title)?;
            }
        }
        if last_save.elapsed().as_secs_f64() > cfg.train.checkpoint_minutes * 60.0 {
            account(&mut state, &mut accounted, &chunk_start);
            checkpoint::save(&job.out_dir, &vs, &opt, &state)?;
            log::write(&csv, &rows)?;
            last_save = Instant::now();
        }
    }
    let finished = state.step >= cfg.train.steps;
    if finished {
        let full = dataset_bpd(&model, &data.test, eval_batch, job.device);
        state.test_bpd = Some(full);
        if let Some(last) = rows.last_mut() {
            last.test_bpd = Some(full);
        }
    }
    account(&mut state, &mut accounted, &chunk_start);
    checkpoint::save(&job.out_dir, &vs, &opt, &state)?;
    log::write(&csv, &rows)?;
    log::plot(&png, &rows, &title)?;
    bar.finish();
    let chunk_seconds = chunk_start.elapsed().as_secs_f64();
    Ok(TrainReport {
        step: state.step,
        finished,
        test_bpd: state.test_bpd,
        last_train_bpd,
        images_per_s: images as f64 / chunk_seconds.max(1e-9),
        chunk_seconds,
        parameters: cfg.model.parameter_count(),
    })
}

/// Adds this chunk's seconds since the last call to the run's training time.
fn account(state: &mut RunState, accounted: &mut f64, chunk_start: &Instant) {
    let now = chunk_start.elapsed().as_secs_f64();
    state.train_seconds += now - *accounted;
    *accounted = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rate_multipliers_follow_what_a_parameter_moves() {
        let s = config::Schedule {
            output_lr_scale: 0.5,
            coupling_lr_scale: 0.25,
            ..Default::default()
        };
        let m = 2; // raw rows per latent: logit, logit, mean, mean, log-scale, log-scale
        let rate = |name: &str, shape: &[i64]| {
            let p = Tensor::zeros(shape, (Kind::Float, tch::Device::Cpu));
            let r = lr_scale(&s, m, name, &p).expand_as(&p).flatten(0, -1);
            Vec::<f32>::try_from(r).unwrap()
        };
        assert!(rate("level0.coupling3.conv_out.weight", &[2, 4, 3, 3])
            .iter()
            .all(|&v| v == 0.25));
        assert_eq!(rate("level1.coupling0.conv_out.bias", &[2]), [0.25, 0.25]);
        assert_eq!(
            rate("level0.coupling0.conv_in.weight", &[1, 1, 1, 1]),
            [1.0]
        );
        let mean = 1.0 / MEAN_SCALE;
        assert_eq!(
            rate("level0.prior.conv_out.bias", &[12]),
            [1.0, 1.0, mean, mean, 1.0, 1.0, 1.0, 1.0, mean, mean, 1.0, 1.0]
        );
        let w = rate("level0.prior.conv_out.weight", &[6, 1, 1, 2]);
        assert_eq!(
            w,
            [
                0.5,
                0.5,
                0.5,
                0.5,
                0.5 * mean,
                0.5 * mean,
                0.5 * mean,
                0.5 * mean,
                0.5,
                0.5,
                0.5,
                0.5
            ]
        );
        assert_eq!(
            rate("top.params", &[1, 6]),
            [1.0, 1.0, mean, mean, 1.0, 1.0]
        );
        assert_eq!(
            rate("top.group2.conv_out.bias", &[6]),
            [1.0, 1.0, mean, mean, 1.0, 1.0]
        );
        assert_eq!(rate("top.group2.conv_in.bias", &[2]), [1.0, 1.0]);
    }
}
