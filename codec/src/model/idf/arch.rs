//! The IDF architecture, described once.
//!
//! This config type is used by the tch model that trains (root crate, `src/nn/idf.rs`) and by the
//! deterministic engine that codes (`flow`). Both follow the semantics written here; the tensor
//! names are the contract between the exported safetensors file and the engine.
//!
//! # The flow (integer in, integer out)
//! Input `x`: `i32` tensor `C×H×W` (pixel values `0..=255`), `H` and `W` divisible by `2^levels`.
//! ```text
//! z = x
//! for l in 0..levels:
//!     z = squeeze(z)                         // C×H×W → 4C×H/2×W/2, see `squeeze`; with
//!                                            // phase_squeeze, z = phases(z) (phase-major)
//!     for k in 0..couplings:                 // Cz = channels of z, Ca = Cz/2, Cb = Cz − Ca
//!         a, b = z[..Ca], z[Ca..]
//!         t    = round_half_even(translation_scale · NN_{l,k}(norm(a)))   // Cb channels
//!         z    = reverse_channels(concat(a, b + t))
//!     // factor-out: the first half leaves the flow, coded conditioned on the rest, in
//!     // P = prior_groups groups of p = (Cz/2)/P channels, each also conditioned on those before
//!     out, z = z[..Cz/2], z[Cz/2..]
//!     o_0, …, o_{P−1} = out[..p], out[p..2p], …
//!     params_{l,0} = PriorNN_l(norm(z))                        // 3·M channels per channel of o_0
//!     params_{l,k} = PriorNN_{l,k}(norm(concat(z, o_0, …, o_{k−1})))   // k ≥ 1
//!     emit (o_{P−1}, params_{l,P−1}), …, (o_0, params_{l,0})
//!     // levels l < phase_levels code the factor-out by pixel phase instead: out and z are first
//!     // cut into their four phases (`phases`, 4× the channels at half the size) and the phased
//!     // out is coded in 4·P groups of p channels (phase (0,0)'s channel groups first, then
//!     // (0,1), (1,0), (1,1)), each conditioned on phases(z) and the groups before it, so the
//!     // later phases see their already decoded neighbours
//!     out, z = phases(out), phases(z)          // then the groups above, then out = unphases(out)
//! // top: Ct channels in G = top_groups groups of g = Ct/G channels, coded one after another
//! z_0, …, z_{G−1} = z[..g], z[g..2g], …
//! params_0 = top_params                      // per-channel parameters, no network
//! params_k = TopNN_k(norm(concat(z_0, …, z_{k−1})))   // k ≥ 1: conditioned on the groups before
//! emit (z_{G−1}, params_{G−1}), …, (z_0, params_0)
//! // with top_phases, every top group is coded in its four pixel phases j = 0..4, phase (dy, dx)
//! // = j (0: (0,0), 1: (0,1), 2: (1,0), 3: (1,1)) holding the positions with y mod 2 = dy and
//! // x mod 2 = dx, in CHW order (any size, odd ones too; a phase may be empty). Phase 0 is coded
//! // with params_k above (at its positions); phase j ≥ 1 with
//! params_{k,j} = TopPhaseNN_{k,j}(concat(norm(z_0, …, z_{k−1}), mask_{<j} · norm(z_k)))
//! // where mask_{<j} is 1 at the phases before j and 0 elsewhere, read at phase j's positions;
//! // emission: group G−1 first, within a group phase 3 first
//! ```
//! Emission order is the reverse of decoding order (ANS is a stack): the decoder gets `z_0` first,
//! then `z_1` from `z_0`, …, then each level's factor-out from the level's rest (`o_0` first),
//! last level first. With `top_groups = 1` and `prior_groups = 1` (the defaults) the top is one
//! group with per-channel parameters and each factor-out one group.
//! `norm(v) = (v − 128) · (1/128)` in f32 (exact for the integers that occur).
//! `phases(v)`: `C×H×W → 4C×H/2×W/2`, channel `(dy·2 + dx)·C + c` holds `v[c][2i+dy][2j+dx]`
//! (phase-major, unlike `squeeze`, whose channel `c·4 + dy·2 + dx` holds the same values).
//!
//! Networks (`NN_{l,k}` and `PriorNN_l`), all convolutions 3×3, stride 1, zero padding 1, with bias:
//! ```text
//! h = conv_in(input)                          // in → hidden
//! for b in 0..blocks:  h = h + conv2(relu(conv1(relu(h))))
//! y = conv_out(relu(h))                       // hidden → out (coupling nets: zero-initialised
//!                                             // when training starts, so the flow starts as identity)
//! y = y + conv_skip(input)                    // prior networks only, with prior_skip: a linear
//!                                             // path, so a mean can follow its neighbours at once
//! ```
//! Tensor names (`{net}` is `level{l}.coupling{k}`, `level{l}.prior` or, for factor-out group
//! `k ≥ 1`, `level{l}.prior{k}`), PyTorch layouts:
//! `{net}.conv_in.weight [hidden, in, 3, 3]`, `{net}.conv_in.bias [hidden]`,
//! `{net}.block{b}.conv1.*`, `{net}.block{b}.conv2.*` (`[hidden, hidden, 3, 3]`),
//! `{net}.conv_out.weight [out, hidden, 3, 3]`, `{net}.conv_out.bias [out]`, with `prior_skip` also
//! `{net}.conv_skip.weight [out, in, 3, 3]` and `{net}.conv_skip.bias [out]` after them in prior nets,
//! `top.params [g, 3·M]` for the top's first group, and networks `top.group{k}` (`k = 1..G`,
//! `k·g` channels in, `3·M·g` out) for the others.
//!
//! # Priors: discretized logistic mixtures on ℤ
//! For a latent channel `c` with `M` components, the raw parameter channels are laid out
//! component-major inside the channel: raw index `c·3M + j` for logits (`j < M`), `c·3M + M + j`
//! for means, `c·3M + 2M + j` for log-scales ([`MixtureLayout`]). Then
//! `mean_j = MEAN_OFFSET + MEAN_SCALE · raw_mean_j`,
//! `log_scale_j = clamp(raw_log_scale_j + LOG_SCALE_OFFSET, LOG_SCALE_MIN, LOG_SCALE_MAX)`,
//! `π = softmax(raw_logits)`, and
//! `P(z) = Σ_j π_j [σ((z + ½ − mean_j)/s_j) − σ((z − ½ − mean_j)/s_j)]`, `s_j = exp(log_scale_j)`,
//! over all integers `z` (latents are not bounded to `0..=255`).
//! The negative log-likelihood of an image is the sum over every emitted latent; bits per
//! dimension divide it (in bits) by `C·H·W` of the input.

