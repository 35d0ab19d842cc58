//! Adaptive context-model coding of the sample planes no learned model codes: alpha, the low
//! bytes of 16-bit samples, palette indices, 1/2/4-bit gray, and the 8-bit planes of formats
//! and files coded without a learned model.
//!
//! # Model
//! Every value is coded as a short sequence of **binary decisions**, each with an adaptive
//! probability (`Bit`: 16-bit fixed point, updated by `p ← p ± p/(n+2)` with the count `n`
//! capped at [`ADAPT_LIMIT`], so it learns like a frequency count at first and then follows
//! drifting statistics). Each decision is pushed onto constriction's `DefaultAnsCoder` with a
//! two-symbol model (`BinaryModel`, constriction's `EncoderModel`/`DecoderModel` traits, every
//! probability non-zero). Integer arithmetic only: bit-exact on every machine. The tables are
//! sized by the contexts below, never by the image; nothing is allocated per pixel.
//!
//! Planes are of three kinds:
//! - **Residual planes** (8-bit samples, high and low bytes of 16-bit samples): the coded
//!   quantity is `t = base + s` for the sample `s ∈ 0..=span` and a per-pixel `base` known to
//!   the decoder. `t` is predicted from its causal neighbours by a blend of five
//!   sub-predictors (LOCO-I median edge detector, gradient `W+N−NW`, `N`, `W`, `(W+NE)/2`)
//!   weighted by the inverse square of their recent errors at W, N, NW and NE (`Blend`),
//!   plus a per-context bias correction (JPEG-LS), clamped to `[base, base + span]`. The
//!   residual is coded as zero flag, sign (only where both signs are possible), Elias-gamma
//!   style exponent in unary and mantissa bits, each decision in a context of the quantised
//!   local activity (gradients, the best sub-predictor's recent error, the neighbours'
//!   residuals) and, for red and blue, the quantised residual of green (blue: the larger of
//!   green's and red's) at the same pixel. `base` carries the colour
//!   transform and the 16-bit split:
//!   - green (or gray, or alpha): `base = 0`;
//!   - red and blue: `base = −green`, i.e. `R − G` and `B − G` are predicted spatially (a
//!     reversible subtract-green transform that needs no wider alphabet);
//!   - 16-bit samples: first every high byte as above, then every low byte with
//!     `base = 256·high (− full green for red/blue)`: the full 16-bit value is predicted from
//!     full 16-bit neighbours, and only the 256 values the known high byte allows are coded.
//! - **Small planes** (1/2/4-bit gray, palette indices of 1/2/4 bits): a binary tree over the
//!   value's bits, in the context of the neighbours' values themselves (up to 10 neighbours for
//!   1-bit samples, 5 for 2-bit, 3 for 4-bit).
//! - **Palette planes** (8-bit palette indices): "same as left", "same as above", "same as
//!   above-right" flags in the context of which neighbours are equal, then the index in a binary
//!   tree.
//!
//! A plane whose samples are all equal (e.g. opaque alpha) is coded as one flag and the value.
//!
//! # Stream
//! [`encode`] runs the models forward, records every decision, and pushes the decisions onto
//! the caller's coder in reverse, so that [`decode`] pops them in coding order: the pixels of a
//! whole image form one block of the ANS stack, which can sit next to the learned model's
//! latents in the same stream (push this block before them if they are decoded first). The
//! encoder's memory is 4 bytes per binary decision (a few per sample, at most ~40) over the
//! region passed in, plus ~40 bytes per pixel of scratch planes: code large images in tiles.
//!
//! [`encode_planes`] / [`decode_planes`] wrap one image in a payload of its own, with the
//! conventions of [`crate::entropy`]: start state [`StreamStart::One`], checked to be reached
//! exactly at the end; little-endian words without the last word's zero high bytes.

use std::borrow::Borrow;
use std::num::NonZeroU32;

use constriction::stream::{
    model::{DecoderModel, EncoderModel, EntropyModel},
    stack::DefaultAnsCoder,
    Decode, Encode,
};

use crate::entropy::{self, StreamStart};
use crate::format::PixelFormat;
use crate::png::{Pixels, SourceImage};
use crate::{CodecError, Result};

/// Fixed-point precision of the binary decisions.
const PROB_BITS: usize = 16;
const ONE: u32 = 1 << PROB_BITS;
const HALF: u32 = ONE / 2;
/// Largest adaptation count: after it, a probability moves by `1/(ADAPT_LIMIT + 2)` of the way
/// towards each new outcome.
pub const ADAPT_LIMIT: u16 = 120;

/// A two-symbol entropy model for constriction: `P(false) = p0 / 2^16`, `0 < p0 < 2^16`.
#[derive(Clone, Copy, Debug)]
struct BinaryModel {
    p0: u32,
}

impl EntropyModel<PROB_BITS> for BinaryModel {
    type Symbol = bool;
    type Probability = u32;
}

impl EncoderModel<PROB_BITS> for BinaryModel {
    fn left_cumulative_and_probability(
        &self,
        symbol: impl Borrow<bool>,
    ) -> Option<(u32, NonZeroU32)> {
        if *symbol.borrow() {
            Some((self.p0, NonZeroU32::new(ONE - self.p0)?))
        } else {
            Some((0, NonZeroU32::new(self.p0)?))
        }
    }
}

