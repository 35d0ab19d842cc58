//! The results of a bench run: every image's [`Outcome`] under every codec, summed per codec
//! into [`Summary`] rows, shown as a Markdown table and written as CSV.
//!
//! Sizes count every coded file whole. A codec's totals cover the images it coded (and
//! decoded back identically); its "vs PNG" ratio compares it with PNG on exactly those images.

use std::fmt::Write as _;
use std::time::Duration;

use super::builtin::PNG;
use idfcodec_codec::NamedImage;

use super::{Codec, Family, Outcome, Picture};

/// One codec's totals.
#[derive(Clone, Debug)]
pub struct Summary {
    pub name: String,
    pub family: Family,
    pub settings: String,
    /// Images benched.
    pub images: usize,
    /// Images coded and decoded back to identical pixels.
    pub verified: usize,
    pub unsupported: usize,
    pub failed: usize,
    /// Coded bytes, sub-pixels and raw pixel bytes of the verified images.
    pub bytes: u64,
    pub subpixels: u64,
    pub raw_bytes: u64,
    pub encode: Duration,
    pub decode: Duration,
    /// The largest peak memory of any image, in bytes.
    pub peak_memory: Option<u64>,
    /// Bytes relative to PNG's on the same images.
    pub vs_png: Option<f64>,
    /// Why images were unsupported, with counts; the first few failures.
    pub unsupported_reasons: Vec<(String, usize)>,
    pub failures: Vec<(String, String)>,
}

