//! The training loop, generic over the model family ([`Trainable`]): data order from the seed,
//! optimiser, schedule, periodic evaluation, checkpoints every few minutes, a CSV log and plots.
//! Resuming continues bit-identically on the CPU: the only state is the weights, the optimiser
//! and the step counter (libtorch's random generator, which a VAE's or a GAN's step draws
//! from, is seeded from the run's seed and the step before each step and each evaluation).

pub mod checkpoint;
pub mod config;
pub mod log;
pub mod model;
pub mod optim;

use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tch::{nn::VarStore, Device, Kind, Tensor};

use crate::data::{self, Dataset, ImageSet, PatchConfig, Split};
use checkpoint::RunState;
use config::TrainConfig;
use log::LogRow;
pub use model::{Evaluation, FamilyFn, LogColumns, ModelConfig, StepReport, Trainable, Update};
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
    /// The final test figure (the family's `LogColumns::test`: bits/dim for the IDF, the
    /// negative ELBO in bits/dim for a VAE, the critic's loss for a GAN), once finished.
    pub test_bpd: Option<f64>,
    /// The last logged mean of the train figure (`LogColumns::train`).
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

/// An image set as a `u8` tensor `N×C×H×W`.
pub fn to_tensor(set: &ImageSet) -> Tensor {
    Tensor::from_slice(&set.pixels).reshape([
        set.count as i64,
        set.channels as i64,
        set.height as i64,
        set.width as i64,
    ])
}

/// Loads the train and test images named by the config.
pub fn load_data(cfg: &TrainConfig) -> Result<LoadedData, TrainError> {
    Ok(LoadedData {
        train: load_split(cfg, Split::Train)?,
        test: load_split(cfg, Split::Test)?,
    })
}

/// Loads one split of the images named by the config (`N×C×H×W`, `u8`), checked against the
/// model's channels and sizes: an IDX dataset's split, or the split's patches of an image folder
/// (`train/`: `train_patches`, half mirrored; `test/`: `test_patches`).
pub fn load_split(cfg: &TrainConfig, split: Split) -> Result<Tensor, TrainError> {
    let dir = if cfg.data.dir.as_os_str().is_empty() {
        data::data_dir()
    } else {
        cfg.data.dir.clone()
    };
    let set = match cfg.data.dataset.parse::<Dataset>() {
        Ok(ds) => data::load(&dir, ds, split)?,
        Err(unknown) => {
            let folder = dir.join(&cfg.data.dataset);
            if !folder.join("train").is_dir() {
                return Err(TrainError::Config(format!(
                    "{unknown}, and {} is not a folder of images with a train/ subfolder",
                    folder.display()
                )));
            }
            let (sub, flips, count) = match split {
                Split::Train => ("train", true, cfg.data.train_patches),
                Split::Test => ("test", false, cfg.data.test_patches),
            };
            let patches = PatchConfig {
                size: cfg.data.patch_size,
                channels: cfg.model.in_channels(),
                seed: cfg.train.seed,
                flips,
            };
            data::patch_set(&folder.join(sub), patches, count)?
        }
    };
    check_images(cfg, &cfg.data.dataset, set.channels, set.height, set.width)?;
    Ok(to_tensor(&set))
}

/// An error unless images of `channels`, `height` and `width` (from `what`) fit the run's model.
pub fn check_images(
    cfg: &TrainConfig,
    what: &str,
    channels: usize,
    height: usize,
    width: usize,
) -> Result<(), TrainError> {
    if channels != cfg.model.in_channels() {
        return Err(TrainError::Config(format!(
            "{what} has {channels} channel(s) but the model takes {}",
            cfg.model.in_channels()
        )));
    }
    let m = cfg.model.size_multiple();
    if height % m != 0 || width % m != 0 {
        return Err(TrainError::Config(format!(
            "images are {height}×{width}, but the model needs multiples of {m}"
        )));
    }
    if let Some(side) = cfg.model.image_size() {
        if height != side || width != side {
            return Err(TrainError::Config(format!(
                "images are {height}×{width}, but the model is built for {side}×{side} \
                 (model.image_size; for an image folder set data.patch_size)"
            )));
        }
    }
    Ok(())
}

/// The batch order: a fresh permutation per epoch from (seed, epoch); last partial batch dropped.
/// Also used by the feature classifiers' training (`metrics::features`).
pub(crate) struct BatchOrder {
    seed: u64,
    count: usize,
    batch: usize,
    epoch: Option<usize>,
    perm: Vec<i64>,
}

impl BatchOrder {
    /// The order of `count` images in batches of `batch`, from `seed`.
    pub(crate) fn new(seed: u64, count: usize, batch: usize) -> Self {
        BatchOrder {
            seed,
            count,
            batch,
            epoch: None,
            perm: vec![],
        }
    }

