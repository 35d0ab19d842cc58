//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The data dir as an absolute path (tests run in the package root).
pub fn real_data_dir() -> PathBuf {
    let dir = idfcodec::data::data_dir();
    if dir.is_absolute() {
        dir
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(dir)
    }
}

/// Runs `scripts/fetch-data NAME` once per test process (it verifies checksums; fast when present)
/// and returns the data dir. A fetch that fails fails the test, with the script's output.
pub fn fetched(name: &str) -> PathBuf {
    static DONE: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let done = DONE.get_or_init(|| Mutex::new(Vec::new()));
    let mut done = done.lock().unwrap_or_else(|e| e.into_inner());
    let dir = real_data_dir();
    if !done.iter().any(|d| d == name) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fetch-data");
        let out = Command::new(&script)
            .arg("--data")
            .arg(&dir)
            .arg(name)
            .output()
            .expect("cannot run scripts/fetch-data");
        assert!(
            out.status.success(),
            "scripts/fetch-data {name} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        done.push(name.to_string());
    }
    dir
}
