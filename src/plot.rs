//! What every plot of the crate shares: the embedded font (so plotting needs no system fonts).

use plotters::style::FontStyle;

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
