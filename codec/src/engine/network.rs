//! `Network`: the residual convolutional network every learned family's nets are made of.

use super::conv::{Conv3x3, Padded};
use super::FloatTensor;

/// Residual blocks applied in turn to a CHW tensor (the padded layout kept between them):
/// `h ← h + conv2(relu(conv1(relu(h))))` per block.
///
/// # Panics
/// If a block's channel counts differ from the tensor's (a caller bug).
pub fn residual_blocks(blocks: &[ResidualBlock], x: &FloatTensor) -> FloatTensor {
    run_blocks(blocks, Padded::from_tensor(x)).to_tensor()
}

fn run_blocks(blocks: &[ResidualBlock], mut h: Padded) -> Padded {
    for block in blocks {
        let r = block
            .conv2
            .apply_padded(&block.conv1.apply_padded(&h.relu()).relu());
        h.add_assign(&r);
    }
    h
}
use crate::{CodecError, Result};

/// One residual block: `h + conv2(relu(conv1(relu(h))))`.
#[derive(Clone, Debug, PartialEq)]
pub struct ResidualBlock {
    pub conv1: Conv3x3,
    pub conv2: Conv3x3,
}

/// A coupling or prior network:
/// `conv_out(relu(blocks(conv_in(x))))`, see [`crate::model::idf::arch`].
#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    pub(crate) conv_in: Conv3x3,
    blocks: Vec<ResidualBlock>,
    pub(crate) conv_out: Conv3x3,
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
        let hidden = conv_in.out_channels();
        let chained = blocks.iter().all(|b| {
            (
                b.conv1.in_channels(),
                b.conv1.out_channels(),
                b.conv2.in_channels(),
                b.conv2.out_channels(),
            ) == (hidden, hidden, hidden, hidden)
        }) && conv_out.in_channels() == hidden
            && skip.as_ref().map_or(true, |s| {
                (s.in_channels(), s.out_channels())
                    == (conv_in.in_channels(), conv_out.out_channels())
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
        self.conv_in.in_channels()
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.conv_out.out_channels()
    }

    /// Runs the network on a CHW tensor.
    ///
    /// # Panics
    /// If the tensor's channel count differs from [`Network::in_channels`] (a caller bug).
    pub fn forward(&self, input: &FloatTensor) -> FloatTensor {
        let input = Padded::from_tensor(input);
        let h = run_blocks(&self.blocks, self.conv_in.apply_padded(&input));
        let mut y = self.conv_out.apply_padded(&h.relu());
        if let Some(skip) = &self.skip {
            y.add_assign(&skip.apply_padded(&input));
        }
        y.to_tensor()
    }

    /// The parameter tensors in [`crate::model::idf::arch::IdfConfig::tensor_specs`] order:
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
            .flat_map(|c| [c.weight(), c.bias()])
            .collect()
    }
}
