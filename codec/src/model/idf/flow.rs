//! The integer discrete flow on the engine, exactly as [`crate::model::idf::arch`] describes it.
//!
//! [`forward`] maps an integer image to latent groups (one factor-out per level, then the top) with
//! the prior parameters each group is coded with; [`inverse`] maps the latents back. The
//! decoder runs the inverse interleaved with entropy decoding ([`decode`]): the prior of level `l`
//! needs only the rest `z` of level `l` (and the level's groups decoded before), which the decoder
//! has reconstructed by then.
//!
//! Integer arithmetic on latents wraps (`b ± t` with `wrapping_add`/`wrapping_sub`), and a
//! translation that is NaN or beyond the `i32` range saturates (`as i32`). Both are deterministic
//! and keep the inverse exact for any weights and any (even garbage) latents; trained models never
//! come near those limits.

use super::Idf;
use crate::engine::{FloatTensor, IntTensor, Network, Shape};
use crate::entropy::LogisticMixture;
pub use crate::entropy::MixtureParams;
use crate::model::idf::arch::{
    IdfConfig, MixtureLayout, MixtureParam, LOG_SCALE_MAX, LOG_SCALE_MIN, LOG_SCALE_OFFSET,
    MEAN_OFFSET, MEAN_SCALE, NORM_OFFSET, NORM_SCALE,
};
use crate::{CodecError, Result};

/// The mixture parameters of every latent of one group, latent-major (`3·M` values per latent:
/// logits, means, log-scales).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupParams {
    mixtures: usize,
    values: Vec<f32>,
}

impl GroupParams {
    /// Number of latents described.
    pub fn len(&self) -> usize {
        self.values.len() / MixtureLayout::new(self.mixtures).per_latent()
    }

    /// True when no latent is described.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The parameters of latent `i` (CHW index within the group).
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn get(&self, i: usize) -> MixtureParams<'_> {
        let layout = MixtureLayout::new(self.mixtures);
        let v = &self.values[layout.latent_start(i)..][..layout.per_latent()];
        MixtureParams {
            logits: &v[layout.range(MixtureParam::Logit)],
            means: &v[layout.range(MixtureParam::Mean)],
            log_scales: &v[layout.range(MixtureParam::LogScale)],
        }
    }

    /// From a prior network's output (`3·M` raw channels per latent channel, see [`crate::model::idf::arch`]).
    fn from_network_output(raw: &FloatTensor, mixtures: usize) -> Self {
        Self::at_positions(raw, mixtures, 0..raw.shape().plane())
    }

    /// From a prior network's output, the latents at plane indices `positions` of every channel.
    fn at_positions(
        raw: &FloatTensor,
        mixtures: usize,
        positions: impl Iterator<Item = usize> + Clone,
    ) -> Self {
        let layout = MixtureLayout::new(mixtures);
        let latent_channels = raw.shape().channels / layout.per_latent();
        let mut values = Vec::new();
        for c in 0..latent_channels {
            for p in positions.clone() {
                let raw_at = |r: usize| raw.channel(layout.latent_start(c) + r)[p];
                push_mixture(&mut values, layout, raw_at);
            }
        }
        GroupParams { mixtures, values }
    }

    /// The top prior: one raw parameter row per channel, shared by all its pixels.
    fn from_top(raw: &[f32], mixtures: usize, shape: Shape) -> Self {
        let layout = MixtureLayout::new(mixtures);
        let mut values = Vec::with_capacity(shape.len() * layout.per_latent());
        for row in raw.chunks_exact(layout.per_latent()).take(shape.channels) {
            for _ in 0..shape.plane() {
                push_mixture(&mut values, layout, |r| row[r]);
            }
        }
        GroupParams { mixtures, values }
    }
}

