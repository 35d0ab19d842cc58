//! From mixture priors to integer probability tables.
//!
//! # One latent's entropy model ([`LatentModel`])
//! 1. [`LogisticMixture`]: softmax weights `π_j`, means `μ_j`, scales `s_j = exp(log_scale_j)`, in
//!    `f64` (`libm::exp`).
//! 2. A window `[lo, hi]` of integers: the hull of `μ_j ± WINDOW_RADIUS·s_j` over the components
//!    with `π_j ≥ WINDOW_MIN_WEIGHT` (and always the heaviest one), floored/ceiled, clamped to the
//!    `i32` range. If wider than [`MAX_WINDOW`], the window is [`MAX_WINDOW`] values centred on
//!    the heaviest component's mean instead.
//! 3. Masses: symbol `z − lo` gets `Σ_j π_j (σ((z+½−μ_j)/s_j) − σ((z−½−μ_j)/s_j))`, each component
//!    evaluated over its own `μ_j ± WINDOW_RADIUS·s_j` only (beyond that a component holds
//!    `e^-16 ≈ 1.1·10⁻⁷` per side, about two quanta of `2^-PRECISION`, which is left out and the
//!    rest renormalised); the extra ESCAPE symbol gets the exact mass outside the window.
//!    Differences of the logistic CDF are taken on whichever tail is small, so nothing cancels;
//!    `exp(−x)` advances from one boundary to the next by a multiplication.
//! 4. Quantisation to [`PRECISION`] bits: `q = 1 + ⌊p/Σp · (2^PRECISION − n)⌋` for the `n`
//!    symbols, and the remainder up to exactly `2^PRECISION` goes to the first most probable
//!    symbol. Every probability is ≥ 1, so every value is codable.
//!
//! A value outside the window is coded as ESCAPE followed by its 32 bits (two's complement) in
//! two uniform 16-bit halves, high half first in decoding order.
//!
//! All of it is `f64` arithmetic in one fixed order plus `libm`, so encoder and decoder build
//! identical tables on every machine.

use constriction::stream::{
    model::{DefaultContiguousCategoricalEntropyModel, DefaultUniformModel, EncoderModel},
    stack::DefaultAnsCoder,
    Decode, Encode,
};

use crate::{CodecError, Result};

/// Fixed-point precision of the categorical models (constriction's default for `u32` words).
pub const PRECISION: usize = 24;
/// Most integers a window may hold (the ESCAPE symbol comes on top).
pub const MAX_WINDOW: usize = 4096;
/// Half-width of a component's window and evaluated support, in scales (logistic tail mass
/// beyond it: `e^-16 ≈ 1.1·10⁻⁷` per side).
pub const WINDOW_RADIUS: f64 = 16.0;
/// Components lighter than this do not widen the window (their mass inside still counts).
pub const WINDOW_MIN_WEIGHT: f64 = 1e-6;

/// Bits in each uniform half of an escaped value.
const ESCAPE_HALF_BITS: u32 = 16;

/// Mixture parameters of one latent, already mapped to pixel units (the IDF's priors map their
/// raw outputs so: `means[j] = MEAN_OFFSET + MEAN_SCALE·raw`,
/// `log_scales[j] = clamp(raw + LOG_SCALE_OFFSET, ..)`), `logits` raw (softmax is applied by
/// [`LogisticMixture`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MixtureParams<'a> {
    pub logits: &'a [f32],
    pub means: &'a [f32],
    pub log_scales: &'a [f32],
}

/// A discretized logistic mixture on ℤ, in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogisticMixture {
    /// `ln π_j` (log-softmax of the logits).
    log_weights: Vec<f64>,
    weights: Vec<f64>,
    means: Vec<f64>,
    scales: Vec<f64>,
}

/// Logistic CDF at one bin boundary `x`, kept as `e = exp(−x)`: `σ(x) = 1/(1+e)` and
/// `1 − σ(x) = e/(1+e)`, each accurate on its own (relative error of a few ulps, also deep in
/// either tail).
#[derive(Clone, Copy, Debug)]
struct CdfPoint {
    /// `exp(−x)`; `e ≤ 1` means `x ≥ 0` (up to rounding, which at worst picks the other, equally
    /// accurate, difference near `x = 0`).
    e: f64,
    below: f64,
    above: f64,
}

