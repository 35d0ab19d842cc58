//! The VAE's bits-back coding (BB-ANS, Townsend, Bird & Barber 2019) on constriction's ANS
//! stack.
//!
//! # Buckets
//! Each latent dimension is coded as one of `B = 2^bucket_bits` buckets of equal mass under the
//! standard normal prior: bucket `k` is `[e_k, e_{k+1})` with `e_k = Φ⁻¹(k/B)` (`e_0 = −∞`,
//! `e_B = +∞`), and the decoder is fed its centre `Φ⁻¹((k+½)/B)` ([`Buckets`]). `Φ⁻¹` is
//! Acklam's rational approximation refined by one Halley step on `libm::erfc`, computed for
//! `k ≤ B/2` and mirrored, so the edges are exactly symmetric. Under the prior every bucket has
//! probability `1/B`: the prior is constriction's uniform model over `B` symbols
//! (`bucket_bits` bits per dimension, exactly).
//!
//! # Posterior tables
//! The posterior `N(μ, σ²)` (`σ = exp(logvar/2)`, `f64`) gives bucket `k` the mass
//! `Φ(t_{k+1}) − Φ(t_k)`, `t_k = (e_k − μ)/σ`, taken on the smaller tail (`Φ(t) = erfc(−t/√2)/2`,
//! `1 − Φ(t) = erfc(t/√2)/2`, `libm`), quantised to 24 bits with every bucket ≥ 1
//! ([`crate::entropy::categorical`]). Its symbols list the buckets *mode first*: symbol 0 is the
//! bucket holding `μ`, then `μ`'s neighbours alternately above and below. The coding does not
//! depend on the order, but a pop from a stack with few bits left (small quantiles) then draws
//! the buckets around the posterior mean, never a far tail.
//!
//! # One image (a block of `C×S×S` pixels)
//! Encoding: `(μ, logvar) = encoder(x)`; pop each bucket `z_j` (`j` ascending) with its
//! posterior table — these pops take bits off the stack —; push the pixels given the buckets'
//! centres (discretized logistic mixture tables over the 256 values,
//! [`LogisticMixture::binned_masses`] started as the file's format version says,
//! [`super::pixel_tables`]; CHW order reversed); push each `z_j` with the prior
//! (`j` descending). Decoding is the exact reverse: pop `z` with the prior, pop the pixels, run
//! the encoder on them and push `z` back with the posterior, which gives back the bits the
//! encoder took. Net cost: `−log p(x|z) − log p(z) + log q(z|x)` per image, in expectation the
//! negative ELBO of the discretized latents.
//!
//! # Several layers (Bit-Swap)
//! A hierarchy `z_1 … z_L` ([`crate::model::vae::arch`]) is coded in Bit-Swap's order (Kingma,
//! Abbeel & Ho 2019). Every layer's buckets are the equal-mass grid above; the conditional prior
//! `p(z_{l−1}|z_l) = N(μ, σ²)` gives a bucket the same CDF difference as a posterior
//! ([`BucketGaussian`], one table code for both), and the networks are fed bucket centres.
//! Encoding: pop `z_1` with `q(z_1|x)`; push `x` with `p(x|z_1)`; then for `l = 2..=L`: pop `z_l`
//! with `q(z_l|z_{l−1})`, push `z_{l−1}` with `p(z_{l−1}|z_l)`; finally push `z_L` with the
//! uniform prior. (Pops in `j` ascending, pushes descending, the pixels in reverse CHW order.)
//! Decoding reverses every step: pop `z_L` with the prior; for `l = L..=2`: pop `z_{l−1}` with
//! `p(z_{l−1}|z_l)`, push `z_l` back with `q(z_l|z_{l−1})`; pop `x` with `p(x|z_1)`; push `z_1`
//! back with `q(z_1|x)`. Each pop after the first takes bits the encoder has just pushed, so the
//! initial bits a block needs are those of `q(z_1|x)` whatever `L`; popping every layer first
//! (plain BB-ANS on the hierarchy, [`Order::Naive`]) would need the sum over all layers
//! ([`initial_bits`] counts both). With `L = 1` this is exactly the one-layer coding above.
//!
//! # Grids
//! A layer below the top need not live at the standard normal's scale (its prior is
//! `p(z_{l−1}|z_l)`), and where it does not, the equal-mass grid resolves it too coarsely (or
//! wastes its buckets) and the coded rate parts from the ELBO. With fitted grids
//! ([`crate::model::vae::arch`], "Fitted grids") dimension `j` of layer `l < L` uses the grid
//! `m_j + s_j·e_k`: a Gaussian `N(μ, σ²)` on it is the Gaussian `N((μ − m_j)/s_j, (σ/s_j)²)`
//! on the standard grid (`f64`: `(μ − m_j)/s_j` and `exp(logvar/2)/s_j`, each operand converted
//! from `f32`), and the networks are fed the centres `m_j + s_j·c_k` (`f32`, one product then
//! one sum). The top layer keeps the standard grid, where its prior is uniform.
//!
//! # Tiles and the initial bits
//! A tile (sides multiples of `S`) is coded as its `S×S` blocks in raster order, the encoder
//! pushing block 0 first, so each block's posterior pops take the bits the blocks before it
//! pushed (the chain of BB-ANS inside one stream). The first block of a tile pops from whatever
//! the stream holds: the tile's start state `2^32 + checksum` (32 bits, see
//! [`crate::entropy::stream`]) and the words of the planes the context coder pushed before (alpha,
//! for instance). ANS decoding followed by encoding of the same symbol restores the state
//! exactly, also when the stack has run dry (a state below `2^32` with no words left: the pop
//! then only takes what the state holds, and the mode-first order makes the drawn buckets those
//! nearest the posterior mean), so the decoder ends exactly at the tile's start state and the
//! version-3 checksum check holds. The price: bits the stack did not hold are not given back, so
//! a lone block pays up to `−log q(z|x)` more than its ELBO (measured in `codec/tests/vae.rs`).
//! For the same reason [`pop_image`] cannot stop early at the pipeline's floor (an honest stream may
//! dip below it between a block's pops); a damaged stream is caught by the end state.