/// Appends one latent's logits, means and log-scales, mapped from raw values `raw_at(0..3M)`
/// (offsets of [`MixtureLayout::offset`]).
fn push_mixture(values: &mut Vec<f32>, layout: MixtureLayout, raw_at: impl Fn(usize) -> f32) {
    let m = layout.mixtures;
    let at = |p: MixtureParam, j: usize| raw_at(layout.offset(p, j));
    values.extend((0..m).map(|j| at(MixtureParam::Logit, j)));
    values.extend((0..m).map(|j| MEAN_OFFSET + MEAN_SCALE * at(MixtureParam::Mean, j)));
    values.extend((0..m).map(|j| {
        (at(MixtureParam::LogScale, j) + LOG_SCALE_OFFSET).clamp(LOG_SCALE_MIN, LOG_SCALE_MAX)
    }));
}

/// One emitted group: its integer values and their prior.
#[derive(Clone, Debug, PartialEq)]
pub struct LatentGroup {
    pub values: IntTensor,
    pub params: GroupParams,
}

/// All latents of an image in emission order: the factor-out groups of level 0, 1, …, then the
/// top's groups; within a level and within the top, the groups go last to first (the decoder pops
/// everything in the opposite order, see [`crate::model::idf::arch`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Latents {
    pub groups: Vec<LatentGroup>,
}

/// Checks an image shape against the config: channel count, nonzero size, and height and width
/// multiples of [`IdfConfig::size_multiple`].
pub fn check_image_shape(config: &IdfConfig, shape: Shape) -> Result<()> {
    let m = config.size_multiple();
    if shape.channels != config.in_channels {
        return Err(CodecError::InvalidImage(format!(
            "the model codes {}-channel images, got {} channels",
            config.in_channels, shape.channels
        )));
    }
    if shape.height == 0 || shape.width == 0 || shape.height % m != 0 || shape.width % m != 0 {
        return Err(CodecError::InvalidImage(format!(
            "height and width must be positive multiples of {m}, got {}×{}",
            shape.height, shape.width
        )));
    }
    if shape.checked_len().is_none() {
        return Err(CodecError::InvalidImage("image dimensions overflow".into()));
    }
    Ok(())
}

/// Shapes of the latent groups of an image, in emission order (each level's factor-out groups,
/// then the top's groups; the groups of one level, or of the top, have the same shape).
pub fn latent_shapes(config: &IdfConfig, image: Shape) -> Result<Vec<Shape>> {
    check_image_shape(config, image)?;
    let (mut h, mut w) = (image.height, image.width);
    let mut shapes = Vec::new();
    for l in 0..config.levels {
        h /= 2;
        w /= 2;
        let stage = Stage::Level(l);
        shapes.extend(std::iter::repeat(stage.part(config, h, w)).take(stage.groups(config)));
    }
    if config.top_phases {
        let g = config.top_group_channels();
        for _ in 0..config.top_groups {
            shapes.extend(
                (0..4)
                    .rev()
                    .map(|j| Shape::new(g, 1, phase_positions(h, w, j).len())),
            );
        }
    } else {
        let top = Stage::Top;
        shapes.extend(std::iter::repeat(top.part(config, h, w)).take(top.groups(config)));
    }
    Ok(shapes)
}

/// Runs the flow on an integer image (`C×H×W`, usually pixels `0..=255`).
pub fn forward(model: &Idf, image: &IntTensor) -> Result<Latents> {
    let config = model.config();
    check_image_shape(config, image.shape())?;
    let mut groups = Vec::new();
    let mut z = image.clone();
    for level in 0..config.levels {
        let (out, rest) = forward_level(model, level, &z);
        let (out, context) = match config.phased(level) {
            true => (out.phases(), rest.phases()),
            false => (out, rest.clone()),
        };
        emit(
            model,
            Stage::Level(level),
            &out,
            Some(&context),
            &mut groups,
        )?;
        z = rest;
    }
    match config.top_phases {
        true => emit_top_phases(model, &z, &mut groups)?,
        false => emit(model, Stage::Top, &z, None, &mut groups)?,
    }
    Ok(Latents { groups })
}