/// Largest `|x|` passed to `exp`: keeps `exp(−x)` finite (nothing this far out carries mass).
const MAX_EXPONENT: f64 = 700.0;

impl CdfPoint {
    /// The boundary at `x`.
    fn at(x: f64) -> Self {
        Self::from_exp(libm::exp(-x.clamp(-MAX_EXPONENT, MAX_EXPONENT)))
    }

    fn from_exp(e: f64) -> Self {
        let r = 1.0 / (1.0 + e);
        CdfPoint {
            e,
            below: r,
            above: e * r,
        }
    }

    /// The boundary `d` further right, given `step = exp(−d)`.
    fn shifted(&self, step: f64) -> Self {
        Self::from_exp(self.e * step)
    }

    /// Mass between `self` and a later boundary, from the smaller tail (never negative, even
    /// where rounding makes neighbouring values non-monotonic).
    fn mass_to(&self, next: &CdfPoint) -> f64 {
        let mass = if self.e <= 1.0 {
            self.above - next.above
        } else {
            next.below - self.below
        };
        mass.max(0.0)
    }
}

/// `ln σ(x)`, stable for any `x`.
fn ln_sigmoid(x: f64) -> f64 {
    -(f64::max(-x, 0.0) + libm::log1p(libm::exp(-x.abs())))
}

/// `ln Σ exp(v)`, stable.
fn ln_sum_exp(v: &[f64]) -> f64 {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + libm::log(v.iter().map(|&x| libm::exp(x - max)).sum::<f64>())
}

impl LogisticMixture {
    /// From one latent's parameters; [`CodecError::NonFiniteParameters`] if any is NaN or ±∞.
    pub fn new(p: &MixtureParams) -> Result<Self> {
        let all = p.logits.iter().chain(p.means).chain(p.log_scales);
        if p.logits.is_empty() || !all.clone().all(|v| v.is_finite()) {
            return Err(CodecError::NonFiniteParameters);
        }
        let logits: Vec<f64> = p.logits.iter().map(|&l| f64::from(l)).collect();
        let norm = ln_sum_exp(&logits);
        let log_weights: Vec<f64> = logits.iter().map(|&l| l - norm).collect();
        Ok(LogisticMixture {
            weights: log_weights.iter().map(|&l| libm::exp(l)).collect(),
            log_weights,
            means: p.means.iter().map(|&m| f64::from(m)).collect(),
            scales: p
                .log_scales
                .iter()
                .map(|&s| libm::exp(f64::from(s)))
                .collect(),
        })
    }

    /// `−log2 P(z)`, computed in the log domain (finite even far in the tails).
    ///
    /// Per component, `ln(σ(b) − σ(a)) = ln(1 − e^{−1/s}) + ln σ(b) + ln σ(−a)` with
    /// `a = (z − ½ − μ)/s`, `b = (z + ½ − μ)/s`.
    pub fn nll_bits(&self, z: i32) -> f64 {
        let z = f64::from(z);
        let terms: Vec<f64> = (0..self.means.len())
            .map(|j| {
                let (mu, s) = (self.means[j], self.scales[j]);
                let (a, b) = ((z - 0.5 - mu) / s, (z + 0.5 - mu) / s);
                self.log_weights[j]
                    + libm::log(-libm::expm1(-1.0 / s))
                    + ln_sigmoid(b)
                    + ln_sigmoid(-a)
            })
            .collect();
        -ln_sum_exp(&terms) / std::f64::consts::LN_2
    }

    /// Index of the first heaviest component.
    fn heaviest(&self) -> usize {
        (0..self.weights.len()).fold(0, |best, j| {
            if self.weights[j] > self.weights[best] {
                j
            } else {
                best
            }
        })
    }

    /// Component `j`'s support `μ ± WINDOW_RADIUS·s`, rounded outwards, clamped to `i32`.
    fn support(&self, j: usize) -> Window {
        let r = WINDOW_RADIUS * self.scales[j];
        Window {
            lo: clamp_to_i32(self.means[j] - r, f64::floor),
            hi: clamp_to_i32(self.means[j] + r, f64::ceil),
        }
    }

