//! Cutting an image into tiles, and padding each tile to the size the model needs.
//!
//! # Tiling (the encoder's choice, recorded in the header)
//! [`choose_tiling`]: an image that fits in one `side × side` square is coded whole
//! ([`Tiling::Whole`], no tile byte, no tile index: every MNIST image); a larger one is cut
//! into `side × side` tiles in raster order, clipped at the right and bottom edges
//! ([`crate::format::TileGrid::rect`]).
//!
//! # Padding (part of the codec's definition, format versions 1 to 3)
//! The model codes `H × W` only when both are multiples of `m = 2^levels`
//! ([`crate::IdfConfig::size_multiple`]). A tile of `h × w` pixels is coded as
//! `ceil(h/m)·m × ceil(w/m)·m` pixels: columns past the right edge repeat the tile's last
//! column, rows past the bottom edge repeat its last row (so the corner repeats the corner
//! pixel). Only the tile's own pixels are used, never its neighbours', so tiles stay
//! independent. Nothing about the padding is stored: the decoder derives it from the tile
//! rectangle and the model, codes the padded tile, checks that the padding is exactly the
//! replication above (anything else is a corrupt payload) and crops it.

use crate::format::{TileRect, Tiling, MAX_TILE_LOG2, MIN_TILE_LOG2};

/// Default tile side. Smaller tiles cost bits (each tile's networks see zero context past its
/// edges, and each adds an ANS flush and an index entry); larger ones leave fewer tiles to run
/// in parallel and ran slower per pixel (working set beyond the caches). Measured with
/// `idfcodec verify --threads 2 --tile N` on the six photos of `data/photos/test` converted to
/// grayscale (1.5 Mpx, 320×256 to 741×500), with a Fashion-MNIST model exported mid-training
/// (hidden 64, step 1402), debug build (codec at opt-level 2), on a shared 2-core machine:
///
/// | tile | 16 | 32 | 64 | **128** | 256 | 512 | 1024 |
/// |---|---|---|---|---|---|---|---|
/// | bpd | 6.047 | 5.517 | 5.382 | **5.333** | 5.316 | 5.309 | 5.306 |
/// | encode Mpx/s | 0.041 | 0.054 | 0.059 | **0.060** | 0.057 | 0.055 | 0.050 |
///
/// 128 is within 0.03 bpd (0.5 %) of 1024, the fastest per pixel, and still cuts a 640×400
/// image into 20 tiles for the thread pool. (1024 was measured before [`MAX_TILE_SIDE`] was
/// capped at 512.)
pub const DEFAULT_TILE_SIDE: u32 = 128;

/// Default tile side for images coded without a learned model (context coding only): its
/// adaptive statistics restart with every tile, so larger tiles code better, and it is fast
/// and small in memory (about `8·channels + 20` bytes per pixel of a tile while decoding).
/// Measured with `idfcodec verify --threads 2 --tile N` on the six RGB photos of
/// `data/photos/test` (release build, 2-core machine): 128: 2.8002 bpd, 256: 2.7712,
/// **512: 2.7617**.
pub const DEFAULT_CONTEXT_TILE_SIDE: u32 = 512;

/// Largest tile side the encoder writes. A tile is coded in one piece, with working memory
/// proportional to its area times the model's width: a 640×480 tile took about 110 MB more
/// than 128×128 tiles (hidden 64), and a decoder runs one tile per thread. 512 costs 0.003 bpd
/// over 1024 in the measurement above.
pub const MAX_TILE_SIDE: u32 = 512;
const _: () = assert!(MAX_TILE_SIDE.trailing_zeros() <= MAX_TILE_LOG2 as u32);

/// Largest tile, in pixels after padding, that the decoder accepts by default. A tiny hostile
/// file could otherwise declare one huge untiled image and make the decoder run its networks
/// over it. Equal to the largest tile the encoder writes.
pub const DEFAULT_MAX_TILE_PIXELS: u64 = (MAX_TILE_SIDE as u64) * (MAX_TILE_SIDE as u64);

/// Smallest tile side the format allows.
pub const MIN_TILE_SIDE: u32 = 1 << MIN_TILE_LOG2;