use serde::{Deserialize, Serialize};

/// Offset added to a mixture component's mean (pixel units).
pub const MEAN_OFFSET: f32 = 128.0;
/// Scale of a mixture component's raw mean output.
pub const MEAN_SCALE: f32 = 128.0;
/// Added to the raw log-scale so that a zero output means a scale of `e^2 ≈ 7.4` pixel units.
pub const LOG_SCALE_OFFSET: f32 = 2.0;
/// Smallest log-scale (natural log, pixel units).
pub const LOG_SCALE_MIN: f32 = -4.0;
/// Largest log-scale (natural log, pixel units).
pub const LOG_SCALE_MAX: f32 = 9.0;
/// Network input normalisation: `(v − NORM_OFFSET) · NORM_SCALE`.
pub const NORM_OFFSET: i32 = 128;
/// See [`NORM_OFFSET`]; `1/128` is exact in f32.
pub const NORM_SCALE: f32 = 1.0 / 128.0;

/// One of the three raw parameters of a mixture component (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixtureParam {
    /// The component's unnormalised log-weight.
    Logit = 0,
    /// The raw mean: `mean = MEAN_OFFSET + MEAN_SCALE · raw`.
    Mean = 1,
    /// The raw log-scale: `clamp(raw + LOG_SCALE_OFFSET, LOG_SCALE_MIN, LOG_SCALE_MAX)`.
    LogScale = 2,
}

impl MixtureParam {
    /// In layout order: logits, means, log-scales.
    pub const ALL: [MixtureParam; 3] = [Self::Logit, Self::Mean, Self::LogScale];
}

/// Where the raw parameters of `M` logistic mixture components sit: `3·M` per latent channel,
/// component-major inside the channel (raw index `c·3M + p·M + j` for parameter `p` of
/// [`MixtureParam`], component `j`). The one statement of the layout, used by the engine, the
/// training model and its learning rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MixtureLayout {
    /// Components per latent (`M`).
    pub mixtures: usize,
}

impl MixtureLayout {
    pub fn new(mixtures: usize) -> Self {
        MixtureLayout { mixtures }
    }

    /// Raw values per latent channel (`3·M`).
    pub fn per_latent(&self) -> usize {
        3 * self.mixtures
    }

    /// Raw values (channels) for `latents` latent channels.
    pub fn raw_channels(&self, latents: usize) -> usize {
        latents * self.per_latent()
    }