use constriction::stream::{
    model::{DefaultContiguousCategoricalEntropyModel, DefaultUniformModel},
    stack::DefaultAnsCoder,
    Decode, Encode,
};

use super::arch::LOG_SCALE_MIN;
use super::Vae;
use crate::entropy::{categorical, BinnedStart, LogisticMixture, MixtureParams};
use crate::{CodecError, Result};

/// The bucket edges and centres of `2^bits` buckets of equal standard-normal mass.
#[derive(Clone, Debug, PartialEq)]
pub struct Buckets {
    /// `B + 1` edges, `−∞` and `+∞` at the ends.
    edges: Vec<f64>,
    /// `B` centres, as the decoder's `f32` inputs.
    centres: Vec<f32>,
}

impl Buckets {
    /// The buckets for `bits` (at most 16; the config allows 4 to 12).
    pub fn new(bits: u32) -> Buckets {
        let b = 1usize << bits;
        let n = b as f64;
        let mut edges = vec![0.0; b + 1];
        edges[0] = f64::NEG_INFINITY;
        edges[b] = f64::INFINITY;
        for k in 1..=b / 2 {
            let e = normal_quantile(k as f64 / n);
            edges[k] = e;
            edges[b - k] = -e;
        }
        edges[b / 2] = 0.0;
        let mut centres = vec![0.0f32; b];
        for k in 0..b / 2 {
            let c = normal_quantile((2 * k + 1) as f64 / (2.0 * n)) as f32;
            centres[k] = c;
            centres[b - 1 - k] = -c;
        }
        Buckets { edges, centres }
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.centres.len()
    }

    /// Never empty.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Edge `k` (`0..=B`).
    pub fn edge(&self, k: usize) -> f64 {
        self.edges[k]
    }

    /// Centre of bucket `k`.
    pub fn centre(&self, k: usize) -> f32 {
        self.centres[k]
    }

    /// The uniform prior over the buckets.
    fn prior(&self) -> DefaultUniformModel {
        DefaultUniformModel::new(self.len())
    }
}

