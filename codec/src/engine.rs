//! A small deterministic tensor engine: CHW tensors, 3×3 convolutions and channel operations.
//!
//! # Determinism
//! Every output element of a convolution is accumulated in one fixed order — bias first, then
//! input channel `i`, kernel row `ky`, kernel column `kx`, all ascending — with separate `f32`
//! multiplies and adds (Rust never contracts them into fused multiply-adds). The hot loop runs over
//! many *independent* output elements, so it is vectorised with any SIMD width without changing a
//! single bit of any result: the convolution is compiled twice, for any CPU and for AVX2 (chosen at
//! run time, never with FMA; `IDFCODEC_CPU=portable` forces the first), and both give the same bits.
//!
//! # Layout inside networks
//! Activations inside a [`Network`] live in a zero-padded layout ([`Padded`]): each channel plane
//! is `(H+2)×(W+2)` plus spare zeros, so a 3×3 convolution of one input plane into one output plane
//! is nine shifted, contiguous multiply-adds over `H·(W+2)` elements; the kernel does four output
//! planes at once, in registers. The two padding columns per row the sweep writes as a side effect
//! are zeroed again afterwards.

use crate::{CodecError, Result};

/// Tensor dimensions: channels × height × width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Shape {
    pub channels: usize,
    pub height: usize,
    pub width: usize,
}

impl Shape {
    /// A shape from its three dimensions.
    pub fn new(channels: usize, height: usize, width: usize) -> Self {
        Shape {
            channels,
            height,
            width,
        }
    }

    /// Elements of one channel plane.
    pub fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Elements of the whole tensor, or `None` on overflow.
    pub fn checked_len(&self) -> Option<usize> {
        self.channels
            .checked_mul(self.height)?
            .checked_mul(self.width)
    }

    /// Elements of the whole tensor (the shape must not overflow; see [`Shape::checked_len`]).
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// True when the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with_channels(&self, channels: usize) -> Self {
        Shape { channels, ..*self }
    }
}

/// A dense CHW tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor<T> {
    shape: Shape,
    data: Vec<T>,
}

/// Floating-point activations.
pub type FloatTensor = Tensor<f32>;
/// Integer images and latents.
pub type IntTensor = Tensor<i32>;

impl<T: Copy + Default> Tensor<T> {
    /// A tensor of default values (zeros).
    pub fn zeros(shape: Shape) -> Self {
        Tensor {
            shape,
            data: vec![T::default(); shape.len()],
        }
    }

    /// Wraps `data` (CHW order); its length must match `shape`.
    pub fn from_vec(shape: Shape, data: Vec<T>) -> Result<Self> {
        if shape.checked_len() != Some(data.len()) {
            return Err(CodecError::InvalidImage(format!(
                "{} values do not fill a {}×{}×{} tensor",
                data.len(),
                shape.channels,
                shape.height,
                shape.width
            )));
        }
        Ok(Tensor { shape, data })
    }

    /// The dimensions.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// All values in CHW order.
    pub fn data(&self) -> &[T] {
        &self.data
    }

    /// Takes the values out (CHW order).
    pub fn into_data(self) -> Vec<T> {
        self.data
    }

    /// The plane of channel `c`.
    pub fn channel(&self, c: usize) -> &[T] {
        let p = self.shape.plane();
        &self.data[c * p..(c + 1) * p]
    }