    /// Offset of parameter `param` of component `j` inside one latent's `3·M` values.
    pub fn offset(&self, param: MixtureParam, j: usize) -> usize {
        param as usize * self.mixtures + j
    }

    /// Raw index of the first of latent channel `c`'s `3·M` values.
    pub fn latent_start(&self, c: usize) -> usize {
        c * self.per_latent()
    }

    /// Raw index of parameter `param` of component `j` of latent channel `c`.
    pub fn index(&self, c: usize, param: MixtureParam, j: usize) -> usize {
        self.latent_start(c) + self.offset(param, j)
    }

    /// The range of parameter `param`'s `M` values inside one latent's `3·M`.
    pub fn range(&self, param: MixtureParam) -> std::ops::Range<usize> {
        self.offset(param, 0)..self.offset(param, self.mixtures)
    }

    /// Which parameter the raw index `r` holds (the inverse of [`MixtureLayout::index`]).
    pub fn param_of(&self, r: usize) -> MixtureParam {
        MixtureParam::ALL[(r % self.per_latent()) / self.mixtures]
    }
}

/// Architecture of an integer discrete flow. Serialised as JSON beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdfConfig {
    /// Input channels (1 for grayscale, 3 for RGB).
    pub in_channels: usize,
    /// Number of levels (each starts with a squeeze and ends with a factor-out).
    pub levels: usize,
    /// Additive integer couplings per level.
    pub couplings: usize,
    /// Width of every coupling and prior network.
    pub hidden: usize,
    /// Residual blocks per network.
    pub blocks: usize,
    /// Logistic mixture components per latent.
    pub mixtures: usize,
    /// Network output is multiplied by this before rounding to an integer translation.
    pub translation_scale: f32,
    /// Channel groups of the top latent, each conditioned on the ones before (1: one group with
    /// per-channel parameters). Left out of the JSON when 1, so models made before the field
    /// existed keep their ids.
    #[serde(skip_serializing_if = "is_one")]
    pub top_groups: usize,
    /// Channel groups of every level's factor-out, each conditioned on the level's rest and the
    /// groups before it (1: one group conditioned on the rest). Left out of the JSON when 1.
    #[serde(skip_serializing_if = "is_one")]
    pub prior_groups: usize,
    /// The first `phase_levels` levels code their factor-out by pixel phase: `4·prior_groups`
    /// groups at half the level's size, the later phases conditioned on the earlier ones (see the
    /// module docs). 0 (left out of the JSON): no level does.
    #[serde(skip_serializing_if = "is_zero")]
    pub phase_levels: usize,
    /// Every top group is coded in its four pixel phases, the later phases conditioned on the
    /// earlier ones (see the module docs). Left out of the JSON when false.
    #[serde(skip_serializing_if = "is_false")]
    pub top_phases: bool,
    /// Every level squeezes phase-major (`phases`, channel `(dy·2 + dx)·C + c`) instead of
    /// colour-major (`squeeze`, channel `c·4 + dy·2 + dx`). The factor-out then takes whole pixel
    /// phases, every colour of the even rows, coded conditioned on their neighbours in the odd
    /// rows, rather than whole colour planes conditioned on the other colours alone. Left out of
    /// the JSON when false.
    #[serde(skip_serializing_if = "is_false")]
    pub phase_squeeze: bool,
    /// Every prior network (not the couplings) adds a linear 3×3 convolution of its input to its
    /// output (`conv_skip`), so linear prediction from the context is there from the start rather
    /// than learned through the ReLUs. Left out of the JSON when false.
    #[serde(skip_serializing_if = "is_false")]
    pub prior_skip: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

fn is_one(v: &usize) -> bool {
    *v == 1
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl Default for IdfConfig {
    fn default() -> Self {
        IdfConfig {
            in_channels: 1,
            levels: 2,
            couplings: 4,
            hidden: 64,
            blocks: 1,
            mixtures: 5,
            translation_scale: 128.0,
            top_groups: 1,
            prior_groups: 1,
            phase_levels: 0,
            top_phases: false,
            phase_squeeze: false,
            prior_skip: false,
        }
    }
}

/// What a network of the model does, which decides its tensors (and, in training, how it starts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetKind {
    /// A coupling: its output, times `translation_scale`, is rounded to a translation.
    Coupling,
    /// A prior: its output is the mixture parameters of the latents it codes.
    Prior,
}

