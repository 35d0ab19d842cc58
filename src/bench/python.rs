//! Baseline codecs that are Python modules: oxipng (`pyoxipng`) and JPEG-LS (CharLS through
//! `imagecodecs`). One helper process per codec (`codecs.py`, embedded) serves every image, so
//! the interpreter starts once; times are measured in Python around the codec calls, and peak
//! memory is the growth of the helper's peak RSS per image.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use image::ImageFormat;
use serde_json::{json, Value};

use super::builtin::decode_file;
use super::{Codec, Family, Outcome, Picture, Trial};

const HELPER: &str = include_str!("codecs.py");

/// Where the Python modules come from.
const INSTALL_HINT: &str = "install with scripts/install-baseline-codecs (from the idfcodec \
                            repository; into its .venv), or pip install imagecodecs pyoxipng \
                            numpy pillow; --python chooses the interpreter";

/// The Python codecs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Module {
    /// `pyoxipng`: PNG optimised at oxipng's highest level; decoded by the `image` crate.
    Oxipng,
    /// `imagecodecs.jpegls_encode`/`jpegls_decode`, lossless.
    Jpegls,
}

impl Module {
    pub fn name(self) -> &'static str {
        match self {
            Module::Oxipng => "oxipng",
            Module::Jpegls => "jpegls",
        }
    }
}

/// The interpreter to use: `--python`, else the project's `.venv/bin/python` when run from the
/// repository, else `python3`.
pub fn default_python(given: Option<&Path>) -> PathBuf {
    if let Some(given) = given {
        return given.to_path_buf();
    }
    let venv = Path::new(".venv/bin/python");
    if venv.exists() {
        venv.to_path_buf()
    } else {
        PathBuf::from("python3")
    }
}

/// A running helper process for one module.
pub struct PythonCodec {
    module: Module,
    description: String,
    child: Child,
    requests: Option<ChildStdin>,
    answers: BufReader<ChildStdout>,
}

impl PythonCodec {
    /// Starts the helper; `Err(note)` when the interpreter or the module is missing.
    pub fn start(python: &Path, module: Module) -> Result<PythonCodec, String> {
        let skipped = |why: String| format!("{}: skipped, {why} ({INSTALL_HINT})", module.name());
        let mut child = Command::new(python)
            .args(["-c", HELPER, module.name()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| skipped(format!("cannot run {}: {e}", python.display())))?;
        let requests = child.stdin.take();
        let answers = BufReader::new(child.stdout.take().expect("piped"));
        let mut codec = PythonCodec {
            module,
            description: String::new(),
            child,
            requests,
            answers,
        };
        let ready = codec
            .read_answer()
            .map_err(|e| skipped(format!("{} did not answer: {e:#}", python.display())))?;
        match ready.get("ready").and_then(Value::as_str) {
            Some(description) => {
                codec.description = description.to_string();
                Ok(codec)
            }
            None => Err(skipped(format!(
                "{} cannot load it: {}",
                python.display(),
                ready.get("error").and_then(Value::as_str).unwrap_or("?")
            ))),
        }
    }

    fn read_answer(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.answers.read_line(&mut line)? == 0 {
            bail!("the helper process ended");
        }
        Ok(serde_json::from_str(&line)?)
    }

    fn ask(&mut self, request: &Value) -> Result<Value> {
        let requests = self
            .requests
            .as_mut()
            .ok_or_else(|| anyhow!("the helper process ended"))?;
        writeln!(requests, "{request}")
            .and_then(|()| requests.flush())
            .context("the helper process ended")?;
        let answer = self.read_answer()?;
        if let Some(error) = answer.get("error").and_then(Value::as_str) {
            bail!("{error}");
        }
        Ok(answer)
    }

    fn round_trip(&mut self, picture: &Picture, scratch: &Path) -> Result<Outcome> {
        let coded = scratch.join(format!("coded.{}", self.module.name()));
        let raw = scratch.join("input.raw");
        let color = picture.pixels.color();
        if self.module == Module::Jpegls {
            std::fs::write(&raw, picture.pixels.as_bytes())
                .with_context(|| format!("cannot write {}", raw.display()))?;
        }
        let answer = self.ask(&json!({
            "png": picture.png_path,
            "raw": raw,
            "width": picture.pixels.width(),
            "height": picture.pixels.height(),
            "channels": color.channel_count(),
            "bytes_per_sample": color.bytes_per_pixel() / color.channel_count(),
            "out": coded,
        }))?;
        let _ = std::fs::remove_file(&raw);
        if let Some(reason) = answer.get("unsupported").and_then(Value::as_str) {
            return Ok(Outcome::Unsupported(reason.to_string()));
        }
        let seconds = |key: &str| answer.get(key).and_then(Value::as_f64);
        let mut trial = Trial {
            bytes: answer
                .get("bytes")
                .and_then(Value::as_u64)
                .context("the helper gave no size")?,
            encode: Duration::from_secs_f64(seconds("encode_s").unwrap_or(0.0)),
            decode: Duration::from_secs_f64(seconds("decode_s").unwrap_or(0.0)),
            peak_memory: answer.get("peak_bytes").and_then(Value::as_u64),
        };
        let outcome = match answer.get("same").and_then(Value::as_bool) {
            Some(true) => Outcome::Coded(trial),
            Some(false) => Outcome::Failed("the decoded pixels differ from the original".into()),
            None => {
                // a PNG: decoded and checked here
                let start = Instant::now();
                let decoded = decode_file(&coded, ImageFormat::Png)?;
                trial.decode = start.elapsed();
                picture.check(&decoded, trial)
            }
        };
        let _ = std::fs::remove_file(&coded);
        Ok(outcome)
    }
}

impl Codec for PythonCodec {
    fn name(&self) -> &str {
        self.module.name()
    }

    fn settings(&self) -> String {
        match self.module {
            Module::Oxipng => format!("{}; decoded by the image crate", self.description),
            Module::Jpegls => self.description.clone(),
        }
    }

    fn family(&self) -> Family {
        Family::Baseline
    }

    fn code(&mut self, picture: &Picture, scratch: &Path) -> Outcome {
        self.round_trip(picture, scratch)
            .unwrap_or_else(|e| Outcome::Failed(format!("{e:#}")))
    }
}

impl Drop for PythonCodec {
    fn drop(&mut self) {
        // end of input ends the helper
        self.requests.take();
        let _ = self.child.wait();
    }
}