/// Maps latents back to the image (exact inverse of [`forward`]); only the values are used.
pub fn inverse(model: &Idf, latents: &Latents) -> Result<IntTensor> {
    let config = model.config();
    let counts: Vec<usize> = (0..config.levels).map(|l| config.level_groups(l)).collect();
    let in_levels: usize = counts.iter().sum();
    let in_top = config.top_groups * config.top_phase_count();
    let groups = &latents.groups;
    if groups.len() != in_levels + in_top {
        return Err(CodecError::InvalidImage(format!(
            "expected {} latent groups, got {}",
            in_levels + in_top,
            groups.len()
        )));
    }
    let (mut levels, top) = groups.split_at(in_levels);
    let mut per_level = Vec::with_capacity(counts.len());
    for n in counts {
        let (this, later) = levels.split_at(n);
        per_level.push(this);
        levels = later;
    }
    let mut z = match config.top_phases {
        true => gather_top_phases(config, top, latents_top_size(config, &per_level)?)?,
        false => gather(top),
    };
    for (level, out) in per_level.into_iter().enumerate().rev() {
        let out = match config.phased(level) {
            true => gather(out).unphases(),
            false => gather(out),
        };
        z = inverse_level(model, level, &out, &z)?;
    }
    Ok(z)
}

/// Decodes an image of `shape` group by group: `decode` (the entropy decoder) turns a group's shape
/// and prior into its values. Groups are requested in decoding order (the reverse of [`forward`]'s
/// emission order), each prior computed from what was decoded before it, and the flow is inverted
/// level by level along the way.
pub fn decode(
    model: &Idf,
    shape: Shape,
    mut decode: impl FnMut(Shape, &GroupParams) -> Result<IntTensor>,
) -> Result<IntTensor> {
    let config = model.config();
    let shapes = latent_shapes(config, shape)?;
    let top = *shapes.last().expect("at least one top group");
    let mut z = match config.top_phases {
        true => {
            let (h, w) = top_size(config, shape);
            decode_top_phases(model, h, w, &mut decode)?
        }
        false => decode_stage(model, Stage::Top, None, top, &mut decode)?,
    };
    for level in (0..config.levels).rev() {
        let part = Stage::Level(level).part(config, z.shape().height, z.shape().width);
        let out = match config.phased(level) {
            true => {
                let context = z.phases();
                decode_stage(
                    model,
                    Stage::Level(level),
                    Some(&context),
                    part,
                    &mut decode,
                )?
                .unphases()
            }
            false => decode_stage(model, Stage::Level(level), Some(&z), part, &mut decode)?,
        };
        z = inverse_level(model, level, &out, &z)?;
    }
    Ok(z)
}

/// Negative log-likelihood of an image under the model, in bits: the sum over every latent of
/// `−log2 P(z)` with the discretized logistic mixture of [`crate::model::idf::arch`], in `f64`.
pub fn nll_bits(model: &Idf, image: &IntTensor) -> Result<f64> {
    let latents = forward(model, image)?;
    let mut bits = 0.0;
    for group in &latents.groups {
        for (i, &z) in group.values.data().iter().enumerate() {
            bits += LogisticMixture::new(&group.params.get(i))?.nll_bits(z);
        }
    }
    Ok(bits)
}

/// Level `level` forward: squeeze, couplings, factor-out. Returns `(out, rest)`.
fn forward_level(model: &Idf, level: usize, z: &IntTensor) -> (IntTensor, IntTensor) {
    let config = model.config();
    let mut z = match config.phase_squeeze {
        true => z.phases(),
        false => z.squeeze(),
    };
    for k in 0..config.couplings {
        z = coupling_forward(model.coupling(level, k), config.translation_scale, &z);
    }
    z.split_channels(z.shape().channels / 2)
}

/// Level `level` inverse: from its factored-out `out` and the `rest`, back to the level's input.
fn inverse_level(
    model: &Idf,
    level: usize,
    out: &IntTensor,
    rest: &IntTensor,
) -> Result<IntTensor> {
    let config = model.config();
    let expected = *config
        .level_shapes()
        .get(level)
        .ok_or_else(|| CodecError::InvalidImage(format!("the model has no level {level}")))?;
    let (o, r) = (out.shape(), rest.shape());
    if o.channels != expected.factored
        || r.channels != expected.rest
        || (o.height, o.width) != (r.height, r.width)
    {
        return Err(CodecError::InvalidImage(format!(
            "latent shapes do not fit level {level}"
        )));
    }
    let mut z = IntTensor::concat_channels(out, rest);
    for k in (0..config.couplings).rev() {
        z = coupling_inverse(model.coupling(level, k), config.translation_scale, &z);
    }
    Ok(match config.phase_squeeze {
        true => z.unphases(),
        false => z.unsqueeze(),
    })
}