    pub(crate) fn steps_per_epoch(&self) -> usize {
        (self.count / self.batch).max(1)
    }

    /// The image indices of batch `step` (counted over all epochs).
    pub(crate) fn indices(&mut self, step: usize) -> Tensor {
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

/// Builds the model of family `M` and its variables on `device`, seeded; an error when the
/// config is of another family.
pub fn build_model<M: Trainable>(
    cfg: &TrainConfig,
    device: Device,
) -> Result<(VarStore, M), TrainError> {
    let config = cfg.model.of::<M>().ok_or_else(|| {
        TrainError::Config(format!(
            "the run's model is of family {:?}, not {:?}",
            cfg.model.family(),
            M::FAMILY
        ))
    })?;
    Ok(build::<M>(config, cfg.train.seed, device))
}

fn build<M: Trainable>(config: &M::Config, seed: u64, device: Device) -> (VarStore, M) {
    tch::manual_seed(seed as i64);
    let vs = VarStore::new(device);
    let model = M::new(&vs.root(), config);
    (vs, model)
}

/// Test images per evaluation batch.
const EVAL_BATCH: i64 = 500;

/// The seed of libtorch's generator before training step `step` (`evaluation`: before the
/// evaluation after that step) of a run seeded `seed`: resumed runs draw the same noise.
fn step_seed(seed: u64, step: usize, evaluation: bool) -> i64 {
    let mixed = seed
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(
            (step as u64)
                .wrapping_mul(2)
                .wrapping_add(evaluation as u64),
        )
        .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (mixed >> 1) as i64
}

/// The evaluation of the checkpoint in `run` under `config` (its saved config, or one differing
/// only in evaluation fields such as a VAE's `iwae_samples`) on the first `limit` test images
/// (all: `None`), and how many images that was.
pub fn evaluate_run(
    run: &Path,
    config: &TrainConfig,
    limit: Option<usize>,
    device: Device,
) -> Result<(Evaluation, i64), TrainError> {
    struct Eval<'a> {
        run: &'a Path,
        config: &'a TrainConfig,
        limit: Option<usize>,
        device: Device,
    }
    impl FamilyFn for Eval<'_> {
        type Output = Result<(Evaluation, i64), TrainError>;
        fn call<M: Trainable>(self, _: &M::Config) -> Self::Output {
            let (mut vs, model) = build_model::<M>(self.config, self.device)?;
            checkpoint::load(self.run, &mut vs, None)?;
            let test = load_split(self.config, Split::Test)?;
            let n = self
                .limit
                .map_or(test.size()[0], |l| (l as i64).min(test.size()[0]));
            let test = test.narrow(0, 0, n);
            Ok((model.evaluate(&test, EVAL_BATCH, self.device), n))
        }
    }
    config.model.with_family(Eval {
        run,
        config,
        limit,
        device,
    })
}

/// Runs (or resumes) a training job until its step count or its time limit, with the model
/// family its config names.
pub fn run(job: &TrainJob, data: &LoadedData) -> Result<TrainReport, TrainError> {
    struct Run<'a> {
        job: &'a TrainJob,
        data: &'a LoadedData,
    }
    impl FamilyFn for Run<'_> {
        type Output = Result<TrainReport, TrainError>;
        fn call<M: Trainable>(self, config: &M::Config) -> Self::Output {
            Session::<M>::start(self.job, config, self.data)?.train()
        }
    }
    job.config.validate().map_err(TrainError::Config)?;
    job.config.model.with_family(Run { job, data })
}

/// A run in progress: the model, its optimiser and the run's state and log.
struct Session<'a, M: Trainable> {
    job: &'a TrainJob,
    data: &'a LoadedData,
    vs: VarStore,
    model: M,
    opt: Optimizer,
    state: RunState,
    rows: Vec<LogRow>,
    order: BatchOrder,
    csv: PathBuf,
    columns: LogColumns,
    title: String,
}

