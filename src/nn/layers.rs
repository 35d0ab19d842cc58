//! Layers the image families share: an image → vector network (a VAE's encoder, a GAN's critic)
//! and a vector → image network (a VAE's decoder, a GAN's generator), each a two-hidden-layer
//! MLP, a two-stage strided convolutional network or a residual network ([`Arch`]).
//!
//! Convolutional: `C×S×S → w×S/2×S/2 → 2w×S/4×S/4 → linear`, and back with transposed
//! convolutions (kernel 4, stride 2, padding 1), so `S` must be a multiple of 4 (28 and 32 are).
//! MLP: `C·S·S → w → w → out` and back.
//!
//! Residual (`resnet`, the codec's `VaeArch::Resnet`, built only from the operations of its
//! deterministic engine: 3×3 convolutions with stride 1 and padding 1, ReLU, sums, space-to-depth
//! [`squeeze`] and its inverse [`unsqueeze`]; `S` a multiple of 4). A residual block is
//! `h + conv2(relu(conv1(relu(h))))`; `blocks` of them at each of the two inner resolutions.
//! - Encoder: `squeeze(x)` (`4C×S/2`) → `stem` (4C → w) → `res0` blocks → ReLU → `squeeze`
//!   (`4w×S/4`) → `down` (4w → w) → `res1` blocks → ReLU → flatten (CHW) → `fc` (→ out).
//! - Decoder: `fc` (in → w·(S/4)², reshaped `w×S/4×S/4`) → `res0` blocks → ReLU → `up0`
//!   (w → 4w) → `unsqueeze` (`w×S/2`) → `res1` blocks → ReLU → `up1` (w → 4w) → `unsqueeze`
//!   (`w×S`) → ReLU → `out` (w → out channels).

use serde::{Deserialize, Serialize};
use tch::nn::{self, Module};
use tch::Tensor;

/// Which network shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Two hidden fully connected layers of `width`.
    Mlp,
    /// Two strided convolutions of `width` and `2·width` channels, then a linear layer.
    Conv,
    /// Residual blocks of `width` channels at two resolutions (see the module docs).
    Resnet,
}

impl Arch {
    /// Image sides must be multiples of this.
    pub fn size_multiple(self) -> usize {
        match self {
            Arch::Mlp => 1,
            Arch::Conv | Arch::Resnet => 4,
        }
    }
}

/// The hidden units' non-linearity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    Relu,
    /// Leaky ReLU with slope 0.2 (the usual choice in critics).
    LeakyRelu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> Tensor {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu => x.maximum(&(x * 0.2)),
        }
    }
}

/// The hidden size of an image network: its width (units or channels) and, for
/// [`Arch::Resnet`], the residual blocks at each resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hidden {
    pub width: usize,
    pub blocks: usize,
}

impl Hidden {
    /// A width without residual blocks (the MLP and strided convolutional shapes).
    pub fn width(width: usize) -> Self {
        Hidden { width, blocks: 0 }
    }
}

/// The shape of an image: channels and side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub size: usize,
}

impl ImageShape {
    fn dims(self) -> i64 {
        (self.channels * self.size * self.size) as i64
    }
}

fn conv_config() -> nn::ConvConfig {
    nn::ConvConfig {
        stride: 2,
        padding: 1,
        ..Default::default()
    }
}

fn conv_t_config() -> nn::ConvTransposeConfig {
    nn::ConvTransposeConfig {
        stride: 2,
        padding: 1,
        ..Default::default()
    }
}

fn conv3x3(p: nn::Path, cin: i64, cout: i64) -> nn::Conv2D {
    let cfg = nn::ConvConfig {
        padding: 1,
        ..Default::default()
    };
    nn::conv2d(p, cin, cout, 3, cfg)
}

/// Space-to-depth: `N×C×H×W → N×4C×H/2×W/2`, output channel `c·4 + dy·2 + dx` holds pixel
/// `(2y+dy, 2x+dx)` of channel `c` (the engine's `squeeze`, the IDF's).
pub use super::idf::squeeze;