/// The tiling of a `width × height` image for tiles of `side` pixels: whole if it fits in one
/// tile, square tiles otherwise. `side` must already be valid ([`check_tile_side`]).
pub fn choose_tiling(width: u32, height: u32, side: u32) -> Tiling {
    if width <= side && height <= side {
        Tiling::Whole
    } else {
        Tiling::Square {
            log2: side.trailing_zeros() as u8,
        }
    }
}

/// Checks that `side` is a power of two from [`MIN_TILE_SIDE`] to [`MAX_TILE_SIDE`].
pub fn check_tile_side(side: u32) -> Result<(), String> {
    if side.is_power_of_two() && (MIN_TILE_SIDE..=MAX_TILE_SIDE).contains(&side) {
        Ok(())
    } else {
        Err(format!(
            "tile side {side} is not a power of two from {MIN_TILE_SIDE} to {MAX_TILE_SIDE}"
        ))
    }
}

/// `len` rounded up to a multiple of `multiple` (which is at least 1).
pub fn padded_len(len: u32, multiple: usize) -> usize {
    (len as usize).div_ceil(multiple) * multiple
}

/// A tile's rectangle in the image and the padded size it is coded at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileLayout {
    /// Where the tile lies in the image (clipped to it).
    pub rect: TileRect,
    /// Coded width: `rect.width` rounded up to the model's size multiple.
    pub padded_width: usize,
    /// Coded height: `rect.height` rounded up to the model's size multiple.
    pub padded_height: usize,
}

impl TileLayout {
    /// The layout of `rect` for a model whose sizes must be multiples of `multiple`.
    pub fn new(rect: TileRect, multiple: usize) -> Self {
        TileLayout {
            rect,
            padded_width: padded_len(rect.width, multiple),
            padded_height: padded_len(rect.height, multiple),
        }
    }

    /// Pixels coded for this tile, padding included.
    pub fn padded_pixels(&self) -> u64 {
        self.padded_width as u64 * self.padded_height as u64
    }

    /// Row `r` and column `c` of the padded tile, in image coordinates (edge replication).
    fn source(&self, r: usize, c: usize) -> (usize, usize) {
        let y = self.rect.y as usize + r.min(self.rect.height as usize - 1);
        let x = self.rect.x as usize + c.min(self.rect.width as usize - 1);
        (y, x)
    }

    /// Copies the tile out of a row-major one-sample-per-pixel image of width `image_width`,
    /// padded by edge replication.
    pub fn extract(&self, image: &[u8], image_width: u32) -> Vec<u8> {
        let stride = image_width as usize;
        let mut out = Vec::with_capacity(self.padded_width * self.padded_height);
        for r in 0..self.padded_height {
            for c in 0..self.padded_width {
                let (y, x) = self.source(r, c);
                out.push(image[y * stride + x]);
            }
        }
        out
    }

    /// Whether the padding of a decoded padded tile is exactly the edge replication that
    /// [`TileLayout::extract`] produces.
    pub fn padding_is_replicated(&self, padded: &[u8]) -> bool {
        let (w, h) = (self.rect.width as usize, self.rect.height as usize);
        let at = |r: usize, c: usize| padded[r * self.padded_width + c];
        (0..self.padded_height).all(|r| {
            (0..self.padded_width)
                .filter(|&c| r >= h || c >= w)
                .all(|c| at(r, c) == at(r.min(h - 1), c.min(w - 1)))
        })
    }

    /// Pads a plane of the tile's own size (row-major, one byte per pixel) to the coded size by
    /// edge replication, as [`TileLayout::extract`] does from a whole image.
    pub fn pad(&self, plane: &[u8]) -> Vec<u8> {
        let local = TileLayout {
            rect: TileRect {
                x: 0,
                y: 0,
                ..self.rect
            },
            ..*self
        };
        local.extract(plane, self.rect.width)
    }

    /// The tile's own pixels of a padded tile (padding cropped), row-major.
    pub fn crop(&self, padded: &[u8]) -> Vec<u8> {
        let width = self.rect.width as usize;
        (0..self.rect.height as usize)
            .flat_map(|r| &padded[r * self.padded_width..][..width])
            .copied()
            .collect()
    }
}

