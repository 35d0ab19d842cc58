//! What every plot of the crate shares: the embedded font (so plotting needs no system fonts) and
//! the two-panel figure drawn in memory and returned as PNG bytes.

use anyhow::anyhow;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use plotters::prelude::*;
use plotters::style::FontStyle;

/// A drawing area of an in-memory figure.
pub type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;
/// What drawing into an [`Area`] returns.
pub type DrawResult = std::result::Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// A `width × height` white figure titled `title` (at `title_size` points) whose left and right
/// halves `draw` fills, as PNG bytes.
pub fn two_panel_png(
    (width, height): (u32, u32),
    (title, title_size): (&str, u32),
    draw: impl FnOnce(&Area, &Area) -> DrawResult,
) -> anyhow::Result<Vec<u8>> {
    register_font();
    let mut pixels = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        let root = root
            .titled(title, (FONT, title_size))
            .map_err(|e| anyhow!("plot: {e}"))?;
        let (left, right) = root.split_horizontally(width / 2);
        draw(&left, &right).map_err(|e| anyhow!("plot: {e}"))?;
        root.present().map_err(|e| anyhow!("plot: {e}"))?;
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&pixels, width, height, ExtendedColorType::Rgb8)?;
    Ok(png)
}

/// The family name the embedded DejaVu Sans is registered under: use it in text styles.
pub const FONT: &str = "sans-serif";

/// Registers the embedded DejaVu Sans as [`FONT`] (once; later calls do nothing).
pub fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let font: &'static [u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, font);
    });
}