/// Depth-to-space, the exact inverse of [`squeeze`] (the engine's `unsqueeze`).
pub fn unsqueeze(x: &Tensor) -> Tensor {
    let (n, c, h, w) = x.size4().expect("unsqueeze needs a 4-d tensor");
    x.reshape([n, c / 4, 2, 2, h, w])
        .permute([0, 1, 4, 2, 5, 3])
        .reshape([n, c / 4, 2 * h, 2 * w])
}

/// `blocks` residual blocks `h + conv2(act(conv1(act(h))))` of `width` channels, under
/// `p/{k}/conv1` and `p/{k}/conv2`.
struct ResidualBlocks(Vec<(nn::Conv2D, nn::Conv2D)>);

impl ResidualBlocks {
    fn new(p: &nn::Path, width: i64, blocks: usize) -> Self {
        ResidualBlocks(
            (0..blocks)
                .map(|k| {
                    let bp = p / k;
                    (
                        conv3x3(&bp / "conv1", width, width),
                        conv3x3(&bp / "conv2", width, width),
                    )
                })
                .collect(),
        )
    }

    fn forward(&self, mut h: Tensor, act: Activation) -> Tensor {
        for (c1, c2) in &self.0 {
            h = &h + act.apply(&act.apply(&h).apply(c1)).apply(c2);
        }
        h
    }
}

/// The residual encoder (see the module docs).
struct ResnetDown {
    stem: nn::Conv2D,
    res0: ResidualBlocks,
    down: nn::Conv2D,
    res1: ResidualBlocks,
    fc: nn::Linear,
}

impl ResnetDown {
    fn new(p: &nn::Path, shape: ImageShape, hidden: Hidden, out: i64) -> Self {
        let (w, s4) = (hidden.width as i64, (shape.size / 4) as i64);
        ResnetDown {
            stem: conv3x3(p / "stem", 4 * shape.channels as i64, w),
            res0: ResidualBlocks::new(&(p / "res0"), w, hidden.blocks),
            down: conv3x3(p / "down", 4 * w, w),
            res1: ResidualBlocks::new(&(p / "res1"), w, hidden.blocks),
            fc: nn::linear(p / "fc", w * s4 * s4, out, Default::default()),
        }
    }

    fn forward(&self, x: &Tensor, act: Activation) -> Tensor {
        let h = self.res0.forward(squeeze(x).apply(&self.stem), act);
        let h = squeeze(&act.apply(&h)).apply(&self.down);
        let h = act.apply(&self.res1.forward(h, act));
        self.fc.forward(&h.flatten(1, -1))
    }
}

/// The residual decoder (see the module docs).
struct ResnetUp {
    fc: nn::Linear,
    res0: ResidualBlocks,
    up0: nn::Conv2D,
    res1: ResidualBlocks,
    up1: nn::Conv2D,
    out: nn::Conv2D,
    width: i64,
}

impl ResnetUp {
    fn new(p: &nn::Path, input: i64, out: ImageShape, hidden: Hidden) -> Self {
        let (w, s4) = (hidden.width as i64, (out.size / 4) as i64);
        ResnetUp {
            fc: nn::linear(p / "fc", input, w * s4 * s4, Default::default()),
            res0: ResidualBlocks::new(&(p / "res0"), w, hidden.blocks),
            up0: conv3x3(p / "up0", w, 4 * w),
            res1: ResidualBlocks::new(&(p / "res1"), w, hidden.blocks),
            up1: conv3x3(p / "up1", w, 4 * w),
            out: conv3x3(p / "out", w, out.channels as i64),
            width: w,
        }
    }

    fn forward(&self, z: &Tensor, size: i64, act: Activation) -> Tensor {
        let (n, s4) = (z.size()[0], size / 4);
        let h = self.fc.forward(z).reshape([n, self.width, s4, s4]);
        let h = self.res0.forward(h, act);
        let h = unsqueeze(&act.apply(&h).apply(&self.up0));
        let h = self.res1.forward(h, act);
        let h = unsqueeze(&act.apply(&h).apply(&self.up1));
        act.apply(&h).apply(&self.out)
    }
}

// one per network, built once: the variants' sizes do not matter
#[allow(clippy::large_enum_variant)]
enum Down {
    Mlp(Vec<nn::Linear>),
    Conv {
        c1: nn::Conv2D,
        c2: nn::Conv2D,
        fc: nn::Linear,
    },
    Resnet(ResnetDown),
}