impl DecoderModel<PROB_BITS> for BinaryModel {
    fn quantile_function(&self, quantile: u32) -> (bool, u32, NonZeroU32) {
        // p0 is always in 1..ONE (see `Bit::update`), so both probabilities are non-zero.
        let nz = |p: u32| NonZeroU32::new(p).unwrap_or(NonZeroU32::MIN);
        if quantile < self.p0 {
            (false, 0, nz(self.p0))
        } else {
            (true, self.p0, nz(ONE - self.p0))
        }
    }
}

/// One adaptive binary probability.
#[derive(Clone, Copy, Debug)]
struct Bit {
    /// `P(false)` in units of `2^-16`, always in `1..2^16`.
    p0: u16,
    /// Observations so far, capped at [`ADAPT_LIMIT`].
    n: u16,
}

impl Bit {
    const NEW: Bit = Bit {
        p0: HALF as u16,
        n: 0,
    };

    fn update(&mut self, bit: bool) {
        let d = u32::from(self.n) + 2;
        let p = u32::from(self.p0);
        // Moves at most half way, so p stays strictly between 0 and ONE.
        let p = if bit { p - p / d } else { p + (ONE - p) / d };
        self.p0 = p as u16;
        if self.n < ADAPT_LIMIT {
            self.n += 1;
        }
    }
}

/// Where decisions go (encoder: recorded) or come from (decoder: the ANS stream).
trait BitIo {
    /// Codes `bit` (ignored when decoding) with `P(false) = p0 / 2^16`; returns the bit coded.
    fn code(&mut self, p0: u32, bit: bool) -> Result<bool>;
}

/// The encoder's side: records `p0 << 1 | bit` for pushing in reverse later.
struct Recorder {
    records: Vec<u32>,
}

impl BitIo for Recorder {
    fn code(&mut self, p0: u32, bit: bool) -> Result<bool> {
        self.records.push(p0 << 1 | u32::from(bit));
        Ok(bit)
    }
}

/// Runs the models without coding (planes the caller codes elsewhere).
struct Skip;

impl BitIo for Skip {
    fn code(&mut self, _p0: u32, bit: bool) -> Result<bool> {
        Ok(bit)
    }
}

/// The decoder's side.
struct Reader<'a> {
    coder: &'a mut DefaultAnsCoder,
    /// The stream's floor: below it with no words left, it has run dry
    /// ([`entropy::check_not_dry`]).
    floor: u64,
}

impl BitIo for Reader<'_> {
    fn code(&mut self, p0: u32, _bit: bool) -> Result<bool> {
        let bit = self
            .coder
            .decode_symbol(BinaryModel { p0 })
            .map_err(|e| CodecError::CorruptPayload(format!("ANS decoding failed: {e:?}")))?;
        entropy::check_not_dry(self.coder, self.floor)?;
        Ok(bit)
    }
}

/// Codes one decision with an adaptive probability.
fn bit<I: BitIo>(io: &mut I, model: &mut Bit, value: bool) -> Result<bool> {
    let b = io.code(u32::from(model.p0), value)?;
    model.update(b);
    Ok(b)
}

/// Codes the `n` low bits of `value` with probability ½ each, most significant first.
fn raw_bits<I: BitIo>(io: &mut I, value: u32, n: u32) -> Result<u32> {
    let mut out = 0;
    for i in (0..n).rev() {
        out = out << 1 | u32::from(io.code(HALF, value >> i & 1 == 1)?);
    }
    Ok(out)
}

/// Codes `value < 2^n` with a binary tree of adaptive probabilities (`tree.len() ≥ 2^n − 1`).
fn tree_bits<I: BitIo>(io: &mut I, tree: &mut [Bit], value: u32, n: u32) -> Result<u32> {
    let mut node = 1usize;
    for i in (0..n).rev() {
        let b = bit(io, &mut tree[node - 1], value >> i & 1 == 1)?;
        node = node << 1 | usize::from(b);
    }
    Ok(node as u32 - (1 << n))
}

/// What is coded: geometry and the kind of samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlaneLayout {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The samples.
    pub content: PlaneContent,
}

/// The kind of samples of a [`PlaneLayout`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlaneContent {
    /// Canonical pixel bytes of a pixel format.
    Direct(PixelFormat),
    /// Palette indices, one byte per pixel, each below `entries`.
    Palette {
        /// Bits per index in the PNG (1, 2, 4 or 8).
        bit_depth: u8,
        /// Palette entries (1..=2^bit_depth, at most 256).
        entries: u16,
    },
}

impl PlaneLayout {
    /// The layout of a PNG's pixels.
    pub fn of(image: &SourceImage) -> Self {
        let content = match image.pixels() {
            Pixels::Direct { format, .. } => PlaneContent::Direct(*format),
            Pixels::Palette(p) => PlaneContent::Palette {
                bit_depth: p.bit_depth,
                entries: p.palette.len() as u16,
            },
        };
        PlaneLayout {
            width: image.width(),
            height: image.height(),
            content,
        }
    }