impl IdfConfig {
    /// A one-line description of the architecture, for listings (`idfcodec models`).
    pub fn summary(&self) -> String {
        let phases = match self.phase_levels {
            0 => String::new(),
            n => format!(" per pixel phase (4 phases) at the first {n} level(s)"),
        };
        let options: String = [
            (self.top_phases, "; top groups by pixel phase"),
            (self.phase_squeeze, "; phase-major squeezes"),
            (self.prior_skip, "; linear skips in the priors"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, text)| *text)
        .collect();
        format!(
            "{} levels × {} couplings, hidden {}, {} blocks, {} mixtures; top in {} group(s), \
             factor-outs in {}{phases}{options}",
            self.levels,
            self.couplings,
            self.hidden,
            self.blocks,
            self.mixtures,
            self.top_groups,
            self.prior_groups,
        )
    }

    /// Whether networks of `kind` have the linear `conv_skip` ([`IdfConfig::prior_skip`]).
    pub fn has_skip(&self, kind: NetKind) -> bool {
        kind == NetKind::Prior && self.prior_skip
    }
}

/// Where a network (or the top's parameter tensor) sits in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetRole {
    /// Coupling `index` of level `level`.
    Coupling { level: usize, index: usize },
    /// The prior of level `level`'s factor-out group `group`.
    Prior { level: usize, group: usize },
    /// `top.params`: the first top group's per-channel parameters, a tensor `[g, 3·M]`, no network.
    TopParams,
    /// The prior network of top group `group` (`≥ 1`).
    TopGroup { group: usize },
    /// The prior network of top group `group`'s pixel phase `phase` (`≥ 1`, `top_phases`).
    TopPhase { group: usize, phase: usize },
}

impl NetRole {
    /// What the network does; `None` for [`NetRole::TopParams`] (a tensor, not a network).
    pub fn kind(&self) -> Option<NetKind> {
        match self {
            NetRole::Coupling { .. } => Some(NetKind::Coupling),
            NetRole::TopParams => None,
            _ => Some(NetKind::Prior),
        }
    }
}

/// One network of the model (or the top's parameter tensor): its name prefix, its role, and its
/// input and output channels. [`IdfConfig::networks`] lists them all, in tensor order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetSpec {
    /// Tensor name prefix (`level0.coupling1`, `level1.prior`, `top.params`, `top.group1`, …).
    pub name: String,
    pub role: NetRole,
    /// Input channels (0 for `top.params`).
    pub inputs: usize,
    /// Output channels: a coupling's translated half, or a prior's raw mixture parameters
    /// ([`MixtureLayout::raw_channels`] of the latents it codes; for `top.params`, its `g` rows
    /// of `3·M` together).
    pub outputs: usize,
}

/// Shape of one tensor the model needs, with its name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    pub name: String,
    pub shape: Vec<usize>,
}

/// Channel counts at one level, for input channels `C`: after the squeeze there are `4·C_l`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LevelShape {
    /// Channels of `z` inside the level (after the squeeze).
    pub channels: usize,
    /// Channels of the coupling's conditioning half `a`.
    pub coupling_in: usize,
    /// Channels of the translated half `b`.
    pub coupling_out: usize,
    /// Channels factored out at the end of the level.
    pub factored: usize,
    /// Channels that continue to the next level (or to the top prior).
    pub rest: usize,
}

impl IdfConfig {
    /// Checks that the config describes a buildable model.
    pub fn validate(&self) -> Result<(), String> {
        let check = |ok: bool, what: &str| if ok { Ok(()) } else { Err(what.to_string()) };
        check(
            (1..=4).contains(&self.in_channels),
            "in_channels must be 1..=4",
        )?;
        check((1..=6).contains(&self.levels), "levels must be 1..=6")?;
        check(
            (1..=32).contains(&self.couplings),
            "couplings must be 1..=32",
        )?;
        check((1..=1024).contains(&self.hidden), "hidden must be 1..=1024")?;
        check(self.blocks <= 32, "blocks must be at most 32")?;
        check((1..=32).contains(&self.mixtures), "mixtures must be 1..=32")?;
        check(
            self.translation_scale.is_finite() && self.translation_scale > 0.0,
            "translation_scale must be positive",
        )?;
        check(
            self.top_groups >= 1 && self.top_channels() % self.top_groups == 0,
            "top_groups must divide the top latent's channels",
        )?;
        check(
            self.prior_groups >= 1
                && self
                    .level_shapes()
                    .iter()
                    .all(|s| s.factored % self.prior_groups == 0),
            "prior_groups must divide every level's factored-out channels",
        )?;
        check(
            self.phase_levels <= self.levels,
            "phase_levels must be at most levels",
        )
    }

