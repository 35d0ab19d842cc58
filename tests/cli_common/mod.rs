//! Helpers for the tests that run the `idfcodec` binary on temporary files.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use idfcodec_codec::{Idf, IdfConfig};

/// The config of the small random models the CLI tests use (fast in debug builds).
pub fn test_config() -> IdfConfig {
    IdfConfig {
        in_channels: 1,
        levels: 2,
        couplings: 2,
        hidden: 8,
        blocks: 1,
        mixtures: 3,
        ..IdfConfig::default()
    }
}

/// Writes `Idf::new_random(test_config(), seed)` to `dir/model-SEED.safetensors`.
pub fn random_model(dir: &Path, seed: u64) -> PathBuf {
    let model = Idf::new_random(test_config(), seed).unwrap();
    let path = dir.join(format!("model-{seed}.safetensors"));
    let card = serde_json::json!({ "note": "random test model", "seed": seed });
    std::fs::write(&path, model.to_safetensors(&card).unwrap()).unwrap();
    path
}

/// Runs the binary with `args` (and `stdin` bytes, if any).
pub fn run_with_stdin<S: AsRef<OsStr>>(args: &[S], stdin: Option<&[u8]>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_idfcodec"));
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("cannot start idfcodec");
    if let Some(bytes) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(bytes).unwrap();
    }
    child.wait_with_output().unwrap()
}

/// Runs the binary with `args`.
pub fn run<S: AsRef<OsStr>>(args: &[S]) -> Output {
    run_with_stdin(args, None)
}

fn describe(args: &[impl AsRef<OsStr>], out: &Output) -> String {
    let args: Vec<_> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    format!(
        "idfcodec {}\nexit: {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs and asserts success; returns stdout as text.
pub fn ok<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "expected success: {}",
        describe(args, &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts a clean failure: exit code 1 (an error, not a panic's 101) with a message.
pub fn assert_clean_failure(args: &[impl AsRef<OsStr>], out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected an error: {}",
        describe(args, out)
    );
    assert!(!stderr.contains("panicked"), "{}", describe(args, out));
    assert!(stderr.starts_with("error: "), "{}", describe(args, out));
    stderr
}

/// Runs and asserts a clean failure; returns stderr.
pub fn fails<S: AsRef<OsStr>>(args: &[S]) -> String {
    let out = run(args);
    assert_clean_failure(args, &out)
}

/// A smooth, slightly noisy gray pattern (what a random prior around 128 codes compactly).
pub fn pattern(width: u32, height: u32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % 7) as i64 - 3
    };
    (0..height)
        .flat_map(|y| (0..width).map(move |x| (x, y)))
        .map(|(x, y)| {
            let wave = 30.0 * (x as f64 / 6.0).sin() * (y as f64 / 9.0).cos();
            ((128.0 + wave).round() as i64 + noise()).clamp(0, 255) as u8
        })
        .collect()
}

/// Writes an 8-bit grayscale PNG.
pub fn write_gray_png(path: &Path, width: u32, height: u32, pixels: &[u8]) {
    image::GrayImage::from_raw(width, height, pixels.to_vec())
        .unwrap()
        .save(path)
        .unwrap();
}

/// Reads a PNG, which must be 8-bit grayscale: `(width, height, pixels)`.
pub fn read_gray_png(path: &Path) -> (u32, u32, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    read_gray_png_bytes(&bytes)
}

/// Decodes PNG bytes, which must be 8-bit grayscale.
pub fn read_gray_png_bytes(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    match image::load_from_memory(bytes).unwrap() {
        image::DynamicImage::ImageLuma8(g) => (g.width(), g.height(), g.into_raw()),
        other => panic!("not 8-bit gray: {:?}", other.color()),
    }
}

/// The files under `dir`, relative, `/`-separated, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}