    /// The coding window (see the module docs).
    fn window(&self) -> Window {
        let best = self.heaviest();
        let hull = (0..self.weights.len())
            .filter(|&j| j == best || self.weights[j] >= WINDOW_MIN_WEIGHT)
            .map(|j| self.support(j))
            .reduce(|a, b| Window {
                lo: a.lo.min(b.lo),
                hi: a.hi.max(b.hi),
            })
            .expect("at least the heaviest component");
        if hull.len() <= MAX_WINDOW {
            return hull;
        }
        let centre = clamp_to_i32(self.means[best], f64::round);
        let lo = (centre - (MAX_WINDOW / 2) as i64).max(i64::from(i32::MIN));
        let hi = (lo + MAX_WINDOW as i64 - 1).min(i64::from(i32::MAX));
        Window {
            lo: hi - (MAX_WINDOW as i64 - 1),
            hi,
        }
    }

    /// Probability masses of the window's values followed by the ESCAPE mass (unnormalised:
    /// they sum to 1 up to the neglected far tails).
    fn masses(&self, window: Window) -> Vec<f64> {
        let mut p = vec![0.0; window.len() + 1];
        let mut escape = 0.0;
        for j in 0..self.weights.len() {
            let (w, mu, s) = (self.weights[j], self.means[j], self.scales[j]);
            if w == 0.0 {
                continue;
            }
            let boundary = |z: i64, half: f64| CdfPoint::at((z as f64 + half - mu) / s);
            escape += w * (boundary(window.lo, -0.5).below + boundary(window.hi, 0.5).above);
            let support = self.support(j);
            let (from, to) = (support.lo.max(window.lo), support.hi.min(window.hi));
            if from > to {
                continue;
            }
            // Consecutive boundaries are 1/s apart: exp(−x) advances by one multiplication
            // (a fixed sequence of f64 operations, so still bit-exact everywhere).
            let step = libm::exp(-1.0 / s);
            let mut prev = boundary(from, -0.5);
            for z in from..=to {
                let next = prev.shifted(step);
                p[(z - window.lo) as usize] += w * prev.mass_to(&next);
                prev = next;
            }
        }
        p[window.len()] = escape;
        p
    }
}

/// Where [`LogisticMixture::binned_masses`] starts each component's boundaries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinnedStart {
    /// At the first inner boundary whose distance from the mean is at most
    /// `MAX_EXPONENT = 700` scales (those below it hold less than `e^−700` of the component,
    /// nothing an `f64` sum can tell from 0): the exact masses.
    Exact,
    /// At the first inner boundary, its distance clamped to 700 scales: a component whose mean
    /// lies further above it had every later boundary stepped from the clamped one, so its mass
    /// landed lower down the bins than it lies (a sharp component near the top of the range:
    /// up to 12 bits a pixel). What VAE files of format versions 4 and 5 were coded with, kept
    /// so that they decode.
    Clamped,
}

impl LogisticMixture {
    /// Masses of `bins` consecutive bins on the real line whose inner boundaries are
    /// `first + k·width` (`k = 0..bins−1`): bin 0 takes the whole lower tail, the last bin the
    /// whole upper tail (as the 256 pixel values of a decoder's likelihood, PixelCNN++'s edge
    /// bins), so they sum to 1 up to rounding. Same arithmetic as the window masses above:
    /// differences on the smaller tail, `exp(−x)` advanced by one multiplication per bin, from
    /// the boundary `start` says.
    pub fn binned_masses(
        &self,
        first: f64,
        width: f64,
        bins: usize,
        start: BinnedStart,
    ) -> Vec<f64> {
        let mut p = vec![0.0; bins];
        if bins < 2 {
            p.iter_mut().for_each(|v| *v = 1.0);
            return p;
        }
        for j in 0..self.weights.len() {
            let (w, mu, s) = (self.weights[j], self.means[j], self.scales[j]);
            if w == 0.0 {
                continue;
            }
            let step = libm::exp(-width / s);
            let x0 = (first - mu) / s;
            // the inner boundaries before `skip` lie more than MAX_EXPONENT scales below the mean
            let skip = match start {
                BinnedStart::Exact if x0 < -MAX_EXPONENT => {
                    let k = ((-MAX_EXPONENT - x0) * s / width).ceil();
                    if k >= (bins - 1) as f64 {
                        p[bins - 1] += w;
                        continue;
                    }
                    k as usize
                }
                _ => 0,
            };
            let mut prev = match skip {
                0 => CdfPoint::at(x0),
                k => CdfPoint::at((first + k as f64 * width - mu) / s),
            };
            p[skip] += w * prev.below;
            for slot in &mut p[skip + 1..bins - 1] {
                let next = prev.shifted(step);
                *slot += w * prev.mass_to(&next);
                prev = next;
            }
            p[bins - 1] += w * prev.above;
        }
        p
    }
}

