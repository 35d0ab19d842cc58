//! `idfcodec bench`: idfcodec against the classical lossless codecs on the same images — size
//! (bits per sub-pixel), speed and memory, every round trip checked. The machinery is in
//! `crate::bench`; this file parses the options, builds the codec list and runs it.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;
use idfcodec_codec::{Effort, NamedImage};
use indicatif::{ProgressBar, ProgressStyle};

use super::compress::collect_inputs;
use super::io;
use crate::bench::builtin::{Idfcodec, Png, PNG};
use crate::bench::external::Tool;
use crate::bench::python::{default_python, Module, PythonCodec};
use crate::bench::report::{self, ArchiveSet, Results, Summary};
use crate::bench::{plot, Codec, Family, Picture};
use crate::coding::Coding;
use crate::picture::codec_image;

/// The baselines `--against` accepts (`all`: every one).
const BASELINES: [&str; 6] = ["png", "optipng", "oxipng", "webp", "jxl", "jpegls"];

#[derive(Debug, Args)]
#[command(after_help = "\
Codecs (--against; png is always measured: it is the reference of the \"vs PNG\" column):
  png      the image crate's PNG encoder at its best compression, adaptive filters (in process)
  optipng  optipng -o5 -strip all                         (Debian: optipng)
  oxipng   pyoxipng at level 6 (its maximum), strip all   (PyPI: pyoxipng)
  webp     cwebp -lossless -z 9; dwebp -pam               (Debian: webp)
  jxl      cjxl -d 0 -e 7 and -e 9 (two entries); djxl    (Debian: libjxl-tools)
  jpegls   imagecodecs' JPEG-LS (CharLS), lossless        (PyPI: imagecodecs)
Missing tools are skipped with a note; scripts/install-baseline-codecs installs them all.
Every external tool reads the same PNG: the decoded pixels, written again without metadata.

What is measured, per codec, over the images it coded and decoded back to identical pixels:
  bpd          coded bytes × 8 / sub-pixels (width × height × channels), every file whole
  vs PNG       its bytes / PNG's bytes on the same images
  MB/s         raw pixel bytes (16-bit samples count 2) / wall seconds; for command-line tools
               the wall time of the process, start-up included (it dominates for tiny images);
               for Python modules the time of the codec call; for idfcodec and png in process
  peak MiB     the largest per image. idfcodec, png: how far this process's peak RSS rose
               above its RSS during the round trip (Linux VmHWM, reset through
               /proc/self/clear_refs); Python modules: the same, in the helper process;
               command-line tools: the tool process's own peak RSS (its VmHWM as it exits)
idfcodec codes every pixel format: gray images with its learned model (per --effort), the
others with its context coder. Images a codec cannot code are reported as unsupported for it
and still coded by the others; each codec's figures cover the images it coded.

Examples:
  idfcodec bench data/png/mnist-test --limit 200 --model mnist --csv mnist.csv --plot mnist.png
  idfcodec bench fixtures/*.png --against png,webp
  idfcodec bench photos/ --model a.safetensors --model b.safetensors   # one entry per model
  idfcodec bench data/png/mnist-test --limit 500 --effort 1,5,9 --plot efforts.png
  idfcodec bench data/png/mnist-test --limit 1000 --model vae-mnist --model mnist --archive
                                       # also the 1000 images as one archive per model")]
pub struct BenchArgs {
    /// Images (PNG or JPEG) or folders, searched recursively and taken in name order.
    #[arg(required = true, value_name = "IMAGE|DIR")]
    pub inputs: Vec<PathBuf>,
    /// Baseline codecs, comma-separated (see below), or `all`.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "all",
        value_name = "CODECS"
    )]
    pub against: Vec<String>,
    /// An idfcodec model to bench: an embedded model's name or a model file; repeat it for one
    /// entry per model. Default: the embedded default model of each pixel format.
    #[arg(long = "model", value_name = "NAME|PATH")]
    pub models: Vec<String>,
    /// idfcodec efforts to bench, comma-separated (see `idfcodec compress --help`): one entry
    /// per model and effort, so the rate/speed plot shows the trade-off. Default: 5.
    #[arg(long, value_delimiter = ',', default_value = "5", value_name = "E,E,...",
          value_parser = clap::value_parser!(u8).range(1..=9))]
    pub effort: Vec<u8>,
    /// Only the first N images (in name order).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
    /// Worker threads for idfcodec and for cjxl/djxl (0: all cores for idfcodec); the other
    /// codecs use one.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub threads: usize,
    /// idfcodec's tile side (see `idfcodec compress --help`; default: 128 with a learned model,
    /// 512 for context coding).
    #[arg(long, value_name = "N")]
    pub tile: Option<u32>,
    /// Write the per-codec figures as CSV.
    #[arg(long, value_name = "OUT.csv")]
    pub csv: Option<PathBuf>,
    /// Draw bpd per codec and bpd against encoding speed into a PNG.
    #[arg(long, value_name = "OUT.png")]
    pub plot: Option<PathBuf>,
    /// Title of the table and the plot (default: the inputs).
    #[arg(long)]
    pub title: Option<String>,
    /// Python interpreter for oxipng and JPEG-LS (default: .venv/bin/python if there, else
    /// python3).
    #[arg(long, value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Also code all the images as one archive with each idfcodec entry (as `compress --archive`
    /// does: a bits-back model's entries chained on one stream), one more row per entry
    /// (`NAME archive`): what a data set costs as one file rather than one file per image.
    #[arg(long)]
    pub archive: bool,
    /// Replace existing --csv and --plot files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: BenchArgs) -> Result<()> {
    for out in a.csv.iter().chain(&a.plot) {
        io::check_not_clobbering(out, a.force)?;
    }
    let mut inputs = collect_inputs(&a.inputs)?;
    if let Some(limit) = a.limit {
        inputs.truncate(limit);
    }
    let mut skipped = Vec::new();
    let mut codecs = codec_list(&a, &mut skipped)?;
    for note in &skipped {
        eprintln!("note: {note}");
    }
    let scratch = tempfile::Builder::new()
        .prefix("idfcodec-bench")
        .tempdir()?;
    let mut results = Results::new(&codecs);
    let mut archive = ArchiveSet::default();
    let mut unreadable = Vec::new();
    let bar = ProgressBar::new((inputs.len() * codecs.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("[{elapsed_precise}] {bar:30} {pos}/{len} {msg} (eta {eta})")
            .expect("valid template"),
    );
    for input in &inputs {
        let picture = match Picture::load(input.name.as_str(), &input.path, scratch.path()) {
            Ok(picture) => picture,
            Err(e) => {
                unreadable.push(format!("{}: {e:#}", input.name));
                bar.inc(codecs.len() as u64);
                continue;
            }
        };
        let mut outcomes = Vec::with_capacity(codecs.len());
        for codec in codecs.iter_mut() {
            bar.set_message(format!("{} {}", codec.name(), input.name));
            outcomes.push(codec.code(&picture, scratch.path()));
            bar.inc(1);
        }
        if a.archive {
            // images idfcodec cannot take are left out of the archive (and said so per image)
            if let Ok(image) = codec_image(picture.pixels.clone()) {
                let png = codecs.iter().position(|c| c.name() == PNG);
                let named = NamedImage {
                    name: input.name.clone(),
                    image,
                };
                archive.add(&picture, named, png.map(|p| &outcomes[p]));
            }
        }
        results.add(&picture, outcomes);
    }
    bar.finish_and_clear();

    let mut summaries = results.summaries();
    if a.archive {
        summaries.extend(archive_rows(&mut codecs, &archive));
    }
    let title = a.title.clone().unwrap_or_else(|| {
        let names: Vec<String> = a.inputs.iter().map(|p| p.display().to_string()).collect();
        names.join(" ")
    });
    println!(
        "{title}: {} images\n",
        summaries.first().map_or(0, |s| s.images)
    );
    print!("{}", report::table(&summaries));
    let notes: Vec<String> = skipped
        .into_iter()
        .chain(report::notes(&summaries))
        .chain(
            unreadable
                .iter()
                .map(|u| format!("not an image this bench can read: {u}")),
        )
        .collect();
    if !notes.is_empty() {
        println!();
        notes.iter().for_each(|n| println!("note: {n}"));
    }
    if let Some(path) = &a.csv {
        io::write_file(path, report::csv(&summaries).as_bytes(), a.force)?;
    }
    if let Some(path) = &a.plot {
        io::write_file(path, &plot::figure(&summaries, &title)?, a.force)?;
    }
    let broken: Vec<&str> = summaries
        .iter()
        .filter(|s| s.family == Family::Idfcodec && s.failed > 0)
        .map(|s| s.name.as_str())
        .collect();
    if !broken.is_empty() {
        bail!(
            "{} failed to round-trip some images (see the notes)",
            broken.join(", ")
        );
    }
    Ok(())
}

/// `--archive`: each codec's archive of `set`, for the codecs that have one (idfcodec's entries).
fn archive_rows(codecs: &mut [Box<dyn Codec>], set: &ArchiveSet) -> Vec<Summary> {
    let mut rows = Vec::new();
    if set.images.is_empty() {
        return rows;
    }
    let spinner = ProgressBar::new_spinner();
    for codec in codecs.iter_mut() {
        spinner.set_message(format!(
            "{}: the {} images as one archive",
            codec.name(),
            set.images.len()
        ));
        spinner.enable_steady_tick(std::time::Duration::from_millis(200));
        if let Some(outcome) = codec.code_archive(&set.images) {
            rows.push(Summary::of_archive(codec.as_ref(), set, outcome));
        }
    }
    spinner.finish_and_clear();
    rows
}

/// The codecs to run, idfcodec's entries first; a note in `skipped` for each one not installed.
fn codec_list(a: &BenchArgs, skipped: &mut Vec<String>) -> Result<Vec<Box<dyn Codec>>> {
    let mut codecs: Vec<Box<dyn Codec>> = Vec::new();
    let models: Vec<Option<String>> = if a.models.is_empty() {
        vec![None]
    } else {
        a.models.iter().cloned().map(Some).collect()
    };
    for model in models {
        for &effort in &a.effort {
            let coding = Coding::new(model.as_deref(), Effort::new(effort)?, a.threads, a.tile);
            codecs.push(Box::new(Idfcodec::new(coding, a.effort.len() > 1)?));
        }
    }
    codecs.push(Box::new(Png));
    let python = default_python(a.python.as_deref());
    for name in baselines(&a.against)? {
        let tools = match name {
            "png" => continue,
            "optipng" => vec![Tool::optipng()],
            "webp" => vec![Tool::webp()],
            "jxl" => {
                let threads = match a.threads {
                    0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                    n => n,
                };
                vec![Tool::jxl(7, threads), Tool::jxl(9, threads)]
            }
            "oxipng" | "jpegls" => {
                let module = if name == "oxipng" {
                    Module::Oxipng
                } else {
                    Module::Jpegls
                };
                match PythonCodec::start(&python, module) {
                    Ok(codec) => codecs.push(Box::new(codec)),
                    Err(note) => skipped.push(note),
                }
                continue;
            }
            _ => unreachable!("checked by baselines()"),
        };
        for tool in tools {
            match tool.check_installed() {
                Ok(()) => codecs.push(Box::new(tool)),
                Err(note) => skipped.push(note),
            }
        }
    }
    Ok(codecs)
}

/// `--against`'s names, checked, `all` expanded, each once, in the order of [`BASELINES`].
fn baselines(against: &[String]) -> Result<Vec<&'static str>> {
    let mut wanted = Vec::new();
    for name in against.iter().map(|n| n.trim().to_ascii_lowercase()) {
        match name.as_str() {
            "all" => wanted.extend(BASELINES),
            "" => {}
            other => match BASELINES.iter().find(|b| **b == other) {
                Some(b) => wanted.push(*b),
                None => bail!(
                    "unknown codec '{other}' in --against (known: {}, all)",
                    BASELINES.join(", ")
                ),
            },
        }
    }
    Ok(BASELINES
        .into_iter()
        .filter(|b| wanted.contains(b))
        .collect())
}
