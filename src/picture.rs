//! Image files ⇄ the codec's [`Image`]: PNG read exactly through the codec's [`png`] (every
//! colour type and bit depth, palette, transparency and colour chunks), JPEG and PNM by their
//! pixels (the `image` crate), and PNG output. Shared by the CLI and `bench`.

use std::io;

use anyhow::{Context, Result};
use idfcodec_codec::format::PixelFormat;
use idfcodec_codec::{png, Image};

/// Decodes an image file into an [`Image`]: a PNG exactly as stored (every colour type and bit
/// depth, palette, tRNS and colour chunks; see [`idfcodec_codec::png`]), anything else the `image`
/// crate reads (JPEG, PNM) by its pixels.
pub fn decode_picture(bytes: &[u8], name: &str) -> Result<Image> {
    Ok(decode_picture_noting(bytes, name)?.0)
}

/// [`decode_picture`], with a note for each thing of the file that is not kept (PNG chunks that
/// do not change how the pixels look, bytes after the end).
pub fn decode_picture_noting(bytes: &[u8], name: &str) -> Result<(Image, Vec<String>)> {
    if bytes.starts_with(PNG_SIGNATURE) {
        let source = png::read(bytes).with_context(|| format!("cannot read {name}"))?;
        let mut notes: Vec<String> = source
            .dropped()
            .iter()
            .map(|c| format!("dropped the {} chunk ({} bytes)", c.name(), c.len))
            .collect();
        if source.trailing_bytes() > 0 {
            notes.push(format!(
                "ignored {} bytes after the PNG's end",
                source.trailing_bytes()
            ));
        }
        let image = source
            .to_image()
            .with_context(|| format!("cannot read {name}"))?;
        return Ok((image, notes));
    }
    let image = codec_image(read_picture(bytes, name)?)
        .map_err(|color| anyhow::anyhow!("{name} is {color}, which idfcodec cannot code"))?;
    Ok((
        image,
        vec!["read by its pixels only (not a PNG)".to_string()],
    ))
}

/// The first bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Decodes a PNG or JPEG file (whatever its color type).
pub fn read_picture(bytes: &[u8], name: &str) -> Result<image::DynamicImage> {
    image::ImageReader::new(io::Cursor::new(bytes))
        .with_guessed_format()
        .with_context(|| format!("cannot read {name}"))?
        .decode()
        .with_context(|| format!("{name} is not a PNG or JPEG image idfcodec can read"))
}

/// The codec's [`Image`] of a decoded picture (8- and 16-bit gray, gray+alpha, RGB and RGBA), or
/// the description of its color type ("32-bit float RGB") when the codec cannot code it.
pub fn codec_image(picture: image::DynamicImage) -> Result<Image, String> {
    use image::DynamicImage as D;
    let (width, height) = (picture.width(), picture.height());
    let wide = |v: Vec<u16>| v.iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>();
    let (format, samples) = match picture {
        D::ImageLuma8(p) => (PixelFormat::Gray8, p.into_raw()),
        D::ImageLumaA8(p) => (PixelFormat::GrayAlpha8, p.into_raw()),
        D::ImageRgb8(p) => (PixelFormat::Rgb8, p.into_raw()),
        D::ImageRgba8(p) => (PixelFormat::Rgba8, p.into_raw()),
        D::ImageLuma16(p) => (PixelFormat::Gray16, wide(p.into_raw())),
        D::ImageLumaA16(p) => (PixelFormat::GrayAlpha16, wide(p.into_raw())),
        D::ImageRgb16(p) => (PixelFormat::Rgb16, wide(p.into_raw())),
        D::ImageRgba16(p) => (PixelFormat::Rgba16, wide(p.into_raw())),
        other => return Err(describe_color(other.color())),
    };
    Image::new(width, height, format, samples).map_err(|e| e.to_string())
}

/// Encodes an [`Image`] as PNG with its own colour type and bit depth, palette, transparency and
/// colour chunks.
pub fn encode_png(image: &Image) -> Result<Vec<u8>> {
    let source = png::SourceImage::from_image(image).context("cannot write the image as PNG")?;
    png::write(&source).context("PNG encoding failed")
}

/// A human name of a decoded picture's color type ("8-bit RGB").
pub fn describe_color(color: image::ColorType) -> String {
    use image::ColorType::*;
    match color {
        L8 => "8-bit grayscale",
        La8 => "8-bit grayscale with alpha",
        Rgb8 => "8-bit RGB",
        Rgba8 => "8-bit RGBA",
        L16 => "16-bit grayscale",
        La16 => "16-bit grayscale with alpha",
        Rgb16 => "16-bit RGB",
        Rgba16 => "16-bit RGBA",
        Rgb32F => "32-bit float RGB",
        Rgba32F => "32-bit float RGBA",
        _ => "in an unsupported color type",
    }
    .to_string()
}
