//! Integer discrete flow (Hoogeboom et al. 2019) in tch, for training.
//!
//! Follows the semantics of [`idfcodec_codec::model::idf::arch`] exactly (squeeze, additive integer couplings
//! with straight-through rounding, channel reversal, conditional factor-out priors, a top prior in
//! channel groups), so that the exported weights run unchanged on the codec's deterministic engine.

use idfcodec_codec::model::idf::arch::{
    IdfConfig, MixtureLayout, MixtureParam, NetKind, NetRole, LOG_SCALE_MAX, LOG_SCALE_MIN,
    LOG_SCALE_OFFSET, MEAN_OFFSET, MEAN_SCALE, NORM_OFFSET, NORM_SCALE,
};
use tch::{nn, Kind, Tensor};

use crate::metrics::bpd::{self, Likelihood};

mod trainable;
pub use trainable::{IdfModelConfig, IdfSchedule};

/// A residual convolutional network: `conv_in`, `blocks` pre-activation residual blocks, `conv_out`,
/// and for a prior with `prior_skip` a linear `conv_skip` from input to output.
#[derive(Debug)]
pub struct ConvNet {
    conv_in: nn::Conv2D,
    blocks: Vec<(nn::Conv2D, nn::Conv2D)>,
    conv_out: nn::Conv2D,
    skip: Option<nn::Conv2D>,
}

/// How a convolution starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OutputInit {
    /// Zero weights and bias: a coupling starts as the identity.
    Zero,
    /// The default (Kaiming-uniform) initialisation: priors must break the mixture's symmetry.
    Default,
}

fn conv3x3(p: nn::Path, cin: usize, cout: usize, init: OutputInit) -> nn::Conv2D {
    let mut cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    if init == OutputInit::Zero {
        cfg.ws_init = nn::Init::Const(0.0);
        cfg.bs_init = nn::Init::Const(0.0);
    }
    nn::conv2d(p, cin as i64, cout as i64, 3, cfg)
}