/// Where a group of latents comes from: a level's factor-out, or the top.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Level(usize),
    Top,
}

impl Stage {
    /// How many groups the stage is coded in.
    fn groups(self, config: &IdfConfig) -> usize {
        match self {
            Stage::Level(l) => config.level_groups(l),
            Stage::Top => config.top_groups,
        }
    }

    /// The shape of one of its groups, for a stage of spatial size `h×w` (a phased level's
    /// groups are half that size).
    fn part(self, config: &IdfConfig, h: usize, w: usize) -> Shape {
        match self {
            Stage::Level(l) => {
                let halve = usize::from(config.phased(l));
                let channels = config.prior_group_channels(&config.level_shapes()[l]);
                Shape::new(channels, h >> halve, w >> halve)
            }
            Stage::Top => Shape::new(config.top_group_channels(), h, w),
        }
    }

    /// The prior of group `k` given its `context`: for a level, the rest followed by the groups
    /// before `k`; for the top, the groups before `k` (none for the first group, whose parameters
    /// are per channel).
    fn params(
        self,
        model: &Idf,
        k: usize,
        context: Option<&IntTensor>,
        part: Shape,
    ) -> Result<GroupParams> {
        let mixtures = model.config().mixtures;
        let net = match (self, k) {
            (Stage::Top, 0) => {
                return Ok(GroupParams::from_top(model.top_params(), mixtures, part))
            }
            (Stage::Top, k) => model.top_group(k),
            (Stage::Level(l), k) => model.prior(l, k),
        };
        let context = context
            .ok_or_else(|| CodecError::Internal("a network prior without context".into()))?;
        let raw = net.forward(&normalize(context));
        Ok(GroupParams::from_network_output(&raw, mixtures))
    }
}

/// Appends the groups of one stage (`values`: all its channels; `rest`: a level's rest, both
/// phased for a phased level) to
/// `groups` in emission order, last group first.
fn emit(
    model: &Idf,
    stage: Stage,
    values: &IntTensor,
    rest: Option<&IntTensor>,
    groups: &mut Vec<LatentGroup>,
) -> Result<()> {
    let count = stage.groups(model.config());
    let g = values.shape().channels / count;
    for k in (0..count).rev() {
        let (before, from_k) = values.split_channels(k * g);
        let part = from_k.split_channels(g).0;
        let context = match (rest, k) {
            (None, 0) => None,
            (None, _) => Some(before),
            (Some(rest), 0) => Some(rest.clone()),
            (Some(rest), _) => Some(IntTensor::concat_channels(rest, &before)),
        };
        let params = stage.params(model, k, context.as_ref(), part.shape())?;
        groups.push(LatentGroup {
            values: part,
            params,
        });
    }
    Ok(())
}

/// Decodes the groups of one stage in order (`part`: one group's shape) and returns all its
/// channels; each group's prior sees the `rest` (for a level) and the groups decoded before it.
fn decode_stage(
    model: &Idf,
    stage: Stage,
    rest: Option<&IntTensor>,
    part: Shape,
    decode: &mut impl FnMut(Shape, &GroupParams) -> Result<IntTensor>,
) -> Result<IntTensor> {
    let mut context = rest.cloned();
    let mut out: Option<IntTensor> = None;
    for k in 0..stage.groups(model.config()) {
        let values = decode(part, &stage.params(model, k, context.as_ref(), part)?)?;
        let append = |t: Option<IntTensor>| match t {
            None => values.clone(),
            Some(t) => IntTensor::concat_channels(&t, &values),
        };
        context = Some(append(context));
        out = Some(append(out));
    }
    out.ok_or_else(|| CodecError::Internal("a stage without groups".into()))
}

/// Plane indices (row-major in an `h×w` plane) of pixel phase `j`: the positions with
/// `y mod 2 = j / 2` and `x mod 2 = j mod 2` (see [`crate::model::idf::arch`]).
fn phase_positions(h: usize, w: usize, j: usize) -> Vec<usize> {
    let (dy, dx) = (j / 2, j % 2);
    (dy..h)
        .step_by(2)
        .flat_map(|y| (dx..w).step_by(2).map(move |x| y * w + x))
        .collect()
}

