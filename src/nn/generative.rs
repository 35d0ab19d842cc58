//! Trained models as image generators, whatever their family: what `idfcodec sample`,
//! `reconstruct` and `interpolate` need ([`Generative`]), and those three as library functions
//! returning `u8` image batches (`N×C×H×W`) for [`crate::picture::grid_png`].

use std::path::Path;
use tch::{Device, Kind, Tensor};

use super::ebm_prior::math::{mala, MalaOptions};
use crate::data::{self, PatchConfig, Split};
use crate::train::checkpoint::{self, RunState};
use crate::train::{self, FamilyFn, TrainError, Trainable};

/// A model that turns latents into images; those with an encoder also map images to latents.
pub trait Generative {
    /// Channels, height and width of its images.
    fn image_shape(&self) -> [i64; 3];
    /// Size of its latent vectors.
    fn latent_size(&self) -> i64;
    /// Where its weights live.
    fn device(&self) -> Device;
    /// Images (pixels, float `0..=255`, `N×C×H×W`) of latents `z` (`N×latent`): a VAE's
    /// decoder mean, a GAN's generator output.
    fn decode(&self, z: &Tensor) -> Tensor;
    /// Whether [`Generative::encode`] gives latents.
    fn has_encoder(&self) -> bool {
        false
    }
    /// Latents of images `x` (pixels, float): a VAE's encoder means. `None`: no encoder (GAN).
    fn encode(&self, x: &Tensor) -> Option<Tensor> {
        let _ = x;
        None
    }
    /// `n` latents from the standard normal `N(0, I)` (libtorch's generator: seed it first):
    /// the prior of a VAE or GAN, the base ("origin") of an energy-tilted prior.
    fn prior(&self, n: i64) -> Tensor {
        Tensor::randn([n, self.latent_size()], (Kind::Float, self.device()))
    }
    /// The log density of the model's latent prior at `z` (`N×latent` → `N`), up to a
    /// constant, differentiable in `z`: what [`Sampler::Mala`] samples. The default: the
    /// standard normal's; an energy-based prior ([`crate::nn::ebm_prior`]) adds its tilt.
    fn log_prior(&self, z: &Tensor) -> Tensor {
        super::dist::log_standard_normal(z)
    }
}

/// How latents are drawn for [`sample_with`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// `z ~ N(0, I)`, the energy (if any) ignored.
    Origin,
    /// Chains started at `z ~ N(0, I)`, moved by Metropolis-adjusted Langevin steps towards the
    /// model's prior ([`Generative::log_prior`]).
    Mala(MalaOptions),
}

/// Images drawn with a sampler, and for MALA its acceptance rate.
pub struct Samples {
    /// `u8`, `N×C×H×W`, on the CPU.
    pub images: Tensor,
    /// MALA's accepted proposals over all proposals; `None` for [`Sampler::Origin`].
    pub acceptance: Option<f64>,
}

/// `n` images drawn from the model's prior with `sampler`, latents seeded by `seed`;
/// `progress(step)` after each MALA step. [`Sampler::Origin`] draws exactly [`sample`]'s images.
pub fn sample_with(
    model: &dyn Generative,
    n: i64,
    seed: u64,
    sampler: Sampler,
    progress: &mut dyn FnMut(usize),
) -> Samples {
    tch::manual_seed(seed as i64);
    let z0 = tch::no_grad(|| model.prior(n));
    let (z, acceptance) = match sampler {
        Sampler::Origin => (z0, None),
        Sampler::Mala(options) => {
            let r = mala(&z0, &|z| model.log_prior(z), options, progress);
            (r.z, Some(r.acceptance))
        }
    };
    Samples {
        images: tch::no_grad(|| to_u8(&model.decode(&z))),
        acceptance,
    }
}