    /// Applies `f` to every element.
    pub fn map<U>(&self, f: impl Fn(T) -> U) -> Tensor<U> {
        Tensor {
            shape: self.shape,
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    /// Splits into channels `..at` and `at..`.
    ///
    /// # Panics
    /// If `at` exceeds the channel count (a caller bug, never a property of input data).
    pub fn split_channels(&self, at: usize) -> (Self, Self) {
        assert!(
            at <= self.shape.channels,
            "split point beyond channel count"
        );
        let (a, b) = self.data.split_at(at * self.shape.plane());
        (
            Tensor {
                shape: self.shape.with_channels(at),
                data: a.to_vec(),
            },
            Tensor {
                shape: self.shape.with_channels(self.shape.channels - at),
                data: b.to_vec(),
            },
        )
    }

    /// Stacks the channels of `a` then `b`.
    ///
    /// # Panics
    /// If the spatial sizes differ (a caller bug).
    pub fn concat_channels(a: &Self, b: &Self) -> Self {
        assert_eq!(
            (a.shape.height, a.shape.width),
            (b.shape.height, b.shape.width),
            "concatenated tensors differ in size"
        );
        let mut data = Vec::with_capacity(a.data.len() + b.data.len());
        data.extend_from_slice(&a.data);
        data.extend_from_slice(&b.data);
        Tensor {
            shape: a.shape.with_channels(a.shape.channels + b.shape.channels),
            data,
        }
    }

    /// Channel `c` becomes channel `C−1−c`.
    pub fn reverse_channels(&self) -> Self {
        let mut data = Vec::with_capacity(self.data.len());
        for c in (0..self.shape.channels).rev() {
            data.extend_from_slice(self.channel(c));
        }
        Tensor {
            shape: self.shape,
            data,
        }
    }

    /// Space-to-depth, as PyTorch's
    /// `x.reshape(C, H/2, 2, W/2, 2).permute(0, 2, 4, 1, 3).reshape(4C, H/2, W/2)`:
    /// output channel `c·4 + dy·2 + dx` holds input pixels `(2y+dy, 2x+dx)` of channel `c`.
    ///
    /// # Panics
    /// If height or width is odd (a caller bug: image sizes are checked up front).
    pub fn squeeze(&self) -> Self {
        let Shape {
            channels,
            height,
            width,
        } = self.shape;
        assert!(
            height % 2 == 0 && width % 2 == 0,
            "squeeze needs even height and width"
        );
        let (h2, w2) = (height / 2, width / 2);
        let mut data = Vec::with_capacity(self.data.len());
        for c in 0..channels {
            let src = self.channel(c);
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                for y in 0..h2 {
                    let row = &src[(2 * y + dy) * width..][..width];
                    data.extend(row.iter().skip(dx).step_by(2).copied());
                }
            }
        }
        Tensor {
            shape: Shape::new(4 * channels, h2, w2),
            data,
        }
    }

    /// Depth-to-space, the exact inverse of [`Tensor::squeeze`].
    ///
    /// # Panics
    /// If the channel count is not a multiple of 4 (a caller bug).
    pub fn unsqueeze(&self) -> Self {
        let Shape {
            channels,
            height,
            width,
        } = self.shape;
        assert!(
            channels % 4 == 0,
            "unsqueeze needs a multiple of 4 channels"
        );
        let out_shape = Shape::new(channels / 4, 2 * height, 2 * width);
        let mut data = vec![T::default(); self.data.len()];
        for (sc, src) in self
            .data
            .chunks_exact(self.shape.plane().max(1))
            .enumerate()
        {
            let (c, dy, dx) = (sc / 4, (sc % 4) / 2, sc % 2);
            let dst = &mut data[c * out_shape.plane()..][..out_shape.plane()];
            for y in 0..height {
                let row = &mut dst[(2 * y + dy) * out_shape.width..][..out_shape.width];
                for (d, &s) in row
                    .iter_mut()
                    .skip(dx)
                    .step_by(2)
                    .zip(&src[y * width..][..width])
                {
                    *d = s;
                }
            }
        }
        Tensor {
            shape: out_shape,
            data,
        }
    }

    /// The four pixel phases, phase-major: `C×H×W → 4C×H/2×W/2`, channel `(dy·2 + dx)·C + c`
    /// holds `self[c][2i+dy][2j+dx]` (see [`crate::arch`]). [`Tensor::squeeze`] with its
    /// channels reordered.
    ///
    /// # Panics
    /// If height or width is odd (a caller bug).
    pub fn phases(&self) -> Self {
        let c = self.shape.channels;
        // phase-major channel p·C + ch comes from squeeze's channel ch·4 + p
        self.squeeze()
            .gather_channels(|out| (out % c) * 4 + out / c)
    }

    /// The exact inverse of [`Tensor::phases`].
    ///
    /// # Panics
    /// If the channel count is not a multiple of 4 (a caller bug).
    pub fn unphases(&self) -> Self {
        let c = self.shape.channels / 4;
        // squeeze's channel ch·4 + p is phase-major channel p·C + ch
        self.gather_channels(|out| (out % 4) * c + out / 4)
            .unsqueeze()
    }

    /// A tensor of the same shape whose channel `i` is this tensor's channel `source(i)`.
    fn gather_channels(&self, source: impl Fn(usize) -> usize) -> Self {
        let mut data = Vec::with_capacity(self.data.len());
        for i in 0..self.shape.channels {
            data.extend_from_slice(self.channel(source(i)));
        }
        Tensor {
            shape: self.shape,
            data,
        }
    }
}

impl FloatTensor {
    /// `max(v, 0)` elementwise.
    pub fn relu(&self) -> Self {
        self.map(|v| v.max(0.0))
    }

