//! Export: a training checkpoint → one self-describing model file for the codec
//! (`models/NAME.safetensors`: weights + architecture + card, written by the codec crate's one
//! writer) and a human-readable model card (`models/NAME.md`).
//!
//! Before writing, the exported weights are run on the codec's deterministic engine and its NLL
//! is compared with the float tch model's on test images; both figures go into the card.

use idfcodec_codec::entropy::{finish_stream, start_stream, BinnedStart, StreamStart};
use idfcodec_codec::model::idf::flow;
use idfcodec_codec::model::vae::{push_block, LatentGrids};
use idfcodec_codec::Idf as EngineIdf;
use idfcodec_codec::{Vae as EngineVae, VaeConfig as CodecVaeConfig};
use serde_json::json;
use std::fmt;
use std::path::{Path, PathBuf};
use tch::{Device, Kind};

use crate::metrics::bpd::{dataset_bpd, Likelihood};
use crate::nn::hvae::Hvae;
use crate::nn::idf::IdfModelConfig;
use crate::nn::vae::Vae;
use crate::nn::Idf;
use crate::train::model::Trainable;
use crate::train::{self, checkpoint, TrainError};

/// What to export.
pub struct ExportJob {
    pub run: PathBuf,
    pub name: String,
    pub out_dir: PathBuf,
    pub force: bool,
    /// Test images for the engine-vs-float comparison (0: skip).
    pub check_images: usize,
    /// A hierarchical VAE's grids below the top (`None`: fitted for a hierarchy; see
    /// [`idfcodec_codec::model::vae::arch`], "Fitted grids").
    pub latent_grids: Option<LatentGrids>,
}

/// Training images the fitted grids' moments are taken over (the first ones of the split).
pub const GRID_FIT_IMAGES: i64 = 10_000;
/// Seed of libtorch's generator for the posterior samples of the grid fit.
const GRID_FIT_SEED: i64 = 17;

/// Figures measured during an export.
#[derive(Debug)]
pub struct ExportReport {
    pub model_path: PathBuf,
    pub card_path: PathBuf,
    pub parameters: usize,
    pub test_bpd: f64,
    pub check: Option<EngineCheck>,
}

/// The engine against the float model on the same images.
#[derive(Clone, Debug)]
pub struct EngineCheck {
    pub images: usize,
    pub float_bpd: f64,
    pub engine_bpd: f64,
    /// Largest per-image relative NLL difference.
    pub max_rel_diff: f64,
    /// VAEs: the engine's real code length of the same images pushed as one chain (BB-ANS's
    /// chain: the first image's draws and the flush counted), bits per sub-pixel.
    pub coded_bpd: Option<f64>,
}

impl fmt::Display for ExportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "wrote {} and {}",
            self.model_path.display(),
            self.card_path.display()
        )?;
        write!(
            f,
            "{} parameters, test bpd {:.4} (float model, whole test set)",
            self.parameters, self.test_bpd
        )?;
        if let Some(c) = &self.check {
            write!(
                f,
                "\nengine check on {} test images: float {:.4} bpd, engine {:.4} bpd, max per-image difference {:.2e}",
                c.images, c.float_bpd, c.engine_bpd, c.max_rel_diff
            )?;
            if let Some(coded) = c.coded_bpd {
                write!(f, "; coded as one chain {coded:.4} bpd")?;
            }
        }
        Ok(())
    }
}

/// Weights of a tch model, in the codec's tensor order, checked against the specs.
pub fn codec_tensors(
    vs: &tch::nn::VarStore,
    config: &idfcodec_codec::IdfConfig,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let specs = config.tensor_specs().into_iter().map(|s| (s.name, s.shape));
    tensors_by_spec(vs, specs)
}

/// Weights of a tch VAE, in the codec's tensor order, checked against its specs.
pub fn vae_codec_tensors(
    vs: &tch::nn::VarStore,
    config: &CodecVaeConfig,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let specs = config.tensor_specs().into_iter().map(|s| (s.name, s.shape));
    tensors_by_spec(vs, specs)
}