impl ConvNet {
    /// Builds the network under `p` with the tensor names of [`IdfConfig::tensor_specs`]. A
    /// coupling starts with a zero last layer (the flow starts as the identity); a prior with the
    /// default one (it breaks the mixture's symmetry) and, with `prior_skip`, a zero skip.
    pub fn new(p: &nn::Path, cfg: &IdfConfig, cin: usize, cout: usize, kind: NetKind) -> Self {
        let h = cfg.hidden;
        let blocks = (0..cfg.blocks)
            .map(|b| {
                let bp = p / format!("block{b}");
                (
                    conv3x3(&bp / "conv1", h, h, OutputInit::Default),
                    conv3x3(&bp / "conv2", h, h, OutputInit::Default),
                )
            })
            .collect();
        let last = match kind {
            NetKind::Coupling => OutputInit::Zero,
            NetKind::Prior => OutputInit::Default,
        };
        ConvNet {
            conv_in: conv3x3(p / "conv_in", cin, h, OutputInit::Default),
            blocks,
            conv_out: conv3x3(p / "conv_out", h, cout, last),
            skip: cfg
                .has_skip(kind)
                .then(|| conv3x3(p / "conv_skip", cin, cout, OutputInit::Zero)),
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.apply(&self.conv_in);
        for (c1, c2) in &self.blocks {
            h = &h + h.relu().apply(c1).relu().apply(c2);
        }
        let y = h.relu().apply(&self.conv_out);
        match &self.skip {
            Some(skip) => y + x.apply(skip),
            None => y,
        }
    }
}

/// Space-to-depth: `N×C×H×W → N×4C×H/2×W/2`, output channel `c·4 + dy·2 + dx`.
pub fn squeeze(x: &Tensor) -> Tensor {
    let (n, c, h, w) = x.size4().expect("squeeze needs a 4-d tensor");
    x.reshape([n, c, h / 2, 2, w / 2, 2])
        .permute([0, 1, 3, 5, 2, 4])
        .reshape([n, 4 * c, h / 2, w / 2])
}

/// The four pixel phases: `N×C×H×W → N×4C×H/2×W/2`, output channel `(dy·2 + dx)·C + c`
/// (phase-major; see [`idfcodec_codec::model::idf::arch`]).
pub fn phases(x: &Tensor) -> Tensor {
    let (n, c, h, w) = x.size4().expect("phases needs a 4-d tensor");
    squeeze(x)
        .reshape([n, c, 4, h / 2, w / 2])
        .transpose(1, 2)
        .reshape([n, 4 * c, h / 2, w / 2])
}

/// Network input normalisation of integer-valued latents.
fn norm(z: &Tensor) -> Tensor {
    (z - NORM_OFFSET as f64) * NORM_SCALE as f64
}

/// Rounds in the forward pass, identity gradient in the backward pass (straight-through).
fn round_ste(x: &Tensor) -> Tensor {
    x + (x.round() - x).detach()
}

/// Negative log-likelihood in nats of integer latents `z` (`N×C×H×W`) under discretized logistic
/// mixtures with raw parameters `raw` (`N×3MC×H×W`, layout of [`idfcodec_codec::model::idf::arch`]).
/// Returns per-image sums, shape `N`.
pub fn mixture_nll(z: &Tensor, raw: &Tensor, mixtures: usize) -> Tensor {
    per_image(&mixture_nll_elements(z, raw, mixtures))
}

/// Sums an `N×C×H×W` tensor per image (shape `N`).
fn per_image(t: &Tensor) -> Tensor {
    let n = t.size()[0];
    t.sum_to_size([n, 1, 1, 1]).reshape([n])
}

/// [`mixture_nll`] of every latent (`N×C×H×W`, nats).
pub fn mixture_nll_elements(z: &Tensor, raw: &Tensor, mixtures: usize) -> Tensor {
    let (n, c, h, w) = z.size4().expect("latents are 4-d");
    let m = mixtures as i64;
    // per latent channel, the 3·M raw values of [`MixtureLayout`]: parameter-major, then component
    let p = raw.reshape([n, c, MixtureParam::ALL.len() as i64, m, h, w]);
    let param = |q: MixtureParam| p.select(2, q as i64);
    let logits = param(MixtureParam::Logit);
    let mean = param(MixtureParam::Mean) * MEAN_SCALE as f64 + MEAN_OFFSET as f64;
    let log_s = (param(MixtureParam::LogScale) + LOG_SCALE_OFFSET as f64)
        .clamp(LOG_SCALE_MIN as f64, LOG_SCALE_MAX as f64);
    let inv_s = (-&log_s).exp();
    let centered = z.unsqueeze(2) - mean;
    let upper = (&centered + 0.5) * &inv_s;
    let lower = (&centered - 0.5) * &inv_s;
    // log(σ(u) − σ(l)) = log σ(u) + log σ(−l) + log(1 − e^{−(u−l)}), with u − l = 1/s.
    let log_mass = upper.log_sigmoid() + (-&lower).log_sigmoid() + (-(-&inv_s).expm1()).log();
    let log_p = (logits.log_softmax(2, Kind::Float) + log_mass).logsumexp([2], false);
    -log_p
}

/// `1×1×H×W` masks of the four pixel phases (1 at the phase's positions), in phase order
/// (see [`idfcodec_codec::model::idf::arch`]).
fn phase_masks(h: i64, w: i64, device: tch::Device) -> Vec<Tensor> {
    let y = Tensor::arange(h, (Kind::Int64, device))
        .remainder(2)
        .reshape([h, 1]);
    let x = Tensor::arange(w, (Kind::Int64, device))
        .remainder(2)
        .reshape([1, w]);
    let phase = y * 2 + x;
    (0..4)
        .map(|j| phase.eq(j).to_kind(Kind::Float).reshape([1, 1, h, w]))
        .collect()
}

/// One emitted group of latents: the values, the raw prior parameters they are coded with, and
/// for a top phase the mask of the positions it holds (`1×1×H×W`; `None`: all of them).
struct Emitted {
    z: Tensor,
    raw: Tensor,
    mask: Option<Tensor>,
}

/// Fits a mixture of `m` components to each row of `values` (`C×N`, integer latents) by a few
/// EM steps on Gaussians started at the quantiles, and returns the raw parameters (`C×3m`, the
/// layout of [`idfcodec_codec::model::idf::arch`]) of the logistic mixture with the same means and variances.
/// Components that land on the same value are spread by a fraction of a pixel so that training
/// can tell them apart.
pub fn fit_mixture(values: &Tensor, m: usize) -> Tensor {
    let (c, n) = values.size2().expect("values are C×N");
    let mi = m as i64;
    let v = values.to_kind(Kind::Double).unsqueeze(1); // C×1×N
    let q = Tensor::from_slice(
        &(0..m)
            .map(|j| (j as f64 + 0.5) / m as f64)
            .collect::<Vec<_>>(),
    );
    let total_var = v.var_dim([2i64].as_slice(), true, true).clamp_min(1.0); // C×1×1
                                                                             // quantiles, pulled apart by a fraction of the standard deviation: on peaked data several
                                                                             // quantiles coincide, and identical components would stay identical under EM
    let offsets = Tensor::from_slice(
        &(0..m)
            .map(|j| (j as f64 - (m as f64 - 1.0) / 2.0) / m as f64)
            .collect::<Vec<_>>(),
    )
    .reshape([1, mi, 1]);
    let mut mean = values
        .to_kind(Kind::Double)
        .quantile(&q, 1, false, "linear")
        .transpose(0, 1)
        .unsqueeze(2)
        + offsets * total_var.sqrt(); // C×m×1
    let mut var = total_var.expand([c, mi, 1], false).copy();
    let mut weight = Tensor::full([c, mi, 1], 1.0 / m as f64, (Kind::Double, values.device()));
    const FLOOR: f64 = 1e-2;
    for _ in 0..30 {
        let d = &v - &mean; // C×m×N
        let log_p: Tensor = weight.log()
            - 0.5 * (&var * (2.0 * std::f64::consts::PI)).log()
            - d.square() / (2.0 * &var);
        let resp = log_p.softmax(1, Kind::Double); // C×m×N
        let mass = resp.sum_dim_intlist([2i64].as_slice(), true, Kind::Double) + 1e-9; // C×m×1
        weight = &mass / n as f64;
        mean = (&resp * &v).sum_dim_intlist([2i64].as_slice(), true, Kind::Double) / &mass;
        var = ((&resp * (&v - &mean).square()).sum_dim_intlist(
            [2i64].as_slice(),
            true,
            Kind::Double,
        ) / &mass)
            .clamp_min(FLOOR);
    }
    let spread = Tensor::from_slice(
        &(0..m)
            .map(|j| (j as f64 - (m as f64 - 1.0) / 2.0) * 0.25)
            .collect::<Vec<_>>(),
    )
    .reshape([1, mi, 1]);
    let mean = mean + spread;
    // logistic with the Gaussian's variance: s = σ·√3/π
    let log_s = (var.sqrt() * (3f64.sqrt() / std::f64::consts::PI))
        .log()
        .clamp(LOG_SCALE_MIN as f64, LOG_SCALE_MAX as f64);
    let raw_logit = weight.clamp_min(1e-4).log();
    let raw_mean = (mean - MEAN_OFFSET as f64) / MEAN_SCALE as f64;
    let raw_log_s = log_s - LOG_SCALE_OFFSET as f64;
    // C×3×m in the order of `MixtureParam::ALL`, i.e. the rows of [`MixtureLayout`]
    let by_param = |q: MixtureParam| match q {
        MixtureParam::Logit => &raw_logit,
        MixtureParam::Mean => &raw_mean,
        MixtureParam::LogScale => &raw_log_s,
    };
    Tensor::cat(&MixtureParam::ALL.map(by_param), 1)
        .reshape([c, MixtureLayout::new(m).per_latent() as i64])
        .to_kind(Kind::Float)
}

/// The trainable IDF.
#[derive(Debug)]
pub struct Idf {
    config: IdfConfig,
    couplings: Vec<Vec<ConvNet>>,
    /// Per level, the prior network of each factor-out group.
    priors: Vec<Vec<ConvNet>>,
    top: Tensor,
    /// Prior networks of top groups `1..top_groups`.
    top_nets: Vec<ConvNet>,
    /// With `top_phases`: the networks of top phases `1..4`, in
    /// [`IdfConfig::top_phase_nets`] order.
    top_phase_nets: Vec<ConvNet>,
}

impl Idf {
    /// Builds the model under `p`, one network per entry of [`IdfConfig::networks`] (so the
    /// tensor names match [`IdfConfig::tensor_specs`]).
    pub fn new(p: &nn::Path, config: &IdfConfig) -> Self {
        let mut couplings: Vec<Vec<ConvNet>> = (0..config.levels).map(|_| Vec::new()).collect();
        let mut priors: Vec<Vec<ConvNet>> = (0..config.levels).map(|_| Vec::new()).collect();
        let mut top = None;
        let mut top_nets = Vec::new();
        let mut top_phase_nets = Vec::new();
        for spec in config.networks() {
            let path = spec
                .name
                .split('.')
                .fold(p.clone(), |path, part| &path / part);
            let Some(kind) = spec.role.kind() else {
                // random means and scales break the symmetry between mixture components
                let shape = config.top_params_shape().map(|d| d as i64);
                let (parent, leaf) = spec.name.rsplit_once('.').expect("top.params");
                let parent = parent.split('.').fold(p.clone(), |path, part| &path / part);
                top = Some(parent.var(leaf, &shape, nn::Init::Uniform { lo: -0.5, up: 0.5 }));
                continue;
            };
            let net = ConvNet::new(&path, config, spec.inputs, spec.outputs, kind);
            match spec.role {
                NetRole::Coupling { level, .. } => couplings[level].push(net),
                NetRole::Prior { level, .. } => priors[level].push(net),
                NetRole::TopGroup { .. } => top_nets.push(net),
                NetRole::TopPhase { .. } => top_phase_nets.push(net),
                NetRole::TopParams => unreachable!("top.params is not a network"),
            }
        }
        Idf {
            config: config.clone(),
            couplings,
            priors,
            top: top.expect("the network list holds top.params"),
            top_nets,
            top_phase_nets,
        }
    }