    /// Elementwise sum.
    ///
    /// # Panics
    /// If the shapes differ (a caller bug).
    pub fn add(&self, other: &Self) -> Self {
        assert_eq!(self.shape, other.shape, "added tensors differ in shape");
        let data = self
            .data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| a + b)
            .collect();
        Tensor {
            shape: self.shape,
            data,
        }
    }
}

/// Activations in the zero-padded layout used inside networks (see the module docs).
#[derive(Clone, Debug)]
struct Padded {
    channels: usize,
    height: usize,
    width: usize,
    data: Vec<f32>,
}

impl Padded {
    fn zeros(channels: usize, height: usize, width: usize) -> Self {
        let plane = Self::plane_len(height, width);
        Padded {
            channels,
            height,
            width,
            data: vec![0.0; channels * plane],
        }
    }

    /// `(H+2)·(W+2)` plus spare zeros, which the convolution's last block of lanes reads (into
    /// the padding columns and past the plane, results it then discards).
    fn plane_len(height: usize, width: usize) -> usize {
        (height + 2) * (width + 2) + 2 + kernel::MAX_LANES
    }

    fn stride(&self) -> usize {
        self.width + 2
    }

    fn plane(&self, c: usize) -> &[f32] {
        let p = Self::plane_len(self.height, self.width);
        &self.data[c * p..(c + 1) * p]
    }

    fn from_tensor(t: &FloatTensor) -> Self {
        let Shape {
            channels,
            height,
            width,
        } = t.shape;
        let mut out = Self::zeros(channels, height, width);
        let (plane, stride) = (Self::plane_len(height, width), out.stride());
        for (c, dst) in out.data.chunks_exact_mut(plane).enumerate() {
            let src = t.channel(c);
            for y in 0..height {
                dst[(y + 1) * stride + 1..][..width].copy_from_slice(&src[y * width..][..width]);
            }
        }
        out
    }

    fn to_tensor(&self) -> FloatTensor {
        let (plane, stride) = (Self::plane_len(self.height, self.width), self.stride());
        let mut data = Vec::with_capacity(self.channels * self.height * self.width);
        for src in self.data.chunks_exact(plane) {
            for y in 0..self.height {
                data.extend_from_slice(&src[(y + 1) * stride + 1..][..self.width]);
            }
        }
        Tensor {
            shape: Shape::new(self.channels, self.height, self.width),
            data,
        }
    }

    /// `max(v, 0)` elementwise; padding stays zero.
    fn relu(&self) -> Self {
        Padded {
            data: self.data.iter().map(|v| v.max(0.0)).collect(),
            ..*self
        }
    }

    /// `self += other`; padding stays zero.
    fn add_assign(&mut self, other: &Padded) {
        for (a, b) in self.data.iter_mut().zip(&other.data) {
            *a += b;
        }
    }
}