/// The named tensors, in order, checked for presence and shape.
fn tensors_by_spec(
    vs: &tch::nn::VarStore,
    specs: impl Iterator<Item = (String, Vec<usize>)>,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let vars = vs.variables();
    specs
        .map(|(name, expected)| {
            let t = vars
                .get(&name)
                .ok_or_else(|| TrainError::Other(format!("model lacks {name}")))?;
            let shape: Vec<usize> = t.size().iter().map(|&d| d as usize).collect();
            if shape != expected {
                return Err(TrainError::Other(format!(
                    "{name} has shape {shape:?}, spec says {expected:?}"
                )));
            }
            let flat = t.to_device(Device::Cpu).to_kind(Kind::Float).flatten(0, -1);
            Vec::<f32>::try_from(&flat).map_err(|e| TrainError::Other(format!("{name}: {e}")))
        })
        .collect()
}

/// A training family the codec's `vae` family codes: the one-layer VAE
/// ([`crate::nn::vae::VaeConfig::codable`]) and the hierarchical one
/// ([`crate::nn::hvae::HvaeConfig::codable`]).
pub trait CodableVae: Trainable + Likelihood {
    /// The codec's description of the run's model (an error when the codec cannot code it).
    fn codable(config: &Self::Config) -> Result<CodecVaeConfig, String>;
    /// The negative ELBO's terms with the latents at their posterior means (nats per image):
    /// reconstruction and KL, as the codec's `model::vae::terms_at_mean`.
    fn terms_at_mean(&self, x: &tch::Tensor) -> (tch::Tensor, tch::Tensor);
    /// For each layer below the top (`z_1 … z_{L−1}`; none with one layer): the aggregate
    /// posterior's mean and standard deviation per dimension over `x` (`N×C×H×W` pixels),
    /// `z_{l−1}` drawn from its posterior to reach layer `l`: what the codec's fitted grids are.
    fn grid_moments(&self, _x: &tch::Tensor) -> Vec<(Vec<f32>, Vec<f32>)> {
        vec![]
    }
}

impl CodableVae for Vae {
    fn codable(config: &Self::Config) -> Result<CodecVaeConfig, String> {
        config.codable()
    }

    fn terms_at_mean(&self, x: &tch::Tensor) -> (tch::Tensor, tch::Tensor) {
        Vae::terms_at_mean(self, x)
    }
}

impl CodableVae for Hvae {
    fn codable(config: &Self::Config) -> Result<CodecVaeConfig, String> {
        config.codable()
    }

    fn terms_at_mean(&self, x: &tch::Tensor) -> (tch::Tensor, tch::Tensor) {
        Hvae::terms_at_mean(self, x)
    }

    fn grid_moments(&self, x: &tch::Tensor) -> Vec<(Vec<f32>, Vec<f32>)> {
        let below_top = self.layers() - 1;
        let n = x.size()[0];
        // per layer: Σ μ, Σ μ², Σ σ² over the images (f64)
        let mut sums: Vec<[tch::Tensor; 3]> = Vec::with_capacity(below_top);
        tch::manual_seed(GRID_FIT_SEED);
        tch::no_grad(|| {
            for start in (0..n).step_by(500) {
                let batch = x.narrow(0, start, 500.min(n - start)).to_kind(Kind::Float);
                let (mut mu, mut logvar) = self.encode(&batch);
                for l in 1..=below_top {
                    let mu64 = mu.to_kind(Kind::Double);
                    let parts = [
                        mu64.sum_dim_intlist(0, false, Kind::Double),
                        mu64.square().sum_dim_intlist(0, false, Kind::Double),
                        logvar
                            .to_kind(Kind::Double)
                            .exp()
                            .sum_dim_intlist(0, false, Kind::Double),
                    ];
                    match sums.get_mut(l - 1) {
                        Some(s) => (0..3).for_each(|k| s[k] += &parts[k]),
                        None => sums.push(parts),
                    }
                    if l < below_top {
                        let z = &mu + (&logvar * 0.5).exp() * mu.randn_like();
                        (mu, logvar) = self.encode_latent(l + 1, &z);
                    }
                }
            }
        });
        let n = n as f64;
        sums.into_iter()
            .map(|[s, s2, v]| {
                let mean = &s / n;
                let var = &v / n + &s2 / n - mean.square();
                let to_vec = |t: tch::Tensor| -> Vec<f32> {
                    Vec::try_from(&t.to_kind(Kind::Float)).expect("1-d")
                };
                (to_vec(mean), to_vec(var.clamp_min(0.0).sqrt()))
            })
            .collect()
    }
}