/// Image (`N×C×S×S`, values scaled to about `[-1, 1]`) → `N×out`.
pub struct ImageToVector {
    body: Down,
    act: Activation,
}

impl ImageToVector {
    pub fn new(
        p: &nn::Path,
        arch: Arch,
        shape: ImageShape,
        hidden: Hidden,
        out: usize,
        act: Activation,
    ) -> Self {
        let (w, out) = (hidden.width as i64, out as i64);
        let body = match arch {
            Arch::Mlp => Down::Mlp(vec![
                nn::linear(p / "fc0", shape.dims(), w, Default::default()),
                nn::linear(p / "fc1", w, w, Default::default()),
                nn::linear(p / "fc2", w, out, Default::default()),
            ]),
            Arch::Conv => {
                let s4 = (shape.size / 4) as i64;
                Down::Conv {
                    c1: nn::conv2d(p / "conv0", shape.channels as i64, w, 4, conv_config()),
                    c2: nn::conv2d(p / "conv1", w, 2 * w, 4, conv_config()),
                    fc: nn::linear(p / "fc", 2 * w * s4 * s4, out, Default::default()),
                }
            }
            Arch::Resnet => Down::Resnet(ResnetDown::new(p, shape, hidden, out)),
        };
        ImageToVector { body, act }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        match &self.body {
            Down::Mlp(layers) => {
                let mut h = x.flatten(1, -1);
                for (i, l) in layers.iter().enumerate() {
                    h = l.forward(&h);
                    if i + 1 < layers.len() {
                        h = self.act.apply(&h);
                    }
                }
                h
            }
            Down::Conv { c1, c2, fc } => {
                let h = self.act.apply(&c1.forward(x));
                let h = self.act.apply(&c2.forward(&h));
                fc.forward(&h.flatten(1, -1))
            }
            Down::Resnet(net) => net.forward(x, self.act),
        }
    }
}

#[allow(clippy::large_enum_variant)]
enum Up {
    Mlp(Vec<nn::Linear>),
    Conv {
        fc: nn::Linear,
        t1: nn::ConvTranspose2D,
        t2: nn::ConvTranspose2D,
        width: i64,
    },
    Resnet(ResnetUp),
}

/// `N×in` → image-shaped raw outputs `N×(out_channels)×S×S` (no final non-linearity).
pub struct VectorToImage {
    body: Up,
    act: Activation,
    out_channels: i64,
    size: i64,
}

impl VectorToImage {
    pub fn new(
        p: &nn::Path,
        arch: Arch,
        input: usize,
        out: ImageShape,
        hidden: Hidden,
        act: Activation,
    ) -> Self {
        let (w, input) = (hidden.width as i64, input as i64);
        let body = match arch {
            Arch::Mlp => Up::Mlp(vec![
                nn::linear(p / "fc0", input, w, Default::default()),
                nn::linear(p / "fc1", w, w, Default::default()),
                nn::linear(p / "fc2", w, out.dims(), Default::default()),
            ]),
            Arch::Conv => {
                let s4 = (out.size / 4) as i64;
                Up::Conv {
                    fc: nn::linear(p / "fc", input, 2 * w * s4 * s4, Default::default()),
                    t1: nn::conv_transpose2d(p / "deconv0", 2 * w, w, 4, conv_t_config()),
                    t2: nn::conv_transpose2d(
                        p / "deconv1",
                        w,
                        out.channels as i64,
                        4,
                        conv_t_config(),
                    ),
                    width: w,
                }
            }
            Arch::Resnet => Up::Resnet(ResnetUp::new(p, input, out, hidden)),
        };
        VectorToImage {
            body,
            act,
            out_channels: out.channels as i64,
            size: out.size as i64,
        }
    }