/// A 3×3 convolution, stride 1, zero padding 1, with bias (PyTorch weight layout `[out, in, 3, 3]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Conv3x3 {
    in_channels: usize,
    out_channels: usize,
    weight: Vec<f32>,
    bias: Vec<f32>,
}

impl Conv3x3 {
    /// Builds a convolution; `weight` has `out·in·9` values, `bias` has `out`.
    pub fn new(
        in_channels: usize,
        out_channels: usize,
        weight: Vec<f32>,
        bias: Vec<f32>,
    ) -> Result<Self> {
        if weight.len() != out_channels * in_channels * 9 || bias.len() != out_channels {
            return Err(CodecError::InvalidModel(format!(
                "convolution {in_channels}→{out_channels} got {} weights and {} biases",
                weight.len(),
                bias.len()
            )));
        }
        Ok(Conv3x3 {
            in_channels,
            out_channels,
            weight,
            bias,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_channels
    }

    /// Weights, `[out, in, 3, 3]` row-major.
    pub fn weight(&self) -> &[f32] {
        &self.weight
    }

    /// Biases, `[out]`.
    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// Convolves a CHW tensor.
    ///
    /// # Panics
    /// If the tensor's channel count differs from `in_channels` (a caller bug).
    pub fn apply(&self, input: &FloatTensor) -> FloatTensor {
        self.apply_padded(&Padded::from_tensor(input)).to_tensor()
    }

    fn apply_padded(&self, input: &Padded) -> Padded {
        assert_eq!(
            input.channels, self.in_channels,
            "convolution input channels"
        );
        let mut out = Padded::zeros(self.out_channels, input.height, input.width);
        kernel::convolve(self, input, &mut out);
        let (height, width) = (input.height, input.width);
        for dst in out.data.chunks_exact_mut(Padded::plane_len(height, width)) {
            clear_padding(dst, height, width);
        }
        out
    }
}

/// Environment variable that, set to `portable`, makes the engine run its portable kernels even
/// where a faster variant is available (read once per process). Both give the same bits; this is
/// for checking exactly that, and for timing the difference.
pub const CPU_VARIANT_VAR: &str = "IDFCODEC_CPU";

/// Which variant of the kernels runs in this process: `"avx2"` or `"portable"`.
pub fn kernel_variant() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if !portable_kernels_only() && std::arch::is_x86_feature_detected!("avx2") {
        return "avx2";
    }
    "portable"
}

/// Whether [`CPU_VARIANT_VAR`] asks for the portable kernels.
fn portable_kernels_only() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| std::env::var_os(CPU_VARIANT_VAR).is_some_and(|v| v == "portable"))
}

/// The convolution's inner loops: a variant for any CPU and one for AVX2, chosen at run time.
///
/// Output pixel `(y, x)` of a plane sits at padded index `(y+1)·stride + x+1 = stride+1 + k`
/// with `k = y·stride + x`; its 3×3 neighbourhood starts at input padded index `k`, tap `t` at
/// `k + (t/3)·stride + t%3`. In both variants every output element starts at its bias and adds
/// its products in input channel, then tap order, each product rounded before the add (no FMA),
/// so both give the same bits (tests compare each against a scalar reference).
mod kernel {
    use super::{Conv3x3, Padded};

    /// Positions the AVX2 variant computes at once (two 8-lane registers): the spare elements
    /// [`Padded`] planes carry, so that the last block reads zeros instead of running off.
    pub(super) const MAX_LANES: usize = 16;

    /// `out` (already zero, same geometry as `input`) ← `conv(input)`; the two padding columns
    /// per row are written too and must be cleared by the caller.
    pub(super) fn convolve(conv: &Conv3x3, input: &Padded, out: &mut Padded) {
        #[cfg(target_arch = "x86_64")]
        if super::kernel_variant() == "avx2" {
            // SAFETY: `kernel_variant` says "avx2" only where the CPU supports AVX2.
            unsafe { convolve_avx2(conv, input, out) };
            return;
        }
        convolve_portable(conv, input, out);
    }