/// The canonical bytes of `rect` in an image of `image_width` pixels with `bytes_per_pixel`
/// bytes per pixel (row-major, interleaved): a tile's canonical pixel bytes.
pub fn copy_rect(
    image: &[u8],
    image_width: u32,
    bytes_per_pixel: usize,
    rect: TileRect,
) -> Vec<u8> {
    let stride = image_width as usize * bytes_per_pixel;
    let row = rect.width as usize * bytes_per_pixel;
    let x = rect.x as usize * bytes_per_pixel;
    (rect.y as usize..(rect.y + rect.height) as usize)
        .flat_map(|y| &image[y * stride + x..][..row])
        .copied()
        .collect()
}

/// Inverse of [`copy_rect`]: writes a tile's canonical bytes into the image.
pub fn paste_rect(
    tile: &[u8],
    image: &mut [u8],
    image_width: u32,
    bytes_per_pixel: usize,
    rect: TileRect,
) {
    let stride = image_width as usize * bytes_per_pixel;
    let row = rect.width as usize * bytes_per_pixel;
    let x = rect.x as usize * bytes_per_pixel;
    for (r, from) in tile.chunks_exact(row).enumerate() {
        let at = (rect.y as usize + r) * stride + x;
        image[at..at + row].copy_from_slice(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rect(x: u32, y: u32, width: u32, height: u32) -> TileRect {
        TileRect {
            x,
            y,
            width,
            height,
        }
    }

    #[test]
    fn small_images_are_whole_and_large_ones_tiled() {
        assert_eq!(choose_tiling(28, 28, 128), Tiling::Whole);
        assert_eq!(choose_tiling(128, 1, 128), Tiling::Whole);
        assert_eq!(choose_tiling(129, 1, 128), Tiling::Square { log2: 7 });
        assert_eq!(choose_tiling(1, 1000, 64), Tiling::Square { log2: 6 });
    }

    #[test]
    fn tile_sides_are_checked() {
        for ok in [16, 64, 128, 512] {
            check_tile_side(ok).unwrap();
        }
        for bad in [0, 1, 8, 48, 100, 1024, 2048, u32::MAX] {
            assert!(check_tile_side(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn padding_replicates_the_edges_and_crops_back() {
        // a 5×3 image, tile = its right part x 2..5, y 1..3 (3×2), padded to 4×4
        let image: Vec<u8> = (0..15).collect();
        let layout = TileLayout::new(rect(2, 1, 3, 2), 4);
        assert_eq!((layout.padded_width, layout.padded_height), (4, 4));
        let padded = layout.extract(&image, 5);
        #[rustfmt::skip]
        assert_eq!(padded, vec![
             7,  8,  9,  9,
            12, 13, 14, 14,
            12, 13, 14, 14,
            12, 13, 14, 14,
        ]);
        assert!(layout.padding_is_replicated(&padded));
        let mut back = vec![0u8; 15];
        paste_rect(&layout.crop(&padded), &mut back, 5, 1, layout.rect);
        assert_eq!(&back[7..10], &image[7..10]);
        assert_eq!(&back[12..15], &image[12..15]);
        assert!(back[..7].iter().all(|&v| v == 0));
        // the checksum covers the tile's own 3×2 pixels, not the padding
        let own = [7, 8, 9, 12, 13, 14];
        assert_eq!(copy_rect(&image, 5, 1, layout.rect), own);
        assert_eq!(layout.crop(&padded), own);
        let mut bad = padded.clone();
        bad[3] ^= 1;
        assert_eq!(layout.crop(&bad), own);
        assert!(!layout.padding_is_replicated(&bad));
        bad = padded;
        bad[15] ^= 1;
        assert!(!layout.padding_is_replicated(&bad));
    }

    #[test]
    fn exact_multiples_need_no_padding() {
        let layout = TileLayout::new(rect(0, 0, 8, 4), 4);
        let image: Vec<u8> = (0..32).collect();
        assert_eq!(layout.extract(&image, 8), image);
        assert_eq!(layout.padded_pixels(), 32);
        let one = TileLayout::new(rect(0, 0, 1, 1), 4);
        assert_eq!(one.extract(&[42], 1), vec![42; 16]);
    }
}