    /// Pixels in the image.
    pub fn pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Bytes of the samples [`encode`] takes and [`decode`] returns.
    pub fn sample_bytes(&self) -> u64 {
        match self.content {
            PlaneContent::Direct(f) => self.pixels() * u64::from(f.bytes_per_pixel()),
            PlaneContent::Palette { .. } => self.pixels(),
        }
    }

    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(CodecError::InvalidImage(m));
        if self.width == 0 || self.height == 0 {
            return bad(format!("{}×{} has no pixels", self.width, self.height));
        }
        if usize::try_from(self.sample_bytes()).is_err() {
            return bad("image too large for this machine".into());
        }
        if let PlaneContent::Palette { bit_depth, entries } = self.content {
            if ![1, 2, 4, 8].contains(&bit_depth)
                || entries == 0
                || u32::from(entries) > 1 << bit_depth
            {
                return bad(format!(
                    "{entries} palette entries at bit depth {bit_depth}"
                ));
            }
        }
        Ok(())
    }
}

/// The samples a [`SourceImage`] codes: canonical pixel bytes, or palette indices.
pub fn source_samples(image: &SourceImage) -> &[u8] {
    match image.pixels() {
        Pixels::Direct { samples, .. } => samples,
        Pixels::Palette(p) => &p.indices,
    }
}

/// How one plane is coded.
#[derive(Clone, Copy, Debug)]
enum PlaneKind {
    /// Residual coding of channel `channel`'s 8-bit samples, or of its high bytes (16-bit).
    High {
        channel: usize,
        reference: Option<usize>,
    },
    /// The low bytes of a 16-bit channel, after every high byte.
    Low {
        channel: usize,
        reference: Option<usize>,
    },
    /// 1/2/4-bit samples with neighbour contexts.
    Small { bits: u32 },
    /// 8-bit palette indices.
    Palette,
}

/// The planes of a layout in coding order; the first is the one [`encode`] can leave out.
fn plane_order(layout: &PlaneLayout) -> Vec<PlaneKind> {
    let format = match layout.content {
        PlaneContent::Palette { bit_depth: 8, .. } => return vec![PlaneKind::Palette],
        PlaneContent::Palette { bit_depth, .. } => {
            return vec![PlaneKind::Small {
                bits: u32::from(bit_depth),
            }]
        }
        PlaneContent::Direct(f) => f,
    };
    let bits = format.bits_per_sample();
    if bits < 8 {
        return vec![PlaneKind::Small {
            bits: u32::from(bits),
        }];
    }
    // (channel, reference): green first, red and blue relative to it, alpha last.
    let order: &[(usize, Option<usize>)] = match format.channels() {
        1 => &[(0, None)],
        2 => &[(0, None), (1, None)],
        3 => &[(1, None), (0, Some(1)), (2, Some(1))],
        _ => &[(1, None), (0, Some(1)), (2, Some(1)), (3, None)],
    };
    let mut planes: Vec<PlaneKind> = order
        .iter()
        .map(|&(channel, reference)| PlaneKind::High { channel, reference })
        .collect();
    if bits == 16 {
        planes.extend(
            order
                .iter()
                .map(|&(channel, reference)| PlaneKind::Low { channel, reference }),
        );
    }
    planes
}

/// The samples of the first plane in coding order (the gray samples of gray8 and gray+alpha8,
/// the high bytes of the gray samples of 16-bit gray formats, ...), one value per byte: what a
/// caller passes to [`decode`] as `known_first` when it codes that plane itself.
pub fn first_plane(layout: &PlaneLayout, samples: &[u8]) -> Result<Vec<u8>> {
    let planes = Planes::from_samples(layout, samples)?;
    Ok(match plane_order(layout)[0] {
        PlaneKind::High { channel, .. } => planes.high[channel].iter().map(|&v| v as u8).collect(),
        _ => planes.high[0].iter().map(|&v| v as u8).collect(),
    })
}

/// Samples split into per-channel planes: `high` holds 8-bit samples, high bytes of 16-bit
/// samples, or sub-byte samples/indices; `low` the low bytes of 16-bit samples.
struct Planes {
    width: usize,
    height: usize,
    high: Vec<Vec<i32>>,
    low: Vec<Vec<i32>>,
}

impl Planes {
    fn channels(layout: &PlaneLayout) -> (usize, bool) {
        match layout.content {
            PlaneContent::Direct(f) => (usize::from(f.channels()), f.bits_per_sample() == 16),
            PlaneContent::Palette { .. } => (1, false),
        }
    }

    /// Zeroed planes for `layout`, or [`CodecError::OutOfMemory`] (never an abort).
    fn empty(layout: &PlaneLayout) -> Result<Self> {
        let n = layout.pixels() as usize;
        let (channels, wide) = Planes::channels(layout);
        let planes = |count| (0..count).map(|_| zeros(n)).collect::<Result<Vec<_>>>();
        Ok(Planes {
            width: layout.width as usize,
            height: layout.height as usize,
            high: planes(channels)?,
            low: planes(if wide { channels } else { 0 })?,
        })
    }