    pub fn config(&self) -> &IdfConfig {
        &self.config
    }

    /// Per-image negative log-likelihood in nats of integer pixels `x` (`N×C×H×W`, float kind
    /// holding integers `0..=255`). Exact discrete NLL: no dequantization noise.
    pub fn nll(&self, x: &Tensor) -> Tensor {
        Likelihood::nll(self, x)
    }

    /// Per-image NLL in nats of each emitted latent group: the factor-out of every level, then
    /// the top. Their sum is [`Idf::nll`].
    pub fn nll_by_group(&self, x: &Tensor) -> Vec<Tensor> {
        let m = self.config.mixtures;
        self.emitted(x)
            .iter()
            .map(|e| match &e.mask {
                None => mixture_nll(&e.z, &e.raw, m),
                Some(mask) => per_image(&(mixture_nll_elements(&e.z, &e.raw, m) * mask)),
            })
            .collect()
    }

    /// Every emitted latent group with the raw prior parameters it is coded with: the factor-out
    /// groups of every level, then the top's groups, in the order of
    /// [`IdfConfig::prior_names`].
    fn emitted(&self, x: &Tensor) -> Vec<Emitted> {
        let mut z = x.shallow_clone();
        let mut groups = Vec::new();
        for (l, s) in self.config.level_shapes().iter().enumerate() {
            z = match self.config.phase_squeeze {
                true => phases(&z),
                false => squeeze(&z),
            };
            for net in &self.couplings[l] {
                let a = z.narrow(1, 0, s.coupling_in as i64);
                let b = z.narrow(1, s.coupling_in as i64, s.coupling_out as i64);
                let t = round_ste(&(net.forward(&norm(&a)) * self.config.translation_scale as f64));
                z = Tensor::cat(&[a, b + t], 1).flip([1]);
            }
            let mut out = z.narrow(1, 0, s.factored as i64);
            let rest = z.narrow(1, s.factored as i64, s.rest as i64);
            let mut context = rest.shallow_clone();
            if self.config.phased(l) {
                (out, context) = (phases(&out), phases(&rest));
            }
            let g = self.config.prior_group_channels(s) as i64;
            for (k, net) in self.priors[l].iter().enumerate() {
                let k = k as i64;
                let context = Tensor::cat(&[&context, &out.narrow(1, 0, k * g)], 1);
                groups.push(Emitted {
                    z: out.narrow(1, k * g, g),
                    raw: net.forward(&norm(&context)),
                    mask: None,
                });
            }
            z = rest;
        }
        let (n, _, h, w) = z.size4().expect("latents are 4-d");
        let g = self.config.top_group_channels() as i64;
        let m = self.config.mixtures as i64;
        let first = z.narrow(1, 0, g);
        let top_raw = self
            .top
            .reshape([1, -1, 1, 1])
            .expand([n, g * 3 * m, h, w], false);
        if !self.config.top_phases {
            groups.push(Emitted {
                z: first,
                raw: top_raw,
                mask: None,
            });
            for (i, net) in self.top_nets.iter().enumerate() {
                let k = i as i64 + 1;
                groups.push(Emitted {
                    z: z.narrow(1, k * g, g),
                    raw: net.forward(&norm(&z.narrow(1, 0, k * g))),
                    mask: None,
                });
            }
            return groups;
        }
        let masks = phase_masks(h, w, z.device());
        // the positions of the phases before phase j, decoded when phase j is
        let decoded: Vec<Tensor> = (0..masks.len())
            .map(|j| masks[..j].iter().fold(masks[0].zeros_like(), |a, m| a + m))
            .collect();
        let mut phase_nets = self.top_phase_nets.iter();
        for k in 0..self.config.top_groups as i64 {
            let own = z.narrow(1, k * g, g);
            let before = norm(&z.narrow(1, 0, k * g));
            for (j, mask) in masks.iter().enumerate() {
                let raw = match (k, j) {
                    (0, 0) => top_raw.shallow_clone(),
                    (k, 0) => self.top_nets[k as usize - 1].forward(&before),
                    (_, j) => {
                        let input = Tensor::cat(&[&before, &(norm(&own) * &decoded[j])], 1);
                        let net = phase_nets.next().expect("one network per later phase");
                        net.forward(&input)
                    }
                };
                groups.push(Emitted {
                    z: own.shallow_clone(),
                    raw,
                    mask: Some(mask.shallow_clone()),
                });
            }
        }
        groups
    }

