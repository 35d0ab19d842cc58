//! Pixel formats: which samples a pixel has, and the canonical bytes the checksum covers.

/// The samples of one pixel. Stored as a 5-bit code in the descriptor byte.
///
/// **Canonical pixel bytes** (what [`super::crc32`] is computed over): pixels in row-major order,
/// samples of a pixel interleaved in the order of the name (gray, alpha / red, green, blue,
/// alpha), each sample in [`PixelFormat::bytes_per_sample`] bytes, little-endian. Sub-byte
/// formats take one byte per sample (value `0..2^bits`), not packed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    /// Code 0: 8-bit gray.
    Gray8,
    /// Code 1: 1-bit gray.
    Gray1,
    /// Code 2: 2-bit gray.
    Gray2,
    /// Code 3: 4-bit gray.
    Gray4,
    /// Code 4: 16-bit gray.
    Gray16,
    /// Code 5: 8-bit gray and alpha.
    GrayAlpha8,
    /// Code 6: 16-bit gray and alpha.
    GrayAlpha16,
    /// Code 7: 8-bit RGB.
    Rgb8,
    /// Code 8: 16-bit RGB.
    Rgb16,
    /// Code 9: 8-bit RGBA.
    Rgba8,
    /// Code 10: 16-bit RGBA.
    Rgba16,
    /// Code 11: palette indices of 8 bits (one byte per pixel); the palette is an extension record.
    Palette8,
    /// Code 12: palette indices of 4 bits (one byte per pixel, `0..16`).
    Palette4,
    /// Code 13: palette indices of 2 bits (one byte per pixel, `0..4`).
    Palette2,
    /// Code 14: palette indices of 1 bit (one byte per pixel, `0..2`).
    Palette1,
}

/// Every format, indexed by its code.
const BY_CODE: [PixelFormat; 15] = [
    PixelFormat::Gray8,
    PixelFormat::Gray1,
    PixelFormat::Gray2,
    PixelFormat::Gray4,
    PixelFormat::Gray16,
    PixelFormat::GrayAlpha8,
    PixelFormat::GrayAlpha16,
    PixelFormat::Rgb8,
    PixelFormat::Rgb16,
    PixelFormat::Rgba8,
    PixelFormat::Rgba16,
    PixelFormat::Palette8,
    PixelFormat::Palette4,
    PixelFormat::Palette2,
    PixelFormat::Palette1,
];

impl PixelFormat {
    /// Every defined format, in code order.
    pub const ALL: [PixelFormat; 15] = BY_CODE;

    /// The format's code in the descriptor byte.
    pub fn code(self) -> u8 {
        BY_CODE
            .iter()
            .position(|&f| f == self)
            .expect("every format is in BY_CODE") as u8
    }

    /// The format with this code, if this version defines one.
    pub fn from_code(code: u8) -> Option<Self> {
        BY_CODE.get(usize::from(code)).copied()
    }

    /// Samples per pixel.
    pub fn channels(self) -> u8 {
        use PixelFormat::*;
        match self {
            Gray8 | Gray1 | Gray2 | Gray4 | Gray16 => 1,
            Palette8 | Palette4 | Palette2 | Palette1 => 1,
            GrayAlpha8 | GrayAlpha16 => 2,
            Rgb8 | Rgb16 => 3,
            Rgba8 | Rgba16 => 4,
        }
    }

    /// Significant bits per sample.
    pub fn bits_per_sample(self) -> u8 {
        use PixelFormat::*;
        match self {
            Gray1 | Palette1 => 1,
            Gray2 | Palette2 => 2,
            Gray4 | Palette4 => 4,
            Gray8 | GrayAlpha8 | Rgb8 | Rgba8 | Palette8 => 8,
            Gray16 | GrayAlpha16 | Rgb16 | Rgba16 => 16,
        }
    }

    /// Whether the samples are indices into a palette (an extension record).
    pub fn is_palette(self) -> bool {
        use PixelFormat::*;
        matches!(self, Palette8 | Palette4 | Palette2 | Palette1)
    }

    /// Bytes per sample in the canonical pixel bytes (1 or 2).
    pub fn bytes_per_sample(self) -> u8 {
        self.bits_per_sample().div_ceil(8)
    }

    /// Bytes per pixel in the canonical pixel bytes.
    pub fn bytes_per_pixel(self) -> u8 {
        self.channels() * self.bytes_per_sample()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_a_bijection() {
        for (i, f) in PixelFormat::ALL.iter().enumerate() {
            assert_eq!(usize::from(f.code()), i);
            assert_eq!(PixelFormat::from_code(f.code()), Some(*f));
        }
        assert_eq!(PixelFormat::from_code(PixelFormat::ALL.len() as u8), None);
        assert_eq!(PixelFormat::Gray8.code(), 0, "gray8 is the zero code");
    }

    #[test]
    fn canonical_sizes() {
        assert_eq!(PixelFormat::Gray1.bytes_per_pixel(), 1);
        assert_eq!(PixelFormat::Gray16.bytes_per_pixel(), 2);
        assert_eq!(PixelFormat::Rgb8.bytes_per_pixel(), 3);
        assert_eq!(PixelFormat::Rgba16.bytes_per_pixel(), 8);
    }
}