/// Float pixels → `u8` (rounded, clamped), on the CPU.
pub fn to_u8(pixels: &Tensor) -> Tensor {
    pixels
        .round()
        .clamp(0.0, 255.0)
        .to_kind(Kind::Uint8)
        .to_device(Device::Cpu)
}

/// `n` images drawn from the model's prior, latents seeded by `seed`.
pub fn sample(model: &dyn Generative, n: i64, seed: u64) -> Tensor {
    tch::manual_seed(seed as i64);
    tch::no_grad(|| to_u8(&model.decode(&model.prior(n))))
}

/// `images` (`u8`, `N×C×H×W`) followed by their reconstructions through the encoder's means:
/// `2N` images, originals first. An error for a model without an encoder.
pub fn reconstruct(model: &dyn Generative, images: &Tensor) -> Result<Tensor, String> {
    tch::no_grad(|| {
        let x = images.to_device(model.device()).to_kind(Kind::Float);
        let z = model
            .encode(&x)
            .ok_or("this model has no encoder, so it cannot reconstruct images")?;
        Ok(Tensor::cat(
            &[images.to_device(Device::Cpu), to_u8(&model.decode(&z))],
            0,
        ))
    })
}

/// Where an interpolation starts and ends.
pub enum Ends<'a> {
    /// The latents of these images (`u8`, `2R×C×H×W`: rows of consecutive pairs) through the
    /// encoder's means.
    Images(&'a Tensor),
    /// `rows` pairs of latents from the prior, seeded by `seed`.
    Prior { rows: i64, seed: u64 },
}

/// Rows of `steps` images decoded from latents evenly spaced on the straight line between two
/// ends (both included): `rows·steps` images, row-major. An error for images given to a model
/// without an encoder, an odd number of images, or fewer than 2 steps.
pub fn interpolate(model: &dyn Generative, ends: Ends, steps: i64) -> Result<Tensor, String> {
    if steps < 2 {
        return Err("an interpolation needs at least 2 steps (its two ends)".into());
    }
    tch::no_grad(|| {
        let z = match ends {
            Ends::Images(images) => {
                if images.size()[0] % 2 != 0 || images.size()[0] == 0 {
                    return Err("interpolation needs pairs of images".to_string());
                }
                let x = images.to_device(model.device()).to_kind(Kind::Float);
                model
                    .encode(&x)
                    .ok_or("this model has no encoder: interpolate between prior latents instead")?
            }
            Ends::Prior { rows, seed } => {
                tch::manual_seed(seed as i64);
                model.prior(2 * rows)
            }
        };
        let l = model.latent_size();
        let pairs = z.reshape([-1, 2, l]);
        let (a, b) = (
            pairs.select(1, 0).unsqueeze(1),
            pairs.select(1, 1).unsqueeze(1),
        );
        let t =
            Tensor::linspace(0.0, 1.0, steps, (Kind::Float, model.device())).reshape([1, steps, 1]);
        let line = (&a * (-&t + 1.0) + &b * &t).reshape([-1, l]);
        Ok(to_u8(&model.decode(&line)))
    })
}

/// The model of the run in `run` (its checkpoint's weights) as a generator, and the run's state.
/// An error for a family that cannot generate images.
pub fn load_run(run: &Path, device: Device) -> Result<(Box<dyn Generative>, RunState), TrainError> {
    struct Load<'a> {
        run: &'a Path,
        state: &'a RunState,
        device: Device,
    }
    impl FamilyFn for Load<'_> {
        type Output = Result<Box<dyn Generative>, TrainError>;
        fn call<M: Trainable>(self, _: &M::Config) -> Self::Output {
            let (mut vs, model) = train::build_model::<M>(&self.state.config, self.device)?;
            checkpoint::load(self.run, &mut vs, None)?;
            model.into_generative().map_err(TrainError::Other)
        }
    }
    let state = checkpoint::read_state(run)?;
    let model = state.config.model.with_family(Load {
        run,
        state: &state,
        device,
    })?;
    Ok((model, state))
}