impl<'a, M: Trainable> Session<'a, M> {
    /// Set-up: the run folder, the model and its optimiser, then either the checkpoint's state
    /// (`--resume`) or a new run's start (`init_from`, data-dependent initialisation).
    fn start(
        job: &'a TrainJob,
        config: &M::Config,
        data: &'a LoadedData,
    ) -> Result<Self, TrainError> {
        let cfg = &job.config;
        std::fs::create_dir_all(&job.out_dir).map_err(|e| TrainError::io(&job.out_dir, e))?;
        if checkpoint::exists(&job.out_dir) && !job.resume {
            return Err(TrainError::Config(format!(
                "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
                job.out_dir.display()
            )));
        }
        let (vs, model) = build::<M>(config, cfg.train.seed, job.device);
        let frozen = |name: &str| cfg.train.freeze.iter().any(|p| name.starts_with(p));
        let opt = Optimizer::new(
            &vs,
            cfg.train.optimizer,
            &M::param_groups(config),
            |name, param| {
                if frozen(name) {
                    Tensor::from(0f32).to_device(param.device())
                } else {
                    M::lr_scale(config, name, param)
                }
            },
        )
        .map_err(TrainError::Config)?;
        let csv = job.out_dir.join("log.csv");
        let mut session = Session {
            job,
            data,
            vs,
            model,
            opt,
            state: RunState {
                step: 0,
                train_seconds: 0.0,
                test_bpd: None,
                config: cfg.clone(),
                hardware: Vec::new(),
            },
            rows: Vec::new(),
            order: BatchOrder::new(
                cfg.train.seed,
                data.train.size()[0] as usize,
                cfg.train.batch_size,
            ),
            columns: M::log_columns(config),
            csv,
            title: format!(
                "{} on {} ({} parameters)",
                M::NAME,
                cfg.data.dataset,
                M::parameter_count(config)
            ),
        };
        if job.resume && checkpoint::exists(&job.out_dir) {
            session.resume()?;
        } else {
            session.begin(config)?;
        }
        session
            .state
            .hardware
            .push(crate::device::describe(job.device));
        session.rows = log::read(&session.csv, session.state.step);
        Ok(session)
    }

    /// Restores the checkpoint; only `train.steps` may differ from its config.
    fn resume(&mut self) -> Result<(), TrainError> {
        let cfg = &self.job.config;
        self.state = checkpoint::load(&self.job.out_dir, &mut self.vs, Some(&mut self.opt))?;
        let mut saved = self.state.config.clone();
        saved.train.steps = cfg.train.steps;
        if saved != *cfg {
            return Err(TrainError::Config(
                "the checkpoint was trained with another config (only train.steps may change on --resume)".into(),
            ));
        }
        self.state.config = cfg.clone();
        Ok(())
    }