/// Compares the engine's negative ELBO (reconstruction at the posterior mean under the codec's
/// quantised tables, plus the closed-form KL terms) with the tch model's on the first `n`
/// images.
pub fn vae_engine_check<M: CodableVae>(
    engine: &EngineVae,
    float: &M,
    images: &tch::Tensor,
    n: usize,
) -> Result<EngineCheck, TrainError> {
    let n = n.min(images.size()[0] as usize);
    let dims: i64 = images.size()[1..].iter().product();
    let subset = images.narrow(0, 0, n as i64);
    let float_nats: Vec<f64> = tch::no_grad(|| {
        let (rec, kl) = float.terms_at_mean(&subset.to_kind(Kind::Float));
        Vec::<f64>::try_from(&(rec + kl).to_kind(Kind::Double)).expect("1-d")
    });
    let pixels: Vec<Vec<u8>> = (0..n)
        .map(|i| Vec::try_from(&subset.get(i as i64).flatten(0, -1)).expect("u8 image"))
        .collect();
    let engine_error = |e: idfcodec_codec::CodecError| TrainError::Other(e.to_string());
    let mut check = compare(&float_nats, dims as usize, |i| {
        let (rec, kl) =
            idfcodec_codec::model::vae::terms_at_mean(engine, &pixels[i]).map_err(engine_error)?;
        Ok(rec + kl)
    })?;
    let mut coder = start_stream(StreamStart::Checksum(0));
    for x in &pixels {
        push_block(&mut coder, engine, x, BinnedStart::Exact).map_err(engine_error)?;
    }
    let bytes = finish_stream(coder).map_err(engine_error)?.len();
    check.coded_bpd = Some((8 * bytes) as f64 / (n as f64 * dims as f64));
    Ok(check)
}

/// The float model's code lengths (`float_nats`, nats per image) against the engine's
/// (`engine_bits(i)`, bits of image `i`), over images of `dims` values.
fn compare(
    float_nats: &[f64],
    dims: usize,
    mut engine_bits: impl FnMut(usize) -> Result<f64, TrainError>,
) -> Result<EngineCheck, TrainError> {
    let (mut float_total, mut engine_total, mut max_rel) = (0.0, 0.0, 0.0f64);
    for (i, nats) in float_nats.iter().enumerate() {
        let (e, f) = (engine_bits(i)?, nats / std::f64::consts::LN_2);
        max_rel = max_rel.max((e - f).abs() / f);
        float_total += f;
        engine_total += e;
    }
    let denom = float_nats.len() as f64 * dims as f64;
    Ok(EngineCheck {
        images: float_nats.len(),
        float_bpd: float_total / denom,
        engine_bpd: engine_total / denom,
        max_rel_diff: max_rel,
        coded_bpd: None,
    })
}