    pub fn forward(&self, z: &Tensor) -> Tensor {
        let n = z.size()[0];
        match &self.body {
            Up::Mlp(layers) => {
                let mut h = z.shallow_clone();
                for (i, l) in layers.iter().enumerate() {
                    h = l.forward(&h);
                    if i + 1 < layers.len() {
                        h = self.act.apply(&h);
                    }
                }
                h.reshape([n, self.out_channels, self.size, self.size])
            }
            Up::Conv { fc, t1, t2, width } => {
                let s4 = self.size / 4;
                let h = self
                    .act
                    .apply(&fc.forward(z))
                    .reshape([n, 2 * width, s4, s4]);
                let h = self.act.apply(&t1.forward(&h));
                t2.forward(&h)
            }
            Up::Resnet(net) => net.forward(z, self.size, self.act),
        }
    }
}

/// Checks the image side and channels of an image network: 1 or 3 channels, a side of at least
/// 4 that is a multiple of [`Arch::size_multiple`].
pub fn validate_image(arch: Arch, channels: usize, size: usize) -> Result<(), String> {
    if channels != 1 && channels != 3 {
        return Err(format!("model.in_channels must be 1 or 3, not {channels}"));
    }
    let m = arch.size_multiple();
    if size < 4 || size % m != 0 {
        return Err(format!(
            "model.image_size must be at least 4{}, not {size}",
            if m > 1 {
                format!(" and a multiple of {m} for arch = \"conv\" or \"resnet\"")
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}

/// Parameters of a `VarStore`, counted.
pub fn count_parameters(vs: &nn::VarStore) -> usize {
    vs.variables().values().map(|t| t.numel()).sum()
}

/// Pixels (float, `0..=255`) → the networks' input scale `[-1, 1]`.
pub fn to_unit(x: &Tensor) -> Tensor {
    x / 127.5 - 1.0
}

/// The networks' scale `[-1, 1]` → pixels (float, `0..=255`, clamped).
pub fn to_pixels(u: &Tensor) -> Tensor {
    ((u + 1.0) * 127.5).clamp(0.0, 255.0)
}

/// A vector → vector MLP `in → width → width → out` (layers `fc0`, `fc1`, `fc2`; the
/// activation between them, none after the last): the upper layers of a hierarchical VAE.
pub struct Mlp {
    layers: Vec<nn::Linear>,
    act: Activation,
}

impl Mlp {
    pub fn new(p: &nn::Path, input: usize, width: usize, out: usize, act: Activation) -> Self {
        let (i, w, o) = (input as i64, width as i64, out as i64);
        Mlp {
            layers: vec![
                nn::linear(p / "fc0", i, w, Default::default()),
                nn::linear(p / "fc1", w, w, Default::default()),
                nn::linear(p / "fc2", w, o, Default::default()),
            ],
            act,
        }
    }

    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for (i, l) in self.layers.iter().enumerate() {
            h = l.forward(&h);
            if i + 1 < self.layers.len() {
                h = self.act.apply(&h);
            }
        }
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, Kind};

    #[test]
    fn both_shapes_map_images_to_vectors_and_back() {
        for (arch, size) in [
            (Arch::Mlp, 28),
            (Arch::Conv, 28),
            (Arch::Conv, 32),
            (Arch::Resnet, 28),
            (Arch::Resnet, 32),
        ] {
            let vs = nn::VarStore::new(Device::Cpu);
            let shape = ImageShape { channels: 3, size };
            let hidden = Hidden {
                width: 8,
                blocks: 2,
            };
            let down =
                ImageToVector::new(&vs.root(), arch, shape, hidden, 5, Activation::LeakyRelu);
            let up = VectorToImage::new(
                &(vs.root() / "up"),
                arch,
                5,
                shape,
                hidden,
                Activation::Relu,
            );
            let x = Tensor::zeros([2, 3, size as i64, size as i64], (Kind::Float, Device::Cpu));
            let v = down.forward(&x);
            assert_eq!(v.size(), [2, 5]);
            assert_eq!(up.forward(&v).size(), [2, 3, size as i64, size as i64]);
        }
    }

    #[test]
    fn unsqueeze_inverts_squeeze() {
        let x = Tensor::arange(2 * 3 * 4 * 6, (Kind::Float, Device::Cpu)).reshape([2, 3, 4, 6]);
        let s = squeeze(&x);
        assert_eq!(s.size(), [2, 12, 2, 3]);
        assert!(unsqueeze(&s).equal(&x));
    }
}