/// `Φ⁻¹(p)` for `0 < p < 1`: Acklam's approximation and one Halley step (see the module docs).
pub fn normal_quantile(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.383_577_518_672_69e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] = [
        -5.447609879822406e1,
        1.615858368580409e2,
        -1.556989798598866e2,
        6.680131188771972e1,
        -1.328068155288572e1,
    ];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [
        7.784695709041462e-3,
        3.224671290700398e-1,
        2.445134137142996,
        3.754408661907416,
    ];
    const LOW: f64 = 0.02425;
    let tail = |q: f64| {
        let num = ((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5];
        let den = (((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0;
        num / den
    };
    let x = if p < LOW {
        tail(libm::sqrt(-2.0 * libm::log(p)))
    } else if p > 1.0 - LOW {
        -tail(libm::sqrt(-2.0 * libm::log(1.0 - p)))
    } else {
        let q = p - 0.5;
        let r = q * q;
        let num = (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q;
        let den = ((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0;
        num / den
    };
    let e = 0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2) - p;
    let u = e * libm::sqrt(2.0 * std::f64::consts::PI) * libm::exp(x * x / 2.0);
    x - u / (1.0 + x * u / 2.0)
}

/// A Gaussian `N(μ, σ²)` over one latent dimension's buckets, mode first (see the module docs):
/// the posteriors `q(z_l|·)` and the conditional priors `p(z_{l−1}|z_l)` of a hierarchy alike.
pub struct BucketGaussian {
    /// Symbol → bucket.
    order: Vec<u32>,
    /// Bucket → symbol.
    symbol: Vec<u32>,
    model: DefaultContiguousCategoricalEntropyModel,
}

/// The name the single-layer VAE's posterior tables were introduced under.
pub type Posterior = BucketGaussian;

impl BucketGaussian {
    /// The Gaussian `N(mu, exp(logvar))` on `buckets`.
    pub fn new(buckets: &Buckets, mu: f32, logvar: f32) -> Result<BucketGaussian> {
        Self::on_grid(buckets, mu, logvar, None)
    }

    /// The Gaussian `N(mu, exp(logvar))` on `buckets` moved to `mean` and scaled by `scale`
    /// (`grid = Some((mean, scale))`, see the module docs, "Grids"), or on `buckets` as they are.
    pub fn on_grid(
        buckets: &Buckets,
        mu: f32,
        logvar: f32,
        grid: Option<(f32, f32)>,
    ) -> Result<BucketGaussian> {
        if !(mu.is_finite() && logvar.is_finite()) {
            return Err(CodecError::NonFiniteParameters);
        }
        let b = buckets.len();
        let (mu, sigma) = (f64::from(mu), libm::exp(0.5 * f64::from(logvar)));
        let (mu, sigma) = match grid {
            Some((m, s)) => ((mu - f64::from(m)) / f64::from(s), sigma / f64::from(s)),
            None => (mu, sigma),
        };
        // Φ below (lower tail) or above (upper tail) edge `k`; each bucket takes the tail on
        // its side of the mean, so each edge needs one of the two (both at the switch).
        let tail = |k: usize, upper: bool| {
            let t = (buckets.edge(k) - mu) / sigma;
            let s = t * std::f64::consts::FRAC_1_SQRT_2;
            match upper {
                true => 0.5 * libm::erfc(s),
                false => 0.5 * libm::erfc(-s),
            }
        };
        let mut masses = Vec::with_capacity(b);
        let mut carried: Option<(bool, f64)> = None;
        for k in 0..b {
            let upper = buckets.edge(k) >= mu;
            let at_k = match carried {
                Some((side, value)) if side == upper => value,
                _ => tail(k, upper),
            };
            let at_next = tail(k + 1, upper);
            let m = if upper {
                at_k - at_next
            } else {
                at_next - at_k
            };
            masses.push(m.max(0.0));
            carried = Some((upper, at_next));
        }
        let mode = (1..b).take_while(|&k| buckets.edge(k) <= mu).count();
        let mut order = Vec::with_capacity(b);
        order.push(mode as u32);
        for d in 1..b {
            if mode + d < b {
                order.push((mode + d) as u32);
            }
            if d <= mode {
                order.push((mode - d) as u32);
            }
        }
        let mut symbol = vec![0u32; b];
        for (s, &k) in order.iter().enumerate() {
            symbol[k as usize] = s as u32;
        }
        let ordered: Vec<f64> = order.iter().map(|&k| masses[k as usize]).collect();
        Ok(BucketGaussian {
            model: categorical(&ordered)?,
            order,
            symbol,
        })
    }

    /// The quantised probability of bucket `k`, in units of `2^-24`.
    pub fn probability(&self, k: usize) -> u32 {
        use constriction::stream::model::EncoderModel;
        self.model
            .left_cumulative_and_probability(self.symbol[k] as usize)
            .map_or(0, |(_, p)| p.get())
    }
}

/// Pixel `i`'s table, given the decoder's raw outputs `raw` (`[3][M][C·S·S]`), its bins
/// started as `tables` says (the file's format version fixes it: [`BinnedStart`]).
fn pixel_model(
    raw: &[f32],
    mixtures: usize,
    dims: usize,
    i: usize,
    tables: BinnedStart,
) -> Result<DefaultContiguousCategoricalEntropyModel> {
    let at = |p: usize| -> Vec<f32> {
        (0..mixtures)
            .map(|m| raw[(p * mixtures + m) * dims + i])
            .collect()
    };
    let logits = at(0);
    let means = at(1);
    let log_scales: Vec<f32> = at(2).into_iter().map(|v| v.max(LOG_SCALE_MIN)).collect();
    let mixture = LogisticMixture::new(&MixtureParams {
        logits: &logits,
        means: &means,
        log_scales: &log_scales,
    })?;
    categorical(&mixture.binned_masses(-1.0 + 1.0 / 255.0, 2.0 / 255.0, 256, tables))
}

/// The negative ELBO's terms of one image (`C×S×S`, CHW) with every latent at its posterior
/// mean, in bits: the code length of the pixels under the quantised tables given `z_1 = μ_1(x)`,
/// and the sum of the closed-form KL terms, `KL(q(z_l|μ_{l−1}) ‖ p(z_l|μ_{l+1}))` for `l < L`
/// and `KL(q(z_L|μ_{L−1}) ‖ N(0, I))` (one layer: `KL(q(z|x) ‖ N(0, I))`). For comparing the
/// engine with the training model (not on the coding path).
pub fn terms_at_mean(vae: &Vae, x: &[u8]) -> Result<(f64, f64)> {
    use constriction::stream::model::EncoderModel;
    let config = vae.config();
    let dims = config.dims();
    if x.len() != dims {
        return Err(CodecError::Internal(format!(
            "a VAE image of {} values, expected {dims}",
            x.len()
        )));
    }
    let mut posteriors = vec![vae.encode(x)?];
    for l in 2..=config.layers() {
        let below = &posteriors[l - 2].0;
        posteriors.push(vae.encode_latent(l, below)?);
    }
    let raw = vae.decode_raw(&posteriors[0].0)?;
    let mut reconstruction = 0.0;
    for (i, &v) in x.iter().enumerate() {
        let model = pixel_model(&raw, config.mixtures, dims, i, BinnedStart::Exact)?;
        let q = model
            .left_cumulative_and_probability(usize::from(v))
            .map_or(1, |(_, p)| p.get());
        reconstruction += 24.0 - libm::log2(f64::from(q));
    }
    let mut kl = 0.0;
    for (l, (mu, logvar)) in posteriors.iter().enumerate().map(|(k, p)| (k + 1, p)) {
        let prior = if l < config.layers() {
            Some(vae.prior_below(l + 1, &posteriors[l].0)?)
        } else {
            None
        };
        for j in 0..mu.len() {
            let (m, lv) = (f64::from(mu[j]), f64::from(logvar[j]));
            let (pm, plv) = prior.as_ref().map_or((0.0, 0.0), |(pm, plv)| {
                (f64::from(pm[j]), f64::from(plv[j]))
            });
            kl += 0.5 * (plv - lv + (libm::exp(lv) + (m - pm) * (m - pm)) / libm::exp(plv) - 1.0);
        }
    }
    Ok((reconstruction, kl / std::f64::consts::LN_2))
}

fn encode_failed(e: impl std::fmt::Debug) -> CodecError {
    CodecError::Internal(format!("ANS encoding failed: {e:?}"))
}

fn decode_failed(e: impl std::fmt::Debug) -> CodecError {
    CodecError::CorruptPayload(format!("ANS decoding failed: {e:?}"))
}

/// The bucket centres of layer `l`'s latents `z`, the networks' inputs (see the module docs,
/// "Grids").
fn centres(vae: &Vae, l: usize, z: &[usize]) -> Vec<f32> {
    match vae.grid(l) {
        Some(g) => (z.iter().enumerate())
            .map(|(j, &k)| g.mean[j] + g.scale[j] * vae.buckets.centre(k))
            .collect(),
        None => z.iter().map(|&k| vae.buckets.centre(k)).collect(),
    }
}

/// Dimension `j` of layer `l`'s Gaussian `N(mu, exp(logvar))` on the layer's grid.
fn gaussian(vae: &Vae, l: usize, j: usize, mu: f32, logvar: f32) -> Result<BucketGaussian> {
    let grid = vae.grid(l).map(|g| (g.mean[j], g.scale[j]));
    BucketGaussian::on_grid(&vae.buckets, mu, logvar, grid)
}

/// Pops layer `l`'s buckets with the Gaussians `N(mu_j, exp(logvar_j))` (`j` ascending): the
/// encoder's posterior draw (bits taken off the stack; a failure is an internal error), or the
/// decoder's side of [`push_latent`] with a conditional prior (a failure is a corrupt payload);
/// `fail` makes the error.
fn pop_latent(
    coder: &mut DefaultAnsCoder,
    vae: &Vae,
    l: usize,
    (mu, logvar): (&[f32], &[f32]),
    fail: fn(String) -> CodecError,
) -> Result<Vec<usize>> {
    (mu.iter().zip(logvar).enumerate())
        .map(|(j, (&m, &lv))| {
            let g = gaussian(vae, l, j, m, lv)?;
            let s = coder
                .decode_symbol(&g.model)
                .map_err(|e| fail(format!("ANS pop failed: {e:?}")))?;
            Ok(g.order[s] as usize)
        })
        .collect()
}

/// Pushes layer `l`'s buckets `z` with the Gaussians `N(mu_j, exp(logvar_j))` (`j`
/// descending), the reverse of [`pop_latent`]; a failure is `fail`'s error.
fn push_latent(
    coder: &mut DefaultAnsCoder,
    vae: &Vae,
    l: usize,
    z: &[usize],
    (mu, logvar): (&[f32], &[f32]),
    fail: fn(String) -> CodecError,
) -> Result<()> {
    if z.len() != mu.len() || z.len() != logvar.len() {
        return Err(CodecError::Internal(format!(
            "{} latents for {} Gaussians",
            z.len(),
            mu.len()
        )));
    }
    for j in (0..z.len()).rev() {
        let g = gaussian(vae, l, j, mu[j], logvar[j])?;
        coder
            .encode_symbol(g.symbol[z[j]] as usize, &g.model)
            .map_err(|e| fail(format!("ANS push failed: {e:?}")))?;
    }
    Ok(())
}

/// The order of an encoder's pops and pushes in one block (see the module docs, "Several
/// layers").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Bit-Swap's interleaving, what [`push_block`] codes: the initial bits it needs are those
    /// of the first layer's posterior, whatever the depth.
    BitSwap,
    /// Plain BB-ANS on the whole hierarchy: every posterior popped (`z_1` to `z_L`), then every
    /// push. Only measured ([`initial_bits`]); [`pop_block`] decodes Bit-Swap's order.
    Naive,
}

/// Pushes one image (`C×S×S` pixels, CHW) by bits-back coding with Bit-Swap's order (see the
/// module docs), its pixel tables started as `tables` says.
pub fn push_block(
    coder: &mut DefaultAnsCoder,
    vae: &Vae,
    x: &[u8],
    tables: BinnedStart,
) -> Result<()> {
    encode_block(coder, vae, x, (Order::BitSwap, tables), &mut |_| {})
}

/// The encoder of one block in `order`; `watch` sees the coder after every layer's posterior
/// pops (where the stack is lowest).
fn encode_block(
    coder: &mut DefaultAnsCoder,
    vae: &Vae,
    x: &[u8],
    (order, tables): (Order, BinnedStart),
    watch: &mut dyn FnMut(&DefaultAnsCoder),
) -> Result<()> {
    let config = vae.config();
    let dims = config.dims();
    if x.len() != dims {
        return Err(CodecError::Internal(format!(
            "a VAE block of {} values, expected {dims}",
            x.len()
        )));
    }
    let layers = config.layers();
    let push_pixels = |coder: &mut DefaultAnsCoder, z1: &[usize]| -> Result<()> {
        let raw = vae.decode_raw(&centres(vae, 1, z1))?;
        for i in (0..dims).rev() {
            let model = pixel_model(&raw, config.mixtures, dims, i, tables)?;
            coder
                .encode_symbol(usize::from(x[i]), &model)
                .map_err(encode_failed)?;
        }
        Ok(())
    };
    // p(z_{l−1}|z_l) for l ≥ 2
    let push_below = |coder: &mut DefaultAnsCoder, l: usize, below: &[usize], above: &[usize]| {
        let (mu, logvar) = vae.prior_below(l, &centres(vae, l, above))?;
        push_latent(
            coder,
            vae,
            l - 1,
            below,
            (&mu, &logvar),
            CodecError::Internal,
        )
    };
    let (mu, logvar) = vae.encode(x)?;
    let mut z = vec![pop_latent(
        coder,
        vae,
        1,
        (&mu, &logvar),
        CodecError::Internal,
    )?];
    watch(coder);
    if order == Order::BitSwap {
        push_pixels(coder, &z[0])?;
    }
    for l in 2..=layers {
        let (mu, logvar) = vae.encode_latent(l, &centres(vae, l - 1, &z[l - 2]))?;
        z.push(pop_latent(
            coder,
            vae,
            l,
            (&mu, &logvar),
            CodecError::Internal,
        )?);
        watch(coder);
        if order == Order::BitSwap {
            push_below(coder, l, &z[l - 2], &z[l - 1])?;
        }
    }
    if order == Order::Naive {
        push_pixels(coder, &z[0])?;
        for l in 2..=layers {
            push_below(coder, l, &z[l - 2], &z[l - 1])?;
        }
    }
    let prior = vae.buckets.prior();
    for &k in z[layers - 1].iter().rev() {
        coder.encode_symbol(k, prior).map_err(encode_failed)?;
    }
    Ok(())
}

/// The initial bits one block's encoding needs in `order`: the most bits its pops take off the
/// stack beyond what it has pushed so far (counted on the coder, from a stack that holds
/// enough; not a timing). Bit-Swap's does not grow with the depth, the naive order's does.
pub fn initial_bits(vae: &Vae, x: &[u8], order: Order) -> Result<usize> {
    // more than any valid config's posteriors take (8 layers × 1024 dimensions × 24 bits),
    // the same for every model so that equal first layers count equal bits
    const SUPPLY: u32 = 8192;
    let words: Vec<u32> = (0..SUPPLY)
        .map(|i| i.wrapping_mul(0x9e37_79b9) | 1)
        .collect();
    let mut coder = DefaultAnsCoder::from_compressed(words)
        .map_err(|_| CodecError::Internal("a supply of bits".into()))?;
    let start = coder.num_valid_bits();
    let mut lowest = start;
    encode_block(&mut coder, vae, x, (order, BinnedStart::Exact), &mut |c| {
        lowest = lowest.min(c.num_valid_bits())
    })?;
    Ok(start - lowest)
}

/// Pops one image pushed by [`push_block`] with the same `tables`: the exact reverse of
/// Bit-Swap's order (see the module docs).
pub fn pop_block(coder: &mut DefaultAnsCoder, vae: &Vae, tables: BinnedStart) -> Result<Vec<u8>> {
    let config = vae.config();
    let dims = config.dims();
    let layers = config.layers();
    let prior = vae.buckets.prior();
    let top = config.latents()[layers - 1];
    let mut above = (0..top)
        .map(|_| coder.decode_symbol(prior).map_err(decode_failed))
        .collect::<Result<Vec<usize>>>()?;
    for l in (2..=layers).rev() {
        let (mu, logvar) = vae.prior_below(l, &centres(vae, l, &above))?;
        let below = pop_latent(
            coder,
            vae,
            l - 1,
            (&mu, &logvar),
            CodecError::CorruptPayload,
        )?;
        let (mu, logvar) = vae.encode_latent(l, &centres(vae, l - 1, &below))?;
        push_latent(
            coder,
            vae,
            l,
            &above,
            (&mu, &logvar),
            CodecError::CorruptPayload,
        )?;
        above = below;
    }
    let raw = vae.decode_raw(&centres(vae, 1, &above))?;
    let x = (0..dims)
        .map(|i| {
            let model = pixel_model(&raw, config.mixtures, dims, i, tables)?;
            let v = coder.decode_symbol(&model).map_err(decode_failed)?;
            u8::try_from(v).map_err(|_| CodecError::CorruptPayload("pixel out of range".into()))
        })
        .collect::<Result<Vec<u8>>>()?;
    let (mu, logvar) = vae.encode(&x)?;
    push_latent(
        coder,
        vae,
        1,
        &above,
        (&mu, &logvar),
        CodecError::CorruptPayload,
    )?;
    Ok(x)
}

/// Checks a tile's shape against the model: sides multiples of the image size.
fn check_tile(vae: &Vae, len: Option<usize>, height: usize, width: usize) -> Result<()> {
    let (c, s) = (vae.config().in_channels, vae.config().image_size);
    let expected = c.checked_mul(height).and_then(|v| v.checked_mul(width));
    if height == 0 || width == 0 || height % s != 0 || width % s != 0 || expected.is_none() {
        return Err(CodecError::InvalidImage(format!(
            "a VAE for {s}×{s} images codes tiles whose sides are multiples of {s}, not {height}×{width}"
        )));
    }
    if let Some(len) = len {
        if Some(len) != expected {
            return Err(CodecError::InvalidImage(format!(
                "{len} values do not fill {c}×{height}×{width}"
            )));
        }
    }
    Ok(())
}

/// The block at `(by, bx)` of a CHW tile, as a `C×S×S` image.
fn block_of(
    planes: &[u8],
    (c, h, w): (usize, usize, usize),
    s: usize,
    (by, bx): (usize, usize),
) -> Vec<u8> {
    let mut out = Vec::with_capacity(c * s * s);
    for ch in 0..c {
        for y in 0..s {
            let row = ch * h * w + (by * s + y) * w + bx * s;
            out.extend_from_slice(&planes[row..row + s]);
        }
    }
    out
}

/// Pushes a tile (`C×height×width`, CHW, sides multiples of the image size) as its blocks in
/// raster order, the pixel tables started as `tables` says.
pub fn push_image(
    coder: &mut DefaultAnsCoder,
    vae: &Vae,
    planes: &[u8],
    (height, width): (usize, usize),
    tables: BinnedStart,
) -> Result<()> {
    check_tile(vae, Some(planes.len()), height, width)?;
    let (c, s) = (vae.config().in_channels, vae.config().image_size);
    for by in 0..height / s {
        for bx in 0..width / s {
            push_block(
                coder,
                vae,
                &block_of(planes, (c, height, width), s, (by, bx)),
                tables,
            )?;
        }
    }
    Ok(())
}

/// Pops a tile pushed by [`push_image`] with the same `tables` (blocks in reverse raster
/// order).
pub fn pop_image(
    coder: &mut DefaultAnsCoder,
    vae: &Vae,
    (height, width): (usize, usize),
    tables: BinnedStart,
) -> Result<Vec<u8>> {
    check_tile(vae, None, height, width)?;
    let (c, s) = (vae.config().in_channels, vae.config().image_size);
    let mut planes = vec![0u8; c * height * width];
    for by in (0..height / s).rev() {
        for bx in (0..width / s).rev() {
            let block = pop_block(coder, vae, tables)?;
            for ch in 0..c {
                for y in 0..s {
                    let row = ch * height * width + (by * s + y) * width + bx * s;
                    let from = (ch * s + y) * s;
                    planes[row..row + s].copy_from_slice(&block[from..from + s]);
                }
            }
        }
    }
    Ok(planes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_have_equal_prior_mass() {
        let b = Buckets::new(8);
        for k in 1..b.len() {
            let p = 0.5 * libm::erfc(-b.edge(k) * std::f64::consts::FRAC_1_SQRT_2);
            assert!((p - k as f64 / 256.0).abs() < 1e-12, "edge {k}: {p}");
            assert!(b.edge(k) > b.edge(k - 1));
            assert!(
                f64::from(b.centre(k - 1)) > b.edge(k - 1)
                    && f64::from(b.centre(k - 1)) < b.edge(k)
            );
        }
    }

    #[test]
    fn posterior_is_mode_first_and_complete() {
        let b = Buckets::new(10);
        let p = Posterior::new(&b, 0.3, -4.0).unwrap();
        let total: u64 = (0..b.len()).map(|k| u64::from(p.probability(k))).sum();
        assert_eq!(total, 1 << 24);
        let mode = p.order[0] as usize;
        assert!(b.edge(mode) <= 0.3 && 0.3 < b.edge(mode + 1));
        let mut seen = p.order.clone();
        seen.sort_unstable();
        assert!(seen.iter().enumerate().all(|(i, &k)| i == k as usize));
        assert!(Posterior::new(&b, f32::NAN, 0.0).is_err());
    }
}