    /// True when level `l` codes its factor-out by pixel phase.
    pub fn phased(&self, l: usize) -> bool {
        l < self.phase_levels
    }

    /// Number of groups level `l`'s factor-out is coded in: `prior_groups`, four times that for a
    /// phased level.
    pub fn level_groups(&self, l: usize) -> usize {
        self.prior_groups * if self.phased(l) { 4 } else { 1 }
    }

    /// Number of pixel phases each top group is coded in (1 or 4).
    pub fn top_phase_count(&self) -> usize {
        if self.top_phases {
            4
        } else {
            1
        }
    }

    /// Channels of one factor-out group (the same with or without phases).
    pub fn prior_group_channels(&self, shape: &LevelShape) -> usize {
        shape.factored / self.prior_groups.max(1)
    }

    /// Channels of the context every prior network of level `l` starts from: the rest, or the
    /// phased rest (four times as many channels).
    pub fn prior_context_channels(&self, l: usize, shape: &LevelShape) -> usize {
        shape.rest * if self.phased(l) { 4 } else { 1 }
    }

    /// The shapes of every level, first to last.
    pub fn level_shapes(&self) -> Vec<LevelShape> {
        let mut c = self.in_channels;
        (0..self.levels)
            .map(|_| {
                let channels = 4 * c;
                let coupling_in = channels / 2;
                let factored = channels / 2;
                c = channels - factored;
                LevelShape {
                    channels,
                    coupling_in,
                    coupling_out: channels - coupling_in,
                    factored,
                    rest: c,
                }
            })
            .collect()
    }

    /// Channels of the top latent (what is left after the last factor-out).
    pub fn top_channels(&self) -> usize {
        self.level_shapes()
            .last()
            .map_or(self.in_channels, |s| s.rest)
    }

    /// Channels in each of the top latent's groups.
    pub fn top_group_channels(&self) -> usize {
        self.top_channels() / self.top_groups.max(1)
    }

    /// Spatial divisor: image height and width must be multiples of this.
    pub fn size_multiple(&self) -> usize {
        // a phased level halves its factor-out once more
        1 << self.levels.max(self.phase_levels + 1)
    }

    /// Name prefix of coupling `k` at level `l`.
    pub fn coupling_name(l: usize, k: usize) -> String {
        format!("level{l}.coupling{k}")
    }

    /// Name prefix of the factor-out prior network at level `l`.
    pub fn prior_name(l: usize) -> String {
        format!("level{l}.prior")
    }

    /// Name prefix of the prior network of level `l`'s factor-out group `k`.
    pub fn prior_group_name(l: usize, k: usize) -> String {
        match k {
            0 => Self::prior_name(l),
            _ => format!("level{l}.prior{k}"),
        }
    }

    /// The name (prefix) of every prior, in decoding order within each level and the top: level
    /// 0's factor-out groups, level 1's, …, then the top's groups (`top.params`, `top.group1`, …).
    pub fn prior_names(&self) -> Vec<String> {
        let mut v: Vec<String> = (0..self.levels)
            .flat_map(|l| (0..self.level_groups(l)).map(move |k| Self::prior_group_name(l, k)))
            .collect();
        for k in 0..self.top_groups {
            v.extend((0..self.top_phase_count()).map(|j| Self::top_phase_name(k, j)));
        }
        v
    }

    /// Name of the top prior's parameter tensor (the first top group's prior).
    pub const TOP_PARAMS: &'static str = "top.params";

    /// Name prefix of the prior network of top group `k` (`k ≥ 1`).
    pub fn top_group_name(k: usize) -> String {
        format!("top.group{k}")
    }

    /// Name of the prior of top group `k`, phase `j` (`top_phases`): the group's own prior for
    /// phase 0, else the network `top.g{k}p{j}`.
    pub fn top_phase_name(k: usize, j: usize) -> String {
        match (k, j) {
            (0, 0) => Self::TOP_PARAMS.to_string(),
            (k, 0) => Self::top_group_name(k),
            (k, j) => format!("top.g{k}p{j}"),
        }
    }

    /// The raw mixture layout of this model's priors.
    pub fn mixture_layout(&self) -> MixtureLayout {
        MixtureLayout::new(self.mixtures)
    }

