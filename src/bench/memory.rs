//! Peak memory, two ways:
//!
//! - [`PeakMeter`]: for work done in this process, the growth of the resident set's high-water
//!   mark: free heap memory is returned to the system (glibc `malloc_trim`), Linux's peak RSS
//!   (`VmHWM`) is reset to the current RSS through `/proc/self/clear_refs`, and the peak reached
//!   afterwards minus the RSS at the start is the work's peak memory.
//! - [`run_child`]: for a child process, the high-water mark of its own address space, read
//!   from `/proc/PID/status` when it is about to exit (the child is traced with `ptrace` for
//!   that one stop). `ru_maxrss` from `wait4` would not do: Linux carries the parent's resident
//!   set over into it at `exec`, so every small tool would show idfcodec's own size.
//!
//! Both give `None` where the system cannot tell (not Linux, or `/proc` unavailable).

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Measures the peak memory of work done in this process.
pub struct PeakMeter {
    start_rss: u64,
}

impl PeakMeter {
    /// Resets the process's peak RSS and notes the current RSS; `None` where that is not possible.
    /// Free memory the allocator holds is first given back to the system, so that the work's
    /// allocations show up as growth even where earlier work had left pages behind.
    pub fn start() -> Option<PeakMeter> {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        // SAFETY: glibc's malloc_trim only releases free memory
        unsafe {
            libc::malloc_trim(0);
        }
        std::fs::write("/proc/self/clear_refs", "5").ok()?;
        Some(PeakMeter {
            start_rss: status_kib("VmRSS")? * 1024,
        })
    }

    /// Bytes by which the peak RSS rose above the RSS at [`PeakMeter::start`].
    pub fn peak_growth(&self) -> Option<u64> {
        Some((status_kib("VmHWM")? * 1024).saturating_sub(self.start_rss))
    }
}

/// Peak growth of memory over `work` (see [`PeakMeter`]).
pub fn measure<R>(work: impl FnOnce() -> R) -> (R, Option<u64>) {
    let meter = PeakMeter::start();
    let result = work();
    (result, meter.and_then(|m| m.peak_growth()))
}

/// A field of `/proc/self/status` in KiB.
fn status_kib(field: &str) -> Option<u64> {
    proc_status_kib("self", field)
}

/// A field of `/proc/PROCESS/status` in KiB.
fn proc_status_kib(process: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()
}

/// A finished child process.
pub struct ChildRun {
    pub status: ExitStatus,
    /// From starting it to reaping it.
    pub wall: Duration,
    /// Its peak RSS in bytes, where it could be measured.
    pub peak_memory: Option<u64>,
}

/// Runs `program` with `args` to completion, stdin empty and stdout and stderr into `log`.
pub fn run_child(program: &OsStr, args: &[OsString], log: &File) -> io::Result<ChildRun> {
    let command = || -> io::Result<Command> {
        let mut command = Command::new(program);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?);
        Ok(command)
    };
    #[cfg(target_os = "linux")]
    match traced::run(command()?) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {} // no ptrace here: no figure
        other => return other,
    }
    let start = Instant::now();
    let status = command()?.status()?;
    Ok(ChildRun {
        status,
        wall: start.elapsed(),
        peak_memory: None,
    })
}

#[cfg(target_os = "linux")]
mod traced {
    //! A child run under `ptrace`, stopped once at its exit to read its `VmHWM`.

    use std::io;
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    use std::process::{Command, ExitStatus};
    use std::ptr::null_mut;
    use std::time::Instant;

    use super::{proc_status_kib, ChildRun};

    fn ptrace(request: libc::c_uint, pid: libc::pid_t, data: usize) -> io::Result<()> {
        // SAFETY: requests on our own traced child, with no pointers passed
        let r = unsafe { libc::ptrace(request, pid, null_mut::<libc::c_void>(), data) };
        if r == -1 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    fn wait(pid: libc::pid_t) -> io::Result<libc::c_int> {
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child
            if unsafe { libc::waitpid(pid, &mut status, 0) } == pid {
                return Ok(status);
            }
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
    }

    pub fn run(mut command: Command) -> io::Result<ChildRun> {
        // SAFETY: the closure runs between fork and exec and makes one async-signal-safe call
        unsafe {
            command.pre_exec(|| {
                if libc::ptrace(libc::PTRACE_TRACEME, 0, null_mut::<libc::c_void>(), 0usize) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let start = Instant::now();
        // std's `Child` is dropped unwaited: the pid is reaped here, once
        let pid = command.spawn()?.id() as libc::pid_t;
        // the first stop is the SIGTRAP that follows a traced exec
        let mut status = wait(pid)?;
        if libc::WIFSTOPPED(status) {
            ptrace(
                libc::PTRACE_SETOPTIONS,
                pid,
                (libc::PTRACE_O_TRACEEXIT | libc::PTRACE_O_EXITKILL) as usize,
            )?;
            ptrace(libc::PTRACE_CONT, pid, 0)?;
        }
        let mut peak_kib = None;
        while libc::WIFSTOPPED(status) {
            status = wait(pid)?;
            if !libc::WIFSTOPPED(status) {
                break;
            }
            let signal = libc::WSTOPSIG(status);
            let forward = if signal == libc::SIGTRAP {
                if status >> 16 == libc::PTRACE_EVENT_EXIT {
                    peak_kib = proc_status_kib(&pid.to_string(), "VmHWM");
                }
                0
            } else {
                signal as usize
            };
            ptrace(libc::PTRACE_CONT, pid, forward)?;
        }
        Ok(ChildRun {
            status: ExitStatus::from_raw(status),
            wall: start.elapsed(),
            peak_memory: peak_kib.map(|kib| kib * 1024),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_growth_sees_a_large_allocation() {
        let ((), peak) = measure(|| {
            let v = vec![1u8; 64 << 20];
            std::hint::black_box(&v);
        });
        if let Some(peak) = peak {
            assert!(peak >= 48 << 20, "{peak}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn child_runs_are_measured_on_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let log = File::create(dir.path().join("log")).unwrap();
        // a large allocation here must not show in the child's figure
        let ballast = vec![1u8; 64 << 20];
        std::hint::black_box(&ballast);
        let args = ["-c", "echo hi; exit 3"].map(OsString::from);
        let run = run_child(OsStr::new("sh"), &args, &log).unwrap();
        assert_eq!(run.status.code(), Some(3));
        if let Some(peak) = run.peak_memory {
            assert!(peak > 0 && peak < 32 << 20, "{peak}");
        }
        assert_eq!(
            std::fs::read_to_string(dir.path().join("log")).unwrap(),
            "hi\n"
        );
    }
}
