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

/// Pixels between the images of a [`grid_png`] and around them.
pub const GRID_PAD: usize = 2;
/// The grey of a grid's padding (visible against black and white backgrounds).
const GRID_GREY: u8 = 128;

/// The side lengths (width, height) of a [`grid_png`] of `count` images of `height`×`width` in
/// `columns` columns: `columns·(width + pad) + pad` by `rows·(height + pad) + pad`.
pub fn grid_size(count: usize, height: usize, width: usize, columns: usize) -> (usize, usize) {
    let columns = columns.clamp(1, count.max(1));
    let rows = count.div_ceil(columns);
    (
        columns * (width + GRID_PAD) + GRID_PAD,
        rows * (height + GRID_PAD) + GRID_PAD,
    )
}

/// A grid of same-sized images as PNG bytes (8-bit gray or RGB): `pixels` holds `shape[0]`
/// images of `shape[1]` (1 or 3) channels × `shape[2]` × `shape[3]`, channel-major (CHW) each,
/// one after another; row-major, `columns` per row, [`GRID_PAD`] grey pixels between and around
/// them ([`grid_size`]).
pub fn grid_png(pixels: &[u8], shape: [usize; 4], columns: usize) -> Result<Vec<u8>> {
    let [count, channels, height, width] = shape;
    anyhow::ensure!(count > 0, "no images to put in a grid");
    anyhow::ensure!(
        channels == 1 || channels == 3,
        "a grid takes 1- or 3-channel images, not {channels}"
    );
    let plane = height * width;
    anyhow::ensure!(
        pixels.len() == count * channels * plane,
        "{} bytes for {count} images of {channels}×{height}×{width}",
        pixels.len()
    );
    let columns = columns.clamp(1, count);
    let (gw, gh) = grid_size(count, height, width, columns);
    let mut out = vec![GRID_GREY; gw * gh * channels];
    for (i, image) in pixels.chunks_exact(channels * plane).enumerate() {
        let (x0, y0) = (
            GRID_PAD + (i % columns) * (width + GRID_PAD),
            GRID_PAD + (i / columns) * (height + GRID_PAD),
        );
        for y in 0..height {
            for x in 0..width {
                for c in 0..channels {
                    out[((y0 + y) * gw + x0 + x) * channels + c] = image[c * plane + y * width + x];
                }
            }
        }
    }
    let color = if channels == 1 {
        image::ExtendedColorType::L8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &out,
        gw as u32,
        gh as u32,
        color,
    )
    .context("PNG encoding failed")?;
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_place_every_image_and_pad_between() {
        // three 1×2×2 images, two per row: 2 rows
        let pixels: Vec<u8> = (0..12).map(|v| v * 20).collect();
        let png = grid_png(&pixels, [3, 1, 2, 2], 2).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_luma8();
        assert_eq!(
            (img.width() as usize, img.height() as usize),
            grid_size(3, 2, 2, 2)
        );
        assert_eq!((img.width(), img.height()), (10, 10));
        assert_eq!(img.get_pixel(2, 2).0[0], 0); // image 0, top left
        assert_eq!(img.get_pixel(7, 3).0[0], 7 * 20); // image 1, bottom right
        assert_eq!(img.get_pixel(3, 7).0[0], 11 * 20); // image 2, bottom right
        assert_eq!(img.get_pixel(0, 0).0[0], GRID_GREY);
        // RGB: channel-major in, interleaved out
        let rgb: Vec<u8> = vec![10, 20, 30];
        let png = grid_png(&rgb, [1, 3, 1, 1], 4).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(img.get_pixel(2, 2).0, [10, 20, 30]);
        assert!(grid_png(&rgb, [2, 3, 1, 1], 1).is_err());
    }
}