    /// Every network of the model, and the top's parameter tensor, in tensor order: per level
    /// its couplings then its factor-out priors; then `top.params`, the top group networks and
    /// the top phase networks. The one list the tensor specs, the engine's model and the
    /// training model are built from.
    pub fn networks(&self) -> Vec<NetSpec> {
        let layout = self.mixture_layout();
        let mut v = Vec::new();
        for (l, s) in self.level_shapes().iter().enumerate() {
            for k in 0..self.couplings {
                v.push(NetSpec {
                    name: Self::coupling_name(l, k),
                    role: NetRole::Coupling { level: l, index: k },
                    inputs: s.coupling_in,
                    outputs: s.coupling_out,
                });
            }
            let p = self.prior_group_channels(s);
            for k in 0..self.level_groups(l) {
                v.push(NetSpec {
                    name: Self::prior_group_name(l, k),
                    role: NetRole::Prior { level: l, group: k },
                    inputs: self.prior_context_channels(l, s) + k * p,
                    outputs: layout.raw_channels(p),
                });
            }
        }
        let g = self.top_group_channels();
        v.push(NetSpec {
            name: Self::TOP_PARAMS.to_string(),
            role: NetRole::TopParams,
            inputs: 0,
            outputs: layout.raw_channels(g),
        });
        for k in 1..self.top_groups {
            v.push(NetSpec {
                name: Self::top_group_name(k),
                role: NetRole::TopGroup { group: k },
                inputs: k * g,
                outputs: layout.raw_channels(g),
            });
        }
        for (k, j) in self.top_phase_nets() {
            v.push(NetSpec {
                name: Self::top_phase_name(k, j),
                role: NetRole::TopPhase { group: k, phase: j },
                inputs: (k + 1) * g,
                outputs: layout.raw_channels(g),
            });
        }
        v
    }

    /// Shape of `top.params`: `[g, 3·M]`, one row of raw parameters per channel of the top's
    /// first group.
    pub fn top_params_shape(&self) -> [usize; 2] {
        [
            self.top_group_channels(),
            self.mixture_layout().per_latent(),
        ]
    }

    /// Every tensor of the model, in a fixed order (that of [`IdfConfig::networks`]).
    pub fn tensor_specs(&self) -> Vec<TensorSpec> {
        let mut v = Vec::new();
        for net in self.networks() {
            match net.role.kind() {
                Some(kind) => self.push_net(&mut v, &net.name, net.inputs, net.outputs, kind),
                None => v.push(TensorSpec {
                    name: net.name,
                    shape: self.top_params_shape().to_vec(),
                }),
            }
        }
        v
    }

    /// The `(group, phase)` of every top phase network (`j ≥ 1`), in tensor order.
    pub fn top_phase_nets(&self) -> Vec<(usize, usize)> {
        (0..self.top_groups)
            .flat_map(|k| (1..self.top_phase_count()).map(move |j| (k, j)))
            .collect()
    }

    /// Appends a network's tensors (`conv_skip` as [`IdfConfig::has_skip`] says).
    fn push_net(&self, v: &mut Vec<TensorSpec>, net: &str, cin: usize, cout: usize, kind: NetKind) {
        let h = self.hidden;
        let mut conv = |name: String, o: usize, i: usize| {
            v.push(TensorSpec {
                name: format!("{name}.weight"),
                shape: vec![o, i, 3, 3],
            });
            v.push(TensorSpec {
                name: format!("{name}.bias"),
                shape: vec![o],
            });
        };
        conv(format!("{net}.conv_in"), h, cin);
        for b in 0..self.blocks {
            conv(format!("{net}.block{b}.conv1"), h, h);
            conv(format!("{net}.block{b}.conv2"), h, h);
        }
        conv(format!("{net}.conv_out"), cout, h);
        if self.has_skip(kind) {
            conv(format!("{net}.conv_skip"), cout, cin);
        }
    }