    fn from_samples(layout: &PlaneLayout, samples: &[u8]) -> Result<Self> {
        layout.check()?;
        if samples.len() as u64 != layout.sample_bytes() {
            return Err(CodecError::InvalidImage(format!(
                "{} sample bytes for a layout of {}",
                samples.len(),
                layout.sample_bytes()
            )));
        }
        let mut planes = Planes::empty(layout)?;
        let (channels, wide) = Planes::channels(layout);
        if wide {
            for (i, px) in samples.chunks_exact(2 * channels).enumerate() {
                for c in 0..channels {
                    planes.low[c][i] = i32::from(px[2 * c]);
                    planes.high[c][i] = i32::from(px[2 * c + 1]);
                }
            }
        } else {
            for (i, px) in samples.chunks_exact(channels).enumerate() {
                for (c, &v) in px.iter().enumerate() {
                    planes.high[c][i] = i32::from(v);
                }
            }
        }
        let limit: i32 = match layout.content {
            PlaneContent::Palette { entries, .. } => i32::from(entries),
            PlaneContent::Direct(f) => 1 << f.bits_per_sample().min(8),
        };
        if planes.high.iter().flatten().any(|&v| v >= limit) {
            return Err(CodecError::InvalidImage(format!(
                "a sample or index is not below {limit}"
            )));
        }
        Ok(planes)
    }

    fn into_samples(self) -> Result<Vec<u8>> {
        let n = self.width * self.height;
        let channels = self.high.len();
        let wide = !self.low.is_empty();
        let mut out = Vec::new();
        let len = n * channels * if wide { 2 } else { 1 };
        out.try_reserve_exact(len)
            .map_err(|_| CodecError::OutOfMemory { bytes: len as u64 })?;
        for i in 0..n {
            for c in 0..channels {
                if wide {
                    out.push(self.low[c][i] as u8);
                }
                out.push(self.high[c][i] as u8);
            }
        }
        Ok(out)
    }
}

/// Causal neighbours of pixel `(x, y)` in a plane of `t` values: W, N, NW, NE. Outside the
/// image: on the top row N = NW = NE = W; in the first column W = NW = N; in the last column
/// NE = N; the first pixel's W is `first`.
#[derive(Clone, Copy, Debug)]
struct Neighbours {
    w: i32,
    n: i32,
    nw: i32,
    ne: i32,
}

fn neighbours(t: &[i32], width: usize, x: usize, y: usize, first: i32) -> Neighbours {
    let at = |xx: usize, yy: usize| t[yy * width + xx];
    if y == 0 {
        let w = if x > 0 { at(x - 1, 0) } else { first };
        return Neighbours {
            w,
            n: w,
            nw: w,
            ne: w,
        };
    }
    let n = at(x, y - 1);
    let (w, nw) = if x > 0 {
        (at(x - 1, y), at(x - 1, y - 1))
    } else {
        (n, n)
    };
    let ne = if x + 1 < width { at(x + 1, y - 1) } else { n };
    Neighbours { w, n, nw, ne }
}

/// Quantised activity classes and extra (cross-plane) classes of residual contexts.
const ACTIVITY_CLASSES: usize = 28;
const EXTRA_CLASSES: usize = 4;
/// Largest residual exponent: residuals of 16-bit values stay below 2^17.
const MAX_EXP: usize = 17;

/// A fine logarithmic class of a non-negative magnitude: 0, 1, 2, 3, 4–5, 6–7, 8–11, ...
fn log_class(a: u32, cap: usize) -> usize {
    if a < 4 {
        return a as usize;
    }
    let e = 31 - a.leading_zeros(); // ≥ 2
    let class = 2 * e as usize + (a >> (e - 1) & 1) as usize;
    class.min(cap - 1)
}

/// The cross-plane class of a residual magnitude.
fn extra_class(r: i32) -> u8 {
    match r.unsigned_abs() {
        0 => 0,
        1..=2 => 1,
        3..=8 => 2,
        _ => 3,
    }
}

/// Adaptive probabilities of one residual context.
#[derive(Clone, Debug)]
struct ResidualContext {
    zero: Bit,
    sign: Bit,
    exp: [Bit; MAX_EXP],
    mantissa_top: [Bit; MAX_EXP],
    /// Bias correction (JPEG-LS): sum of residuals and count since the last halving.
    bias_sum: i32,
    bias_count: i32,
}

impl ResidualContext {
    fn new() -> Self {
        ResidualContext {
            zero: Bit::NEW,
            sign: Bit::NEW,
            exp: [Bit::NEW; MAX_EXP],
            mantissa_top: [Bit::NEW; MAX_EXP],
            bias_sum: 0,
            bias_count: 0,
        }
    }

    /// The rounded mean residual of this context.
    fn bias(&self) -> i32 {
        if self.bias_count == 0 {
            return 0;
        }
        let (s, c) = (self.bias_sum, self.bias_count);
        if s >= 0 {
            (s + c / 2) / c
        } else {
            -((-s + c / 2) / c)
        }
    }

    fn learn_bias(&mut self, r: i32) {
        self.bias_sum += r;
        self.bias_count += 1;
        if self.bias_count == 64 {
            self.bias_sum /= 2;
            self.bias_count /= 2;
        }
    }
}