/// `n` images (`u8`, `N×C×H×W`) for a run from `data`: `test` or `train` (the first `n` of
/// the run's own split), or a folder of PNG/JPEG images, from which `n` patches of the model's
/// size are cut at random (seeded by `seed`; whole images when they have that size).
pub fn images_for(state: &RunState, data: &str, n: i64, seed: u64) -> Result<Tensor, TrainError> {
    let cfg = &state.config;
    if n < 1 {
        return Err(TrainError::Config("need at least one image".into()));
    }
    let split = match data {
        "test" => Some(Split::Test),
        "train" => Some(Split::Train),
        _ => None,
    };
    if let Some(split) = split {
        let all = train::load_split(cfg, split)?;
        let have = all.size()[0];
        if have < n {
            return Err(TrainError::Config(format!(
                "the {data} split has {have} images, {n} were asked for"
            )));
        }
        return Ok(all.narrow(0, 0, n));
    }
    let folder = Path::new(data);
    if !folder.is_dir() {
        return Err(TrainError::Config(format!(
            "--data {data:?} is neither `test`, `train` nor a folder of images"
        )));
    }
    let size = cfg.model.image_size().unwrap_or(cfg.data.patch_size);
    let set = data::patch_set(
        folder,
        PatchConfig {
            size,
            channels: cfg.model.in_channels(),
            seed,
            flips: false,
        },
        n as usize,
    )?;
    train::check_images(cfg, data, set.channels, set.height, set.width)?;
    Ok(Tensor::from_slice(&set.pixels).reshape([
        n,
        set.channels as i64,
        set.height as i64,
        set.width as i64,
    ]))
}

/// An image batch (`u8`, `N×C×H×W`) as a PNG grid of `columns` per row
/// ([`crate::picture::grid_png`]).
pub fn grid_png(images: &Tensor, columns: usize) -> anyhow::Result<Vec<u8>> {
    let size = images.size();
    let shape = [
        size[0] as usize,
        size[1] as usize,
        size[2] as usize,
        size[3] as usize,
    ];
    let bytes = Vec::<u8>::try_from(images.to_kind(Kind::Uint8).flatten(0, -1))?;
    crate::picture::grid_png(&bytes, shape, columns)
}

/// `n` images from latents `z ~ N(0, T²I)` (the prior at temperature `T = temperature`, seeded
/// by `seed`): `T < 1` trades diversity for fidelity (Glow's temperature). `T = 1` draws
/// exactly [`sample`]'s images.
pub fn sample_at_temperature(
    model: &dyn Generative,
    n: i64,
    seed: u64,
    temperature: f64,
) -> Tensor {
    tch::manual_seed(seed as i64);
    tch::no_grad(|| to_u8(&model.decode(&(model.prior(n) * temperature))))
}

/// A latent walk: for each latent dimension of `dims`, one row of images decoded from the
/// latent `start` (`1×latent`) with that dimension set to each of `values` in turn, the others
/// kept: what the dimension encodes. `dims.len()·values.len()` images, row-major. An error for
/// a dimension outside the latent.
pub fn latent_walk(
    model: &dyn Generative,
    start: &Tensor,
    dims: &[i64],
    values: &[f64],
) -> Result<Tensor, String> {
    let l = model.latent_size();
    if let Some(d) = dims.iter().find(|&&d| d < 0 || d >= l) {
        return Err(format!("latent dimension {d} is outside 0..{l}"));
    }
    tch::no_grad(|| {
        let rows: Vec<Tensor> = dims
            .iter()
            .flat_map(|&d| {
                values.iter().map(move |&v| {
                    let z = start.reshape([1, l]).copy();
                    let _ = z.narrow(1, d, 1).fill_(v);
                    z
                })
            })
            .collect();
        Ok(to_u8(&model.decode(&Tensor::cat(&rows, 0))))
    })
}