    /// Data-dependent start for the priors (call once, before training): every prior begins as
    /// the per-channel mixture that fits the latents of `x` (EM, see [`fit_mixture`]), with the
    /// prior networks' last layer zeroed so their output is exactly that mixture. Without it the
    /// log-scales must travel from `e^2` pixels to `e^-4` one learning-rate step at a time, which
    /// on peaked data such as MNIST takes thousands of steps.
    ///
    /// Only the priors whose tensor-name prefix (`level0.prior`, `top.params`, `top.group1`, …)
    /// passes `only` are set; the others are left as they are (e.g. copied from a trained run).
    pub fn init_priors(&self, x: &Tensor, only: impl Fn(&str) -> bool) {
        tch::no_grad(|| {
            let groups = self.emitted(x);
            let m = self.config.mixtures;
            // the nets in the order of `prior_names`; `None` for the top's parameter tensor
            let names = self.config.prior_names();
            for (name, e) in names.iter().zip(&groups) {
                if !only(name) {
                    continue;
                }
                let net = self.prior_net(name);
                let c = e.z.size()[1];
                let values = match &e.mask {
                    None => e.z.transpose(0, 1).reshape([c, -1]),
                    Some(mask) => {
                        e.z.transpose(0, 1)
                            .masked_select(&mask.transpose(0, 1).to_kind(Kind::Bool))
                            .reshape([c, -1])
                    }
                }
                .to_kind(Kind::Float);
                let raw = fit_mixture(&values, m).reshape([-1]).to_device(x.device());
                if let Some(net) = net {
                    let mut ws = net.conv_out.ws.shallow_clone();
                    let _ = ws.zero_();
                    let mut bs = net
                        .conv_out
                        .bs
                        .as_ref()
                        .expect("conv_out has a bias")
                        .shallow_clone();
                    bs.copy_(&raw);
                } else {
                    let mut top = self.top.shallow_clone();
                    top.copy_(&raw.reshape(top.size()));
                }
            }
        });
    }