/// Codes a residual `r ∈ [lo, hi]` (`lo ≤ 0 ≤ hi`); returns the residual coded.
fn code_residual<I: BitIo>(
    io: &mut I,
    ctx: &mut ResidualContext,
    mantissa_rest: &mut [Bit; MAX_EXP],
    r: i32,
    lo: i32,
    hi: i32,
) -> Result<i32> {
    if lo == hi {
        return Ok(0);
    }
    if bit(io, &mut ctx.zero, r == 0)? {
        return Ok(0);
    }
    let negative = if lo < 0 && hi > 0 {
        bit(io, &mut ctx.sign, r < 0)?
    } else {
        lo < 0
    };
    let bound = if negative { -lo } else { hi } as u32;
    let m = r.unsigned_abs();
    let max_exp = 31 - bound.leading_zeros();
    let e = 31 - m.max(1).leading_zeros();
    let mut k = 0;
    while k < max_exp && bit(io, &mut ctx.exp[k as usize], e > k)? {
        k += 1;
    }
    let mut value = 1u32;
    for i in (0..k).rev() {
        let b = m >> i & 1 == 1;
        let b = if i + 1 == k {
            bit(io, &mut ctx.mantissa_top[k as usize], b)?
        } else {
            bit(io, &mut mantissa_rest[k as usize], b)?
        };
        value = value << 1 | u32::from(b);
    }
    if value > bound {
        return Err(CodecError::CorruptPayload(
            "residual outside the sample range".into(),
        ));
    }
    Ok(if negative {
        -(value as i32)
    } else {
        value as i32
    })
}

/// Adaptive state of the residual planes of one image.
struct ResidualModels {
    contexts: Vec<ResidualContext>,
    mantissa_rest: [Bit; MAX_EXP],
}

impl ResidualModels {
    fn new() -> Self {
        ResidualModels {
            contexts: vec![ResidualContext::new(); ACTIVITY_CLASSES * EXTRA_CLASSES],
            mantissa_rest: [Bit::NEW; MAX_EXP],
        }
    }
}

/// Codes a residual plane: samples `s ∈ 0..=span` with `t = base + s` predicted (module docs).
/// `extra_in` gives each pixel's cross-plane class; `extra_out` receives this plane's.
#[allow(clippy::too_many_arguments)]
fn code_residual_plane<I: BitIo>(
    io: &mut I,
    width: usize,
    height: usize,
    samples: &mut [i32],
    base: &[i32],
    span: i32,
    extra_in: Option<&[u8]>,
    extra_out: &mut [u8],
    t: &mut [i32],
    errors: &mut [u32],
) -> Result<()> {
    let mut models = ResidualModels::new();
    let mut blend = Blend::new(width);
    let first = base[0] + (span + 1) / 2;
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let nb = neighbours(t, width, x, y, first);
            let (e_w, e_n) = match (x > 0, y > 0) {
                (true, true) => (errors[i - 1], errors[i - width]),
                (true, false) => (errors[i - 1], errors[i - 1]),
                (false, true) => (errors[i - width], errors[i - width]),
                (false, false) => (0, 0),
            };
            let guesses = sub_predictions(&nb);
            let (blended, best) = blend.predict(&guesses, x, y);
            let activity = ((nb.w - nb.nw).unsigned_abs()
                + (nb.n - nb.nw).unsigned_abs()
                + (nb.ne - nb.n).unsigned_abs())
                / 2
                + best
                + e_w
                + e_n;
            let extra = extra_in.map_or(0, |e| usize::from(e[i]));
            let c = log_class(activity, ACTIVITY_CLASSES) * EXTRA_CLASSES + extra;
            let ctx = &mut models.contexts[c];
            let (lo, hi) = (base[i], base[i] + span);
            let pred = (blended + ctx.bias()).clamp(lo, hi);
            let r = samples[i] + base[i] - pred;
            let r = code_residual(io, ctx, &mut models.mantissa_rest, r, lo - pred, hi - pred)?;
            ctx.learn_bias(r);
            samples[i] = pred + r - base[i];
            t[i] = pred + r;
            blend.learn(&guesses, t[i], x, y);
            errors[i] = r.unsigned_abs();
            extra_out[i] = extra_class(r);
        }
    }
    Ok(())
}

/// Sub-predictors blended by [`Blend`].
const PREDICTORS: usize = 5;

/// The sub-predictors' guesses for one pixel: MED, gradient, N, W, and the W–NE average.
fn sub_predictions(nb: &Neighbours) -> [i32; PREDICTORS] {
    [
        med(nb.w, nb.n, nb.nw),
        nb.w + nb.n - nb.nw,
        nb.n,
        nb.w,
        (nb.w + nb.ne).div_euclid(2),
    ]
}

/// A weighted average of sub-predictors, each weighted by the inverse of its recent absolute
/// errors at the W, N, NW and NE neighbours (two rows of errors per sub-predictor).
struct Blend {
    width: usize,
    /// `errors[(row & 1) * width + x][k]`.
    errors: Vec<[u32; PREDICTORS]>,
}

impl Blend {
    fn new(width: usize) -> Self {
        Blend {
            width,
            errors: vec![[0; PREDICTORS]; 2 * width],
        }
    }

    /// The blended prediction and the smallest sub-predictor score.
    fn predict(&self, guesses: &[i32; PREDICTORS], x: usize, y: usize) -> (i32, u32) {
        let cur = (y & 1) * self.width;
        let prev = (1 - (y & 1)) * self.width;
        let mut score = [0u32; PREDICTORS];
        let mut add = |at: usize| {
            for (s, e) in score.iter_mut().zip(&self.errors[at]) {
                *s += e;
            }
        };
        if x > 0 {
            add(cur + x - 1);
        }
        if y > 0 {
            add(prev + x);
            if x > 0 {
                add(prev + x - 1);
            }
            if x + 1 < self.width {
                add(prev + x + 1);
            }
        }
        let (mut num, mut den) = (0i128, 0i128);
        for (g, s) in guesses.iter().zip(score) {
            let s = i128::from(s) + 1;
            let w = (1i128 << 40) / (s * s);
            num += w * i128::from(*g);
            den += w;
        }
        let best = score.iter().copied().min().unwrap_or(0);
        ((num + den / 2).div_euclid(den) as i32, best)
    }