/// The phase of plane index `i` in a plane of width `w`.
fn phase_of(i: usize, w: usize) -> usize {
    (i / w % 2) * 2 + i % w % 2
}

/// Height and width of the top latent of an image of `shape` (already checked).
fn top_size(config: &IdfConfig, shape: Shape) -> (usize, usize) {
    (shape.height >> config.levels, shape.width >> config.levels)
}

/// Height and width of the top latent, from the last level's factor-out groups (the top is the
/// rest of the last level, the size of its factor-out; half a phased factor-out's group size
/// is the level's size over two).
fn latents_top_size(config: &IdfConfig, per_level: &[&[LatentGroup]]) -> Result<(usize, usize)> {
    let last = config.levels - 1;
    let group = per_level[last]
        .first()
        .ok_or_else(|| CodecError::InvalidImage("a level without groups".into()))?;
    let Shape { height, width, .. } = group.values.shape();
    Ok(match config.phased(last) {
        true => (2 * height, 2 * width),
        false => (height, width),
    })
}

/// The latents of `t` (every channel) at plane indices `positions`, as a `C×1×n` tensor.
fn take_positions(t: &IntTensor, positions: &[usize]) -> IntTensor {
    let c = t.shape().channels;
    let data = (0..c)
        .flat_map(|ch| positions.iter().map(move |&p| t.channel(ch)[p]))
        .collect();
    IntTensor::from_vec(Shape::new(c, 1, positions.len()), data).expect("C·n values")
}

/// `t` with `values` (`C×1×n`, as [`take_positions`] gives them) written at `positions`.
fn put_positions(t: IntTensor, positions: &[usize], values: &IntTensor) -> Result<IntTensor> {
    let shape = t.shape();
    if values.shape() != Shape::new(shape.channels, 1, positions.len()) {
        return Err(CodecError::InvalidImage(
            "a top phase of the wrong shape".into(),
        ));
    }
    let mut data = t.into_data();
    for ch in 0..shape.channels {
        let plane = &mut data[ch * shape.plane()..][..shape.plane()];
        for (&p, &v) in positions.iter().zip(values.channel(ch)) {
            plane[p] = v;
        }
    }
    IntTensor::from_vec(shape, data)
}

/// The prior of top group `k`'s phase `j` at `positions`, given the groups `before` it and the
/// group's own values `own` (only its phases before `j` are read).
fn top_phase_params(
    model: &Idf,
    (k, j): (usize, usize),
    before: &IntTensor,
    own: &IntTensor,
    positions: &[usize],
) -> Result<GroupParams> {
    let mixtures = model.config().mixtures;
    let raw = match (k, j) {
        (0, 0) => {
            let part = Shape::new(own.shape().channels, 1, positions.len());
            return Ok(GroupParams::from_top(model.top_params(), mixtures, part));
        }
        (k, 0) => model.top_group(k).forward(&normalize(before)),
        (k, j) => {
            let w = own.shape().width;
            let mut masked = normalize(own).into_data();
            for (i, v) in masked.iter_mut().enumerate() {
                if phase_of(i % own.shape().plane(), w) >= j {
                    *v = 0.0;
                }
            }
            let masked = FloatTensor::from_vec(own.shape(), masked)?;
            let input = match k {
                0 => masked,
                _ => FloatTensor::concat_channels(&normalize(before), &masked),
            };
            model.top_phase(k, j).forward(&input)
        }
    };
    Ok(GroupParams::at_positions(
        &raw,
        mixtures,
        positions.iter().copied(),
    ))
}

