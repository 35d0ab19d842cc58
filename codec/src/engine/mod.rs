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
//! Activations inside a [`Network`] live in a zero-padded layout (`Padded`): each channel plane
//! is `(H+2)×(W+2)` plus spare zeros, so a 3×3 convolution of one input plane into one output plane
//! is nine shifted, contiguous multiply-adds over `H·(W+2)` elements; the kernel does four output
//! planes at once, in registers. The two padding columns per row the sweep writes as a side effect
//! are zeroed again afterwards.

mod conv;
mod dense;
mod network;

pub use conv::{kernel_variant, Conv3x3, CPU_VARIANT_VAR};
pub use dense::{relu_in_place, Dense};
pub use network::{residual_blocks, Network, ResidualBlock};

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
    /// holds `self[c][2i+dy][2j+dx]` (see [`crate::model::idf::arch`]). [`Tensor::squeeze`] with its
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

#[cfg(test)]
mod tests {
    use super::conv::{clear_padding, kernel, Padded};
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
        let mut out = FloatTensor::zeros(Shape::new(conv.out_channels(), h, w));
        for o in 0..conv.out_channels() {
            for y in 0..h {
                for xx in 0..w {
                    let mut acc = conv.bias()[o];
                    for i in 0..conv.in_channels() {
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
                                acc += conv.weight()
                                    [((o * conv.in_channels() + i) * 3 + ky) * 3 + kx]
                                    * v;
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
            let mut out = Padded::zeros(conv.out_channels(), height, width);
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