    /// The variant for any CPU: one output plane at a time, one input plane at a time, nine
    /// shifted multiply-adds over the whole plane (independent across positions, so the compiler
    /// vectorises it with the baseline SIMD width).
    pub(super) fn convolve_portable(conv: &Conv3x3, input: &Padded, out: &mut Padded) {
        let stride = input.stride();
        let body_len = input.height * stride;
        let plane = Padded::plane_len(input.height, input.width);
        for (o, dst) in out.data.chunks_exact_mut(plane).enumerate() {
            let body = &mut dst[stride + 1..][..body_len];
            body.fill(conv.bias[o]);
            for i in 0..conv.in_channels {
                let taps = &conv.weight[(o * conv.in_channels + i) * 9..][..9];
                accumulate_taps(body, input.plane(i), taps, stride);
            }
        }
    }

    /// `body[k] += Σ_t taps[t] · src[k + offset_t]` for the nine taps, added one by one in order.
    fn accumulate_taps(body: &mut [f32], src: &[f32], taps: &[f32], stride: usize) {
        let n = body.len();
        let [w0, w1, w2, w3, w4, w5, w6, w7, w8] = [
            taps[0], taps[1], taps[2], taps[3], taps[4], taps[5], taps[6], taps[7], taps[8],
        ];
        let row = |ky: usize, kx: usize| &src[ky * stride + kx..][..n];
        let (s0, s1, s2) = (row(0, 0), row(0, 1), row(0, 2));
        let (s3, s4, s5) = (row(1, 0), row(1, 1), row(1, 2));
        let (s6, s7, s8) = (row(2, 0), row(2, 1), row(2, 2));
        for k in 0..n {
            let mut acc = body[k];
            acc += w0 * s0[k];
            acc += w1 * s1[k];
            acc += w2 * s2[k];
            acc += w3 * s3[k];
            acc += w4 * s4[k];
            acc += w5 * s5[k];
            acc += w6 * s6[k];
            acc += w7 * s7[k];
            acc += w8 * s8[k];
            body[k] = acc;
        }
    }

    /// The AVX2 variant: four output planes at a time over 16 positions held in eight registers;
    /// per input channel and tap the 16 inputs are loaded once for all four outputs (a quarter of
    /// the portable variant's loads and stores per multiply-add).
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn convolve_avx2(conv: &Conv3x3, input: &Padded, out: &mut Padded) {
        let mut o = 0;
        while o < conv.out_channels {
            if conv.out_channels - o >= 4 {
                block_avx2::<4>(conv, input, out, o);
                o += 4;
            } else {
                block_avx2::<1>(conv, input, out, o);
                o += 1;
            }
        }
    }

