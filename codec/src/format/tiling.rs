//! How an image is cut into independently coded tiles.

use super::cursor::Cursor;
use super::FormatError;

/// Smallest tile side, as log2 (16 pixels).
pub const MIN_TILE_LOG2: u8 = 4;
/// Largest tile side, as log2 (65 536 pixels).
pub const MAX_TILE_LOG2: u8 = 16;

/// Whether and how the image is tiled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tiling {
    /// One tile: the whole image (no tile byte, no tile index).
    Whole,
    /// Square tiles of side `2^log2` in raster order; tiles at the right and bottom edges are
    /// clipped to the image.
    Square {
        /// `MIN_TILE_LOG2..=MAX_TILE_LOG2`.
        log2: u8,
    },
}

/// The tile grid of an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileGrid {
    /// Image width.
    pub width: u32,
    /// Image height.
    pub height: u32,
    /// Tile width before clipping.
    pub tile_width: u32,
    /// Tile height before clipping.
    pub tile_height: u32,
    /// Tiles per row.
    pub columns: u64,
    /// Tile rows.
    pub rows: u64,
}

/// One tile's rectangle in image coordinates, clipped to the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

const LOG2_RANGE: &str = "4..=16 (tiles of 16..=65536 pixels)";

impl Tiling {
    /// Square tiles of side `side`, which must be a power of two from 16 to 65 536.
    pub fn square(side: u32) -> Result<Self, FormatError> {
        let tiling = Tiling::Square {
            log2: side.trailing_zeros() as u8,
        };
        if side.is_power_of_two() {
            tiling.validate().map(|()| tiling)
        } else {
            Err(FormatError::FieldOutOfRange {
                field: "tile side",
                value: side.into(),
                range: LOG2_RANGE,
            })
        }
    }

    /// Checks that a square tiling's side is in range.
    pub(super) fn validate(&self) -> Result<(), FormatError> {
        match *self {
            Tiling::Square { log2 } if !(MIN_TILE_LOG2..=MAX_TILE_LOG2).contains(&log2) => {
                Err(FormatError::FieldOutOfRange {
                    field: "tile size code",
                    value: log2.into(),
                    range: LOG2_RANGE,
                })
            }
            _ => Ok(()),
        }
    }

    /// Reads the tile size byte.
    pub(super) fn read_square(cur: &mut Cursor<'_>) -> Result<Self, FormatError> {
        let tiling = Tiling::Square {
            log2: cur.u8("tile size code")?,
        };
        tiling.validate().map(|()| tiling)
    }

    /// The grid of a `width × height` image.
    pub fn grid(&self, width: u32, height: u32) -> TileGrid {
        let (tile_width, tile_height) = match *self {
            Tiling::Whole => (width, height),
            Tiling::Square { log2 } => {
                let side = 1u32.checked_shl(log2.into()).unwrap_or(u32::MAX);
                (side, side)
            }
        };
        let cells = |len: u32, tile: u32| u64::from(len).div_ceil(u64::from(tile.max(1)));
        TileGrid {
            width,
            height,
            tile_width,
            tile_height,
            columns: cells(width, tile_width),
            rows: cells(height, tile_height),
        }
    }
}

impl TileGrid {
    /// Number of tiles.
    pub fn count(&self) -> u64 {
        self.columns * self.rows
    }

    /// The rectangle of tile `index` (raster order), or `None` past the last tile.
    pub fn rect(&self, index: u64) -> Option<TileRect> {
        if index >= self.count() {
            return None;
        }
        let origin = |cell: u64, tile: u32| (cell * u64::from(tile)) as u32;
        let x = origin(index % self.columns, self.tile_width);
        let y = origin(index / self.columns, self.tile_height);
        Some(TileRect {
            x,
            y,
            width: self.tile_width.min(self.width - x),
            height: self.tile_height.min(self.height - y),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_cover_the_image_exactly_once() {
        for (w, h, tiling) in [
            (28, 28, Tiling::Whole),
            (100, 37, Tiling::square(32).unwrap()),
            (64, 64, Tiling::square(32).unwrap()),
            (1, 70000, Tiling::square(65536).unwrap()),
        ] {
            let grid = tiling.grid(w, h);
            let mut covered = vec![0u8; (w as usize) * (h as usize)];
            for i in 0..grid.count() {
                let r = grid.rect(i).unwrap();
                assert!(r.width >= 1 && r.height >= 1);
                for y in r.y..r.y + r.height {
                    for x in r.x..r.x + r.width {
                        covered[(y * w + x) as usize] += 1;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "{w}x{h} {tiling:?}");
            assert_eq!(grid.rect(grid.count()), None);
        }
    }

    #[test]
    fn square_side_must_be_a_power_of_two_in_range() {
        assert_eq!(Tiling::square(256).unwrap(), Tiling::Square { log2: 8 });
        for bad in [0, 8, 48, 1 << 17, u32::MAX] {
            assert!(Tiling::square(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn huge_grids_do_not_overflow() {
        let g = Tiling::square(16).unwrap().grid(u32::MAX, u32::MAX);
        assert_eq!(g.columns, 1 << 28);
        assert_eq!(g.count(), 1 << 56);
        let last = g.rect(g.count() - 1).unwrap();
        assert_eq!(
            (last.x + last.width, last.y + last.height),
            (u32::MAX, u32::MAX)
        );
    }
}
