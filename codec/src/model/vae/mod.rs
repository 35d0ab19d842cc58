//! The variational autoencoder (VAE) family on the coding path, coded by bits-back ANS:
//!
//! - [`arch`]: the architecture, described once ([`VaeConfig`]: config, networks, tensor
//!   names, semantics), shared with training;
//! - [`Vae`] (`weights.rs`): a VAE model file loaded as engine networks (dense; `resnet.rs`: the
//!   residual encoder and decoder);
//! - [`coding`]: BB-ANS of its tiles (buckets, posterior and pixel tables), and its
//!   `PlaneModel` implementation here.

pub mod arch;
pub mod coding;
mod resnet;
mod weights;

pub use arch::{LatentGrids, VaeConfig};
pub use coding::{
    initial_bits, pop_block, pop_image, push_block, push_image, terms_at_mean, BucketGaussian,
    Buckets, Order, Posterior,
};
pub use weights::{Grid, Vae};

use constriction::stream::stack::DefaultAnsCoder;

use super::planes::PlaneModel;
use crate::entropy::BinnedStart;
use crate::format::Version;
use crate::Result;

/// How a file of `version` computes the pixel tables: exactly from version 6 on; versions 4
/// and 5 with the clamped start they were written with ([`BinnedStart`]).
pub fn pixel_tables(version: Version) -> BinnedStart {
    match version >= Version::V6 {
        true => BinnedStart::Exact,
        false => BinnedStart::Clamped,
    }
}

impl PlaneModel for Vae {
    fn planes(&self) -> usize {
        self.config().in_channels
    }

    fn size_multiple(&self) -> usize {
        self.config().image_size
    }

    fn bytes_per_pixel(&self) -> u64 {
        let c = self.config();
        c.in_channels as u64 * (12 * c.mixtures as u64 + 8) + 16
    }

    fn bits_back(&self) -> bool {
        true
    }

    fn push(
        &self,
        coder: &mut DefaultAnsCoder,
        planes: &[u8],
        size: (usize, usize),
        version: Version,
    ) -> Result<()> {
        push_image(coder, self, planes, size, pixel_tables(version))
    }

    /// Ignores `floor`: see the module docs of [`coding`] ("Tiles and the initial bits").
    fn pop(
        &self,
        coder: &mut DefaultAnsCoder,
        size: (usize, usize),
        version: Version,
        _floor: u64,
    ) -> Result<Vec<u8>> {
        pop_image(coder, self, size, pixel_tables(version))
    }
}