/// Compares the engine's NLL with the float model's on the first `n` images of `images`.
pub fn engine_check(
    engine: &EngineIdf,
    float: &crate::nn::Idf,
    images: &tch::Tensor,
    n: usize,
) -> Result<EngineCheck, TrainError> {
    let n = n.min(images.size()[0] as usize);
    let dims: i64 = images.size()[1..].iter().product();
    let (c, h, w) = (
        images.size()[1] as usize,
        images.size()[2] as usize,
        images.size()[3] as usize,
    );
    let subset = images.narrow(0, 0, n as i64);
    let float_nats: Vec<f64> = tch::no_grad(|| {
        let v = float
            .nll(&subset.to_kind(Kind::Float))
            .to_kind(Kind::Double);
        Vec::<f64>::try_from(&v).expect("1-d")
    });
    compare(&float_nats, dims as usize, |i| {
        let px: Vec<u8> = Vec::try_from(&subset.get(i as i64).flatten(0, -1)).expect("u8 image");
        let img = idfcodec_codec::engine::IntTensor::from_vec(
            idfcodec_codec::engine::Shape::new(c, h, w),
            px.iter().map(|&p| i32::from(p)).collect(),
        )
        .map_err(|e| TrainError::Other(e.to_string()))?;
        flow::nll_bits(engine, &img).map_err(|e| TrainError::Other(e.to_string()))
    })
}

fn write_new(path: &Path, bytes: &[u8], force: bool) -> Result<(), TrainError> {
    if path.exists() && !force {
        return Err(TrainError::Other(format!(
            "{} exists; pass --force to replace it",
            path.display()
        )));
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| TrainError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TrainError::io(path, e))
}

/// Runs the export (see the module docs).
pub fn export(job: &ExportJob) -> Result<ExportReport, TrainError> {
    let state = checkpoint::read_state(&job.run)?;
    let cfg = &state.config;
    if let Some(c) = cfg.model.vae() {
        return export_vae::<Vae>(job, &state, c);
    }
    if let Some(c) = cfg.model.of::<Hvae>() {
        return export_vae::<Hvae>(job, &state, c);
    }
    // the codec codes with the IDF and VAE families
    let idf = cfg.model.idf().ok_or_else(|| {
        TrainError::Config(format!(
            "{} holds a {} model: only IDF and VAE runs export to the codec",
            job.run.display(),
            cfg.model.family()
        ))
    })?;
    let (mut vs, model) = train::build_model::<Idf>(cfg, Device::Cpu)?;
    checkpoint::load(&job.run, &mut vs, None)?;
    let data = train::load_data(cfg)?;
    let test_bpd = match state.test_bpd {
        Some(b) if state.step >= cfg.train.steps => b,
        _ => dataset_bpd(&model, &data.test, 500, Device::Cpu),
    };
    let values = codec_tensors(&vs, &idf.arch)?;
    let engine = EngineIdf::from_parts(idf.arch.clone(), json!({}), values.clone())
        .map_err(|e| TrainError::Other(e.to_string()))?;
    let check = (job.check_images > 0)
        .then(|| engine_check(&engine, &model, &data.test, job.check_images))
        .transpose()?;
    let card = json!({
        "name": job.name,
        "dataset": cfg.data.dataset,
        "test_bpd": test_bpd,
        "test_images": data.test.size()[0],
        "steps": state.step,
        "batch_size": cfg.train.batch_size,
        "optimizer": cfg.train.optimizer,
        "lr": cfg.train.lr,
        "parameters": idf.arch.parameter_count(),
        "train_seconds": state.train_seconds,
        "hardware": state.hardware,
        "engine_check": check.as_ref().map(|c| json!({
            "images": c.images, "float_bpd": c.float_bpd, "engine_bpd": c.engine_bpd, "max_rel_diff": c.max_rel_diff
        })),
        "idfcodec_version": env!("CARGO_PKG_VERSION"),
    });
    let bytes = engine
        .to_safetensors(&card)
        .map_err(|e| TrainError::Other(e.to_string()))?;
    std::fs::create_dir_all(&job.out_dir).map_err(|e| TrainError::io(&job.out_dir, e))?;
    let model_path = job.out_dir.join(format!("{}.safetensors", job.name));
    let card_path = job.out_dir.join(format!("{}.md", job.name));
    write_new(&model_path, &bytes, job.force)?;
    write_new(
        &card_path,
        model_card_markdown(&job.name, &card, cfg, idf).as_bytes(),
        job.force,
    )?;
    Ok(ExportReport {
        model_path,
        card_path,
        parameters: idf.arch.parameter_count(),
        test_bpd,
        check,
    })
}