    /// Total number of parameters.
    pub fn parameter_count(&self) -> usize {
        self.tensor_specs()
            .iter()
            .map(|t| t.shape.iter().product::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of the tensor `name` of `c`, if it has one.
    fn spec_shape(c: &IdfConfig, name: &str) -> Option<Vec<usize>> {
        c.tensor_specs()
            .into_iter()
            .find(|t| t.name == name)
            .map(|t| t.shape)
    }

    #[test]
    fn mixture_layout_is_component_major_per_channel() {
        let l = MixtureLayout::new(2);
        assert_eq!(l.per_latent(), 6);
        assert_eq!(l.index(0, MixtureParam::Logit, 1), 1);
        assert_eq!(l.index(0, MixtureParam::Mean, 0), 2);
        assert_eq!(l.index(1, MixtureParam::LogScale, 1), 6 + 5);
        let params: Vec<_> = (0..12).map(|r| l.param_of(r)).collect();
        use MixtureParam::*;
        assert_eq!(
            params,
            [
                Logit, Logit, Mean, Mean, LogScale, LogScale, Logit, Logit, Mean, Mean, LogScale,
                LogScale
            ]
        );
    }

    #[test]
    fn networks_list_every_network_once_in_tensor_order() {
        let c = IdfConfig {
            top_groups: 2,
            prior_groups: 2,
            top_phases: true,
            ..IdfConfig::default()
        };
        let nets = c.networks();
        let names: Vec<_> = nets.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names.len(), 2 * 4 + 2 * 2 + 1 + 1 + 6);
        assert_eq!(
            &names[..6],
            [
                "level0.coupling0",
                "level0.coupling1",
                "level0.coupling2",
                "level0.coupling3",
                "level0.prior",
                "level0.prior1"
            ]
        );
        let top = names
            .iter()
            .position(|&n| n == IdfConfig::TOP_PARAMS)
            .unwrap();
        assert_eq!(
            &names[top..top + 3],
            ["top.params", "top.group1", "top.g0p1"]
        );
        // every tensor name starts with its network's name, in the same order
        let specs = c.tensor_specs();
        let mut i = 0;
        for spec in &specs {
            while !spec.name.starts_with(&format!("{}.", names[i])) && spec.name != names[i] {
                i += 1;
            }
        }
        assert_eq!(i, names.len() - 1);
        assert_eq!(nets[top].outputs, 2 * 15);
        assert_eq!(c.top_params_shape(), [2, 15]);
        assert_eq!(nets[top].role.kind(), None);
    }

    #[test]
    fn default_levels_for_grayscale() {
        let c = IdfConfig::default();
        let s = c.level_shapes();
        assert_eq!(
            s[0],
            LevelShape {
                channels: 4,
                coupling_in: 2,
                coupling_out: 2,
                factored: 2,
                rest: 2
            }
        );
        assert_eq!(
            s[1],
            LevelShape {
                channels: 8,
                coupling_in: 4,
                coupling_out: 4,
                factored: 4,
                rest: 4
            }
        );
        assert_eq!(c.top_channels(), 4);
        assert_eq!(c.size_multiple(), 4);
    }

    #[test]
    fn rgb_levels() {
        let c = IdfConfig {
            in_channels: 3,
            levels: 3,
            ..IdfConfig::default()
        };
        let s = c.level_shapes();
        assert_eq!(
            s.iter().map(|s| s.channels).collect::<Vec<_>>(),
            vec![12, 24, 48]
        );
        assert_eq!(c.top_channels(), 24);
    }

    #[test]
    fn names_are_unique_and_counted() {
        let c = IdfConfig::default();
        let specs = c.tensor_specs();
        let mut names: Vec<_> = specs.iter().map(|t| t.name.clone()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), specs.len());
        // one coupling net at level 0: conv_in 2→64, one block 64→64 twice, conv_out 64→2
        let net0 = 64 * 2 * 9 + 64 + 2 * (64 * 64 * 9 + 64) + 2 * 64 * 9 + 2;
        let first: usize = specs
            .iter()
            .filter(|t| t.name.starts_with("level0.coupling0."))
            .map(|t| t.shape.iter().product::<usize>())
            .sum();
        assert_eq!(first, net0);
        assert!(c.parameter_count() > 8 * net0);
    }

