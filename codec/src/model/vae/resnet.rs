//! The residual encoder and decoder of a `resnet` VAE on the engine (the op order of
//! [`crate::model::vae::arch`]'s module docs, the training side's `src/nn/layers.rs`).

use super::arch::{LayerKind, LayerSpec, VaeConfig};
use crate::engine::{residual_blocks, Conv3x3, Dense, FloatTensor, ResidualBlock, Shape};
use crate::model::file::invalid;
use crate::Result;

/// A layer of the file built for the engine.
pub(super) enum Layer {
    Dense(Dense),
    Conv(Conv3x3),
}

impl Layer {
    /// The layer `spec` from its weight and bias (shapes checked by the constructors).
    pub(super) fn new(spec: &LayerSpec, weight: Vec<f32>, bias: Vec<f32>) -> Result<Layer> {
        Ok(match spec.kind {
            LayerKind::Dense => Layer::Dense(Dense::new(spec.inputs, spec.outputs, weight, bias)?),
            LayerKind::Conv3x3 => {
                Layer::Conv(Conv3x3::new(spec.inputs, spec.outputs, weight, bias)?)
            }
        })
    }
}

/// Takes the next layers of the file, in [`VaeConfig::resnet_layers`] order.
struct Layers<I>(I);

impl<I: Iterator<Item = Layer>> Layers<I> {
    fn dense(&mut self) -> Result<Dense> {
        match self.0.next() {
            Some(Layer::Dense(d)) => Ok(d),
            _ => Err(invalid("resnet layers out of order")),
        }
    }

    fn conv(&mut self) -> Result<Conv3x3> {
        match self.0.next() {
            Some(Layer::Conv(c)) => Ok(c),
            _ => Err(invalid("resnet layers out of order")),
        }
    }

    fn blocks(&mut self, n: usize) -> Result<Vec<ResidualBlock>> {
        (0..n)
            .map(|_| {
                Ok(ResidualBlock {
                    conv1: self.conv()?,
                    conv2: self.conv()?,
                })
            })
            .collect()
    }
}

/// `image → 2·latent`: `squeeze` → `stem` → `res0` → ReLU → `squeeze` → `down` → `res1` → ReLU
/// → flatten → `fc`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ResnetEncoder {
    stem: Conv3x3,
    res0: Vec<ResidualBlock>,
    down: Conv3x3,
    res1: Vec<ResidualBlock>,
    fc: Dense,
}

/// `latent → raw outputs`: `fc` → `res0` → ReLU → `up0` → `unsqueeze` → `res1` → ReLU → `up1` →
/// `unsqueeze` → ReLU → `out`.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct ResnetDecoder {
    fc: Dense,
    res0: Vec<ResidualBlock>,
    up0: Conv3x3,
    res1: Vec<ResidualBlock>,
    up1: Conv3x3,
    out: Conv3x3,
    /// The decoder's first feature map: `hidden × S/4 × S/4`.
    inner: Shape,
}

/// The residual encoder and decoder of `config` from its layers in
/// [`VaeConfig::resnet_layers`] order (the iterator is left at the first layer after them).
pub(super) fn build(
    config: &VaeConfig,
    blocks: usize,
    layers: impl Iterator<Item = Layer>,
) -> Result<(ResnetEncoder, ResnetDecoder)> {
    let mut l = Layers(layers);
    let encoder = ResnetEncoder {
        stem: l.conv()?,
        res0: l.blocks(blocks)?,
        down: l.conv()?,
        res1: l.blocks(blocks)?,
        fc: l.dense()?,
    };
    let s4 = config.image_size / 4;
    let decoder = ResnetDecoder {
        fc: l.dense()?,
        res0: l.blocks(blocks)?,
        up0: l.conv()?,
        res1: l.blocks(blocks)?,
        up1: l.conv()?,
        out: l.conv()?,
        inner: Shape::new(config.hidden, s4, s4),
    };
    Ok((encoder, decoder))
}

fn convs(blocks: &[ResidualBlock]) -> impl Iterator<Item = &Conv3x3> {
    blocks.iter().flat_map(|b| [&b.conv1, &b.conv2])
}

fn conv_tensors(c: &Conv3x3) -> [&[f32]; 2] {
    [c.weight(), c.bias()]
}

impl ResnetEncoder {
    /// `x`: the image scaled to `[-1, 1]`, `C×S×S`.
    pub(super) fn forward(&self, x: FloatTensor) -> Result<Vec<f32>> {
        let h = residual_blocks(&self.res0, &self.stem.apply(&x.squeeze()));
        let h = residual_blocks(&self.res1, &self.down.apply(&h.relu().squeeze()));
        self.fc.forward(h.relu().data())
    }

    /// Weights and biases in file order.
    pub(super) fn tensors(&self) -> Vec<&[f32]> {
        let mut v: Vec<&[f32]> = conv_tensors(&self.stem).to_vec();
        v.extend(convs(&self.res0).flat_map(conv_tensors));
        v.extend(conv_tensors(&self.down));
        v.extend(convs(&self.res1).flat_map(conv_tensors));
        v.extend(self.fc.tensors());
        v
    }
}

impl ResnetDecoder {
    pub(super) fn forward(&self, z: &[f32]) -> Result<Vec<f32>> {
        let h = FloatTensor::from_vec(self.inner, self.fc.forward(z)?)?;
        let h = residual_blocks(&self.res0, &h);
        let h = residual_blocks(&self.res1, &self.up0.apply(&h.relu()).unsqueeze());
        let h = self.up1.apply(&h.relu()).unsqueeze();
        Ok(self.out.apply(&h.relu()).into_data())
    }

    /// Weights and biases in file order.
    pub(super) fn tensors(&self) -> Vec<&[f32]> {
        let mut v: Vec<&[f32]> = self.fc.tensors().to_vec();
        v.extend(convs(&self.res0).flat_map(conv_tensors));
        v.extend(conv_tensors(&self.up0));
        v.extend(convs(&self.res1).flat_map(conv_tensors));
        v.extend(conv_tensors(&self.up1));
        v.extend(conv_tensors(&self.out));
        v
    }
}
