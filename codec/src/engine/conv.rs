//! 3×3 convolutions in the zero-padded layout, and the kernels that run them (portable, AVX2).

use super::{FloatTensor, Shape, Tensor};
use crate::{CodecError, Result};

/// Activations in the zero-padded layout used inside networks (see the module docs).
#[derive(Clone, Debug)]
pub(crate) struct Padded {
    pub(crate) channels: usize,
    pub(crate) height: usize,
    pub(crate) width: usize,
    pub(crate) data: Vec<f32>,
}

impl Padded {
    pub(crate) fn zeros(channels: usize, height: usize, width: usize) -> Self {
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
    pub(crate) fn plane_len(height: usize, width: usize) -> usize {
        (height + 2) * (width + 2) + 2 + kernel::MAX_LANES
    }

    fn stride(&self) -> usize {
        self.width + 2
    }

    fn plane(&self, c: usize) -> &[f32] {
        let p = Self::plane_len(self.height, self.width);
        &self.data[c * p..(c + 1) * p]
    }

    pub(crate) fn from_tensor(t: &FloatTensor) -> Self {
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

    pub(crate) fn to_tensor(&self) -> FloatTensor {
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
    pub(crate) fn relu(&self) -> Self {
        Padded {
            data: self.data.iter().map(|v| v.max(0.0)).collect(),
            ..*self
        }
    }

    /// `self += other`; padding stays zero.
    pub(crate) fn add_assign(&mut self, other: &Padded) {
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

    pub(crate) fn apply_padded(&self, input: &Padded) -> Padded {
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
pub(crate) mod kernel {
    use super::{Conv3x3, Padded};

    /// Positions the AVX2 variant computes at once (two 8-lane registers): the spare elements
    /// [`Padded`] planes carry, so that the last block reads zeros instead of running off.
    pub(super) const MAX_LANES: usize = 16;

    /// `out` (already zero, same geometry as `input`) ← `conv(input)`; the two padding columns
    /// per row are written too and must be cleared by the caller.
    pub(crate) fn convolve(conv: &Conv3x3, input: &Padded, out: &mut Padded) {
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
    pub(crate) fn convolve_portable(conv: &Conv3x3, input: &Padded, out: &mut Padded) {
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
    pub(crate) unsafe fn convolve_avx2(conv: &Conv3x3, input: &Padded, out: &mut Padded) {
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
pub(crate) fn clear_padding(plane: &mut [f32], height: usize, width: usize) {
    let stride = width + 2;
    for y in 0..height {
        plane[(y + 1) * stride + width + 1] = 0.0;
        plane[(y + 2) * stride] = 0.0;
    }
}