/// A VAE's export (one layer or a hierarchy): its codable config ([`CodableVae::codable`]),
/// its tensors, the engine check, the model file and a short card.
fn export_vae<M: CodableVae>(
    job: &ExportJob,
    state: &checkpoint::RunState,
    model_cfg: &M::Config,
) -> Result<ExportReport, TrainError> {
    let cfg = &state.config;
    let standard = M::codable(model_cfg).map_err(TrainError::Config)?;
    let (mut vs, model) = train::build_model::<M>(cfg, Device::Cpu)?;
    checkpoint::load(&job.run, &mut vs, None)?;
    let data = train::load_data(cfg)?;
    let test_bpd = match state.test_bpd {
        Some(b) if state.step >= cfg.train.steps => b,
        _ => dataset_bpd(&model, &data.test, 500, Device::Cpu),
    };
    let mut values = vae_codec_tensors(&vs, &standard)?;
    let grids = match (job.latent_grids, standard.layers()) {
        (Some(LatentGrids::Fitted), 1) => {
            return Err(TrainError::Config(
                "--latent-grids fitted needs a hierarchical VAE: a one-layer VAE's only layer is its top".into(),
            ))
        }
        (None | Some(LatentGrids::Fitted), layers) if layers > 1 => LatentGrids::Fitted,
        _ => LatentGrids::Standard,
    };
    if grids == LatentGrids::Fitted {
        let fit = data
            .train
            .narrow(0, 0, GRID_FIT_IMAGES.min(data.train.size()[0]));
        values.extend(
            model
                .grid_moments(&fit)
                .into_iter()
                .flat_map(|(m, s)| [m, s]),
        );
    }
    let arch = CodecVaeConfig {
        latent_grids: grids,
        ..standard
    };
    let engine = EngineVae::from_tensors(arch.clone(), json!({}), values)
        .map_err(|e| TrainError::Other(e.to_string()))?;
    let check = (job.check_images > 0)
        .then(|| vae_engine_check(&engine, &model, &data.test, job.check_images))
        .transpose()?;
    let card = json!({
        "name": job.name,
        "family": "vae",
        "training_family": M::FAMILY,
        "layers": arch.layers(),
        "dataset": cfg.data.dataset,
        "test_neg_elbo_bpd": test_bpd,
        "test_images": data.test.size()[0],
        "steps": state.step,
        "batch_size": cfg.train.batch_size,
        "lr": cfg.train.lr,
        "parameters": arch.parameter_count(),
        "train_seconds": state.train_seconds,
        "hardware": state.hardware,
        "engine_check": check.as_ref().map(|c| json!({
            "images": c.images, "float_neg_elbo_at_mean_bpd": c.float_bpd,
            "engine_neg_elbo_at_mean_bpd": c.engine_bpd, "max_rel_diff": c.max_rel_diff,
            "coded_chain_bpd": c.coded_bpd
        })),
        "idfcodec_version": env!("CARGO_PKG_VERSION"),
    });
    let bytes = engine
        .to_safetensors(&card)
        .map_err(|e| TrainError::Other(e.to_string()))?;
    std::fs::create_dir_all(&job.out_dir).map_err(|e| TrainError::io(&job.out_dir, e))?;
    let model_path = job.out_dir.join(format!("{}.safetensors", job.name));
    let card_path = job.out_dir.join(format!("{}.md", job.name));
    write_new(&model_path, &bytes, job.force)?;
    let markdown = format!(
        "# Model card: `{}`\n\nVAE coded by bits-back ANS, trained by `idfcodec train` and exported by `idfcodec export`.\n\n\
         - Data: {} (test split: {} images)\n- Test negative ELBO: **{:.4} bits per dimension** (float model)\n\
         - Parameters: {}; {} steps, batch {}, {:.0} s\n\n## Architecture\n\n```json\n{}\n```\n\n## Card\n\n```json\n{}\n```\n",
        job.name,
        cfg.data.dataset,
        card["test_images"],
        test_bpd,
        arch.parameter_count(),
        state.step,
        cfg.train.batch_size,
        state.train_seconds,
        serde_json::to_string_pretty(&arch).expect("serialises"),
        serde_json::to_string_pretty(&card).expect("serialises"),
    );
    write_new(&card_path, markdown.as_bytes(), job.force)?;
    Ok(ExportReport {
        model_path,
        card_path,
        parameters: arch.parameter_count(),
        test_bpd,
        check,
    })
}