    /// Output planes `o..o+N` of [`convolve_avx2`].
    ///
    /// # Safety
    /// The CPU must support AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn block_avx2<const N: usize>(
        conv: &Conv3x3,
        input: &Padded,
        out: &mut Padded,
        o: usize,
    ) {
        use std::arch::x86_64::{
            __m256, _mm256_add_ps, _mm256_loadu_ps, _mm256_mul_ps, _mm256_set1_ps, _mm256_storeu_ps,
        };
        let (cin, stride) = (conv.in_channels, input.stride());
        let body_len = input.height * stride;
        let plane = Padded::plane_len(input.height, input.width);
        let offsets: [usize; 9] = std::array::from_fn(|t| (t / 3) * stride + t % 3);
        // Every load below stays inside the input: the last block starts below `body_len` and
        // reads at most `offsets[8] + MAX_LANES` further, which the planes' spare zeros cover.
        assert!(o + N <= conv.out_channels && input.channels == cin);
        assert!(input.data.len() == cin * plane && out.data.len() == conv.out_channels * plane);
        assert!(body_len + offsets[8] + MAX_LANES <= plane + 1);
        let weights = conv.weight.as_ptr();
        let mut k0 = 0;
        while k0 < body_len {
            let mut acc: [[__m256; 2]; N] =
                std::array::from_fn(|n| [_mm256_set1_ps(conv.bias[o + n]); 2]);
            for i in 0..cin {
                let src = input.data.as_ptr().add(i * plane + k0);
                for (t, &offset) in offsets.iter().enumerate() {
                    let lo = _mm256_loadu_ps(src.add(offset));
                    let hi = _mm256_loadu_ps(src.add(offset + 8));
                    for (n, a) in acc.iter_mut().enumerate() {
                        let w = _mm256_set1_ps(*weights.add(((o + n) * cin + i) * 9 + t));
                        a[0] = _mm256_add_ps(a[0], _mm256_mul_ps(w, lo));
                        a[1] = _mm256_add_ps(a[1], _mm256_mul_ps(w, hi));
                    }
                }
            }
            let valid = MAX_LANES.min(body_len - k0);
            for (n, a) in acc.iter().enumerate() {
                let mut lanes = [0.0f32; MAX_LANES];
                _mm256_storeu_ps(lanes.as_mut_ptr(), a[0]);
                _mm256_storeu_ps(lanes.as_mut_ptr().add(8), a[1]);
                out.data[(o + n) * plane + stride + 1 + k0..][..valid]
                    .copy_from_slice(&lanes[..valid]);
            }
            k0 += MAX_LANES;
        }
    }
}

/// Zeroes the two padding positions per row that a convolution sweep overwrote: the right pad of
/// row `y+1` and the left pad of row `y+2` (padded coordinates).
fn clear_padding(plane: &mut [f32], height: usize, width: usize) {
    let stride = width + 2;
    for y in 0..height {
        plane[(y + 1) * stride + width + 1] = 0.0;
        plane[(y + 2) * stride] = 0.0;
    }
}

/// One residual block: `h + conv2(relu(conv1(relu(h))))`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualBlock {
    pub conv1: Conv3x3,
    pub conv2: Conv3x3,
}

/// A coupling or prior network:
/// `conv_out(relu(blocks(conv_in(x))))`, see [`crate::arch`].
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    conv_in: Conv3x3,
    blocks: Vec<ResidualBlock>,
    conv_out: Conv3x3,
    /// The linear path of a prior network (`prior_skip`), input → output.
    skip: Option<Conv3x3>,
}

impl Network {
    /// Assembles a network; the channel counts of consecutive convolutions must chain, and a
    /// `skip` must map the network's input channels to its output channels.
    pub fn new(
        conv_in: Conv3x3,
        blocks: Vec<ResidualBlock>,
        conv_out: Conv3x3,
        skip: Option<Conv3x3>,
    ) -> Result<Self> {
        let hidden = conv_in.out_channels;
        let chained = blocks.iter().all(|b| {
            (
                b.conv1.in_channels,
                b.conv1.out_channels,
                b.conv2.in_channels,
                b.conv2.out_channels,
            ) == (hidden, hidden, hidden, hidden)
        }) && conv_out.in_channels == hidden
            && skip.as_ref().map_or(true, |s| {
                (s.in_channels, s.out_channels) == (conv_in.in_channels, conv_out.out_channels)
            });
        if !chained {
            return Err(CodecError::InvalidModel(
                "network layers do not chain".into(),
            ));
        }
        Ok(Network {
            conv_in,
            blocks,
            conv_out,
            skip,
        })
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.conv_in.in_channels
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv_out.out_channels
    }

    /// Runs the network on a CHW tensor.
    ///
    /// # Panics
    /// If the tensor's channel count differs from [`Network::in_channels`] (a caller bug).
    pub fn forward(&self, input: &FloatTensor) -> FloatTensor {
        let input = Padded::from_tensor(input);
        let mut h = self.conv_in.apply_padded(&input);
        for block in &self.blocks {
            let r = block
                .conv2
                .apply_padded(&block.conv1.apply_padded(&h.relu()).relu());
            h.add_assign(&r);
        }
        let mut y = self.conv_out.apply_padded(&h.relu());
        if let Some(skip) = &self.skip {
            y.add_assign(&skip.apply_padded(&input));
        }
        y.to_tensor()
    }

