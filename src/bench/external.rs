//! Baseline codecs that are command-line tools: optipng, cwebp/dwebp, cjxl/djxl. Each image is
//! coded from its PNG file into the scratch folder and decoded back from there; a tool's time
//! is the wall time of its process (start-up included, which dominates for tiny images) and its
//! memory the process's peak RSS.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use image::{ColorType, ImageFormat};

use super::builtin::decode_file;
use super::memory::{run_child, ChildRun};
use super::{Codec, Family, Outcome, Picture, Trial};

/// Where the tools come from.
const INSTALL_HINT: &str = "install with scripts/install-baseline-codecs (from the idfcodec \
                            repository), or apt-get install webp libjxl-tools optipng";

/// How the coded file becomes pixels again.
enum Decoder {
    /// It is a PNG: decoded in this process (timed) by the `image` crate.
    Png,
    /// A command (`{in}`, `{out}` replaced), writing a file of the extension chosen for the
    /// picture, read back by the `image` crate (not timed).
    Command {
        args: Vec<String>,
        output: fn(&Picture) -> &'static str,
    },
}

/// A codec made of command-line tools.
pub struct Tool {
    name: String,
    /// The encoder command with `{in}` and `{out}` placeholders.
    encoder: Vec<String>,
    decoder: Decoder,
    /// Extension of the coded file.
    extension: &'static str,
    /// Why a picture cannot be coded losslessly by this tool, if so.
    refuses: fn(&Picture) -> Option<String>,
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

fn takes_anything(_: &Picture) -> Option<String> {
    None
}

impl Tool {
    /// `optipng -o5 -strip all` on the input PNG; decoded by the `image` crate.
    pub fn optipng() -> Tool {
        Tool {
            name: "optipng".into(),
            encoder: words(&[
                "optipng", "-quiet", "-o5", "-strip", "all", "-out", "{out}", "{in}",
            ]),
            decoder: Decoder::Png,
            extension: "png",
            refuses: takes_anything,
        }
    }

    /// `cwebp -lossless -z 9`, decoded by `dwebp -pam`. WebP stores 8-bit samples only.
    pub fn webp() -> Tool {
        Tool {
            name: "webp".into(),
            encoder: words(&[
                "cwebp",
                "-quiet",
                "-lossless",
                "-z",
                "9",
                "{in}",
                "-o",
                "{out}",
            ]),
            decoder: Decoder::Command {
                args: words(&["dwebp", "-quiet", "{in}", "-pam", "-o", "{out}"]),
                output: |_| "pam",
            },
            extension: "webp",
            refuses: |p| {
                p.is_high_depth()
                    .then(|| "16-bit samples (WebP stores 8 bits)".to_string())
            },
        }
    }

    /// `cjxl -d 0 -e EFFORT`, decoded by `djxl` (to PGM/PPM, or PNG when there is alpha);
    /// both with `--num_threads=THREADS`.
    pub fn jxl(effort: u32, threads: usize) -> Tool {
        let threads = format!("--num_threads={threads}");
        let mut encoder = words(&["cjxl", "{in}", "{out}", "-d", "0", "-e"]);
        encoder.extend([effort.to_string(), threads.clone(), "--quiet".into()]);
        let mut decoder = words(&["djxl", "{in}", "{out}"]);
        decoder.extend([threads, "--quiet".into()]);
        Tool {
            name: format!("jxl-e{effort}"),
            encoder,
            decoder: Decoder::Command {
                args: decoder,
                output: |p| match p.pixels.color() {
                    ColorType::L8 | ColorType::L16 => "pgm",
                    ColorType::Rgb8 | ColorType::Rgb16 => "ppm",
                    _ => "png",
                },
            },
            extension: "jxl",
            refuses: takes_anything,
        }
    }

    /// `Err(note)` when one of the programs is not installed.
    pub fn check_installed(&self) -> Result<(), String> {
        let mut programs = vec![&self.encoder[0]];
        if let Decoder::Command { args, .. } = &self.decoder {
            programs.push(&args[0]);
        }
        let missing: Vec<&str> = programs
            .into_iter()
            .filter(|p| find_program(p).is_none())
            .map(|p| p.as_str())
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{}: skipped, {} not found on PATH ({INSTALL_HINT})",
                self.name,
                missing.join(" and ")
            ))
        }
    }

    fn round_trip(&self, picture: &Picture, scratch: &Path) -> Result<Outcome> {
        let coded = scratch.join(format!("coded.{}", self.extension));
        let log = scratch.join("tool.log");
        let encoded = run_tool(&self.encoder, &picture.png_path, &coded, &log)?;
        let bytes = std::fs::metadata(&coded)
            .with_context(|| format!("{} wrote no output", self.encoder[0]))?
            .len();
        let (decoded, decode, decode_memory) = match &self.decoder {
            Decoder::Png => {
                let start = std::time::Instant::now();
                let decoded = decode_file(&coded, ImageFormat::Png)?;
                (decoded, start.elapsed(), None)
            }
            Decoder::Command { args, output } => {
                let back = scratch.join(format!("decoded.{}", output(picture)));
                let run = run_tool(args, &coded, &back, &log)?;
                let decoded = image::open(&back)
                    .with_context(|| format!("cannot read what {} wrote", args[0]))?;
                (decoded, run.wall, run.peak_memory)
            }
        };
        let peak_memory = match (encoded.peak_memory, decode_memory) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        Ok(picture.check(
            &decoded,
            Trial {
                bytes,
                encode: encoded.wall,
                decode,
                peak_memory,
            },
        ))
    }
}

impl Codec for Tool {
    fn name(&self) -> &str {
        &self.name
    }

    fn settings(&self) -> String {
        let show = |args: &[String]| {
            args.iter()
                .filter(|a| !matches!(a.as_str(), "{in}" | "{out}" | "-o" | "-out" | "-quiet"))
                .map(String::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        };
        match &self.decoder {
            Decoder::Png => format!("{}; decoded by the image crate", show(&self.encoder)),
            Decoder::Command { args, .. } => format!("{}; {}", show(&self.encoder), show(args)),
        }
    }

    fn family(&self) -> Family {
        Family::Baseline
    }

    fn code(&mut self, picture: &Picture, scratch: &Path) -> Outcome {
        if let Some(reason) = (self.refuses)(picture) {
            return Outcome::Unsupported(reason);
        }
        let outcome = self
            .round_trip(picture, scratch)
            .unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")));
        clear_folder(scratch);
        outcome
    }
}

/// Runs `args` with `{in}`/`{out}` replaced, its output going to `log`; an error (with the
/// log's last line) unless it succeeds.
fn run_tool(args: &[String], input: &Path, output: &Path, log: &Path) -> Result<ChildRun> {
    let fill = |a: &String| -> OsString {
        match a.as_str() {
            "{in}" => input.into(),
            "{out}" => output.into(),
            other => other.into(),
        }
    };
    let log_file = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let filled: Vec<OsString> = args[1..].iter().map(fill).collect();
    let run = run_child(OsStr::new(&args[0]), &filled, &log_file)
        .with_context(|| format!("cannot run {}", args[0]))?;
    if !run.status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let last = text
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        bail!("{} failed ({}): {last}", args[0], run.status);
    }
    Ok(run)
}

/// Removes the files a tool left in `scratch` (`coded.*`, `decoded.*`).
fn clear_folder(scratch: &Path) {
    let Ok(entries) = std::fs::read_dir(scratch) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("coded.") || name.starts_with("decoded.") {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// The path of `program` on `PATH`, if it is there.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file() || path.with_extension("exe").is_file()
}