fn model_card_markdown(
    name: &str,
    card: &serde_json::Value,
    cfg: &train::config::TrainConfig,
    idf: &IdfModelConfig,
) -> String {
    let arch = serde_json::to_string_pretty(&idf.arch).expect("config serialises");
    let check = match card.get("engine_check") {
        Some(c) if !c.is_null() => format!(
            "- Deterministic engine on the first {} test images: {:.4} bpd (float model {:.4}); largest per-image difference {:.2e} (relative)\n",
            c["images"], c["engine_bpd"].as_f64().unwrap_or(f64::NAN), c["float_bpd"].as_f64().unwrap_or(f64::NAN),
            c["max_rel_diff"].as_f64().unwrap_or(f64::NAN)
        ),
        _ => String::new(),
    };
    let d = &cfg.data;
    let data = if d.dataset.parse::<crate::data::Dataset>().is_ok() {
        format!(
            "{} training split (60000 images); evaluated on its test split ({} images), never trained on",
            d.dataset, card["test_images"]
        )
    } else {
        format!(
            "{n} random {s}×{s} patches (half mirrored) of the images in `{ds}/train`; evaluated on {t} patches of `{ds}/test`, never trained on",
            n = d.train_patches, s = d.patch_size, t = card["test_images"], ds = d.dataset
        )
    };
    let grown = match &cfg.train.init_from {
        Some(run) => format!(
            "- Started from the weights of run `{}` (grown: see `copy_matching` in `src/nn/idf/trainable.rs`); the steps below are this stage's\n",
            run.display()
        ),
        None => String::new(),
    };
    let frozen = match cfg.train.freeze.as_slice() {
        [] => String::new(),
        prefixes => format!(
            "; frozen (not trained in this stage): parameters starting with {}",
            prefixes
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!(
        "# Model card: `{name}`\n\n\
         Integer discrete flow for 8-bit images, trained by `idfcodec train` and exported by `idfcodec export`.\n\n\
         - Data: {data}.\n\
         - Test NLL: **{bpd:.4} bits per dimension** (float model, exact discrete NLL, whole test set)\n\
         {check}{grown}\
         - Parameters: {params}\n\
         - Training: {steps} steps, batch {batch}, {opt} peak lr {lr:.1e} (cosine to {lr_min:.1e}), {secs:.0} s wall time\n\
         - Schedule details: priors started from the data: {data_init}; last-layer learning-rate multipliers: prior weights {out_scale}, couplings {coupling_scale}{frozen}\n\
         - Hardware: {hw}\n\n\
         ## Architecture\n\n```json\n{arch}\n```\n\n\
         Measured by the export command; the coded rate of the codec is reported by `idfcodec verify` and `idfcodec bench`.\n",
        bpd = card["test_bpd"].as_f64().unwrap_or(f64::NAN),
        params = card["parameters"],
        steps = card["steps"],
        batch = cfg.train.batch_size,
        opt = card["optimizer"].as_str().unwrap_or("?"),
        lr = cfg.train.lr,
        lr_min = cfg.train.lr_min,
        data_init = if idf.train.data_init { "yes" } else { "no" },
        out_scale = idf.train.output_lr_scale,
        coupling_scale = idf.train.coupling_lr_scale,
        secs = card["train_seconds"].as_f64().unwrap_or(0.0),
        hw = card["hardware"].as_array().map(|a| a.iter().filter_map(|v| v.as_str()).collect::<Vec<_>>().join("; ")).unwrap_or_default(),
    )
}