    /// The parameter tensors in [`crate::arch::IdfConfig::tensor_specs`] order:
    /// `conv_in` weight and bias, each block's `conv1` and `conv2`, then `conv_out`, then the
    /// skip's.
    pub fn tensors(&self) -> Vec<&[f32]> {
        let mut convs = vec![&self.conv_in];
        for b in &self.blocks {
            convs.push(&b.conv1);
            convs.push(&b.conv2);
        }
        convs.push(&self.conv_out);
        convs.extend(&self.skip);
        convs
            .into_iter()
            .flat_map(|c| [c.weight.as_slice(), c.bias.as_slice()])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(shape: Shape) -> IntTensor {
        Tensor::from_vec(shape, (0..shape.len() as i32).collect()).unwrap()
    }

    /// Straightforward reference convolution with explicit bounds checks.
    fn reference_conv(conv: &Conv3x3, x: &FloatTensor) -> FloatTensor {
        let Shape {
            height: h,
            width: w,
            ..
        } = x.shape();
        let mut out = FloatTensor::zeros(Shape::new(conv.out_channels, h, w));
        for o in 0..conv.out_channels {
            for y in 0..h {
                for xx in 0..w {
                    let mut acc = conv.bias[o];
                    for i in 0..conv.in_channels {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (sy, sx) =
                                    (y as isize + ky as isize - 1, xx as isize + kx as isize - 1);
                                let v = if sy < 0 || sx < 0 || sy >= h as isize || sx >= w as isize
                                {
                                    0.0
                                } else {
                                    x.channel(i)[sy as usize * w + sx as usize]
                                };
                                acc +=
                                    conv.weight[((o * conv.in_channels + i) * 3 + ky) * 3 + kx] * v;
                            }
                        }
                    }
                    out.data[(o * h + y) * w + xx] = acc;
                }
            }
        }
        out
    }

    fn pseudo_random(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// The convolution as this CPU runs it (`apply`) and each compiled variant of its kernel
    /// against the reference, at output counts around the block size and widths around the lane
    /// counts.
    #[test]
    fn every_kernel_variant_matches_reference_bit_for_bit() {
        type Variant = fn(&Conv3x3, &Padded, &mut Padded);
        let mut variants: Vec<(&str, Variant)> = vec![("portable", kernel::convolve_portable)];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 support checked just above.
            variants.push(("avx2", |c, i, o| unsafe { kernel::convolve_avx2(c, i, o) }));
        }
        let run = |variant: Variant, conv: &Conv3x3, x: &FloatTensor| {
            let Shape { height, width, .. } = x.shape();
            let mut out = Padded::zeros(conv.out_channels, height, width);
            variant(conv, &Padded::from_tensor(x), &mut out);
            for dst in out.data.chunks_exact_mut(Padded::plane_len(height, width)) {
                clear_padding(dst, height, width);
            }
            out.to_tensor()
        };
        let bits = |t: &FloatTensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        for &(cin, cout, h, w) in &[
            (1, 1, 1, 1),
            (2, 3, 4, 5),
            (3, 2, 7, 1),
            (4, 5, 6, 9),
            (3, 1, 2, 2),
            (2, 5, 7, 7),
            (5, 9, 3, 17),
            (1, 8, 14, 14),
        ] {
            let conv = Conv3x3::new(
                cin,
                cout,
                pseudo_random(cout * cin * 9, 1),
                pseudo_random(cout, 2),
            )
            .unwrap();
            let shape = Shape::new(cin, h, w);
            let x = Tensor::from_vec(shape, pseudo_random(shape.len(), 3)).unwrap();
            let want = reference_conv(&conv, &x);
            let got = conv.apply(&x);
            assert_eq!(got.shape(), want.shape());
            assert_eq!(bits(&got), bits(&want), "conv {cin}→{cout} on {h}×{w}");
            for &(name, variant) in &variants {
                let got = run(variant, &conv, &x);
                assert_eq!(
                    bits(&got),
                    bits(&want),
                    "{name} conv {cin}→{cout} on {h}×{w}"
                );
            }
        }
    }

    #[test]
    fn squeeze_matches_pytorch_layout_and_inverts() {
        let x = ramp(Shape::new(2, 4, 6));
        let s = x.squeeze();
        assert_eq!(s.shape(), Shape::new(8, 2, 3));
        // out[c*4 + dy*2 + dx][y][xx] = in[c][2y+dy][2xx+dx]
        for c in 0..2 {
            for dy in 0..2 {
                for dx in 0..2 {
                    for y in 0..2 {
                        for xx in 0..3 {
                            let want = x.channel(c)[(2 * y + dy) * 6 + 2 * xx + dx];
                            assert_eq!(s.channel(c * 4 + dy * 2 + dx)[y * 3 + xx], want);
                        }
                    }
                }
            }
        }
        assert_eq!(s.unsqueeze(), x);
    }

    #[test]
    fn phases_are_phase_major_and_invert() {
        let x = ramp(Shape::new(3, 4, 6));
        let p = x.phases();
        assert_eq!(p.shape(), Shape::new(12, 2, 3));
        for c in 0..3 {
            for (phase, (dy, dx)) in [(0, 0), (0, 1), (1, 0), (1, 1)].into_iter().enumerate() {
                for y in 0..2 {
                    for xx in 0..3 {
                        let want = x.channel(c)[(2 * y + dy) * 6 + 2 * xx + dx];
                        assert_eq!(p.channel(phase * 3 + c)[y * 3 + xx], want);
                    }
                }
            }
        }
        assert_eq!(p.unphases(), x);
    }

    #[test]
    fn channel_ops() {
        let x = ramp(Shape::new(3, 2, 2));
        let (a, b) = x.split_channels(1);
        assert_eq!(a.data(), &[0, 1, 2, 3]);
        assert_eq!(IntTensor::concat_channels(&a, &b), x);
        let r = x.reverse_channels();
        assert_eq!(r.channel(0), x.channel(2));
        assert_eq!(r.channel(2), x.channel(0));
        assert_eq!(r.reverse_channels(), x);
        assert!(IntTensor::from_vec(Shape::new(1, 2, 2), vec![0; 3]).is_err());
    }

    #[test]
    fn network_matches_unpadded_composition() {
        let conv = |cin, cout, seed| {
            Conv3x3::new(
                cin,
                cout,
                pseudo_random(cout * cin * 9, seed),
                pseudo_random(cout, seed + 1),
            )
            .unwrap()
        };
        let block = ResidualBlock {
            conv1: conv(4, 4, 10),
            conv2: conv(4, 4, 20),
        };
        let net = Network::new(conv(2, 4, 30), vec![block.clone()], conv(4, 3, 40), None).unwrap();
        let shape = Shape::new(2, 5, 3);
        let x = Tensor::from_vec(shape, pseudo_random(shape.len(), 50)).unwrap();
        let h = net.conv_in.apply(&x);
        let h = h.add(&block.conv2.apply(&block.conv1.apply(&h.relu()).relu()));
        let want = net.conv_out.apply(&h.relu());
        assert_eq!(net.forward(&x), want);
        // a prior's skip adds a linear convolution of the input
        let skip = conv(2, 3, 60);
        let skipped = Network::new(
            conv(2, 4, 30),
            vec![block.clone()],
            conv(4, 3, 40),
            Some(skip.clone()),
        )
        .unwrap();
        assert_eq!(skipped.forward(&x), want.add(&skip.apply(&x)));
        assert!(Network::new(
            conv(2, 4, 30),
            vec![block],
            conv(4, 3, 40),
            Some(conv(3, 3, 60))
        )
        .is_err());
    }
}