    #[test]
    fn top_groups_add_conditional_networks() {
        let c = IdfConfig {
            top_groups: 4,
            ..IdfConfig::default()
        };
        c.validate().unwrap();
        let specs = c.tensor_specs();
        let top = specs
            .iter()
            .find(|t| t.name == IdfConfig::TOP_PARAMS)
            .unwrap();
        assert_eq!(top.shape, vec![1, 15]);
        let conv_in = |k: usize| {
            let name = format!("top.group{k}.conv_in.weight");
            specs
                .iter()
                .find(|t| t.name == name)
                .map(|t| t.shape.clone())
        };
        assert_eq!(conv_in(1), Some(vec![64, 1, 3, 3]));
        assert_eq!(conv_in(3), Some(vec![64, 3, 3, 3]));
        assert_eq!(conv_in(4), None);
        assert!(IdfConfig {
            top_groups: 3,
            ..IdfConfig::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn prior_groups_condition_on_the_rest_and_earlier_groups() {
        let c = IdfConfig {
            prior_groups: 2,
            top_groups: 2,
            ..IdfConfig::default()
        };
        c.validate().unwrap();
        let shape = |name: &str| spec_shape(&c, name);
        // level 0: rest 2 channels, factored 2 → groups of 1
        assert_eq!(
            shape("level0.prior.conv_in.weight"),
            Some(vec![64, 2, 3, 3])
        );
        assert_eq!(shape("level0.prior.conv_out.bias"), Some(vec![15]));
        assert_eq!(
            shape("level0.prior1.conv_in.weight"),
            Some(vec![64, 3, 3, 3])
        );
        // level 1: rest 4, factored 4 → groups of 2
        assert_eq!(
            shape("level1.prior1.conv_in.weight"),
            Some(vec![64, 6, 3, 3])
        );
        assert_eq!(shape("level1.prior1.conv_out.bias"), Some(vec![30]));
        assert_eq!(shape("level1.prior2.conv_in.weight"), None);
        assert_eq!(
            c.prior_names(),
            [
                "level0.prior",
                "level0.prior1",
                "level1.prior",
                "level1.prior1",
                "top.params",
                "top.group1"
            ]
        );
        let odd = IdfConfig {
            prior_groups: 4,
            ..IdfConfig::default()
        };
        assert!(odd.validate().is_err(), "level 0 factors out 2 channels");
    }

    #[test]
    fn phased_levels_condition_on_the_phased_rest() {
        let c = IdfConfig {
            prior_groups: 2,
            phase_levels: 1,
            ..IdfConfig::default()
        };
        c.validate().unwrap();
        assert_eq!(c.level_groups(0), 8);
        assert_eq!(c.level_groups(1), 2);
        assert_eq!(c.size_multiple(), 4);
        let shape = |name: &str| spec_shape(&c, name);
        // level 0: phased rest 4·2 channels, groups of 1 channel
        assert_eq!(
            shape("level0.prior.conv_in.weight"),
            Some(vec![64, 8, 3, 3])
        );
        assert_eq!(
            shape("level0.prior7.conv_in.weight"),
            Some(vec![64, 15, 3, 3])
        );
        assert_eq!(shape("level0.prior7.conv_out.bias"), Some(vec![15]));
        assert_eq!(shape("level0.prior8.conv_in.weight"), None);
        // level 1 unchanged
        assert_eq!(
            shape("level1.prior1.conv_in.weight"),
            Some(vec![64, 6, 3, 3])
        );
        assert_eq!(c.prior_names().len(), 8 + 2 + 1);
        let deep = IdfConfig {
            phase_levels: 2,
            ..IdfConfig::default()
        };
        assert_eq!(deep.size_multiple(), 8);
        assert!(IdfConfig {
            phase_levels: 3,
            ..IdfConfig::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn top_phases_add_a_network_per_later_phase() {
        let c = IdfConfig {
            top_groups: 2,
            top_phases: true,
            ..IdfConfig::default()
        };
        c.validate().unwrap();
        assert_eq!(
            c.top_phase_nets(),
            [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
        );
        let names = c.prior_names();
        assert_eq!(
            names[names.len() - 8..],
            [
                "top.params",
                "top.g0p1",
                "top.g0p2",
                "top.g0p3",
                "top.group1",
                "top.g1p1",
                "top.g1p2",
                "top.g1p3"
            ]
        );
        let shape = |name: &str| spec_shape(&c, name);
        // top of 4 channels in 2 groups of 2: group k's phase nets see k·2 + 2 channels
        assert_eq!(shape("top.g0p3.conv_in.weight"), Some(vec![64, 2, 3, 3]));
        assert_eq!(shape("top.g1p1.conv_in.weight"), Some(vec![64, 4, 3, 3]));
        assert_eq!(shape("top.g1p1.conv_out.bias"), Some(vec![30]));
    }

    #[test]
    fn one_top_group_keeps_the_old_json() {
        // models exported before `top_groups` existed hash this JSON into their ids
        let j = serde_json::to_string(&IdfConfig::default()).unwrap();
        assert!(!j.contains("groups") && !j.contains("phase"), "{j}");
        let four = IdfConfig {
            top_groups: 4,
            ..IdfConfig::default()
        };
        let j = serde_json::to_string(&four).unwrap();
        assert_eq!(serde_json::from_str::<IdfConfig>(&j).unwrap(), four);
    }

    #[test]
    fn json_round_trip_rejects_unknown_fields() {
        let c = IdfConfig::default();
        let j = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<IdfConfig>(&j).unwrap(), c);
        assert!(serde_json::from_str::<IdfConfig>(r#"{"levels":2,"bogus":1}"#).is_err());
    }
}