    fn learn(&mut self, guesses: &[i32; PREDICTORS], actual: i32, x: usize, y: usize) {
        let at = (y & 1) * self.width + x;
        for (e, g) in self.errors[at].iter_mut().zip(guesses) {
            *e = (actual - g).unsigned_abs();
        }
    }
}

/// The LOCO-I / JPEG-LS median edge detector.
fn med(w: i32, n: i32, nw: i32) -> i32 {
    if nw >= w.max(n) {
        w.min(n)
    } else if nw <= w.min(n) {
        w.max(n)
    } else {
        w + n - nw
    }
}

/// Neighbour template of small planes, in order of use: (dx, dy).
const TEMPLATE: [(i32, i32); 10] = [
    (-1, 0),
    (0, -1),
    (-1, -1),
    (1, -1),
    (-2, 0),
    (0, -2),
    (-2, -1),
    (2, -1),
    (-1, -2),
    (1, -2),
];

/// Codes a plane of `bits`-bit values (`bits` ≤ 4), each below `limit`.
fn code_small_plane<I: BitIo>(
    io: &mut I,
    width: usize,
    height: usize,
    samples: &mut [i32],
    bits: u32,
    limit: i32,
) -> Result<()> {
    let neighbours = match bits {
        1 => 10,
        2 => 5,
        _ => 3,
    };
    let nodes = (1usize << bits) - 1;
    let mut trees = vec![Bit::NEW; nodes << (neighbours * bits)];
    for y in 0..height {
        for x in 0..width {
            let mut ctx = 0usize;
            for &(dx, dy) in &TEMPLATE[..neighbours as usize] {
                let (xx, yy) = (x as i64 + i64::from(dx), y as i64 + i64::from(dy));
                let v = if xx < 0 || yy < 0 || xx >= width as i64 {
                    0
                } else {
                    samples[yy as usize * width + xx as usize]
                };
                ctx = ctx << bits | v as usize;
            }
            let i = y * width + x;
            let tree = &mut trees[ctx * nodes..(ctx + 1) * nodes];
            let v = tree_bits(io, tree, samples[i] as u32, bits)? as i32;
            if v >= limit {
                return Err(CodecError::CorruptPayload(format!(
                    "decoded value {v} is not below {limit}"
                )));
            }
            samples[i] = v;
        }
    }
    Ok(())
}

/// Codes a plane of 8-bit palette indices below `entries`.
fn code_palette_plane<I: BitIo>(
    io: &mut I,
    width: usize,
    height: usize,
    samples: &mut [i32],
    entries: i32,
) -> Result<()> {
    let mut same_w = [Bit::NEW; 16];
    let mut same_n = [Bit::NEW; 16];
    let mut same_ne = [Bit::NEW; 16];
    let mut literal = vec![Bit::NEW; 255];
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let nb = neighbours(samples, width, x, y, 0);
            let pattern = usize::from(nb.w == nb.n)
                | usize::from(nb.n == nb.nw) << 1
                | usize::from(nb.w == nb.nw) << 2
                | usize::from(nb.n == nb.ne) << 3;
            let v = samples[i];
            let v = if bit(io, &mut same_w[pattern], v == nb.w)? {
                nb.w
            } else if nb.n != nb.w && bit(io, &mut same_n[pattern], v == nb.n)? {
                nb.n
            } else if nb.ne != nb.w && nb.ne != nb.n && bit(io, &mut same_ne[pattern], v == nb.ne)?
            {
                nb.ne
            } else {
                let v = tree_bits(io, &mut literal, v as u32, 8)? as i32;
                let excluded = v == nb.w || v == nb.n || v == nb.ne;
                if v >= entries || excluded {
                    return Err(CodecError::CorruptPayload(format!(
                        "decoded palette index {v} is invalid here"
                    )));
                }
                v
            };
            samples[i] = v;
        }
    }
    Ok(())
}

/// `n` zeros, or [`CodecError::OutOfMemory`] when the memory cannot be had (rather than an
/// abort: a tile's size comes from the file).
fn zeros<T: Clone + Default>(n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| CodecError::OutOfMemory {
            bytes: n.saturating_mul(std::mem::size_of::<T>()) as u64,
        })?;
    v.resize(n, T::default());
    Ok(v)
}

/// Who codes the first plane of the context coder's order ([`first_plane`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstPlane {
    /// The context coder codes it with the other planes.
    Coded,
    /// A learned model codes it (the decoder knows it before the context coder's block): the
    /// context coder only learns from it, as context of the other planes.
    Known,
}