/// A categorical entropy model of masses `p` (unnormalised, finite, ≥ 0, not all 0), quantised
/// to [`PRECISION`] bits as in the module docs (every symbol codable).
pub fn categorical(p: &[f64]) -> Result<DefaultContiguousCategoricalEntropyModel> {
    if p.is_empty() || p.len() as u64 >= 1u64 << PRECISION {
        return Err(CodecError::Internal(format!(
            "a categorical model of {} symbols",
            p.len()
        )));
    }
    let q = quantize(p)?;
    DefaultContiguousCategoricalEntropyModel::from_nonzero_fixed_point_probabilities(&q, false)
        .map_err(|()| CodecError::Internal("invalid fixed-point probabilities".into()))
}

/// Rounds `v` with `round` and clamps it to the `i32` range.
fn clamp_to_i32(v: f64, round: fn(f64) -> f64) -> i64 {
    round(v).clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i64
}

/// An inclusive range of integers `lo..=hi` inside the `i32` range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    lo: i64,
    hi: i64,
}

impl Window {
    fn len(&self) -> usize {
        (self.hi - self.lo + 1) as usize
    }

    fn contains(&self, z: i32) -> bool {
        (self.lo..=self.hi).contains(&i64::from(z))
    }
}

/// Fixed-point probabilities, all ≥ 1, summing to exactly `2^PRECISION` (see the module docs).
fn quantize(p: &[f64]) -> Result<Vec<u32>> {
    let total: f64 = p.iter().sum();
    if !(total.is_finite() && total > 0.0) || p.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
        return Err(CodecError::NonFiniteParameters);
    }
    let one = 1u64 << PRECISION;
    let free = (one - p.len() as u64) as f64;
    // `v / total · free` is finite and ≥ 0 (checked above), so the truncating cast is `floor`
    // (without a call to the platform's `floor` on CPUs that lack a rounding instruction).
    let mut q: Vec<u32> = p.iter().map(|&v| 1 + (v / total * free) as u32).collect();
    let sum: u64 = q.iter().map(|&v| u64::from(v)).sum();
    let top = (0..q.len()).fold(0, |best, i| if q[i] > q[best] { i } else { best });
    let adjusted = i64::from(q[top]) + one as i64 - sum as i64;
    if adjusted < 1 {
        return Err(CodecError::Internal(
            "probability quantisation overshot".into(),
        ));
    }
    q[top] = adjusted as u32;
    Ok(q)
}

/// The entropy model of one latent: a categorical over its window plus ESCAPE.
#[derive(Debug)]
pub struct LatentModel {
    window: Window,
    categorical: DefaultContiguousCategoricalEntropyModel,
}

impl LatentModel {
    /// Builds the quantised model of a mixture (see the module docs).
    pub fn new(mixture: &LogisticMixture) -> Result<Self> {
        let window = mixture.window();
        let categorical = categorical(&mixture.masses(window))?;
        Ok(LatentModel {
            window,
            categorical,
        })
    }

    /// The smallest and largest value coded without escape.
    pub fn window(&self) -> (i32, i32) {
        (self.window.lo as i32, self.window.hi as i32)
    }

