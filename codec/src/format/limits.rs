//! Caps on what a reader accepts, checked before anything is allocated.

/// Sizes a reader accepts. Each cap has a command-line flag to raise it, named in the error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Widest image, in pixels (`--max-width`).
    pub max_width: u32,
    /// Tallest image, in pixels (`--max-height`).
    pub max_height: u32,
    /// Most pixels in one image (`--max-pixels`).
    pub max_pixels: u64,
    /// Most tiles in one image (`--max-tiles`).
    pub max_tiles: u64,
    /// Most entries in one archive (`--max-entries`). In a version-6 chained archive the entries
    /// of a run take no bytes, so there this is what bounds the entries a reader makes.
    pub max_entries: u64,
    /// Most bytes of entry names in one archive, all names together (`--max-name-bytes`): a
    /// front-coded name (version 2) costs a few bytes of the file however long it is.
    pub max_name_bytes: u64,
}

impl Limits {
    /// Accepts everything the format can express (still never allocates beyond the input size,
    /// except for the entries of a version-6 chained archive's runs, which take no bytes: with no
    /// entry limit, use it on trusted files only).
    pub const UNLIMITED: Limits = Limits {
        max_width: u32::MAX,
        max_height: u32::MAX,
        max_pixels: u64::MAX,
        max_tiles: u64::MAX,
        max_entries: u64::MAX,
        max_name_bytes: u64::MAX,
    };
}

impl Default for Limits {
    /// 65 536 pixels per side, 2^28 pixels (a 16 384² image, 256 MiB as gray8), 2^20 tiles,
    /// 2^20 archive entries, 2^26 bytes (64 MiB) of entry names.
    fn default() -> Self {
        Limits {
            max_width: 1 << 16,
            max_height: 1 << 16,
            max_pixels: 1 << 28,
            max_tiles: 1 << 20,
            max_entries: 1 << 20,
            max_name_bytes: 1 << 26,
        }
    }
}

/// Errors with [`super::FormatError::LimitExceeded`] when `value > limit`.
pub(super) fn check(
    what: &'static str,
    value: u64,
    limit: u64,
    flag: &'static str,
) -> Result<(), super::FormatError> {
    if value > limit {
        Err(super::FormatError::LimitExceeded {
            what,
            value,
            limit,
            flag,
        })
    } else {
        Ok(())
    }
}