/// Appends the top's groups by pixel phase (`top_phases`) in emission order: group `G−1` first,
/// within a group phase 3 first.
fn emit_top_phases(model: &Idf, z: &IntTensor, groups: &mut Vec<LatentGroup>) -> Result<()> {
    let config = model.config();
    let g = config.top_group_channels();
    let Shape { height, width, .. } = z.shape();
    for k in (0..config.top_groups).rev() {
        let (before, from_k) = z.split_channels(k * g);
        let own = from_k.split_channels(g).0;
        for j in (0..4).rev() {
            let positions = phase_positions(height, width, j);
            let params = top_phase_params(model, (k, j), &before, &own, &positions)?;
            groups.push(LatentGroup {
                values: take_positions(&own, &positions),
                params,
            });
        }
    }
    Ok(())
}

/// Decodes the top by pixel phase (`top_phases`): group 0's phases 0..4, then group 1's, ….
fn decode_top_phases(
    model: &Idf,
    height: usize,
    width: usize,
    decode: &mut impl FnMut(Shape, &GroupParams) -> Result<IntTensor>,
) -> Result<IntTensor> {
    let config = model.config();
    let g = config.top_group_channels();
    let mut z = IntTensor::zeros(Shape::new(0, height, width));
    for k in 0..config.top_groups {
        let mut own = IntTensor::zeros(Shape::new(g, height, width));
        for j in 0..4 {
            let positions = phase_positions(height, width, j);
            let params = top_phase_params(model, (k, j), &z, &own, &positions)?;
            let values = decode(Shape::new(g, 1, positions.len()), &params)?;
            own = put_positions(own, &positions, &values)?;
        }
        z = IntTensor::concat_channels(&z, &own);
    }
    Ok(z)
}

/// The top's channels from its phase groups as emitted ([`emit_top_phases`]).
fn gather_top_phases(
    config: &IdfConfig,
    groups: &[LatentGroup],
    (height, width): (usize, usize),
) -> Result<IntTensor> {
    let g = config.top_group_channels();
    let mut z = IntTensor::zeros(Shape::new(0, height, width));
    // emitted: group G−1's phases 3..0, …, group 0's phases 3..0
    for phases in groups.chunks(4).rev() {
        let mut own = IntTensor::zeros(Shape::new(g, height, width));
        for (j, group) in phases.iter().rev().enumerate() {
            own = put_positions(own, &phase_positions(height, width, j), &group.values)?;
        }
        z = IntTensor::concat_channels(&z, &own);
    }
    Ok(z)
}

/// One stage's channels from its groups as emitted (last group first).
fn gather(groups: &[LatentGroup]) -> IntTensor {
    let mut parts = groups.iter().rev().map(|g| &g.values);
    let first = parts.next().expect("validated configs have groups").clone();
    parts.fold(first, |z, next| IntTensor::concat_channels(&z, next))
}

/// `z ↦ reverse_channels(concat(a, b + t(a)))`.
fn coupling_forward(net: &Network, scale: f32, z: &IntTensor) -> IntTensor {
    let (a, b) = z.split_channels(net.in_channels());
    let t = translation(net, scale, &a);
    let b = zip_with(&b, &t, i32::wrapping_add);
    IntTensor::concat_channels(&a, &b).reverse_channels()
}

/// Inverse of [`coupling_forward`].
fn coupling_inverse(net: &Network, scale: f32, z: &IntTensor) -> IntTensor {
    let (a, b) = z.reverse_channels().split_channels(net.in_channels());
    let t = translation(net, scale, &a);
    let b = zip_with(&b, &t, i32::wrapping_sub);
    IntTensor::concat_channels(&a, &b)
}

/// `round_half_even(scale · NN(norm(a)))`, saturating to `i32` (NaN → 0).
fn translation(net: &Network, scale: f32, a: &IntTensor) -> IntTensor {
    net.forward(&normalize(a))
        .map(|y| (scale * y).round_ties_even() as i32)
}

/// `norm(v) = (v − 128) · (1/128)` in `f32`.
fn normalize(z: &IntTensor) -> FloatTensor {
    z.map(|v| (i64::from(v) - i64::from(NORM_OFFSET)) as f32 * NORM_SCALE)
}

fn zip_with(a: &IntTensor, b: &IntTensor, f: impl Fn(i32, i32) -> i32) -> IntTensor {
    debug_assert_eq!(a.shape(), b.shape());
    let data = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| f(x, y))
        .collect();
    IntTensor::from_vec(a.shape(), data).expect("same shape as a")
}