impl Summary {
    fn empty(name: String, family: Family, settings: String, images: usize) -> Summary {
        Summary {
            name,
            family,
            settings,
            images,
            verified: 0,
            unsupported: 0,
            failed: 0,
            bytes: 0,
            subpixels: 0,
            raw_bytes: 0,
            encode: Duration::ZERO,
            decode: Duration::ZERO,
            peak_memory: None,
            vs_png: None,
            unsupported_reasons: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// The row of a codec's archive of `set` (`bench --archive`): named `<codec> archive`, its
    /// bytes the one archive file's, its times the whole archive's.
    pub fn of_archive(codec: &dyn Codec, set: &ArchiveSet, outcome: Outcome) -> Summary {
        let n = set.images.len();
        let mut s = Summary::empty(
            format!("{} archive", codec.name()),
            codec.family(),
            format!("{}; the {n} images as one archive", codec.settings()),
            n,
        );
        match outcome {
            Outcome::Coded(t) => {
                s.verified = n;
                s.bytes = t.bytes;
                s.subpixels = set.subpixels;
                s.raw_bytes = set.raw_bytes;
                s.encode = t.encode;
                s.decode = t.decode;
                s.peak_memory = t.peak_memory;
                s.vs_png = set.png_bytes.map(|png| t.bytes as f64 / png as f64);
            }
            Outcome::Unsupported(reason) => {
                s.unsupported = n;
                s.unsupported_reasons.push((reason, n));
            }
            Outcome::Failed(error) => {
                s.failed = n;
                s.failures.push(("the archive".to_string(), error));
            }
        }
        s
    }

    /// Bits per sub-pixel.
    pub fn bpd(&self) -> Option<f64> {
        (self.verified > 0).then(|| idfcodec_codec::bits_per_dimension(self.bytes, self.subpixels))
    }

    /// Raw pixel megabytes (10⁶ bytes) encoded per second.
    pub fn encode_mb_s(&self) -> Option<f64> {
        mb_per_s(self.raw_bytes, self.encode, self.verified)
    }

    /// Raw pixel megabytes (10⁶ bytes) decoded per second.
    pub fn decode_mb_s(&self) -> Option<f64> {
        mb_per_s(self.raw_bytes, self.decode, self.verified)
    }
}

fn mb_per_s(bytes: u64, time: Duration, verified: usize) -> Option<f64> {
    (verified > 0 && !time.is_zero()).then(|| bytes as f64 / time.as_secs_f64() / 1e6)
}

/// The images of a run that `bench --archive` codes as one archive: every image idfcodec can
/// read, in the run's order, under its name relative to the folder given.
#[derive(Default)]
pub struct ArchiveSet {
    pub images: Vec<NamedImage>,
    pub subpixels: u64,
    pub raw_bytes: u64,
    /// PNG's bytes on these images (each its own file), when PNG coded every one of them.
    pub png_bytes: Option<u64>,
}

impl ArchiveSet {
    /// Adds an image; `png` is its outcome under PNG.
    pub fn add(&mut self, picture: &Picture, image: NamedImage, png: Option<&Outcome>) {
        self.png_bytes = match (self.images.is_empty(), self.png_bytes, png) {
            (true, _, Some(Outcome::Coded(t))) => Some(t.bytes),
            (false, Some(sum), Some(Outcome::Coded(t))) => Some(sum + t.bytes),
            _ => None,
        };
        self.subpixels += picture.subpixels();
        self.raw_bytes += picture.raw_bytes();
        self.images.push(image);
    }
}

/// How many failures per codec are kept for the notes.
const KEPT_FAILURES: usize = 3;

/// Everything measured so far.
pub struct Results {
    codecs: Vec<(String, Family, String)>,
    /// Per image: sub-pixels, raw bytes, one outcome per codec.
    images: Vec<(String, u64, u64, Vec<Outcome>)>,
}

impl Results {
    pub fn new(codecs: &[Box<dyn Codec>]) -> Results {
        Results {
            codecs: codecs
                .iter()
                .map(|c| (c.name().to_string(), c.family(), c.settings()))
                .collect(),
            images: Vec::new(),
        }
    }

    /// Adds an image's outcomes, one per codec in the order given to [`Results::new`].
    pub fn add(&mut self, picture: &Picture, outcomes: Vec<Outcome>) {
        assert_eq!(outcomes.len(), self.codecs.len(), "one outcome per codec");
        self.images.push((
            picture.name.clone(),
            picture.subpixels(),
            picture.raw_bytes(),
            outcomes,
        ));
    }

    /// One summary per codec, in the order given to [`Results::new`].
    pub fn summaries(&self) -> Vec<Summary> {
        let png = self.codecs.iter().position(|c| c.0 == PNG);
        (0..self.codecs.len())
            .map(|c| self.summary(c, png))
            .collect()
    }

    fn summary(&self, c: usize, png: Option<usize>) -> Summary {
        let (name, family, settings) = self.codecs[c].clone();
        let mut s = Summary::empty(name, family, settings, self.images.len());
        let (mut ours, mut theirs) = (0u64, 0u64);
        for (image, subpixels, raw_bytes, outcomes) in &self.images {
            match &outcomes[c] {
                Outcome::Coded(t) => {
                    s.verified += 1;
                    s.bytes += t.bytes;
                    s.subpixels += subpixels;
                    s.raw_bytes += raw_bytes;
                    s.encode += t.encode;
                    s.decode += t.decode;
                    s.peak_memory = s.peak_memory.max(t.peak_memory);
                    if let Some(Outcome::Coded(p)) = png.map(|p| &outcomes[p]) {
                        ours += t.bytes;
                        theirs += p.bytes;
                    }
                }
                Outcome::Unsupported(reason) => {
                    s.unsupported += 1;
                    match s.unsupported_reasons.iter_mut().find(|r| r.0 == *reason) {
                        Some(r) => r.1 += 1,
                        None => s.unsupported_reasons.push((reason.clone(), 1)),
                    }
                }
                Outcome::Failed(error) => {
                    s.failed += 1;
                    if s.failures.len() < KEPT_FAILURES {
                        s.failures.push((image.clone(), error.clone()));
                    }
                }
            }
        }
        s.vs_png = (theirs > 0).then(|| ours as f64 / theirs as f64);
        s
    }
}

fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "—".to_string(), |v| format!("{v:.decimals$}"))
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

/// The summaries as an aligned Markdown table.
pub fn table(summaries: &[Summary]) -> String {
    let header = [
        "codec",
        "images",
        "bpd",
        "vs PNG",
        "encode MB/s",
        "decode MB/s",
        "peak MiB",
        "settings",
    ];
    let rows: Vec<[String; 8]> = summaries
        .iter()
        .map(|s| {
            [
                s.name.clone(),
                if s.verified == s.images {
                    s.images.to_string()
                } else {
                    format!("{} of {}", s.verified, s.images)
                },
                or_dash(s.bpd(), 3),
                or_dash(s.vs_png, 3),
                or_dash(s.encode_mb_s(), 3),
                or_dash(s.decode_mb_s(), 3),
                or_dash(s.peak_memory.map(mib), 1),
                s.settings.clone(),
            ]
        })
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([header[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let line = |cells: &[String]| {
        let mut out = String::from("|");
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            // names and settings left-aligned, numbers right-aligned
            if i == 0 || i == cells.len() - 1 {
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            } else {
                let _ = write!(out, " {}{cell} |", " ".repeat(pad));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(&header.map(String::from));
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 || i == widths.len() - 1 {
                "-".repeat(*w)
            } else {
                format!("{}:", "-".repeat(w - 1))
            }
        })
        .collect();
    out.push_str(&line(&rule));
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// Lines saying which images a codec did not code, and why.
pub fn notes(summaries: &[Summary]) -> Vec<String> {
    let mut notes = Vec::new();
    for s in summaries {
        if s.unsupported > 0 {
            let reasons: Vec<String> = s
                .unsupported_reasons
                .iter()
                .map(|(reason, n)| format!("{n} × {reason}"))
                .collect();
            notes.push(format!(
                "{}: {} of {} images unsupported ({}); its figures cover the other {}",
                s.name,
                s.unsupported,
                s.images,
                reasons.join(", "),
                s.images - s.unsupported
            ));
        }
        if s.failed > 0 {
            let shown: Vec<String> = s
                .failures
                .iter()
                .map(|(image, error)| format!("{image}: {error}"))
                .collect();
            notes.push(format!(
                "{}: {} images FAILED, e.g. {}",
                s.name,
                s.failed,
                shown.join("; ")
            ));
        }
    }
    notes
}

/// The CSV columns.
pub const CSV_HEADER: &str = "codec,family,images,verified,unsupported,failed,bytes,subpixels,\
                              raw_bytes,bpd,vs_png,encode_mb_s,decode_mb_s,peak_mib,settings";

/// The summaries as CSV (empty cells where a figure is undefined).
pub fn csv(summaries: &[Summary]) -> String {
    let cell =
        |v: Option<f64>, decimals: usize| v.map_or_else(String::new, |v| format!("{v:.decimals$}"));
    let mut out = format!("{CSV_HEADER}\n");
    for s in summaries {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            quote(&s.name),
            s.family.as_str(),
            s.images,
            s.verified,
            s.unsupported,
            s.failed,
            s.bytes,
            s.subpixels,
            s.raw_bytes,
            cell(s.bpd(), 5),
            cell(s.vs_png, 5),
            cell(s.encode_mb_s(), 4),
            cell(s.decode_mb_s(), 4),
            cell(s.peak_memory.map(mib), 2),
            quote(&s.settings)
        );
    }
    out
}

/// A CSV field, quoted when it holds a comma or a quote.
pub(crate) fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}