    /// The network of the prior named `name` (a name of [`IdfConfig::prior_names`]); `None` for
    /// the top's parameter tensor.
    fn prior_net(&self, name: &str) -> Option<&ConvNet> {
        let cfg = &self.config;
        let mut levels = (0..cfg.levels).flat_map(|l| {
            (0..cfg.level_groups(l)).map(move |k| (IdfConfig::prior_group_name(l, k), (l, k)))
        });
        if let Some((_, (l, k))) = levels.find(|(n, _)| n == name) {
            return Some(&self.priors[l][k]);
        }
        if let Some(k) = (1..cfg.top_groups).find(|&k| IdfConfig::top_group_name(k) == name) {
            return Some(&self.top_nets[k - 1]);
        }
        cfg.top_phase_nets()
            .into_iter()
            .position(|(k, j)| IdfConfig::top_phase_name(k, j) == name)
            .map(|i| &self.top_phase_nets[i])
    }

    /// Mean bits per sub-pixel of a batch (the training loss).
    pub fn bpd(&self, x: &Tensor) -> Tensor {
        bpd::batch_bpd(self, x)
    }
}

impl Likelihood for Idf {
    /// The NLL of every emitted latent group ([`Idf::nll_by_group`]).
    fn nll_terms(&self, x: &Tensor) -> Vec<Tensor> {
        self.nll_by_group(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    #[test]
    fn squeeze_matches_the_documented_channel_order() {
        let x = Tensor::arange(16, (Kind::Float, Device::Cpu)).reshape([1, 1, 4, 4]);
        let y = squeeze(&x);
        assert_eq!(y.size(), [1, 4, 2, 2]);
        // channel dy*2+dx holds x[2i+dy][2j+dx]
        let v = |c: i64, i: i64, j: i64| y.int64_value(&[0, c, i, j]);
        assert_eq!(v(0, 0, 0), 0);
        assert_eq!(v(1, 0, 0), 1);
        assert_eq!(v(2, 0, 0), 4);
        assert_eq!(v(3, 1, 1), 15);
    }

    #[test]
    fn phases_are_phase_major() {
        let x = Tensor::arange(32, (Kind::Float, Device::Cpu)).reshape([1, 2, 4, 4]);
        let y = phases(&x);
        assert_eq!(y.size(), [1, 8, 2, 2]);
        // channel (dy*2+dx)*2 + c holds x[c][2i+dy][2j+dx]
        let v = |ch: i64, i: i64, j: i64| y.int64_value(&[0, ch, i, j]);
        assert_eq!(v(0, 0, 0), 0);
        assert_eq!(v(1, 0, 0), 16);
        assert_eq!(v(2, 0, 0), 1);
        assert_eq!(v(4, 0, 1), 6);
        assert_eq!(v(7, 1, 1), 16 + 15);
    }

    /// One logistic component: the NLL must equal −ln(σ((z+½−μ)/s) − σ((z−½−μ)/s)) computed by hand.
    #[test]
    fn mixture_nll_matches_a_hand_computed_logistic() {
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        for &(z, raw_mean, raw_ls) in &[(130.0, 0.0, 0.0), (100.0, 0.25, -1.5), (300.0, -0.1, 3.0)]
        {
            let zt = Tensor::from_slice(&[z as f32]).reshape([1, 1, 1, 1]);
            let raw =
                Tensor::from_slice(&[0.7f32, raw_mean as f32, raw_ls as f32]).reshape([1, 3, 1, 1]);
            let got = mixture_nll(&zt, &raw, 1).double_value(&[0]);
            let mu = MEAN_OFFSET as f64 + MEAN_SCALE as f64 * raw_mean;
            let s = (raw_ls + LOG_SCALE_OFFSET as f64).exp();
            let want = -(sig((z + 0.5 - mu) / s) - sig((z - 0.5 - mu) / s)).ln();
            assert!(
                (got - want).abs() < 1e-4 * want.max(1.0),
                "z={z}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn mixture_probabilities_sum_to_one_over_the_integers() {
        let z =
            Tensor::arange_start(-2000, 2300, (Kind::Float, Device::Cpu)).reshape([1, 1, 1, -1]);
        let raw = Tensor::from_slice(&[0.3f32, -1.0, 0.2, -0.5, 0.1, 0.3, 0.5, 1.5, 2.0])
            .reshape([1, 9, 1, 1])
            .expand([1, 9, 1, 4300], false);
        let p_sum = (-mixture_nll_per_element(&z, &raw, 3))
            .exp()
            .sum(Kind::Double)
            .double_value(&[]);
        assert!((p_sum - 1.0).abs() < 1e-4, "{p_sum}");
    }

    #[test]
    fn fitted_mixture_finds_the_modes_of_peaked_data() {
        // 70% exact zeros, 30% spread around 200: a component must sit on 0 with a tiny scale
        let v: Vec<f32> = (0..1000)
            .map(|i| {
                if i % 10 < 7 {
                    0.0
                } else {
                    190.0 + (i % 21) as f32
                }
            })
            .collect();
        let raw = fit_mixture(&Tensor::from_slice(&v).reshape([1, -1]), 2);
        let at = |j: i64| raw.double_value(&[0, j]);
        let means: Vec<f64> = (2..4)
            .map(|j| MEAN_OFFSET as f64 + MEAN_SCALE as f64 * at(j))
            .collect();
        let zero = if means[0].abs() < means[1].abs() {
            0
        } else {
            1
        };
        assert!(means[zero].abs() < 0.5, "{means:?}");
        assert!((means[1 - zero] - 200.0).abs() < 2.0, "{means:?}");
        assert!(at(4 + zero as i64) + (LOG_SCALE_OFFSET as f64) < -2.0);
        let weight_zero = at(zero as i64).exp() / (at(0).exp() + at(1).exp());
        assert!((weight_zero - 0.7).abs() < 0.02, "{weight_zero}");
    }

    #[test]
    fn data_init_starts_far_below_a_random_start() {
        tch::manual_seed(3);
        let cfg = IdfConfig {
            hidden: 8,
            couplings: 1,
            mixtures: 3,
            ..IdfConfig::default()
        };
        // digit-like images: mostly zero, a bright square
        let x = Tensor::zeros([16, 1, 8, 8], (Kind::Float, Device::Cpu));
        let _ = x.narrow(2, 2, 4).narrow(3, 2, 3).fill_(250.0);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = Idf::new(&vs.root(), &cfg);
        let before = model.bpd(&x).double_value(&[]);
        model.init_priors(&x, |_| true);
        let after = model.bpd(&x).double_value(&[]);
        for g in model.nll_by_group(&x) {
            eprintln!("group {}", g.mean(Kind::Float).double_value(&[]));
        }
        assert!(after < 1.0 && after < before / 4.0, "{before} -> {after}");
    }

    fn mixture_nll_per_element(z: &Tensor, raw: &Tensor, m: usize) -> Tensor {
        // evaluate each column as its own image so the per-image sums are per-element values
        let w = z.size()[3];
        let zs = z.permute([3, 1, 2, 0]);
        let rs = raw.permute([3, 1, 2, 0]);
        mixture_nll(&zs, &rs, m).reshape([w])
    }
}