    /// A new run: the weights of `init_from` where they fit, then the family's data-dependent
    /// initialisation of what was not copied.
    fn begin(&mut self, config: &M::Config) -> Result<(), TrainError> {
        let cfg = &self.job.config;
        // names of the variables a `init_from` run did not provide (None: no such run)
        let fresh = match &cfg.train.init_from {
            Some(dir) => {
                let fresh = checkpoint::copy_matching(dir, &cfg.model, &mut self.vs)?;
                println!(
                    "started from {}: {} tensors copied, new: {}",
                    dir.display(),
                    self.vs.variables().len() - fresh.len(),
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
        self.model
            .data_init(config, &self.data.train, self.job.device, fresh.as_deref());
        Ok(())
    }

    /// One training step at the run's current step (the family's [`Trainable::train_step`]);
    /// returns what it reports and the batch's size.
    fn step(&mut self) -> Result<(StepReport, usize), TrainError> {
        let cfg = &self.job.config;
        let step = self.state.step;
        let idx = self.order.indices(step);
        let x = self
            .data
            .train
            .index_select(0, &idx)
            .to_device(self.job.device)
            .to_kind(Kind::Float);
        tch::manual_seed(step_seed(cfg.train.seed, step, false));
        let mut update = Update::new(&mut self.opt, cfg.lr_at(step), cfg.train.clip_grad_norm);
        let report = self.model.train_step(&x, &mut update);
        if self.opt.steps_taken() as usize != step + 1 {
            return Err(TrainError::Other(format!(
                "{}'s training step did not update its first parameter group exactly once",
                M::NAME
            )));
        }
        let value = report.loss;
        if !value.is_finite() {
            return Err(TrainError::Other(format!(
                "loss became {value} at step {step}; lower the learning rate"
            )));
        }
        self.state.step += 1;
        Ok((report, x.size()[0] as usize))
    }

    /// The evaluation figure of the first `n` test images (all: `None`).
    fn evaluate(&self, n: Option<i64>) -> f64 {
        let test = &self.data.test;
        let images = match n {
            Some(n) => test.narrow(0, 0, n),
            None => test.shallow_clone(),
        };
        tch::manual_seed(step_seed(self.job.config.train.seed, self.state.step, true));
        self.model
            .evaluate(&images, EVAL_BATCH, self.job.device)
            .total
    }

    /// Writes the checkpoint and the log.
    fn checkpoint(&self) -> Result<(), TrainError> {
        checkpoint::save(&self.job.out_dir, &self.vs, &self.opt, &self.state)?;
        log::write(&self.csv, &self.rows, &self.columns)
    }

    fn plot(&self) -> Result<(), TrainError> {
        log::plot_run(&self.job.out_dir, &self.rows, &self.title, &self.columns)
    }

    /// The loop: steps until the run's or the chunk's end, logging, evaluating and checkpointing
    /// on the way, then the final evaluation (at the run's end) and checkpoint.
    fn train(mut self) -> Result<TrainReport, TrainError> {
        let job = self.job;
        let cfg = &job.config;
        let eval_n = (cfg.train.eval_images as i64)
            .min(self.data.test.size()[0])
            .max(1);
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
        bar.set_position(self.state.step as u64);

        let mut clock = Clock::new();
        let mut last_save = Instant::now();
        let mut window = (0.0f64, 0usize, Instant::now());
        let mut window_extras = vec![0.0f64; self.columns.extras.len()];
        let mut last_train_bpd = f64::NAN;
        let mut images = 0usize;
        let log_every = 50.min(cfg.train.eval_every.max(1));
        let chunk_end = job.chunk_steps.map_or(cfg.train.steps, |n| {
            (self.state.step + n).min(cfg.train.steps)
        });
        while self.state.step < chunk_end && !clock.time_up(job.max_minutes) {
            let lr = cfg.lr_at(self.state.step);
            let (report, batch) = self.step()?;
            images += batch;
            window.0 += report.loss;
            window.1 += 1;
            for (sum, v) in window_extras.iter_mut().zip(&report.extras) {
                *sum += v;
            }
            bar.inc(1);

            let step = self.state.step;
            let eval_now = cfg.train.eval_every > 0 && step % cfg.train.eval_every == 0;
            if step % log_every == 0 || eval_now || step == cfg.train.steps {
                let secs = window.2.elapsed().as_secs_f64();
                let mean = window.0 / window.1 as f64;
                last_train_bpd = mean;
                let test_bpd = eval_now.then(|| self.evaluate(Some(eval_n)));
                let ips = (window.1 * cfg.train.batch_size) as f64 / secs.max(1e-9);
                self.rows.push(LogRow {
                    step,
                    epoch: step as f64 / self.order.steps_per_epoch() as f64,
                    lr,
                    train_bpd: mean,
                    test_bpd,
                    images_per_s: ips,
                    elapsed_s: self.state.train_seconds + clock.unaccounted(),
                    extras: window_extras.iter().map(|s| s / window.1 as f64).collect(),
                });
                let test_msg = self
                    .rows
                    .iter()
                    .rev()
                    .find_map(|r| r.test_bpd)
                    .map(|t| format!(" test {t:.3}"))
                    .unwrap_or_default();
                bar.set_message(format!(
                    "{} {mean:.3}{test_msg} | {ips:.0} img/s",
                    self.columns.train
                ));
                window = (0.0, 0, Instant::now());
                window_extras.iter_mut().for_each(|s| *s = 0.0);
                if eval_now {
                    log::write(&self.csv, &self.rows, &self.columns)?;
                    self.plot()?;
                }
            }
            if last_save.elapsed().as_secs_f64() > cfg.train.checkpoint_minutes * 60.0 {
                clock.account(&mut self.state);
                self.checkpoint()?;
                last_save = Instant::now();
            }
        }
        let finished = self.state.step >= cfg.train.steps;
        if finished {
            let full = self.evaluate(None);
            self.state.test_bpd = Some(full);
            if let Some(last) = self.rows.last_mut() {
                last.test_bpd = Some(full);
            }
        }
        clock.account(&mut self.state);
        self.checkpoint()?;
        self.plot()?;
        bar.finish();
        let chunk_seconds = clock.start.elapsed().as_secs_f64();
        Ok(TrainReport {
            step: self.state.step,
            finished,
            test_bpd: self.state.test_bpd,
            last_train_bpd,
            images_per_s: images as f64 / chunk_seconds.max(1e-9),
            chunk_seconds,
            parameters: cfg.model.parameter_count(),
        })
    }
}

/// This chunk's wall clock, and how much of it the run's training time already counts.
struct Clock {
    start: Instant,
    accounted: f64,
}

impl Clock {
    fn new() -> Self {
        Clock {
            start: Instant::now(),
            accounted: 0.0,
        }
    }

    /// Past the chunk's time limit (`--minutes`).
    fn time_up(&self, max_minutes: Option<f64>) -> bool {
        max_minutes.is_some_and(|m| self.start.elapsed().as_secs_f64() > m * 60.0)
    }

    /// Seconds of this chunk not yet added to the run's training time.
    fn unaccounted(&self) -> f64 {
        self.start.elapsed().as_secs_f64() - self.accounted
    }

    /// Adds this chunk's seconds since the last call to the run's training time.
    fn account(&mut self, state: &mut RunState) {
        let now = self.start.elapsed().as_secs_f64();
        state.train_seconds += now - self.accounted;
        self.accounted = now;
    }
}