    /// Ideal code length of `z` in bits under the quantised table (escapes included).
    pub fn cost_bits(&self, z: i32) -> f64 {
        let symbol = if self.window.contains(z) {
            (i64::from(z) - self.window.lo) as usize
        } else {
            self.escape_symbol()
        };
        let q = self
            .categorical
            .left_cumulative_and_probability(symbol)
            .map_or(0, |(_, p)| p.get());
        let escape_bits = if symbol == self.escape_symbol() {
            2 * ESCAPE_HALF_BITS
        } else {
            0
        };
        PRECISION as f64 - libm::log2(f64::from(q)) + f64::from(escape_bits)
    }

    fn escape_symbol(&self) -> usize {
        self.window.len()
    }

    /// Pushes `z` (in reverse of the order [`LatentModel::decode`] pops it).
    pub fn encode(&self, coder: &mut DefaultAnsCoder, z: i32) -> Result<()> {
        let fail = |e| CodecError::Internal(format!("ANS encoding failed: {e:?}"));
        if self.window.contains(z) {
            return coder
                .encode_symbol((i64::from(z) - self.window.lo) as usize, &self.categorical)
                .map_err(fail);
        }
        let bits = z as u32;
        let half = half_model();
        coder
            .encode_symbol((bits & 0xffff) as usize, half)
            .map_err(fail)?;
        coder
            .encode_symbol((bits >> ESCAPE_HALF_BITS) as usize, half)
            .map_err(fail)?;
        coder
            .encode_symbol(self.escape_symbol(), &self.categorical)
            .map_err(fail)
    }

    /// Pops one value.
    pub fn decode(&self, coder: &mut DefaultAnsCoder) -> Result<i32> {
        let fail = |e| CodecError::CorruptPayload(format!("ANS decoding failed: {e:?}"));
        let symbol = coder.decode_symbol(&self.categorical).map_err(fail)?;
        if symbol != self.escape_symbol() {
            return Ok((self.window.lo + symbol as i64) as i32);
        }
        let half = half_model();
        let high = coder.decode_symbol(half).map_err(fail)? as u32;
        let low = coder.decode_symbol(half).map_err(fail)? as u32;
        let z = ((high << ESCAPE_HALF_BITS) | low) as i32;
        if self.window.contains(z) {
            return Err(CodecError::CorruptPayload(
                "escaped value lies inside its window".into(),
            ));
        }
        Ok(z)
    }
}

