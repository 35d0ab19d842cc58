//! The progress bar of the long measurements (`metrics nll`, `metrics logz`, MALA sampling):
//! on stderr, drawn only when it is a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `len` units named `what` (elapsed, position, rate, eta).
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} [{{elapsed_precise}}] {{bar:30}} {{human_pos}}/{{human_len}} {what} \
             ({{per_sec}}, eta {{eta}})"
        ))
        .expect("valid template"),
    );
    bar
}
