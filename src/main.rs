//! `idfcodec`: command-line entry point. Parsing only; each subcommand lives in `cli/`.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    restore_default_sigpipe();
    if stdout_closed_at_start() {
        idfcodec::cli::io::note_stdout_closed_at_start();
    }
    let cli = idfcodec::cli::Cli::parse();
    match idfcodec::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // the whole context chain on one line, never a backtrace: errors are for users
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `idfcodec models | head` would panic on the closed pipe; restore the
/// default action (end quietly), as command-line tools are expected to do.
#[cfg(unix)]
fn restore_default_sigpipe() {
    extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIGPIPE: i32 = 13;
    const SIG_DFL: usize = 0;
    // SAFETY: installs the default disposition for SIGPIPE before any thread or I/O exists.
    unsafe {
        signal(SIGPIPE, SIG_DFL);
    }
}

#[cfg(not(unix))]
fn restore_default_sigpipe() {}

/// Whether stdout (fd 1) was closed when the process started, as with `idfcodec ... >&-`. The
/// Rust runtime opens `/dev/null` on a closed standard descriptor before `main`, so this is
/// probed earlier, by a function in `.init_array` (which the loader runs before the runtime's
/// set-up).
#[cfg(target_os = "linux")]
fn stdout_closed_at_start() -> bool {
    stdout_probe::CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Elsewhere a closed stdout is not detected (writes to it vanish, as the runtime arranges).
#[cfg(not(target_os = "linux"))]
fn stdout_closed_at_start() -> bool {
    false
}

#[cfg(target_os = "linux")]
mod stdout_probe {
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Set by [`probe`] when fd 1 was closed at start.
    pub static CLOSED: AtomicBool = AtomicBool::new(false);

    extern "C" fn probe() {
        // SAFETY: F_GETFD only reads the descriptor's flags; it fails (EBADF) when fd 1 is closed.
        if unsafe { libc::fcntl(libc::STDOUT_FILENO, libc::F_GETFD) } == -1 {
            CLOSED.store(true, Ordering::Relaxed);
        }
    }

    /// Run by the loader before the Rust runtime replaces closed standard descriptors.
    #[used]
    #[link_section = ".init_array"]
    static PROBE: extern "C" fn() = probe;
}
