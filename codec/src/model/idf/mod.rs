//! The integer discrete flow (IDF) family on the coding path:
//!
//! - [`arch`]: the architecture, described once ([`IdfConfig`]: config, network list, tensor
//!   names, mixture layout, flow semantics), shared with training;
//! - [`Idf`] (`weights.rs`): an IDF model file loaded as networks for the engine;
//! - [`flow`]: the flow run on the engine, forward and inverse, and its NLL;
//! - [`coding`]: its latents on an ANS stream, and its `PlaneModel` implementation.

pub mod arch;
pub mod coding;
pub mod flow;
mod weights;

pub use arch::IdfConfig;
pub use coding::{decode_image, encode_image, pop_image, push_image};
pub use weights::Idf;

use constriction::stream::stack::DefaultAnsCoder;

use super::planes::PlaneModel;
use crate::format::Version;
use crate::Result;

impl PlaneModel for Idf {
    fn planes(&self) -> usize {
        self.config().in_channels
    }

    fn size_multiple(&self) -> usize {
        self.config().size_multiple()
    }

    fn bytes_per_pixel(&self) -> u64 {
        let c = self.config();
        8 * c.hidden as u64 + c.in_channels as u64 * (24 * c.mixtures as u64 + 64)
    }

    /// Every version codes the same way (`_version`).
    fn push(
        &self,
        coder: &mut DefaultAnsCoder,
        planes: &[u8],
        (height, width): (usize, usize),
        _version: Version,
    ) -> Result<()> {
        push_image(coder, self, planes, self.planes(), height, width)
    }

    fn pop(
        &self,
        coder: &mut DefaultAnsCoder,
        (height, width): (usize, usize),
        _version: Version,
        floor: u64,
    ) -> Result<Vec<u8>> {
        pop_image(coder, self, (self.planes(), height, width), floor)
    }
}