/// Codes every plane of an image (all but the first when it is [`FirstPlane::Known`]).
fn code_planes<I: BitIo>(
    io: &mut I,
    layout: &PlaneLayout,
    planes: &mut Planes,
    first: FirstPlane,
) -> Result<()> {
    let (width, height) = (planes.width, planes.height);
    let n = width * height;
    let order = plane_order(layout);
    // Scratch, allocated once per image.
    let mut base = zeros::<i32>(n)?;
    let mut t = zeros::<i32>(n)?;
    let mut errors = zeros::<u32>(n)?;
    let mut green_extra = zeros::<u8>(n)?;
    let mut plane_extra = zeros::<u8>(n)?;
    for (index, kind) in order.iter().enumerate() {
        let skip = first == FirstPlane::Known && index == 0;
        match *kind {
            PlaneKind::Small { bits } => {
                let limit = match layout.content {
                    PlaneContent::Palette { entries, .. } => i32::from(entries),
                    PlaneContent::Direct(_) => 1 << bits,
                };
                let samples = &mut planes.high[0];
                if !skip && !code_constant(io, samples, (1 << bits) - 1, limit)? {
                    code_small_plane(io, width, height, samples, bits, limit)?;
                }
            }
            PlaneKind::Palette => {
                let PlaneContent::Palette { entries, .. } = layout.content else {
                    return Err(CodecError::Internal(
                        "palette plane of a direct image".into(),
                    ));
                };
                let entries = i32::from(entries);
                let samples = &mut planes.high[0];
                if !skip && !code_constant(io, samples, 255, entries)? {
                    code_palette_plane(io, width, height, samples, entries)?;
                }
            }
            PlaneKind::High { channel, reference } | PlaneKind::Low { channel, reference } => {
                let low = matches!(kind, PlaneKind::Low { .. });
                for (i, b) in base.iter_mut().enumerate() {
                    let own = if low { planes.high[channel][i] << 8 } else { 0 };
                    let other = match reference {
                        None => 0,
                        Some(r) if low => planes.high[r][i] << 8 | planes.low[r][i],
                        Some(r) => planes.high[r][i],
                    };
                    *b = own - other;
                }
                let extra_in = reference.map(|_| &green_extra[..]);
                let samples = if low {
                    &mut planes.low[channel]
                } else {
                    &mut planes.high[channel]
                };
                let constant = !skip && code_constant(io, samples, 255, 256)?;
                if constant {
                    plane_extra.fill(0);
                } else {
                    let args = (width, height, &base[..], extra_in);
                    if skip {
                        residual_plane(
                            &mut Skip,
                            args,
                            samples,
                            &mut plane_extra,
                            &mut t,
                            &mut errors,
                        )?;
                    } else {
                        residual_plane(io, args, samples, &mut plane_extra, &mut t, &mut errors)?;
                    }
                }
                if channel == 1 && reference.is_none() {
                    green_extra.copy_from_slice(&plane_extra);
                } else if channel == 0 && reference.is_some() {
                    // Blue's context: the larger of green's and red's residual classes.
                    for (g, r) in green_extra.iter_mut().zip(&plane_extra) {
                        *g = (*g).max(*r);
                    }
                }
            }
        }
    }
    Ok(())
}

/// [`code_residual_plane`] of an 8-bit (or byte) plane.
fn residual_plane<I: BitIo>(
    io: &mut I,
    (width, height, base, extra_in): (usize, usize, &[i32], Option<&[u8]>),
    samples: &mut [i32],
    extra_out: &mut [u8],
    t: &mut [i32],
    errors: &mut [u32],
) -> Result<()> {
    code_residual_plane(
        io, width, height, samples, base, 255, extra_in, extra_out, t, errors,
    )
}

/// Codes whether every sample of a plane is the same and, if so, the value (in
/// `max_bits`-bit form of `max`); returns whether it was. A decoded value must be below `limit`.
fn code_constant<I: BitIo>(io: &mut I, samples: &mut [i32], max: u32, limit: i32) -> Result<bool> {
    let first = samples[0];
    let constant = samples.iter().all(|&v| v == first);
    if !io.code(HALF, constant)? {
        return Ok(false);
    }
    let bits = 32 - max.leading_zeros();
    let v = raw_bits(io, first as u32, bits)? as i32;
    if v >= limit {
        return Err(CodecError::CorruptPayload(format!(
            "constant plane value {v} is not below {limit}"
        )));
    }
    samples.fill(v);
    Ok(true)
}

/// Pushes an image's samples (see [`PlaneLayout::sample_bytes`] for their layout) onto `coder`
/// as one block that [`decode`] pops. With [`FirstPlane::Known`], the first plane
/// ([`first_plane`]) is left to the caller, who codes it elsewhere and gives it to [`decode`].
pub fn encode(
    coder: &mut DefaultAnsCoder,
    layout: &PlaneLayout,
    samples: &[u8],
    first: FirstPlane,
) -> Result<()> {
    let mut planes = Planes::from_samples(layout, samples)?;
    let mut recorder = Recorder {
        records: Vec::new(),
    };
    code_planes(&mut recorder, layout, &mut planes, first)?;
    for &r in recorder.records.iter().rev() {
        coder
            .encode_symbol(r & 1 == 1, BinaryModel { p0: r >> 1 })
            .map_err(|e| CodecError::Internal(format!("ANS encoding failed: {e:?}")))?;
    }
    Ok(())
}

