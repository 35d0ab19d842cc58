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

/// Runs `work` under a bar of `len` steps labelled `what`: `work` reports how many steps are done
/// through the callback it is given; the bar is cleared afterwards.
pub fn with_bar<T>(len: u64, what: &str, work: impl FnOnce(&mut dyn FnMut(i64)) -> T) -> T {
    let bar = bar(len, what);
    let out = work(&mut |done| bar.set_position(done.max(0) as u64));
    bar.finish_and_clear();
    out
}
