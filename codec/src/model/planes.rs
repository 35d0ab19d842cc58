//! What the image pipeline asks of a learned model: [`PlaneModel`], the one interface a family
//! implements to code the leading 8-bit planes of a tile (the IDF now; a VAE with bits-back
//! coding next).

use constriction::stream::stack::DefaultAnsCoder;

use crate::format::Version;
use crate::Result;

/// A learned model of a tile's first [`planes`](PlaneModel::planes) 8-bit sample planes (the
/// gray plane of gray8 and gray+alpha 8 images, or the red, green and blue planes of rgb8),
/// each padded to a multiple of [`size_multiple`](PlaneModel::size_multiple) by edge
/// replication. The context coder codes every other plane, with these as known context.
///
/// `push` and `pop` are exact inverses on one ANS stack: what `push` puts onto the stream, a
/// `pop` with the same model and size takes off again, bit-exact on every machine (the
/// family's networks run on the deterministic [`crate::engine`]).
pub(crate) trait PlaneModel: Sync {
    /// How many leading planes it codes (its input channels: 1 or 3).
    fn planes(&self) -> usize;
    /// Tile sides are padded to a multiple of this.
    fn size_multiple(&self) -> usize;
    /// An upper bound of its working memory per padded pixel while decoding, for the decoder's
    /// memory budget.
    fn bytes_per_pixel(&self) -> u64;
    /// Pushes `planes` (CHW: [`planes`](PlaneModel::planes) planes of `size = (height, width)`) onto
    /// `coder`, as a file of `version` codes them.
    fn push(
        &self,
        coder: &mut DefaultAnsCoder,
        planes: &[u8],
        size: (usize, usize),
        version: Version,
    ) -> Result<()>;
    /// Whether this model codes with bits back (its encoder pops bits off the stream before
    /// pushing). Then an honest stream may be below the pipeline's floor with no words left at
    /// the start of decoding or between this model's pops (a lone tile's posterior draws can
    /// take the stream dry), so the pipeline skips its early "data exhausted" stop before this
    /// model's part (the end-state check still holds); and archives chain their entries on one
    /// stream (version 4), so each entry's draws take the bits the entries before it pushed.
    fn bits_back(&self) -> bool {
        false
    }
    /// Pops what [`push`](PlaneModel::push) pushed for this size, stopping as soon as the
    /// stream runs dry below `floor` ([`crate::entropy::check_not_dry`]). Damaged data give an
    /// error, never a panic.
    fn pop(
        &self,
        coder: &mut DefaultAnsCoder,
        size: (usize, usize),
        version: Version,
        floor: u64,
    ) -> Result<Vec<u8>>;
}