/// Uniform model of one 16-bit half of an escaped value.
fn half_model() -> DefaultUniformModel {
    DefaultUniformModel::new(1 << ESCAPE_HALF_BITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mixture(logits: &[f32], means: &[f32], log_scales: &[f32]) -> LogisticMixture {
        LogisticMixture::new(&MixtureParams {
            logits,
            means,
            log_scales,
        })
        .unwrap()
    }

    #[test]
    fn quantised_tables_are_complete_and_close() {
        let m = mixture(&[0.0, 1.0], &[10.0, 40.5], &[0.5, 2.0]);
        let window = m.window();
        let p = m.masses(window);
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-5, "masses sum to {total}");
        let q = quantize(&p).unwrap();
        assert_eq!(q.iter().map(|&v| u64::from(v)).sum::<u64>(), 1 << PRECISION);
        assert!(q.iter().all(|&v| v >= 1));
        for (z, &qz) in (window.lo..=window.hi).zip(&q) {
            let exact = libm::exp2(-m.nll_bits(z as i32));
            let got = f64::from(qz) / (1u64 << PRECISION) as f64;
            assert!(
                (exact - got).abs() < 1e-3 * exact + 1e-6,
                "z={z}: {exact} vs {got}"
            );
        }
    }

    #[test]
    fn wide_mixtures_are_capped() {
        let m = mixture(&[0.0, 0.0], &[-1e6, 1e6], &[9.0, 9.0]);
        let w = m.window();
        assert_eq!(w.len(), MAX_WINDOW);
        let q = quantize(&m.masses(w)).unwrap();
        assert_eq!(q.len(), MAX_WINDOW + 1);
        let far = mixture(&[0.0], &[3e9], &[-4.0]);
        let w = far.window();
        assert_eq!(w.hi, i64::from(i32::MAX));
        assert!(quantize(&far.masses(w)).is_ok());
    }

    #[test]
    fn escapes_round_trip() {
        let m = LatentModel::new(&mixture(&[0.0], &[0.0], &[-4.0])).unwrap();
        let values = [0, 1, -1, 5, i32::MIN, i32::MAX, 123_456_789, -70_000];
        let mut coder = DefaultAnsCoder::new();
        for &z in values.iter().rev() {
            m.encode(&mut coder, z).unwrap();
        }
        let mut coder = DefaultAnsCoder::from_compressed(coder.into_compressed().unwrap()).unwrap();
        for &z in &values {
            assert_eq!(m.decode(&mut coder).unwrap(), z);
        }
        assert!(coder.is_empty());
    }

    #[test]
    fn non_finite_parameters_are_rejected() {
        let p = MixtureParams {
            logits: &[f32::NAN],
            means: &[0.0],
            log_scales: &[0.0],
        };
        assert!(matches!(
            LogisticMixture::new(&p),
            Err(CodecError::NonFiniteParameters)
        ));
    }

    #[test]
    fn binned_masses_have_edge_bins() {
        let m = mixture(&[0.0, -1.0], &[0.1, -0.6], &[-3.0, -2.0]);
        let p = m.binned_masses(-1.0 + 1.0 / 255.0, 2.0 / 255.0, 256, BinnedStart::Exact);
        let total: f64 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        assert!(p.iter().all(|&v| v >= 0.0));
        let q = categorical(&p).unwrap();
        assert_eq!(q.support_size(), 256);
    }

    /// A sharp component near the top of the range (as a VAE's decoder puts on MNIST's white
    /// strokes: mean 0.9865, log scale −5.93, so the first boundary is ~745 scales below the
    /// mean): the exact start gives every bin the mass of its own two boundaries; the clamped
    /// start of versions 4 and 5 moves that mass ~15 bins down.
    #[test]
    fn binned_masses_of_a_sharp_component_near_the_top() {
        let (first, width) = (-1.0 + 1.0 / 255.0, 2.0 / 255.0);
        let m = mixture(&[0.0], &[0.9865], &[-5.93]);
        let exact = m.binned_masses(first, width, 256, BinnedStart::Exact);
        let s = libm::exp(-5.93f32 as f64);
        let mu = 0.9865f32 as f64;
        let sigmoid = |x: f64| 1.0 / (1.0 + libm::exp(-x));
        for (v, &mass) in exact.iter().enumerate().take(255).skip(250) {
            let (a, b) = (first + (v - 1) as f64 * width, first + v as f64 * width);
            let direct = sigmoid((b - mu) / s) - sigmoid((a - mu) / s);
            assert!((mass - direct).abs() < 1e-12, "bin {v}: {mass} vs {direct}");
        }
        assert!(exact[253] > 0.5, "{}", exact[253]);
        let total: f64 = exact.iter().sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let clamped = m.binned_masses(first, width, 256, BinnedStart::Clamped);
        assert!(clamped[253] < 1e-3, "{}", clamped[253]);
        let heaviest = (0..256).fold(0, |b, v| if clamped[v] > clamped[b] { v } else { b });
        assert!((230..245).contains(&heaviest), "{heaviest}");
        // a wide component is far from the clamp: both starts agree exactly
        let wide = mixture(&[0.0, 0.5], &[0.3, -0.9], &[-2.0, -3.5]);
        assert_eq!(
            wide.binned_masses(first, width, 256, BinnedStart::Exact),
            wide.binned_masses(first, width, 256, BinnedStart::Clamped)
        );
        // every boundary below the clamp: all the mass in the top bin
        let above = mixture(&[0.0], &[3.0], &[-6.5]);
        let p = above.binned_masses(first, width, 256, BinnedStart::Exact);
        assert_eq!(p[255], 1.0);
    }

    #[test]
    fn nll_is_finite_far_in_the_tail() {
        let m = mixture(&[0.0], &[0.0], &[-4.0]);
        let bits = m.nll_bits(1000);
        assert!(bits.is_finite() && bits > 1000.0);
    }
}