/// Pops what [`encode`] pushed, given the same layout (and, if the encoder skipped the first
/// plane, that plane's samples: [`first_plane`]); returns the samples. Stops as soon as the
/// stream runs dry below `floor` ([`entropy::check_not_dry`]).
pub fn decode(
    coder: &mut DefaultAnsCoder,
    layout: &PlaneLayout,
    known_first: Option<&[u8]>,
    floor: u64,
) -> Result<Vec<u8>> {
    layout.check()?;
    let mut planes = Planes::empty(layout)?;
    if let Some(first) = known_first {
        let index = match plane_order(layout)[0] {
            PlaneKind::High { channel, .. } => channel,
            _ => 0,
        };
        if first.len() != planes.high[index].len() {
            return Err(CodecError::InvalidImage(format!(
                "the known first plane has {} samples, not {}",
                first.len(),
                planes.high[index].len()
            )));
        }
        for (d, &s) in planes.high[index].iter_mut().zip(first) {
            *d = i32::from(s);
        }
    }
    code_planes(
        &mut Reader { coder, floor },
        layout,
        &mut planes,
        match known_first {
            Some(_) => FirstPlane::Known,
            None => FirstPlane::Coded,
        },
    )?;
    planes.into_samples()
}

/// An image's samples as a payload of their own (see the module docs).
pub fn encode_planes(image: &SourceImage) -> Result<Vec<u8>> {
    let mut coder = entropy::start_stream(StreamStart::One);
    encode(
        &mut coder,
        &PlaneLayout::of(image),
        source_samples(image),
        FirstPlane::Coded,
    )?;
    entropy::finish_stream(coder)
}

/// Decodes a payload of [`encode_planes`]: the samples ([`source_samples`]) of an image of this
/// layout. Damaged payloads give [`CodecError::CorruptPayload`].
pub fn decode_planes(payload: &[u8], layout: &PlaneLayout) -> Result<Vec<u8>> {
    let mut coder = entropy::open_stream(payload)?;
    let samples = decode(&mut coder, layout, None, StreamStart::One.floor())?;
    entropy::close_stream(coder, StreamStart::One)?;
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entropy::INITIAL_STATE;

    fn round_trip(layout: PlaneLayout, samples: &[u8]) -> usize {
        let mut coder = DefaultAnsCoder::from_raw_parts(Vec::new(), INITIAL_STATE);
        encode(&mut coder, &layout, samples, FirstPlane::Coded).unwrap();
        let size = coder.num_bits();
        let mut coder = DefaultAnsCoder::from_compressed(coder.into_compressed().unwrap()).unwrap();
        assert_eq!(
            decode(&mut coder, &layout, None, INITIAL_STATE).unwrap(),
            samples
        );
        assert_eq!(coder.into_raw_parts(), (vec![], INITIAL_STATE));
        size
    }

    #[test]
    fn constant_planes_cost_almost_nothing() {
        let layout = PlaneLayout {
            width: 300,
            height: 200,
            content: PlaneContent::Direct(PixelFormat::GrayAlpha8),
        };
        let samples: Vec<u8> = (0..60_000).flat_map(|i| [(i % 251) as u8, 255]).collect();
        let gray_only: Vec<u8> = samples.iter().step_by(2).copied().collect();
        let with_alpha = round_trip(layout, &samples);
        let gray = PlaneLayout {
            content: PlaneContent::Direct(PixelFormat::Gray8),
            ..layout
        };
        let without = round_trip(gray, &gray_only);
        // The opaque alpha plane costs its flag and value (9 bits), rounded to whole words.
        assert!(with_alpha <= without + 64, "{with_alpha} vs {without} bits");
    }

    #[test]
    fn skipped_first_plane_is_given_back() {
        let layout = PlaneLayout {
            width: 19,
            height: 7,
            content: PlaneContent::Direct(PixelFormat::GrayAlpha16),
        };
        let samples: Vec<u8> = (0..19 * 7 * 4).map(|i| (i * 37 % 256) as u8).collect();
        let first = first_plane(&layout, &samples).unwrap();
        let mut coder = DefaultAnsCoder::from_raw_parts(Vec::new(), INITIAL_STATE);
        encode(&mut coder, &layout, &samples, FirstPlane::Known).unwrap();
        let mut coder = DefaultAnsCoder::from_compressed(coder.into_compressed().unwrap()).unwrap();
        assert_eq!(
            decode(&mut coder, &layout, Some(&first), INITIAL_STATE).unwrap(),
            samples
        );
        assert_eq!(coder.into_raw_parts(), (vec![], INITIAL_STATE));
    }

    #[test]
    fn damaged_payloads_are_errors_not_panics() {
        let layout = PlaneLayout {
            width: 23,
            height: 11,
            content: PlaneContent::Palette {
                bit_depth: 8,
                entries: 200,
            },
        };
        let samples: Vec<u8> = (0..23 * 11).map(|i| (i * i % 200) as u8).collect();
        let mut coder = DefaultAnsCoder::from_raw_parts(Vec::new(), INITIAL_STATE);
        encode(&mut coder, &layout, &samples, FirstPlane::Coded).unwrap();
        let words = coder.into_compressed().unwrap();
        let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        assert_eq!(decode_planes(&bytes, &layout).unwrap(), samples);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x5a;
            // Either an error or (rarely) other pixels; never a panic.
            if let Ok(s) = decode_planes(&bad, &layout) {
                assert_ne!(s, samples, "flip at {i} went unnoticed");
            }
            assert!(decode_planes(&bytes[..i], &layout).is_err(), "cut at {i}");
        }
    }

    #[test]
    fn log_classes_are_monotonic() {
        let mut last = 0;
        for a in 0..100_000 {
            let c = log_class(a, ACTIVITY_CLASSES);
            assert!(c >= last && c < ACTIVITY_CLASSES);
            last = c;
        }
    }
}
